"""Ingest WildReceipt (receipt photos with labelled text boxes) as key-information samples.

Input: the annotation files (`train.txt` / `test.txt`: JSON lines `{file_name, width, height,
annotations: [{box: [x1, y1, ..., x4, y4], text, label}]}`) with the dataset's `class_list.txt`
(`ID NAME` per line) beside them; image paths are relative to the annotation file's folder (or
`--images`). One sample per receipt, family `kie`: `record.lines = [{text, label, quad, bbox}]` and
`record.fields = {name: text or [texts]}` from the `NAME_value` classes (`Store_name_value` -> `Store_name`).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_text, text_lines
from pipelines.ingest.targets import quad_box
from pipelines.job import InputError

CLASS_LIST = "class_list.txt"
VALUE_SUFFIX = "_value"


def read_class_list(text: str, url: str) -> dict[int, str]:
    classes = {}
    for number, row in enumerate(text_lines(text), 1):
        parts = row.split(None, 1)
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise InputError(f"{url}:{number}", "read class list", f"expected 'ID NAME', got {row[:120]!r}")
        classes[int(parts[0])] = parts[1].strip()
    expect(bool(classes), url, "read class list", "no classes")
    return classes


def receipt_targets(annotation: dict[str, Any], classes: dict[int, str], name: str) -> dict[str, Any]:
    boxes = annotation.get("annotations")
    expect(isinstance(boxes, list) and boxes != [], name, "check receipt", "'annotations' must be a non-empty list")
    lines = []
    values: dict[str, list[str]] = {}
    for i, box in enumerate(boxes):
        if not isinstance(box, dict) or not isinstance(box.get("text"), str) or box.get("label") not in classes:
            raise InputError(name, "check receipt", f"annotations[{i}]: needs 'box', 'text' and a 'label' from "
                                                    f"{CLASS_LIST}, got {str(box)[:160]}")
        label = classes[box["label"]]
        quad, bbox = quad_box(box.get("box"), name, f"annotations[{i}]")
        lines.append({"text": box["text"], "label": label, "quad": quad, "bbox": bbox})
        if label.endswith(VALUE_SUFFIX) and box["text"].strip():
            values.setdefault(label.removesuffix(VALUE_SUFFIX), []).append(box["text"].strip())
    expect(bool(values), name, "check receipt", f"no text labelled with a *{VALUE_SUFFIX} class")
    return {"fields": {k: v[0] if len(v) == 1 else v for k, v in values.items()}, "lines": lines}


class WildreceiptIngest(AnnotatedIngest):
    format = "wildreceipt"
    family = "kie"
    suffixes = (".txt", ".jsonl")

    def is_annotation(self, rel: str) -> bool:
        return posixpath.basename(rel) != CLASS_LIST

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        class_url = f"{posixpath.dirname(url)}/{CLASS_LIST}"
        classes = read_class_list(read_text(class_url, "class list"), class_url)
        items, errors = [], []
        for number, row in enumerate(text_lines(read_text(url, "annotations")), 1):
            if not row.strip():
                continue
            try:
                annotation = json.loads(row)
            except ValueError as exn:
                errors.append(InputError(f"{url}:{number}", "parse json", str(exn), exception="JSONDecodeError"))
                continue
            if not isinstance(annotation, dict) or not isinstance(annotation.get("file_name"), str):
                errors.append(InputError(f"{url}:{number}", "check receipt", "a line is an object with 'file_name'"))
                continue
            items.append({"id": posixpath.splitext(annotation["file_name"])[0], "line": number,
                          "annotation": annotation, "classes": {str(k): v for k, v in classes.items()}})
        return items, errors

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        annotation = item["annotation"]
        classes = {int(k): v for k, v in item["classes"].items()}
        width, height = annotation.get("width"), annotation.get("height")
        size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        return Targets(annotation["file_name"], receipt_targets(annotation, classes, name), size=size)
