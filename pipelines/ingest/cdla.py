"""Ingest CDLA (Chinese document layout, one labelme JSON per page image) as layout samples.

Input: folders of labelme files (`{imagePath, imageWidth, imageHeight, shapes: [{label, points,
shape_type}]}`), images beside them (or under `--images`). One sample per page, family `layout`, lang
`zh`: `record.layout = [{label, bbox, source_label}]`, CDLA's 10 classes mapped to DocLayNet names.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.ingest.targets import points_box
from pipelines.job import InputError

# CDLA class -> DocLayNet class. CDLA's "Title" marks every heading, "Reference" the bibliography entries.
CDLA_TO_DOCLAYNET = {
    "Text": "Text", "Title": "Section-header", "Figure": "Picture", "Figure caption": "Caption", "Table": "Table",
    "Table caption": "Caption", "Header": "Page-header", "Footer": "Page-footer", "Reference": "Text",
    "Equation": "Formula",
}


def labelme_layout(page: Any, name: str) -> tuple[str, list[dict[str, Any]], tuple[int, int] | None]:
    """A labelme page's image path, layout blocks (in shape order) and claimed image size."""
    expect(isinstance(page, dict) and isinstance(page.get("shapes"), list) and isinstance(page.get("imagePath"), str),
           name, "check labelme", "a labelme file is an object with 'imagePath' and a 'shapes' list")
    blocks = []
    for i, shape in enumerate(page["shapes"]):
        label = shape.get("label") if isinstance(shape, dict) else None
        if label not in CDLA_TO_DOCLAYNET:
            raise InputError(name, "check labelme", f"shapes[{i}]: label {label!r} is not a CDLA class "
                                                    f"({', '.join(CDLA_TO_DOCLAYNET)})")
        blocks.append({"label": CDLA_TO_DOCLAYNET[label], "bbox": points_box(shape.get("points"), name, f"shapes[{i}]"),
                       "source_label": label})
    expect(bool(blocks), name, "check layout", "the page has no shapes")
    width, height = page.get("imageWidth"), page.get("imageHeight")
    size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
    return page["imagePath"].replace("\\", "/"), blocks, size


class CdlaIngest(AnnotatedIngest):
    format = "cdla"
    family = "layout"
    default_lang = "zh"

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return [{"id": posixpath.splitext(posixpath.basename(url))[0]}], []

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        image, blocks, size = labelme_layout(read_json(item["file"], "labelme json"), name)
        return Targets(image, {"layout": blocks}, size=size)
