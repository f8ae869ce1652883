"""A kernel profile of chosen training steps (`runtime.profile_steps: [first, last]`), beside the step log:
where a step's time goes, without the model loading, the compiling first steps or the checkpoint writes
that a profile of the whole run mixes in.

`StepProfiler` wraps torch.profiler around the steps first..last (1-based, as the log counts them) and,
after the last, writes to `STAGE_DIR/profile/`:

    kernels.txt     every kernel (on a CPU: every aten op) by its own time over the profiled steps
    summary.json    that time by kind (matrix products, attention, copies, optimizer, other), in ms a step
                    and a micro-batch, with the profiled steps' wall time for comparison, and how much
                    of the wall time the GPU was running some kernel, on any stream (on a CPU: some op,
                    on any thread); the rest is the GPU waiting for the host. And the gaps between
                    kernels from the first profiled step's first to the last one's last, step boundaries
                    included (the step time leaves those out), summed by length (short: launch
                    overhead; long: a host held up) and the longest ones
    trace.json.gz   the timeline, for chrome://tracing or Perfetto
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

# kinds by what the name of a kernel (or, on a CPU, an aten op) holds; the first match wins
KINDS = (
    ("copies", ("memcpy", "memset", "aten::copy_", "aten::_to_copy")),
    ("attention", ("flash", "fmha", "attention", "_sdpa_", "sdpa_")),
    ("optimizer", ("multi_tensor_apply", "adam")),
    ("matrix products", ("gemm", "nvjet", "cutlass", "xmma", "aten::mm", "aten::addmm", "aten::bmm")),
)
OTHER = "elementwise and other"


def busy_intervals(events, device_type: DeviceType) -> list[tuple[float, float]]:
    """When some event of `device_type` was running: the union of their intervals (kernels on several
    streams, or ops nested in ops, count once), in µs, in time order."""
    merged: list[list[float]] = []
    for start, end in sorted((e.time_range.start, e.time_range.end) for e in events if e.device_type == device_type):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def busy_ms(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals) / 1000


# idle gaps between kernels by length: the short ones are launch overhead (the host just behind the GPU),
# the long ones a host that was held up (an interpreter lock, a sync, a step's bookkeeping)
GAP_BOUNDS_MS = ((0.05, "under 0.05 ms"), (1.0, "0.05-1 ms"), (10.0, "1-10 ms"), (float("inf"), "over 10 ms"))


def idle_gaps(intervals: list[tuple[float, float]]) -> dict:
    """The idle time between consecutive busy intervals, in ms summed by length, and the longest gaps."""
    gaps = [(b_start - a_end) / 1000 for (_, a_end), (b_start, _) in zip(intervals, intervals[1:])]
    by_length = {label: 0.0 for _, label in GAP_BOUNDS_MS}
    for gap in gaps:
        by_length[next(label for bound, label in GAP_BOUNDS_MS if gap < bound)] += gap
    return {"ms_by_length": by_length, "longest_ms": sorted(gaps, reverse=True)[:10]}


def kind_of(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, marks in KINDS if any(mark in lowered for mark in marks)), OTHER)


class StepProfiler:
    def __init__(self, steps: tuple[int, int] | None, directory: Path, device: torch.device, grad_accum: int,
                 enabled: bool):
        self.steps = steps if enabled else None
        self.directory = directory / "profile"
        self.on_gpu = device.type == "cuda"
        self.grad_accum = grad_accum
        self.profiler: profile | None = None
        self.profiled = 0  # steps done under the profiler
        self.wall = 0.0

    def before_step(self, step: int) -> None:
        """Called with the number the coming step will have."""
        if self.steps and step == self.steps[0] and self.profiler is None:
            activities = [ProfilerActivity.CUDA] if self.on_gpu else [ProfilerActivity.CPU]
            self.profiler = profile(activities=activities)
            self.profiler.start()

    def after_step(self, step: int, step_time: float) -> None:
        if self.profiler is None:
            return
        self.wall += step_time
        self.profiled += 1
        if step >= self.steps[1]:
            self.close()

    def close(self) -> None:
        """After the last profiled step, or when the stage ends before it: what was profiled is written."""
        if self.profiler is None:
            return
        self.profiler.stop()
        if self.profiled:
            self.write(self.profiled)
        self.profiler = None
        self.steps = None

    def write(self, steps: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        events = self.profiler.key_averages()
        order = "self_device_time_total" if self.on_gpu else "self_cpu_time_total"
        (self.directory / "kernels.txt").write_text(events.table(sort_by=order, row_limit=-1,
                                                                 max_name_column_width=100))
        totals: dict[str, float] = {}
        for event in events:
            micros = event.self_device_time_total if self.on_gpu else event.self_cpu_time_total
            if micros:
                totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + micros / 1000
        micro_batches = steps * self.grad_accum
        kinds = sorted(totals.items(), key=lambda kv: -kv[1])
        summary = {
            "steps": steps, "micro_batches": micro_batches, "clock": "CUDA kernels" if self.on_gpu else "CPU ops",
            "wall_ms_per_step": 1000 * self.wall / steps,
            "ms_per_step": {kind: ms / steps for kind, ms in kinds},
            "ms_per_micro_batch": {kind: ms / micro_batches for kind, ms in kinds},
            "total_ms_per_step": sum(totals.values()) / steps,
        }
        intervals = busy_intervals(self.profiler.events(), DeviceType.CUDA if self.on_gpu else DeviceType.CPU)
        summary["busy_ms_per_step"] = busy_ms(intervals) / steps
        summary["idle_ms_per_step"] = summary["wall_ms_per_step"] - summary["busy_ms_per_step"]
        gaps = idle_gaps(intervals)
        summary["idle_between_kernels_ms_per_step"] = {k: ms / steps for k, ms in gaps["ms_by_length"].items()}
        summary["longest_idle_gaps_ms"] = gaps["longest_ms"]
        (self.directory / "summary.json").write_text(json.dumps(summary, indent=2))
        self.profiler.export_chrome_trace(str(self.directory / "trace.json.gz"))
