"""Ingest LLaVA-style conversation data (LLaVA-665k, ShareGPT4V, ALLaVA shape, mPLUG-DocOwl 1.5's sets, the
Hub's Parquet exports) into docforge shards.

Input: one or more of
- JSON files holding a list of records, or JSONL, one record per "\\n"-ended line (blank lines skipped,
  "\\r\\n" and a starting BOM fine; a line that is not UTF-8 or not JSON is an error-log line): LLaVA's `{"id",
  "image": "relative/path.jpg", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}`, or mPLUG-DocOwl
  1.5's (DocStruct4M, DocReason25K, DocDownstream-1.0) `{"image": ["./imgs/....png"], "messages": [{"role":
  "user"|"assistant"|"system", "content": "<|image|>..."}], "task_name", "dataset_name"}`;
- the Hub's Parquet files of such sets (LLaVA-ReCap, LLaVA-OneVision-Data: `id`, `image` as `{"bytes",
  "path"}`, `conversations`, `data_source`), read a row group at a time.
Image paths are relative to the image folder (default: the input file's folder). One sample per record,
family `conversation`: the image (absent for text-only records) and `KEY.json` with the turns as LLaVA
writes them (`{"from", "value"}`, DocOwl's `<|image|>` as LLaVA's `<image>` on its own line) and the
record's other fields under `meta`. A record with several images is an error-log line.
A JSONL file is planned lazily (DocStruct4M's struct_aware_parse.jsonl is 3.29 GB): planning streams it and keeps
per record only where its line is (byte offset and length) and the file's SHA-256, and the task reads and parses
the line. A JSON list can only be parsed whole, so its records are read at planning and travel in the plan.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from pipelines.images import check_image
from pipelines.ingest.annotated import find_input_files, read_image, read_json
from pipelines.ingest.jsonl_lines import jsonl_items, jsonl_lines, parse_jsonl_line, read_jsonl_record
from pipelines.ingest.parquet_rows import PARQUET, open_parquet, parquet_rows
from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version, safe_key
from pipelines.storage import absolute_url, join_url

GENERATOR = "docforge.ingest.llava"
ROLES = ("human", "gpt", "system")
ROLE_ALIASES = {"user": "human", "assistant": "gpt"}  # OpenAI-style turns: DocOwl's messages, some LLaVA-shaped sets
IMAGE_TOKEN = "<image>"
DOCOWL_IMAGE_TOKEN = re.compile(r"<\|image\|>\n?")  # mPLUG-DocOwl's image token, straight before the question
TURN_FIELDS = ("conversations", "messages")
NO_IMAGE = ("", "None", "none", "nan")  # a text-only record's image in exports through pandas (Cambrian-7M's)


def read_json_list(url: str) -> list[Any]:
    """The records of a LLaVA JSON file (a list); raises `InputError` for a bad file."""
    data = read_json(url, "json")
    if not isinstance(data, list):
        raise InputError(url, "parse json", f"expected a JSON list of records, got {type(data).__name__}")
    return data


def read_records(url: str) -> tuple[list[tuple[int, Any]], list[InputError]]:
    """The (index, record) pairs of one LLaVA JSON (a list) or JSONL file read whole, for formats that group records
    while planning, and an error for each JSONL line that is not UTF-8 or JSON (its index is skipped, so the other
    records keep theirs); raises `InputError` for a bad file."""
    if not url.endswith(".jsonl"):
        return list(enumerate(read_json_list(url))), []
    records, errors = [], []
    for index, (number, offset, line) in enumerate(jsonl_lines(url)):
        try:
            records.append((index, parse_jsonl_line(line, f"{url}:{number}", offset)))
        except InputError as exn:
            errors.append(exn)
    return records, errors


def parquet_row_count(url: str) -> int:
    """The rows of a Hub Parquet file of LLaVA records; raises `InputError` for a file without their columns."""
    rows = open_parquet(url)
    if not rows.columns & set(TURN_FIELDS):
        raise InputError(url, "read parquet", f"no conversations or messages column (columns: "
                                              f"{', '.join(sorted(rows.columns))})")
    return rows.num_rows


def llava_image_token(text: str) -> str:
    """DocOwl's `<|image|>` as LLaVA's `<image>`, on its own line as LLaVA puts it when text follows."""
    return DOCOWL_IMAGE_TOKEN.sub(lambda m: IMAGE_TOKEN + ("\n" if m.end() < len(text) else ""), text)


def read_turn(turn: Any) -> tuple[Any, Any]:
    """The (role, text) of a LLaVA `{"from", "value"}` or an OpenAI/DocOwl `{"role", "content"}` turn."""
    if not isinstance(turn, dict):
        return None, None
    if turn.get("from") is not None:
        return ROLE_ALIASES.get(turn["from"], turn["from"]), turn.get("value")
    return ROLE_ALIASES.get(turn.get("role"), turn.get("role")), turn.get("content")


def check_conversations(record: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(record, dict):
        raise InputError(name, "check record", f"record is {type(record).__name__}, expected an object")
    turns = next((record[f] for f in TURN_FIELDS if record.get(f) is not None), None)
    if not isinstance(turns, list) or not turns:
        raise InputError(name, "check record", "'conversations' (or DocOwl's 'messages') is missing or not a "
                                               "non-empty list")
    checked = []
    for i, turn in enumerate(turns):
        role, value = read_turn(turn)
        if role not in ROLES or not isinstance(value, str):
            raise InputError(name, "check record",
                             f"turn {i} must be {{'from': one of {list(ROLES)}, 'value': text}} or "
                             f"{{'role': user|assistant|system, 'content': text}}, got {str(turn)[:120]}")
        checked.append({"from": role, "value": llava_image_token(value)})
    if not any(t["from"] == "gpt" for t in checked):
        raise InputError(name, "check record", "no 'gpt' turn to learn from")
    image_tokens = sum(t["value"].count(IMAGE_TOKEN) for t in checked)
    if image_tokens > 1:
        raise InputError(name, "check record", f"{image_tokens} {IMAGE_TOKEN} tokens; one image per record is supported")
    return checked


def record_image(record: dict[str, Any], name: str) -> str | bytes | None:
    """Where a record's image is: a path (LLaVA's string, DocOwl's one-element list, a Parquet cell's `path`) or
    the bytes of a Hub Parquet `{"bytes", "path"}` cell; None for a text-only record (no image, or Cambrian's
    "None"/"nan" strings, which its own loader reads as none)."""
    image = record.get("image")
    if isinstance(image, list):
        if len(image) > 1:
            raise InputError(name, "check record", f"{len(image)} images; one image per record is supported")
        image = image[0] if image else None
    if isinstance(image, dict):
        if not (isinstance(image.get("bytes"), bytes) or image.get("path")):
            raise InputError(name, "read image", "the image column holds neither bytes nor a path")
        image = image["bytes"] if isinstance(image.get("bytes"), bytes) else image["path"]
    if image is not None and not isinstance(image, (str, bytes)):
        raise InputError(name, "check record", f"'image' is {type(image).__name__}, expected a path")
    return None if image in NO_IMAGE else image


def file_labels(files: list[str]) -> dict[str, str]:
    """Each input file's part of the sample keys: none for a single file, else its path below the files' common
    folder, suffix dropped (the Hub's sets hold a `train-00000-of-00001.parquet` in each subset's folder)."""
    if len(files) == 1:
        return {files[0]: ""}
    try:
        common = posixpath.commonpath(files)
    except ValueError:  # local files beside remote ones (`s3://...`): no common folder
        common = ""
    return {url: posixpath.splitext(url[len(common):].lstrip("/"))[0] for url in files}


class LlavaIngest(Job):
    name = "ingest-llava"

    def __init__(self, inputs: list[str], images_url: str | None, source: str, lang: str = "en",
                 items_per_task: int = 1000):
        self.inputs = [absolute_url(u) for u in inputs]
        self.images_url = absolute_url(images_url) if images_url else None
        self.source = source
        self.lang = lang
        self.items_per_task = items_per_task

    def config(self) -> dict[str, Any]:
        return {"format": "llava", "inputs": self.inputs, "images": self.images_url, "source": self.source,
                "lang": self.lang, "items_per_task": self.items_per_task}

    def plan(self) -> Plan:
        files = find_input_files(self.inputs, (".json", ".jsonl", PARQUET))
        labels = file_labels(files)
        items, errors = [], []
        for url in files:
            prefix = "-".join(safe_key(part) for part in (self.source, labels[url]) if part)
            try:
                if url.endswith(PARQUET):
                    items += [{"file": url, "row": row, "key": f"{prefix}-{row:09d}"}
                              for row in range(parquet_row_count(url))]
                    continue
                if url.endswith(".jsonl"):
                    items += jsonl_items(url, prefix)
                    continue
                records = read_json_list(url)
            except InputError as exn:
                errors.append(exn)
                continue
            items += [{"file": url, "index": i, "key": f"{prefix}-{i:09d}", "record": r} for i, r in enumerate(records)]
        return Plan(chunk_into_tasks(items, self.items_per_task), errors)

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}#row{item['row']}" if "row" in item else f"{item['file']}#{item['index']}"

    def process(self, item: dict[str, Any], task_index: int) -> Iterator[dict[str, Any]]:
        name = self.describe(item)
        if "row" in item:
            record = parquet_rows(item["file"]).row(item["row"])
        else:
            record = read_jsonl_record(item) if "offset" in item else item["record"]
        turns = check_conversations(record, name)
        image = record_image(record, name)
        if image is None and any(IMAGE_TOKEN in t["value"] for t in turns):
            raise InputError(name, "check record", f"has an {IMAGE_TOKEN} token but no 'image'")
        sample: dict[str, Any] = {"__key__": item["key"]}
        image_record = None
        image_url = None
        if isinstance(image, bytes):
            checked = check_image(image, name)
        elif image is not None:
            image_url = join_url(self.images_url or posixpath.dirname(item["file"]), posixpath.normpath(image))
            checked = read_image(image_url, name)
        if image is not None:
            sample[checked.ext] = checked.data
            image_record = checked.record()
        sample["json"] = {
            "family": "conversation",
            "lang": self.lang,
            "source": self.source,
            "id": str(record.get("id", "")),
            "conversations": turns,
            "image": image_record,
            "provenance": {"input": item["file"],
                           **({"row": item["row"]} if "row" in item else {"record": item["index"]}),
                           "image_file": image_url, "generator": GENERATOR, "version": code_version()},
            "meta": {k: v for k, v in record.items() if k not in ("id", "image", *TURN_FIELDS)},
        }
        yield sample
