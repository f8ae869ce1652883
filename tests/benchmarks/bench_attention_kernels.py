"""Benchmark: the LLM's causal attention over one packed batch, kernel against kernel (… ▶ pack ▶ forward,
**attention inside each sample**): is another kernel worth wiring in beside `trainer.attention`'s varlen?

What it measures
    One packed batch of `--rows` rows, each the samples of `--lengths` back to back (default 3100 + 3162
    tokens: one ~6,262-token row of the 1.5B bench), run lengths read by `trainer.attention.packed_runs`
    from the rows' position ids as in training; q, k, v as (tokens, heads, dim) with the LLM's head counts
    (default Qwen2-1.5B: 12 query heads, 2 kv heads, head dim 128), seeded normal values, bf16.
    Kernels (each the same arithmetic: causal attention inside each sample, never across):
      flash-varlen    `trainer.attention.FLASH_VARLEN`: PyTorch's flash varlen kernel (FA2), the trainer's
                      CUDA path and the reference the others are checked against.
      per-run-sdpa    `trainer.attention.attention_per_run`: the trainer's CPU path, and the reference on CPU.
      sdpa-cudnn, sdpa-flash, sdpa-efficient, sdpa-math
                      one `F.scaled_dot_product_attention(is_causal=True)` call a sample, (1, heads, L, dim),
                      forced to that backend with `sdpa_kernel`; GQA by `enable_gqa=True`, or, where the
                      backend refuses it, k/v expanded by `repeat_interleave` (the row says so).
      flex-document   `flex_attention` (compiled with `torch.compile` on CUDA, eager on CPU) over each whole
                      row (rows, heads, row length, dim) with a block mask that is causal and same-document
                      (a document id a token, from the run lengths); GQA by `enable_gqa=True`. The block mask
                      is built once, untimed, as a trainer would once a micro-batch for all its layers.
    By default CUDA runs flash-varlen, the three fused sdpa backends and flex-document; a CPU runs all but
    flash-varlen; `--kernels` picks others.
    Each kernel: one forward + backward whose output and q/k/v gradients are compared with the reference's
    (max abs difference over all four; flagged MISMATCH where any element differs by more than
    2e-2 + 2e-2·|reference|, bf16 rounding of values up to ~10 included), then `--warmup` untimed forward +
    backward calls (torch.compile's compilation happens there), then `--iters` forward calls and `--iters`
    forward + backward calls (`torch.autograd.grad` with a fixed output gradient), each timed with CUDA
    events queued back to back (perf_counter on CPU); medians reported. A kernel that fails on this
    torch/device becomes a row saying why (exception type, first line, and the dispatcher's warnings); one
    whose backward fails, or whose forward runs only on inputs that need no gradient (flex_attention on a
    CPU), is checked and timed forward only.

    FLOPs (FlashAttention's convention): forward = Σ over samples of 4·L²·head_dim·heads / 2 (QKᵀ and PV,
    2 FLOPs a multiply-add, the causal half); backward = 2.5 × forward; forward + backward = 3.5 × forward.
    trainer.metrics counts the attention's backward as 2 × forward, so its TFLOP/s for the same time is
    3/3.5 of the figure here.

    On a machine without CUDA every kernel runs on the CPU (those that have no CPU implementation become
    failure rows): a check that the script and the kernels' arithmetic work, with timings that mean nothing.

    python3 tests/benchmarks/bench_attention_kernels.py --json attention.json                 # on a GPU
    python3 tests/benchmarks/bench_attention_kernels.py --lengths 96,160 --heads 4 --kv-heads 2 --head-dim 32 \\
        --iters 3 --warmup 1                                                                 # on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from trainer.attention import FLASH_VARLEN, attention_per_run, packed_runs  # noqa: E402

SDPA_BACKENDS = {"sdpa-cudnn": SDPBackend.CUDNN_ATTENTION, "sdpa-flash": SDPBackend.FLASH_ATTENTION,
                 "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION, "sdpa-math": SDPBackend.MATH}
KERNELS = ["flash-varlen", "per-run-sdpa", *SDPA_BACKENDS, "flex-document"]
CUDA_KERNELS = ["flash-varlen", "sdpa-cudnn", "sdpa-flash", "sdpa-efficient", "flex-document"]
CPU_KERNELS = ["per-run-sdpa", *SDPA_BACKENDS, "flex-document"]
TOLERANCE = 2e-2  # absolute and relative, on bf16 values
NOTE_WIDTH = 300  # characters of a note in the table; the JSON has all of it


class KernelFailure(RuntimeError):
    """A kernel that does not run on this torch/device; its message is the row's note."""


@dataclass
class PackedBatch:
    """q, k, v of one packed batch as the varlen kernel takes them, with the run bounds each kernel needs."""

    query: torch.Tensor  # (tokens, heads, dim)
    key: torch.Tensor  # (tokens, kv_heads, dim)
    value: torch.Tensor
    output_grad: torch.Tensor  # (tokens, heads, dim)
    cu_lengths: torch.Tensor  # int32 on the device
    bounds: list[tuple[int, int]]  # (start, end) of each sample, host side
    rows: int
    longest: int
    scale: float

    @property
    def groups(self) -> int:
        return self.query.shape[1] // self.key.shape[1]

    def detached(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.query.detach(), self.key.detach(), self.value.detach()


def make_batch(lengths: list[int], rows: int, heads: int, kv_heads: int, dim: int, device: torch.device,
               dtype: torch.dtype) -> PackedBatch:
    position_ids = torch.cat([torch.arange(n) for n in lengths]).repeat(rows, 1)
    runs = packed_runs(position_ids)
    cu = runs.cu_lengths.tolist()
    generator = torch.Generator(device).manual_seed(0)
    tokens = position_ids.numel()

    def normal(h: int, grad: bool) -> torch.Tensor:
        return torch.randn(tokens, h, dim, generator=generator, device=device, dtype=dtype, requires_grad=grad)

    return PackedBatch(normal(heads, True), normal(kv_heads, True), normal(kv_heads, True), normal(heads, False),
                       runs.cu_lengths.to(device), list(zip(cu[:-1], cu[1:])), rows, runs.longest, dim ** -0.5)


def forward_flops(lengths: list[int], rows: int, heads: int, dim: int) -> float:
    return rows * sum(4 * n * n * dim * heads / 2 for n in lengths)


class SampleSdpa:
    """One causal sdpa call a sample on one forced backend; k/v expanded once the backend refuses GQA."""

    def __init__(self, backend: SDPBackend, batch: PackedBatch):
        self.backend, self.batch = backend, batch
        self.expand_kv = False

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        groups = self.batch.groups
        if self.expand_kv:
            key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
        outputs = []
        with sdpa_kernel(self.backend):
            for start, end in self.batch.bounds:
                q, k, v = (t[start:end].transpose(0, 1).unsqueeze(0) for t in (query, key, value))
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.batch.scale,
                                                     enable_gqa=k.shape[1] != q.shape[1])
                outputs.append(out.squeeze(0).transpose(0, 1))
        return torch.cat(outputs)


class FlexDocument:
    """flex_attention over each whole row with a causal, same-document block mask."""

    def __init__(self, batch: PackedBatch, compiled: bool):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        self.batch = batch
        tokens = batch.query.shape[0]
        self.row_length = tokens // batch.rows
        runs = batch.cu_lengths.diff().long()
        documents = torch.repeat_interleave(torch.arange(runs.numel(), device=runs.device), runs)
        documents = documents.view(batch.rows, self.row_length)

        def causal_same_document(b, h, q_index, kv_index):
            return (documents[b, q_index] == documents[b, kv_index]) & (q_index >= kv_index)

        self.block_mask = create_block_mask(causal_same_document, batch.rows, None, self.row_length,
                                            self.row_length, device=batch.query.device)
        self.attend = torch.compile(flex_attention, dynamic=False) if compiled else flex_attention

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        rows, length = self.batch.rows, self.row_length
        q, k, v = (t.view(rows, length, t.shape[1], t.shape[2]).transpose(1, 2) for t in (query, key, value))
        out = self.attend(q, k, v, block_mask=self.block_mask, scale=self.batch.scale,
                          enable_gqa=k.shape[1] != q.shape[1])
        return out.transpose(1, 2).reshape(query.shape)


def make_kernel(name: str, batch: PackedBatch) -> Callable:
    if name == "flash-varlen":
        if FLASH_VARLEN is None:
            raise KernelFailure("this torch has no torch.nn.attention.varlen")
        if not batch.query.is_cuda:
            raise KernelFailure("varlen_attn runs on CUDA only")
        return lambda q, k, v: FLASH_VARLEN(q, k, v, batch.cu_lengths, batch.longest, batch.scale)
    if name == "per-run-sdpa":
        return lambda q, k, v: attention_per_run(q, k, v, batch.cu_lengths, batch.scale)
    if name in SDPA_BACKENDS:
        return SampleSdpa(SDPA_BACKENDS[name], batch)
    return FlexDocument(batch, compiled=batch.query.is_cuda)


def why(error: Exception, caught: list[warnings.WarningMessage]) -> str:
    """The exception's type and first line, then the first line of each distinct warning raised on the way
    (sdpa's dispatcher says there why a backend was not used), less its "… has been runtime disabled" for
    the backends that `sdpa_kernel` switched off."""
    lines = [f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"]
    for warning in caught:
        line = (str(warning.message).strip().splitlines() or [""])[0]
        if line and line not in lines and not line.endswith("runtime disabled."):
            lines.append(line)
    return "; ".join(lines)


def forward_backward(kernel: Callable, batch: PackedBatch) -> tuple[torch.Tensor, ...]:
    out = kernel(batch.query, batch.key, batch.value)
    return torch.autograd.grad(out, (batch.query, batch.key, batch.value), batch.output_grad)


@dataclass
class Attempt:
    """One forward + backward: the output and gradients each kernel is checked with, or why not."""

    output: torch.Tensor | None = None
    gradients: tuple[torch.Tensor, ...] | None = None
    failure: str = ""
    forward_only: bool = False  # the forward runs only on inputs that need no gradient (no backward here)

    @property
    def complete(self) -> bool:
        return self.gradients is not None


def attempt(kernel: Callable, batch: PackedBatch) -> Attempt:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = kernel(batch.query, batch.key, batch.value)
        except Exception as error:
            failure = why(error, caught)
            try:
                out = kernel(*batch.detached())
            except Exception:
                return Attempt(failure=failure)
            return Attempt(out, failure=f"forward only, inputs detached: {failure}", forward_only=True)
        try:
            gradients = torch.autograd.grad(out, (batch.query, batch.key, batch.value), batch.output_grad)
        except Exception as error:
            return Attempt(out.detach(), failure=f"backward: {why(error, caught)}")
    return Attempt(out.detach(), gradients)


def first_call(kernel: Callable, batch: PackedBatch) -> tuple[Attempt, str]:
    """The kernel's first forward + backward and a note. A sdpa backend that fails with GQA is tried again
    with k/v expanded, and keeps whichever way went further."""
    first = attempt(kernel, batch)
    chosen, note = first, first.failure
    if not first.complete and isinstance(kernel, SampleSdpa) and batch.groups > 1:
        kernel.expand_kv = True
        expanded = attempt(kernel, batch)
        if expanded.complete or (expanded.output is not None and first.output is None):
            gqa = "GQA refused" if first.output is None else "GQA backward refused"
            chosen, note = expanded, f"{gqa} ({first.failure}); k/v expanded by repeat_interleave"
            if expanded.failure:
                note += f"; {expanded.failure}"
        else:
            kernel.expand_kv = False
            if expanded.failure != first.failure:
                note += f" (k/v expanded: {expanded.failure})"
    if chosen.output is None:
        raise KernelFailure(note)
    return chosen, note


def median_ms(call: Callable[[], object], iters: int, on_cuda: bool) -> float:
    """Median of `iters` calls, each timed alone: CUDA events queued back to back, perf_counter on CPU."""
    if not on_cuda:
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    torch.cuda.synchronize()
    for start, end in events:
        start.record()
        call()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


@dataclass
class Row:
    kernel: str
    fwd_ms: float | None = None
    fwd_tflops: float | None = None
    fwd_bwd_ms: float | None = None
    fwd_bwd_tflops: float | None = None
    max_diff: float | None = None
    diffs: dict[str, float] = field(default_factory=dict)
    mismatch: bool = False
    note: str = ""


def measure(name: str, batch: PackedBatch, reference: Attempt | None, flops: float,
            args: argparse.Namespace) -> tuple[Row, Attempt | None]:
    """One kernel's row, and its first call's output and gradients (the reference, for the reference kernel).
    A kernel whose backward fails is timed forward only."""
    row = Row(name)
    on_cuda = batch.query.is_cuda
    try:
        kernel = make_kernel(name, batch)
        first, row.note = first_call(kernel, batch)
        if reference is not None:
            mine = [first.output, *(first.gradients or ())]
            theirs = [reference.output, *(reference.gradients or ())]
            for label, a, b in zip(("out", "dq", "dk", "dv"), mine, theirs):
                difference = (a.float() - b.float()).abs()
                row.diffs[label] = float(difference.max())
                row.mismatch |= bool((difference > TOLERANCE + TOLERANCE * b.float().abs()).any())
            row.max_diff = max(row.diffs.values())
        inputs = batch.detached() if first.forward_only else (batch.query, batch.key, batch.value)
        forward = lambda: kernel(*inputs)  # noqa: E731
        warm_up = (lambda: forward_backward(kernel, batch)) if first.complete else forward
        for _ in range(args.warmup):
            warm_up()
        row.fwd_ms = median_ms(forward, args.iters, on_cuda)
        if first.complete:
            row.fwd_bwd_ms = median_ms(lambda: forward_backward(kernel, batch), args.iters, on_cuda)
    except KernelFailure as failure:
        row.note = str(failure)
        return row, None
    except Exception as error:  # a kernel this torch/device lacks is a row of the table, not the end of the run
        row.note = why(error, [])
        return row, None
    row.fwd_tflops = flops / (row.fwd_ms * 1e-3) / 1e12
    if row.fwd_bwd_ms is not None:
        row.fwd_bwd_tflops = 3.5 * flops / (row.fwd_bwd_ms * 1e-3) / 1e12
    if isinstance(kernel, FlexDocument) and not on_cuda:
        row.note = "; ".join(filter(None, ["eager, not compiled (flex_attention's unfused path)", row.note]))
    return row, first


def print_table(rows: list[Row], reference: str) -> None:
    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}g}"

    print(f"{'kernel':16s} {'fwd ms':>9s} {'fwd TF/s':>9s} {'f+b ms':>9s} {'f+b TF/s':>9s} {'max diff':>9s}  note")
    for row in rows:
        diff = "ref" if row.kernel == reference and row.fwd_ms is not None else number(row.max_diff, 3)
        note = ("MISMATCH; " if row.mismatch else "") + row.note
        note = note if len(note) <= NOTE_WIDTH else note[:NOTE_WIDTH - 1] + "…"
        print(f"{row.kernel:16s} {number(row.fwd_ms, 4):>9s} {number(row.fwd_tflops, 4):>9s} "
              f"{number(row.fwd_bwd_ms, 4):>9s} {number(row.fwd_bwd_tflops, 4):>9s} {diff:>9s}  {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="3100,3162", help="sample lengths of one row (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=1, help="rows of the batch, each with --lengths")
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--iters", type=int, default=20, help="timed calls, forward and forward+backward each")
    parser.add_argument("--warmup", type=int, default=5, help="untimed forward+backward calls first")
    parser.add_argument("--kernels", help=f"comma-separated subset of {','.join(KERNELS)} (default: "
                                          f"{','.join(CUDA_KERNELS)} on CUDA, {','.join(CPU_KERNELS)} elsewhere)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    on_cuda = torch.cuda.is_available()
    device = torch.device("cuda" if on_cuda else "cpu")
    reference = "flash-varlen" if on_cuda else "per-run-sdpa"
    names = args.kernels.split(",") if args.kernels else CUDA_KERNELS if on_cuda else CPU_KERNELS
    unknown = set(names) - set(KERNELS)
    if unknown:
        parser.error(f"unknown kernels {sorted(unknown)}; known: {', '.join(KERNELS)}")
    names = [reference, *(n for n in names if n != reference)]

    batch = make_batch(lengths, args.rows, args.heads, args.kv_heads, args.head_dim, device, torch.bfloat16)
    flops = forward_flops(lengths, args.rows, args.heads, args.head_dim)
    device_name = torch.cuda.get_device_name(0) if on_cuda else "CPU (no CUDA device)"
    print(f"device {device_name}, torch {torch.__version__}; {args.rows} row(s) of samples {lengths}, "
          f"{batch.query.shape[0]} tokens; heads {args.heads}, kv heads {args.kv_heads}, head dim {args.head_dim}, "
          f"bf16; forward {flops / 1e9:.4g} GFLOP, forward+backward {3.5 * flops / 1e9:.4g} GFLOP a call")
    if not on_cuda:
        print("no CUDA device: a smoke check of the kernels' arithmetic; the CPU timings say nothing of a GPU")

    rows, reference_results = [], None
    for name in names:
        row, results = measure(name, batch, reference_results, flops, args)
        if name == reference:
            reference_results = results
        rows.append(row)
    print_table(rows, reference)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": device_name, "torch": torch.__version__, "cuda": torch.version.cuda, "lengths": lengths,
            "rows": args.rows, "heads": args.heads, "kv_heads": args.kv_heads, "head_dim": args.head_dim,
            "dtype": "bfloat16", "iters": args.iters, "warmup": args.warmup, "reference": reference,
            "forward_flops": flops, "forward_backward_flops": 3.5 * flops,
            "kernels": [row.__dict__ for row in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
