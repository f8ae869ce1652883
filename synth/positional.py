"""Positional questions about a page with word boxes: region -> text, text -> region, point -> text, colour -> text.

Pure and seeded (no Ray, no I/O): `make_positional_samples(image, words, lines, rng)` turns one page (its
word and line boxes in pixels, as OCR and doc2md records carry them) into structured items whose
coordinates are integers 0-1000 (x by width, y by height). Colour questions come with a copy of the image
with red/green/blue rectangles drawn on it. No prompts here: `mixtures.tasks` renders the items.

An item is asked only when its answer is unambiguous: a region that a word straddles, a phrase that occurs
twice on the page, or a point that falls in two lines' boxes is never asked.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from PIL import Image, ImageDraw

KINDS = ("region_to_text", "text_to_region", "point_to_text", "colour_to_text")
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
SCALE = 1000  # normalised coordinates run 0..SCALE
ATTEMPTS = 24  # candidates tried per wanted item before a kind gives up on a page
MAX_PHRASE_WORDS = 5
MAX_REGION_LINES = 3
MAX_COLOUR_BOXES = 3


class PositionalError(ValueError):
    """The page's words or lines are malformed (names the word or line and what is wrong)."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (x1, y1, x2, y2), closed on every side."""

    x1: float
    y1: float
    x2: float
    y2: float

    def inside(self, other: Box) -> bool:
        return other.x1 <= self.x1 and other.y1 <= self.y1 and self.x2 <= other.x2 and self.y2 <= other.y2

    def touches(self, other: Box) -> bool:
        return self.x1 <= other.x2 and other.x1 <= self.x2 and self.y1 <= other.y2 and other.y1 <= self.y2

    def holds(self, x: float, y: float) -> bool:
        return self.x1 <= x <= self.x2 and self.y1 <= y <= self.y2

    def grown(self, dx: float, dy: float) -> Box:
        return Box(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def scaled(self, sx: float, sy: float) -> Box:
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)


def union(boxes: Sequence[Box]) -> Box:
    return Box(min(b.x1 for b in boxes), min(b.y1 for b in boxes), max(b.x2 for b in boxes), max(b.y2 for b in boxes))


@dataclass(frozen=True)
class Word:
    text: str
    box: Box  # pixels, clamped to the image
    norm: Box  # the same box on the 0-1000 scale (floats)
    line: int
    position: int  # where it stands in its line's words


@dataclass(frozen=True)
class Line:
    text: str
    words: tuple[int, ...]  # word indices, left to right
    box: Box  # pixels: the record's line box joined with its words' boxes
    norm: Box
    spans: tuple[tuple[int, int], ...] | None  # where each word sits in `text`; None when it cannot be found


@dataclass(frozen=True)
class Page:
    """A page's words and lines in reading order (lines in the order given, words within a line left to right)."""

    width: int
    height: int
    words: tuple[Word, ...]
    lines: tuple[Line, ...]

    @cached_property
    def word_height(self) -> float:
        """The median word height in pixels: the unit for region padding."""
        return statistics.median(w.box.y2 - w.box.y1 for w in self.words)

    def line_text(self, line: int, first: int, last: int) -> str:
        """The text of words `first..last` (positions within line `line`), as the line spells it."""
        item = self.lines[line]
        if first == 0 and last == len(item.words) - 1:
            return item.text
        if item.spans is not None:
            return item.text[item.spans[first][0]:item.spans[last][1]]
        return " ".join(self.words[w].text for w in item.words[first:last + 1])

    def normalised(self, box: Box) -> Box:
        return box.scaled(SCALE / self.width, SCALE / self.height)

    def pixels(self, region: Sequence[int]) -> tuple[int, int, int, int]:
        """The pixel rectangle (inclusive) that covers a 0-1000 region: what a colour outline is drawn on."""
        x1, y1, x2, y2 = region
        return (math.floor(x1 * self.width / SCALE), math.floor(y1 * self.height / SCALE),
                min(self.width - 1, math.ceil(x2 * self.width / SCALE)),
                min(self.height - 1, math.ceil(y2 * self.height / SCALE)))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_box(item: dict[str, Any], where: str, width: int, height: int) -> Box:
    """`item["box"]` ([x1, y1, x2, y2]) or else the bounds of `item["quad"]`, clamped to the image."""
    box, quad = item.get("box"), item.get("quad")
    if isinstance(box, (list, tuple)) and len(box) == 4 and all(map(is_number, box)):
        x1, y1, x2, y2 = box
    elif isinstance(quad, (list, tuple)) and quad and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(map(is_number, p)) for p in quad):
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
    else:
        raise PositionalError(f"{where} needs a 'box' [x1, y1, x2, y2] or a 'quad' of [x, y] points, "
                              f"got {str(box if box is not None else quad)[:80]}")
    if x2 < x1 or y2 < y1:
        raise PositionalError(f"{where} box {[x1, y1, x2, y2]} has x2 < x1 or y2 < y1")
    clamped = Box(max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))
    if clamped.x2 < clamped.x1 or clamped.y2 < clamped.y1:
        raise PositionalError(f"{where} box {[x1, y1, x2, y2]} lies outside the {width}x{height} image")
    return clamped


def word_spans(text: str, words: Sequence[str]) -> tuple[tuple[int, int], ...] | None:
    """Where each word occurs in the line text, left to right; None when one is not found in order."""
    spans, cursor = [], 0
    for word in words:
        start = text.find(word, cursor)
        if start < 0:
            return None
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return tuple(spans)


def read_page(width: int, height: int, words: Any, lines: Any = None) -> Page:
    """A `Page` from a record's `words` and `lines` (pixel boxes); without `lines`, words group by their
    `line` index. Every word must belong to exactly one line. Raises `PositionalError` naming what is wrong."""
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise PositionalError(f"image size {width}x{height} is not positive")
    if not isinstance(words, list) or not words:
        raise PositionalError("'words' must be a non-empty list")
    texts, boxes = [], []
    for i, word in enumerate(words):
        if not isinstance(word, dict) or not isinstance(word.get("text"), str) or not word["text"].strip():
            raise PositionalError(f"words[{i}] needs a non-empty 'text', got {str(word)[:80]}")
        texts.append(word["text"])
        boxes.append(read_box(word, f"words[{i}]", width, height))
    if lines is None:
        grouped: dict[int, list[int]] = {}
        for i, word in enumerate(words):
            if not isinstance(word.get("line"), int) or isinstance(word["line"], bool):
                raise PositionalError(f"words[{i}] has no 'line' index and the record has no 'lines'")
            grouped.setdefault(word["line"], []).append(i)
        lines = [{"words": grouped[k]} for k in sorted(grouped)]
    if not isinstance(lines, list) or not lines:
        raise PositionalError("'lines' must be a non-empty list")
    line_of, position = [-1] * len(words), [0] * len(words)
    parsed: list[tuple[str, tuple[int, ...], Box]] = []
    for n, line in enumerate(lines):
        members = line.get("words") if isinstance(line, dict) else None
        if not isinstance(members, list) or not members or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(words) for i in members):
            raise PositionalError(f"lines[{n}] needs 'words', a non-empty list of word indices, got {str(line)[:80]}")
        for p, i in enumerate(members):
            if line_of[i] >= 0:
                raise PositionalError(f"words[{i}] belongs to lines[{line_of[i]}] and lines[{n}]")
            line_of[i], position[i] = n, p
        text = line.get("text")
        if text is None:
            text = " ".join(texts[i] for i in members)
        if not isinstance(text, str) or not text.strip():
            raise PositionalError(f"lines[{n}] 'text' must be a non-empty text, got {text!r}")
        box = union([boxes[i] for i in members])
        if line.get("box") is not None or line.get("quad") is not None:
            box = union([box, read_box(line, f"lines[{n}]", width, height)])
        parsed.append((text, tuple(members), box))
    orphans = [i for i, n in enumerate(line_of) if n < 0]
    if orphans:
        raise PositionalError(f"words {orphans[:5]} belong to no line")
    sx, sy = SCALE / width, SCALE / height
    page_words = tuple(Word(t, b, b.scaled(sx, sy), n, p) for t, b, n, p in zip(texts, boxes, line_of, position))
    page_lines = tuple(Line(text, members, box, box.scaled(sx, sy), word_spans(text, [texts[i] for i in members]))
                       for text, members, box in parsed)
    return Page(width, height, page_words, page_lines)


def outward(norm: Box) -> list[int]:
    """The smallest 0-1000 integer box that contains `norm`."""
    return [max(0, math.floor(norm.x1)), max(0, math.floor(norm.y1)),
            min(SCALE, math.ceil(norm.x2)), min(SCALE, math.ceil(norm.y2))]


def region_text(page: Page, region: Sequence[int]) -> str | None:
    """The text of the words whose boxes lie inside `region` (0-1000), lines in reading order joined by
    "\\n"; None when a word straddles the border, nothing is inside, or a line's inside words skip one."""
    area = Box(*region)
    inside: dict[int, list[int]] = {}
    for word in page.words:
        if word.norm.inside(area):
            inside.setdefault(word.line, []).append(word.position)
        elif word.norm.touches(area):
            return None
    if not inside:
        return None
    texts = []
    for line in sorted(inside):
        positions = sorted(inside[line])
        if positions != list(range(positions[0], positions[-1] + 1)):
            return None
        texts.append(page.line_text(line, positions[0], positions[-1]))
    return "\n".join(texts)


def pick_words(page: Page, rng: random.Random) -> list[int]:
    """Consecutive words: a phrase within one line, or one to three whole lines in reading order."""
    if rng.random() < 0.5:
        line = page.lines[rng.randrange(len(page.lines))]
        length = rng.randint(1, min(MAX_PHRASE_WORDS, len(line.words)))
        start = rng.randint(0, len(line.words) - length)
        return list(line.words[start:start + length])
    start = rng.randrange(len(page.lines))
    count = rng.randint(1, min(MAX_REGION_LINES, len(page.lines) - start))
    return [w for line in page.lines[start:start + count] for w in line.words]


def padded_region(page: Page, words: list[int], pad: float) -> list[int]:
    """The 0-1000 region around `words`, `pad` pixels beyond their boxes on every side."""
    return outward(page.normalised(union([page.words[w].box for w in words]).grown(pad, pad)))


def region_to_text(page: Page, rng: random.Random) -> dict[str, Any] | None:
    words = pick_words(page, rng)
    for pad in (rng.uniform(0, 0.6 * page.word_height), 0.0):
        region = padded_region(page, words, pad)
        text = region_text(page, region)
        if text is not None:
            return {"kind": "region_to_text", "region": region, "text": text}
    return None


def occurrences(page: Page, text: str) -> int:
    wanted = text.casefold()
    return sum(line.text.casefold().count(wanted) for line in page.lines)


def text_to_region(page: Page, rng: random.Random) -> dict[str, Any] | None:
    """A phrase (or a whole line) that occurs once on the page, and the tight box around its words."""
    line_index = rng.randrange(len(page.lines))
    line = page.lines[line_index]
    if rng.random() < 0.5:
        first, last = 0, len(line.words) - 1
    else:
        length = rng.randint(1, min(MAX_PHRASE_WORDS, len(line.words)))
        first = rng.randint(0, len(line.words) - length)
        last = first + length - 1
    text = page.line_text(line_index, first, last).strip()
    if not any(c.isalnum() for c in text) or occurrences(page, text) != 1:
        return None
    region = outward(union([page.words[w].norm for w in line.words[first:last + 1]]))
    return {"kind": "text_to_region", "text": text, "region": region}


def point_to_text(page: Page, rng: random.Random) -> dict[str, Any] | None:
    """An integer point on one of a line's words that lies in no other line's box, and that line's text."""
    line_index = rng.randrange(len(page.lines))
    line = page.lines[line_index]
    box = page.words[rng.choice(line.words)].norm
    xs, ys = (math.ceil(box.x1), math.floor(box.x2)), (math.ceil(box.y1), math.floor(box.y2))
    if xs[0] > xs[1] or ys[0] > ys[1]:
        return None
    x, y = rng.randint(*xs), rng.randint(*ys)
    if any(other.norm.holds(x, y) for n, other in enumerate(page.lines) if n != line_index):
        return None
    return {"kind": "point_to_text", "point": [x, y], "text": line.text}


def outline_width(page: Page) -> int:
    return max(2, round(min(page.width, page.height) / 250))


def colour_box(page: Page, rng: random.Random, width: int,
               taken: list[tuple[int, int, int, int]]) -> tuple[list[int], tuple[int, int, int, int], str] | None:
    """A region for a colour rectangle and its text: no word touches its outline (drawn `width` pixels
    inward on `page.pixels(region)`), and it keeps clear of the rectangles already `taken`."""
    words = pick_words(page, rng)
    for pad in (width + 2 + rng.uniform(0, 0.4 * page.word_height), width + 2.0):
        region = padded_region(page, words, pad)
        text = region_text(page, region)
        if text is None:
            continue
        rect = page.pixels(region)
        x1, y1, x2, y2 = rect
        ring = Box(x1 - 1, y1 - 1, x2 + 1, y2 + 1)
        clear = Box(x1 + width + 1, y1 + width + 1, x2 - width, y2 - width)
        inside = Box(*region)
        if not all(w.box.inside(clear) if w.norm.inside(inside) else not w.box.touches(ring) for w in page.words):
            continue
        if any(Box(*rect).grown(2 * width, 2 * width).touches(Box(*other)) for other in taken):
            continue
        return region, rect, text
    return None


def colour_to_text(image: Image.Image, page: Page, rng: random.Random,
                   questions: int) -> tuple[Image.Image, list[dict[str, Any]], list[dict[str, Any]]] | None:
    """Up to three rectangles in distinct colours drawn on a copy of `image`; items ask for the text in
    `questions` of them. Returns (drawn image, items, drawn boxes) or None when no rectangle fits."""
    colours = rng.sample(list(COLOURS), rng.randint(1, MAX_COLOUR_BOXES))
    width = outline_width(page)
    boxes, taken = [], []
    for colour in colours:
        for _ in range(ATTEMPTS):
            found = colour_box(page, rng, width, taken)
            if found is not None:
                region, rect, text = found
                boxes.append({"colour": colour, "region": region, "text": text})
                taken.append(rect)
                break
    if not boxes:
        return None
    drawn = image.convert("RGB")
    draw = ImageDraw.Draw(drawn)
    for box, rect in zip(boxes, taken):
        draw.rectangle(rect, outline=COLOURS[box["colour"]], width=width)
    asked = rng.sample(boxes, min(questions, len(boxes)))
    items = [{"kind": "colour_to_text", "colour": b["colour"], "text": b["text"], "region": b["region"]} for b in asked]
    return drawn, items, [{"colour": b["colour"], "region": b["region"]} for b in boxes]


ITEM_MAKERS = {"region_to_text": region_to_text, "text_to_region": text_to_region, "point_to_text": point_to_text}
UNDRAWN_KINDS = tuple(ITEM_MAKERS)  # the kinds asked about the page image as it is


def positional_items(page: Page, kind: str, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Up to `count` items of a kind that needs no drawing (region/text/point), no two with the same text."""
    make = ITEM_MAKERS[kind]
    items: list[dict[str, Any]] = []
    for _ in range(ATTEMPTS * count):
        item = make(page, rng)
        if item is not None and all(item["text"] != other["text"] for other in items):
            items.append(item)
            if len(items) == count:
                break
    return items


@dataclass
class PositionalSample:
    kind: str
    items: list[dict[str, Any]]
    image: Image.Image | None = None  # the drawn copy (colour_to_text); None: the page image as it is
    drawn: list[dict[str, Any]] | None = None  # every rectangle drawn: {"colour", "region"}


def make_positional_sample(image: Image.Image | None, page: Page, rng: random.Random, kinds: Sequence[str] = KINDS,
                           questions: int = 1) -> PositionalSample | None:
    """One sample of a kind drawn from `kinds` (the others, in a random order, when the page offers it
    nothing), with up to `questions` items; None when no kind fits the page. `image` is only drawn on
    (colour_to_text): it may be None when `kinds` are all `UNDRAWN_KINDS`."""
    for kind in rng.sample(list(kinds), len(kinds)):
        if kind == "colour_to_text":
            made = colour_to_text(image, page, rng, questions)
            if made is not None:
                return PositionalSample(kind, made[1], made[0], made[2])
        else:
            items = positional_items(page, kind, rng, questions)
            if items:
                return PositionalSample(kind, items)
    return None


def make_positional_samples(image: Image.Image, words: Any, lines: Any, rng: random.Random, count: int = 2,
                            kinds: Sequence[str] = KINDS, questions: int = 1) -> list[PositionalSample | None]:
    """`count` samples about one page (an entry is None where no kind fits). The same rng state gives
    the same samples; raises `PositionalError` for malformed words or lines."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"positional kinds {unknown or '[]'} are not among {list(KINDS)}")
    if questions < 1:
        raise ValueError("questions per sample must be at least 1")
    page = read_page(image.width, image.height, words, lines)
    return [make_positional_sample(image, page, rng, kinds, questions) for _ in range(count)]
