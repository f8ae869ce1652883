"""Ingest DocLayNet (COCO JSON + page images) as layout samples.

Input: a COCO file (`COCO/train.json`: `images [{id, file_name, width, height, ...}]`, `annotations
[{id, image_id, category_id, bbox: [x, y, w, h]}]`, `categories [{id, name}]`) and `--images` (the
`PNG/` folder). One sample per page, family `layout`: `record.layout = [{label, bbox: [x1, y1, x2, y2]}]`
in the file's annotation order, labels DocLayNet's 11 class names, boxes in pixel corners.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.ingest.targets import coco_box
from pipelines.job import InputError

DOCLAYNET_CLASSES = ("Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header", "Picture",
                     "Section-header", "Table", "Text", "Title")
PAGE_META = ("doc_category", "collection", "doc_name", "page_no")


def coco_pages(coco: Any, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
    """The pages of a COCO file, each with its annotations in file order; annotations naming an unknown
    image or category are errors."""
    expect(isinstance(coco, dict) and all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")),
           url, "check coco", "a COCO file is an object with 'images', 'annotations' and 'categories' lists")
    categories = {c.get("id"): c.get("name") for c in coco["categories"] if isinstance(c, dict)}
    pages: dict[Any, dict[str, Any]] = {}
    errors = []
    for i, image in enumerate(coco["images"]):
        if not (isinstance(image, dict) and isinstance(image.get("file_name"), str) and "id" in image):
            errors.append(InputError(f"{url}#images[{i}]", "check coco",
                                     f"an image needs 'id' and 'file_name', got {str(image)[:120]}"))
            continue
        pages[image["id"]] = {"id": posixpath.splitext(image["file_name"])[0], "image": image["file_name"],
                              "size": [image.get("width"), image.get("height")],
                              "meta": {k: image[k] for k in PAGE_META if k in image}, "blocks": []}
    for i, annotation in enumerate(coco["annotations"]):
        name = f"{url}#annotations[{i}]"
        if not isinstance(annotation, dict) or annotation.get("image_id") not in pages:
            errors.append(InputError(name, "check coco", f"annotation of an unknown image: {str(annotation)[:120]}"))
            continue
        label = categories.get(annotation.get("category_id"))
        if label not in DOCLAYNET_CLASSES:
            errors.append(InputError(name, "check coco", f"category {annotation.get('category_id')!r} ({label!r}) "
                                                         f"is not one of DocLayNet's classes {', '.join(DOCLAYNET_CLASSES)}"))
            continue
        pages[annotation["image_id"]]["blocks"].append({"label": label, "coco_bbox": annotation.get("bbox"),
                                                        "annotation": annotation.get("id", i)})
    return list(pages.values()), errors


def layout_blocks(blocks: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    expect(bool(blocks), name, "check layout", "the page has no layout annotations")
    return [{"label": b["label"], "bbox": coco_box(b["coco_bbox"], name, f"annotation {b['annotation']}")}
            for b in blocks]


class DoclaynetIngest(AnnotatedIngest):
    format = "doclaynet"
    family = "layout"

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return coco_pages(read_json(url, "coco json"), url)

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        width, height = item["size"]
        size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        return Targets(item["image"], {"layout": layout_blocks(item["blocks"], name), "meta": item["meta"]}, size=size)
