"""The live progress bar of a running job (rich): inputs done, samples written, errors, samples/s.

Updated by the runner's driver loop each time a Ray task commits (or fails for good).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class JobProgress:
    def __init__(self, job_name: str, total_items: int, enabled: bool = True):
        self.samples = 0
        self.errors = 0
        self.failed_tasks = 0
        self.started = time.time()
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("inputs · {task.fields[samples]} samples · {task.fields[errors]} errors · "
                       "{task.fields[rate]} samples/s{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._bar = self._progress.add_task(job_name, total=total_items, samples=0, errors=0, rate="0.0", failed="")

    def __enter__(self) -> JobProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def task_done(self, items: int, samples: int, errors: int, failed: bool = False) -> None:
        self.samples += samples
        self.errors += errors
        self.failed_tasks += int(failed)
        rate = self.samples / max(time.time() - self.started, 1e-9)
        self._progress.update(
            self._bar, advance=items, samples=self.samples, errors=self.errors, rate=f"{rate:.1f}",
            failed=f" · {self.failed_tasks} failed tasks" if self.failed_tasks else "",
        )
