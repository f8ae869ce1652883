"""Targets as ingest writes them: boxes (how formats write them, how they are checked and how the report
finds them) and formula LaTeX (`formula_target`).

Targets hold boxes in image pixels, as `bbox: [x1, y1, x2, y2]` (corners, x1 <= x2, y1 <= y2) and,
where a format has four-point boxes, `quad: [[x, y] x 4]`, at any depth of the record (`layout`,
`entities[].words`, `lines`, `cells`, `symbols`). Ingest checks every one of them against the image
(`check_boxes`); the report outlines them (`record_quads`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.job import InputError
from synth.formulas import FormulaError, normalize_latex

EDGE_SLACK = 1.0  # pixels a box may overhang the image edge (annotation tools round outwards)
SKIPPED_KEYS = ("image", "provenance", "meta")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def pixel(value: float) -> int | float:
    """A coordinate as written to a record: integers stay integers, other values keep two decimals."""
    return int(value) if float(value).is_integer() else round(float(value), 2)


def corner_box(values: Any, name: str, where: str) -> list[int | float]:
    """`[x1, y1, x2, y2]` checked to be four numbers with x1 <= x2 and y1 <= y2."""
    if not (isinstance(values, (list, tuple)) and len(values) == 4 and all(map(is_number, values))):
        raise InputError(name, "check box", f"{where}: a box is 4 numbers [x1, y1, x2, y2], got {values!r}")
    x1, y1, x2, y2 = values
    if x2 < x1 or y2 < y1:
        raise InputError(name, "check box", f"{where}: box {list(values)} has x2 < x1 or y2 < y1")
    return [pixel(v) for v in values]


def coco_box(values: Any, name: str, where: str) -> list[int | float]:
    """COCO's `[x, y, width, height]` as corners `[x, y, x + width, y + height]`."""
    if not (isinstance(values, (list, tuple)) and len(values) == 4 and all(map(is_number, values))):
        raise InputError(name, "check box", f"{where}: a COCO bbox is 4 numbers [x, y, w, h], got {values!r}")
    x, y, w, h = values
    if w < 0 or h < 0:
        raise InputError(name, "check box", f"{where}: COCO bbox {list(values)} has a negative size")
    return corner_box([x, y, x + w, y + h], name, where)


def quad_box(values: Any, name: str, where: str) -> tuple[list[list[int | float]], list[int | float]]:
    """Four points (8 numbers `x1,y1,...,x4,y4`, or 4 `[x, y]` pairs) as a quad and its enclosing box."""
    if isinstance(values, (list, tuple)) and len(values) == 4 and all(isinstance(p, (list, tuple)) for p in values):
        values = [v for point in values for v in point]
    if not (isinstance(values, (list, tuple)) and len(values) == 8 and all(map(is_number, values))):
        raise InputError(name, "check box", f"{where}: a four-point box is 8 numbers x1,y1,...,x4,y4, got {values!r}")
    xs, ys = values[0::2], values[1::2]
    quad = [[pixel(x), pixel(y)] for x, y in zip(xs, ys)]
    return quad, [pixel(min(xs)), pixel(min(ys)), pixel(max(xs)), pixel(max(ys))]


def points_box(points: Any, name: str, where: str) -> list[int | float]:
    """The enclosing box of a polygon given as `[[x, y], ...]` (labelme shapes)."""
    if not (isinstance(points, list) and len(points) >= 2 and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(map(is_number, p)) for p in points)):
        raise InputError(name, "check box", f"{where}: points must be at least two [x, y] pairs, got {str(points)[:120]}")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [pixel(min(xs)), pixel(min(ys)), pixel(max(xs)), pixel(max(ys))]


def record_boxes(value: Any, where: str = "") -> Iterator[tuple[str, str, list]]:
    """Every `(where, "bbox"|"quad", box)` in a record's targets, depth first, in order; where an object has
    both, its quad (the bbox encloses it)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in SKIPPED_KEYS or (key == "bbox" and isinstance(value.get("quad"), list)):
                continue
            here = f"{where}.{key}" if where else key
            if key in ("bbox", "quad") and isinstance(inner, list):
                yield here, key, inner
            else:
                yield from record_boxes(inner, here)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from record_boxes(inner, f"{where}[{i}]")


def check_boxes(record: dict[str, Any], width: int, height: int, name: str) -> None:
    """Raise `InputError(name, "check box", ...)` for the first box that leaves the `width` x `height` image."""
    for where, kind, box in record_boxes(record):
        points = box if kind == "quad" else [box[:2], box[2:]]
        for x, y in points:
            if not (-EDGE_SLACK <= x <= width + EDGE_SLACK and -EDGE_SLACK <= y <= height + EDGE_SLACK):
                raise InputError(name, "check box", f"{where} {box} lies outside the {width}x{height} image")


def record_quads(record: dict[str, Any]) -> list[list[list[float]]]:
    """Every box of a record as a four-point polygon (quads as they are, corner boxes as rectangles)."""
    quads = []
    for _, kind, box in record_boxes(record):
        try:
            if kind == "quad":
                quads.append([[float(x), float(y)] for x, y in box])
            else:
                x1, y1, x2, y2 = map(float, box)
                quads.append([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
        except (TypeError, ValueError):
            continue
    return quads


def formula_target(latex: str, name: str) -> str:
    """A formula's LaTeX as every formula source writes its target: `synth.formulas.normalize_latex`'s tokens,
    as `docforge build formulas` writes them (the dataset's own form stays in the record as `latex_raw`);
    `InputError` when it does not tokenise."""
    try:
        return normalize_latex(latex)
    except FormulaError as exn:
        raise InputError(name, "normalize formula", str(exn), exception="FormulaError") from exn
