"""A request to stop a training run at the next step's end: part of the loop (… ▶ step ▶ log ▶ checkpoint
▶ **stop?**).

SIGTERM is how a run is asked to end: a spot VM's or Kubernetes' preemption (SIGTERM, then SIGKILL after
a grace period), `kill PID`, torchrun passing its own SIGTERM to every worker, a scheduler's time limit.
Killed at once, a run would lose every step since its newest checkpoint (`runtime.checkpoint_every`
steps: half an hour of GPU time at 1,000 steps of 1.8 s). Here the first SIGTERM only raises a flag; the
loop finishes the step under way, and the ranks decide together, in the all-reduce each step already
makes, so all of them stop at the same step even when the signal reached one rank only. That step is
logged and checkpointed, and the run ends with `Stopped` (`docforge train` exits 143, as killed by
SIGTERM): `--resume` continues exactly. A second SIGTERM is not caught: it ends the process at once.

Handlers can only be set in the main thread; elsewhere (a Ray Train worker runs its function in
another thread) the run keeps the process's own SIGTERM handling.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Stopped(RuntimeError):
    """The run stopped on request after a step that was logged and checkpointed."""


class StopRequest:
    """Within `with StopRequest() as stop:`, the first SIGTERM sets `stop.requested`."""

    def __init__(self) -> None:
        self.requested = False
        self.installed = False
        self.previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self.handle)
            self.installed = True
        return self

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once

    def __exit__(self, *exc_info) -> None:
        if self.installed:  # (None: a handler not set from Python, which cannot be put back from here)
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)
