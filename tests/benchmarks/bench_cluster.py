"""Cluster reliability and scaling on a local multi-node Ray cluster (`docforge cluster up`).

1. Node-kill trials: an OCR build on head + 2 worker nodes; at a random moment (20-80 % of a clean run's
   time) worker-1's raylet is killed; the build must still finish with every planned sample exactly
   once. Reports inputs lost / duplicated per trial and the time overhead against clean runs.
2. Scaling: the same build with 1 and with 2 worker nodes (1 CPU each): pages/s, and the CPU seconds
   the cluster's processes and the driver spent (on a shared 2-core machine wall time is noisy; CPU
   time is not).
3. Scheduling overhead: empty Ray tasks (num_cpus=1, the runner's shape) through the cluster: tasks/s.

    .venv/bin/python tests/benchmarks/bench_cluster.py --trials 5 --pages 40 --empty-tasks 2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from pipelines.cluster import local
from pipelines.shard_reader import iter_tar_samples

REPO = Path(__file__).resolve().parents[2]


class ClusterCpuMeter:
    """CPU seconds the cluster's processes spend while it runs: sampled every 0.25 s per process (a job's
    Ray workers exit with its driver, so a reading taken afterwards would miss them)."""

    def __init__(self, state: local.ClusterState):
        self.state = state
        self.start: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.stopped = threading.Event()
        self.sample(self.start)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def sample(self, into: dict[tuple[int, float], float]) -> None:
        for process in local.cluster_processes(self.state.cluster_id):
            try:
                times = process.cpu_times()
                into[(process.pid, process.create_time())] = times.user + times.system
            except psutil.Error:
                continue

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            self.sample(self.last)

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join()
        self.sample(self.last)
        return sum(cpu - self.start.get(key, 0.0) for key, cpu in self.last.items())


def build_command(out: Path, state: local.ClusterState, pages: int, pages_per_task: int) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "build", "ocr", "--count", str(pages), "--pages-per-task",
            str(pages_per_task), "--seed", "7", "--output", str(out), "--address", state.address, "--no-progress"]


def keys_written(out: Path) -> Counter:
    """How many times each key occurs across the shards the index lists."""
    index = json.loads((out / "index.json").read_text())
    counts: Counter = Counter()
    for shard in index["shards"]:
        with open(out / shard["name"], "rb") as f:
            for sample in iter_tar_samples(f, str(out / shard["name"])):
                counts[sample["__key__"]] += 1
    return counts


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_build(state, out: Path, pages: int, pages_per_task: int, kill_after: float | None = None) -> dict:
    env = {**os.environ, **state.env(), "HF_HUB_OFFLINE": "1"}
    meter, driver_cpu = ClusterCpuMeter(state), children_cpu_seconds()
    started = time.perf_counter()
    build = subprocess.Popen(build_command(out, state, pages, pages_per_task), cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_at = None
    if kill_after is not None:
        try:
            build.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            raylet = state.node("worker-1").raylet()
            if raylet is not None:
                raylet.kill()
                killed_at = time.perf_counter() - started
    _, errors = build.communicate(timeout=900)
    elapsed = time.perf_counter() - started
    cluster_cpu, driver_cpu = meter.stop(), children_cpu_seconds() - driver_cpu
    if build.returncode != 0:
        raise RuntimeError(f"build into {out} exited {build.returncode}: {errors[-2000:]}")
    expected = {f"ocr-en-s7-{i:09d}" for i in range(pages)}
    counts = keys_written(out)
    return {"elapsed_s": round(elapsed, 2), "cluster_cpu_s": round(cluster_cpu, 1),
            "driver_cpu_s": round(driver_cpu, 1),
            "killed_at_s": round(killed_at, 2) if killed_at else None,
            "lost": len(expected - set(counts)), "duplicated": sum(c - 1 for c in counts.values() if c > 1),
            "unexpected": len(set(counts) - expected)}


def empty_task_rate(state: local.ClusterState, tasks: int) -> dict:
    script = f"""
import json, time, resource, ray
ray.init(address={state.address!r}, log_to_driver=False)
@ray.remote(num_cpus=1)
def nothing():
    return None
ray.get([nothing.remote() for _ in range(200)])  # warm the workers
cpu, wall = time.process_time(), time.perf_counter()
ray.get([nothing.remote() for _ in range({tasks})])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({{"tasks": {tasks}, "wall_s": round(wall, 3), "tasks_per_s": round({tasks} / wall, 1),
                  "driver_cpu_s": round(cpu, 3)}}))
"""
    env = {**os.environ, **state.env()}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def scaling(args, work: Path) -> list[dict]:
    rows = []
    for workers in (1, 2):
        state_dir = Path(tempfile.mkdtemp(prefix="dfb-", dir="/tmp"))
        try:
            state = local.up(workers, state_dir)
            run = run_build(state, work / f"scale-{workers}", args.pages, args.pages_per_task)
            cpu = run["cluster_cpu_s"] + run["driver_cpu_s"]
            empty = empty_task_rate(state, args.empty_tasks)
            rows.append({"workers": workers, **run, "pages_per_s": round(args.pages / run["elapsed_s"], 2),
                         "pages_per_cpu_s": round(args.pages / cpu, 2), "empty_tasks": empty})
            print(json.dumps(rows[-1]), flush=True)
        finally:
            local.down(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
    return rows


def kill_trials(args, work: Path) -> dict:
    rng = random.Random(args.seed)
    state_dir = Path(tempfile.mkdtemp(prefix="dfb-", dir="/tmp"))
    try:
        state = local.up(2, state_dir)
        clean = [run_build(state, work / f"clean-{i}", args.pages, args.pages_per_task) for i in range(2)]
        clean_s = sum(c["elapsed_s"] for c in clean) / len(clean)
        print(json.dumps({"clean_runs": clean}), flush=True)
        trials = []
        for trial in range(args.trials):
            kill_after = clean_s * rng.uniform(0.2, 0.8)
            result = run_build(state, work / f"kill-{trial}", args.pages, args.pages_per_task, kill_after)
            result["overhead_s"] = round(result["elapsed_s"] - clean_s, 2)
            trials.append(result)
            print(json.dumps({"trial": trial, **result}), flush=True)
            local.restart_workers(local.ClusterState.load(state_dir))
            state = local.ClusterState.load(state_dir)
        return {"clean_s": round(clean_s, 2), "trials": trials}
    finally:
        local.down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5, help="node-kill trials (default: 5)")
    parser.add_argument("--pages", type=int, default=40, help="OCR pages per build (default: 40)")
    parser.add_argument("--pages-per-task", type=int, default=2, help="pages per Ray task (default: 2)")
    parser.add_argument("--empty-tasks", type=int, default=2000, help="empty tasks to time (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-kills", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    report = {"load_average_at_start": os.getloadavg()}
    try:
        if not args.skip_kills:
            report["kills"] = kill_trials(args, work)
        if not args.skip_scaling:
            report["scaling"] = scaling(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
