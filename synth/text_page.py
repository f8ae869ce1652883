"""SynthDoG-style synthetic text pages (English and Chinese) with their OCR targets: the text in reading
order and exact word and line boxes. `pipelines/ocr.py` calls `render_page` once per sample.

A page is a pure function of (corpus, fonts, seed, config, backgrounds): one `random.Random(seed)` drives
every choice. Order: page size -> document (the whole page, or placed on a backdrop) -> font size,
margins, text from a seeded corpus offset -> font (one per page, among those with glyphs for the text)
-> GridStack layout -> ink (whole lines) -> geometry (flat, or a mesh: perspective and/or elastic) ->
targets (boxes mapped through the geometry) -> grain, contrast, brightness, shadow -> paper and backdrop
-> ink warped, blurred and coloured in -> JPEG.
"""

from __future__ import annotations

import colorsys
import math
import os
import random
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from synth import effects, surfaces
from synth.errors import SynthError
from synth.fonts import SizedFont, coverage, font_face, missing_chars, sized_font, usable_fonts, visible_chars
from synth.geometry import MeshWarp, Translation, draw_elastic, place_document
from synth.ink import InkLayer, draw_lines, word_ink
from synth.text_layout import Corpus, LaidLine, Token, iter_tokens, lay_out

__all__ = ["GENERATOR", "GENERATOR_VERSION", "PageConfig", "RenderedPage", "SynthError", "font_choices",
           "render_page", "render_word_ink", "usable_fonts"]

GENERATOR = "docforge.synth.text_page"
GENERATOR_VERSION = "3"
LANGS = ("en", "zh")
# The share of the words from a page's offset (its first 400) that may be left out because the font lacks
# a glyph for them.
MAX_SKIPPED_WORDS = 0.05


@dataclass(frozen=True)
class PageConfig:
    """Ranges are (low, high), drawn uniformly per page; probabilities are per page."""

    lang: str = "en"  # "en" or "zh"
    short_side: tuple[int, int] = (720, 1024)  # page pixels (SynthDoG's sizes)
    aspect: tuple[float, float] = (1.0, 1.6)  # long side / short side
    columns: tuple[int, int] = (1, 3)  # per stack of the GridStack layout
    font_size: tuple[float, float] = (0.018, 0.04)  # relative to the page's short side
    effects: bool = True  # False: a flat full-page document, no warps, blur, noise, shadow or contrast
    jpeg_quality: tuple[int, int] = (50, 95)
    landscape: float = 0.5  # probability of a landscape page (and document)
    full_page: float = 0.5  # probability the document fills the page (else it lies on a backdrop)
    document_scale: tuple[float, float] = (0.75, 0.95)  # placed document's short side / page's short side
    document_aspect: tuple[float, float] = (1.2, 1.5)  # placed document's long side / short side
    margin: tuple[float, float] = (0.03, 0.1)  # each edge, relative to the document's short side
    line_spacing: tuple[float, float] = (1.2, 1.7)  # line pitch / font size
    tilt: float = 0.7  # probability a placed document is rotated and in perspective (else lies flat)
    max_rotation: float = 4.0  # degrees
    max_corner_shift: float = 0.04  # perspective: each corner moves up to this x the document's size
    elastic: float = 0.3  # probability of an elastic distortion
    elastic_strength: tuple[float, float] = (0.0005, 0.002)  # wave amplitude / page short side
    shadow: float = 0.4
    blur: float = 0.5  # defocus; motion blur has half this probability
    noise: float = 0.7  # grain on the paper and backdrop (under the text)
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # grey levels
    contrast: tuple[float, float] = (1.0, 1.4)  # drawn with probability 0.5
    brightness: tuple[float, float] = (-40.0, 10.0)  # grey levels, drawn with probability 0.5
    text_grey: tuple[int, int] = (0, 70)
    coloured_text: float = 0.2  # probability the text is a dark colour rather than grey

    def check(self) -> None:
        if self.lang not in LANGS:
            raise SynthError(f"PageConfig.lang {self.lang!r}: must be one of {LANGS}")
        for name in ("short_side", "aspect", "columns", "font_size", "jpeg_quality", "document_scale",
                     "document_aspect", "margin", "line_spacing", "elastic_strength", "noise_sigma",
                     "contrast", "brightness", "text_grey"):
            low, high = getattr(self, name)
            if low > high:
                raise SynthError(f"PageConfig.{name} {(low, high)}: low end above high end")
        if (self.columns[0] < 1 or self.short_side[0] < 64 or self.aspect[0] < 1
                or not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100):
            raise SynthError("PageConfig out of range: columns >= 1, short_side >= 64, aspect >= 1, "
                             f"jpeg_quality in 1..100 ({self})")


@dataclass
class PageTrace:
    """What the renderer did, enough to redraw any word's ink alone (tests, debugging); not a target."""

    font: SizedFont
    document_size: tuple[int, int]
    geometry: Translation | MeshWarp
    lines: list[LaidLine]
    word_at: list[tuple[int, int]]  # page word index -> (line index, word index in the line)


@dataclass
class RenderedPage:
    image: Image.Image  # final RGB image (before JPEG compression)
    jpeg: bytes  # the image as JPEG at the drawn quality: what gets stored
    text: str  # reading order: column by column, line by line, joined by "\n"
    # Page pixels. "quad": the corners of the word's (line's) tight ink box on the page, clockwise from
    # its top-left, rounded to 0.1; "box": [x1, y1, x2, y2] whole pixels enclosing its ink (tight even
    # on a rotated page), clamped to the image.
    words: list[dict]  # {"text", "quad", "box", "line"}
    # "words": page word indices; "column": the column's index in reading order (GridStack stacks top
    # to bottom, their columns left to right); "paragraph": the paragraph's index in reading order.
    lines: list[dict]  # {"text", "quad", "box", "words", "column", "paragraph"}
    meta: dict
    trace: PageTrace = field(repr=False)


def _dark_colour(config: PageConfig, rnd: random.Random) -> tuple[int, int, int]:
    grey = rnd.randint(*config.text_grey)
    if rnd.random() < config.coloured_text:
        r, g, b = colorsys.hsv_to_rgb(rnd.random(), rnd.uniform(0.5, 1.0), rnd.uniform(0.2, 0.45))
        return round(r * 255), round(g * 255), round(b * 255)
    return grey, grey, grey


def _no_font_error(tried: dict[str, list[str]]) -> SynthError:
    parts = []
    for path, missing in tried.items():
        shown = ", ".join(repr(c) for c in missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
        parts.append(f"{os.path.basename(path)} lacks {shown}")
    return SynthError("no font can draw this text: " + "; ".join(parts))


def font_choices(fonts: Sequence[str], tokens: Sequence[Token]) -> list[str]:
    """The fonts a page of `tokens` may be drawn in.

    Fonts with a glyph for every character if there are any; else those that lack glyphs only in at most
    MAX_SKIPPED_WORDS of the words, which are then left out of the page (real corpora carry a few words
    in scripts, symbols or emoji that no font of the set draws). Raises SynthError, naming what each font
    lacks, when there is none, and for a missing or unreadable font file.
    """
    for path in fonts:
        font_face(path)  # a missing or unreadable file is an error even if another font would do
    chars = visible_chars("".join(token.text for token in tokens))
    lacks = {path: missing_chars(path, chars) for path in fonts}
    complete = [path for path in fonts if not lacks[path]]
    if complete:
        return complete
    limit = MAX_SKIPPED_WORDS * len(tokens)
    lacking = {path: set(missing) for path, missing in lacks.items()}
    partial = [path for path in fonts if sum(not lacking[path].isdisjoint(token.text) for token in tokens) <= limit]
    if not partial:
        raise _no_font_error(lacks)
    return partial


def _drawable(tokens: Iterator[Token], path: str, skipped: list[tuple[Token, int]]) -> Iterator[Token]:
    """`tokens` without those the font at `path` lacks a glyph for, which go to `skipped` with the corpus
    offset of the word that follows them; a left-out word that opened a paragraph passes that on."""
    font_coverage = coverage(path)
    pending: list[Token] = []
    for token in tokens:
        if not font_coverage.draws(token.text):
            pending.append(token)
            continue
        if pending:
            skipped.extend((left_out, token.start) for left_out in pending)
            if any(left_out.new_paragraph for left_out in pending) and not token.new_paragraph:
                token = replace(token, new_paragraph=True)
            pending = []
        yield token


def _choose_font_and_lay_out(corpus: Corpus, offset: int, fonts: Sequence[str], size: int,
                             box: tuple[int, int, int, int], config: PageConfig, rnd: random.Random):
    """Draw a font among those that can draw the text (`font_choices`, judged on the text from `offset`),
    and lay the text out with it, leaving out the words it lacks glyphs for (counted in the layout's
    parameters, with the characters that made them so)."""
    stream = iter_tokens(corpus, offset, config.lang)
    head = list(islice(stream, 400))
    if not head:
        raise SynthError("the corpus has no drawable text (only whitespace and control characters)")
    path = rnd.choice(font_choices(fonts, head))
    font = sized_font(path, size)
    skipped: list[tuple[Token, int]] = []
    lines, columns, params = lay_out(_drawable(chain(head, stream), path, skipped), font, box, config.lang,
                                     config.columns, config.line_spacing, rnd)
    shown = {token.start for line in lines for token in line.tokens}
    left_out = [token.text for token, following in skipped if following in shown]
    params["skipped_words"] = len(left_out)
    params["skipped_chars"] = "".join(sorted(visible_chars("".join(left_out)) - coverage(path).drawn))
    return font, lines, columns, params


def _corpus_spans(lines: list[LaidLine]) -> list[list[int]]:
    """The corpus ranges the page shows, in order: one, or more where the text wrapped around the end."""
    spans: list[list[int]] = []
    for line in lines:
        for token in line.tokens:
            if spans and token.start >= spans[-1][1]:
                spans[-1][1] = token.end
            else:
                spans.append([token.start, token.end])
    return spans


def _outline(width: int, height: int, step: int = 16) -> np.ndarray:
    """Points along a rectangle's border, clockwise from the top-left corner."""
    nx, ny = max(2, math.ceil(width / step)), max(2, math.ceil(height / step))
    top = np.stack([np.linspace(0, width, nx, endpoint=False), np.zeros(nx)], axis=1)
    right = np.stack([np.full(ny, width), np.linspace(0, height, ny, endpoint=False)], axis=1)
    bottom = np.stack([np.linspace(width, 0, nx, endpoint=False), np.full(nx, height)], axis=1)
    left = np.stack([np.zeros(ny), np.linspace(height, 0, ny, endpoint=False)], axis=1)
    return np.concatenate([top, right, bottom, left])


def _corners(boxes: np.ndarray, geometry: Translation | MeshWarp) -> np.ndarray:
    """(n, 4, 2): each document box's corners on the page, clockwise from the top-left."""
    x0, y0, x1, y1 = (boxes[:, i : i + 1].astype(np.float64) for i in range(4))
    corners = np.stack([np.hstack([x0, x1, x1, x0]), np.hstack([y0, y0, y1, y1])], axis=2)
    return geometry.map_points(corners.reshape(-1, 2)).reshape(corners.shape)


def _pixel_boxes(bounds: np.ndarray, page_size: tuple[int, int]) -> list[list[int]]:
    """Whole-pixel boxes enclosing `bounds`, clamped to the page."""
    low = np.floor(bounds[:, :2] + 1e-6)
    high = np.ceil(bounds[:, 2:] - 1e-6)
    limit = [page_size[0], page_size[1]] * 2
    return np.clip(np.concatenate([low, high], axis=1), 0, limit).astype(int).tolist()


def _union(boxes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Bounding box of each run of rows boxes[starts[k]:starts[k + 1]]."""
    return np.concatenate([np.minimum.reduceat(boxes[:, :2], starts), np.maximum.reduceat(boxes[:, 2:], starts)],
                          axis=1)


def _targets(lines: list[LaidLine], ink: InkLayer, geometry: Translation | MeshWarp,
             page_size: tuple[int, int]) -> tuple[list[dict], list[dict]]:
    """Word and line targets. A quad is the mapped corners of the word's (line's) tight ink box. A box
    is the whole-pixel hull of the word's mapped glyph support points, so it stays as tight as the ink
    when the page is rotated (the hull of the mapped quad would add each glyph's empty corners)."""
    word_starts = np.flatnonzero(np.diff(ink.glyph_word, prepend=-1))
    line_starts = np.cumsum([0] + [len(line.words) for line in lines[:-1]])
    if isinstance(geometry, MeshWarp):
        mapped = geometry.map_points(ink.glyph_support.reshape(-1, 2)).reshape(ink.glyph_support.shape)
        glyph_bounds = np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)
    else:
        glyph_bounds = ink.glyph_boxes + [geometry.dx, geometry.dy, geometry.dx, geometry.dy]
    word_boxes = _union(ink.glyph_boxes, word_starts)
    word_bounds = _union(glyph_bounds, word_starts)
    word_quads = np.round(_corners(word_boxes, geometry), 1).tolist()
    line_quads = np.round(_corners(_union(word_boxes, line_starts), geometry), 1).tolist()
    word_hulls = _pixel_boxes(word_bounds, page_size)
    line_hulls = _pixel_boxes(_union(word_bounds, line_starts), page_size)
    words, line_targets = [], []
    for li, line in enumerate(lines):
        first = len(words)
        for start, end in line.words:
            k = len(words)
            words.append({"text": line.text[start:end], "quad": word_quads[k], "box": word_hulls[k], "line": li})
        line_targets.append({"text": line.text, "quad": line_quads[li], "box": line_hulls[li],
                             "words": list(range(first, len(words))), "column": line.column,
                             "paragraph": line.paragraph})
    return words, line_targets


def _page_and_document(config: PageConfig, rnd: random.Random) -> tuple[tuple[int, int], tuple[int, int], bool]:
    """Page size, document size, and whether the document is placed on a backdrop (else it is the page)."""
    short = rnd.randint(*config.short_side)
    long_side = round(short * rnd.uniform(*config.aspect))
    landscape = rnd.random() < config.landscape
    page_size = (long_side, short) if landscape else (short, long_side)
    placed = config.effects and rnd.random() >= config.full_page
    if not placed:
        return page_size, page_size, False
    doc_short = round(short * rnd.uniform(*config.document_scale))
    doc_long = min(round(doc_short * rnd.uniform(*config.document_aspect)), round(0.96 * long_side))
    return page_size, ((doc_long, doc_short) if landscape else (doc_short, doc_long)), True


def _geometry(page_size: tuple[int, int], document_size: tuple[int, int], placed: bool, config: PageConfig,
              rnd: random.Random, applied: dict) -> Translation | MeshWarp:
    """Where the document lands: flat (a translation), or tilted in perspective and/or elastic (a mesh)."""
    elastic = None
    if config.effects and rnd.random() < config.elastic:
        elastic = applied["elastic"] = draw_elastic(min(page_size), config.elastic_strength, rnd)
    if placed and rnd.random() < config.tilt:
        to_page, applied["perspective"] = place_document(document_size, page_size, config.max_rotation,
                                                         config.max_corner_shift, rnd)
        return MeshWarp(page_size, to_page, elastic)
    dx = rnd.randint(0, page_size[0] - document_size[0]) if placed else 0
    dy = rnd.randint(0, page_size[1] - document_size[1]) if placed else 0
    if elastic is None:
        return Translation(dx, dy, page_size)
    return MeshWarp(page_size, np.array([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]]), elastic)


def _look(config: PageConfig, page_size: tuple[int, int], rnd: random.Random,
          applied: dict) -> tuple[surfaces.Look, np.ndarray | None]:
    """The camera's grain, contrast and brightness, and a cast shadow (or none)."""
    if not config.effects:
        return surfaces.Look(), None
    grain = round(rnd.uniform(*config.noise_sigma), 3) if rnd.random() < config.noise else 0.0
    contrast = round(rnd.uniform(*config.contrast), 3) if rnd.random() < 0.5 else 1.0
    brightness = round(rnd.uniform(*config.brightness), 2) if rnd.random() < 0.5 else 0.0
    if grain:
        applied["noise"] = {"sigma": grain}
    if (contrast, brightness) != (1.0, 0.0):
        applied["contrast_brightness"] = {"contrast": contrast, "brightness": brightness}
    shadow = None
    if rnd.random() < config.shadow:
        shadow, applied["shadow"] = surfaces.shadow_field(surfaces.field_shape(page_size), rnd)
    return surfaces.Look(grain, contrast, brightness), shadow


def render_page(corpus: Corpus, fonts: Sequence[str], seed: int, config: PageConfig = PageConfig(),
                backgrounds: Sequence[Image.Image] = ()) -> RenderedPage:
    """One synthetic page of `corpus` text (a str, or a corpus read a chunk at a time). Raises SynthError
    for an empty corpus, a missing or unreadable font file, or when no font has glyphs for the text."""
    config.check()
    if not len(corpus):
        raise SynthError("the corpus is empty")
    if not fonts:
        raise SynthError("no font files given")
    rnd = random.Random(seed)
    rng = np.random.default_rng(rnd.getrandbits(64))

    page_size, document_size, placed = _page_and_document(config, rnd)
    font_px = max(8, round(rnd.uniform(*config.font_size) * min(page_size)))
    margins = [round(rnd.uniform(*config.margin) * min(document_size)) for _ in range(4)]
    content = (margins[0], margins[1], document_size[0] - margins[2], document_size[1] - margins[3])
    offset = rnd.randrange(len(corpus))
    font, lines, columns, layout = _choose_font_and_lay_out(corpus, offset, fonts, font_px, content, config, rnd)
    if not lines:
        raise SynthError(f"no line fits: document {document_size}, margins {margins}, font {font_px} px")
    ink = draw_lines(lines, font, document_size)

    applied: dict = {}
    geometry = _geometry(page_size, document_size, placed, config, rnd, applied)
    words, line_targets = _targets(lines, ink, geometry, page_size)
    look, shadow = _look(config, page_size, rnd, applied)
    paper, paper_meta = surfaces.paper(page_size, shadow, rnd, rng)
    backdrop_meta = None
    if placed:
        backdrop, backdrop_meta = surfaces.backdrop(page_size, shadow, look, backgrounds, rnd, rng)
        paper.mask = surfaces.polygon_mask(page_size, geometry.map_points(_outline(*document_size)))
        if isinstance(backdrop, surfaces.Surface):
            image = surfaces.colour_surfaces(page_size, [backdrop, paper], look, rng)
        else:
            image = backdrop
            image.paste(surfaces.colour_surfaces(page_size, [paper], look, rng), (0, 0), paper.mask)
    else:
        image = surfaces.colour_surfaces(page_size, [paper], look, rng)
    text_box = (*ink.glyph_boxes[:, :2].min(axis=0).tolist(), *ink.glyph_boxes[:, 2:].max(axis=0).tolist())
    page_ink, origin = geometry.warp_part(ink.image, text_box)
    if config.effects:
        page_ink, origin, blurs = effects.blur_ink(page_ink, origin, config.blur, rnd)
        applied.update(blurs)
    text_colour = _dark_colour(config, rnd)
    region = page_ink.getbbox()
    if region is not None:
        x, y = origin
        image.paste(look.tone_colour(text_colour), (x + region[0], y + region[1], x + region[2], y + region[3]),
                    page_ink.crop(region))
    quality = rnd.randint(*config.jpeg_quality)

    meta = {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "lang": config.lang,
        "size": list(page_size),
        "font": {"file": os.path.basename(font.face.path), "face": font.face.name, "size_px": font_px},
        "colours": {"text": list(text_colour), "paper": paper_meta["colour"]},
        "document": {"size": list(document_size), "margins": margins, "placed": placed,
                     "geometry": geometry.describe(), "paper": paper_meta, "backdrop": backdrop_meta},
        "layout": {**layout, "columns": [{"box": list(c.box), "stack": c.stack, "align": c.align} for c in columns]},
        "corpus_spans": _corpus_spans(lines),
        "effects": applied,
        "jpeg_quality": quality,
    }
    word_at = [(li, k) for li, line in enumerate(lines) for k in range(len(line.words))]
    trace = PageTrace(font, document_size, geometry, lines, word_at)
    return RenderedPage(image, effects.encode_jpeg(image, quality), "\n".join(line.text for line in lines),
                        words, line_targets, meta, trace)


def render_word_ink(page: RenderedPage, index: int) -> Image.Image:
    """Word `index`'s ink alone, redrawn and put through the page's geometry: what its recorded box must
    match. A page-sized "F" image (0-255, resampled without rounding, so faint edges are kept); blur,
    noise and colour are not applied."""
    line, word = page.trace.word_at[index]
    layer = word_ink(page.trace.lines[line], word, page.trace.font, page.trace.document_size)
    return page.trace.geometry.warp(layer.convert("F"), layer.getbbox())
