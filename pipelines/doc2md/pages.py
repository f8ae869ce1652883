"""doc2md step 5: split a paper's markdown into its PDF's pages, score each page, keep or drop it.

Both sides become word tokens with math removed: the PDF's page text from PyMuPDF (spans in math fonts
dropped, running headers/footers and page numbers dropped, line-end hyphens joined) and the markdown
(math spans, LaTeX commands and markup masked in place so every token keeps its offset; the words a
formula sets in text fonts, which the PDF keeps, are the formula's tokens). Letters are compared without
their accents (a PDF without T1 fonts draws an accent apart from its letter). One monotone
word alignment of the whole markdown against all pages (rapidfuzz's Levenshtein opcodes over word lists)
tells which page each matched markdown word sits on; page boundaries go just after the last word matched
on the page before, moved to the next line break when that comes before the next page's first match.
A page's score is 1 − normalised character edit distance between its markdown text and its PDF text;
pages under the threshold, with unresolved references (`??`) or with no text are dropped with a reason.
Floats and footnotes go to the page whose text holds them, and a paragraph the PDF continues after one is
cut around it (reading order); a table the PDF continues over pages (longtable) is cut into one table per
page, each with the header rows the page repeats. CJK text is compared character by character (no
whitespace tokenisation).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from pipelines.doc2md.markdown_tables import TABLE_START, table_rows_of
from pipelines.text_lang import CJK

SCRIPT_DIGITS = "\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089"  # "word¹": a footnote mark, not part of the word
TOKEN = re.compile(rf"[{CJK}]|[^\W\d_{CJK}{SCRIPT_DIGITS}]+")
MATH_FONT = re.compile(r"^(?:cmmi|cmsy|cmex|msbm|msam|eufm|eusm|euex|eurm|rsfs|wasy|stmary|lmmathitalic|"
                       r"lmmathsymbols|lmmathextension|latinmodernmath|stixmath|stixtwomath|xitsmath|"
                       r"cambriamath|texgyre\w*math|mathdesign|bbm|dsrom|esint|txmi|txsy|txex|pxmi|pxsy|pxex)",
                       re.IGNORECASE)
FOOTNOTE_LABEL = r"Footnote(?: [^\s:]{1,6})?:"  # "Footnote 3:", "Footnote a:" (a minipage's), "Footnote:" (\thanks)
MATH_REGION = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]|\$\$.*?\$\$", re.DOTALL)
# a formula's words in text fonts: operator names, set upright in roman (\liminf prints "lim inf"), and
# \text{…}-like arguments (\mathbf is cmbx, \mathrm cmr: not math fonts)
MATH_WORDS = re.compile(r"\\(log|ln|lg|exp|sin|cos|tan|cot|sec|csc|sinh|cosh|tanh|coth|arcsin|arccos|arctan|max|min|"
                        r"arg|lim|liminf|limsup|sup|inf|det|dim|ker|deg|gcd|hom|Pr|bmod|pmod|mod)(?![A-Za-z])"
                        r"|\\(?:text|textrm|textbf|textit|textsf|texttt|textnormal|mbox|mathrm|mathbf|mathit|mathsf|"
                        r"mathtt|operatorname)\*?\s*\{([^{}]*)\}"
                        r"|([ΓΔΘΛΞΠΣΥΦΨΩ])")  # a capital Greek letter outside those arguments (see GREEK_CAPITALS)
OPERATOR_WORDS = {"liminf": ("lim", "inf"), "limsup": ("lim", "sup"), "bmod": ("mod",), "pmod": ("mod",)}
# upright capital Greek, which TeX's math takes from the text font (cmr, cmbx under \mathbf): \Phi prints "Φ"
GREEK_CAPITALS = {"Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
                  "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}
GREEK_CAPITAL = re.compile(r"\\(" + "|".join(GREEK_CAPITALS) + r")(?![A-Za-z])")
MARKDOWN_MASKS = re.compile(
    MATH_REGION.pattern                                             # inline and display math
    + r"|\\begin\{tabular\*?\}(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})?|\\end\{tabular\*?\}"  # a tabular's ends, column spec
    r"|\\(?:multicolumn|multirow)\{[^}]*\}\{[^}]*\}"               # span counts and alignments
    r"|\\[A-Za-z@]+\*?|\\."                                         # other commands and escapes
    r"|</?(?:table|tr|th|td)\b[^<>]*>|&(?:amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);"  # `--tables html`: tags, entities
    rf"|^{FOOTNOTE_LABEL}|```\w*",
    re.DOTALL | re.MULTILINE)
# a float's caption as LaTeXML tags it, in the languages papers come in: `Figure 3:`, `Table A.2:`, `图 1:`, `表 2：`
FLOAT_NAME = (r"(?:Figure|Fig\.|Table|Tab\.|Algorithm|Listing|Scheme|图|表|算法|Abbildung|Abb\.|Tabelle|Tableau|"
              r"Tabla|Figura|Tabella|Рис\.|Рисунок|Таблица)")
FLOAT_NUMBER = r"(?:(?:[A-Z]\.?)?\d+(?:[.\-]\d+)*|[IVXLC]+)"  # 3, A.2, 3.1, S1; IEEEtran's tables: I, IV
# "Figure 3:", "Fig. 1. …" (IEEEtran), "TABLE I." (revtex), IEEEtran's "TABLE I" over its caption (no colon), and
# the algorithm packages' "**Algorithm 1**"
CAPTION_TAG = (rf"(?:(?i:{FLOAT_NAME})\s*{FLOAT_NUMBER}\s*(?:[:：]|\.(?=\s))|TABLE {FLOAT_NUMBER}\s"
               rf"|\*\*(?i:{FLOAT_NAME})\s*{FLOAT_NUMBER}[.:]?\*\*)")
# a figure's caption block: its panels' captions ("(a) …", a line each, subcaption/subfig) and its own, in either order
FLOAT_CAPTION = rf"(?:\([a-z]{{1,2}}\)[^\n]*\n)*{CAPTION_TAG}"
MOVABLE = re.compile(rf"(?:{FOOTNOTE_LABEL}|{FLOAT_CAPTION}|{TABLE_START}|```)")
MOVABLE_MIN_SCORE = 60.0  # a float whose text matches no nearby page this well stays where the markdown has it
TABLE_ROW_GAP = 150  # PDF tokens a continued table's next row may be found after its last (a page break's footnotes,
SHORT_ROW_GAP = 30   # the header the next page repeats); rows of one or two words must come closer
REPEATED_HEADER_ROWS = 3  # a continued table's page may repeat up to this many of its first rows
UNRESOLVED = re.compile(r"\?\?")
SPACING_ACCENTS = re.compile("[\u00a8\u00b4`\u02c6\u02dc\u00b8\u02c7\u02d8\u02d9\u02da\u02dd\u00af\u02c9]")
COMBINING_ACCENTS = re.compile("[\u0300-\u036f]")  # the marks Latin, Greek and Cyrillic letters take (not kana's)
# OT1's accented i and j are dotless ones under an accent; cmr's capital Delta reads as U+2206 INCREMENT
PRINTED_LETTERS = str.maketrans({"\u0131": "i", "\u0237": "j", "\u2206": "\u03b4"})
EDGE_FRACTION = 0.15  # running headers and footers live in the top and bottom 15 % of a page ...
EDGE_LINES = 2  # ... as one of its two first or two last lines
# the identifier arXiv stamps up the left margin of a paper's first page: "arXiv:2401.01234v2  [cs.CL]  5 Mar 2024"
ARXIV_STAMP = re.compile(r"^arXiv:\S+\s*\[[^\]]+\]\s*\d{1,2}\s*[A-Z][a-z]{2}\s*\d{4}$")
# a class's page footer: elsarticle's "Preprint submitted to Elsevier" and the date it sets apart on the line
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
          "December")
PAGE_FOOTER = re.compile(rf"^(?:Preprint submitted to\b.*|(?:{'|'.join(MONTHS)}) \d{{1,2}}, \d{{4}})$")
# T1-encoded Type 3 (bitmap) fonts, which pdfTeX uses where cm-super is not installed (old arXiv PDFs, this
# project's own compiles), carry no text mapping: PyMuPDF gives their ligatures' character codes
T1_LIGATURES = str.maketrans({"\x1b": "ff", "\x1c": "fi", "\x1d": "fl", "\x1e": "ffi", "\x1f": "ffl"})
PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})(\d{2})")
PAGE_NUMBER = re.compile(r"^(?:page\s*)?[\divxlcdm]+(?:\s*(?:/|of)\s*\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class PdfLine:
    """A text line of a PDF page: its box (points), its text without math, whether it had math."""

    bbox: tuple[float, float, float, float]
    text: str
    math: bool


@dataclass
class PdfPage:
    """One PDF page's words in reading order (math and running headers/footers removed), its body lines
    and which line each word is on, and the running header/footer lines taken out."""

    number: int
    tokens: list[str]
    headers: list[PdfLine] = field(default_factory=list)
    lines: list[PdfLine] = field(default_factory=list)
    token_lines: list[int] = field(default_factory=list)


@dataclass
class PageSplit:
    """One page's share of the markdown and its verdict."""

    number: int
    markdown: str
    score: float
    kept: bool
    reason: str | None
    pdf: PdfPage


def normalise(text: str) -> str:
    """Text as both sides are compared: NFKC, lower case, and Latin, Greek and Cyrillic letters without their
    accents. A PDF typeset without T1 fonts draws an accent as a character of its own ("Universit¨at",
    "Nov´akov´a", "´ı"), which PyMuPDF returns beside the letter; the markdown has "Universität"."""
    text = COMBINING_ACCENTS.sub("", unicodedata.normalize("NFKD", SPACING_ACCENTS.sub("", text)))
    return unicodedata.normalize("NFKC", text).lower().translate(PRINTED_LETTERS)


def tokens_of(text: str) -> list[str]:
    return TOKEN.findall(normalise(text))


def math_words(tex: str) -> list[str]:
    """The words a formula sets in text fonts, which the PDF's text keeps (`line_text` drops only math-font
    glyphs): `\\text{if}`, `\\mathrm{Attn}`, `\\mathbf{W}`, `\\operatorname{softmax}`, `\\max`, `\\log`, and
    the upright capital Greek letters (`\\Phi`)."""
    words: list[str] = []
    tex = GREEK_CAPITAL.sub(lambda letter: f" {GREEK_CAPITALS[letter.group(1)]} ", tex)
    for found in MATH_WORDS.finditer(tex):  # in the formula's order
        operator, argument, letters = found.groups()
        if operator:
            words += OPERATOR_WORDS.get(operator, (operator.lower(),))
        elif argument is not None:
            words += tokens_of(re.sub(r"\\[A-Za-z]+|\\.", " ", argument))
        else:
            words += tokens_of(letters)
    return words


def markdown_tokens(markdown: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The markdown's word tokens (math and markup masked, but the words a formula sets in text fonts) and
    each token's (start, end) offsets (a formula's words: the whole formula's)."""
    masked = MARKDOWN_MASKS.sub(lambda m: " " * len(m.group(0)), markdown)
    found = [(match.span(), normalise(match.group(0))) for match in TOKEN.finditer(masked)]
    found += [(math.span(), word) for math in MATH_REGION.finditer(markdown) for word in math_words(math.group(0))]
    found.sort(key=lambda item: item[0][0])
    return [token for _, token in found], [span for span, _ in found]


def is_subscript_boundary(before: dict, after: dict) -> bool:
    """Whether one of two adjacent spans is a subscript of the other: smaller, on a lower baseline (superscripts
    are left joined: the LaTeX logo raises its small "A")."""
    small, big = (after, before) if after["size"] < before["size"] else (before, after)
    return big["size"] - small["size"] > 0.5 and small["origin"][1] - big["origin"][1] > 1


def line_text(line: dict) -> tuple[str, bool]:
    """A PyMuPDF line's text without its math-font spans, and whether it had any; the T1 bitmap fonts' ligatures
    spelled out. Where a formula's math-font glyphs stood, or its text-font glyphs go down to a subscript or back
    (`\\Gamma_{\\mathbf{k}}`, `\\mathbf{W}_{\\mathrm{q}}`), the words part, as the formula's do in the markdown."""
    kept, math, last = [], False, None
    for span in line["spans"]:
        if MATH_FONT.match(span["font"].split("+")[-1]):
            math = math or bool(span["text"].strip())
            kept.append(" ")
            last = None
            continue
        if last is not None and is_subscript_boundary(last, span):
            kept.append(" ")
        kept.append(span["text"].translate(T1_LIGATURES))
        last = span
    return "".join(kept).strip(), math


def page_lines(page) -> list[PdfLine]:
    """The page's text lines (math-only lines included, with empty text), content-stream order (column by
    column for LaTeX); arXiv's identifier stamp is not the paper's text."""
    import pymupdf

    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_LIGATURES & ~pymupdf.TEXT_PRESERVE_IMAGES
    lines = []
    for block in page.get_text("dict", flags=flags)["blocks"]:
        for line in block.get("lines", []):
            text, math = line_text(line)
            if (text or math) and not ARXIV_STAMP.match(text):
                lines.append(PdfLine(tuple(line["bbox"]), text, math))
    return lines


def edge_signature(text: str) -> str:
    return re.sub(r"\d+", "#", normalise(text)).strip()


def edge_lines(lines: list[PdfLine], height: float) -> set[int]:
    """Indices of the lines where running headers and footers live: among the two topmost or the two
    bottommost text lines of the page, and within its top or bottom 15 %; and the topmost or bottommost
    line wherever it is when it is a page number (article's A4 layout puts it 83 % down the page)."""
    order = sorted((i for i in range(len(lines)) if lines[i].text), key=lambda i: lines[i].bbox[1])
    candidates = set(order[:EDGE_LINES] + order[-EDGE_LINES:])
    outermost = set(order[:1] + order[-1:])
    return {i for i in candidates
            if lines[i].bbox[3] < height * EDGE_FRACTION or lines[i].bbox[1] > height * (1 - EDGE_FRACTION)
            or (i in outermost and PAGE_NUMBER.match(lines[i].text))}


def pdf_creation_date(doc) -> date | None:
    """The day a PDF was made (its `creationDate`, "D:20210303…", as pdfTeX writes it: the day `\\today` printed)."""
    found = PDF_DATE.match((doc.metadata or {}).get("creationDate") or "")
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None
    except ValueError:
        return None


def first_page_prints(doc, day: date | None) -> bool:
    """Whether the PDF's first page shows `day` as LaTeX's `\\today` prints it ("March 3, 2021")."""
    if day is None or not doc.page_count:
        return False
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}" in " ".join(doc[0].get_text().split())


def read_pdf_pages(doc, running_heads: Iterable[str] = ()) -> list[PdfPage]:
    """Every page's tokens with running headers/footers removed: an edge line (see `edge_lines`) that is a
    page number or a class's page footer, or whose text (digits ignored) recurs at the edge of at least two pages
    and a quarter of them, or that reads as one of the `running_heads` the paper declares (`running_heads.py`)
    on a page after the first (the first page's title is not its running head)."""
    pages = [(page.rect.height, page_lines(page)) for page in doc]
    edges = [edge_lines(lines, height) for height, lines in pages]
    edge_counts: Counter[str] = Counter()
    for (height, lines), edge in zip(pages, edges):
        edge_counts.update({edge_signature(lines[i].text) for i in edge})
    recurring = {s for s, n in edge_counts.items() if n >= 2 and n >= len(pages) / 4}
    declared = {words for head in running_heads
                if len(words := tuple(tokens_of(head))) >= 2 and max(map(len, words)) >= 3}
    result = []
    for number, ((height, lines), edge) in enumerate(zip(pages, edges), 1):
        body, headers = [], []
        for i, line in enumerate(lines):
            if i in edge and (PAGE_NUMBER.match(line.text) or PAGE_FOOTER.match(line.text)
                              or edge_signature(line.text) in recurring
                              or (number > 1 and tuple(tokens_of(line.text)) in declared)):
                headers.append(line)
            else:
                body.append(line)
        tokens, token_lines = line_tokens(body)
        result.append(PdfPage(number, tokens, headers, body, token_lines))
    return result


def line_tokens(lines: list[PdfLine]) -> tuple[list[str], list[int]]:
    """The lines' tokens and the line each comes from; a word broken by a line-end hyphen (`compu-` +
    `tation`) is joined again and counted on its first line, also where a submission copy's margin line number
    (lineno) stands between the two lines."""
    tokens: list[str] = []
    owners: list[int] = []
    hyphenated = False
    for index, line in enumerate(lines):
        found = tokens_of(line.text)
        if hyphenated and line.text.isdigit():
            continue
        if hyphenated and found and line.text[:1].islower():
            tokens[-1] += found.pop(0)
        tokens += found
        owners += [index] * len(found)
        text = line.text
        hyphenated = bool(tokens) and len(text) > 1 and text.endswith("-") and text[-2].isalpha()
    return tokens, owners


@dataclass
class Piece:
    """A stretch of the markdown that goes to one page, at a position in the PDF's token order; `text`, when
    set, replaces the stretch (a continued table's share of its rows)."""

    start: int
    end: int
    page: int
    position: float
    text: str | None = None

    def markdown(self, markdown: str) -> str:
        return (markdown[self.start:self.end] if self.text is None else self.text).strip()


def markdown_blocks(markdown: str) -> list[tuple[int, int, bool]]:
    """(start, end, movable) of each blank-line-separated block; floats and footnotes are movable."""
    blocks, cursor = [], 0
    for gap in list(re.finditer(r"\n[ \t]*\n", markdown)) + [None]:
        end = gap.start() if gap else len(markdown)
        if markdown[cursor:end].strip():
            blocks.append((cursor, end, bool(MOVABLE.match(markdown[cursor:end].lstrip()))))
        cursor = gap.end() if gap else end
    return blocks


def align_body(tokens: list[str], pdf_tokens: list[str]) -> list[int | None]:
    """For each markdown token, the index of the PDF token it aligns with (one monotone word alignment,
    rapidfuzz's Levenshtein opcodes over the word lists), or None."""
    matched: list[int | None] = [None] * len(tokens)
    for op in Levenshtein.opcodes(tokens, pdf_tokens):
        if op.tag == "equal":
            for offset in range(op.src_end - op.src_start):
                matched[op.src_start + offset] = op.dest_start + offset
    return matched


def body_cuts(markdown: str, spans: list[tuple[int, int]], pages_of: list[int | None], count: int) -> list[int]:
    """Markdown offsets where pages 2..count start (monotone): just after the last word matched on the page
    before, moved to the next line break when that comes before the next page's first matched word."""
    last_on: dict[int, int] = {}
    first_on: dict[int, int] = {}
    for i, page in enumerate(pages_of):
        if page is not None:
            last_on[page] = i
            first_on.setdefault(page, i)
    cuts, cursor = [], 0
    for page in range(count - 1):
        before = max((last_on[p] for p in range(page + 1) if p in last_on), default=None)
        after = min((first_on[p] for p in range(page + 1, count) if p in first_on), default=None)
        cut = cursor
        if before is not None:
            cut = spans[before][1]
            limit = spans[after][0] if after is not None else len(markdown)
            newline = markdown.find("\n", cut)
            if 0 <= newline < limit:
                cut = newline
        cuts.append(max(cut, cursor))
        cursor = cuts[-1]
    return cuts


def place_movable(text: str, near: int, pages: list[PdfPage], offsets: list[int]) -> tuple[int, float] | None:
    """The page (within two of `near`) whose text best contains the float/footnote `text`, and where on it."""
    wanted = " ".join(tokens_of(MARKDOWN_MASKS.sub(" ", text)))
    if not wanted:
        return None
    best = None
    for page in range(max(0, near - 2), min(len(pages), near + 3)):
        haystack = " ".join(pages[page].tokens)
        if not haystack:
            continue
        found = fuzz.partial_ratio_alignment(wanted, haystack)
        if found is None:
            continue
        at = found.dest_start if len(wanted) <= len(haystack) else 0
        score = found.score - abs(page - near) * 1e-3  # ties go to the nearest page
        if best is None or score > best[0]:
            best = (score, page, offsets[page] + haystack[:at].count(" "))
    if best is None or best[0] < MOVABLE_MIN_SCORE:
        return None
    return best[1], best[2] - 0.5


def find_row(row: list[str], pdf_tokens: list[str], cursor: int) -> int | None:
    """Where the row's tokens next occur in the PDF's tokens at or after `cursor`, within the gap allowed."""
    gap = TABLE_ROW_GAP if len(row) > 2 else SHORT_ROW_GAP
    for at in range(cursor, min(cursor + gap + 1, len(pdf_tokens) - len(row) + 1)):
        if pdf_tokens[at:at + len(row)] == row:
            return at
    return None


def repeated_header(rows: list[list[str]], pdf_tokens: list[str], page_start: int, at: int) -> int:
    """How many of the table's first rows the page repeats just before its first row at `at` (longtable's
    `\\endhead`); 0 if none."""
    for count in range(min(REPEATED_HEADER_ROWS, len(rows) - 1), 0, -1):
        header = [token for row in rows[:count] for token in row]
        if header and at - len(header) >= page_start and pdf_tokens[at - len(header):at] == header:
            return count
    return 0


def split_long_table(text: str, near: int, pages: list[PdfPage], offsets: list[int],
                     pdf_tokens: list[str]) -> list[tuple[str, int, float]] | None:
    """A table the PDF continues over pages (longtable, supertabular) as one table per page: (text, page,
    position) for each, the rows the page prints, after the header rows it repeats; None when the table is
    on one page (or is not a table). Rows are found in order from where its first rows are (near page
    `near`), each at the next occurrence of its words; a row not found is on its predecessor's page, and
    a page's share of one row goes to the page before (a stray match is not a page of the table)."""
    table = table_rows_of(text)
    if table is None or len(table.rows) < 4:
        return None
    start = place_movable(table.text(list(table.rows[:3])), near, pages, offsets)
    if start is None:
        return None
    rows = [tokens_of(MARKDOWN_MASKS.sub(" ", row)) for row in table.rows]
    cursor = max(0, int(start[1] + 0.5))
    found: list[int | None] = []
    for row in rows:
        at = find_row(row, pdf_tokens, cursor) if row else None
        found.append(at)
        cursor = at + len(row) if at is not None else cursor
    page_of = [start[0]] * len(rows)
    for r, at in enumerate(found):
        if at is not None:
            page_of[r] = bisect.bisect_right(offsets, at) - 1
        elif r:
            page_of[r] = page_of[r - 1]
    runs: list[tuple[int, list[int]]] = []  # (page, its rows), in order
    for r, page in enumerate(page_of):
        if runs and runs[-1][0] == page:
            runs[-1][1].append(r)
        else:
            runs.append((page, [r]))
    groups: list[tuple[int, list[int]]] = []  # a page's share of one row is a stray match: it joins the rows before
    for page, members in runs:
        if groups and len(members) == 1:
            groups[-1][1].extend(members)
        else:
            groups.append((page, members))
    if len(groups) > 1 and len(groups[0][1]) == 1:  # ... or, first, the rows after it
        first = groups.pop(0)
        groups[0] = (groups[0][0], first[1] + groups[0][1])
    if len(groups) < 2:
        return None
    result = []
    for number, (page, group) in enumerate(groups):
        first = next((found[r] for r in group if found[r] is not None), offsets[page])
        repeated = repeated_header(rows, pdf_tokens, offsets[page], first) if number else 0
        first -= sum(len(row) for row in rows[:repeated])
        share = [table.rows[r] for r in range(repeated)] + [table.rows[r] for r in group]
        result.append((table.text(share), page, first - 0.5))
    return result


def split_pieces(markdown: str, pages: list[PdfPage]) -> list[Piece]:
    """Every block of the markdown cut into pieces and placed on a page: body text by the alignment, floats
    and footnotes on the page (and at the place) where their text is found."""
    offsets, pdf_tokens, owner = [], [], []
    for index, page in enumerate(pages):
        offsets.append(len(pdf_tokens))
        pdf_tokens += page.tokens
        owner += [index] * len(page.tokens)
    blocks = markdown_blocks(markdown)
    movable = [(s, e) for s, e, m in blocks if m]
    masked = list(markdown)
    for s, e in movable:
        masked[s:e] = " " * (e - s)
    tokens, spans = markdown_tokens("".join(masked))
    matched = align_body(tokens, pdf_tokens)
    pages_of = [owner[m] if m is not None else None for m in matched]
    cuts = [0] + body_cuts(markdown, spans, pages_of, len(pages)) + [len(markdown)]
    pieces: list[Piece] = []
    floats: list[Piece] = []
    token = 0
    last_position = -1.0
    for start, end, is_movable in blocks:
        if is_movable:
            continue
        for page in range(len(pages)):
            s, e = max(start, cuts[page]), min(end, cuts[page + 1])
            if s >= e or not markdown[s:e].strip():
                continue
            while token < len(spans) and spans[token][1] <= s:
                token += 1
            first = next((matched[t] for t in range(token, len(spans)) if spans[t][0] < e and matched[t] is not None),
                         None)
            position = float(first) if first is not None else max(last_position, float(offsets[page])) + 1e-3
            last_position = position
            pieces.append(Piece(s, e, page, position))
    for start, end, _ in [b for b in blocks if b[2]]:
        before = [p for p in pieces if p.start < start]
        near = before[-1].page if before else 0
        placed = place_movable(markdown[start:end], near, pages, offsets)
        if placed is None:
            anchor = before[-1].position if before else -1.0
            placed = (near, anchor + 1e-6)
        continued = split_long_table(markdown[start:end], near, pages, offsets, pdf_tokens)
        if continued:
            floats += [Piece(start, end, page, position, text) for text, page, position in continued]
        else:
            floats.append(Piece(start, end, placed[0], placed[1]))
    return cut_at_floats(pieces, floats, spans, matched) + floats


def cut_at_floats(body: list[Piece], floats: list[Piece], spans: list[tuple[int, int]],
                  matched: list[int | None]) -> list[Piece]:
    """The body pieces, each cut where the PDF sets a float or footnote inside its text (a paragraph going on
    in the next column under a figure at its top, a footnote ending a column, a `[h]` float after a line):
    the part after the float follows it, in the PDF's reading order. A cut falls before the first word the
    PDF prints after the float."""
    starts = [span[0] for span in spans]
    for placed in sorted(floats, key=lambda piece: piece.position):
        for index, piece in enumerate(body):
            if piece.page != placed.page or piece.position > placed.position:
                continue
            tokens = range(bisect.bisect_left(starts, piece.start), bisect.bisect_left(starts, piece.end))
            after = next((t for t in tokens if matched[t] is not None and matched[t] > placed.position), None)
            if after is None or spans[after][0] <= piece.start:
                continue
            cut = spans[after][0]
            body[index:index + 1] = [Piece(piece.start, cut, piece.page, piece.position),
                                     Piece(cut, piece.end, piece.page, float(matched[after]))]
            break
    return body


def page_score(markdown: str, page: PdfPage) -> float:
    md_text = " ".join(markdown_tokens(markdown)[0])
    pdf_text = " ".join(page.tokens)
    if not md_text and not pdf_text:
        return 0.0
    return 1.0 - Levenshtein.normalized_distance(md_text, pdf_text)


def split_markdown_into_pages(markdown: str, doc, threshold: float = 0.9,
                              pages: list[PdfPage] | None = None, running_heads: Iterable[str] = ()) -> list[PageSplit]:
    """One `PageSplit` per PDF page: its markdown (pieces in the PDF's order), its score and whether it is
    kept (and why not). Every piece of the markdown lands on exactly one page (a continued table's header
    rows also on each page that repeats them). `pages`: the document's `read_pdf_pages`, when the caller has
    them already; else read with the paper's declared `running_heads`."""
    pages = read_pdf_pages(doc, running_heads) if pages is None else pages
    pieces = split_pieces(markdown, pages)
    result = []
    for index, page in enumerate(pages):
        mine = sorted((p for p in pieces if p.page == index), key=lambda p: (p.position, p.start))
        share = "\n\n".join(p.markdown(markdown) for p in mine)
        score = page_score(share, page)
        reason = None
        if not page.tokens:
            reason = "the PDF page has no text"
        elif not share:
            reason = "no markdown matched this page"
        elif UNRESOLVED.search(share):
            reason = "unresolved reference (??) on the page"
        elif score < threshold:
            reason = f"score {score:.3f} below the threshold {threshold:g}"
        result.append(PageSplit(page.number, share, round(score, 4), reason is None, reason, page))
    return result
