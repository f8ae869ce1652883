"""Checks and normalises input images before they go into a shard.

Every image is fully decoded (so a truncated JPEG is caught here, not in the trainer); JPEG, PNG and
WebP bytes are kept as they are, anything else PIL can read (GIF, BMP, TIFF, ...) is re-encoded to PNG.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from pipelines.job import InputError

KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass
class CheckedImage:
    ext: str  # the sample member's extension: jpg, png or webp
    data: bytes
    width: int
    height: int
    source_format: str

    def record(self) -> dict:
        return {"width": self.width, "height": self.height, "format": self.ext, "source_format": self.source_format}


def check_image(data: bytes, name: str) -> CheckedImage:
    """Decode `data` completely; raise `InputError(name, "decode image", ...)` if it is empty, truncated or not an image."""
    if not data:
        raise InputError(name, "decode image", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                source_format = image.format or "unknown"
                image.load()
                width, height = image.size
                if width < 1 or height < 1:
                    raise ValueError(f"image is {width}x{height}")
                if source_format in KEPT_FORMATS:
                    return CheckedImage(KEPT_FORMATS[source_format], data, width, height, source_format)
                if image.mode not in ("RGB", "RGBA", "L", "LA"):
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                out = io.BytesIO()
                image.save(out, "PNG")
                return CheckedImage("png", out.getvalue(), width, height, source_format)
    except InputError:
        raise
    except Exception as exn:
        raise InputError(name, "decode image", f"{type(exn).__name__}: {exn}", exception=type(exn).__name__) from exn
