"""Writes WebDataset shards: deterministic tars through `webdataset.TarWriter`, and the dataset index.

A job task owns a `ShardWriter` that writes `shard-TTTTTT-NN.tar` files into a dataset folder (any
fsspec URL), rolling over by sample count and bytes. Each tar is written under a temporary name and
renamed on close; its name, sample count, bytes, sha256 and per-family counts are returned so the
runner can put them in the task's commit marker, from which `build_index` makes `index.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import webdataset as wds

from pipelines.storage import Folder, json_bytes, temp_name

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
EXTENSION_PATTERN = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)*$")
TAR_MTIME = 0  # fixed member mtime: identical samples give byte-identical shards
TAR_BLOCK = 512
INDEX_NAME = "index.json"
INDEX_FORMAT = "docforge-shards/1"
STAGING = "_staging"  # shards being written live here under temporary names until they are renamed


class ShardError(ValueError):
    """A sample that cannot be written (bad key, duplicate key, non-bytes payload)."""


@dataclass
class ShardInfo:
    name: str
    samples: int = 0
    bytes: int = 0
    sha256: str = ""
    families: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _FileTarWriter(wds.TarWriter):
    """webdataset's `TarWriter` over a plain tarfile ("w") instead of a stream ("w|"): members go straight
    to the file rather than through tarfile's stream re-buffering. Same bytes, less copying."""

    @staticmethod
    def tarmode(fileobj, compress=None) -> str:
        if compress:
            raise ValueError("docforge shards are uncompressed tars")
        return "w"


class HashingSink:
    """A write-only stream into a file that counts and sha256-hashes every byte as it passes.

    (Measured: hashing on a helper thread was slower here than hashing inline; see BENCHMARKS.md.)
    """

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.fileobj.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self.fileobj.flush()


def shard_name(task_index: int, part: int) -> str:
    return f"shard-{task_index:06d}-{part:02d}.tar"


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ShardError(f"sample key {key!r} must match [A-Za-z0-9_-]+ (no dots, slashes or spaces)")
    return key


def encode_sample(sample: dict[str, Any]) -> tuple[dict[str, bytes], str]:
    """Turn a sample (`__key__` + extension -> bytes | str | JSON-able) into bytes members and its family."""
    if "__key__" not in sample:
        raise ShardError("sample has no __key__")
    key = check_key(sample["__key__"])
    encoded: dict[str, bytes] = {"__key__": key}
    family = "unknown"
    for ext, value in sample.items():
        if ext.startswith("__"):
            continue
        if not EXTENSION_PATTERN.match(ext):
            raise ShardError(f"sample {key}: bad extension {ext!r}")
        if ext == "json" and isinstance(value, dict):
            family = str(value.get("family", family))
            value = json_bytes(value)
        elif ext == "json" and isinstance(value, (bytes, bytearray)):
            try:
                family = str(json.loads(value).get("family", family))
            except (ValueError, AttributeError) as exn:
                raise ShardError(f"sample {key}: .json member is not a JSON object ({exn})") from exn
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ShardError(f"sample {key}: .{ext} is {type(value).__name__}, expected bytes or str")
        encoded[ext] = bytes(value)
    if len(encoded) == 1:
        raise ShardError(f"sample {key}: no files besides the key")
    return encoded, family


def tar_member_bytes(members: dict[str, bytes]) -> int:
    """Bytes a sample adds to a tar: one header block per member plus its data padded to 512."""
    return sum(TAR_BLOCK + -(-len(v) // TAR_BLOCK) * TAR_BLOCK for k, v in members.items() if k != "__key__")


class ShardWriter:
    """Writes one task's samples into rolling shards `shard-TTTTTT-NN.tar` inside `folder`.

    Keys must be unique within the writer (a duplicate raises `ShardError` before anything is written).
    Each shard is written under a temporary name in `_staging/` and renamed when it is closed, so a
    reader never sees a partial shard under its final name, and final names always form a run 00, 01, ...
    """

    def __init__(self, folder: Folder, task_index: int, max_count: int = 10_000, max_bytes: int = 1 << 30):
        if max_count < 1 or max_bytes < 1:
            raise ValueError("shard limits must be positive")
        self.folder = folder
        self.task_index = task_index
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.shards: list[ShardInfo] = []
        self.keys: set[str] = set()
        self._current: ShardInfo | None = None
        self._families: Counter = Counter()
        self._estimated = 0
        self._file = self._sink = self._tar = None
        self._tmp = ""

    def write(self, sample: dict[str, Any]) -> None:
        members, family = encode_sample(sample)
        key = members["__key__"]
        if key in self.keys:
            raise ShardError(f"duplicate sample key {key} in task {self.task_index}")
        size = tar_member_bytes(members)
        if self._current is not None and (
            self._current.samples >= self.max_count or self._estimated + size > self.max_bytes
        ):
            self._close_current()
        if self._current is None:
            self._open_next()
        self._tar.write(members)
        self.keys.add(key)
        self._current.samples += 1
        self._families[family] += 1
        self._estimated += size

    def _open_next(self) -> None:
        name = shard_name(self.task_index, len(self.shards))
        self._current = ShardInfo(name=name)
        self._tmp = temp_name(f"{STAGING}/{name}")
        self._file = self.folder.open(self._tmp, "wb")
        self._sink = HashingSink(self._file)
        self._tar = _FileTarWriter(self._sink, user="docforge", group="docforge", mtime=TAR_MTIME, encoder=False)
        self._families = Counter()
        self._estimated = 0

    def _close_current(self) -> None:
        self._tar.close()
        self._file.close()
        info = self._current
        info.bytes = self._sink.bytes
        info.sha256 = self._sink.sha256.hexdigest()
        info.families = dict(sorted(self._families.items()))
        self.folder.rename(self._tmp, info.name)
        self.shards.append(info)
        self._current = None

    def close(self) -> list[ShardInfo]:
        """Finish the open shard (if any) and return every shard this writer wrote."""
        if self._current is not None:
            self._close_current()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (its temporary file) after a failure."""
        if self._current is not None:
            try:
                self._tar.close()  # so the tar stream does not flush into a closed file later
                self._file.close()
            except Exception:  # the shard is being thrown away; the original error is what matters
                pass
            finally:
                self.folder.remove(self._tmp)
                self._current = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def build_index(shards: list[dict[str, Any]], job: dict[str, Any], extra: dict[str, Any] | None = None) -> dict:
    """The `index.json` of a dataset: shards in order, totals, per-family counts, job config and code version."""
    families: Counter = Counter()
    for shard in shards:
        families.update(shard.get("families", {}))
    index = {
        "format": INDEX_FORMAT,
        "shards": shards,
        "totals": {
            "shards": len(shards),
            "samples": sum(s["samples"] for s in shards),
            "bytes": sum(s["bytes"] for s in shards),
        },
        "families": dict(sorted(families.items())),
        "job": job,
    }
    if extra:
        index.update(extra)
    return index


def write_index(folder: Folder, index: dict[str, Any]) -> None:
    folder.write_json(INDEX_NAME, index)


def read_index(folder: Folder) -> dict[str, Any]:
    if not folder.exists(INDEX_NAME):
        raise FileNotFoundError(f"{folder.url_of(INDEX_NAME)}: no index.json (is this a docforge dataset?)")
    try:
        index = folder.read_json(INDEX_NAME)
    except ValueError as exn:
        raise ValueError(f"{folder.url_of(INDEX_NAME)}: not valid JSON ({exn})") from exn
    if not isinstance(index, dict) or not isinstance(index.get("shards"), list):
        raise ValueError(f"{folder.url_of(INDEX_NAME)}: has no 'shards' list")
    return index
