"""Camera effects on a synthetic page's text: defocus and motion blur, applied to the text's ink layer
before it is coloured in (the paper under it is smooth, so this equals blurring the page), and the JPEG
encoding the page is stored with. Grain, contrast and brightness live in `surfaces.Look`.

Each effect is drawn from the page's random stream and reports its parameters for the page's meta.
"""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
from PIL import Image


def _box_kernel(radius: float) -> np.ndarray:
    """PIL's box blur of `radius` along one axis: 2 floor(r) + 1 full taps, a fractional tap at each end."""
    whole = int(radius)
    taps = np.ones(2 * whole + 3, dtype=np.float32)
    taps[0] = taps[-1] = radius - whole
    return taps / (2 * radius + 1)


def _box_blur(radius_x: float, radius_y: float):
    """A box blur of an 8-bit array with its own radius along each axis (0: none), as one separable filter."""
    kernel_x, kernel_y = _box_kernel(radius_x), _box_kernel(radius_y)
    return lambda ink: cv2.sepFilter2D(ink, -1, kernel_x, kernel_y, borderType=cv2.BORDER_CONSTANT)


# Motion blur along a diagonal: the mean of 5 pixels along it (a 5 x 5 kernel).
_DIAGONALS = {"diagonal": np.eye(5, dtype=np.float32) / 5, "antidiagonal": np.eye(5, dtype=np.float32)[::-1] / 5}


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
        filters.append(_box_blur(radius, radius))
    if rnd.random() < probability / 2:
        direction = rnd.choice(("horizontal", "vertical", "diagonal", "antidiagonal"))
        length = round(rnd.uniform(2, 5), 2) if direction in ("horizontal", "vertical") else 5
        applied["motion_blur"] = {"direction": direction, "length": length}
        if direction == "horizontal":
            filters.append(_box_blur(length / 2, 0))
        elif direction == "vertical":
            filters.append(_box_blur(0, length / 2))
        else:
            kernel = _DIAGONALS[direction]
            filters.append(lambda ink: cv2.filter2D(ink, -1, kernel, borderType=cv2.BORDER_CONSTANT))
    if not filters:
        return ink, origin, applied
    pad = 6
    part = np.zeros((ink.height + 2 * pad, ink.width + 2 * pad), dtype=np.uint8)
    part[pad:-pad, pad:-pad] = np.asarray(ink)
    for f in filters:
        part = f(part)
    return Image.fromarray(part), (origin[0] - pad, origin[1] - pad), applied


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
