"""Ingest SROIE receipts (scanned receipts with text lines and four key fields) as key-information samples.

Input: the SROIE folder layout `img/NAME.jpg`, `box/NAME.txt` (one text line per row:
`x1,y1,x2,y2,x3,y3,x4,y4,text`) and `entities/NAME.txt` (a JSON object with company, date, address,
total). `--input` is that folder (it holds `box/`); images come from its `img/` unless `--images` is given.
One sample per receipt, family `kie`: `record.fields` (the key JSON), `record.lines = [{text, quad, bbox}]`.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_text
from pipelines.ingest.targets import quad_box
from pipelines.job import InputError
from pipelines.storage import join_url

KEY_FIELDS = ("company", "date", "address", "total")


def receipt_lines(text: str, name: str) -> list[dict[str, Any]]:
    """The rows `x1,y1,...,x4,y4,text` of a box file (the text may hold commas)."""
    lines = []
    for number, row in enumerate(text.splitlines(), 1):
        if not row.strip():
            continue
        parts = row.split(",", 8)
        try:
            coordinates = [float(v) for v in parts[:8]]
        except ValueError:
            coordinates = []
        if len(parts) != 9 or len(coordinates) != 8:
            raise InputError(f"{name}:{number}", "check boxes", f"expected x1,y1,x2,y2,x3,y3,x4,y4,text; got {row[:120]!r}")
        quad, bbox = quad_box(coordinates, name, f"line {number}")
        lines.append({"text": parts[8].strip(), "quad": quad, "bbox": bbox})
    expect(bool(lines), name, "check boxes", "no text lines")
    return lines


def receipt_fields(text: str, name: str) -> dict[str, str]:
    try:
        entities = json.loads(text)
    except ValueError as exn:
        raise InputError(name, "parse entities", str(exn), exception="JSONDecodeError") from exn
    expect(isinstance(entities, dict), name, "check entities", "the key file must be a JSON object")
    fields = {k: entities[k].strip() for k in KEY_FIELDS if isinstance(entities.get(k), str) and entities[k].strip()}
    expect(bool(fields), name, "check entities", f"none of {', '.join(KEY_FIELDS)} is given")
    return fields


class SroieIngest(AnnotatedIngest):
    format = "sroie"
    family = "kie"
    suffixes = (".txt",)

    def is_annotation(self, rel: str) -> bool:
        return posixpath.basename(posixpath.dirname(rel)) == "box"

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return [{"id": posixpath.splitext(posixpath.basename(url))[0]}], []

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        root = posixpath.dirname(posixpath.dirname(item["file"]))
        lines = receipt_lines(read_text(item["file"], "box file"), item["file"])
        fields = receipt_fields(read_text(f"{root}/entities/{item['id']}.txt", "entities file"),
                                f"{root}/entities/{item['id']}.txt")
        return Targets(f"{item['id']}.jpg", {"fields": fields, "lines": lines})

    def image_url(self, item: dict[str, Any], rel: str) -> str:
        return join_url(self.images_url or f"{posixpath.dirname(posixpath.dirname(item['file']))}/img", rel)
