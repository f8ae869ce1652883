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

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_text
from pipelines.ingest.targets import corner_box
from pipelines.job import InputError

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
    structure = table.get("structure", {}).get("tokens") if isinstance(table, dict) and isinstance(table.get("structure"), dict) else None
    cells = table.get("cells") if isinstance(table, dict) else None
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


class PubtabnetIngest(AnnotatedIngest):
    format = "pubtabnet"
    family = "table"
    suffixes = (".jsonl",)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        items, errors = [], []
        for number, row in enumerate(read_text(url, "jsonl").splitlines(), 1):
            if not row.strip():
                continue
            try:
                annotation = json.loads(row)
            except ValueError as exn:
                errors.append(InputError(f"{url}:{number}", "parse json", str(exn), exception="JSONDecodeError"))
                continue
            if not isinstance(annotation, dict) or not isinstance(annotation.get("filename"), str):
                errors.append(InputError(f"{url}:{number}", "check table", "a line is an object with a 'filename'"))
                continue
            split = annotation.get("split")
            image = f"{split}/{annotation['filename']}" if isinstance(split, str) and split else annotation["filename"]
            items.append({"id": annotation["filename"].rsplit(".", 1)[0], "line": number, "image": image,
                          "annotation": annotation})
        return items, errors

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}:{item['line']}"

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        table, record = table_targets(item["annotation"], name)
        meta = {k: item["annotation"][k] for k in ("split", "imgid") if k in item["annotation"]}
        return Targets(item["image"], {**record, "meta": meta}, members={"html": table})
