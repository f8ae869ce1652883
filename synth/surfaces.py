"""What the text sits on: procedural paper (a tinted near-white with low-frequency blotches), what the
paper sits on (a procedural table or one of the user's background images), a soft cast shadow, and the
camera's grain and tone on both.

A procedural surface is base colour x brightness multiplier. The multiplier (blotches x shadow) is drawn
small and scaled up once as one grey band of palette indices; a page's surfaces share the band (the
paper's indices in one half of the palette, the backdrop's in the other, the paper pasted in through
the document's outline), grain is added to the band, and one palette with the page's contrast and
brightness turns it into colour: a few PIL calls a page, most of them on one byte a pixel.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw

_FIELD_STEP = 16  # page pixels per multiplier sample
_GRAIN_TILE = 2048  # side of the per-process tile of random bytes that grain is cut from
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)])


@dataclass(frozen=True)
class Look:
    """The camera's rendering of a page: grain (grey levels, 0 = none) and tone (contrast, brightness)."""

    grain: float = 0.0
    contrast: float = 1.0
    brightness: float = 0.0

    def tone(self, value: float) -> int:
        """(value - 128) * contrast + 128 + brightness, clipped to a byte."""
        return max(0, min(255, round((value - 128) * self.contrast + 128 + self.brightness)))

    def tone_array(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.round((values - 128) * self.contrast + 128 + self.brightness), 0, 255)

    def tone_colour(self, colour: tuple[int, int, int]) -> tuple[int, int, int]:
        return tuple(self.tone(c) for c in colour)


def field_shape(size: tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of the small multiplier fields for a page of `size`."""
    return (size[1] // _FIELD_STEP + 2, size[0] // _FIELD_STEP + 2)


def _blotches(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Values in [0, 1]: random variation at three scales."""
    h, w = shape
    field = np.zeros(shape)
    for cells, weight in ((3, 0.6), (8, 0.3), (24, 0.1)):
        coarse = rng.random((max(2, h * cells // max(h, w) + 2), max(2, w * cells // max(h, w) + 2)))
        up = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
        field += weight * np.asarray(up, dtype=np.float64) / 255
    return np.clip(field, 0, 1)


def _wood(shape: tuple[int, int], rnd: random.Random, rng: np.random.Generator) -> np.ndarray:
    """Values in [0, 1]: wavy parallel grain, like a table top."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rnd.uniform(0, math.pi)
    along = x * math.cos(angle) + y * math.sin(angle)
    across = -x * math.sin(angle) + y * math.cos(angle)
    wobble = 3 * np.sin(along / rnd.uniform(6, 20) + rnd.uniform(0, 6.3)) + 6 * (_blotches(shape, rng) - 0.5)
    return 0.5 + 0.5 * np.sin((across + wobble) / rnd.uniform(0.6, 2.0))


def shadow_field(shape: tuple[int, int], rnd: random.Random) -> tuple[np.ndarray, dict]:
    """Multiplier in [1 - intensity, 1]: one side of a random line darkened, with a soft edge."""
    h, w = shape
    intensity = rnd.uniform(0.1, 0.45)
    softness = rnd.uniform(0.05, 0.3)
    angle = rnd.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = rnd.uniform(0.2, 0.8) * w, rnd.uniform(0.2, 0.8) * h
    distance = ((x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)) / max(h, w)
    ramp = np.clip(0.5 + distance / softness, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return 1 - intensity * ramp, {"intensity": round(intensity, 3), "softness": round(softness, 3),
                                  "angle_deg": round(math.degrees(angle), 1)}


@lru_cache(maxsize=1)
def _grain_tile() -> Image.Image:
    """Random bytes from a fixed seed, made once per process: grain is a window of it (4 MB)."""
    return Image.frombytes("L", (_GRAIN_TILE, _GRAIN_TILE), np.random.default_rng(0).bytes(_GRAIN_TILE**2))


def grain_image(size: tuple[int, int], sigma: float, rng: np.random.Generator) -> Image.Image:
    """Gaussian noise around 128 with `sigma` (in band units): random bytes through a quantile table. The
    bytes are a window of the process's tile at an offset drawn from `rng` (fresh bytes for a page larger
    than the tile), so no page pays for its own random numbers."""
    w, h = size
    if w <= _GRAIN_TILE and h <= _GRAIN_TILE:
        x, y = (int(v) for v in rng.integers(0, [_GRAIN_TILE - w + 1, _GRAIN_TILE - h + 1]))
        noise = _grain_tile().crop((x, y, x + w, y + h))
    else:
        noise = Image.frombytes("L", size, rng.bytes(w * h))
    return noise.point(np.clip(np.round(128 + sigma * _NORMAL_QUANTILES), 0, 255).astype(int).tolist())


@dataclass
class Surface:
    """A procedural surface: base colour x multiplier (a small field over the page), shown where `mask`
    is set (None: everywhere)."""

    base: tuple[int, int, int]
    multiplier: np.ndarray
    mask: Image.Image | None = None


def _band(level: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A small level field scaled up to `size`: bilinear to half size, then pixel doubling. The field is
    smooth, so a 2 x 2 block differs from its neighbours by at most one level, and this costs half of a
    full-size bilinear resize."""
    half = ((size[0] + 1) // 2, (size[1] + 1) // 2)
    return Image.fromarray(level).resize(half, Image.Resampling.BILINEAR).resize(size, Image.Resampling.NEAREST)


def colour_surfaces(size: tuple[int, int], surfaces: Sequence[Surface], look: Look,
                    rng: np.random.Generator) -> Image.Image:
    """The surfaces (bottom first) with the look's grain and tone, as one RGB image of `size`.

    Each surface gets 256 / len(surfaces) palette indices, spread over its multiplier's range widened by
    3 grain sigmas each side, so the grain can be added to the shared band before the palette colours
    and tones it (the quantile table never reaches 3 sigmas, so no index crosses into another surface's
    range). The ranges are stretched to one span in grey levels, so one grain image has the same sigma
    in grey levels on every surface.
    """
    levels = 256 // len(surfaces)
    means = [max(1.0, sum(surface.base) / 3) for surface in surfaces]
    lows, grey_span = [], 1e-3
    for surface, mean in zip(surfaces, means):
        pad = 3 * look.grain / mean
        lows.append(float(surface.multiplier.min()) - pad)
        grey_span = max(grey_span, (float(surface.multiplier.max()) + pad - lows[-1]) * mean)
    band = None
    palette = np.zeros((256, 3))
    for k, (surface, mean, low) in enumerate(zip(surfaces, means, lows)):
        span = grey_span / mean
        level = np.round((surface.multiplier - low) / span * (levels - 1)) + k * levels
        layer = _band(level.astype(np.uint8), size)
        if band is None:
            band = layer
        else:
            band.paste(layer, (0, 0), surface.mask)
        # Entry k * levels + i = toned base x (low + span * i / (levels - 1)).
        palette[k * levels : (k + 1) * levels] = np.outer(low + span * np.arange(levels) / (levels - 1), surface.base)
    if look.grain > 0:
        band = ImageChops.add(band, grain_image(size, look.grain * (levels - 1) / grey_span, rng), offset=-128)
    band.putpalette(look.tone_array(palette).astype(np.uint8).tobytes())
    return band.convert("RGB")


def paper(size: tuple[int, int], shadow: np.ndarray | None, rnd: random.Random,
          rng: np.random.Generator) -> tuple[Surface, dict]:
    """Near-white paper, warm, cool or neutral, with faint blotches (and the shadow, if any)."""
    light = rnd.uniform(228, 252)
    tint = rnd.choice(((0, 4, 14), (0, 2, 6), (0, 0, 0), (6, 3, 0)))
    base = tuple(int(min(255, light - t)) for t in tint)
    depth = rnd.uniform(0.01, 0.08)
    multiplier = 1 - depth * _blotches(field_shape(size), rng)
    if shadow is not None:
        multiplier = multiplier * shadow
    return Surface(base, multiplier), {"kind": "procedural", "colour": list(base), "blotch_depth": round(depth, 3)}


def backdrop(size: tuple[int, int], shadow: np.ndarray | None, look: Look, backgrounds: Sequence[Image.Image],
             rnd: random.Random, rng: np.random.Generator) -> tuple[Surface | Image.Image, dict]:
    """What shows around a placed document: one of `backgrounds` (cropped, scaled, maybe defocused: an
    RGB image with the look applied) or a procedural plain or wooden surface."""
    if backgrounds and rnd.random() < 0.8:
        return _background_image(size, backgrounds, look, rnd, rng)
    shape = field_shape(size)
    kind = rnd.choice(("plain", "wood"))
    texture = _blotches(shape, rng) if kind == "plain" else _wood(shape, rnd, rng)
    base = tuple(rnd.randint(40, 210) for _ in range(3))
    depth = rnd.uniform(0.1, 0.4)
    multiplier = 1 - depth * texture
    if shadow is not None:
        multiplier = multiplier * shadow
    return Surface(base, multiplier), {"kind": kind, "colour": list(base), "texture_depth": round(depth, 3)}


def _background_image(size: tuple[int, int], backgrounds: Sequence[Image.Image], look: Look,
                      rnd: random.Random, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    index = rnd.randrange(len(backgrounds))
    image = backgrounds[index]
    w, h = image.size
    aspect = size[0] / size[1]
    crop_w = min(w, h * aspect) * rnd.uniform(0.6, 1.0)
    crop_h = crop_w / aspect
    x0, y0 = rnd.uniform(0, w - crop_w), rnd.uniform(0, h - crop_h)
    box = (x0, y0, x0 + crop_w, y0 + crop_h)
    defocus = rnd.uniform(2, 8) if rnd.random() < 0.5 else 1.0
    small = (max(1, round(size[0] / defocus)), max(1, round(size[1] / defocus)))
    out = image.convert("RGB").resize(small, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    if small != size:
        out = out.resize(size, Image.Resampling.BILINEAR)
    if look.grain > 0:
        grain = grain_image(size, look.grain, rng)
        out = ImageChops.add(out, Image.merge("RGB", (grain, grain, grain)), offset=-128)
    if (look.contrast, look.brightness) != (1.0, 0.0):
        out = out.point(look.tone_array(np.arange(256)).astype(int).tolist() * 3)
    return out, {"kind": "image", "index": index, "crop": [round(v, 1) for v in box], "defocus": round(defocus, 2)}


def polygon_mask(size: tuple[int, int], outline: np.ndarray) -> Image.Image:
    """An "L" mask of `size`, 255 inside the polygon `outline` (page points)."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in np.round(outline, 2).tolist()], fill=255)
    return mask
