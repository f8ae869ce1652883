"""Benchmark: doc2md pages/s on the bundled papers, time by step, pipeline vs floor, 1 vs 2 Ray workers.

The bundled papers (samples/papers) are copied --copies times under distinct ids, each with its PDF
compiled beforehand and put beside it (as arXiv ships them), so compiling is not part of the timing.

1. Steps, one process, per paper: LaTeXML, HTML → markdown, PDF text, matching (split + score), render,
   encode (PNG), words + layout boxes, write (ShardWriter into a temp folder). CPU seconds (process + children) and wall.
2. Pipeline vs floor: the whole `Doc2mdJob` under `run_job` with one Ray worker (`--num-cpus 1`) vs the
   floor = LaTeXML + render alone over the same papers, sequentially. Goal: ratio <= 1.15.
3. Scaling: the same job with 2 workers vs 1 (goal >= 1.8x; bounded by this machine's 2 cores).

    .venv/bin/python tests/benchmarks/bench_doc2md.py [--copies 2] [--skip-scaling]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAPERS = REPO / "samples" / "papers"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    """Wall and CPU seconds per named step."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def measure(self, step: str, function, *args, **kwargs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = function(*args, **kwargs)
        self.wall[step] = self.wall.get(step, 0.0) + time.perf_counter() - wall
        self.cpu[step] = self.cpu.get(step, 0.0) + cpu_seconds() - cpu
        return result


def prepare_inputs(root: Path, copies: int) -> Path:
    from pipelines.doc2md.compile import compile_pdf
    from pipelines.doc2md.unpack import find_main_tex

    src = root / "src"
    src.mkdir()
    for paper in sorted(p for p in PAPERS.iterdir() if p.is_dir()):
        work = root / "compile" / paper.name
        shutil.copytree(paper, work)
        pdf, _ = compile_pdf(work, find_main_tex(work, paper.name), paper.name)
        for copy in range(copies):
            name = f"{paper.name}{copy:02d}"
            shutil.copytree(paper, src / name)
            shutil.copy(pdf, src / f"{name}.pdf")
    return src


def step_times(src: Path) -> tuple[Clock, int]:
    import pymupdf

    from pipelines.doc2md.compile import choose_engine
    from pipelines.doc2md.html_to_markdown import html_to_markdown
    from pipelines.doc2md.latexml import latex_to_html
    from pipelines.doc2md.pages import read_pdf_pages, split_markdown_into_pages
    from pipelines.doc2md.layout import page_layout
    from pipelines.doc2md.render import page_scale, page_words
    from pipelines.shards import ShardWriter
    from pipelines.storage import Folder

    clock, pages = Clock(), 0
    out = Folder(tempfile.mkdtemp(prefix="bench-doc2md-write-"))
    with ShardWriter(out, 0) as writer:
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            main = folder / "main.tex"
            html = clock.measure("latexml", latex_to_html, folder, "main.tex", engine_hint=choose_engine(main))
            markdown = clock.measure("html to markdown", html_to_markdown, html)
            doc = pymupdf.open(src / f"{folder.name}.pdf")
            pdf_pages = clock.measure("pdf text", read_pdf_pages, doc)
            splits = clock.measure("matching", split_markdown_into_pages, markdown, doc, pages=pdf_pages)
            for split in splits:
                if not split.kept:
                    continue
                page = doc[split.number - 1]
                scale = page_scale(page)
                pixmap = clock.measure("render", page.get_pixmap, matrix=pymupdf.Matrix(scale, scale), alpha=False)
                png = clock.measure("encode", pixmap.tobytes, "png")
                clock.measure("words + layout", lambda: (page_words(page, scale, pixmap.width, pixmap.height),
                                                         page_layout(split, page, scale, pixmap.width, pixmap.height)))
                clock.measure("write", writer.write, {"__key__": f"{folder.name.replace('.', '_')}-{split.number}",
                                                      "png": png, "md": split.markdown, "json": {"page": split.number}})
                pages += 1
    shutil.rmtree(out.root, ignore_errors=True)
    return clock, pages


def floor_seconds(src: Path) -> float:
    """LaTeXML + render (+ PNG encode) of every page, nothing else."""
    import pymupdf

    from pipelines.doc2md.compile import choose_engine
    from pipelines.doc2md.latexml import latex_to_html
    from pipelines.doc2md.render import page_scale, render_page_image

    started = time.perf_counter()
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        latex_to_html(folder, "main.tex", engine_hint=choose_engine(folder / "main.tex"))
        doc = pymupdf.open(src / f"{folder.name}.pdf")
        for page in doc:
            render_page_image(page, page_scale(page))
    return time.perf_counter() - started


def job_seconds(src: Path, workers: int) -> tuple[float, int]:
    """Wall seconds of the whole job in a fresh process-local Ray with `workers` CPUs (Ray start excluded)."""
    import ray

    from pipelines.doc2md.job import Doc2mdJob
    from pipelines.runner import RunOptions, run_job

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        out = Path(tempfile.mkdtemp(prefix="bench-doc2md-job-")) / "out"
        started = time.perf_counter()
        result = run_job(Doc2mdJob([str(src)], papers_per_task=1), str(out), RunOptions(progress=False))
        elapsed = time.perf_counter() - started
        shutil.rmtree(out.parent, ignore_errors=True)
        return elapsed, result.stats["samples"]
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=2, help="copies of each bundled paper (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of the pipeline/floor pair (default 1)")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 1 vs 2 workers run")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    with tempfile.TemporaryDirectory(prefix="bench-doc2md-") as tmp:
        src = prepare_inputs(Path(tmp), args.copies)
        papers = sum(1 for p in src.iterdir() if p.is_dir())
        clock, pages = step_times(src)
        total_cpu = sum(clock.cpu.values())
        print(f"## steps ({papers} papers, {pages} kept pages, one process)")
        print("| step | wall s | CPU s | share of CPU |\n|---|---:|---:|---:|")
        for step in clock.wall:
            print(f"| {step} | {clock.wall[step]:.2f} | {clock.cpu[step]:.2f} | {100 * clock.cpu[step] / total_cpu:.1f} % |")
        print(f"\npages per CPU-second: {pages / total_cpu:.3f}; pages per wall-second: "
              f"{pages / sum(clock.wall.values()):.3f}")
        ratios, pipelines, floors = [], [], []
        for repeat in range(args.repeats):  # the two take turns going first
            if repeat % 2:
                pipeline, samples = job_seconds(src, 1)
                floor = floor_seconds(src)
            else:
                floor = floor_seconds(src)
                pipeline, samples = job_seconds(src, 1)
            floors.append(floor)
            pipelines.append(pipeline)
            ratios.append(pipeline / floor)
        print(f"\n## pipeline (1 Ray worker) vs floor (LaTeXML + render): {samples} pages")
        print(f"pipeline median {statistics.median(pipelines):.1f} s, floor median {statistics.median(floors):.1f} s, "
              f"median of paired ratios {statistics.median(ratios):.3f} (goal <= 1.15); "
              f"ratios {', '.join(f'{r:.3f}' for r in ratios)}")
        if not args.skip_scaling:
            two, _ = job_seconds(src, 2)
            one = statistics.median(pipelines)
            print(f"\n## scaling: 1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x (goal >= 1.8x)")


if __name__ == "__main__":
    main()
