"""Benchmark: docforge's `ShardWriter` against a raw `webdataset.TarWriter`, side by side.

What it measures
    N synthetic samples are built in memory (a random ~50 KB `.jpg` payload, a `.txt` caption and a
    `.json` dict record with `"family": "caption"`), then written to local disk two ways:

    ours  `pipelines.shards.ShardWriter(Folder(tmpdir), task_index=0, max_count=..., max_bytes=...)`:
          key/extension checks, duplicate-key set, canonical JSON encoding, size estimate, fsspec file,
          sha256 + byte count of every tar byte, per-family counts, temporary name + rename per shard.
    raw   `webdataset.TarWriter(open(path, "wb"))` in the same process, rolling to a new tar every
          `--max-count` samples; `.txt` is `str.encode()`d and `.json` is `json.dumps(...).encode()`d
          by the benchmark (the same work ours does). By default the raw writer uses the same tar
          settings as ShardWriter (PAX format, user/group "docforge", mtime 0, encoder=False) so
          that only docforge's own overhead is measured; `--raw-tar-defaults` uses TarWriter's
          defaults instead (USTAR, default encoder, wall-clock mtime).

    Neither path fsyncs; both write into the page cache of the same local temp dir, and each run's
    output is deleted (untimed) before the next. The two methods alternate (ours first on even
    repeats, raw first on odd ones) after one untimed warm-up of each. Reported: per-method median,
    min and max seconds, samples/s and MB/s (tar bytes / s, MB = 10^6 bytes), and the overhead
    ours/raw - 1, both as the ratio of medians and as the median of the per-repeat paired ratios
    (the more robust figure on a noisy machine). Target (issue): overhead <= 10%.

    `--profile` also runs ShardWriter once under cProfile and prints the functions with the most
    own time, then attributes the overhead: raw plus only ShardWriter's sha256/byte-count sink, raw
    plus only its per-sample encoding (`encode_sample`, duplicate-key set, size estimate), and ours,
    all alternating, each as a paired ratio against raw.

How to run (from the repository root)
    .venv/bin/python tests/benchmarks/bench_shard_write.py                 # 2000 x 50 KB, 7 repeats
    .venv/bin/python tests/benchmarks/bench_shard_write.py --repeats 11 --profile
    .venv/bin/python tests/benchmarks/bench_shard_write.py --samples 5000 --payload-kb 100 --max-count 1000

Prints a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import webdataset as wds

import pipelines.shards as shards_module
from pipelines.shards import HashingSink, ShardWriter, encode_sample, tar_member_bytes
from pipelines.storage import Folder


def make_samples(count: int, payload_bytes: int, seed: int) -> list[dict]:
    """Synthetic samples in docforge's shape: key, random jpg-like bytes, caption str, dict record."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        key = f"bench-{i:08d}"
        payload = b"\xff\xd8\xff\xe0" + rng.bytes(payload_bytes - 6) + b"\xff\xd9"  # JPEG-ish markers
        caption = f"a synthetic caption number {i} with a few more words to look like real text"
        record = {
            "family": "caption",
            "lang": "en",
            "source": "bench",
            "provenance": {"input": f"file:///bench/00000/{i:09d}.jpg", "member": f"00000/{i:09d}.jpg",
                           "generator": "bench", "version": "0"},
            "image": {"width": 320, "height": 240, "format": "jpg", "source_format": "JPEG"},
            "meta": {"url": f"https://example.com/{i}.jpg", "key": f"{i:09d}", "status": "success"},
        }
        samples.append({"__key__": key, "jpg": payload, "txt": caption, "json": record})
    return samples


def write_ours(samples: list[dict], outdir: str, max_count: int, max_bytes: int) -> tuple[int, int]:
    writer = ShardWriter(Folder(outdir), task_index=0, max_count=max_count, max_bytes=max_bytes)
    for sample in samples:
        writer.write(sample)
    shards = writer.close()
    return sum(s.bytes for s in shards), len(shards)


def write_raw(samples: list[dict], outdir: str, max_count: int, tar_defaults: bool) -> tuple[int, int]:
    os.makedirs(outdir, exist_ok=True)
    total = shards = 0
    fileobj = tar = None
    path = ""
    for i, sample in enumerate(samples):
        if i % max_count == 0:
            if tar is not None:
                tar.close()
                fileobj.close()
                total += os.path.getsize(path)
            path = os.path.join(outdir, f"raw-{shards:06d}.tar")
            fileobj = open(path, "wb")
            if tar_defaults:
                tar = wds.TarWriter(fileobj)
            else:
                tar = wds.TarWriter(fileobj, user="docforge", group="docforge", mtime=0, format="PAX_FORMAT",
                                    encoder=False)
            shards += 1
        tar.write({"__key__": sample["__key__"], "jpg": sample["jpg"], "txt": sample["txt"].encode("utf-8"),
                   "json": json.dumps(sample["json"]).encode("utf-8")})
    if tar is not None:
        tar.close()
        fileobj.close()
        total += os.path.getsize(path)
    return total, shards


def timed(fn, *args) -> tuple[float, int, int]:
    gc.collect()
    start = time.perf_counter()
    nbytes, nshards = fn(*args)
    return time.perf_counter() - start, nbytes, nshards


def profile_ours(samples: list[dict], base: str, max_count: int, max_bytes: int, top: int) -> None:
    outdir = os.path.join(base, "profile")
    profiler = cProfile.Profile()
    profiler.enable()
    write_ours(samples, outdir, max_count, max_bytes)
    profiler.disable()
    shutil.rmtree(outdir, ignore_errors=True)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    stats.print_stats(top)
    print("\n### cProfile of one ShardWriter pass (sorted by own time)\n\n```")
    print(out.getvalue().strip())
    print("```")



class CountingSink(HashingSink):
    """HashingSink without the sha256: what ShardWriter costs apart from the integrity hash."""

    def write(self, data) -> int:
        self.fileobj.write(data)
        self.bytes += len(data)
        return len(data)


def write_ours_unhashed(samples: list[dict], outdir: str, max_count: int, max_bytes: int):
    """ShardWriter with its sink swapped for CountingSink (benchmark-only patch of the module global)."""
    original = shards_module.HashingSink
    shards_module.HashingSink = CountingSink
    try:
        return write_ours(samples, outdir, max_count, max_bytes)
    finally:
        shards_module.HashingSink = original


def attribute(samples: list[dict], base: str, max_count: int, max_bytes: int, repeats: int) -> None:
    """Split ours/raw - 1 into its parts: raw plus one piece of ShardWriter's work at a time, alternating."""
    tar_options = dict(user="docforge", group="docforge", mtime=0, format="PAX_FORMAT", encoder=False)

    def raw_plus(outdir: str, sink: bool = False, encode: bool = False) -> tuple[int, int]:
        os.makedirs(outdir, exist_ok=True)
        fileobj = tar = None
        keys: set = set()
        estimated = 0
        for i, sample in enumerate(samples):
            if i % max_count == 0:
                if tar is not None:
                    tar.close()
                    fileobj.close()
                fileobj = open(os.path.join(outdir, f"raw-{i:08d}.tar"), "wb")
                tar = wds.TarWriter(HashingSink(fileobj) if sink else fileobj, **tar_options)
            if encode:
                members, _family = encode_sample(sample)
                if members["__key__"] in keys:
                    raise ValueError("duplicate key")
                estimated += tar_member_bytes(members)
                keys.add(members["__key__"])
            else:
                members = {"__key__": sample["__key__"], "jpg": sample["jpg"], "txt": sample["txt"].encode("utf-8"),
                           "json": json.dumps(sample["json"]).encode("utf-8")}
            tar.write(members)
        tar.close()
        fileobj.close()
        return 0, 0

    variants = {
        "raw (TarWriter on open())": lambda d: raw_plus(d),
        "raw + ShardWriter's sha256/count sink": lambda d: raw_plus(d, sink=True),
        "raw + encode_sample, key set, size estimate": lambda d: raw_plus(d, encode=True),
        "ours (ShardWriter on Folder)": lambda d: write_ours(samples, d, max_count, max_bytes),
        "ours with a count-only sink (no sha256)": lambda d: write_ours_unhashed(samples, d, max_count, max_bytes),
    }
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(-1, repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            outdir = os.path.join(base, "attribution")
            seconds = timed(variants[name], outdir)[0]
            shutil.rmtree(outdir)
            if r >= 0:
                times[name].append(seconds)
    raw = times[names[0]]
    print(f"\n### Where the overhead goes ({repeats} alternating repeats, paired against raw)\n")
    print("| variant | median s | vs raw (median of paired ratios) |")
    print("|---|---:|---:|")
    for name in names:
        paired = statistics.median(t / w - 1 for t, w in zip(times[name], raw))
        print(f"| {name} | {statistics.median(times[name]):.3f} | {100 * paired:+.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000, help="samples per run (default 2000)")
    parser.add_argument("--payload-kb", type=int, default=50, help="size of the .jpg payload in KB (default 50)")
    parser.add_argument("--max-count", type=int, default=500, help="samples per shard, both methods (default 500)")
    parser.add_argument("--max-bytes", type=int, default=1 << 30, help="ShardWriter byte limit (default 1 GiB)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each method (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="parent of the temporary output dir (default: system temp)")
    parser.add_argument("--raw-tar-defaults", action="store_true",
                        help="raw TarWriter with its default settings instead of ShardWriter's tar settings")
    parser.add_argument("--profile", action="store_true", help="also cProfile one ShardWriter pass")
    parser.add_argument("--profile-top", type=int, default=20)
    args = parser.parse_args()

    samples = make_samples(args.samples, args.payload_kb * 1000, args.seed)
    base = tempfile.mkdtemp(prefix="bench-shard-write-", dir=args.dir)
    try:
        methods = {
            "ours": lambda d: write_ours(samples, d, args.max_count, args.max_bytes),
            "raw": lambda d: write_raw(samples, d, args.max_count, args.raw_tar_defaults),
        }
        results: dict[str, list[float]] = {m: [] for m in methods}
        nbytes: dict[str, int] = {}
        nshards: dict[str, int] = {}
        run = 0
        for r in range(-1, args.repeats):  # r == -1: untimed warm-up of both
            order = ["ours", "raw"] if r % 2 == 0 else ["raw", "ours"]
            for method in order:
                outdir = os.path.join(base, f"run-{run}")
                run += 1
                seconds, nbytes[method], nshards[method] = timed(methods[method], outdir)
                shutil.rmtree(outdir)
                if r >= 0:
                    results[method].append(seconds)
            if r >= 0:
                print(f"repeat {r + 1}/{args.repeats}: ours {results['ours'][-1]:.3f}s  raw {results['raw'][-1]:.3f}s",
                      file=sys.stderr)

        med = {m: statistics.median(t) for m, t in results.items()}
        paired = [o / w - 1 for o, w in zip(results["ours"], results["raw"])]
        print(f"\n{args.samples} samples x ~{args.payload_kb} KB jpg + txt + json, {args.max_count} per shard, "
              f"{args.repeats} alternating repeats, raw tar settings: "
              f"{'TarWriter defaults' if args.raw_tar_defaults else 'same as ShardWriter'}\n")
        print("| method | shards | MB written | median s | min s | max s | samples/s | MB/s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for m in methods:
            t = results[m]
            print(f"| {m} | {nshards[m]} | {nbytes[m] / 1e6:.1f} | {med[m]:.3f} | {min(t):.3f} | {max(t):.3f} | "
                  f"{args.samples / med[m]:,.0f} | {nbytes[m] / 1e6 / med[m]:,.0f} |")
        print(f"\nOverhead ours/raw - 1: ratio of medians {100 * (med['ours'] / med['raw'] - 1):+.1f}%, "
              f"median of paired ratios {100 * statistics.median(paired):+.1f}% "
              f"(paired range {100 * min(paired):+.1f}% .. {100 * max(paired):+.1f}%); target <= +10%")

        if args.profile:
            profile_ours(samples, base, args.max_count, args.max_bytes, args.profile_top)
            attribute(samples, base, args.max_count, args.max_bytes, args.repeats)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
