"""Text for a synthetic page: corpus tokens read from a seeded offset, broken into lines and stacked into
columns and paragraphs the way SynthDoG's GridStack does (stacks of 1-3 columns, aligned, spaced).

Pure: a layout is a function of (corpus, font measures, random stream). Coordinates are document pixels.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from synth.fonts import INVISIBLE, SizedFont

# Characters that East Asian typography sets one per cell (CJK ideographs, kana, hangul, full-width
# forms and punctuation): each is a word of its own and a line may break before any of them.
_WIDE = (
    "\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3"
    "\uf900-\ufaff\ufe10-\ufe19\ufe30-\ufe6f\uff00-\uff60\uffe0-\uffe6\U00020000-\U0002fffd\U00030000-\U0003fffd"
)
_TOKEN = {
    "en": re.compile(r"\S+"),
    # One wide character, or a run of other non-space characters (a Latin word, a number, "3.11,").
    "zh": re.compile(rf"(?:(?!\s)[{_WIDE}])|[^\s{_WIDE}]+"),
}
_WIDE_CHAR = re.compile(f"[{_WIDE}]")
# Full-width punctuation that must not start a line (kinsoku): it hangs at the end of the line before.
_CLOSING = frozenset("，。、；：？！）」』”’》〉】〕…")
# A blank line separates paragraphs; a single line break is just a space (hard-wrapped corpora).
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_ALIGNMENTS = {"en": ("left", "justify", "center", "right"), "zh": ("left", "center", "right")}
_ALIGN_WEIGHTS = {"en": (0.45, 0.35, 0.1, 0.1), "zh": (0.7, 0.15, 0.15)}
_CHUNK = 1 << 15  # corpus characters read at a time


@dataclass(slots=True)
class Token:
    text: str
    start: int  # corpus offsets of the token
    end: int
    space_before: bool  # whitespace separated it from the previous token
    new_paragraph: bool  # a blank line (or the corpus wrapping around) precedes it


class Corpus(Protocol):
    """What the renderers read text from: a `str`, or anything with a length and str slices (a corpus
    memory-mapped from disk, `pipelines.corpus_store`), read a chunk at a time."""

    def __len__(self) -> int: ...

    def __getitem__(self, part: slice) -> str: ...


def _matches(corpus: Corpus, start: int, pattern: re.Pattern, chunk: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, text) of each match of `pattern` in corpus[start:], reading `chunk` characters at a
    time. A match that reaches a chunk's end is read again from its start with the next chunk (a token
    longer than a whole chunk is cut there)."""
    size = len(corpus)
    position = start
    while position < size:
        stop = min(size, position + chunk)
        text = corpus[position:stop]
        resume = stop
        for match in pattern.finditer(text):
            if match.end() == len(text) and stop < size and match.start() > 0:
                resume = position + match.start()
                break
            yield position + match.start(), position + match.end(), match.group()
        position = resume


def iter_tokens(corpus: Corpus, offset: int, lang: str, chunk: int = _CHUNK) -> Iterator[Token]:
    """Tokens from `offset` on, wrapping around the corpus end for as long as they are asked for.

    An offset inside a token (an English word, a Latin run in Chinese text) moves to that token's end.
    Control and format characters are dropped. Ends only if the corpus has nothing drawable.
    """
    pattern = _TOKEN[lang]
    inside = pattern.match(corpus[offset - 1 : offset - 1 + chunk]) if offset > 0 else None
    if inside is not None and offset - 1 + inside.end() > offset:
        offset = offset - 1 + inside.end()
    position = offset
    starts_paragraph = True
    found = False
    wraps = 0
    previous = ""
    while True:
        previous_end = position
        for start, end, text in _matches(corpus, position, pattern, chunk):
            gap = corpus[previous_end:start]
            previous_end = end
            if INVISIBLE.search(text):
                text = INVISIBLE.sub("", text)
            starts_paragraph = starts_paragraph or ("\n" in gap and _PARAGRAPH_BREAK.search(gap) is not None)
            if not text or (starts_paragraph and text in _CLOSING):
                continue  # nothing drawable, or a closing mark that would open a paragraph
            found = True
            space = bool(gap)
            if space and lang == "zh" and "\n" in gap and (_WIDE_CHAR.match(text) or _WIDE_CHAR.match(previous[-1:])):
                space = False  # a line break next to an ideograph is no space in Chinese
            yield Token(text, start, end, space, starts_paragraph)
            starts_paragraph = False
            previous = text
        wraps += 1
        if wraps > 1 and not found:
            return  # a whole pass found nothing drawable
        position = 0
        starts_paragraph = True  # wrapping around the corpus starts a new paragraph


def _split_token(token: Token, font: SizedFont, width: float) -> tuple[Token, Token | None]:
    """The longest head of `token` that fits in `width` (at least one character), and the rest."""
    pens = font.pens(token.text)
    cut = max(1, max(i for i, pen in enumerate(pens) if pen <= width))
    if cut >= len(token.text):
        return token, None
    head = Token(token.text[:cut], token.start, token.start + cut, token.space_before, token.new_paragraph)
    tail = Token(token.text[cut:], token.start + cut, token.end, False, False)
    return head, tail


@dataclass
class LaidLine:
    """One line as it will be drawn; y is the top of its ascender line in document pixels."""

    text: str
    x: int  # where the line starts
    y: int
    words: list[tuple[int, int]]  # each word's character range in `text`
    pens: list[float]  # where each character's glyph is drawn (pen x from the line's start), then the end
    column: int
    paragraph: int
    align: str
    tokens: list[Token]
    # What one ImageDraw.text call draws: (start, end, x) = text[start:end] with its pen starting at x.
    # The whole line, or on a justified line each word.
    runs: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class Column:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in document pixels
    stack: int
    align: str


class _TokenFlow:
    """Tokens with one of look-ahead and one pushed back (the cut-off tail of an over-long token)."""

    def __init__(self, tokens: Iterator[Token]):
        self._tokens = tokens
        self._pending: Token | None = None

    def peek(self) -> Token | None:
        if self._pending is None:
            self._pending = next(self._tokens, None)
        return self._pending

    def take(self) -> Token:
        token = self.peek()
        self._pending = None
        return token

    def push_back(self, token: Token) -> None:
        self._pending = token


def _break_line(flow: _TokenFlow, font: SizedFont, width: float) -> list[Token]:
    """Greedy line filling: whole tokens while they fit, up to the next paragraph; a token wider than the
    whole line is cut (the only case where a word is split)."""
    line: list[Token] = []
    used = 0.0
    space = font.advance(" ")
    while (token := flow.peek()) is not None:
        if token.new_paragraph and line:
            break
        gap = space if (line and token.space_before) else 0.0
        need = font.width(token.text)
        if used + gap + need <= width:
            line.append(flow.take())
            used += gap + need
            continue
        if line and token.text in _CLOSING:
            line.append(flow.take())  # hangs past the edge rather than start the next line
            break
        if not line:
            head, tail = _split_token(flow.take(), font, width)
            line.append(head)
            if tail is not None:
                flow.push_back(tail)
        break
    return line


def _columns(box: tuple[int, int, int, int], font_size: int, line_height: int, columns: tuple[int, int],
             lang: str, rnd: random.Random) -> list[Column]:
    """GridStack: 1-3 stacks top to bottom, each split into 1-3 columns, each with its alignment."""
    x0, y0, x1, y1 = box
    stacks = rnd.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]
    min_height = 3 * line_height
    stacks = max(1, min(stacks, (y1 - y0 + line_height) // (min_height + line_height)))
    shares = [rnd.uniform(0.5, 1.5) for _ in range(stacks)]
    usable = (y1 - y0) - (stacks - 1) * line_height
    min_column = (8 if lang == "en" else 6) * font_size
    result: list[Column] = []
    top = y0
    for stack, share in enumerate(shares):
        height = usable * share / sum(shares)
        bottom = y1 if stack == stacks - 1 else int(top + height)
        count = rnd.randint(*columns)
        gutter = rnd.uniform(1.0, 2.5) * font_size
        while count > 1 and (x1 - x0 - (count - 1) * gutter) / count < min_column:
            count -= 1
        width = (x1 - x0 - (count - 1) * gutter) / count
        align = rnd.choices(_ALIGNMENTS[lang], weights=_ALIGN_WEIGHTS[lang])[0]
        for c in range(count):
            left = x0 + c * (width + gutter)
            result.append(Column((int(left), int(top), int(left + width), bottom), stack, align))
        top = bottom + line_height
    return result


def lay_out(tokens: Iterator[Token], font: SizedFont, box: tuple[int, int, int, int], lang: str,
            columns: tuple[int, int], line_spacing: tuple[float, float],
            rnd: random.Random) -> tuple[list[LaidLine], list[Column], dict]:
    """Flow `tokens` through a GridStack of columns inside `box`, paragraph by paragraph.

    Returns the lines in reading order (column by column, top to bottom), the columns, and the layout
    parameters drawn (for the page's meta).
    """
    size = font.size
    line_height = max(size + 1, round(size * rnd.uniform(*line_spacing)))
    paragraph_gap = round(line_height * rnd.uniform(0.0, 1.0))
    if lang == "zh":
        indent = 2 * size if rnd.random() < 0.7 else 0  # two ideographs, as Chinese typesetting does
    else:
        indent = round(size * rnd.uniform(1.0, 3.0)) if rnd.random() < 0.5 else 0
    column_list = _columns(box, size, line_height, columns, lang, rnd)
    flow = _TokenFlow(tokens)
    lines: list[LaidLine] = []
    paragraph = -1
    for index, column in enumerate(column_list):
        x0, y0, x1, y1 = column.box
        bottom = y1 if rnd.random() < 0.8 else y0 + (y1 - y0) * rnd.uniform(0.5, 1.0)
        y = y0
        while flow.peek() is not None:
            starts = flow.peek().new_paragraph
            if starts and y > y0:
                y += paragraph_gap
            if y + font.ascent + font.descent > bottom:
                break
            if starts:
                paragraph += 1
            lead = indent if starts and column.align in ("left", "justify") else 0
            taken = _break_line(flow, font, x1 - x0 - lead)
            text = taken[0].text
            words = [(0, len(text))]
            for token in taken[1:]:
                text += " " if token.space_before else ""
                words.append((len(text), len(text) + len(token.text)))
                text += token.text
            pens = font.pens(text)
            free = (x1 - x0) - pens[-1]
            x = x0 + {"left": lead, "justify": lead, "center": free / 2, "right": free}[column.align]
            lines.append(LaidLine(text, round(x), round(y), words, pens, index, paragraph, column.align, taken))
            y += line_height
    for i, line in enumerate(lines):
        last_in_paragraph = i + 1 == len(lines) or lines[i + 1].paragraph != line.paragraph
        slack = column_list[line.column].box[2] - (line.x + line.pens[-1])
        count = len(line.words)
        # Justified: spread the words to both column edges, except on a paragraph's last line or where
        # that would take more than one em between words.
        if line.align == "justify" and not last_in_paragraph and count > 1 and 0 < slack <= size * (count - 1):
            line.runs = [(start, end, line.x + math.floor(line.pens[start] + slack * k / (count - 1) + 0.5))
                         for k, (start, end) in enumerate(line.words)]
        else:
            line.runs = [(0, len(line.text), line.x)]
    params = {"line_height": line_height, "paragraph_gap": paragraph_gap, "indent": indent}
    return lines, column_list, params
