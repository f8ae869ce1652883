"""Dynamic-resolution tiling (trainer.tiling): grid choice for wide, tall, square, tiny and huge images."""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from trainer.tiling import TilingConfig, candidate_grids, choose_grid, resized, tile_image


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
    assert tiled.pixels.shape == (3, 3, 336, 336) and tiled.pixels.dtype == torch.uint8
    assert (tiled.pixels[1] == 255).all()                                           # left tile: white
    assert (tiled.pixels[2, 0] == 255).all() and (tiled.pixels[2, 1:] == 0).all()   # right tile: red
    global_view = tiled.pixels[0]
    assert (global_view[:, :, :160] == 255).all()                                    # its left half white
    assert (global_view[0, :, 176:] == 255).all() and (global_view[1:, :, 176:] == 0).all()  # its right half red


def test_one_tile_images_have_no_duplicate_global_view():
    tiled = tile_image(Image.new("L", (50, 50)), TilingConfig(tile_size=112))
    assert (tiled.rows, tiled.cols, tiled.has_global) == (1, 1, False)
    assert tiled.pixels.shape == (1, 3, 112, 112)


def test_global_view_can_be_turned_off():
    tiled = tile_image(Image.new("RGB", (900, 300)), TilingConfig(tile_size=112, global_view=False))
    assert (tiled.rows, tiled.cols, tiled.has_global) == (2, 6, False)
    assert tiled.pixels.shape[0] == 12


def text_page(size: int) -> Image.Image:
    """A page of small print: 100 lines of the shipped corpus, 24 px type."""
    page = Image.new("RGB", (size, size), "white")
    draw, font = ImageDraw.Draw(page), ImageFont.load_default(size=24)
    words = Path("synth/corpora/en.txt").read_text().split()
    for n in range(100):
        draw.text((40, 40 + 29 * n), " ".join(words[n * 20:(n + 1) * 20]), fill="black", font=font)
    return page


def test_big_shrinks_average_areas_and_the_rest_is_bicubic():
    page = np.asarray(text_page(3000))[:2000]
    assert np.array_equal(resized(page, 1344, 1008), cv2.resize(page, (1344, 1008), interpolation=cv2.INTER_AREA))
    for width, height in [(2900, 1900), (6000, 1000), (3000, 2000)]:  # mild shrink, one axis up, none
        assert np.array_equal(resized(page, width, height),
                              cv2.resize(page, (width, height), interpolation=cv2.INTER_CUBIC))


def test_small_print_shrunk_into_tiles_matches_the_antialiased_reference():
    """A 3000 px page shrunk 2.2× into 4×4 tiles stays within a grey level of PIL's antialiased bicubic (what
    CLIP's and InternVL's image processors use); bicubic without a low-pass would alias the strokes."""
    page = text_page(3000)
    tiled = tile_image(page, TilingConfig(tile_size=336, max_tiles=16))
    assert (tiled.rows, tiled.cols) == (4, 4)
    grid = tiled.pixels[1:].reshape(4, 4, 3, 336, 336).permute(0, 3, 1, 4, 2).reshape(1344, 1344, 3)
    reference = torch.from_numpy(np.array(page.resize((1344, 1344), Image.Resampling.BICUBIC))).float()
    error = (grid.float() - reference).abs().mean().item()
    aliased = cv2.resize(np.asarray(page), (1344, 1344), interpolation=cv2.INTER_CUBIC)
    assert error < 1.0
    assert (torch.from_numpy(aliased).float() - reference).abs().mean().item() > 2 * error


def test_large_jpegs_decode_at_a_reduced_scale_with_the_same_picture():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (42, 42, 3), dtype=np.uint8)  # 128-px blocks of colour
    page = np.kron(blocks, np.ones((128, 128, 1), dtype=np.uint8))
    data = io.BytesIO()
    Image.fromarray(page).save(data, format="JPEG", quality=95)
    config = TilingConfig(tile_size=336, max_tiles=16)
    image = Image.open(io.BytesIO(data.getvalue()))
    drafted = tile_image(image, config)
    assert image.size == (1344, 1344)  # 5376 px decoded at a quarter: exactly the grid, no finer
    whole = Image.open(io.BytesIO(data.getvalue()))
    whole.load()  # decoded at full size, so no draft
    full = tile_image(whole, config)
    assert drafted.grid == full.grid == (4, 4, True)
    difference = (drafted.pixels.float() - full.pixels.float()).abs()
    assert difference.mean().item() < 3


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_backgrounds_become_white_not_black(mode):
    """A formula or logo PNG with black ink on a transparent background (its hidden colour black) keeps its
    ink visible: transparency is composited onto white."""
    ink = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    ImageDraw.Draw(ink).rectangle((20, 20, 80, 80), fill=(0, 0, 0, 255))
    if mode == "LA":
        ink = ink.convert("LA")
    elif mode == "P":
        ink = ink.convert("P")  # a palette image with one transparent index, as GIFs and small PNGs are
        ink.info["transparency"] = ink.getpixel((0, 0))
    data = io.BytesIO()
    ink.save(data, format="PNG")
    tiled = tile_image(Image.open(io.BytesIO(data.getvalue())), TilingConfig(tile_size=112, max_tiles=2))
    view = tiled.pixels[1]  # the left tile
    assert (view[:, 5, 5] == 255).all()       # the transparent background
    assert (view[:, 50, 50] == 0).all()       # the ink


def test_sixteen_bit_greyscale_scans_keep_their_tones():
    """A 16-bit greyscale PNG (as scanners write) opens as mode I;16; PIL's own conversion clips every value
    over 255 to white, which would leave a blank page."""
    ramp = np.linspace(0, 65535, 224).astype(np.uint16)[None].repeat(112, 0)
    data = io.BytesIO()
    Image.fromarray(ramp).save(data, format="PNG")
    image = Image.open(io.BytesIO(data.getvalue()))
    assert image.mode.startswith("I")
    tiled = tile_image(image, TilingConfig(tile_size=112, max_tiles=2))
    row = tiled.pixels[1, 0, 50].int()  # the left tile: the darker half of the ramp
    assert row[0] <= 2 and 100 <= row[-1] <= 140 and (row.diff() >= 0).all()


@pytest.mark.parametrize("top", [1.0, 255.0, 65535.0])
def test_floating_point_greyscale_keeps_its_tones_whatever_its_units(top):
    """A float TIFF (mode F) in 0-1, 0-255 or 16-bit units: PIL's conversion truncates 0-1 values to black."""
    ramp = np.linspace(0, top, 224, dtype=np.float32)[None].repeat(112, 0)
    data = io.BytesIO()
    Image.fromarray(ramp, mode="F").save(data, format="TIFF")
    image = Image.open(io.BytesIO(data.getvalue()))
    assert image.mode == "F"
    tiled = tile_image(image, TilingConfig(tile_size=112, max_tiles=2))
    row = tiled.pixels[2, 0, 50].int()  # the right tile: the lighter half of the ramp
    assert 120 <= row[0] <= 140 and row[-1] >= 250 and (row.diff() >= 0).all()
