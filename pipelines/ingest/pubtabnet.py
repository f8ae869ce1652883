"""Ingest PubTabNet (table images + structure and cell tokens) as table samples with HTML targets.

Input: the JSONL annotation file (`PubTabNet_2.0.0.jsonl`: per line `{filename, split, imgid, html:
{structure: {tokens: ["<thead>", "<tr>", "<td>", "</td>", "<td", ' colspan="2"', ">", ...]}, cells:
[{tokens: [...], bbox?: [x1, y1, x2, y2]}]}}`) and `--images`, the folder holding `train/`, `val/`,
`test/` (a record's split picks the sub-folder). One sample per table, family `table`: `KEY.html`, the
table rebuilt as PubTabNet's own code does (`<table>…</table>`, each cell's tokens inserted after its
`<td>` / `>`, single characters HTML-escaped), and `record.structure` + `record.cells` (text, tokens, bbox
when the cell has content), so the structure and boxes stay at hand.
"""

from __future__ import annotations

import html
import json
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect
from pipelines.ingest.targets import corner_box
from pipelines.job import InputError
from pipelines.storage import open_url

CELL_OPENERS = ("<td>", ">")  # the structure tokens a cell's content follows


def table_html(structure: list[str], cells: list[list[str]]) -> str:
    """The table's HTML from its structure tokens and each cell's content tokens (one list per cell)."""
    parts = []
    cell = iter(cells)
    for token in structure:
        parts.append(token)
        if token in CELL_OPENERS:
            parts.append("".join(html.escape(t) if len(t) == 1 else t for t in next(cell)))
    return f"<table>{''.join(parts)}</table>"


def cell_text(tokens: list[str]) -> str:
    """A cell's text without its inline tags (`<b>`, `<i>`, `<sup>`, ...)."""
    return "".join(t for t in tokens if len(t) == 1 or not (t.startswith("<") and t.endswith(">")))


def table_targets(annotation: Any, name: str) -> tuple[str, dict[str, Any]]:
    table = annotation.get("html") if isinstance(annotation, dict) else None
    table = table if isinstance(table, dict) else {}
    structure = table.get("structure").get("tokens") if isinstance(table.get("structure"), dict) else None
    cells = table.get("cells")
    expect(isinstance(structure, list) and all(isinstance(t, str) for t in structure) and isinstance(cells, list),
           name, "check table", "needs html.structure.tokens (a list of texts) and html.cells (a list)")
    openers = sum(token in CELL_OPENERS for token in structure)
    expect(openers == len(cells), name, "check table", f"the structure has {openers} cells, html.cells {len(cells)}")
    records, contents = [], []
    for i, cell in enumerate(cells):
        tokens = cell.get("tokens") if isinstance(cell, dict) else None
        if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
            raise InputError(name, "check table", f"cells[{i}] needs 'tokens', a list of texts, got {str(cell)[:120]}")
        record: dict[str, Any] = {"text": cell_text(tokens), "tokens": tokens}
        if "bbox" in cell:
            record["bbox"] = corner_box(cell["bbox"], name, f"cells[{i}]")
        records.append(record)
        contents.append(tokens)
    return table_html(structure, contents), {"structure": structure, "cells": records}


def parse_line(raw: bytes, name: str) -> dict[str, Any]:
    try:
        annotation = json.loads(raw.decode("utf-8"))
    except ValueError as exn:  # UnicodeDecodeError is a ValueError too
        raise InputError(name, "parse json", str(exn), exception=type(exn).__name__) from exn
    expect(isinstance(annotation, dict) and isinstance(annotation.get("filename"), str), name, "check table",
           "a line is an object with a 'filename'")
    return annotation


def image_path(annotation: dict[str, Any]) -> str:
    """`SPLIT/FILENAME` (the dataset's folder layout), or the file name for a record without a split."""
    split = annotation.get("split")
    return f"{split}/{annotation['filename']}" if isinstance(split, str) and split else annotation["filename"]


class PubtabnetIngest(AnnotatedIngest):
    format = "pubtabnet"
    family = "table"
    suffixes = (".jsonl",)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        """One item per line: where the line is in the file (the 500K-table file is not held in memory)."""
        items, errors = [], []
        offset = 0
        try:
            with open_url(url, "rb") as f:
                for number, raw in enumerate(f, 1):
                    try:
                        annotation = parse_line(raw, f"{url}:{number}") if raw.strip() else None
                        if annotation is not None:
                            items.append({"id": annotation["filename"].rsplit(".", 1)[0], "line": number,
                                          "image": image_path(annotation), "offset": offset, "length": len(raw)})
                    except InputError as exn:
                        errors.append(exn)
                    offset += len(raw)
        except OSError as exn:
            raise InputError(url, "read jsonl", str(exn), exception=type(exn).__name__) from exn
        return items, errors

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}:{item['line']}"

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        with open_url(item["file"], "rb") as f:
            f.seek(item["offset"])
            annotation = parse_line(f.read(item["length"]), name)
        table, record = table_targets(annotation, name)
        meta = {k: annotation[k] for k in ("split", "imgid") if k in annotation}
        return Targets(item["image"], {**record, "meta": meta}, members={"html": table})
