"""Benchmark: SynthDoG itself (the peer of issue 4) pages per CPU-second for English and Chinese, side by side
with docforge's OCR page renderer in the same rounds.

What it measures
    SynthDoG: in a fresh process run by the SynthDoG venv's Python, the donut template (`template.py`,
    class `SynthDoG`) with its own `config_en.yaml` / `config_zh.yaml` makes pages the way its README's
    `synthtiger -o OUT -c N -w 0 -s SEED template.py SynthDoG config_XX.yaml` does (synthtiger's
    `generator` with per-task seeds, then `template.save`: JPEG at the page's sampled quality plus the
    metadata line), in this process. `--warmup` pages first (untimed: imports, first font loads), then
    `--pages` pages timed with time.process_time (every thread of the process) and time.perf_counter.
    docforge (unless `--no-docforge`): `bench_ocr.py`'s own render child (fresh process, `--docforge-warmup`
    untimed pages, then `--docforge-pages` timed pages as `docforge build ocr` makes them, JPEG encode
    included), in the same rounds. Each round runs, per language, SynthDoG and docforge one after
    the other (which goes first alternates by round), so the two see the same machine load.
    Reported per round and as medians: pages per CPU-second, pages per wall-second, mean short side of
    the pages, and docforge/SynthDoG (paired within a round, and of the medians). `--docforge-fonts`
    makes docforge render with given fonts (e.g. SynthDoG's own) rather than its defaults.

Setting SynthDoG up (nothing of it lives in this repository)
    1. A venv outside the repository with SynthDoG's pinned stack:
           python3 -m venv /tmp/synthdog-venv
           /tmp/synthdog-venv/bin/pip install synthtiger==1.2.1 "numpy<2" "pillow<10"
    2. The `synthdog/` folder of the public donut repository (github.com/clovaai/donut): template.py,
       elements/, layouts/, utils/, config_en.yaml, config_zh.yaml and resources/ (corpus/enwiki.txt,
       corpus/zhwiki.txt, background/*.jpg, paper/*.jpg, font/en/, font/zh/). Pass it as `--synthdog DIR`.
    3. Fonts: donut ships one English font and no Chinese one; put fonts into resources/font/en and
       resources/font/zh. synthtiger only picks up `.ttf`/`.otf` names, so link `.ttc` collections under
       a `.ttf` name (PIL opens them by content). For a like-for-like comparison use docforge's defaults:
           python -c "from pipelines.ocr import default_fonts; print(default_fonts('zh'))"
    4. Background photos and paper textures: donut's own JPEGs, or substitutes of realistic sizes
       (photos about 800-1200 px, paper textures about 1000 px): synthtiger decodes one of each per page.

How to run (from the repository root, with docforge's venv)
    .venv/bin/python tests/benchmarks/bench_synthdog.py --synthdog /tmp/synthdog \
        --synthdog-python /tmp/synthdog-venv/bin/python --pages 30 --warmup 3 --repeats 3

Prints a markdown table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_ocr  # noqa: E402  (its render child is docforge's side of each round)

RESULT_PREFIX = bench_ocr.RESULT_PREFIX


def one_synthdog(args: argparse.Namespace) -> None:
    """Child process (SynthDoG's venv): time `--pages` SynthDoG pages of `--lang` after `--warmup` pages."""
    import synthtiger

    os.chdir(args.synthdog)  # the configs name their resources relative to the synthdog folder
    template_path = os.path.join(args.synthdog, "template.py")
    config = synthtiger.read_config(os.path.join(args.synthdog, f"config_{args.lang}.yaml"))
    synthtiger.set_global_random_seed(args.seed)
    template = synthtiger.read_template(template_path, "SynthDoG", config)
    pages = synthtiger.generator(template_path, "SynthDoG", config=config, count=args.warmup + args.pages,
                                 worker=0, seed=args.seed, retry=True)
    with tempfile.TemporaryDirectory(prefix="synthdog-bench-") as out:
        template.init_save(out)
        short = 0
        for idx, (task_idx, data) in enumerate(pages):
            if idx == args.warmup:
                cpu, wall = time.process_time(), time.perf_counter()
            template.save(out, data, task_idx)
            if idx >= args.warmup:
                short += min(data["image"].shape[:2])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        template.end_save(out)
    print(RESULT_PREFIX + json.dumps({"cpu_s": cpu, "wall_s": wall, "mean_short_side": short / args.pages}),
          flush=True)


def spawn_synthdog(args: argparse.Namespace, lang: str) -> dict:
    cmd = [args.synthdog_python, os.path.abspath(__file__), "--one-synthdog", "--synthdog", args.synthdog,
           "--lang", lang, "--pages", str(args.pages), "--warmup", str(args.warmup), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"SynthDoG child {cmd} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["pages"] = args.pages
    return result


def spawn_docforge(args: argparse.Namespace, lang: str) -> dict:
    result = bench_ocr.spawn(["--one-render", "--root", args.docforge_root, "--lang", lang, "--pages",
                              str(args.docforge_pages), "--warmup", str(args.docforge_warmup)]
                             + bench_ocr.font_args(args.docforge_fonts))
    result["pages"] = args.docforge_pages
    return result


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthdog", required=True, metavar="DIR", help="donut's synthdog folder, set up as above")
    parser.add_argument("--synthdog-python", default="/tmp/synthdog-venv/bin/python",
                        help="Python of the venv with synthtiger 1.2.1 (default /tmp/synthdog-venv/bin/python)")
    parser.add_argument("--langs", nargs="+", choices=("en", "zh"), default=["en", "zh"])
    parser.add_argument("--pages", type=int, default=30, help="timed SynthDoG pages per run (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed SynthDoG pages first (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="SynthDoG's seed (as synthtiger -s)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--no-docforge", action="store_true", help="time SynthDoG only")
    parser.add_argument("--docforge-pages", type=int, default=60, help="timed docforge pages per run (default 60)")
    parser.add_argument("--docforge-warmup", type=int, default=150, help="untimed docforge pages (default 150)")
    parser.add_argument("--docforge-root", default=bench_ocr.REPO, metavar="ROOT",
                        help="docforge checkout whose renderer is timed (default this one; e.g. "
                             "`git archive HEAD synth pipelines | tar -x -C ROOT` for a clean commit)")
    parser.add_argument("--docforge-fonts", nargs="+", metavar="FILE",
                        help="docforge renders with these fonts (default: its own defaults), e.g. SynthDoG's")
    # internal: one SynthDoG run in this process (run by the SynthDoG venv's Python)
    parser.add_argument("--one-synthdog", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lang", default="en", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.synthdog = os.path.abspath(args.synthdog)
    args.docforge_root = os.path.abspath(args.docforge_root)

    if args.one_synthdog:
        one_synthdog(args)
        return

    names = ["SynthDoG"] + ([] if args.no_docforge else ["docforge"])
    spawners = {"SynthDoG": spawn_synthdog, "docforge": spawn_docforge}
    runs: dict[tuple[str, str], list[dict]] = {(name, lang): [] for name in names for lang in args.langs}
    round_loads = []
    for r in range(args.repeats):
        round_loads.append(load_average())
        order = names if r % 2 == 0 else list(reversed(names))
        for lang in args.langs:
            for name in order:
                load = load_average()
                res = spawners[name](args, lang)
                res["load"] = load
                runs[(name, lang)].append(res)
                print(f"round {r + 1}/{args.repeats} {name} {lang} (load {load}): "
                      f"{res['pages'] / res['cpu_s']:.3f} pages/CPU-s, {res['pages'] / res['wall_s']:.3f} "
                      f"pages/wall-s, mean short side {res['mean_short_side']:.0f}", file=sys.stderr)

    def rate(res: dict) -> float:
        return res["pages"] / res["cpu_s"]

    print(f"\nSynthDoG: {args.pages} timed pages per run after {args.warmup}; docforge: {args.docforge_pages} "
          f"after {args.docforge_warmup}; {args.repeats} rounds, a fresh process per run. Pages per CPU-second.\n")
    header = [f"{name} {lang}" for lang in args.langs for name in names]
    if not args.no_docforge:
        header += [f"{lang} docforge/SynthDoG" for lang in args.langs]
    print("| round | load at start | " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * len(header))
    for r in range(args.repeats):
        cells = [f"{rate(runs[(name, lang)][r]):.2f}" for lang in args.langs for name in names]
        if not args.no_docforge:
            cells += [f"{rate(runs[('docforge', lang)][r]) / rate(runs[('SynthDoG', lang)][r]):.1f}x"
                      for lang in args.langs]
        print(f"| {r + 1} | {round_loads[r].split()[0]} | " + " | ".join(cells) + " |")
    medians = {key: statistics.median(rate(res) for res in results) for key, results in runs.items()}
    cells = [f"**{medians[(name, lang)]:.2f}**" for lang in args.langs for name in names]
    if not args.no_docforge:
        cells += [f"**{medians[('docforge', lang)] / medians[('SynthDoG', lang)]:.1f}x**" for lang in args.langs]
    print("| median | | " + " | ".join(cells) + " |")
    print("\n| generator | lang | pages/wall-s (median) | mean short side px |")
    print("|---|---|---:|---:|")
    for (name, lang), results in runs.items():
        wall = statistics.median(res["pages"] / res["wall_s"] for res in results)
        short = statistics.mean(res["mean_short_side"] for res in results)
        print(f"| {name} | {lang} | {wall:.2f} | {short:.0f} |")


if __name__ == "__main__":
    main()
