"""Where the document lands on the page: a map from document pixels to page pixels, applied both to
images (the text's ink) and to points (word and line corners), so boxes follow the ink exactly.

Two kinds: a whole-pixel `Translation` (a flat document: no resampling), and a `MeshWarp`, a piecewise
bilinear map on a grid of page cells that carries a perspective placement and an elastic distortion.
The mesh *is* the warp: images are resampled through it (OpenCV: the grid scaled up to one source point
per page pixel, then `cv2.remap`), and points are mapped by inverting the same bilinear cells.
"""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from PIL import Image

# A page is rendered on one core; OpenCV's own thread pool would only compete with the other workers.
cv2.setNumThreads(1)

# Page-space cell of the mesh: small against the elastic wavelengths (the map is bilinear inside it).
MESH_CELL = 64


def homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking the 4 `source` points to the 4 `target` points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    h = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    return mapped[:, :2] / mapped[:, 2:3]


class Translation:
    """The document pasted at a whole-pixel offset (offset 0: the document is the page)."""

    def __init__(self, dx: int, dy: int, page_size: tuple[int, int]):
        self.dx, self.dy = dx, dy
        self.page_size = page_size

    def map_points(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) + (self.dx, self.dy)

    def warp(self, layer: Image.Image, region: tuple[int, int, int, int] | None = None) -> Image.Image:
        """`layer` (document pixels) on a page-sized layer of the same mode, zero elsewhere (`region` is
        for the mesh's sake: nothing is resampled here)."""
        if (self.dx, self.dy) == (0, 0) and layer.size == self.page_size:
            return layer
        page = Image.new(layer.mode, self.page_size, 0)
        page.paste(layer, (self.dx, self.dy))
        return page

    def warp_part(self, layer: Image.Image, region: tuple[int, int, int, int]) -> tuple[Image.Image, tuple[int, int]]:
        """The `region` (a document-pixel box) of `layer` as it lands on the page, and where its top-left
        corner lands."""
        return layer.crop(region), (region[0] + self.dx, region[1] + self.dy)

    def describe(self) -> dict:
        return {"kind": "translation", "offset": [self.dx, self.dy]}


class MeshWarp:
    """Page pixel q shows document pixel S(q), S bilinear inside each MESH_CELL page cell.

    `nodes[j, i]` is S at page point (xs[i], ys[j]). The nodes sit half a cell off the page's pixel grid
    (xs = -MESH_CELL/2, +MESH_CELL/2, ...), where scaling the node grid up by MESH_CELL (`cv2.resize`,
    bilinear) evaluates S at the page's pixel centres. A document point p maps to the page point q
    with S(q) = p, found by Newton steps on the cells.
    """

    def __init__(self, page_size: tuple[int, int], to_page: np.ndarray, elastic: dict | None):
        """From a document->page homography and optional elastic waves (page-space displacements)."""
        width, height = page_size
        self.page_size = page_size
        self.to_page = to_page
        self.elastic = elastic
        # Nodes every MESH_CELL pixels from -MESH_CELL/2, the last at or past the page's edge.
        half = MESH_CELL / 2
        self.xs = np.arange(-(-(width + half) // MESH_CELL) + 1, dtype=np.float64) * MESH_CELL - half
        self.ys = np.arange(-(-(height + half) // MESH_CELL) + 1, dtype=np.float64) * MESH_CELL - half
        grid = np.stack(np.meshgrid(self.xs, self.ys), axis=-1)  # (ny, nx, 2) page points
        if elastic is not None:
            grid = grid + elastic_displacement(grid, elastic)
        self.nodes = apply_homography(np.linalg.inv(to_page), grid.reshape(-1, 2)).reshape(grid.shape)
        n = self.nodes
        a, b, c = n[:-1, :-1], n[:-1, 1:] - n[:-1, :-1], n[1:, :-1] - n[:-1, :-1]
        d = n[1:, 1:] - n[1:, :-1] - n[:-1, 1:] + n[:-1, :-1]
        # Per cell, S = a + b u + c v + d u v: eight flat arrays (a_x, a_y, b_x, ..., d_y) by cell index.
        self._coefficients = [part[..., axis].ravel() for part in (a, b, c, d) for axis in (0, 1)]

    def describe(self) -> dict:
        return {"kind": "mesh", "cell": MESH_CELL, "document_to_page": np.round(self.to_page, 9).tolist(),
                "elastic": self.elastic}

    def _cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat cell index, and the position (u, v) in that cell (extrapolated past the page)."""
        fx, fy = (x - self.xs[0]) * (1 / MESH_CELL), (y - self.ys[0]) * (1 / MESH_CELL)
        i = np.minimum(np.maximum(fx.astype(np.int64), 0), len(self.xs) - 2)
        j = np.minimum(np.maximum(fy.astype(np.int64), 0), len(self.ys) - 2)
        return j * (len(self.xs) - 1) + i, fx - i, fy - j

    def source(self, q: np.ndarray) -> np.ndarray:
        """S(q): the document point that page point q shows."""
        q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
        cell, u, v = self._cell_of(q[:, 0], q[:, 1])
        k = [coefficient[cell] for coefficient in self._coefficients]
        return np.stack([k[0] + k[2] * u + k[4] * v + k[6] * u * v, k[1] + k[3] * u + k[5] * v + k[7] * u * v], axis=1)

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """The page points showing document `points`: Newton steps on S(q) = p from the homography's guess."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        q = apply_homography(self.to_page, p)
        x, y = q[:, 0].copy(), q[:, 1].copy()
        for _ in range(12):
            cell, u, v = self._cell_of(x, y)
            k = [coefficient[cell] for coefficient in self._coefficients]
            uv = u * v
            rx = k[0] + k[2] * u + k[4] * v + k[6] * uv - p[:, 0]
            ry = k[1] + k[3] * u + k[5] * v + k[7] * uv - p[:, 1]
            if max(np.abs(rx).max(initial=0.0), np.abs(ry).max(initial=0.0)) < 1e-6:
                break
            # Jacobian of S per page pixel: dS/du = b + d v, dS/dv = c + d u, over the cell's size.
            jxu, jyu = (k[2] + k[6] * v) / MESH_CELL, (k[3] + k[7] * v) / MESH_CELL
            jxv, jyv = (k[4] + k[6] * u) / MESH_CELL, (k[5] + k[7] * u) / MESH_CELL
            det = jxu * jyv - jxv * jyu
            x -= (jyv * rx - jxv * ry) / det
            y -= (jxu * ry - jyu * rx) / det
        return np.stack([x, y], axis=1)

    def warp(self, layer: Image.Image, region: tuple[int, int, int, int] | None = None) -> Image.Image:
        """`layer` (document pixels) resampled onto the page; only cells whose source touches `region`
        (a document-pixel box; default the whole layer) are computed, the rest stay zero."""
        part, origin = self.warp_part(layer, region if region is not None else (0, 0, *layer.size))
        page = Image.new(layer.mode, self.page_size, 0)
        page.paste(part, origin)
        return page

    def warp_part(self, layer: Image.Image, region: tuple[int, int, int, int]) -> tuple[Image.Image, tuple[int, int]]:
        """`layer` ("L" or "F", document pixels) resampled (bilinear) onto the page cells whose source
        touches `region` (a document-pixel box): the image of the page box those cells cover, and its
        top-left page corner."""
        x0, y0, x1, y1 = region
        n = self.nodes
        corners = np.stack([n[:-1, :-1], n[1:, :-1], n[1:, 1:], n[:-1, 1:]], axis=0)
        low, high = corners.min(axis=0), corners.max(axis=0)
        touches = ((high[..., 0] >= x0 - 1) & (low[..., 0] <= x1 + 1)
                   & (high[..., 1] >= y0 - 1) & (low[..., 1] <= y1 + 1))
        rows, cols = np.nonzero(touches)
        i0, i1, j0, j1 = cols.min(initial=0), cols.max(initial=-1), rows.min(initial=0), rows.max(initial=-1)
        left, top = max(0, int(self.xs[i0])), max(0, int(self.ys[j0]))
        right, bottom = min(self.page_size[0], int(self.xs[i1 + 1])), min(self.page_size[1], int(self.ys[j1 + 1]))
        if right <= left or bottom <= top:
            return Image.new(layer.mode, (1, 1), 0), (0, 0)
        # Source points (pixel-index coordinates: a pixel's centre is at +0.5) at the pixel centres of the
        # touched cells: node i of the block lands on block pixel MESH_CELL * i + MESH_CELL / 2 - 0.5.
        block = (n[j0 : j1 + 2, i0 : i1 + 2] - 0.5).astype(np.float32)
        dense = cv2.resize(block, (block.shape[1] * MESH_CELL, block.shape[0] * MESH_CELL),
                           interpolation=cv2.INTER_LINEAR)
        ox, oy = round(self.xs[i0] + MESH_CELL / 2 - MESH_CELL), round(self.ys[j0] + MESH_CELL / 2 - MESH_CELL)
        points = dense[top - oy : bottom - oy, left - ox : right - ox]
        fixed, fraction = cv2.convertMaps(points, None, cv2.CV_16SC2)
        source = np.asarray(layer)
        warped = cv2.remap(source, fixed, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return Image.fromarray(warped), (left, top)


def elastic_displacement(points: np.ndarray, elastic: dict) -> np.ndarray:
    """Sum of plane waves: each (amplitude px, wavelength px, direction rad, phase rad, axis 0/1)."""
    shift = np.zeros_like(points, dtype=np.float64)
    for amplitude, wavelength, direction, phase, axis in elastic["waves"]:
        along = points[..., 0] * math.cos(direction) + points[..., 1] * math.sin(direction)
        shift[..., axis] += amplitude * np.sin(2 * math.pi * along / wavelength + phase)
    return shift


def draw_elastic(page_short: int, strength: tuple[float, float], rnd: random.Random) -> dict:
    """Random elastic waves: two per axis, amplitude `strength` x page short side, wavelength 25-60 %."""
    waves = []
    for axis in (0, 1):
        for _ in range(2):
            waves.append([round(rnd.uniform(*strength) * page_short, 3), round(rnd.uniform(0.25, 0.6) * page_short, 3),
                          round(rnd.uniform(0, 2 * math.pi), 6), round(rnd.uniform(0, 2 * math.pi), 6), axis])
    return {"waves": waves}


def place_document(document_size: tuple[int, int], page_size: tuple[int, int], max_rotation: float,
                   max_corner_shift: float, rnd: random.Random) -> tuple[np.ndarray, dict]:
    """A document->page homography: rotate about the centre, move each corner by up to
    `max_corner_shift` x document size, shrink to fit with a small border, and place at random."""
    dw, dh = document_size
    pw, ph = page_size
    corners = np.array([[0, 0], [dw, 0], [dw, dh], [0, dh]], dtype=np.float64)
    angle = math.radians(rnd.uniform(-max_rotation, max_rotation))
    centred = corners - (dw / 2, dh / 2)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = centred @ rotation.T
    moved += np.array([[rnd.uniform(-1, 1) * max_corner_shift * dw, rnd.uniform(-1, 1) * max_corner_shift * dh]
                       for _ in range(4)])
    border = 0.02 * min(pw, ph)
    extent = moved.max(axis=0) - moved.min(axis=0)
    scale = min(1.0, (pw - 2 * border) / extent[0], (ph - 2 * border) / extent[1])
    moved *= scale
    low = moved.min(axis=0)
    room = np.array([pw, ph]) - 2 * border - (moved.max(axis=0) - low)
    offset = border - low + np.array([rnd.uniform(0, room[0]), rnd.uniform(0, room[1])])
    target = moved + offset
    params = {"rotation_deg": round(math.degrees(angle), 3), "scale": round(float(scale), 4),
              "corners": np.round(target, 2).tolist()}
    return homography(corners, target), params
