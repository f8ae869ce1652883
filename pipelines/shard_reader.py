"""Reads shards back with the `webdataset` library itself, over any fsspec URL.

Used by `verify` (every byte, hashed as it streams), by `show` and by `report` (the first samples).
webdataset does not speak fsspec, so we open the stream and hand it to its tar iterators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, Any

from webdataset.tariterators import group_by_keys, tar_file_expander

from pipelines.job import InputError
from pipelines.storage import Folder, open_url

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
TAR_BLOCK = 512


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


def iter_tar_samples(stream: IO, url: str, errors: list[Exception] | None = None) -> Iterator[dict[str, Any]]:
    """Samples (`__key__` + extension -> bytes) of one tar stream, grouped by webdataset's own rules.

    Without `errors`, a damaged tar raises. With it, reading stops at the damage, the exception is
    appended to `errors` and the samples read so far are yielded (the last one may lack members).
    """
    if errors is None:
        files = tar_file_expander([{"url": url, "stream": stream}])
    else:
        def stop(exn: Exception) -> bool:
            errors.append(exn)
            return False

        files = tar_file_expander([{"url": url, "stream": stream}], handler=stop)
    yield from group_by_keys(files)


def tar_truncation(folder, rel: str) -> str | None:
    """Why the tar `rel` looks cut short, or None. Python's tarfile silently stops at a truncated header,
    so a tar cut at the wrong place reads as a shorter valid one; its size and its end-of-archive
    marker (two zero blocks) tell the truth."""
    size = folder.size(rel)
    if size % TAR_BLOCK:
        return f"size {size} is not a multiple of {TAR_BLOCK} bytes (truncated)"
    if size < 2 * TAR_BLOCK:
        return f"only {size} bytes (truncated)"
    with folder.open(rel, "rb") as f:
        f.seek(size - 2 * TAR_BLOCK)
        if any(f.read(2 * TAR_BLOCK)):
            return "no end-of-archive marker (truncated)"
    return None


def first_samples(urls: list[str], count: int) -> list[dict[str, Any]]:
    """Up to `count` samples spread over the given shard URLs (a few from each, in order). A shard that
    cannot be read contributes what it could; previews must not fail on one bad shard."""
    if count <= 0 or not urls:
        return []
    per_shard = max(1, -(-count // len(urls)))
    picked: list[dict[str, Any]] = []
    for url in urls:
        if len(picked) >= count:
            break
        try:
            with open_url(url, "rb") as f:
                for i, sample in enumerate(iter_tar_samples(f, url, errors=[])):
                    if i >= per_shard or len(picked) >= count:
                        break
                    picked.append(sample)
        except OSError:
            continue
    return picked


def image_member(sample: dict[str, Any]) -> str | None:
    return next((ext for ext in IMAGE_EXTENSIONS if ext in sample), None)


def intact_samples(folder: Folder, rel: str) -> Iterator[dict[str, Any]]:
    """The samples of shard `rel`. A damaged shard yields those before the damage, then raises `InputError`;
    the sample the damage falls in (or just before, as tarfile cannot always tell) is dropped, never partial."""
    url = folder.url_of(rel)
    damage = tar_truncation(folder, rel)
    read_errors: list[Exception] = []
    last = None
    count = 0
    with folder.open(rel, "rb") as stream:
        for member in iter_tar_samples(stream, url, read_errors):
            count += 1
            if last is not None:
                yield last
            last = member
    if read_errors:
        damage = f"{read_errors[0].args[0] if read_errors[0].args else read_errors[0]}".split(" @ ")[0]
    if damage:
        raise InputError(url, "read tar", f"{damage}; kept {max(count - 1, 0)} samples before it",
                         exception=type(read_errors[0]).__name__ if read_errors else "TruncatedTar")
    if last is not None:
        yield last
