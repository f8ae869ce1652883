"""Font files for the synth renderers: loading (cached per file, face and size), the face to use in a
font collection, per-character advances, and which characters a font really draws (tofu detection, and
symbol fonts, whose letters are other characters' glyphs).

Reads font files and nothing else. Everything here is a pure function of the file's bytes.
"""

from __future__ import annotations

import os
import re
import string
import struct
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Sequence

import numpy as np
from fontTools import agl
from fontTools.ttLib import TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont

from synth.errors import SynthError

# Characters that are never drawn: whitespace (layout handles it) and control/format characters
# (zero-width joiners, soft hyphens, BOMs), which the text readers drop.
INVISIBLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")

# Characters that no font can set right in PIL's basic layout (no bidi, no shaping), which the renderers
# use: right-to-left scripts (their words would come out reversed) and scripts whose letters join,
# reorder or stack (Syriac, Thaana, N'Ko, the Indic scripts and Sinhala, Tibetan, Myanmar, Khmer,
# Mongolian, Hangul's conjoining jamo). They count as missing from every font.
_NEEDS_SHAPING = re.compile("[\u0700-\u07ff\u0900-\u0dff\u0f00-\u109f\u1100-\u11ff\u1780-\u18af"
                            "\ua960-\ua97f\ud7b0-\ud7ff]")
_RIGHT_TO_LEFT = frozenset(("R", "AL"))
_PROBE_SIZE = 24
_WIDTH_CACHE = 20000  # words whose width a SizedFont keeps
# A private-use code point that no text font maps: it renders as the font's .notdef glyph.
_UNMAPPED = "\U0010fffd"
# A collection (.ttc) holds several faces; for Chinese text the Simplified Chinese face is the one wanted,
# and its Latin glyphs are the same as the other faces', so it is preferred for every language.
_PREFERRED_FACE = re.compile(r"\bSC\b")


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int
    name: str  # family and style, e.g. "Noto Sans CJK SC Regular"


def _open_error(path: str, err: Exception) -> SynthError:
    if not os.path.exists(path):
        return SynthError(f"font file {path!r} does not exist")
    return SynthError(f"font file {path!r} cannot be read as a font: {err}")


@lru_cache(maxsize=256)
def font_face(path: str) -> FontFace:
    """The face of `path` to render with: index 0, or the first Simplified Chinese face of a collection."""
    try:
        first = ImageFont.truetype(path, _PROBE_SIZE)
    except OSError as err:
        raise _open_error(path, err) from err
    faces = [first]
    if _is_collection(path):
        index = 1
        while True:
            try:
                faces.append(ImageFont.truetype(path, _PROBE_SIZE, index=index))
            except OSError:
                break
            index += 1
    names = [" ".join(part for part in face.getname() if part) for face in faces]
    preferred = [i for i, face in enumerate(faces) if _PREFERRED_FACE.search(face.getname()[0] or "")]
    index = preferred[0] if preferred else 0
    return FontFace(path, index, names[index])


def _is_collection(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"ttcf"


def _has_kern_table(face: FontFace) -> bool:
    """Whether the face has a legacy `kern` table, the only kerning PIL's basic layout applies.

    Fonts that are not sfnt (Type 1) report True, so kerning is measured for them rather than assumed 0.
    """
    with open(face.path, "rb") as f:
        head = f.read(12)
        if head[:4] == b"ttcf":
            f.seek(12 + 4 * face.index)
            (offset,) = struct.unpack(">I", f.read(4))
            f.seek(offset)
            head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
            return True
        (num_tables,) = struct.unpack(">H", head[4:6])
        records = f.read(16 * num_tables)
    return any(records[i : i + 4] == b"kern" for i in range(0, len(records), 16))


# Directions near each axis (0, +-4, +-8 degrees): the support points there keep the bounds of a slightly
# rotated glyph as tight as its ink's, where the rotated corners of its box would overshoot.
_SUPPORT_ANGLES = np.radians([axis + tilt for axis in (0, 90, 180, 270) for tilt in (-8, -4, 0, 4, 8)])
_SUPPORT_DIRECTIONS = np.stack([np.cos(_SUPPORT_ANGLES), np.sin(_SUPPORT_ANGLES)])
SUPPORT_POINTS = len(_SUPPORT_ANGLES)


def _support_points(inks: list[np.ndarray]) -> np.ndarray:
    """(n, SUPPORT_POINTS, 2): for each tight boolean crop (pixel (x, y) covers [x, x+1) x [y, y+1)), an
    ink corner furthest along each support direction. Only a row's end corners can be extreme: its right
    end for a direction pointing right, its bottom edge for one pointing down. The crops are padded into
    one array and searched together."""
    height, width = max(ink.shape[0] for ink in inks), max(ink.shape[1] for ink in inks)
    padded = np.zeros((len(inks), height, width), dtype=bool)
    for k, ink in enumerate(inks):
        padded[k, : ink.shape[0], : ink.shape[1]] = ink
    inked = padded.any(axis=2)
    left = padded.argmax(axis=2)
    right = width - padded[:, :, ::-1].argmax(axis=2)
    dx, dy = _SUPPORT_DIRECTIONS
    xs = np.where(dx > 0, right[..., None], left[..., None])  # (n, rows, directions)
    ys = np.arange(height)[:, None] + (dy > 0)  # (rows, directions)
    scores = xs * dx + ys * dy
    scores[~inked] = -np.inf
    best = scores.argmax(axis=1)  # (n, directions): the row
    return np.stack([np.take_along_axis(xs, best[:, None, :], axis=1)[:, 0], ys[best, np.arange(len(dx))]], axis=2)


class SizedFont:
    """One face at one pixel size, with the per-character measures layout and targets need, cached.

    Glyph ink is measured once per character: `glyph_boxes[row]` is the tight ink box (x0, y0, x1, y1)
    of the glyph drawn with its pen at (0, 0), anchor "la", and `glyph_support[row]` its support points
    (where its ink reaches furthest in SUPPORT_POINTS directions near the axes).
    """

    def __init__(self, face: FontFace, size: int):
        self.face = face
        self.size = size
        self.ascent, self.descent = self.font.getmetrics()
        self._kerned = _has_kern_table(face)
        self._advance: dict[str, float] = {}
        self._kerning: dict[str, float] = {}
        self._width: dict[str, float] = {}
        self._glyph_row: dict[str, int] = {}  # -1: the character has no ink
        self.glyph_boxes = np.zeros((0, 4), dtype=np.int32)
        self.glyph_support = np.zeros((0, SUPPORT_POINTS, 2), dtype=np.int32)

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return _pil_font(self.face, self.size)

    def advance(self, char: str) -> float:
        value = self._advance.get(char)
        if value is None:
            value = self._advance[char] = self.font.getlength(char)
        return value

    def kerning(self, pair: str) -> float:
        value = self._kerning.get(pair)
        if value is None:
            value = self._kerning[pair] = self.font.getlength(pair) - self.advance(pair[0]) - self.advance(pair[1])
        return value

    def _steps(self, text: str) -> list[float]:
        """Pen advance from each character to the next (kerning with the next one included)."""
        advance = self._advance
        for char in set(text).difference(advance):
            self.advance(char)
        steps = [advance[char] for char in text]
        if self._kerned and len(text) > 1:
            kerning = self._kerning
            pairs = [text[k : k + 2] for k in range(len(text) - 1)]
            for pair in set(pairs).difference(kerning):
                self.kerning(pair)
            steps = [step + kerning[pair] for step, pair in zip(steps, pairs)] + steps[-1:]
        return steps

    def width(self, text: str) -> float:
        """The pen advance of `text` (what `font.getlength` returns with the basic layout), cached per
        text: layout asks for the same words again and again."""
        value = self._width.get(text)
        if value is None:
            if len(self._width) >= _WIDTH_CACHE:
                self._width.clear()
            value = self._width[text] = sum(self._steps(text))
        return value

    def pens(self, text: str) -> list[float]:
        """Where each character's glyph is drawn (pen x, from 0), and the pen after the last: len + 1 values."""
        return [0.0, *accumulate(self._steps(text))]

    def glyph_rows(self, text: str) -> list[int]:
        """The glyph-table row of each character of `text` (-1: no ink), measuring new characters."""
        rows = self._glyph_row
        new = sorted(set(text).difference(rows))
        if new:
            self._measure(new)
        return [rows[char] for char in text]

    def _measure(self, chars: list[str]) -> None:
        """Each glyph's ink as ImageDraw.text draws it at an integer pen: the bitmap FreeType renders
        for the character alone (`getmask2`, anchor "la"), at the offset it reports. The tight crops
        are laid side by side on one sheet, read into numpy at once."""
        boxes, crops = [], []
        for char in chars:
            mask, (dx, dy) = self.font.getmask2(char, "L")
            bitmap = Image.Image()._new(mask)
            box = bitmap.getbbox()
            if box is None:
                self._glyph_row[char] = -1
                continue
            self._glyph_row[char] = len(self.glyph_boxes) + len(boxes)
            boxes.append([box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy])
            crops.append(bitmap.crop(box))
        if not boxes:
            return
        sheet = Image.new("L", (sum(crop.width for crop in crops), max(crop.height for crop in crops)), 0)
        lefts = [0, *accumulate(crop.width for crop in crops)]
        for crop, left in zip(crops, lefts):
            sheet.paste(crop, (left, 0))
        inked = np.asarray(sheet) > 0
        inks = [inked[: crop.height, left : left + crop.width] for crop, left in zip(crops, lefts)]
        origins = np.array(boxes, dtype=np.int32)
        supports = _support_points(inks) + origins[:, None, :2]
        self.glyph_boxes = np.concatenate([self.glyph_boxes, origins])
        self.glyph_support = np.concatenate([self.glyph_support, supports.astype(np.int32)])


@lru_cache(maxsize=32)
def _pil_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    """PIL font objects, few (one holds its file in memory: about 2 MB for a CJK collection)."""
    return ImageFont.truetype(face.path, size, index=face.index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=1024)
def sized_font(path: str, size: int) -> SizedFont:
    """The cached `SizedFont` for a font file at a pixel size. A worker cycles through fonts x sizes;
    each keeps the measures it has made (small: tens of bytes a glyph)."""
    return SizedFont(font_face(path), size)


def is_symbol_font(face: FontFace) -> bool:
    """Whether the face draws letters as other characters, which rendering cannot tell from text: a
    symbol font (Symbol, Wingdings, URW Standard Symbols, whose "a" is an alpha). Its character map is
    symbol-encoded only, or maps most ASCII letters to glyphs named for other characters. Fonts that are
    not sfnt (Type 1) or have no character map are judged by rendering alone."""
    try:
        with TTFont(face.path, fontNumber=face.index if _is_collection(face.path) else -1, lazy=True) as font:
            names = font["cmap"].getBestCmap()  # None without a Unicode map ((3, 0) is symbol-encoded)
            if names is None:
                return any((table.platformID, table.platEncID) == (3, 0) for table in font["cmap"].tables)
            others = 0
            for letter in string.ascii_letters:
                named = agl.toUnicode(names.get(ord(letter), ""))
                others += len(named) == 1 and unicodedata.normalize("NFKC", named) != letter
    except (TTLibError, KeyError, struct.error):
        return False
    return others > len(string.ascii_letters) // 2


class Coverage:
    """Which characters a face draws with a glyph of its own, found by rendering (cached per face). A
    symbol font draws none: its glyphs stand for other characters than the text's. Characters that need
    bidi or shaping are missing from every face (see _NEEDS_SHAPING)."""

    def __init__(self, face: FontFace):
        self.face = face
        self._notdef = self._signature(_UNMAPPED)
        self.drawn: set[str] = set()  # characters known to have a glyph of their own
        self._tofu: set[str] = set()
        self._symbol = is_symbol_font(face)

    def _signature(self, char: str) -> tuple[tuple[int, int, int, int] | None, bytes]:
        canvas = Image.new("L", (3 * _PROBE_SIZE, 3 * _PROBE_SIZE), 0)
        ImageDraw.Draw(canvas).text((_PROBE_SIZE, _PROBE_SIZE), char, font=_pil_font(self.face, _PROBE_SIZE), fill=255)
        return canvas.getbbox(), canvas.tobytes()

    def missing(self, chars: set[str]) -> set[str]:
        if self._symbol:
            return set(chars)
        for char in chars - self.drawn - self._tofu:
            if unicodedata.bidirectional(char) in _RIGHT_TO_LEFT or _NEEDS_SHAPING.match(char):
                self._tofu.add(char)
                continue
            bbox, pixels = self._signature(char)
            # No ink, or exactly the .notdef glyph's ink: the font has no glyph for it (tofu).
            if bbox is None or (bbox, pixels) == self._notdef:
                self._tofu.add(char)
            else:
                self.drawn.add(char)
        return chars & self._tofu

    def draws(self, text: str) -> bool:
        """Whether the face has a glyph for every visible character of `text`."""
        return self.drawn.issuperset(text) or not self.missing(visible_chars(text))


@lru_cache(maxsize=256)
def _coverage(face: FontFace) -> Coverage:
    return Coverage(face)


def coverage(path: str) -> Coverage:
    """Which characters the font at `path` draws (cached per face)."""
    return _coverage(font_face(path))


def visible_chars(text: str) -> set[str]:
    return {char for char in set(text) if not INVISIBLE.match(char)}


def missing_chars(path: str, chars: set[str]) -> list[str]:
    """The characters of `chars` that the font at `path` cannot draw, sorted."""
    return sorted(coverage(path).missing(chars))


def usable_fonts(fonts: Sequence[str], text: str) -> list[str]:
    """The fonts (in the given order) that have a glyph for every visible character of `text`.

    Raises SynthError for a font file that is missing or unreadable.
    """
    chars = visible_chars(text)
    return [path for path in fonts if not missing_chars(path, chars)]
