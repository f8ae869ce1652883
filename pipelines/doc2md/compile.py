"""doc2md step 2: check a paper's LaTeX for escapes, pick its engine, and compile it to PDF when it has none.

The paper's own PDF is used when the input has one (as Nougat did with arXiv's). Otherwise pdflatex (or
xelatex for ctex/xeCJK/fontspec papers) runs in the paper's private work dir through `synth.tex_run.run_tool`:
no shell escape, paranoid file access, a timeout, bibtex when the source has a `.bib` but no `.bbl`, and
reruns while LaTeX asks for them. Before anything runs (LaTeXML included, which has no file guard of its
own), `check_source` refuses sources that ask for the shell or read files outside their folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.doc2md.markdown_writer import CitationForm
from pipelines.doc2md.latexml import class_natbib_options, package_options
from synth.tex_run import ToolTimeout, run_tool
from pipelines.doc2md.unpack import file_class, strip_comments
from pipelines.job import InputError

SOURCE_SUFFIXES = (".tex", ".sty", ".cls", ".bbl", ".def", ".cfg", ".ltx", ".clo")
SHELL_ESCAPE = re.compile(r"\\(?:immediate\s*)?\\?write\s*18|\\ShellEscape|\\shellescape")
FILE_COMMANDS = re.compile(
    r"\\(input|include|InputIfFileExists|IfFileExists|includegraphics|includepdf|bibliography|addbibresource|"
    r"lstinputlisting|verbatiminput|VerbatimInput|import|subimport|inputminted|openin\s*\d*\s*=?|"
    r"includeonly|usepackage|RequirePackage|documentclass|LoadClass)\b\s*(?:\[[^\]]*\]\s*)*(?:\{([^}]*)\}|([^\s{}\\%]+))")
XELATEX_HINTS = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{[^}]*\b(?:xeCJK|ctex|fontspec|unicode-math|"
                           r"xltxtra|polyglossia)\b|\\documentclass\s*(?:\[[^\]]*\])?\s*\{ctex(?:art|rep|book|beamer)\}|"
                           r"%\s*!\s*TEX\s+(?:TS-)?program\s*=\s*xelatex", re.IGNORECASE)
CONTROL_SEQUENCE = re.compile(r"\\[A-Za-z@]+")
RERUN = re.compile(r"Rerun to get|Label\(s\) may have changed|There were undefined references|Please rerun")
MAX_RUNS = 4


def unsafe_path(path: str) -> bool:
    path = path.strip()
    return path.startswith(("/", "~", "|", "\\")) or ".." in re.split(r"[/\\]", path) or ":" in path[:3]


def defined_safely(text: str, name: str) -> bool:
    """Whether `name` is one control sequence that `text` defines (`\\def`, `\\newcommand`, …) only as names inside
    the folder: emulateapj.cls loads `\\LoadClass{\\@revtex@cls}` after `\\def\\@revtex@cls{revtex4-1}`."""
    if not CONTROL_SEQUENCE.fullmatch(name := name.strip()):
        return False
    values = re.findall(r"\\(?:[gex]?def|(?:re|provide)?newcommand\*?)\s*\{?\s*" + re.escape(name)
                        + r"(?![A-Za-z@])\s*\}?\s*\{([^{}]*)\}", text)
    return bool(values) and not any(unsafe_path(part) or "\\" in part for value in values for part in value.split(","))


def check_source(root: Path, paper: str, main_tex: Path | None = None) -> None:
    """Refuse a source that asks for shell escape or names a file outside its folder (`InputError`). When the
    main file's `.bbl` is there, the `\\bibliography` names are not read (neither TeX nor LaTeXML opens a
    `.bib` then), so an author's own absolute path there (`\\bibliography{/Users/me/refs}`) is let be."""
    unread = {"bibliography", "addbibresource"} if main_tex and main_tex.with_suffix(".bbl").is_file() else set()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in SOURCE_SUFFIXES:
            continue
        text = strip_comments(path.read_text("utf-8", errors="replace"))
        rel = path.relative_to(root)
        if SHELL_ESCAPE.search(text):
            raise InputError(paper, "check source", f"paper {paper}: {rel} asks for shell escape (\\write18); refused")
        for match in FILE_COMMANDS.finditer(text):
            if match.group(1) in unread:
                continue
            argument = match.group(2) if match.group(2) is not None else match.group(3)
            for name in (argument or "").split(","):
                if unsafe_path(name) and not defined_safely(text, name):
                    raise InputError(paper, "check source", f"paper {paper}: {rel} reads {name.strip()!r} with "
                                     f"\\{match.group(1).split()[0]}, outside the paper's folder; refused")


def choose_engine(main_tex: Path) -> str:
    text = main_tex.read_text("utf-8", errors="replace")
    return "xelatex" if XELATEX_HINTS.search(text) else "pdflatex"


def citation_form(main_tex: Path) -> CitationForm:
    """How the paper prints numeric citations of several works: the `cite` package sorts them and makes
    runs of three or more a range unless told `nosort`/`nocompress`; natbib does with `sort`/`compress`/
    `sort&compress`. The options are those the main file and the paper's own `.sty` files give (`cvpr.sty`
    loads natbib with `sort&compress`; NeurIPS papers pass it `compress`) and its class gives."""
    options = package_options(main_tex)
    natbib = set(options.get("natbib", [])) | class_natbib_options(*file_class(main_tex))
    cite = options.get("cite")
    sort = (cite is not None and "nosort" not in cite) or bool(natbib & {"sort", "sort&compress"})
    compress = (cite is not None and "nocompress" not in cite) or bool(natbib & {"compress", "sort&compress"})
    return CitationForm(sort, compress)


def needs_bibtex(root: Path, main_tex: Path) -> bool:
    text = strip_comments(main_tex.read_text("utf-8", errors="replace"))
    return (bool(re.search(r"\\bibliography\s*\{", text)) and not main_tex.with_suffix(".bbl").exists()
            and any(root.rglob("*.bib")))


def last_errors(log: str, count: int = 3) -> str:
    """The first LaTeX error lines of a log (`! ...` or `file:line: ...`), else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.startswith("!") or re.match(r"^\S+:\d+: ", line)]
    if lines:
        return "; ".join(lines[:count])
    tail = log.strip().splitlines()
    return tail[-1] if tail else "no output"


def read_aux(main_tex: Path) -> bytes:
    aux = main_tex.with_suffix(".aux")
    return aux.read_bytes() if aux.exists() else b""


def compile_pdf(root: Path, main_tex: Path, paper: str, timeout_s: float = 120.0) -> tuple[Path, str]:
    """Compile `main_tex` (inside `root`) to PDF; returns the PDF path and the engine. A PDF that LaTeX
    produced despite recoverable errors is kept (pages that came out wrong fail the page matching later)."""
    engine = choose_engine(main_tex)
    command = [engine, "-no-shell-escape", "-interaction=nonstopmode", "-file-line-error", main_tex.name]
    workdir = main_tex.parent
    pdf = main_tex.with_suffix(".pdf")
    log = ""
    try:
        for run in range(MAX_RUNS):
            aux_before = read_aux(main_tex)
            log = run_tool(command, workdir, timeout_s).output
            if run == 0 and needs_bibtex(root, main_tex):
                run_tool(["bibtex", main_tex.stem], workdir, timeout_s)
                continue
            # as latexmk: a changed .aux is read on the next run (elsarticle's e-mail footnote, acmart's page
            # count) even when LaTeX asks for no rerun
            if not RERUN.search(log) and read_aux(main_tex) == aux_before:
                break
    except ToolTimeout as exn:
        raise InputError(paper, "compile", f"paper {paper}: {exn}", exception="Timeout") from exn
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise InputError(paper, "compile", f"paper {paper}: {engine} made no PDF: {last_errors(log)}")
    return pdf, engine
