"""One fsspec-backed view of a folder: every block that reads or writes a dataset goes through here.

A `Folder` is a base URL (local path, `s3://`, `gs://`, `memory://`, ...) plus the handful of
operations the jobs need: open, list, atomic-ish publish (write to a temporary name, then rename),
remove. Paths inside a folder are always relative, with `/` separators.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs


class Folder:
    """A folder addressed by an fsspec URL."""

    def __init__(self, url: str, **storage_options: Any):
        self.url = absolute_url(str(url))
        self.fs, self.root = url_to_fs(self.url, **storage_options)
        self.root = self.root.rstrip("/") or "/"
        self.protocol = self.url.split("://", 1)[0] if "://" in self.url else "file"

    def __repr__(self) -> str:
        return f"Folder({self.url!r})"

    def path(self, rel: str) -> str:
        """The filesystem path (no protocol) of `rel` inside this folder."""
        return posixpath.join(self.root, rel) if rel else self.root

    def url_of(self, rel: str) -> str:
        """The full URL of `rel` inside this folder (what a user or another process can open)."""
        return f"{self.url}/{rel}" if rel else self.url

    def sub(self, rel: str) -> Folder:
        return Folder(self.url_of(rel))

    def makedirs(self, rel: str = "") -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def open(self, rel: str, mode: str = "rb") -> IO:
        if "w" in mode:
            parent = posixpath.dirname(rel)
            if parent:
                self.makedirs(parent)
            elif self.protocol == "file":
                self.makedirs()
        return self.fs.open(self.path(rel), mode)

    def read_bytes(self, rel: str) -> bytes:
        with self.open(rel, "rb") as f:
            return f.read()

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel).decode("utf-8"))

    def list(self, rel: str = "") -> list[str]:
        """Names (not paths) of the entries directly inside `rel`, sorted; empty when it is missing."""
        target = self.path(rel)
        if not self.fs.exists(target):
            return []
        self.fs.invalidate_cache(target)
        names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(target, detail=False)]
        return sorted(n for n in names if n)

    def find(self, rel: str = "") -> list[str]:
        """Every file below `rel`, as paths relative to this folder, sorted."""
        target = self.path(rel)
        if not self.fs.exists(target):
            return []
        if self.fs.isfile(target):
            return [rel]
        prefix = self.root.rstrip("/") + "/"
        found = []
        for p in self.fs.find(target):
            found.append(p[len(prefix):] if p.startswith(prefix) else p)
        return sorted(found)

    def remove(self, rel: str) -> None:
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel))

    def rename(self, src: str, dst: str) -> None:
        """Move `src` over `dst` (replacing it). Atomic on local disks; copy + delete on object stores."""
        self.fs.mv(self.path(src), self.path(dst))

    @contextmanager
    def publish(self, rel: str, mode: str = "wb") -> Iterator[IO]:
        """Write `rel` under a unique temporary name and rename it into place only if the block succeeds."""
        tmp = temp_name(rel)
        try:
            with self.open(tmp, mode) as f:
                yield f
        except BaseException:
            self.remove(tmp)
            raise
        self.rename(tmp, rel)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.publish(rel, "wb") as f:
            f.write(data)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json_bytes(obj, indent=2))


def temp_name(rel: str) -> str:
    """A unique hidden sibling of `rel`: `dir/.name.tmp-XXXXXXXX`."""
    parent, name = posixpath.split(rel)
    return posixpath.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


def json_bytes(obj: Any, indent: int | None = None) -> bytes:
    """Canonical JSON (sorted keys, UTF-8, no ASCII escaping) so equal records give equal bytes."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=indent).encode("utf-8")


def open_url(url: str, mode: str = "rb", **storage_options: Any) -> IO:
    """Open a single file by URL (used for inputs that are not inside a dataset folder)."""
    return fsspec.open(url, mode, **storage_options).open()


def absolute_url(url: str) -> str:
    """A local relative path made absolute (Ray workers may not share the driver's working directory);
    URLs with a protocol are kept, minus a trailing slash."""
    if "://" not in url:
        url = os.path.abspath(url)
    return url.rstrip("/") or url


def join_url(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel.lstrip('/')}"
