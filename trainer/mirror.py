"""Checkpoints on shared storage: mirror each finished checkpoint and stage model to an fsspec URL.

Ranks write checkpoints to the recipe's local `output` (fast disk, `torch.distributed.checkpoint`); with
`runtime.checkpoint_url` set (`s3://…`, `gs://…`, or a folder every node mounts), rank 0 copies each
finished `stageN/checkpoints/step-*` and `stageN/final` there, file by file, and writes `_COMPLETE` last,
so a copy cut short is never taken for a checkpoint. On `--resume`, a node whose local output lacks the
newest mirrored checkpoint (a fresh node after a failure, another cluster) fetches it first.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import socket
from pathlib import Path

from fsspec.core import url_to_fs

from trainer.checkpoint import STEP_PATTERN

COMPLETE = "_COMPLETE"


def join(url: str, *parts: str) -> str:
    return posixpath.join(url.rstrip("/"), *parts)


def push_folder(local: Path, url: str) -> None:
    """Copy `local` to `url` (replacing what was there), `_COMPLETE` last."""
    fs, root = url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = join(root, path.relative_to(local).as_posix())
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.put_file(str(path), target)
    fs.pipe_file(join(root, COMPLETE), b"")


def is_complete(url: str) -> bool:
    fs, root = url_to_fs(url)
    return fs.exists(join(root, COMPLETE))


def pull_folder(url: str, local: Path) -> None:
    """Fetch a folder into `local`: written beside it under a name of this process's own, then renamed into
    place; when another process (another node's, on a shared disk) got there first, its copy is kept."""
    fs, root = url_to_fs(url)
    staging = local.with_name(f".{local.name}.fetching-{socket.gethostname()}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prefix = root.rstrip("/") + "/"
    remotes, targets = [], []
    for remote in sorted(fs.find(root)):
        rel = remote[len(prefix):] if remote.startswith(prefix) else posixpath.basename(remote)
        if rel == COMPLETE:
            continue
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        remotes.append(remote)
        targets.append(str(target))
    if remotes:
        fs.get(remotes, targets)  # one call: object stores (s3fs, gcsfs) fetch the files concurrently
    try:
        staging.rename(local)
    except OSError:
        if not local.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def mirrored_steps(url: str) -> list[int]:
    """The steps of the complete checkpoints under `url` (a stage's `checkpoints` folder), ascending."""
    fs, root = url_to_fs(url)
    if not fs.exists(root):
        return []
    steps = []
    for entry in fs.ls(root, detail=False):
        match = STEP_PATTERN.match(posixpath.basename(entry.rstrip("/")))
        if match and fs.exists(join(entry, COMPLETE)):
            steps.append(int(match.group(1)))
    return sorted(steps)


def push_checkpoint(step_dir: Path, url: str, keep: int) -> None:
    """Mirror one finished checkpoint and drop mirrored ones older than the newest `keep`."""
    push_folder(step_dir, join(url, step_dir.name))
    fs, root = url_to_fs(url)
    for step in mirrored_steps(url)[:-keep]:
        fs.rm(join(root, f"step-{step:06d}"), recursive=True)


def fetch_newest_checkpoint(url: str, local_checkpoints: Path) -> Path | None:
    """Bring the newest mirrored checkpoint into `local_checkpoints` when the local copy lacks it."""
    steps = mirrored_steps(url)
    if not steps:
        return None
    name = f"step-{steps[-1]:06d}"
    local = local_checkpoints / name
    if not local.is_dir():
        local_checkpoints.mkdir(parents=True, exist_ok=True)
        pull_folder(join(url, name), local)
    return local
