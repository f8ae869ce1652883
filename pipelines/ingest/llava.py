"""Ingest LLaVA-style conversation data (LLaVA-665k, ShareGPT4V, ALLaVA shape) into docforge shards.

Input: one or more JSON files holding a list of records (or JSONL, one record per "\\n"-ended line; a
line that is not JSON is an error-log line)
`{"id", "image": "relative/path.jpg", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}`
plus the image folder the paths are relative to. One sample per record, family `conversation`: the
image (absent for text-only records) and `KEY.json` with the turns kept as LLaVA wrote them.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

from pipelines.images import check_image
from pipelines.ingest.annotated import find_input_files, text_lines
from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version, safe_key
from pipelines.storage import absolute_url, join_url, open_url

GENERATOR = "docforge.ingest.llava"
ROLES = ("human", "gpt", "system")
ROLE_ALIASES = {"user": "human", "assistant": "gpt"}  # OpenAI-style turns found in some LLaVA-shaped sets
IMAGE_TOKEN = "<image>"


def read_records(url: str) -> tuple[list[tuple[int, Any]], list[InputError]]:
    """The (index, record) pairs of one LLaVA JSON (a list) or JSONL file, and an error for each JSONL line that
    is not JSON (its index is skipped, so the other records keep theirs); raises `InputError` for a bad file."""
    try:
        with open_url(url, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exn:
        raise InputError(url, "read json", f"not UTF-8 ({exn.reason} at byte {exn.start})",
                         exception="UnicodeDecodeError") from exn
    except OSError as exn:
        raise InputError(url, "read json", str(exn), exception=type(exn).__name__) from exn
    if url.endswith(".jsonl"):
        records, errors = [], []
        lines = [(number, line) for number, line in enumerate(text_lines(text), 1) if line.strip()]
        for index, (number, line) in enumerate(lines):
            try:
                records.append((index, json.loads(line)))
            except ValueError as exn:
                errors.append(InputError(f"{url}:{number}", "parse json", str(exn), exception="JSONDecodeError"))
        return records, errors
    try:
        data = json.loads(text)
    except ValueError as exn:
        raise InputError(url, "parse json", str(exn), exception="JSONDecodeError") from exn
    if not isinstance(data, list):
        raise InputError(url, "parse json", f"expected a JSON list of records, got {type(data).__name__}")
    return list(enumerate(data)), []


def check_conversations(record: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(record, dict):
        raise InputError(name, "check record", f"record is {type(record).__name__}, expected an object")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise InputError(name, "check record", "'conversations' is missing or not a non-empty list")
    checked = []
    for i, turn in enumerate(turns):
        role = ROLE_ALIASES.get(turn.get("from"), turn.get("from")) if isinstance(turn, dict) else None
        if role not in ROLES or not isinstance(turn.get("value"), str):
            raise InputError(name, "check record",
                             f"turn {i} must be {{'from': one of {list(ROLES)}, 'value': text}}, got {str(turn)[:120]}")
        checked.append({"from": role, "value": turn["value"]})
    if not any(t["from"] == "gpt" for t in checked):
        raise InputError(name, "check record", "no 'gpt' turn to learn from")
    image_tokens = sum(t["value"].count(IMAGE_TOKEN) for t in checked)
    if image_tokens > 1:
        raise InputError(name, "check record", f"{image_tokens} {IMAGE_TOKEN} tokens; one image per record is supported")
    if image_tokens and not record.get("image"):
        raise InputError(name, "check record", f"has an {IMAGE_TOKEN} token but no 'image'")
    return checked


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
        files = find_input_files(self.inputs, (".json", ".jsonl"))
        items, errors = [], []
        for url in files:
            try:
                records, bad = read_records(url)
            except InputError as exn:
                errors.append(exn)
                continue
            errors += bad
            stem = posixpath.splitext(posixpath.basename(url))[0]
            prefix = safe_key(self.source) if len(files) == 1 else f"{safe_key(self.source)}-{safe_key(stem)}"
            items += [{"file": url, "index": i, "key": f"{prefix}-{i:09d}", "record": r} for i, r in records]
        return Plan(chunk_into_tasks(items, self.items_per_task), errors)

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}#{item['index']}"

    def process(self, item: dict[str, Any], task_index: int) -> Iterator[dict[str, Any]]:
        name = self.describe(item)
        record = item["record"]
        turns = check_conversations(record, name)
        image_path = record.get("image")
        if isinstance(image_path, list):
            if len(image_path) != 1:
                raise InputError(name, "check record", f"{len(image_path)} images; one image per record is supported")
            image_path = image_path[0]
        sample: dict[str, Any] = {"__key__": item["key"]}
        image_record = None
        image_url = None
        if image_path:
            if not isinstance(image_path, str):
                raise InputError(name, "check record", f"'image' is {type(image_path).__name__}, expected a path")
            if self.images_url is None:
                raise InputError(name, "read image", "record names an image but no --images folder was given")
            image_url = join_url(self.images_url, image_path)
            try:
                with open_url(image_url, "rb") as f:
                    data = f.read()
            except FileNotFoundError as exn:
                raise InputError(name, "read image", f"missing image file {image_url}",
                                 exception="FileNotFoundError") from exn
            try:
                image = check_image(data, image_url)
            except InputError as exn:
                raise InputError(name, exn.step, f"{image_url}: {exn.message}", exn.exception) from exn
            sample[image.ext] = image.data
            image_record = image.record()
        sample["json"] = {
            "family": "conversation",
            "lang": self.lang,
            "source": self.source,
            "id": str(record.get("id", "")),
            "conversations": turns,
            "image": image_record,
            "provenance": {"input": item["file"], "record": item["index"], "image_file": image_url,
                           "generator": GENERATOR, "version": code_version()},
            "meta": {k: v for k, v in record.items() if k not in ("id", "image", "conversations")},
        }
        yield sample
