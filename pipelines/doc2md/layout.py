"""doc2md layout: DocLayNet-class boxes for every kept page, derived with no human labels.

The page's markdown already says what each block is (LaTeXML knew): `#` title, `##…` section headers,
list items, `Figure N:`/`Table N:` captions, tabulars, `\\[…\\]` formulas, `Footnote N:`/`Footnote:` footnotes, the
rest text. Each block's words are aligned to the PDF page's words (the same alignment as the page split),
so each PDF line votes for the block it belongs to; a block's box is the union of its lines, cut where it
jumps to the next column. Display formulas are the lines with math fonts and no block's words; pictures are
PyMuPDF's drawing clusters and images outside tables; running headers/footers are the lines the page
split took out. Boxes are in image pixels, in the shape `record["layout"] = [{"label", "bbox"}]`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from pipelines.doc2md.pages import (FLOAT_CAPTION, FOOTNOTE_LABEL, PageSplit, PdfLine, align_body, markdown_blocks,
                                    markdown_tokens, tokens_of)

CLASSES = ("Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header", "Picture",
           "Section-header", "Table", "Text", "Title")
# a list item: markdown's bullets and numbers, and the labels enumitem lists print ("(i)", "(a)", "a)")
LIST_ITEM = re.compile(r"^(?:[*+-]|\d+[.)]|\([0-9a-zA-Z]{1,4}\)|[a-z]{1,4}\)) ", re.MULTILINE)
CAPTION = re.compile("^" + FLOAT_CAPTION)
FORMULA_GAP = 2.5  # points: the rows of one display formula are closer than this to each other
MIN_PICTURE_SIDE = 12.0  # points: smaller drawings are rules, underlines and table lines
Box = tuple[float, float, float, float]


def block_label(text: str) -> str:
    first = text.lstrip()
    if first.startswith("# "):
        return "Title"
    if re.match(r"#{2,6} ", first):
        return "Section-header"
    if CAPTION.match(first):
        return "Caption"
    if re.match(FOOTNOTE_LABEL, first):
        return "Footnote"
    if first.startswith(("\\begin{tabular", "<table")):
        return "Table"
    if first.startswith(("\\[", "$$")):
        return "Formula"
    if LIST_ITEM.match(first):
        return "List-item"
    return "Text"


def markdown_units(markdown: str) -> list[tuple[str, str]]:
    """(label, text) of each block; a list block becomes one unit per top-level item (nested items stay
    with their parent, as DocLayNet boxes them), a caption block one per caption (a figure's and its panels')."""
    units = []
    for start, end, _ in markdown_blocks(markdown):
        text = markdown[start:end]
        label = block_label(text)
        if label == "List-item":
            starts = [m.start() for m in LIST_ITEM.finditer(text)] + [len(text)]
            units += [(label, text[a:b]) for a, b in zip(starts, starts[1:]) if text[a:b].strip()]
        elif label == "Caption":  # a figure's caption and each of its panels' is a box of its own
            units += [(label, line) for line in text.split("\n") if line.strip()]
        else:
            units.append((label, text))
    return units


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def column_runs(lines: list[int], pdf_lines: list[PdfLine]) -> list[list[int]]:
    """Consecutive runs of a block's lines that stay in one column: a new run starts when the next line
    begins above the previous one (a column or page-part jump) or after a gap of more than two lines."""
    runs: list[list[int]] = []
    for index in sorted(lines):
        box = pdf_lines[index].bbox
        if runs:
            last = pdf_lines[runs[-1][-1]].bbox
            height = max(last[3] - last[1], 1.0)
            if same_row(box, last) or box[1] >= last[1] - height / 2 and box[1] - last[3] <= 2 * height:
                runs[-1].append(index)
                continue
        runs.append([index])
    return runs


def line_owners(units: list[tuple[str, str]], split: PageSplit) -> dict[int, int]:
    """PDF line index → the unit whose words most of the line's matched words are."""
    tokens, owners = [], []
    for number, (_, text) in enumerate(units):
        found = markdown_tokens(text)[0]
        tokens += found
        owners += [number] * len(found)
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for token, matched in enumerate(align_body(tokens, split.pdf.tokens)):
        if matched is not None:
            votes[split.pdf.token_lines[matched]][owners[token]] += 1
    return {line: counter.most_common(1)[0][0] for line, counter in votes.items()}


def same_row(a: Box, b: Box) -> bool:
    """The boxes share at least half of the smaller one's height."""
    return min(a[3], b[3]) - max(a[1], b[1]) >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def clusters(indices: list[int], lines: list[PdfLine], margin: float = FORMULA_GAP) -> list[list[int]]:
    """Groups of lines whose boxes, grown by `margin` points, touch (transitively): the pieces of one
    display formula — numerator, fraction bar row, denominator, its number — and the rows of an `align`."""
    def touch(a: Box, b: Box) -> bool:
        return overlaps(grow(a, margin), grow(b, margin)) or same_row(a, b)

    groups: list[list[int]] = []
    for index in sorted(indices):
        box = lines[index].bbox
        touching = [g for g in groups if any(touch(box, lines[i].bbox) for i in g)]
        merged = sorted([index] + [i for g in touching for i in g])
        groups = [g for g in groups if g not in touching] + [merged]
    return sorted(groups)


def gutter(lines: list[PdfLine], width: float) -> float | None:
    """Where two columns meet: the middle of the widest stretch of the page's middle 40 % that hardly any line
    crosses (a title or a wide float may: a tenth of the lines); None on a one-column page."""
    crossing = [0] * int(width)
    for line in lines:
        for x in range(max(0, int(line.bbox[0])), min(int(width), int(line.bbox[2]) + 1)):
            crossing[x] += 1
    open_ = [0.3 * width <= x <= 0.7 * width and crossing[x] <= 0.1 * len(lines) for x in range(int(width))]
    best, start = None, None
    for x, is_open in enumerate(open_ + [False]):
        if is_open and start is None:
            start = x
        elif not is_open and start is not None:
            if x - start >= 4 and (best is None or x - start > best[1] - best[0]):
                best = (start, x)
            start = None
    return None if best is None else (best[0] + best[1]) / 2


def claim_same_row(owner: dict[int, int], lines: list[PdfLine], middle: float | None) -> None:
    """Give an unclaimed text line (a section number) to the claimed line beside it on the same row, so a
    header's box holds its number too; never across the gutter `middle` of a two-column page (an equation's
    number at the left column's right edge is not the right column's)."""
    for index, line in enumerate(lines):
        if index in owner or line.math or not line.text:
            continue
        height = line.bbox[3] - line.bbox[1]
        for other, unit in list(owner.items()):
            box = lines[other].bbox
            shared = min(box[3], line.bbox[3]) - max(box[1], line.bbox[1])
            gap = max(box[0] - line.bbox[2], line.bbox[0] - box[2])
            across = middle is not None and min(box[2], line.bbox[2]) <= middle <= max(box[0], line.bbox[0])
            if shared >= 0.5 * height and gap <= 3 * height and not across:
                owner[index] = unit
                break


def claim_wrapped_tails(owner: dict[int, int], lines: list[PdfLine]) -> None:
    """Give an unclaimed text line without math (a reference's last line "2019.", the rest of a word broken
    at the line above, whose words count there) to the claimed line just above it that starts at the same
    left edge, top to bottom: the rest of its block. An equation's number, at the right margin, is left to
    its formula."""
    for index in sorted(range(len(lines)), key=lambda i: lines[i].bbox[1]):
        line = lines[index]
        if index in owner or line.math or not line.text:
            continue
        height = line.bbox[3] - line.bbox[1]
        above = [other for other in owner if 0 <= line.bbox[1] - lines[other].bbox[3] <= height
                 and abs(lines[other].bbox[0] - line.bbox[0]) <= 2 * height]
        if above:
            owner[index] = owner[max(above, key=lambda other: lines[other].bbox[3])]


def grow(box: Box, margin: float) -> Box:
    return (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)


def drawing_boxes(page) -> list[Box]:
    """Clusters of vector drawings and placed images, larger than a rule and smaller than the page."""
    found = [tuple(rect) for rect in page.cluster_drawings()]
    found += [tuple(info["bbox"]) for info in page.get_image_info()]
    page_area = page.rect.width * page.rect.height
    return [box for box in found if (box[2] - box[0]) * (box[3] - box[1]) < 0.9 * page_area]


def margin_numbers(lines: list[PdfLine]) -> set[int]:
    """A submission copy's line numbers (lineno, the ICML/ACL/CVPR rulers): lines of digits left or right of
    every line with words. They are in no block."""
    worded = [line.bbox for line in lines if tokens_of(line.text)]
    if not worded:
        return set()
    left, right = min(box[0] for box in worded), max(box[2] for box in worded)
    return {i for i, line in enumerate(lines)
            if not line.math and line.text.isdigit() and (line.bbox[2] <= left + 1 or line.bbox[0] >= right - 1)}


def page_layout(split: PageSplit, page, scale: float, width: int, height: int) -> list[dict]:
    """The layout blocks of one kept page in reading order: headers, body blocks by their first PDF line
    (pictures just before the text under them), footers. Boxes in pixels, clamped to the image."""
    units = markdown_units(split.markdown)
    lines = split.pdf.lines
    owner = line_owners(units, split)
    claim_same_row(owner, lines, gutter(lines, page.rect.width))
    claim_wrapped_tails(owner, lines)
    margin = margin_numbers(lines)
    for line in margin:
        owner.pop(line, None)
    blocks: list[tuple[float, str, Box]] = []
    by_unit: dict[int, list[int]] = defaultdict(list)
    for line, unit in owner.items():
        by_unit[unit].append(line)
    drawings = drawing_boxes(page)
    for unit, owned_lines in by_unit.items():
        label = units[unit][0]
        runs = [owned_lines] if label == "Table" else column_runs(owned_lines, lines)
        for run in runs:
            box = union([lines[i].bbox for i in run])
            if label == "Table":  # the table's rules belong to it
                box = union([box] + [d for d in drawings if overlaps(d, grow(box, 2))])
            blocks.append((float(min(run)), label, box))
    text_boxes = [box for _, label, box in blocks]
    pictures = [d for d in drawings if min(d[2] - d[0], d[3] - d[1]) >= MIN_PICTURE_SIDE
                and not any(overlaps(d, other) for other in text_boxes)]
    math_lines = [i for i, line in enumerate(lines)  # with their numbers: "(3)" has no words of its own
                  if i not in owner and i not in margin and (line.math or not tokens_of(line.text))
                  and not any(overlaps(line.bbox, grow(box, -2)) for box in text_boxes)]  # not a table's numbers
    labels = [i for i in math_lines if any(overlaps(lines[i].bbox, grow(p, 12)) for p in pictures)]
    for index, picture in enumerate(pictures):  # a figure's own math labels are part of the picture
        pictures[index] = union([picture] + [lines[i].bbox for i in labels if overlaps(lines[i].bbox, grow(picture, 12))])
    for group in clusters([i for i in math_lines if i not in labels], lines):
        blocks.append((float(group[0]), "Formula", union([lines[i].bbox for i in group])))
    for box in pictures:
        below = [i for i, line in enumerate(lines) if line.bbox[1] >= box[3] - 1 and overlaps(
            (box[0], 0, box[2], 1), (line.bbox[0], 0, line.bbox[2], 1))]
        blocks.append((min(below) - 0.5 if below else float(len(lines)), "Picture", box))
    middle = page.rect.height / 2
    headers = [("Page-header", line.bbox) for line in split.pdf.headers if line.bbox[1] < middle]
    footers = [("Page-footer", line.bbox) for line in split.pdf.headers if line.bbox[1] >= middle]
    ordered = headers + [(label, box) for _, label, box in sorted(blocks, key=lambda b: (b[0], b[2][1]))] + footers
    return [{"label": label, "bbox": pixel_box(box, scale, width, height)} for label, box in ordered]


def pixel_box(box: Box, scale: float, width: int, height: int) -> list[float]:
    return [round(min(max(box[0] * scale, 0.0), width), 1), round(min(max(box[1] * scale, 0.0), height), 1),
            round(min(max(box[2] * scale, 0.0), width), 1), round(min(max(box[3] * scale, 0.0), height), 1)]
