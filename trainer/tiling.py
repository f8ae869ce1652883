"""Dynamic resolution: the first step of the trainer's input side (stream ▶ **tile** ▶ tokenize ▶ pack).

An image becomes a grid of square tiles: the grid (rows × cols ≤ max_tiles) whose aspect ratio is
closest to the image's (a tie goes to the larger grid when the image covers more than half of it, as
InternVL does), the image resized to (cols·tile, rows·tile) and cut into tiles in row-major order, and
the whole image resized to one tile as the global view, first. A 1×1 grid has no global view (it would
be the same picture twice).

Tiles leave here as uint8 RGB, not normalised: a batch travels through the prefetch queue, pinned
memory and the host-to-device copy at a quarter of float32's size, and the model normalises it with its
tower's mean and std on its own device (`trainer.model.DocVLM.encode_views`). Resizing is OpenCV's (one
thread; the data side runs beside the training loop): area averaging when the image shrinks by more
than 1.25× on both axes (antialiased, which fine print needs), bicubic otherwise. JPEGs much larger than
their grid are decoded at a reduced DCT scale (PIL's draft mode) before that.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

cv2.setNumThreads(1)
AREA_BELOW = 1 / 1.25  # scale factors under this on both axes shrink by area averaging


@dataclass(frozen=True)
class TilingConfig:
    tile_size: int = 336
    max_tiles: int = 16
    min_tiles: int = 1
    global_view: bool = True


@dataclass(frozen=True)
class TiledImage:
    """An image cut for the vision tower: `pixels` uint8 RGB (views, 3, tile, tile), global view first when
    `has_global`, then the rows × cols local tiles in row-major order."""

    pixels: torch.Tensor
    rows: int
    cols: int
    has_global: bool

    @property
    def grid(self) -> tuple[int, int, bool]:
        return self.rows, self.cols, self.has_global


def candidate_grids(max_tiles: int, min_tiles: int = 1) -> list[tuple[int, int]]:
    """Every (rows, cols) with min_tiles ≤ rows·cols ≤ max_tiles, fewest tiles first."""
    grids = {(rows, cols) for rows in range(1, max_tiles + 1) for cols in range(1, max_tiles + 1)
             if min_tiles <= rows * cols <= max_tiles}
    return sorted(grids, key=lambda grid: (grid[0] * grid[1], grid[1], grid[0]))


def choose_grid(width: int, height: int, config: TilingConfig = TilingConfig()) -> tuple[int, int]:
    """The (rows, cols) grid whose aspect ratio (cols/rows) is closest to width/height."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} has no pixels")
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for rows, cols in candidate_grids(config.max_tiles, config.min_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (rows, cols), diff
        elif diff == best_diff and area > 0.5 * config.tile_size ** 2 * rows * cols:
            best = (rows, cols)
    return best


def resized(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (height, width, 3): area averaging when shrinking by more than 1.25× on both axes,
    bicubic otherwise."""
    shrink = width / pixels.shape[1] < AREA_BELOW and height / pixels.shape[0] < AREA_BELOW
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def rgb(image: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) RGB; transparency composited onto white, as transformers' image processors do (a bare
    conversion keeps the colour under transparent pixels, often black: black print on a transparent PNG
    would vanish); 16-bit and floating-point greyscale scaled to 8 bits."""
    if image.mode.startswith("I"):  # 16-bit greyscale (scans, TIFF and PNG): PIL's conversion would clip at 255
        grey = np.asarray(image)
        grey = (grey >> 8 if grey.max(initial=0) > 255 else grey).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":  # floating-point greyscale (TIFF), in 0-1, 0-255 or 16-bit units: PIL's would truncate
        grey = np.nan_to_num(np.asarray(image, dtype=np.float32))
        top = grey.max(initial=0)
        grey = grey * (255 if top <= 1 else 1 if top <= 255 else 255 / 65535)
        return np.repeat(grey.clip(0, 255).round().astype(np.uint8)[:, :, None], 3, axis=2)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def tile_image(image: Image.Image, config: TilingConfig = TilingConfig()) -> TiledImage:
    """Cut `image` (any mode, converted to RGB by `rgb`) into its grid of tiles plus the global view. A JPEG
    not yet loaded is decoded at the smallest DCT scale that still covers the grid (`image` itself changes)."""
    rows, cols = choose_grid(image.width, image.height, config)
    size = config.tile_size
    has_global = config.global_view and rows * cols > 1
    if image.format == "JPEG":
        image.draft("RGB", (cols * size, rows * size))  # decode at 1/2, 1/4 or 1/8 scale when that still covers
    pixels = rgb(image)
    grid = resized(pixels, cols * size, rows * size)
    # (rows·size, cols·size, 3) -> (rows·cols, size, size, 3), row-major tiles
    tiles = grid.reshape(rows, size, cols, size, 3).swapaxes(1, 2).reshape(rows * cols, size, size, 3)
    if has_global:
        tiles = np.concatenate([resized(pixels, size, size)[None], tiles])
    return TiledImage(torch.from_numpy(np.ascontiguousarray(np.moveaxis(tiles, -1, -3))), rows, cols, has_global)
