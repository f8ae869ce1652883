"""Ingest SROIE receipts (scanned receipts with text lines and four key fields) as key-information samples.

Input, in either layout the set comes in:
- the Kaggle repackaging (`SROIE2019/train`): `img/NAME.jpg`, `box/NAME.txt` (one text line per row:
  `x1,y1,x2,y2,x3,y3,x4,y4,text`) and `entities/NAME.txt` (a JSON object with company, date, address,
  total); `--input` is that folder (it holds `box/`), the key files come from its `entities/`;
- the official release: `NAME.jpg` and the box file `NAME.txt` side by side (`0325updated.task1train(626p)`)
  as `--input`, the key files in another folder (`0325updated.task2train(626p)`) given as `--entities`.
Images come from `img/` or from beside the box file (`.jpg` or `.JPG`) unless `--images` is given. The
text files are not all UTF-8: each is read as UTF-8, else Windows-1252, else Latin-1, and the record's
provenance says which. One sample per receipt, family `kie`: `record.fields` (the key JSON),
`record.lines = [{text, quad, bbox}]`.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pipelines.ingest.annotated import (AnnotatedIngest, Targets, expect, find_input_files, read_text_any_encoding,
                                        text_lines)
from pipelines.ingest.targets import quad_box
from pipelines.job import InputError, Plan
from pipelines.storage import Folder, absolute_url, join_url

KEY_FIELDS = ("company", "date", "address", "total")


def receipt_lines(text: str, name: str) -> list[dict[str, Any]]:
    """The rows `x1,y1,...,x4,y4,text` of a box file (the text may hold commas)."""
    lines = []
    for number, row in enumerate(text_lines(text), 1):
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


def in_box_folder(url: str) -> bool:
    """Whether a box file is in the Kaggle layout (`box/NAME.txt`) rather than beside its image."""
    return posixpath.basename(posixpath.dirname(url)) == "box"


class SroieIngest(AnnotatedIngest):
    format = "sroie"
    family = "kie"
    suffixes = (".txt",)

    def __init__(self, inputs: list[str], images_url: str | None, source: str, lang: str | None = None,
                 items_per_task: int = 1000, entities_url: str | None = None):
        super().__init__(inputs, images_url, source, lang, items_per_task)
        self.entities_url = absolute_url(entities_url) if entities_url else None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "entities": self.entities_url}

    def is_annotation(self, rel: str) -> bool:
        folder = posixpath.basename(posixpath.dirname(rel))
        return folder == "box" or (self.entities_url is not None and folder != "entities")

    def plan(self) -> Plan:
        try:
            return super().plan()
        except FileNotFoundError:
            if self.entities_url is None and find_input_files(self.inputs, self.suffixes):
                raise FileNotFoundError(f"{' '.join(self.inputs)}: no box/*.txt files; SROIE's official layout "
                                        "(X*.jpg + X*.txt side by side) needs --entities, the folder of its key-field "
                                        "files (0325updated.task2train(626p))") from None
            raise

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return [{"id": posixpath.splitext(posixpath.basename(url))[0]}], []

    def key_file(self, item: dict[str, Any]) -> str:
        folder = self.entities_url or f"{posixpath.dirname(posixpath.dirname(item['file']))}/entities"
        return join_url(folder, f"{item['id']}.txt")

    def image_folder(self, item: dict[str, Any]) -> str:
        if self.images_url:
            return self.images_url
        if in_box_folder(item["file"]):
            return f"{posixpath.dirname(posixpath.dirname(item['file']))}/img"
        return posixpath.dirname(item["file"])

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        box_text, box_encoding = read_text_any_encoding(item["file"], "box file")
        lines = receipt_lines(box_text, item["file"])
        key_url = self.key_file(item)
        key_text, key_encoding = read_text_any_encoding(key_url, "entities file")
        fields = receipt_fields(key_text, key_url)
        images = Folder(self.image_folder(item))
        image = next((f"{item['id']}{ext}" for ext in (".jpg", ".JPG") if images.exists(f"{item['id']}{ext}")),
                     f"{item['id']}.jpg")
        encodings = {"box": box_encoding, "entities": key_encoding}
        return Targets(image, {"fields": fields, "lines": lines},
                       provenance={"entities_file": key_url, "encodings": encodings})

    def image_url(self, item: dict[str, Any], rel: str) -> str:
        return join_url(self.image_folder(item), rel)
