"""Resolves a manifest source's `shards` field into the list of tar URLs it names.

Three spellings, mixable in a list: a brace pattern (`.../shard-{000000..000127}.tar`), a dataset
folder written by `docforge build` (its `index.json` gives the shards and their sample counts; a folder
without one contributes its `*.tar` files), or a single tar URL. Local relative paths are taken
relative to the manifest's folder. Every URL goes through fsspec.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from braceexpand import braceexpand

from pipelines.storage import Folder, absolute_url


class ShardListError(ValueError):
    """A `shards` entry that names nothing readable."""


@dataclass(frozen=True)
class ShardRef:
    url: str
    samples: int | None = None  # known from index.json, else None


def absolute_against(url: str, base_dir: str | None) -> str:
    if "://" in url or posixpath.isabs(url) or base_dir is None:
        return absolute_url(url)
    return absolute_url(posixpath.join(base_dir, url))


def resolve_one(spec: str, base_dir: str | None) -> list[ShardRef]:
    if "{" in spec and ".." in spec:
        urls = [absolute_against(u, base_dir) for u in braceexpand(spec)]
        refs = [ShardRef(u) for u in urls]
    elif spec.endswith(".tar"):
        refs = [ShardRef(absolute_against(spec, base_dir))]
    else:
        return resolve_folder(absolute_against(spec, base_dir))
    missing = [r.url for r in refs if not Folder(r.url).exists("")]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ShardListError(f"missing shards: {', '.join(missing[:3])}{more}")
    return refs


def resolve_folder(url: str) -> list[ShardRef]:
    folder = Folder(url)
    if folder.exists("index.json"):
        index = folder.read_json("index.json")
        if index.get("complete") is False:
            raise ShardListError(f"{url}: the job that wrote it never finished (tasks {index.get('missing_tasks')} "
                                 "missing); rerun its build")
        return [ShardRef(folder.url_of(s["name"]), s.get("samples")) for s in index.get("shards", [])]
    if not folder.exists(""):
        raise ShardListError(f"missing shards: {url} does not exist")
    tars = [name for name in folder.list() if name.endswith(".tar") and not name.startswith(".")]
    if not tars:
        raise ShardListError(f"missing shards: {url} has no index.json and no .tar files")
    return [ShardRef(folder.url_of(name)) for name in tars]


def resolve_shards(spec: str | list[str], base_dir: str | None = None) -> list[ShardRef]:
    """Every shard a `shards` field names, in order, without repeats; a shard that does not exist is an error."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    refs: list[ShardRef] = []
    seen: set[str] = set()
    for one in specs:
        for ref in resolve_one(one, base_dir):
            if ref.url in seen:
                raise ShardListError(f"{ref.url} is listed twice")
            seen.add(ref.url)
            refs.append(ref)
    if not refs:
        raise ShardListError(f"missing shards: {spec!r} names no shard")
    return refs
