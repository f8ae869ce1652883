"""synth.geometry: the mesh warp moves points exactly as it moves pixels."""

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from synth.geometry import MeshWarp, Translation, draw_elastic, place_document


def _warp(seed: int) -> tuple[MeshWarp, tuple[int, int]]:
    rnd = random.Random(seed)
    document, page = (700, 900), (1000, 1200)
    to_page, _ = place_document(document, page, 4.0, 0.04, rnd)
    return MeshWarp(page, to_page, draw_elastic(1000, (0.001, 0.003), rnd)), document


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mapped_points_are_shown_at_their_source(seed):
    warp, (width, height) = _warp(seed)
    points = np.random.default_rng(seed).uniform([0, 0], [width, height], size=(2000, 2))
    assert np.abs(warp.source(warp.map_points(points)) - points).max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_warped_pixels_land_where_their_points_map(seed):
    warp, document = _warp(seed)
    layer = Image.new("L", document, 0)
    spots = [(100, 100), (350, 450), (600, 800), (60, 840), (640, 60)]
    for x, y in spots:
        ImageDraw.Draw(layer).rectangle([x, y, x + 11, y + 7], fill=255)  # covers [x, x+12) x [y, y+8)
    page = np.asarray(warp.warp(layer.convert("F"))).astype(np.float64)
    for x, y in spots:
        centre = warp.map_points(np.array([[x + 6.0, y + 4.0]]))[0]
        x0, y0 = (centre - 15).astype(int)
        patch = page[y0 : y0 + 30, x0 : x0 + 30]
        rows, cols = np.mgrid[y0 : y0 + 30, x0 : x0 + 30] + 0.5  # pixel centres
        ink_centre = np.array([(patch * cols).sum(), (patch * rows).sum()]) / patch.sum()
        # OpenCV's remap places its bilinear samples on a 1/32-pixel grid: a few hundredths of a pixel.
        assert np.abs(ink_centre - centre).max() < 0.08


def test_translation_pastes_without_resampling():
    layer = Image.new("L", (50, 40), 0)
    layer.putpixel((3, 4), 200)
    moved = Translation(10, 20, (100, 100))
    assert moved.warp(layer).getpixel((13, 24)) == 200
    assert moved.map_points(np.array([[3.0, 4.0]])).tolist() == [[13.0, 24.0]]
