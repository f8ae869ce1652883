"""Benchmark: the loss at the labelled positions, eager against compiled (… ▶ forward ▶ **LM head's logits ▶
fp32 cross-entropy** ▶ backward): what `runtime.compile` gains by running `trainer.model.label_loss_sum`
through Inductor (`compiled_label_loss_sum`).

What it measures
    The head's raw logits of `--labels` labelled positions over a `--vocab`-word vocabulary (default 3,000 and
    Qwen2's 151,936), seeded normal values in bf16 (what the head gives under bf16 weights or autocast), and
    their targets. Each variant runs in its own child process, so neither's memory or compiled code shows in
    the other's: `--warmup` untimed loss + backward calls (compilation happens there), then `--iters` timed
    ones (CUDA events on a GPU, perf_counter on a CPU); the median is reported. Memory is the peak above what
    the logits and their gradient hold (a GPU: `max_memory_allocated`; a CPU: the process's peak RSS, so it
    includes the allocator's and compiled code's own). The two losses and logits' gradients are compared.

    python3 tests/benchmarks/bench_label_loss.py                          # on a GPU
    .venv/bin/python tests/benchmarks/bench_label_loss.py --labels 2000   # on a CPU
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

VARIANTS = ("eager", "compiled")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_variant(variant: str, labels: int, vocab: int, warmup: int, iters: int, queue) -> None:
    import torch

    from trainer.model import LogitFinish, compiled_label_loss_sum, label_loss_sum

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator(device).manual_seed(0)
    logits = torch.randn(labels, vocab, generator=generator, device=device, dtype=torch.bfloat16).requires_grad_()
    targets = torch.randint(0, vocab, (labels,), generator=generator, device=device)
    loss_sum = compiled_label_loss_sum() if variant == "compiled" else label_loss_sum
    finish = LogitFinish()

    def once() -> torch.Tensor:
        logits.grad = None
        loss = loss_sum(logits, targets, finish)
        loss.backward()
        return loss

    # the gradient's own memory is held between calls in training too (it goes on to the head's backward)
    logits.grad = torch.empty_like(logits)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base_rss = peak_rss_mib()
    loss = once()
    for _ in range(warmup):
        once()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            once()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            started = time.perf_counter()
            once()
            times.append((time.perf_counter() - started) * 1000)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = peak_rss_mib() - base_rss
    queue.put({"variant": variant, "device": str(device), "median_ms": statistics.median(times),
               "peak_mib_above_inputs": round(peak, 1), "loss": loss.item(),
               "grad": logits.grad.float().cpu()[:64].tolist()})  # plain lists: the child exits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=3000)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results = []
    for variant in VARIANTS:
        queue = context.Queue()
        child = context.Process(target=run_variant, args=(variant, args.labels, args.vocab, args.warmup,
                                                          args.iters, queue))
        child.start()
        results.append(queue.get())
        child.join()
    eager, compiled = results
    gap = max(abs(a - b) for rows in zip(compiled["grad"], eager["grad"]) for a, b in zip(*rows))
    print(f"{args.labels} labelled positions x {args.vocab} words, bf16 logits, {eager['device']}")
    print(f"{'variant':<10} {'loss + backward ms':>19} {'peak MiB above inputs':>22}")
    for row in results:
        print(f"{row['variant']:<10} {row['median_ms']:>19.2f} {row['peak_mib_above_inputs']:>22.1f}")
    print(f"compiled / eager time: {compiled['median_ms'] / eager['median_ms']:.3f}; "
          f"losses {eager['loss']:.4f} / {compiled['loss']:.4f}; largest gradient difference {gap:.2e}")
    if args.json:
        for row in results:
            row.pop("grad")
        args.json.write_text(json.dumps({"labels": args.labels, "vocab": args.vocab, "results": results}, indent=1))


if __name__ == "__main__":
    main()
