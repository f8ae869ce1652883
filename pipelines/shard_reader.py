"""Reads shards back with the `webdataset` library itself, over any fsspec URL.

Used by `verify` (every byte, hashed as it streams), by `show` and by `report` (the first samples).
webdataset does not speak fsspec, so we open the stream and hand it to its tar iterators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, Any

from webdataset.tariterators import group_by_keys, tar_file_expander

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class HashingReader:
    """A read-only stream that hashes and counts every byte read through it."""

    def __init__(self, fileobj: IO):
        self.fileobj = fileobj
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fileobj.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the hash covers the whole file (tar padding included)."""
        while self.read(1 << 20):
            pass


def iter_tar_samples(stream: IO, url: str) -> Iterator[dict[str, Any]]:
    """Samples (`__key__` + extension -> bytes) of one tar stream, grouped by webdataset's own rules."""
    files = tar_file_expander([{"url": url, "stream": stream}])
    yield from group_by_keys(files)


def first_samples(folder, shard_names: list[str], count: int) -> list[dict[str, Any]]:
    """Up to `count` samples spread over the given shards (a few from each, in order)."""
    if count <= 0 or not shard_names:
        return []
    per_shard = max(1, -(-count // len(shard_names)))
    picked: list[dict[str, Any]] = []
    for name in shard_names:
        if len(picked) >= count:
            break
        with folder.open(name, "rb") as f:
            for i, sample in enumerate(iter_tar_samples(f, folder.url_of(name))):
                if i >= per_shard or len(picked) >= count:
                    break
                picked.append(sample)
    return picked


def image_member(sample: dict[str, Any]) -> str | None:
    return next((ext for ext in IMAGE_EXTENSIONS if ext in sample), None)
