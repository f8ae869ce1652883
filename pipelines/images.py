"""Checks and normalises input images before they go into a shard.

Every image is fully decoded (so a truncated JPEG is caught here, not in the trainer); JPEG, PNG and
WebP bytes are kept as they are, anything else PIL can read (GIF, BMP, TIFF, ...) is re-encoded to PNG.
An image whose EXIF orientation says it is stored turned is turned upright (as a viewer, labelme and
`trainer.generate.open_image` show it) and re-encoded in its own format, so the shard holds the upright
pixels and its record the upright size.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps

from pipelines.job import InputError

KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
TURNED = range(2, 9)  # EXIF orientations other than upright (1): the ones `ImageOps.exif_transpose` undoes
UPRIGHT_QUALITY = 95


@dataclass
class CheckedImage:
    ext: str  # the sample member's extension: jpg, png or webp
    data: bytes
    width: int
    height: int
    source_format: str
    exif_transposed: bool = False  # the stored pixels were turned upright as the EXIF orientation says

    def record(self) -> dict:
        record = {"width": self.width, "height": self.height, "format": self.ext, "source_format": self.source_format}
        return {**record, "exif_transposed": True} if self.exif_transposed else record


def encode(image: Image.Image, source_format: str) -> tuple[str, bytes]:
    """`image` re-encoded, without EXIF: in its own format if a shard keeps that format, else as PNG."""
    out = io.BytesIO()
    icc_profile = image.info.get("icc_profile")
    if source_format == "JPEG":
        image.save(out, "JPEG", quality=UPRIGHT_QUALITY, subsampling=0, icc_profile=icc_profile)
    elif source_format == "WEBP":
        image.save(out, "WEBP", quality=UPRIGHT_QUALITY, icc_profile=icc_profile)
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA") and source_format != "PNG":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        image.save(out, "PNG")
        return "png", out.getvalue()
    return KEPT_FORMATS[source_format], out.getvalue()


def check_image(data: bytes, name: str) -> CheckedImage:
    """Decode `data` completely; raise `InputError(name, "decode image", ...)` if it is empty, truncated or not an
    image. An image with an EXIF orientation other than 1 comes back upright, re-encoded; any other JPEG, PNG
    or WebP comes back with its bytes untouched."""
    if not data:
        raise InputError(name, "decode image", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                source_format = image.format or "unknown"
                image.load()
                turned = image.getexif().get(ExifTags.Base.Orientation, 1) in TURNED
                upright = ImageOps.exif_transpose(image) if turned else image
                width, height = upright.size
                if width < 1 or height < 1:
                    raise ValueError(f"image is {width}x{height}")
                if source_format in KEPT_FORMATS and not turned:
                    return CheckedImage(KEPT_FORMATS[source_format], data, width, height, source_format)
                ext, encoded = encode(upright, source_format)
                return CheckedImage(ext, encoded, width, height, source_format, exif_transposed=turned)
    except InputError:
        raise
    except Exception as exn:
        raise InputError(name, "decode image", f"{type(exn).__name__}: {exn}", exception=type(exn).__name__) from exn
