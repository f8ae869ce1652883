"""Dynamic resolution: the first step of the trainer's input side (stream ▶ **tile** ▶ tokenize ▶ pack).

An image becomes a grid of square tiles: the grid (rows × cols ≤ max_tiles) whose aspect ratio is
closest to the image's (a tie goes to the larger grid when the image covers more than half of it, as
InternVL does), the image resized to (cols·tile, rows·tile) and cut into tiles in row-major order, and
the whole image resized to one tile as the global view, first. A 1×1 grid has no global view (it would
be the same picture twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TilingConfig:
    tile_size: int = 336
    max_tiles: int = 16
    min_tiles: int = 1
    global_view: bool = True
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD


@dataclass(frozen=True)
class TiledImage:
    """An image as the vision tower eats it: `pixels` (views, 3, tile, tile), global view first when
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


def normalised(pixels: np.ndarray, config: TilingConfig) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W): (x/255 - mean) / std per channel, in one pass."""
    channels_first = torch.from_numpy(np.ascontiguousarray(np.moveaxis(pixels, -1, -3)))
    scale = 1.0 / (255.0 * torch.tensor(config.std, dtype=torch.float32))
    shift = -torch.tensor(config.mean, dtype=torch.float32) / torch.tensor(config.std, dtype=torch.float32)
    return channels_first.to(torch.float32).mul_(scale[:, None, None]).add_(shift[:, None, None])


def tile_image(image: Image.Image, config: TilingConfig = TilingConfig()) -> TiledImage:
    """Cut `image` (any mode, converted to RGB) into its grid of tiles plus the global view."""
    image = image.convert("RGB")
    rows, cols = choose_grid(image.width, image.height, config)
    size = config.tile_size
    has_global = config.global_view and rows * cols > 1
    resized = np.asarray(image.resize((cols * size, rows * size), Image.Resampling.BICUBIC))
    # (rows·size, cols·size, 3) -> (rows·cols, size, size, 3), row-major tiles
    tiles = resized.reshape(rows, size, cols, size, 3).swapaxes(1, 2).reshape(rows * cols, size, size, 3)
    if has_global:
        whole = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))
        tiles = np.concatenate([whole[None], tiles])
    return TiledImage(normalised(tiles, config), rows, cols, has_global)
