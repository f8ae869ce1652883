"""Dynamic-resolution tiling (trainer.tiling): grid choice for wide, tall, square, tiny and huge images."""

import pytest
from PIL import Image

from trainer.tiling import TilingConfig, candidate_grids, choose_grid, tile_image


@pytest.mark.parametrize("width, height, grid", [
    (3360, 336, (1, 10)),     # wide 10:1 -> one row of ten tiles
    (336, 3360, (10, 1)),     # tall
    (700, 700, (2, 2)),       # square, covers more than half of a 2x2 grid but not of 3x3
    (1000, 1000, (4, 4)),     # ... more than half of 4x4 (903,168 px)
    (60, 45, (3, 4)),         # the aspect ratio wins over the size, as in InternVL
    (2000, 2000, (4, 4)),     # square and big: the largest square grid
    (20, 20, (1, 1)),         # tiny: the tie goes to the smallest grid
    (20000, 15000, (3, 4)),   # huge 4:3
    (672, 336, (1, 2)),       # exactly two tiles side by side
    (100000, 10, (1, 16)),    # an extreme strip stops at the tile budget
])
def test_grid_matches_the_aspect_ratio(width, height, grid):
    assert choose_grid(width, height) == grid


@pytest.mark.parametrize("max_tiles", [1, 4, 6, 16])
def test_no_grid_exceeds_max_tiles(max_tiles):
    config = TilingConfig(max_tiles=max_tiles)
    for width, height in [(1, 1), (5000, 10), (10, 5000), (4000, 3000), (99999, 99999), (337, 335)]:
        rows, cols = choose_grid(width, height, config)
        assert rows * cols <= max_tiles
    assert max(r * c for r, c in candidate_grids(max_tiles)) == max_tiles


def test_tiles_are_the_resized_image_cut_row_major_after_the_global_view():
    image = Image.new("RGB", (672, 336), "white")
    image.paste((255, 0, 0), (336, 0, 672, 336))  # right half red
    config = TilingConfig(tile_size=336, max_tiles=4)
    tiled = tile_image(image, config)
    assert (tiled.rows, tiled.cols, tiled.has_global) == (1, 2, True)
    assert tiled.pixels.shape == (3, 3, 336, 336)
    red = (1.0 - config.mean[0]) / config.std[0]
    assert tiled.pixels[1, 0].mean().item() == pytest.approx(red, abs=1e-3)   # left tile: white
    assert tiled.pixels[2, 1].mean().item() < 0                             # right tile: red, no green
    assert tiled.pixels[0, 1, :, :150].mean().item() > 0 > tiled.pixels[0, 1, :, 190:].mean().item()  # global view


def test_one_tile_images_have_no_duplicate_global_view():
    tiled = tile_image(Image.new("L", (50, 50)), TilingConfig(tile_size=112))
    assert (tiled.rows, tiled.cols, tiled.has_global) == (1, 1, False)
    assert tiled.pixels.shape == (1, 3, 112, 112)


def test_global_view_can_be_turned_off():
    tiled = tile_image(Image.new("RGB", (900, 300)), TilingConfig(tile_size=112, global_view=False))
    assert (tiled.rows, tiled.cols, tiled.has_global) == (2, 6, False)
    assert tiled.pixels.shape[0] == 12
