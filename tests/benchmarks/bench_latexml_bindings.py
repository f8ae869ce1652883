"""Benchmark: LaTeXML seconds per source with and without docforge's LaTeXML bindings.

Sources: the bundled papers (samples/papers) and one-package documents for the bindings no paper uses
(expl3, siunitx, ctexart, tcolorbox). Each runs `latexmlc` with the flags `latex_to_html` uses, on a
private copy, once with `--path=pipelines/doc2md/latexml_bindings` and (unless --with-only) once without,
under LaTeXML's own --timeout. CPU seconds are the child's user+system time, so other load on a shared
machine inflates wall time only.

    .venv/bin/python tests/benchmarks/bench_latexml_bindings.py [--timeout 150] [--with-only]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAPERS = REPO / "samples" / "papers"
BINDINGS = REPO / "pipelines" / "doc2md" / "latexml_bindings"
XELATEX_PAPERS = {"2601.00003", "2601.00005"}
SINGLE_PACKAGE_SOURCES = {
    "expl3": "\\documentclass{article}\n\\usepackage{expl3}\n\\begin{document}\nHello.\n\\end{document}\n",
    "siunitx": "\\documentclass{article}\n\\usepackage{siunitx}\n\\begin{document}\n"
               "Speed \\SI{3.5}{\\metre\\per\\second} and \\num{1.5e-3}.\n\\end{document}\n",
    "ctexart": "\\documentclass{ctexart}\n\\begin{document}\n\\section{引言}\n扫描文档常常重复出现。\n\\end{document}\n",
    "tcolorbox": "\\documentclass{article}\n\\usepackage{tcolorbox}\n\\begin{document}\n"
                 "\\begin{tcolorbox}[title=Key idea]Boxed text.\\end{tcolorbox}\n\\end{document}\n",
}


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def convert(folder: Path, bindings: bool, xetex: bool, timeout_s: int) -> tuple[float, float, str]:
    """(wall s, CPU s, LaTeXML's status line) for one latexmlc run on a private copy of `folder`."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(folder, work)
        command = ["latexmlc", "--format=html5", "--nodefaultresources", "--mathtex", "--nographicimages",
                   "--nopictureimages", f"--timeout={timeout_s}", "--dest=main.html"]
        if bindings:
            command.append(f"--path={BINDINGS}")
            if xetex:
                command.append("--preload=docforge-xetex.sty")
        started, cpu = time.monotonic(), child_cpu_seconds()
        result = subprocess.run(command + ["main.tex"], cwd=work, capture_output=True, text=True,
                                timeout=timeout_s + 30)
        status = next((line for line in result.stderr.splitlines() if line.startswith("Status:")), "no status")
        return time.monotonic() - started, child_cpu_seconds() - cpu, status


def sources(tmp: Path) -> list[tuple[str, Path, bool]]:
    found = [(paper.name, paper, paper.name in XELATEX_PAPERS) for paper in sorted(PAPERS.glob("2601.*"))]
    for name, text in SINGLE_PACKAGE_SOURCES.items():
        folder = tmp / name
        folder.mkdir()
        (folder / "main.tex").write_text(text, encoding="utf-8")
        found.append((name, folder, name == "ctexart"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=int, default=150, help="LaTeXML's --timeout per run, seconds")
    parser.add_argument("--with-only", action="store_true", help="skip the (slow) runs without the bindings")
    args = parser.parse_args()
    print(f"{'source':<12} {'with: wall s':>12} {'CPU s':>7}  {'without: wall s':>15} {'CPU s':>7}  status without")
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder, xetex in sources(Path(tmp)):
            wall, cpu, _ = convert(folder, True, xetex, args.timeout)
            line = f"{name:<12} {wall:>12.1f} {cpu:>7.1f}"
            if not args.with_only:
                wall_raw, cpu_raw, status = convert(folder, False, xetex, args.timeout)
                line += f"  {wall_raw:>15.1f} {cpu_raw:>7.1f}  {status}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
