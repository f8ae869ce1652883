"""Benchmark: how much the data worker slows the training thread's kernel launches (`runtime.data_worker`).

Why
    A GPU step is as fast as its thread can launch kernels. Every torch op (and every Triton launch)
    lets go of the GIL and must take it back. A data *thread* running Python in the same process holds
    the GIL in the meantime, and CPython gives a waiting thread the GIL only after its switch interval
    (5 ms by default). On the H100 profile of the 1.5B bench (BENCHMARKS.md) the GPU sat idle ~7 % of an
    unprofiled step, in gaps spread evenly over the micro-batch, most of them far longer than a launch.

What it measures
    Setup (untimed): the 1.5B bench's input side (`bench_trainer_data.packed_batches_1p5b`: 1400 px pages,
    16 tiles + global view, seq 8192, packing window 16).
    Timed, for each data-worker mode in turn, `--rounds` rounds in alternating order, each a fresh
    PackedBatches and `--steps` steps in the training loop's pattern: the training thread's stand-in takes
    a step's `--grad-accum` micro-batches at once (`Prefetcher.next()`; the queue holds those plus
    `--prefetch`), then "launches" for `--micro-ms` ms a micro-batch: a loop of tiny torch ops
    (`torch.add(a, b, out=c)` on one-element tensors), each of which lets go of the GIL and takes it back,
    as a kernel launch does. The worker meanwhile refills the queue, as it does beside a GPU. Figures per
    mode (medians over the rounds): ops launched a second of launching time, against the same loop with no
    worker (`idle`); the share of launching time spent in ops that took over 0.5 ms (stalls: a launch that
    waited for the GIL); the longest op; the ms a micro-batch took to be taken from the queue (in
    `process` mode: views of a shared slot, `trainer.batch_slots`).
    Modes:
      idle      no worker (the ceiling)
      thread    `Prefetcher` thread, CPython's default switch interval
      thread-Nus  the thread with `sys.setswitchinterval(N µs)` (`--switch-us`)
      process   `Prefetcher` in a forked worker process (`runtime.data_worker: process`)

    python tests/benchmarks/bench_launch_stalls.py
    python tests/benchmarks/bench_launch_stalls.py --rounds 5 --steps 3 --switch-us 100 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_trainer  # noqa: E402  (puts the checkout on sys.path)
from bench_trainer_data import packed_batches_1p5b  # noqa: E402

STALL_S = 0.0005


def launch_for(seconds: float, a, b, c) -> tuple[int, float, float, float]:
    """Tiny torch ops for `seconds`: (ops, launching time, time in ops over STALL_S, longest op)."""
    import torch

    ops, stalled, longest = 0, 0.0, 0.0
    started = now = time.perf_counter()
    end = started + seconds
    while now < end:
        before = now
        torch.add(a, b, out=c)
        now = time.perf_counter()
        took = now - before
        ops += 1
        if took > STALL_S:
            stalled += took
        longest = max(longest, took)
    return ops, now - started, stalled, longest


def measure(mode: str, batches, grad_accum: int, prefetch_more: int, steps: int, micro_s: float) -> dict:
    """The training loop's pattern: a step takes its `grad_accum` micro-batches at once, then launches for
    `grad_accum` × `micro_s`, while the worker (queue: the step's batches + `prefetch_more`) refills."""
    import torch

    from trainer.data import Prefetcher

    a, b, c = torch.zeros(1), torch.ones(1), torch.empty(1)
    switch = sys.getswitchinterval()
    if mode.startswith("thread-"):
        sys.setswitchinterval(int(mode.split("-")[1].removesuffix("us")) / 1e6)
    depth = grad_accum + prefetch_more
    prefetch = None if mode == "idle" else Prefetcher(batches, depth, process=mode == "process", keep=grad_accum)
    try:
        if prefetch is not None:  # start from a full queue, as a running trainer does
            for _ in range(depth):
                prefetch.next()
            time.sleep(depth * 0.2)
        ops = launching = stalled = longest = take = 0.0
        for _ in range(steps):
            if prefetch is not None:
                started = time.perf_counter()
                for _ in range(grad_accum):
                    prefetch.next()
                take += time.perf_counter() - started
            n, spent, late, worst = launch_for(grad_accum * micro_s, a, b, c)
            ops, launching, stalled, longest = ops + n, launching + spent, stalled + late, max(longest, worst)
    finally:
        if prefetch is not None:
            prefetch.close()
        sys.setswitchinterval(switch)
    return {"ops_per_s": ops / launching, "stall_share": stalled / launching, "longest_op_ms": 1000 * longest,
            "take_ms_per_micro_batch": 1000 * take / (steps * grad_accum)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps a round, per mode")
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--prefetch", type=int, default=4, help="micro-batches queued beyond a step's")
    parser.add_argument("--micro-ms", type=float, default=240.0,
                        help="launching time a micro-batch (the H100's accumulation-8 micro-batch: ~240 ms)")
    parser.add_argument("--switch-us", type=int, nargs="*", default=[200],
                        help="switch intervals tried for the thread (µs)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    modes = ["idle", "thread", *[f"thread-{us}us" for us in args.switch_us], "process"]
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        make, _, _ = packed_batches_1p5b(Path(tmp), args.pages, 16)
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                # fresh batches each time: a forked worker shares the parent's open shard files, offsets too
                run = measure(mode, make(), args.grad_accum, args.prefetch, args.steps, args.micro_ms / 1000)
                results[mode].append(run)
                print(f"round {r} {mode:14s} " + " ".join(f"{k} {v:.4g}" for k, v in run.items()), flush=True)
    idle_rate = statistics.median(m["ops_per_s"] for m in results["idle"])
    figures: dict = {"rounds": args.rounds, "micro_ms": args.micro_ms,
                     "switch_interval_default_ms": 1000 * sys.getswitchinterval()}
    for mode in modes:
        runs = results[mode]
        figures[f"{mode}_ops_vs_idle"] = statistics.median(m["ops_per_s"] for m in runs) / idle_rate
        figures[f"{mode}_stall_share"] = statistics.median(m["stall_share"] for m in runs)
        figures[f"{mode}_longest_op_ms"] = statistics.median(m["longest_op_ms"] for m in runs)
        figures[f"{mode}_take_ms"] = statistics.median(m["take_ms_per_micro_batch"] for m in runs)
    bench_trainer.report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
