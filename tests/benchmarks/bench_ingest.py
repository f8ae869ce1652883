"""Benchmark: the real img2dataset ingest job on an embedded Ray with 1 vs 2 worker CPUs.

What it measures
    A synthetic img2dataset folder is made once in a temp dir: `--images` real JPEGs (~320x240,
    gradients + noise, made with PIL + numpy) with `.txt` captions and `.json` metadata, laid out as
    img2dataset does (`00000/000000000.jpg`, `00000/000000000.txt`, `00000/000000000.json`, ...).
    Then `pipelines.ingest.img2dataset.Img2datasetIngest` is run through
    `pipelines.runner.run_job(job, out_url, RunOptions(num_cpus=W, progress=False))` with W = 1 and
    W = 2 worker CPUs, alternating (1, 2 then 2, 1, ...) for `--repeats` rounds.

    Ray can be initialised only once per process, so every run is a fresh subprocess (this script
    re-invoked with `--one-run --worker-cpus W`, printing one JSON line). In that subprocess Ray is
    started first with `ray.init(num_cpus=W, include_dashboard=False)` (run_job reuses an
    initialised Ray), then W one-CPU warm-up tasks import the job's modules so the worker processes
    are up (skip with `--no-warmup`); only then is `run_job` timed. The job time therefore covers
    planning, the Ray tasks (read, full JPEG decode, shard write, commit markers) and finalisation
    (index.json, errors.jsonl, stats.json, report.html), but not Ray or worker start-up, which are
    reported separately. Each run writes to a new output folder (a rerun into the same folder would
    skip committed tasks).

    Reported per W: median / min / max job seconds, samples/s at the median, median Ray start-up
    and warm-up seconds, the median sum of the tasks' own elapsed times (from their commit markers:
    the work that parallelises; the rest of the job time is driver-side planning, scheduling and
    finalisation); and the 2-vs-1 speedup, both as the ratio of medians and as the median of
    the per-round paired ratios. Each round also measures the machine's own ceiling for that ratio
    (unless `--no-calibrate`): the throughput of 2 processes fully decoding the same 200 JPEGs at
    once relative to 1 process (2.0 on two free cores; a shared VM may give much less).

How to run (from the repository root)
    .venv/bin/python tests/benchmarks/bench_ingest.py                      # 600 images, 50 per task, 3 rounds
    .venv/bin/python tests/benchmarks/bench_ingest.py --images 1200 --repeats 5 --items-per-task 100

Prints a markdown table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import concurrent.futures
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

RESULT_PREFIX = "BENCH_RESULT "


def make_img2dataset_folder(root: str, images: int, per_folder: int, width: int, height: int, seed: int) -> int:
    """Write `images` JPEG + caption + metadata triples in img2dataset's folder layout; returns bytes of JPEG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    total = 0
    for i in range(images):
        shard = f"{i // per_folder:05d}"
        os.makedirs(os.path.join(root, shard), exist_ok=True)
        stem = os.path.join(root, shard, f"{i:09d}")
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xs / width * 255 * a, ys / height * 255 * b, (xs + ys) / (width + height) * 255 * c], -1)
        noise = rng.normal(0, 24, (height, width, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(stem + ".jpg", "JPEG", quality=90)
        total += os.path.getsize(stem + ".jpg")
        caption = f"a synthetic gradient picture number {i} with some noise, tones {a:.2f} {b:.2f} {c:.2f}"
        with open(stem + ".txt", "w", encoding="utf-8") as f:
            f.write(caption)
        meta = {"url": f"https://example.com/images/{i}.jpg", "key": f"{i:09d}", "status": "success",
                "error_message": None, "width": width, "height": height, "original_width": width,
                "original_height": height, "exif": None, "caption": caption}
        with open(stem + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
    return total


def decode_files(paths: list[str], passes: int) -> float:
    """Seconds this process takes to fully decode every JPEG in `paths`, `passes` times (pure CPU work)."""
    from PIL import Image

    blobs = []
    for path in paths:
        with open(path, "rb") as f:
            blobs.append(f.read())
    start = time.perf_counter()
    for _ in range(passes):
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as image:
                image.load()
    return time.perf_counter() - start


def calibrate(pool, paths: list[str], passes: int) -> float:
    """Throughput of 2 processes decoding at once relative to 1 process: 2.0 on two free cores."""
    one = pool.submit(decode_files, paths, passes).result()
    both = [pool.submit(decode_files, paths, passes) for _ in range(2)]
    two = max(f.result() for f in both)
    return 2 * one / two


def one_run(args: argparse.Namespace) -> None:
    """Child process: start Ray with W CPUs, warm the workers up, time run_job, print one JSON line."""
    t0 = time.perf_counter()
    import ray

    ray.init(num_cpus=args.worker_cpus, include_dashboard=False, log_to_driver=False)
    t_ray = time.perf_counter()

    warmup_s = 0.0
    if not args.no_warmup:
        @ray.remote(num_cpus=1)
        def warm() -> int:
            import pipelines.ingest.img2dataset  # noqa: F401  (what run_task needs, imported once per worker)
            import pipelines.runner  # noqa: F401

            time.sleep(0.3)  # hold the CPU so the W warm-ups land on W distinct workers
            return os.getpid()

        start = time.perf_counter()
        pids = ray.get([warm.remote() for _ in range(args.worker_cpus)])
        warmup_s = time.perf_counter() - start
        assert len(set(pids)) == args.worker_cpus, pids

    from pipelines.ingest.img2dataset import Img2datasetIngest
    from pipelines.runner import RunOptions, run_job

    job = Img2datasetIngest(args.input, source="bench", items_per_task=args.items_per_task)
    start = time.perf_counter()
    result = run_job(job, args.output, RunOptions(num_cpus=args.worker_cpus, progress=False))
    job_s = time.perf_counter() - start
    ray.shutdown()
    from pipelines.runner import MARKERS
    from pipelines.storage import Folder

    out = Folder(args.output)
    task_s = sum(out.read_json(f"{MARKERS}/{name}")["elapsed_s"] for name in out.list(MARKERS))
    print(RESULT_PREFIX + json.dumps({
        "worker_cpus": args.worker_cpus,
        "ray_init_s": t_ray - t0,
        "warmup_s": warmup_s,
        "job_s": job_s,
        "task_s_sum": task_s,
        "ok": result.ok,
        "tasks": result.tasks_total,
        "samples": result.stats["samples"],
        "errors": result.stats["errors"],
        "shards": result.stats["shards"],
        "bytes": result.stats["bytes"],
    }), flush=True)


def spawn(args: argparse.Namespace, workers: int, output: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one-run", "--worker-cpus", str(workers),
           "--input", args.input, "--output", output, "--items-per-task", str(args.items_per_task)]
    if args.no_warmup:
        cmd.append("--no-warmup")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"run with {workers} worker CPUs failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600, help="synthetic images (default 600)")
    parser.add_argument("--per-folder", type=int, default=10_000, help="images per 00000/ folder (default 10000)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--items-per-task", type=int, default=50, help="job items per Ray task (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (1 CPU, 2 CPUs) runs (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="parent of the temporary dir (default: system temp)")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the per-round pure-CPU 2-vs-1-process JPEG decode ceiling measurement")
    parser.add_argument("--no-warmup", action="store_true", help="do not start the Ray workers before timing")
    # internal: one timed run in this process
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-cpus", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--input", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_run:
        one_run(args)
        return

    base = tempfile.mkdtemp(prefix="bench-ingest-", dir=args.dir)
    try:
        args.input = os.path.join(base, "input")
        start = time.perf_counter()
        jpeg_bytes = make_img2dataset_folder(args.input, args.images, args.per_folder, args.width, args.height,
                                             args.seed)
        print(f"made {args.images} images ({jpeg_bytes / 1e6:.1f} MB of JPEG) in {time.perf_counter() - start:.1f}s",
              file=sys.stderr)

        runs: dict[int, list[dict]] = {1: [], 2: []}
        ceiling: list[float] = []
        pool = None
        if not args.no_calibrate:
            pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
            paths = sorted(os.path.join(d, n) for d, _, names in os.walk(args.input) for n in names
                           if n.endswith(".jpg"))[:200]
            calibrate(pool, paths, 1)  # start both pool processes (untimed)
        for r in range(args.repeats):
            if pool is not None and r % 2 == 1:
                ceiling.append(calibrate(pool, paths, 4))
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                output = os.path.join(base, f"out-{r}-{workers}")
                res = spawn(args, workers, output)
                shutil.rmtree(output, ignore_errors=True)
                if not res["ok"] or res["errors"] or res["samples"] != args.images:
                    raise SystemExit(f"unexpected job result: {res}")
                runs[workers].append(res)
                print(f"round {r + 1}/{args.repeats} W={workers}: job {res['job_s']:.2f}s "
                      f"(ray init {res['ray_init_s']:.1f}s, warm-up {res['warmup_s']:.2f}s)", file=sys.stderr)
            if pool is not None and r % 2 == 0:
                ceiling.append(calibrate(pool, paths, 4))
            if ceiling and len(ceiling) == r + 1:
                print(f"round {r + 1}/{args.repeats} machine ceiling (2 vs 1 processes decoding JPEGs): "
                      f"{ceiling[-1]:.2f}x", file=sys.stderr)
        if pool is not None:
            pool.shutdown()

        med = {w: statistics.median(x["job_s"] for x in rs) for w, rs in runs.items()}
        sample = runs[1][0]
        print(f"\n{args.images} JPEGs {args.width}x{args.height} ({jpeg_bytes / 1e6:.1f} MB) + txt + json, "
              f"{args.items_per_task} items per task ({sample['tasks']} tasks, {sample['shards']} shards, "
              f"{sample['bytes'] / 1e6:.1f} MB out), {args.repeats} alternating rounds, "
              f"{'no warm-up' if args.no_warmup else 'workers warmed up before timing'}\n")
        print("| worker CPUs | median job s | min s | max s | samples/s | median sum of task s | median Ray start s | median warm-up s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, rs in runs.items():
            jobs = [x["job_s"] for x in rs]
            print(f"| {w} | {med[w]:.2f} | {min(jobs):.2f} | {max(jobs):.2f} | {args.images / med[w]:,.0f} | "
                  f"{statistics.median(x['task_s_sum'] for x in rs):.2f} | "
                  f"{statistics.median(x['ray_init_s'] for x in rs):.1f} | "
                  f"{statistics.median(x['warmup_s'] for x in rs):.2f} |")
        paired = [a["job_s"] / b["job_s"] for a, b in zip(runs[1], runs[2])]
        print(f"\nSpeedup 2 vs 1 worker CPUs: ratio of medians {med[1] / med[2]:.2f}x, "
              f"median of paired ratios {statistics.median(paired):.2f}x "
              f"(range {min(paired):.2f}x .. {max(paired):.2f}x)")
        if ceiling:
            print(f"Machine ceiling, 2 vs 1 processes fully decoding the same JPEGs (no Ray, no I/O): median "
                  f"{statistics.median(ceiling):.2f}x (range {min(ceiling):.2f}x .. {max(ceiling):.2f}x)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
