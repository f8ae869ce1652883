"""The end-of-job summary table printed by every build (from the job's `stats.json` record)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def print_summary(stats: dict[str, Any], report_url: str, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    tasks = stats["tasks"]
    table = Table(title=f"docforge build {stats['job']}: {'complete' if stats['complete'] else 'INCOMPLETE'}",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("output", stats["output"])
    table.add_row("tasks", f"{tasks['total']} total · {tasks['run']} run now · {tasks['skipped']} already "
                           f"committed · {tasks['failed']} failed")
    table.add_row("inputs", str(stats["inputs"]))
    table.add_row("samples", f"{stats['samples']} in {stats['shards']} shards ({human_bytes(stats['bytes'])})")
    table.add_row("families", ", ".join(f"{k}: {v}" for k, v in stats["families"].items()) or "-")
    table.add_row("errors", str(stats["errors"]))
    for cause, count in list(stats["errors_by_cause"].items())[:10]:
        table.add_row("", f"{count} × {cause}")
    run = stats["this_run"]
    table.add_row("this run", f"{run['samples']} samples in {run['elapsed_s']:.1f} s, {run['ray_start_s']:.1f} s "
                              f"of it starting Ray ({run['samples_per_s']:.1f} samples/s after that)")
    table.add_row("report", report_url)
    console.print(table)
    if tasks["missing"]:
        console.print(f"[red]tasks not committed: {tasks['missing'][:20]} — rerun the same command to finish them")
