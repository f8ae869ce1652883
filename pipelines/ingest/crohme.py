"""Ingest CROHME handwritten formulas (InkML pen strokes) as formula samples: strokes rendered to an image.

Input: folders of `.inkml` files (`<ink>` with `<annotation type="truth">$LATEX$</annotation>`, `<trace
id>x y, x y, ...</trace>` and, where segmented, `<traceGroup>`s naming each symbol and its traces).
One sample per file, family `formula`: the strokes drawn in black on white (`KEY.png`, the expression
scaled to `TARGET_HEIGHT` pixels high, anti-aliased), `KEY.tex` = the truth LaTeX without its `$` in the
canonical tokens every formula source writes (`formula_target`; `record.latex_raw` as the file has it),
`record.symbols = [{label, bbox}]` in the rendered image's pixels when the file is segmented.
"""

from __future__ import annotations

import io
import posixpath
import xml.etree.ElementTree as ET
from typing import Any

from PIL import Image, ImageDraw

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_bytes
from pipelines.ingest.targets import formula_target, pixel
from pipelines.job import InputError

INKML = "{http://www.w3.org/2003/InkML}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
TARGET_HEIGHT = 96  # pixels the expression's ink is scaled to (wide expressions: MAX_WIDTH wins)
MAX_WIDTH = 1024
PAD = 12
STROKE = 3
SUPERSAMPLE = 2

Stroke = list[tuple[float, float]]


def parse_trace(text: str | None, name: str, trace_id: str) -> Stroke:
    """`x y[ t ...], x y, ...` -> points (channels after X and Y, such as time, are dropped)."""
    points = []
    for point in (text or "").strip().split(","):
        values = point.split()
        try:
            points.append((float(values[0]), float(values[1])))
        except (IndexError, ValueError) as exn:
            raise InputError(name, "parse inkml", f"trace {trace_id}: bad point {point.strip()[:40]!r}",
                             exception=type(exn).__name__) from exn
    return points


def read_ink(data: bytes, name: str) -> tuple[str, dict[str, Stroke], list[tuple[str, list[str]]]]:
    """The truth LaTeX (without `$`), the strokes by trace id, and the labelled symbols (label, trace ids)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exn:
        raise InputError(name, "parse inkml", str(exn), exception="ParseError") from exn
    truth = next((a.text for a in root.findall(f"{INKML}annotation") if a.get("type") == "truth"), None)
    latex = (truth or "").strip().strip("$").strip()
    expect(bool(latex), name, "parse inkml", "no <annotation type=\"truth\"> LaTeX")
    strokes = {t.get("id", str(i)): parse_trace(t.text, name, t.get("id", str(i)))
               for i, t in enumerate(root.iter(f"{INKML}trace"))}
    expect(bool(strokes), name, "parse inkml", "no <trace> strokes")
    symbols = []
    for group in root.iter(f"{INKML}traceGroup"):
        label = next((a.text for a in group.findall(f"{INKML}annotation") if a.get("type") == "truth"), None)
        refs = [view.get("traceDataRef") for view in group.findall(f"{INKML}traceView")]
        if label and refs:
            missing = [r for r in refs if r not in strokes]
            expect(not missing, name, "parse inkml", f"symbol {label!r} refers to missing traces {missing}")
            symbols.append((label.strip(), refs))
    return latex, strokes, symbols


def render_strokes(strokes: dict[str, Stroke]) -> tuple[bytes, Any]:
    """The strokes drawn as a PNG, and the function mapping ink coordinates to the image's pixels."""
    xs = [x for stroke in strokes.values() for x, _ in stroke]
    ys = [y for stroke in strokes.values() for _, y in stroke]
    left, top = min(xs), min(ys)
    ink_width, ink_height = max(xs) - left, max(ys) - top
    scale = min(TARGET_HEIGHT / max(ink_height, 1e-9), MAX_WIDTH / max(ink_width, 1e-9))

    def to_pixels(x: float, y: float) -> tuple[float, float]:
        return (x - left) * scale + PAD, (y - top) * scale + PAD

    width, height = round(ink_width * scale) + 2 * PAD, round(ink_height * scale) + 2 * PAD
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 255)
    draw = ImageDraw.Draw(canvas)
    radius = STROKE * SUPERSAMPLE / 2
    for stroke in strokes.values():
        points = [(px * SUPERSAMPLE, py * SUPERSAMPLE) for px, py in (to_pixels(x, y) for x, y in stroke)]
        if len(points) > 1:
            draw.line(points, fill=0, width=STROKE * SUPERSAMPLE, joint="curve")
        for px, py in (points[0], points[-1]):  # round caps (and dots: one-point strokes)
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=0)
    out = io.BytesIO()
    canvas.resize((width, height), Image.Resampling.LANCZOS).save(out, "PNG")
    return out.getvalue(), to_pixels


def symbol_boxes(symbols: list[tuple[str, list[str]]], strokes: dict[str, Stroke], to_pixels: Any) -> list[dict[str, Any]]:
    boxes = []
    for label, refs in symbols:
        points = [to_pixels(x, y) for ref in refs for x, y in strokes[ref]]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        boxes.append({"label": label, "bbox": [pixel(round(min(xs), 1)), pixel(round(min(ys), 1)),
                                               pixel(round(max(xs), 1)), pixel(round(max(ys), 1))]})
    return boxes


class CrohmeIngest(AnnotatedIngest):
    format = "crohme"
    family = "formula"
    suffixes = (".inkml",)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return [{"id": posixpath.splitext(posixpath.basename(url))[0]}], []

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        latex, strokes, symbols = read_ink(read_bytes(item["file"], "inkml"), name)
        image, to_pixels = render_strokes(strokes)
        target = formula_target(latex, name)
        record: dict[str, Any] = {"latex": target, "latex_raw": latex, "strokes": len(strokes)}
        if symbols:
            record["symbols"] = symbol_boxes(symbols, strokes, to_pixels)
        return Targets(image, record, members={"tex": target})
