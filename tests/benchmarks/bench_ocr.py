"""Benchmark: synthetic OCR pages (`synth.text_page.render_page`) per CPU-second and per wall-second for
English and Chinese at the default config, and `docforge build ocr` on an embedded Ray with 1 vs 2 CPUs.

What it measures
    Render: in a fresh process, `--warmup` pages are rendered first (job seed 1: the per-worker font
    caches fill, as they do in a long job), then `--pages` pages (job seed 0, page seeds as the job
    derives them) are timed with time.process_time (CPU) and time.perf_counter (wall). The pages are
    the job's: the shipped corpus for the language, the default fonts (`pipelines.ocr.default_fonts`),
    `PageConfig(lang=...)` (short side 720-1024, every effect, JPEG encode included). `--repeats`
    rounds, each in a new process; medians are reported.
    `--profile` splits each page's CPU time by stage, by timing the renderer's own functions:
    background (paper, backdrop, shadow, document mask, the surfaces coloured into one RGB image),
    layout (font choice, line breaking), glyph drawing (PIL's rendering of every line, glyph measuring
    and ink placement), targets (boxes through the geometry), warp (the ink onto the page), effects
    (blur), encode (JPEG); "compositing, other" is the rest (mostly colouring the text in).
    With `--profile`, each timed page is also encoded as PNG (timed apart, not counted in the page), for
    the cost of the other image format.
    `--baseline ROOT` also times the renderer of another checkout (for example
    `git archive COMMIT synth pipelines | tar -x -C ROOT`) in the same rounds, alternating which goes
    first, with the same seeds: before/after side by side.
    `--per-font`: ms of ImageDraw.text per corpus line (60 characters en, 30 zh) for each default font
    and the other installed Latin families, at 16, 28 and 40 px.
    Ray (unless `--no-ray`): a fresh process per run runs the real CLI path of `docforge build ocr
    --count N --num-cpus W --pages-per-task P` (`build_parser`, `make_ocr_job`, `run_job`) after
    starting Ray and warming W workers up (imports + one page each, untimed); W = 1 and 2, alternating.
    Reported: job seconds, pages/s, the CPU seconds of every Ray process of the run (psutil, the driver's
    descendants), and the 2-vs-1 speedup. Each round also measures the machine's own ceiling for that
    ratio: 2 processes rendering the same pages at once vs 1 (2.0 on two free cores).

How to run (from the repository root)
    .venv/bin/python tests/benchmarks/bench_ocr.py --profile
    .venv/bin/python tests/benchmarks/bench_ocr.py --per-font --no-ray --repeats 0
    .venv/bin/python tests/benchmarks/bench_ocr.py --baseline /tmp/before --no-ray --profile

Prints markdown tables on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import glob
import io
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_PREFIX = "BENCH_RESULT "
STAGES = ("background", "layout", "glyph drawing", "targets", "warp", "effects", "encode")


def _timed_stages(stages: dict[str, float]) -> None:
    """Wrap the renderer's stage functions so each call adds its CPU time to `stages`."""
    import synth.effects as effects
    import synth.geometry as geometry
    import synth.surfaces as surfaces
    import synth.text_page as text_page

    def wrap(owner, name: str, stage: str) -> None:
        function = getattr(owner, name, None)
        if function is None:
            return

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                stages[stage] += time.process_time() - start

        setattr(owner, name, timed)

    for owner, name, stage in ((text_page, "_look", "background"), (surfaces, "paper", "background"),
                               (surfaces, "backdrop", "background"), (surfaces, "polygon_mask", "background"),
                               (surfaces, "colour_surfaces", "background"),
                               (text_page, "_choose_font_and_lay_out", "layout"),
                               (text_page, "draw_lines", "glyph drawing"), (text_page, "_targets", "targets"),
                               (geometry.Translation, "warp", "warp"), (geometry.MeshWarp, "warp", "warp"),
                               (geometry.Translation, "warp_part", "warp"), (geometry.MeshWarp, "warp_part", "warp"),
                               (effects, "blur_ink", "effects"), (effects, "encode_jpeg", "encode")):
        wrap(owner, name, stage)


def render_pages(lang: str, pages: int, job_seed: int, png: list[tuple[float, float]] | None = None,
                 fonts: list[str] | None = None) -> tuple[int, int]:
    """Render `pages` pages as the OCR job does (with `fonts`, or the default fonts); returns (sum of short
    sides, JPEG bytes). With `png`, each page is also encoded as PNG and the (CPU, wall) seconds that took
    are appended (not part of a page)."""
    from pipelines.ocr import CORPORA, default_fonts, page_seed, read_corpus
    from synth.text_page import PageConfig, render_page

    corpus = read_corpus([str(CORPORA / f"{lang}.txt")])
    fonts = fonts or default_fonts(lang)
    config = PageConfig(lang=lang)
    short = size = 0
    for i in range(pages):
        page = render_page(corpus, fonts, page_seed(job_seed, i), config)
        short += min(page.image.size)
        size += len(page.jpeg)
        if png is not None:
            cpu, wall = time.process_time(), time.perf_counter()
            page.image.save(io.BytesIO(), "PNG")
            png.append((time.process_time() - cpu, time.perf_counter() - wall))
    return short, size


def one_render(args: argparse.Namespace) -> None:
    """Child process: time `--pages` pages of one checkout's renderer after `--warmup` pages."""
    sys.path.insert(0, args.root)
    stages = dict.fromkeys(STAGES, 0.0)
    render_pages(args.lang, args.warmup, job_seed=1, fonts=args.fonts)
    if args.profile:
        _timed_stages(stages)
    png: list[tuple[float, float]] | None = [] if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    short, size = render_pages(args.lang, args.pages, job_seed=0, png=png, fonts=args.fonts)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    png_s = sum(c for c, _ in png) if png else None
    if png:
        cpu -= png_s
        wall -= sum(w for _, w in png)
    print(RESULT_PREFIX + json.dumps({"cpu_s": cpu, "wall_s": wall, "mean_short_side": short / args.pages,
                                      "mean_jpeg_kb": size / args.pages / 1e3,
                                      "stages": stages if args.profile else None,
                                      "png_s": png_s}), flush=True)


def font_args(fonts: list[str] | None) -> list[str]:
    """The render child's arguments for `--fonts` (none: the default fonts)."""
    return ["--fonts", *fonts] if fonts else []


def spawn(cmd: list[str]) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *cmd], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"benchmark child {cmd} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def bench_render(args: argparse.Namespace) -> None:
    roots = {"current": REPO}
    if args.baseline:
        roots["baseline"] = os.path.abspath(args.baseline)
    runs: dict[tuple[str, str], list[dict]] = {(name, lang): [] for name in roots for lang in args.langs}
    for r in range(args.repeats):
        order = list(roots) if r % 2 == 0 else list(reversed(roots))
        for lang in args.langs:
            for name in order:
                cmd = ["--one-render", "--root", roots[name], "--lang", lang, "--pages", str(args.pages),
                       "--warmup", str(args.warmup)] + (["--profile"] if args.profile else []) + font_args(args.fonts)
                res = spawn(cmd)
                runs[(name, lang)].append(res)
                print(f"round {r + 1}/{args.repeats} {name} {lang}: {args.pages / res['cpu_s']:.1f} pages/CPU-s, "
                      f"{args.pages / res['wall_s']:.1f} pages/wall-s", file=sys.stderr)
    if not args.repeats:
        return
    print(f"\n{args.pages} pages per run after {args.warmup} warm-up pages, {args.repeats} rounds (a fresh process "
          "each), default config (short side 720-1024, all effects, JPEG encode)\n")
    print("| renderer | lang | pages/CPU-s (median) | min | max | pages/wall-s (median) | mean short side px "
          "| mean JPEG KB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (name, lang), rs in runs.items():
        rates = [args.pages / x["cpu_s"] for x in rs]
        print(f"| {name} | {lang} | {statistics.median(rates):.1f} | {min(rates):.1f} | {max(rates):.1f} | "
              f"{statistics.median(args.pages / x['wall_s'] for x in rs):.1f} | "
              f"{rs[0]['mean_short_side']:.0f} | {rs[0]['mean_jpeg_kb']:.0f} |")
    if args.baseline:
        for lang in args.langs:
            paired = [b["cpu_s"] / c["cpu_s"] for c, b in zip(runs[("current", lang)], runs[("baseline", lang)])]
            print(f"\n{lang}: current vs baseline pages/CPU-s, median of paired ratios "
                  f"{statistics.median(paired):.2f}x (range {min(paired):.2f}x .. {max(paired):.2f}x)")
    if args.profile:
        print("\nCPU ms per page by stage (median over rounds)\n")
        print("| renderer | lang | " + " | ".join(STAGES) + " | compositing, other | total | PNG encode instead |")
        print("|---|---|" + "---:|" * (len(STAGES) + 3))
        for (name, lang), rs in runs.items():
            cells = [statistics.median(x["stages"][s] for x in rs) * 1e3 / args.pages for s in STAGES]
            total = statistics.median(x["cpu_s"] for x in rs) * 1e3 / args.pages
            png = statistics.median(x["png_s"] for x in rs) * 1e3 / args.pages
            print(f"| {name} | {lang} | " + " | ".join(f"{c:.1f}" for c in cells)
                  + f" | {total - sum(cells):.1f} | {total:.1f} | {png:.1f} |")


def bench_fonts(args: argparse.Namespace) -> None:
    """ms of one ImageDraw.text call per corpus line, per font and size."""
    from PIL import Image, ImageDraw, ImageFont

    from pipelines.ocr import CORPORA, default_fonts, read_corpus

    others = sorted([f"/usr/share/fonts/truetype/noto/Noto{family}-{style}.ttf" for family in ("Sans", "Serif")
                     for style in ("Regular", "Bold", "Italic")]
                    + glob.glob("/usr/share/fonts/truetype/liberation/Liberation*.ttf")
                    + glob.glob("/usr/share/fonts/opentype/urw-base35/*.otf"))
    print("\nms per ImageDraw.text call drawing one corpus line (60 characters en, 30 zh), median of 3 passes\n")
    print("| lang | font | default | 16 px | 28 px | 40 px |")
    print("|---|---|---|---:|---:|---:|")
    for lang in args.langs:
        text = " ".join(read_corpus([str(CORPORA / f"{lang}.txt")]).split())
        width = 60 if lang == "en" else 30
        lines = [text[i : i + width] for i in range(0, min(len(text), 3000) - width, width)]
        defaults = default_fonts(lang)
        fonts = defaults + ([f for f in others if f not in defaults and os.path.exists(f)] if lang == "en" else [])
        for path in fonts:
            cells = []
            for size in (16, 28, 40):
                font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
                draw = ImageDraw.Draw(Image.new("L", (width * size, 2 * size)))
                passes = []
                for _ in range(3):
                    start = time.process_time()
                    for line in lines:
                        draw.text((0, 0), line, font=font, fill=255)
                    passes.append((time.process_time() - start) / len(lines) * 1e3)
                cells.append(statistics.median(passes))
            print(f"| {lang} | {os.path.basename(path)} | {'yes' if path in defaults else ''} | "
                  + " | ".join(f"{c:.2f}" for c in cells) + " |", flush=True)


def one_ray(args: argparse.Namespace) -> None:
    """Child process: `docforge build ocr` through the CLI's own parser and runner, after Ray is up."""
    import psutil
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=args.worker_cpus, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0

    @ray.remote(num_cpus=1)
    def warm(lang: str) -> int:
        import pipelines.runner  # noqa: F401  (what a task needs, imported once per worker)

        render_pages(lang, 1, job_seed=2)
        time.sleep(0.3)  # hold the CPU so the W warm-ups land on W distinct workers
        return os.getpid()

    pids = ray.get([warm.remote(args.lang) for _ in range(args.worker_cpus)])
    assert len(set(pids)) == args.worker_cpus, pids

    from pipelines.cli import build_parser, run_options
    from pipelines.runner import MARKERS, run_job
    from pipelines.storage import Folder

    cli = build_parser().parse_args(["build", "ocr", "--lang", args.lang, "--count", str(args.pages),
                                     "--pages-per-task", str(args.pages_per_task), "--num-cpus",
                                     str(args.worker_cpus), "--output", args.output, "--no-progress"])

    def ray_cpu_s() -> float:
        total = 0.0
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker that just exited counts nothing
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    cpu = ray_cpu_s() + time.process_time()
    start = time.perf_counter()
    result = run_job(cli.make_job(cli), cli.output, run_options(cli))
    job_s = time.perf_counter() - start
    cpu = ray_cpu_s() + time.process_time() - cpu
    out = Folder(args.output)
    task_s = sum(out.read_json(f"{MARKERS}/{name}")["elapsed_s"] for name in out.list(MARKERS))
    ray.shutdown()
    print(RESULT_PREFIX + json.dumps({"ray_init_s": ray_init_s, "job_s": job_s, "cpu_s": cpu, "task_s_sum": task_s,
                                      "ok": result.ok, "samples": result.stats["samples"],
                                      "errors": result.stats["errors"], "tasks": result.tasks_total}), flush=True)


def _render_seconds(lang: str, pages: int) -> float:
    start = time.perf_counter()
    render_pages(lang, pages, job_seed=3)
    return time.perf_counter() - start


def calibrate(pool, lang: str, pages: int) -> float:
    """Throughput of 2 processes rendering at once relative to 1 process: 2.0 on two free cores."""
    one = pool.submit(_render_seconds, lang, pages).result()
    both = [pool.submit(_render_seconds, lang, pages) for _ in range(2)]
    return 2 * one / max(f.result() for f in both)


def bench_ray(args: argparse.Namespace) -> None:
    base = tempfile.mkdtemp(prefix="bench-ocr-")
    pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    try:
        calibrate(pool, args.ray_lang, 20)  # start both pool processes and fill their caches (untimed)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        ceiling = []
        for r in range(args.ray_repeats):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                output = os.path.join(base, f"out-{r}-{workers}")
                res = spawn(["--one-ray", "--worker-cpus", str(workers), "--lang", args.ray_lang,
                             "--pages", str(args.ray_pages), "--pages-per-task", str(args.pages_per_task),
                             "--output", output])
                shutil.rmtree(output, ignore_errors=True)
                if not res["ok"] or res["errors"] or res["samples"] != args.ray_pages:
                    raise SystemExit(f"unexpected job result: {res}")
                runs[workers].append(res)
                print(f"round {r + 1}/{args.ray_repeats} W={workers}: job {res['job_s']:.2f}s, "
                      f"{res['cpu_s']:.1f} CPU-s", file=sys.stderr)
            ceiling.append(calibrate(pool, args.ray_lang, 40))
            print(f"round {r + 1}/{args.ray_repeats} machine ceiling: {ceiling[-1]:.2f}x", file=sys.stderr)
    finally:
        pool.shutdown()
        shutil.rmtree(base, ignore_errors=True)
    med = {w: statistics.median(x["job_s"] for x in rs) for w, rs in runs.items()}
    print(f"\n`docforge build ocr --lang {args.ray_lang} --count {args.ray_pages} --pages-per-task "
          f"{args.pages_per_task} --num-cpus W`, {runs[1][0]['tasks']} tasks, {args.ray_repeats} alternating "
          "rounds, Ray started and workers warmed up before timing\n")
    print("| worker CPUs | median job s | min s | max s | pages/s | pages per CPU-s (all Ray processes) "
          "| median sum of task s | median Ray start s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w, rs in runs.items():
        jobs = [x["job_s"] for x in rs]
        print(f"| {w} | {med[w]:.2f} | {min(jobs):.2f} | {max(jobs):.2f} | {args.ray_pages / med[w]:.1f} | "
              f"{args.ray_pages / statistics.median(x['cpu_s'] for x in rs):.1f} | "
              f"{statistics.median(x['task_s_sum'] for x in rs):.2f} | "
              f"{statistics.median(x['ray_init_s'] for x in rs):.1f} |")
    paired = [a["job_s"] / b["job_s"] for a, b in zip(runs[1], runs[2])]
    print(f"\nSpeedup 2 vs 1 worker CPUs: ratio of medians {med[1] / med[2]:.2f}x, median of paired ratios "
          f"{statistics.median(paired):.2f}x (range {min(paired):.2f}x .. {max(paired):.2f}x)")
    print(f"Machine ceiling, 2 vs 1 processes rendering the same pages (no Ray): median "
          f"{statistics.median(ceiling):.2f}x (range {min(ceiling):.2f}x .. {max(ceiling):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", nargs="+", choices=("en", "zh"), default=["en", "zh"])
    parser.add_argument("--pages", type=int, default=100, help="timed pages per render run (default 100)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed pages first (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="render rounds per language (default 3)")
    parser.add_argument("--profile", action="store_true", help="split the CPU time by stage")
    parser.add_argument("--baseline", metavar="ROOT", help="also time the renderer of this checkout")
    parser.add_argument("--per-font", action="store_true", help="time ImageDraw.text per font")
    parser.add_argument("--fonts", nargs="+", metavar="FILE", help="render with these fonts (default: the job's)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray 1 vs 2 CPUs runs")
    parser.add_argument("--ray-lang", choices=("en", "zh"), default="en")
    parser.add_argument("--ray-pages", type=int, default=400, help="pages per Ray run (default 400)")
    parser.add_argument("--ray-repeats", type=int, default=2, help="rounds of (1 CPU, 2 CPUs) runs (default 2)")
    parser.add_argument("--pages-per-task", type=int, default=25, help="pages per Ray task (default 25)")
    # internal: one measured run in this process
    parser.add_argument("--one-render", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-ray", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--lang", default="en", help=argparse.SUPPRESS)
    parser.add_argument("--worker-cpus", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_render:
        one_render(args)
    elif args.one_ray:
        one_ray(args)
    else:
        bench_render(args)
        if args.per_font:
            bench_fonts(args)
        if not args.no_ray:
            bench_ray(args)


if __name__ == "__main__":
    main()
