"""Ingest Donut-format OCR datasets, SynthDoG's output among them (synthdog-en, synthdog-zh, the sets the
INF-MLLM2 recipe trains on in stage 2), as `ocr` samples.

Input, either form the sets come in:
- a Donut dataset folder as SynthDoG writes it and Donut reads it: split folders (`train/`,
  `validation/`, `test/`) each with its images and a `metadata.jsonl` of
  `{"file_name": "image_0.jpg", "ground_truth": "{\"gt_parse\": {\"text_sequence\": \"...\"}}"}` lines
  (or the `metadata.jsonl` files themselves);
- the Hugging Face Hub's Parquet files of those sets (`data/train-00000-of-00084.parquet`...), with an
  `image` column (`{"bytes", "path"}`: the bytes, or without them the path, relative to `--images` or
  the Parquet file's folder) and the same `ground_truth` string column.
One sample per image, family `ocr`: `KEY.txt` = `gt_parse.text_sequence` as the set has it (SynthDoG
joins the page's text with single spaces), the record with the Parquet row or metadata line and the
ground truth's other fields. A line or row whose ground truth is not that JSON, has no
`text_sequence`, or whose image is missing or unreadable is an error-log line.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_text, text_lines
from pipelines.ingest.parquet_rows import PARQUET, open_parquet, parquet_rows
from pipelines.job import InputError
from pipelines.text_lang import detect_lang

METADATA = "metadata.jsonl"
COLUMNS = ("image", "ground_truth")  # the columns of a Hub Parquet file this format reads


def text_sequence(ground_truth: Any, name: str) -> tuple[str, dict[str, Any]]:
    """The `gt_parse.text_sequence` of a Donut ground truth (a JSON string), and its other fields."""
    expect(isinstance(ground_truth, str), name, "read ground truth",
           f"ground_truth is {type(ground_truth).__name__}, not a JSON string")
    try:
        parsed = json.loads(ground_truth)
    except ValueError as exn:
        raise InputError(name, "read ground truth", f"ground_truth is not JSON: {exn}",
                         exception="JSONDecodeError") from exn
    parse = parsed.get("gt_parse") if isinstance(parsed, dict) else None
    expect(isinstance(parse, dict) and isinstance(parse.get("text_sequence"), str), name, "read ground truth",
           "ground_truth has no gt_parse.text_sequence (this format takes Donut OCR sets such as SynthDoG's)")
    expect(bool(parse["text_sequence"].strip()), name, "read ground truth", "gt_parse.text_sequence is empty")
    return parse["text_sequence"], {key: value for key, value in parsed.items() if key != "gt_parse"}


class DonutIngest(AnnotatedIngest):
    format = "donut"
    family = "ocr"
    suffixes = (METADATA, PARQUET)

    def is_annotation(self, rel: str) -> bool:
        return posixpath.basename(rel) == METADATA or rel.endswith(PARQUET)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        if url.endswith(PARQUET):
            return self._parquet_items(url), []
        split = posixpath.basename(posixpath.dirname(url))
        items, errors = [], []
        for number, line in enumerate(text_lines(read_text(url, "metadata")), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                file_name = entry["file_name"]
                ground_truth = entry["ground_truth"]
            except (ValueError, KeyError, TypeError) as exn:
                errors.append(InputError(f"{url}:{number}", "read metadata", "expected a JSON object with "
                                         f"'file_name' and 'ground_truth' ({exn})", exception=type(exn).__name__))
                continue
            items.append({"id": f"{split}/{posixpath.splitext(str(file_name))[0]}", "line": number,
                          "image": str(file_name), "ground_truth": ground_truth})
        return items, errors

    def _parquet_items(self, url: str) -> list[dict[str, Any]]:
        rows = open_parquet(url, COLUMNS)
        missing = set(COLUMNS) - rows.columns
        if missing:
            raise InputError(url, "read parquet", f"no {', '.join(sorted(missing))} column (columns: "
                                                  f"{', '.join(sorted(rows.columns))})")
        stem = posixpath.splitext(posixpath.basename(url))[0]
        return [{"id": f"{stem}/{row}", "row": row} for row in range(rows.num_rows)]

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}:{item['line']}" if "line" in item else f"{item['file']}#row{item['row']}"

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        if "row" in item:
            row = parquet_rows(item["file"], COLUMNS).row(item["row"])
            cell = row["image"]
            expect(isinstance(cell, dict) and (isinstance(cell.get("bytes"), bytes) or bool(cell.get("path"))),
                   name, "read image", "the image column holds neither bytes nor a path")
            text, other = text_sequence(row["ground_truth"], name)
            source = {"row": item["row"], "image_path": cell.get("path")}
            image = cell["bytes"] if isinstance(cell.get("bytes"), bytes) else str(cell["path"])
        else:
            text, other = text_sequence(item["ground_truth"], name)
            source = {"line": item["line"], "file_name": item["image"]}
            image = item["image"]
        record = {"text": text, "meta": {**source, **other}}
        # a set that mixes languages (AnyWord-3M) says none per sample: without --lang, each sample's own
        return Targets(image, record, members={"txt": text}, lang=None if self.lang else detect_lang(text))
