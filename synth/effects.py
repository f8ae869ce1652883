"""Camera effects on a synthetic page's text: defocus and motion blur, applied to the text's ink layer
before it is coloured in (the paper under it is smooth, so this equals blurring the page), and the JPEG
encoding the page is stored with. Grain, contrast and brightness live in `surfaces.Look`.

Each effect is drawn from the page's random stream and reports its parameters for the page's meta.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageFilter

_DIAGONALS = {
    "diagonal": ImageFilter.Kernel((5, 5), [1 if r == c else 0 for r in range(5) for c in range(5)], 5),
    "antidiagonal": ImageFilter.Kernel((5, 5), [1 if r + c == 4 else 0 for r in range(5) for c in range(5)], 5),
}


def blur_ink(ink: Image.Image, probability: float, rnd: random.Random) -> tuple[Image.Image, dict]:
    """Defocus (box blur, radius 0.3-1.1 px) with `probability`, and motion blur (2-5 px along an axis,
    or 5 px along a diagonal) with half of it."""
    applied: dict = {}
    filters = []
    if rnd.random() < probability:
        radius = round(rnd.uniform(0.3, 1.1), 3)
        applied["blur"] = {"radius": radius}
        filters.append(ImageFilter.BoxBlur(radius))
    if rnd.random() < probability / 2:
        direction = rnd.choice(("horizontal", "vertical", "diagonal", "antidiagonal"))
        length = round(rnd.uniform(2, 5), 2) if direction in ("horizontal", "vertical") else 5
        applied["motion_blur"] = {"direction": direction, "length": length}
        if direction == "horizontal":
            filters.append(ImageFilter.BoxBlur((length / 2, 0)))
        elif direction == "vertical":
            filters.append(ImageFilter.BoxBlur((0, length / 2)))
        else:
            filters.append(_DIAGONALS[direction])
    box = ink.getbbox()
    if not filters or box is None:
        return ink, applied
    pad = 6
    region = (max(0, box[0] - pad), max(0, box[1] - pad), min(ink.width, box[2] + pad), min(ink.height, box[3] + pad))
    part = ink.crop(region)
    for f in filters:
        part = part.filter(f)
    ink = ink.copy()
    ink.paste(part, region[:2])
    return ink, applied


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
