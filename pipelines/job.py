"""What a docforge job is: a deterministic plan of tasks, and a function from one input to samples.

Every build job (`ingest`, `doc2md`, `ocr`, ...) subclasses `Job`. The runner (`pipelines.runner`) owns
Ray, shards, markers and the error log; a job only says how to split its inputs (`plan`) and how to
turn one input into samples (`process`). A bad input is reported as an `InputError`, never a crash.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipelines.storage import json_bytes


class InputError(Exception):
    """One input could not be turned into samples. Carries the input, the step and the reason."""

    def __init__(self, input: str, step: str, message: str, exception: str | None = None):
        super().__init__(f"{input}: {step}: {message}")
        self.input = input
        self.step = step
        self.message = message
        self.exception = exception or "InputError"

    def __reduce__(self):
        return (InputError, (self.input, self.step, self.message, self.exception))

    def to_record(self, task: int | None) -> dict[str, Any]:
        return {
            "task": task,
            "input": self.input,
            "step": self.step,
            "exception": self.exception,
            "message": self.message,
        }

    @classmethod
    def wrap(cls, input: str, step: str, exn: BaseException) -> InputError:
        """An `InputError` for an unexpected exception raised while handling `input` at `step`."""
        if isinstance(exn, InputError):
            return exn
        return cls(input, step, str(exn) or type(exn).__name__, exception=type(exn).__name__)


@dataclass(frozen=True)
class SideRecord:
    """A record a job writes beside its shards (e.g. doc2md's lifted formulas and tables): the runner
    appends it to `DST/STREAM/task-TTTTTT.jsonl`, written before the task's commit marker and cleared
    with the rest of a retried task's output, so side records land exactly once too."""

    stream: str
    record: dict[str, Any]


@dataclass
class Task:
    """A deterministic unit of work: the task index and the JSON-able descriptions of its inputs."""

    index: int
    items: list[Any]


@dataclass
class Plan:
    tasks: list[Task]
    errors: list[InputError] = field(default_factory=list)

    def fingerprint(self) -> str:
        """A hash of every task's inputs: a rerun into the same output must plan the same tasks."""
        digest = hashlib.sha256()
        for task in self.tasks:
            digest.update(json_bytes([task.index, task.items]))
        return digest.hexdigest()


def chunk_into_tasks(items: list[Any], items_per_task: int) -> list[Task]:
    if items_per_task < 1:
        raise ValueError("items per task must be at least 1")
    return [Task(i, items[start:start + items_per_task]) for i, start in enumerate(range(0, len(items), items_per_task))]


class Job(ABC):
    """A build job. Instances are pickled to Ray workers, so they hold only configuration."""

    name: str = "job"
    side_streams: tuple[str, ...] = ()  # the `SideRecord` streams this job may yield

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The job's configuration, JSON-able; recorded in the index and compared on rerun."""

    @abstractmethod
    def plan(self) -> Plan:
        """Split the inputs into deterministic tasks (same inputs and config -> same tasks)."""

    @abstractmethod
    def process(self, item: Any, task_index: int) -> Iterator[dict[str, Any] | InputError | SideRecord]:
        """Turn one input into samples. Yield an `InputError` for a bad part; raise one for a bad whole;
        yield a `SideRecord` (of a stream in `side_streams`) for output that is not a training sample."""

    def describe(self, item: Any) -> str:
        """How an item is named in the error log."""
        return str(item)


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the git commit (`0.1.0+g1a2b3c4`, `-dirty` when changed) in a checkout."""
    try:
        release = version("docforge")
    except PackageNotFoundError:
        release = "0"
    checkout = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty", "--abbrev=10"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return release
    sha = commit.stdout.strip()
    return f"{release}+g{sha}" if commit.returncode == 0 and sha else release


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_key(text: str) -> str:
    """A sample-key fragment from arbitrary text: dots and slashes become `_` (`2403.08295` -> `2403_08295`);
    if any other character had to be replaced, a short hash of the original keeps keys unique."""
    simple = text.replace(".", "_").replace("/", "_")
    cleaned = _UNSAFE.sub("_", simple)
    if cleaned != simple or not cleaned:
        cleaned = f"{cleaned}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
    return cleaned
