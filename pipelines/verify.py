"""`docforge shards verify`: re-reads every shard of a dataset with webdataset and checks it against index.json.

Reports exactly what is wrong, shard by shard: missing shard, truncated or corrupt tar, size or hash
mismatch, sample-count mismatch, bad or duplicate keys, shards on storage that the index does not list,
an index whose totals do not add up or that marks the job incomplete.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from typing import Any

from pipelines.shard_reader import HashingReader, iter_tar_samples
from pipelines.shards import INDEX_NAME, KEY_PATTERN, read_index
from pipelines.storage import Folder


@dataclass
class Problem:
    kind: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass
class VerifyReport:
    url: str
    shards: int = 0
    samples: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(url: str) -> VerifyReport:
    folder = Folder(url)
    report = VerifyReport(folder.url)
    try:
        index = read_index(folder)
    except (FileNotFoundError, ValueError) as exn:
        report.problems.append(Problem("bad index", folder.url_of(INDEX_NAME), str(exn)))
        return report
    seen_keys: dict[str, str] = {}
    for entry in index["shards"]:
        verify_shard(folder, entry, seen_keys, report)
    check_totals(folder, index, report)
    return report


def verify_shard(folder: Folder, entry: dict[str, Any], seen_keys: dict[str, str], report: VerifyReport) -> None:
    name = entry.get("name", "?")
    where = folder.url_of(name)
    if not folder.exists(name):
        report.problems.append(Problem("missing shard", where, "listed in index.json but not on storage"))
        return
    report.shards += 1
    count = 0
    with folder.open(name, "rb") as raw:
        stream = HashingReader(raw)
        try:
            for sample in iter_tar_samples(stream, where):
                count += 1
                key = sample["__key__"]
                if not KEY_PATTERN.match(key):
                    report.problems.append(Problem("bad key", where, f"sample key {key!r}"))
                if key in seen_keys:
                    report.problems.append(Problem("duplicate key", where, f"{key} (also in {seen_keys[key]})"))
                else:
                    seen_keys[key] = name
            stream.drain()
        except (tarfile.TarError, EOFError, OSError, ValueError) as exn:
            report.problems.append(Problem("corrupt tar", where, f"unreadable after {count} samples: {exn}"))
            stream.drain()
    report.samples += count
    report.bytes += stream.bytes
    expected_bytes = entry.get("bytes")
    if expected_bytes is not None and stream.bytes != expected_bytes:
        kind = "truncated shard" if stream.bytes < expected_bytes else "size mismatch"
        report.problems.append(Problem(kind, where, f"{stream.bytes} bytes, index says {expected_bytes}"))
    if entry.get("sha256") and stream.sha256.hexdigest() != entry["sha256"]:
        report.problems.append(Problem("hash mismatch", where,
                                       f"sha256 {stream.sha256.hexdigest()}, index says {entry['sha256']}"))
    if entry.get("samples") is not None and count != entry["samples"]:
        report.problems.append(Problem("count mismatch", where, f"{count} samples read, index says {entry['samples']}"))


def check_totals(folder: Folder, index: dict[str, Any], report: VerifyReport) -> None:
    listed = {s.get("name") for s in index["shards"]}
    for name in folder.list():
        if name.endswith(".tar") and not name.startswith(".") and name not in listed:
            report.problems.append(Problem("unindexed shard", folder.url_of(name), "on storage but not in index.json"))
    totals = index.get("totals", {})
    expected = sum(s.get("samples", 0) for s in index["shards"])
    if totals.get("samples") != expected:
        report.problems.append(Problem("bad index", folder.url_of(INDEX_NAME),
                                       f"totals.samples is {totals.get('samples')}, shards add up to {expected}"))
    if index.get("complete") is False:
        report.problems.append(Problem("incomplete job", folder.url_of(INDEX_NAME),
                                       f"tasks never committed: {index.get('missing_tasks')}; rerun the build"))
