"""Benchmark: formulas rendered by pdflatex in batches (`synth.formula_render`, one formula per page, as
`docforge build formulas` does) vs one pdflatex run per formula (im2markup's way), the same formulas.

Formulas: `--count` from `synth.formula_grammar` (seeds as the job derives them), normalised as the job
does. "batched" renders them in batches of `--batch-size`; "one per run" calls the same renderer with one
formula at a time, so the document, the pdflatex flags, the crop to ink and the PNG encode are the same
and only the number of pdflatex runs differs. CPU = this process (time.process_time) + its children
(pdflatex, resource.getrusage(RUSAGE_CHILDREN)). The two methods alternate going first; medians over
`--repeats` rounds, and the median of per-round ratios.

    .venv/bin/python tests/benchmarks/bench_formulas.py
    .venv/bin/python tests/benchmarks/bench_formulas.py --count 200 --batch-size 100 --repeats 3

Prints a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pipelines.formulas import formula_seed  # noqa: E402
from synth.formula_grammar import generate_formula  # noqa: E402
from synth.formula_render import RenderOptions, render_formulas  # noqa: E402
from synth.formulas import normalize_latex  # noqa: E402


def cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(formulas: list[str], batch_size: int, options: RenderOptions) -> tuple[float, float, int, int]:
    """(CPU s, wall s, images, pdflatex runs) of rendering `formulas` in batches of `batch_size`."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    images = runs = 0
    for start in range(0, len(formulas), batch_size):
        result = render_formulas(formulas[start:start + batch_size], options)
        images += len(result.images)
        runs += result.runs
    return cpu_seconds() - cpu, time.perf_counter() - wall, images, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dpi", type=int, default=200)
    args = parser.parse_args()
    formulas = [normalize_latex(generate_formula(formula_seed(0, i))) for i in range(args.count)]
    options = RenderOptions(dpi=args.dpi)
    render_formulas(formulas[:2], options)  # warm-up: imports, TeX's file caches
    methods = {"batched": args.batch_size, "one per run": 1}
    results: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in methods}
    for round_index in range(args.repeats):
        order = list(methods) if round_index % 2 == 0 else list(reversed(methods))
        for name in order:
            results[name].append(timed(formulas, methods[name], options))
    print(f"{args.count} grammar formulas, batch size {args.batch_size}, {args.dpi} dpi, {args.repeats} rounds, "
          "medians (machine shared with other agents)\n")
    print("| method | pdflatex runs | images | formulas/CPU-s | formulas/wall-s |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        print(f"| {name} | {runs[0][3]} | {runs[0][2]} | {args.count / cpu:.1f} | {args.count / wall:.1f} |")
    cpu_ratio = statistics.median(b[0] / a[0] for a, b in zip(results["batched"], results["one per run"]))
    wall_ratio = statistics.median(b[1] / a[1] for a, b in zip(results["batched"], results["one per run"]))
    print(f"\nbatched vs one per run: **{cpu_ratio:.1f}x** per CPU-second, **{wall_ratio:.1f}x** per wall-second "
          "(median of per-round ratios)")


if __name__ == "__main__":
    main()
