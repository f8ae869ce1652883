"""Ingest img2dataset-style caption data (CC3M, CC12M, LAION, CapsFusion) into docforge shards.

img2dataset writes either folders (`00000/000000001.jpg` + `.txt` caption [+ `.json` metadata]) or
tar shards holding the same members. Each loose sample or each input tar is one input; one
sample per image comes out, family `caption`, the caption in `KEY.txt`, the record in `KEY.json`.
"""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from pipelines.images import IMAGE_SUFFIXES, check_image
from pipelines.job import InputError, Job, Plan, Task, chunk_into_tasks, code_version, safe_key
from pipelines.shard_reader import intact_samples
from pipelines.storage import Folder, absolute_url

GENERATOR = "docforge.ingest.img2dataset"
IMAGE_EXTS = tuple(s.lstrip(".") for s in IMAGE_SUFFIXES)


def decode_caption(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exn:
        raise InputError(name, "read caption", f"not UTF-8 text ({exn.reason} at byte {exn.start})",
                         exception="UnicodeDecodeError") from exn
    text = text.strip()
    if not text:
        raise InputError(name, "read caption", "empty caption")
    return text


def decode_metadata(data: bytes | None, name: str) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exn:
        raise InputError(name, "read metadata", f"invalid JSON ({exn})", exception=type(exn).__name__) from exn
    if not isinstance(meta, dict):
        raise InputError(name, "read metadata", f"expected a JSON object, got {type(meta).__name__}")
    return meta


class Img2datasetIngest(Job):
    name = "ingest-img2dataset"

    def __init__(self, input_url: str, source: str, lang: str = "en", items_per_task: int = 1000):
        self.input_url = absolute_url(input_url)
        self.source = source
        self.lang = lang
        self.items_per_task = items_per_task

    def config(self) -> dict[str, Any]:
        return {"format": "img2dataset", "input": self.input_url, "source": self.source, "lang": self.lang,
                "items_per_task": self.items_per_task}

    def plan(self) -> Plan:
        folder = Folder(self.input_url)
        if folder.fs.isfile(folder.root):
            raise ValueError(f"{self.input_url}: --input must be the img2dataset output folder (image files or .tar shards)")
        files = folder.find()
        if not files:
            raise FileNotFoundError(f"{self.input_url}: no files found")
        # hidden files (temporaries) and img2dataset's per-shard statistics are not samples
        files = [f for f in files if not posixpath.basename(f).startswith(".") and not f.endswith("_stats.json")]
        tars = [f for f in files if f.endswith(".tar")]
        groups: dict[str, dict[str, str]] = defaultdict(dict)
        for rel in files:
            stem, ext = posixpath.splitext(rel)
            ext = ext.lstrip(".").lower()
            if ext in IMAGE_EXTS:
                groups[stem]["image"] = rel
            elif ext in ("txt", "json"):
                groups[stem][ext] = rel
        tasks = [Task(i, [{"tar": rel}]) for i, rel in enumerate(tars)]
        loose = [{"stem": stem, **members} for stem, members in sorted(groups.items()) if set(members) != {"json"}]
        for task in chunk_into_tasks(loose, self.items_per_task):
            tasks.append(Task(len(tasks), task.items))
        return Plan(tasks)

    def describe(self, item: dict[str, Any]) -> str:
        return f"{self.input_url}/{item.get('tar') or item['stem']}"

    def process(self, item: dict[str, Any], task_index: int) -> Iterator[dict[str, Any] | InputError]:
        folder = Folder(self.input_url)
        if "tar" in item:
            yield from self.process_tar(folder, item["tar"])
            return
        name = self.describe(item)
        if "image" not in item:
            raise InputError(name, "read image", "no image file beside the caption/metadata")
        if "txt" not in item:
            raise InputError(name, "read caption", f"no caption file {item['stem']}.txt beside the image")
        meta_bytes = folder.read_bytes(item["json"]) if "json" in item else None
        yield self.make_sample(item["stem"], folder.read_bytes(item["image"]), item["image"],
                               folder.read_bytes(item["txt"]), item["txt"], meta_bytes, folder.url_of(item["image"]))

    def process_tar(self, folder: Folder, rel: str) -> Iterator[dict[str, Any] | InputError]:
        for member in intact_samples(folder, rel):
            yield self.tar_sample(rel, member)

    def tar_sample(self, rel: str, member: dict[str, Any]) -> dict[str, Any] | InputError:
        key = member["__key__"]
        tar_stem = posixpath.splitext(posixpath.basename(rel))[0]
        image_ext = next((e for e in IMAGE_EXTS if e in member), None)
        try:
            if image_ext is None:
                raise InputError(f"{self.input_url}/{rel}:{key}", "read image", "no image member in this sample")
            if "txt" not in member:
                raise InputError(f"{self.input_url}/{rel}:{key}", "read caption", "no .txt caption member in this sample")
            return self.make_sample(f"{tar_stem}/{key}", member[image_ext], f"{rel}:{key}.{image_ext}",
                                    member["txt"], f"{rel}:{key}.txt", member.get("json"), f"{self.input_url}/{rel}")
        except InputError as exn:
            return exn

    def make_sample(self, stem: str, image_bytes: bytes, image_name: str, caption_bytes: bytes, caption_name: str,
                    meta_bytes: bytes | None, input_url: str) -> dict[str, Any]:
        image = check_image(image_bytes, f"{self.input_url}/{image_name}")
        caption = decode_caption(caption_bytes, f"{self.input_url}/{caption_name}")
        meta = decode_metadata(meta_bytes, f"{self.input_url}/{caption_name.removesuffix('.txt')}.json")
        key = f"{safe_key(self.source)}-{safe_key(stem)}"
        record = {
            "family": "caption",
            "lang": self.lang,
            "source": self.source,
            "provenance": {"input": input_url, "member": image_name, "generator": GENERATOR,
                           "version": code_version()},
            "image": image.record(),
            "meta": meta,
        }
        return {"__key__": key, image.ext: image.data, "txt": caption, "json": record}
