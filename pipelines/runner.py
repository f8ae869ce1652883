"""Runs a `Job` on Ray with exactly-once output: the heart of every `docforge build`.

Driver side (`run_job`): plan the tasks, skip the ones whose commit marker exists, submit the rest as
Ray tasks with a bounded number in flight (Ray retries crashed or failing tasks), show progress, then
build `index.json`, `errors.jsonl`, `stats.json` and `report.html` from the markers alone.
Worker side (`run_task`): clear what an earlier attempt left, write the task's shards, its error log and
finally its commit marker. Output folder layout:

    DST/_job.json                   job name, config, plan fingerprint (a rerun must match it)
    DST/shard-TTTTTT-NN.tar         the shards (written in DST/_staging/, then renamed)
    DST/_tasks/task-TTTTTT.json     commit markers (shards with counts and hashes, error counts)
    DST/_errors/task-TTTTTT.jsonl   per-task error logs; DST/_errors/plan.jsonl for planning errors
    DST/index.json, errors.jsonl, stats.json, report.html
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.job import InputError, Job, Plan, SideRecord, Task, code_version
from pipelines.shards import STAGING, ShardError, ShardWriter, build_index, shard_name, write_index
from pipelines.storage import Folder, json_bytes

JOB_FILE = "_job.json"
MARKERS = "_tasks"
ERRORS = "_errors"


class JobConfigMismatch(RuntimeError):
    """The output folder holds a different job's (or another config's) partial output."""


@dataclass
class RunOptions:
    address: str | None = None
    num_cpus: int | None = None  # CPUs of the embedded local Ray (ignored with an address)
    max_in_flight: int | None = None  # default: twice the cluster's CPUs
    max_retries: int = 3
    shard_max_count: int = 10_000
    shard_max_bytes: int = 1 << 30
    progress: bool = True
    report_samples: int = 12


@dataclass
class RunResult:
    output: str
    tasks_total: int
    tasks_run: int
    tasks_skipped: int
    failed_tasks: list[int]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed_tasks


def marker_name(task_index: int) -> str:
    return f"{MARKERS}/task-{task_index:06d}.json"


def errors_name(task_index: int) -> str:
    return f"{ERRORS}/task-{task_index:06d}.jsonl"


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json_bytes(r) + b"\n" for r in records)


def read_jsonl(folder: Folder, rel: str) -> list[dict[str, Any]]:
    if not folder.exists(rel):
        return []
    return [json.loads(line) for line in folder.read_bytes(rel).decode("utf-8").splitlines() if line.strip()]


def side_name(stream: str, task_index: int) -> str:
    return f"{stream}/task-{task_index:06d}.jsonl"


def clear_task_output(folder: Folder, task_index: int, side_streams: tuple[str, ...] = ()) -> None:
    """Undo an earlier attempt of this task: its marker first, then its temporary files, then its shards
    (last first, so an interrupted clean-up still leaves a run 00, 01, ... of final names), its error log
    and its side records."""
    folder.remove(marker_name(task_index))
    prefix = f"shard-{task_index:06d}-"
    for name in folder.list(STAGING):
        if name.lstrip(".").startswith(prefix):
            folder.remove(f"{STAGING}/{name}")
    written = []
    while folder.exists(shard_name(task_index, len(written))):
        written.append(shard_name(task_index, len(written)))
    for name in reversed(written):
        folder.remove(name)
    folder.remove(errors_name(task_index))
    for stream in side_streams:
        folder.remove(side_name(stream, task_index))


def results_of(job: Job, item: Any, task_index: int) -> Iterator[dict[str, Any] | InputError]:
    """The job's results for one input, with an exception it raises turned into a final `InputError`:
    one bad input must not sink its task."""
    try:
        yield from job.process(item, task_index)
    except Exception as exn:
        yield InputError.wrap(job.describe(item), "process", exn)


def run_task(job: Job, task: Task, output_url: str, max_count: int, max_bytes: int) -> dict[str, Any]:
    """Run one task to its commit marker. Per-input errors are logged; anything else raises (Ray retries)."""
    started = time.time()
    folder = Folder(output_url)
    clear_task_output(folder, task.index, job.side_streams)
    errors: list[dict[str, Any]] = []
    side: dict[str, list[dict[str, Any]]] = {stream: [] for stream in job.side_streams}
    samples = 0
    with ShardWriter(folder, task.index, max_count=max_count, max_bytes=max_bytes) as writer:
        for item in task.items:
            for result in results_of(job, item, task.index):
                if isinstance(result, InputError):
                    errors.append(result.to_record(task.index))
                    continue
                if isinstance(result, SideRecord):
                    side[result.stream].append(result.record)
                    continue
                try:
                    writer.write(result)
                    samples += 1
                except ShardError as exn:  # a bad sample; storage errors propagate and Ray retries the task
                    errors.append(InputError.wrap(job.describe(item), "write", exn).to_record(task.index))
        shards = writer.close()
    if errors:
        folder.write_bytes(errors_name(task.index), jsonl_bytes(errors))
    for stream, records in side.items():
        if records:
            folder.write_bytes(side_name(stream, task.index), jsonl_bytes(records))
    marker = {
        "task": task.index,
        "items": len(task.items),
        "samples": samples,
        "errors": len(errors),
        "errors_by_cause": dict(Counter(f"{e['step']}: {e['exception']}" for e in errors)),
        "shards": [s.to_dict() for s in shards],
        "side_records": {stream: len(records) for stream, records in side.items() if records},
        "elapsed_s": round(time.time() - started, 3),
        "attempt": uuid.uuid4().hex[:12],
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    folder.write_json(marker_name(task.index), marker)
    return marker


def ensure_ray(options: RunOptions):
    """Connect to `--address`/`RAY_ADDRESS` if given, else start (or reuse) an embedded local Ray.

    The embedded instance is started with `address="local"`: without it Ray would join any cluster a
    `ray start` left running on this machine, which is never what a laptop build means."""
    import ray

    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(address="local", num_cpus=options.num_cpus, include_dashboard=False, log_to_driver=True)
    return ray


def check_job_manifest(folder: Folder, job: Job, plan: Plan) -> dict[str, Any]:
    """Record which job writes this folder; refuse to mix outputs of different jobs or configs."""
    manifest = {
        "job": job.name,
        "config": job.config(),
        "plan": plan.fingerprint(),
        "tasks": len(plan.tasks),
        "code_version": code_version(),
    }
    if folder.exists(JOB_FILE):
        previous = folder.read_json(JOB_FILE)
        for field_name in ("job", "config", "plan"):
            if previous.get(field_name) != manifest[field_name]:
                raise JobConfigMismatch(
                    f"{folder.url}: holds output of a different {field_name} "
                    f"({json.dumps(previous.get(field_name))[:200]}); use a new --output or delete the folder"
                )
    else:
        folder.write_json(JOB_FILE, manifest)
    return manifest


def committed_tasks(folder: Folder) -> set[int]:
    done = set()
    for name in folder.list(MARKERS):
        if name.startswith("task-") and name.endswith(".json"):
            done.add(int(name[len("task-"):-len(".json")]))
    return done


@dataclass
class RunTally:
    """What one invocation did (as opposed to what the output holds): for stats.json and the summary."""

    started: float
    work_started: float = 0.0  # after Ray is up
    tasks_run: int = 0
    tasks_skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    samples: int = 0


def run_job(job: Job, output_url: str, options: RunOptions | None = None) -> RunResult:
    """Plan, run the uncommitted tasks on Ray, and write the index, error log, stats and report."""
    options = options or RunOptions()
    tally = RunTally(started=time.time())
    folder = Folder(output_url)
    if folder.protocol == "memory":
        raise ValueError(f"{output_url}: memory:// lives inside one process and Ray workers are other processes; "
                         "write to a local folder or shared storage (s3://, gs://, NFS)")
    folder.makedirs()
    plan = job.plan()
    manifest = check_job_manifest(folder, job, plan)
    folder.write_bytes(f"{ERRORS}/plan.jsonl", jsonl_bytes([e.to_record(None) for e in plan.errors]))

    done_before = committed_tasks(folder)
    todo = [t for t in plan.tasks if t.index not in done_before]
    tally.tasks_run, tally.tasks_skipped = len(todo), len(plan.tasks) - len(todo)
    tally.work_started = tally.started
    if todo:
        execute_tasks(job, todo, folder, options, tally)
    return finalize(folder, job, plan, manifest, options, tally)


def execute_tasks(job: Job, todo: list[Task], folder: Folder, options: RunOptions, tally: RunTally) -> None:
    """Submit `todo` as Ray tasks, at most `max_in_flight` at once, and count what each one committed."""
    from pipelines.progress import JobProgress

    ray = ensure_ray(options)
    tally.work_started = time.time()
    remote = ray.remote(run_task).options(num_cpus=1, max_retries=options.max_retries, retry_exceptions=True)
    job_ref = ray.put(job)
    limit = options.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    in_flight: dict[Any, Task] = {}
    pending = list(todo)
    with JobProgress(job.name, sum(len(t.items) for t in todo), enabled=options.progress) as progress:
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                task = pending.pop(0)
                ref = remote.remote(job_ref, task, folder.url, options.shard_max_count, options.shard_max_bytes)
                in_flight[ref] = task
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                task = in_flight.pop(ref)
                try:
                    marker = ray.get(ref)
                    progress.task_done(len(task.items), marker["samples"], marker["errors"])
                except Exception as exn:  # retries exhausted: the task stays uncommitted
                    tally.failed[task.index] = f"{type(exn).__name__}: {str(exn).strip().splitlines()[-1][:500]}"
                    progress.task_done(len(task.items), 0, 0, failed=True)
    tally.samples = progress.samples


def finalize(folder: Folder, job: Job, plan: Plan, manifest: dict, options: RunOptions, tally: RunTally) -> RunResult:
    """Build index.json, errors.jsonl, stats.json and report.html from the commit markers."""
    from pipelines.report import write_report
    from pipelines.summary import print_summary

    markers = [folder.read_json(marker_name(t.index)) for t in plan.tasks if folder.exists(marker_name(t.index))]
    missing = sorted(set(t.index for t in plan.tasks) - {m["task"] for m in markers})
    shards = [shard for m in markers for shard in m["shards"]]
    index = build_index(shards, manifest, {"complete": not missing, "missing_tasks": missing})
    write_index(folder, index)

    errors = read_jsonl(folder, f"{ERRORS}/plan.jsonl")
    for m in markers:
        if m["errors"]:
            errors.extend(read_jsonl(folder, errors_name(m["task"])))
    for task_index, reason in sorted(tally.failed.items()):
        errors.append({"task": task_index, "input": f"task {task_index}", "step": "task",
                       "exception": "TaskFailed", "message": reason})
    folder.write_bytes("errors.jsonl", jsonl_bytes(errors))

    now = time.time()
    working = now - tally.work_started
    stats = {
        "job": job.name,
        "output": folder.url,
        "complete": not missing,
        "tasks": {"total": len(plan.tasks), "run": tally.tasks_run, "skipped": tally.tasks_skipped,
                  "failed": len(tally.failed), "missing": missing},
        "inputs": sum(m["items"] for m in markers),
        "samples": index["totals"]["samples"],
        "shards": index["totals"]["shards"],
        "bytes": index["totals"]["bytes"],
        "families": index["families"],
        "errors": len(errors),
        "errors_by_cause": dict(Counter(f"{e['step']}: {e['exception']}" for e in errors).most_common()),
        "this_run": {
            "elapsed_s": round(now - tally.started, 3),
            "ray_start_s": round(tally.work_started - tally.started, 3),
            "samples": tally.samples,
            "samples_per_s": round(tally.samples / working, 2) if working > 0 else 0.0,
        },
    }
    folder.write_json("stats.json", stats)
    write_report(folder, index, stats, errors, options.report_samples)
    if options.progress:
        print_summary(stats, folder.url_of("report.html"))
    return RunResult(folder.url, len(plan.tasks), tally.tasks_run, tally.tasks_skipped, sorted(tally.failed), stats)
