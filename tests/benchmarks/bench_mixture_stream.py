"""Benchmark: docforge's `MixtureStream` against a plain webdataset pipeline over the same shards.

What it measures
    Setup (untimed): in a temp dir, `--sources` docforge datasets (default 3) of `--shards` shards
    (default 8) x `--per-shard` samples (default 100), written by the real `pipelines.shards.ShardWriter`
    plus `build_index`/`write_index`, as tests/test_mixtures.py does. Each sample is a real JPEG
    (`--jpeg-px`, default 640x480, seeded gradient + Gaussian noise, quality 90: about 150 KB; a handful
    of distinct JPEGs is made once and reused), a `.txt` caption and a `.json` record with
    `"family": "caption"`. A manifest YAML mixes them with weights 5/3/2 (then 1, 1, ...), `task: caption`,
    `repeat: true`, seed 0.

    Timed: reading `--samples` N (default 2000) training samples, two ways, in one process:

    ours   `MixtureStream(load_manifest(path), Slot(), buffer_size=256, decode_images=True)` and `.next()`
           N times: shard open through fsspec (plus its truncation check), tar read and grouping
           (webdataset's `tar_file_expander`/`group_by_keys`), a 256-sample seeded shuffle buffer per
           source, the seeded weighted interleave, a per-sample seeded rng, the caption template
           (`render_conversation`), PIL decode `.convert("RGB")` and `json.loads` of the record.
    plain  per source `wds.WebDataset(tar paths, shardshuffle=<shard count>, seed=..., empty_check=False)
           .shuffle(256, initial=256, seed=...).map(prepare).repeat()` (`.repeat()` re-runs the pipeline
           forever, with a fresh shard shuffle and buffer each pass, so N draws never exhaust it), mixed
           by weight with a seeded `random.Random.choices` loop over the per-source iterators (the
           same draw ours makes; not `wds.RandomMix`, which in 1.0.2 draws from the global `random`
           module and takes no seed).
           `prepare` does the same per-sample work as ours, in the same order: `render_conversation(
           "caption", raw_sample, rng)` on the raw bytes sample, then `Image.open(...).convert("RGB")`
           and `json.loads` of the record, returning the same dict fields. It uses one seeded rng per
           source rather than ours' rng seeded per sample key (the cost of ours' reproducibility).

    Both are built inside the timed region (for ours that includes `load_manifest`), both read the
    same tars from the page cache, and only drawn samples are decoded. One untimed warm-up of each,
    then `--repeats` R timed runs (default 5) of each, alternating (ours first on even repeats,
    plain first on odd ones). Reported: per-method median, min and max seconds, samples/s, and the
    throughput ratio ours/plain (>= 1.0 means ours is at least as fast), both as the ratio of medians
    and as the median of per-repeat paired ratios. Goal (issue): >= 1.0x.

    `--no-decode` leaves the images as bytes in both methods (`decode_images=False` for ours), which
    isolates the reading/mixing overhead from the PIL decode that dominates the default run.
    A CPU-seconds column (`time.process_time`, this process only) is also given, as it is less
    sensitive than wall time to other tenants of a shared host.

    `--profile` also runs ours once under cProfile and prints the functions with the most own time
    and the most cumulative time, then the same run of plain (cumulative) for comparison.

How to run (from the repository root)
    .venv/bin/python tests/benchmarks/bench_mixture_stream.py                   # 2000 samples, 5 repeats
    .venv/bin/python tests/benchmarks/bench_mixture_stream.py --profile --repeats 7
    .venv/bin/python tests/benchmarks/bench_mixture_stream.py --no-decode

Prints a markdown table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import glob
import io
import json
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter

import numpy as np
import webdataset as wds
from PIL import Image

from mixtures.manifest import load_manifest
from mixtures.stream import MixtureStream, Slot
from mixtures.tasks import render_conversation
from pipelines.shards import ShardWriter, build_index, write_index
from pipelines.storage import Folder

BUFFER = 256
WEIGHTS = (5, 3, 2)


def make_jpegs(count: int, width: int, height: int, seed: int) -> list[bytes]:
    """Distinct real JPEGs: a seeded colour gradient plus Gaussian noise, quality 90."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    jpegs = []
    for i in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
        base = np.stack([255 * ramp, 255 * (1 - ramp), 128 + 100 * np.sin(x / (20 + 7 * i))], -1)
        pixels = np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=90)
        jpegs.append(out.getvalue())
    return jpegs


def make_dataset(root: str, name: str, shards: int, per_shard: int, jpegs: list[bytes], width: int,
                 height: int) -> list[str]:
    """A docforge dataset of caption samples (real ShardWriter + index.json); returns its tar paths."""
    folder = Folder(os.path.join(root, name))
    entries = []
    for task in range(shards):
        with ShardWriter(folder, task, max_count=per_shard) as writer:
            for i in range(per_shard):
                key = f"{name}-{task:03d}-{i:04d}"
                writer.write({"__key__": key, "jpg": jpegs[(task * per_shard + i) % len(jpegs)],
                              "txt": f"a photo of sample {key}, a gradient with some noise on it",
                              "json": {"family": "caption", "lang": "en", "source": name,
                                       "image": {"width": width, "height": height, "format": "jpg"}}})
        entries += [s.to_dict() for s in writer.shards]
    write_index(folder, build_index(entries, {"job": "bench"}, {"complete": True, "missing_tasks": []}))
    return sorted(glob.glob(os.path.join(root, name, "*.tar")))


def write_manifest(root: str, names: list[str], weights: list[float]) -> str:
    body = "name: bench-mix\nstage: 2\nseed: 0\nsources:\n"
    for name, weight in zip(names, weights):
        body += (f"  - name: {name}\n    shards: {name}\n    weight: {weight:g}\n    task: caption\n"
                 "    repeat: true\n")
    path = os.path.join(root, "mix.yaml")
    with open(path, "w") as f:
        f.write(body)
    return path


def read_ours(manifest: str, n: int, decode: bool) -> Counter:
    stream = MixtureStream(load_manifest(manifest), Slot(), buffer_size=BUFFER, decode_images=decode)
    got: Counter = Counter()
    for _ in range(n):
        sample = stream.next()
        got[sample["source"]] += 1
    return got


def plain_prepare(name: str, rng: random.Random, decode: bool):
    def prepare(raw: dict) -> dict:
        conversation = render_conversation("caption", raw, rng)
        image = raw["jpg"]
        if decode:
            image = Image.open(io.BytesIO(image)).convert("RGB")
        record = json.loads(raw["json"])
        return {"key": raw["__key__"], "source": name, "task": "caption", "epoch": None,
                "lang": record.get("lang", "en"), "conversation": conversation, "image": image,
                "image_format": "jpg", "record": record}
    return prepare


def read_plain(sources: dict[str, list[str]], weights: list[float], n: int, decode: bool, seed: int = 0) -> Counter:
    iterators = []
    for i, (name, urls) in enumerate(sources.items()):
        dataset = (wds.WebDataset(urls, shardshuffle=len(urls), seed=seed + i, empty_check=False)
                   .shuffle(BUFFER, initial=BUFFER, seed=seed + i)
                   .map(plain_prepare(name, random.Random(f"{seed}:{name}"), decode))
                   .repeat())
        iterators.append(iter(dataset))
    mix = random.Random(f"{seed}:interleave")
    indices = range(len(iterators))
    got: Counter = Counter()
    for _ in range(n):
        j = mix.choices(indices, weights=weights)[0]
        got[next(iterators[j])["source"]] += 1
    return got


def timed(fn, *args) -> tuple[float, float, Counter]:
    """Wall seconds, CPU seconds of this process (less sensitive to a busy host) and the result."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    got = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, got


def check_equivalent(manifest: str, sources: dict[str, list[str]]) -> None:
    """Both methods yield the same kind of sample: same fields, an <image> turn, the caption as answer."""
    ours = MixtureStream(load_manifest(manifest), Slot(), buffer_size=BUFFER, decode_images=True).next()
    name, urls = next(iter(sources.items()))
    raw = next(iter(wds.WebDataset(urls, shardshuffle=False, empty_check=False)))
    plain = plain_prepare(name, random.Random(0), True)(raw)
    for sample in (ours, plain):
        assert set(sample) == set(ours), (set(sample), set(ours))
        assert sample["image"].mode == "RGB" and sample["task"] == "caption"
        turns = sample["conversation"]
        assert any("<image>" in t["content"] for t in turns) and turns[-1]["role"] == "assistant"
        assert sample["key"] in turns[-1]["content"] and sample["record"]["family"] == "caption"


def profile(label: str, fn, sorts: tuple[str, ...], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    for key in sorts:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(top)
        print(f"\n### cProfile: {label} (sorted by {key})\n\n```")
        print(out.getvalue().strip())
        print("```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000, help="samples drawn per run (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each method (default 5)")
    parser.add_argument("--sources", type=int, default=3, help="datasets in the mixture (default 3)")
    parser.add_argument("--shards", type=int, default=8, help="shards per dataset (default 8)")
    parser.add_argument("--per-shard", type=int, default=100, help="samples per shard (default 100)")
    parser.add_argument("--jpegs", type=int, default=8, help="distinct JPEGs made and reused (default 8)")
    parser.add_argument("--jpeg-px", default="640x480", help="JPEG size WxH (default 640x480, about 150 KB)")
    parser.add_argument("--no-decode", action="store_true", help="leave images as bytes in both methods")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="parent of the temporary data dir (default: system temp)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one MixtureStream run")
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args()
    decode = not args.no_decode
    warnings.filterwarnings("ignore", module="webdataset")

    width, height = (int(v) for v in args.jpeg_px.lower().split("x"))
    base = tempfile.mkdtemp(prefix="bench-mixture-stream-", dir=args.dir)
    try:
        start = time.perf_counter()
        jpegs = make_jpegs(args.jpegs, width, height, args.seed)
        names = [f"src{i}" for i in range(args.sources)]
        weights = [float(WEIGHTS[i]) if i < len(WEIGHTS) else 1.0 for i in range(args.sources)]
        sources = {name: make_dataset(base, name, args.shards, args.per_shard, jpegs, width, height) for name in names}
        manifest = write_manifest(base, names, weights)
        data_mb = sum(os.path.getsize(p) for urls in sources.values() for p in urls) / 1e6
        check_equivalent(manifest, sources)
        print(f"setup: {len(names)} sources x {args.shards} shards x {args.per_shard} samples, {data_mb:.0f} MB, "
              f"JPEG {width}x{height} about {statistics.mean(map(len, jpegs)) / 1e3:.0f} KB, "
              f"{time.perf_counter() - start:.1f}s", file=sys.stderr)

        methods = {"ours": lambda: read_ours(manifest, args.samples, decode),
                   "plain": lambda: read_plain(sources, weights, args.samples, decode, args.seed)}
        results: dict[str, list[float]] = {m: [] for m in methods}
        cpu: dict[str, list[float]] = {m: [] for m in methods}
        mix: dict[str, Counter] = {}
        for r in range(-1, args.repeats):  # r == -1: untimed warm-up of both
            for method in (["ours", "plain"] if r % 2 == 0 else ["plain", "ours"]):
                seconds, cpu_seconds, mix[method] = timed(methods[method])
                if r >= 0:
                    results[method].append(seconds)
                    cpu[method].append(cpu_seconds)
            if r >= 0:
                print(f"repeat {r + 1}/{args.repeats}: ours {results['ours'][-1]:.3f}s  "
                      f"plain {results['plain'][-1]:.3f}s", file=sys.stderr)

        med = {m: statistics.median(t) for m, t in results.items()}
        paired = [p / o for o, p in zip(results["ours"], results["plain"])]  # throughput ours/plain
        mb_per_sample = data_mb / (args.sources * args.shards * args.per_shard)
        print(f"\n{args.samples} samples per run from {len(names)} sources (weights "
              f"{'/'.join(f'{w:g}' for w in weights)}) x {args.shards} shards x {args.per_shard} samples, "
              f"JPEG {width}x{height} ~{1000 * mb_per_sample:.0f} KB per sample, "
              f"{'PIL decode to RGB' if decode else 'no image decode'}, shuffle buffer {BUFFER}, "
              f"{args.repeats} alternating repeats\n")
        med_cpu = {m: statistics.median(t) for m, t in cpu.items()}
        paired_cpu = [p / o for o, p in zip(cpu["ours"], cpu["plain"])]
        print("| method | median s | min s | max s | samples/s | sample MB/s | median CPU s | mix (last run) |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for m in methods:
            t = results[m]
            shares = " / ".join(f"{mix[m][n] / args.samples:.2f}" for n in names)
            print(f"| {m} | {med[m]:.3f} | {min(t):.3f} | {max(t):.3f} | {args.samples / med[m]:,.0f} | "
                  f"{args.samples * mb_per_sample / med[m]:,.0f} | {med_cpu[m]:.3f} | {shares} |")
        print(f"\nThroughput ours/plain: ratio of medians {med['plain'] / med['ours']:.3f}x, median of paired ratios "
              f"{statistics.median(paired):.3f}x (paired range {min(paired):.3f}x .. {max(paired):.3f}x); "
              f"by CPU time: {med_cpu['plain'] / med_cpu['ours']:.3f}x, paired {statistics.median(paired_cpu):.3f}x; "
              "goal >= 1.0x")

        if args.profile:
            profile(f"one MixtureStream run, {args.samples} samples", methods["ours"], ("tottime", "cumulative"),
                    args.profile_top)
            profile(f"one plain webdataset run, {args.samples} samples, for comparison", methods["plain"],
                    ("cumulative",), args.profile_top)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
