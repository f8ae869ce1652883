"""The text's ink layer of a document: lines drawn whole, one PIL rendering per line as ImageDraw.text
draws it (`getmask2`, then pasted; a justified line word by word), and every glyph's tight ink box
computed the way PIL places glyphs: glyph i of a run sits at the run's origin + round(pen_i), with the
same bitmap wherever it sits, so its ink is measured once per font and size; a word's box is the union
of its glyphs'. `word_ink` redraws a word's ink independently (the run up to the word's end minus the
run up to its start), which is what the tests hold the boxes to.

Pure: the layer is a function of the laid-out lines and the font.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from synth.errors import SynthError
from synth.fonts import SizedFont
from synth.text_layout import LaidLine


@dataclass
class InkLayer:
    """A document's drawn text: the layer ("L", 255 = full ink) and where every glyph's ink is."""

    image: Image.Image
    glyph_boxes: np.ndarray  # (n, 4) tight ink boxes x0, y0, x1, y1 in document pixels, reading order
    glyph_support: np.ndarray  # (n, K, 2) their support points (see fonts.SizedFont)
    glyph_word: np.ndarray  # (n,) page word index of each glyph (a word's box is the union of its glyphs')


def draw_lines(lines: list[LaidLine], font: SizedFont, size: tuple[int, int]) -> InkLayer:
    """Draw `lines` on a document of `size` and place every glyph's measured ink."""
    image = Image.new("L", size, 0)
    pil_font = font.font
    chars: list[str] = []
    xs: list[int] = []
    ys: list[int] = []
    owner: list[int] = []
    word = 0
    for line in lines:
        for start, end, x in line.runs:
            # What ImageDraw.text does at a whole-pixel point: the run's bitmap, pasted at its offset.
            mask, (dx, dy) = pil_font.getmask2(line.text[start:end], "L")
            run = Image.Image()._new(mask)
            image.paste(255, (x + dx, line.y + dy, x + dx + run.width, line.y + dy + run.height), run)
            pens = line.pens if (start, end) == (0, len(line.text)) else font.pens(line.text[start:end])
            pen_px = [x + math.floor(pen + 0.5) for pen in pens]
            for first, last in line.words:
                if start <= first and last <= end:
                    chars.append(line.text[first:last])
                    xs.extend(pen_px[first - start : last - start])
                    ys.extend([line.y] * (last - first))
                    owner.extend([word] * (last - first))
                    word += 1
    rows = np.array(font.glyph_rows("".join(chars)), dtype=np.int64)
    inked = rows >= 0
    offsets = np.stack([np.array(xs), np.array(ys)], axis=1)[inked]
    owner_array = np.array(owner, dtype=np.int64)[inked]
    empty = np.flatnonzero(np.bincount(owner_array, minlength=word) == 0)
    if len(empty):
        text = "".join(chars)
        raise SynthError(f"font {font.face.path!r} at {font.size} px draws no ink for word {int(empty[0])} "
                         f"of {text[:40]!r}")
    return InkLayer(image, font.glyph_boxes[rows[inked]] + np.tile(offsets, 2),
                    font.glyph_support[rows[inked]] + offsets[:, None, :], owner_array)


def word_ink(line: LaidLine, word: int, font: SizedFont, size: tuple[int, int]) -> Image.Image:
    """One word's ink alone on a document-sized layer, found by drawing, not by the glyph model: its run
    drawn up to the word's end minus the run drawn up to the word's start."""
    start, end = line.words[word]
    run_start, run_end, run_x = next(run for run in line.runs if run[0] <= start and end <= run[1])
    pad = font.size
    frame = (math.ceil(font.width(line.text[run_start:run_end])) + 2 * pad, font.ascent + font.descent + 2 * pad)

    def drawn(text: str) -> np.ndarray:
        image = Image.new("L", frame, 0)
        ImageDraw.Draw(image).text((pad, pad), text, font=font.font, fill=255)
        return np.asarray(image, dtype=np.int16)

    alone = np.clip(drawn(line.text[run_start:end]) - drawn(line.text[run_start:start]), 0, 255).astype(np.uint8)
    layer = Image.new("L", size, 0)
    layer.paste(Image.fromarray(alone), (run_x - pad, line.y - pad))
    return layer
