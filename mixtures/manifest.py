"""Mixture manifests: one YAML file per training stage saying which shard sets to blend, how much, for
which tasks and with which prompts. `load_manifest` validates a file and resolves every source's shards;
the stream (`mixtures.stream`) and the trainer read data only through the `Mixture` it returns.

    name: inf-mllm2-stage2
    stage: 2
    seed: 1234
    sources:
      - name: doc2md-arxiv-en
        shards: ${DATA_ROOT}/doc2md/arxiv-en          # a docforge dataset folder (index.json)
        weight: 2.0
        task: doc2md                                   # or a list: [{name: ocr, weight: 1}, ...]
        lang: en
      - name: laion
        shards: ${DATA_ROOT:-/data}/laion/{00000..01023}.tar
        weight: 1.0
        task: caption
        max_samples: 5000000                           # per pass; optional
        repeat: true                                   # cycle forever (default); false or N passes

Every error names the file, the line and the field: `stage2.yaml:14: sources[1].weight: ...`.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mixtures.shardlist import ShardListError, ShardRef, resolve_shards
from pipelines.storage import absolute_url, open_url

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class ManifestError(ValueError):
    """A manifest that cannot be used; the message starts with `FILE:LINE: FIELD:`."""


class TaskWeight(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    weight: float = Field(default=1.0, gt=0)


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    shards: str | list[str]
    weight: float = Field(gt=0)
    task: str | list[TaskWeight]
    lang: str | None = None  # None: each sample's own record["lang"] (else English)
    repeat: bool | int = True
    max_samples: int | None = Field(default=None, gt=0)
    prompts: list[str] | dict[str, list[str]] | None = None

    @field_validator("repeat")
    @classmethod
    def passes_positive(cls, value: bool | int) -> bool | int:
        if not isinstance(value, bool) and value < 1:
            raise ValueError("repeat is true (cycle forever), false (one pass) or a number of passes ≥ 1")
        return value

    @field_validator("shards")
    @classmethod
    def shards_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise ValueError("names no shards")
        return value


class ManifestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    stage: int = Field(ge=1, le=3)
    seed: int = 0
    description: str | None = None
    sources: list[SourceSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Source:
    """A validated source with its shards resolved."""

    name: str
    weight: float
    tasks: tuple[tuple[str, float], ...]
    lang: str | None
    passes: int | None  # None: cycle forever
    max_samples: int | None
    prompts: list[str] | dict[str, list[str]] | None
    shards: tuple[ShardRef, ...]

    @property
    def known_samples(self) -> int | None:
        counts = [s.samples for s in self.shards]
        return None if any(c is None for c in counts) else sum(counts)


@dataclass(frozen=True)
class Mixture:
    path: str
    name: str
    stage: int
    seed: int
    sources: tuple[Source, ...] = field(default_factory=tuple)

    def weight_shares(self) -> dict[str, float]:
        total = sum(s.weight for s in self.sources)
        return {s.name: s.weight / total for s in self.sources}


class YamlLines:
    """Line numbers of every node of a YAML document, addressed by a path like ('sources', 1, 'weight')."""

    def __init__(self, text: str):
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            self.root = None

    def line(self, path: tuple) -> int:
        node, line = self.root, 1
        if node is not None:
            line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if k.value == part), None)
                if match is None:
                    break
                line = match[0].start_mark.line + 1
                node = match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


def field_name(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def interpolate(value: Any, path: tuple, fail) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of the document."""
    if isinstance(value, dict):
        return {k: interpolate(v, path + (k,), fail) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, path + (i,), fail) for i, v in enumerate(value)]
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            fail(path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return ENV_PATTERN.sub(substitute, value)
    return value


def load_manifest(path: str, resolve: bool = True) -> Mixture:
    """Validate a manifest file and resolve its sources' shards (checking they exist); raise `ManifestError`
    naming file, line and field. `resolve=False` checks the file alone (shards left empty), e.g. for a
    manifest whose data lives on another machine."""
    url = absolute_url(path)
    try:
        with open_url(url, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exn:
        raise ManifestError(f"{path}: cannot read ({exn})") from exn
    lines = YamlLines(text)

    def fail(where: tuple, message: str):
        raise ManifestError(f"{path}:{lines.line(where)}: {field_name(where)}: {message}")

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exn:
        mark = getattr(exn, "problem_mark", None)
        raise ManifestError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML ({exn})") from exn
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}:1: a manifest is a YAML mapping with name, stage, sources")
    data = interpolate(raw, (), fail)
    try:
        spec = ManifestSpec.model_validate(data)
    except ValidationError as exn:
        first = exn.errors()[0]
        where = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "list"))))
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        fail(where, message)
    return resolve_mixture(url, path, spec, fail, resolve)


def resolve_mixture(url: str, path: str, spec: ManifestSpec, fail, resolve: bool) -> Mixture:
    from mixtures.tasks import TASKS

    base_dir = posixpath.dirname(url) if "://" not in url else None
    sources = []
    names: dict[str, int] = {}
    owners: dict[str, str] = {}
    for i, src in enumerate(spec.sources):
        if src.name in names:
            fail(("sources", i, "name"), f"duplicate source name {src.name!r} (also sources[{names[src.name]}])")
        names[src.name] = i
        tasks = ((src.task, 1.0),) if isinstance(src.task, str) else tuple((t.name, t.weight) for t in src.task)
        for j, (task, _) in enumerate(tasks):
            if task not in TASKS:
                where = ("sources", i, "task") if isinstance(src.task, str) else ("sources", i, "task", j, "name")
                fail(where, f"task {task!r} has no template (known: {', '.join(sorted(TASKS))})")
        try:
            shards = resolve_shards(src.shards, base_dir) if resolve else []
        except (ShardListError, OSError, ValueError) as exn:
            fail(("sources", i, "shards"), str(exn))
        for shard in shards:
            if shard.url in owners:
                fail(("sources", i, "shards"), f"{shard.url} is also reached by source {owners[shard.url]!r}")
            owners[shard.url] = src.name
        passes = None if src.repeat is True else (1 if src.repeat is False else int(src.repeat))
        sources.append(Source(src.name, src.weight, tasks, src.lang, passes, src.max_samples, src.prompts,
                              tuple(shards)))
    return Mixture(path, spec.name, spec.stage, spec.seed, tuple(sources))
