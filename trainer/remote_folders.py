"""Model folders a recipe names by fsspec URL: its tokenizer path, the tower's and the LLM's paths and a
stage's `init` may be `s3://…`, `gs://…`, `hf`-style mounts or any other fsspec URL as well as local
folders. transformers reads only local folders, so before any rank loads one, the first process of each
node (local rank 0) copies the URL's folder to `OUTPUT/.fetched/NAME-HASH/` (once: a later stage, run or
`--resume` finds the copy) and every rank then reads that copy. `file://` URLs are read in place.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from fsspec.core import url_to_fs

from trainer.distributed import Runtime
from trainer.mirror import pull_folder

FETCHED = ".fetched"


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def fetched_path(url: str, output: str | Path) -> Path:
    """Where the copy of `url` goes: its last path part (readable) and a hash of the whole URL (unique)."""
    name = posixpath.basename(url.rstrip("/")) or "folder"
    return Path(output) / FETCHED / f"{name}-{hashlib.sha1(url.encode()).hexdigest()[:10]}"


def local_folder(location: str, output: str | Path, runtime: Runtime, field: str) -> str:
    """`location` as a local folder: a URL's copy (fetched by local rank 0 of each node, the other ranks
    waiting), a `file://` URL's own path, a local path as it is (each checked to be a folder). All ranks
    call it together. `field` names the recipe entry in errors."""
    if not is_remote(location):
        path = location[len("file://"):] if location.startswith("file://") else location
        if not Path(path).is_dir():  # transformers would take a missing folder's path for a hub repository id
            raise FileNotFoundError(f"{field} {location}: no such folder")
        return path
    local = fetched_path(location, output)
    problem = None
    if runtime.local_rank == 0 and not local.is_dir():
        try:
            fs, root = url_to_fs(location)
            if not fs.isdir(root):
                problem = "no such folder"
            else:
                pull_folder(location, local)
        except Exception as exn:  # an unknown protocol, a missing fsspec extra, refused credentials
            problem = f"{type(exn).__name__}: {exn}"
    failed = runtime.sum(problem is not None)  # every rank stops, not only the one that fetched
    if problem is not None:
        raise FileNotFoundError(f"{field} {location}: cannot fetch it ({problem})")
    if failed or not local.is_dir():
        raise FileNotFoundError(f"{field} {location}: another rank could not fetch it (see its error)")
    return str(local)
