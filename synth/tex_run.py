"""How docforge runs TeX programs (pdflatex, xelatex, bibtex, latexmlc) on untrusted LaTeX: doc2md's
paper sources, lifted formulas and tabulars.

Each run gets the paper's private work dir as its cwd and HOME, a wall-clock timeout that kills the whole
process group, a memory cap (RLIMIT_AS), TeX's shell escape off and kpathsea's paranoid file access
(`openin_any=p`, `openout_any=p`: no absolute paths, no `..`), and no stdin.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


class ToolTimeout(Exception):
    """The program ran past its timeout and was killed."""


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    output: str


def limited_child(memory_bytes: int):
    def preexec() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return preexec


def sandbox_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "PERL5LIB")}
    env.update({"HOME": str(workdir), "TMPDIR": str(workdir), "openin_any": "p", "openout_any": "p",
                "shell_escape": "f", "TEXMFOUTPUT": str(workdir), "max_print_line": "10000"})
    return env


def run_tool(command: list[str], workdir: Path, timeout_s: float, memory_bytes: int = 4 << 30,
             env: dict[str, str] | None = None) -> ToolResult:
    """Run `command` in `workdir` under the limits above (`env`: more environment variables); raises
    `ToolTimeout` after `timeout_s` seconds."""
    process = subprocess.Popen(command, cwd=workdir, env=sandbox_env(workdir) | (env or {}), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=limited_child(memory_bytes))
    try:
        out, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ToolTimeout(f"{Path(command[0]).name} timed out after {timeout_s:g} s") from None
    return ToolResult(process.returncode, out.decode("utf-8", errors="replace"))
