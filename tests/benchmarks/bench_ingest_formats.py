"""Benchmark: per-core throughput of each stage-3 ingest format (samples per CPU-second), no Ray.

    .venv/bin/python tests/benchmarks/bench_ingest_formats.py [--rounds 30]

For each format, plans the bundled sample (samples/datasets) once, then runs the job's `process` over its
items `--rounds` times in this process: read the annotation, decode and check the image, check the boxes,
build the record (CROHME also renders its strokes). Times are CPU seconds of this process
(`time.process_time`), so other load on a shared machine changes them little.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "samples" / "datasets")]

from ingest_demo import BUILDS  # noqa: E402  (the demo's arguments for each bundled sample)

from pipelines.cli import build_parser  # noqa: E402
from pipelines.ingest import make_ingest_job  # noqa: E402
from pipelines.job import InputError  # noqa: E402


def bench(name: str, rounds: int) -> tuple[int, float, float]:
    args = build_parser().parse_args(["build", "ingest", *BUILDS[name], "--output", "unused"])
    job = make_ingest_job(args)
    started = time.process_time()
    items = [item for task in job.plan().tasks for item in task.items]
    plan_s = time.process_time() - started
    samples = 0
    started = time.process_time()
    for _ in range(rounds):
        for item in items:
            for result in job.process(item, 0):
                if isinstance(result, InputError):
                    raise result
                samples += 1
    return samples, plan_s, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="passes over each format's sample (default: 30)")
    args = parser.parse_args()
    print(f"{'format':<12} {'samples':>8} {'plan ms':>8} {'CPU s':>7} {'samples/CPU-s':>14}")
    for name in BUILDS:
        samples, plan_s, cpu_s = bench(name, args.rounds)
        print(f"{name:<12} {samples:>8} {plan_s * 1000:>8.1f} {cpu_s:>7.2f} {samples / cpu_s:>14.1f}")


if __name__ == "__main__":
    main()
