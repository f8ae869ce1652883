"""Benchmark: synthetic tables (`synth.tables`: generate, lay out with PyMuPDF's Story, render, crop, PNG) per
CPU-second and per wall-second, English and Chinese, as `docforge build tables` makes them.

Each round times `--tables` tables per language (seeds as the job derives them, random style and dpi as the
job draws them) after `--warmup` untimed ones; CPU time is time.process_time of this process (pure
in-process work: no child processes). Medians over `--repeats` rounds, the languages alternating first.

    .venv/bin/python tests/benchmarks/bench_tables.py
    .venv/bin/python tests/benchmarks/bench_tables.py --tables 500 --repeats 5

Prints a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pipelines.tables import DPI_CHOICES, TablesJob, table_seed  # noqa: E402
from synth.tables import generate_table, random_style, render_table  # noqa: E402


def render_block(job: TablesJob, first: int, count: int) -> tuple[float, float, int]:
    """(CPU s, wall s, output bytes) of rendering tables first..first+count-1 as the job does."""
    cpu, wall = time.process_time(), time.perf_counter()
    size = 0
    for index in range(first, first + count):
        seed = table_seed(job.seed, index)
        table = generate_table(seed, job.table_config())
        rng = random.Random(seed)
        size += len(render_table(table, random_style(rng, tuple(job.styles)), dpi=rng.choice(DPI_CHOICES)).png)
    return time.process_time() - cpu, time.perf_counter() - wall, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jobs = {lang: TablesJob(count=args.tables, lang=lang) for lang in ("en", "zh")}
    for job in jobs.values():
        render_block(job, 10_000_000, args.warmup)
    results: dict[str, list[tuple[float, float, int]]] = {lang: [] for lang in jobs}
    for round_index in range(args.repeats):
        order = list(jobs) if round_index % 2 == 0 else list(reversed(jobs))
        for lang in order:
            results[lang].append(render_block(jobs[lang], 0, args.tables))
    print(f"{args.tables} tables per round, {args.repeats} rounds, medians (machine shared with other agents)\n")
    print("| lang | tables/CPU-s | tables/wall-s | ms CPU per table | KB per PNG |")
    print("|---|---:|---:|---:|---:|")
    for lang, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        size = statistics.median(r[2] for r in runs) / args.tables / 1024
        print(f"| {lang} | {args.tables / cpu:.1f} | {args.tables / wall:.1f} | {1000 * cpu / args.tables:.2f} | "
              f"{size:.1f} |")


if __name__ == "__main__":
    main()
