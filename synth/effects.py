"""Camera effects on a synthetic page's text: defocus and motion blur, applied to the text's ink layer
before it is coloured in (the paper under it is smooth, so this equals blurring the page), and the JPEG
encoding the page is stored with. Grain, contrast and brightness live in `surfaces.Look`.

Each effect is drawn from the page's random stream and reports its parameters for the page's meta.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageFilter

def _diagonal_blur(ink: Image.Image, direction: str) -> Image.Image:
    """Motion blur along a diagonal: the mean of 5 copies shifted by -2..2 px along it (what a 5 x 5
    diagonal kernel does), summed in numpy."""
    h, w = ink.height, ink.width
    source = np.pad(np.asarray(ink, dtype=np.uint16), 2)
    total = np.zeros((h, w), dtype=np.uint16)
    for step in range(-2, 3):
        dx, dy = step, (step if direction == "diagonal" else -step)
        total += source[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
    return Image.fromarray(((total + 2) // 5).astype(np.uint8))


def blur_ink(ink: Image.Image, origin: tuple[int, int], probability: float,
             rnd: random.Random) -> tuple[Image.Image, tuple[int, int], dict]:
    """Defocus (box blur, radius 0.3-1.1 px) with `probability`, and motion blur (2-5 px along an axis,
    or 5 px along a diagonal) with half of it. `ink` is the part of the page's ink layer whose top-left
    corner is at `origin`; the blurred part is returned with a margin for the blur to spread into, and
    its own origin."""
    applied: dict = {}
    filters = []
    if rnd.random() < probability:
        radius = round(rnd.uniform(0.3, 1.1), 3)
        applied["blur"] = {"radius": radius}
        filters.append(lambda image: image.filter(ImageFilter.BoxBlur(radius)))
    if rnd.random() < probability / 2:
        direction = rnd.choice(("horizontal", "vertical", "diagonal", "antidiagonal"))
        length = round(rnd.uniform(2, 5), 2) if direction in ("horizontal", "vertical") else 5
        applied["motion_blur"] = {"direction": direction, "length": length}
        if direction == "horizontal":
            filters.append(lambda image: image.filter(ImageFilter.BoxBlur((length / 2, 0))))
        elif direction == "vertical":
            filters.append(lambda image: image.filter(ImageFilter.BoxBlur((0, length / 2))))
        else:
            filters.append(lambda image: _diagonal_blur(image, direction))
    if not filters:
        return ink, origin, applied
    pad = 6
    part = Image.new("L", (ink.width + 2 * pad, ink.height + 2 * pad), 0)
    part.paste(ink, (pad, pad))
    for f in filters:
        part = f(part)
    return part, (origin[0] - pad, origin[1] - pad), applied


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
