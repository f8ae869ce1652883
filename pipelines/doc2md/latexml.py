"""doc2md step 3: LaTeX -> HTML5 with LaTeXML, math kept as TeX, for `html_to_markdown`.

`latexmlc` runs on a private copy of the paper's folder (it writes its log beside the source) through
`synth.tex_run.run_tool` (timeout, memory cap, paranoid TeX file access), with docforge's own LaTeXML bindings
(`latexml_bindings/`, on `--path`) for packages that LaTeXML 0.8.7 would otherwise interpret through
expl3 for minutes, and for acmart (LaTeXML's own binding plus the first-page facts it drops). A paper's own `.sty` files (macros, theorem styles: most arXiv sources ship one) are read
raw, as arXiv's own HTML conversion does (`latexml.sty`'s `localrawstyles`: only files in the paper's folder,
and never in place of a LaTeXML binding), unless one is written in expl3; if LaTeXML fails or times out with
them, the paper is converted once more without. Where the paper's class, `\\bibliographystyle` or natbib options
need it, docforge's own preloads correct LaTeXML's reading (`class_preloads`, `docforge-bibstyle.sty`,
`docforge-natbib.sty`; `docforge-authors.sty` always: `\\And`/`\\AND` separate authors). LaTeXML's server mode
(`latexmls`, for a warm LaTeXML per worker) is not shipped by Debian's latexml package, so every paper
starts a fresh `latexmlc`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

from pipelines.doc2md.unpack import file_class, strip_comments
from synth.tex_run import ToolTimeout, run_tool

BINDINGS_DIR = Path(__file__).with_name("latexml_bindings")
XETEX_PRELOAD = "docforge-xetex.sty"
BIBSTYLE_PRELOAD = "docforge-bibstyle.sty"  # [STYLE]: the .aux's \bibstyle{STYLE}, read at \begin{document}
NATBIB_PRELOAD = "docforge-natbib.sty"  # [OPTIONS]: natbib's options from the paper (`package_options`)
AUTHORS_PRELOAD = "docforge-authors.sty"  # \And and \AND split \author{…} as \and does
LLNCS_PRELOAD = "docforge-llncs.sty"  # theorems numbered across the paper, as llncs without envcountsect
APPENDIX_PRELOAD = "docforge-appendix.sty"  # appendix headings tagged "A", not "Appendix A"
IEEETRAN_PRELOAD = "docforge-ieeetran.sty"  # captions, heading numbers and the appendix as IEEEtran prints them
COMPILE_DATE_PRELOAD = "docforge-compile-date.sty"  # \maketitle without \date prints \today (see latex_to_html)
DATED_CLASSES = {"article", "report"}  # their \maketitle prints \today when the paper sets no \date
SN_NUMBERED_STYLES = {"sn-mathphys-num", "sn-aps", "sn-nature"}  # sn-jnl's reference styles that number
SN_EITHER_STYLES = {"sn-basic", "sn-vancouver", "sn-chicago"}  # number with its `Numbered` option
LETTER_APPENDICES = {"article", "llncs", "acmart", "quantumarticle"}  # classes whose appendix headings print the letter alone
PACKAGE_LOAD = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[([^\]]*)\])?\s*\{([^}]*)\}")
PASSED_OPTIONS = re.compile(r"\\PassOptionsToPackage\s*\{([^}]*)\}\s*\{([^}]*)\}")
BIBLIOGRAPHY_STYLE = re.compile(r"^[^%\n]*\\bibliographystyle\s*\{\s*([\w.-]+)\s*\}", re.MULTILINE)
USE_BBL = "nobibtex"  # latexml.sty options: read the .bbl beside the main file, not the .bib
LOCAL_STYLES = "localrawstyles"  # read the paper's own .sty files
TIMEOUT_GRACE_S = 5
FATAL_LINE = re.compile(r"^(Fatal|Error):")
MAX_REPORTED_LINES = 4
DOCUMENT_BODY = re.compile(r"<article[^>]*>(.*)</article>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
PROGRESS_NOISE = re.compile(r"\s+\(|\s+\d+\.\d+ sec\)")
EXPL3 = re.compile(r"^[^%\n]*\\(?:ExplSyntaxOn|ProvidesExplPackage)", re.MULTILINE)


class LatexmlError(Exception):
    """LaTeXML could not turn a paper into HTML; the message names the file and the cause."""


def latexmlc_command(main_tex: str, html_name: str, timeout_s: float, preloads: list[str],
                     latexml_options: list[str]) -> list[str]:
    """latexmlc's command line: docforge's bindings on the path, `preloads` (`[options]name.sty`) and
    `latexml.sty`'s own options (`nobibtex`, `localrawstyles`)."""
    command = ["latexmlc", "--format=html5", "--nodefaultresources", "--mathtex", "--nographicimages",
               "--nopictureimages", "--nocomments", f"--path={BINDINGS_DIR}", f"--timeout={max(1, round(timeout_s))}",
               f"--dest={html_name}"]
    command += [f"--preload={preload}" for preload in preloads]
    if latexml_options:
        command.append(f"--preload=[{','.join(latexml_options)}]latexml.sty")
    return command + [main_tex]


def copy_source(source_dir: Path, workdir: Path) -> None:
    """Copy the paper's regular files (links are left behind: they could point outside the paper)."""
    for path in sorted(source_dir.rglob("*")):
        target = workdir / path.relative_to(source_dir)
        if path.is_symlink():
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def failure_lines(log: str) -> str:
    """LaTeXML's own Fatal/Error lines (with the indented line after each, which says where), for a message."""
    lines = log.splitlines()
    picked = []
    for i, line in enumerate(lines):
        if FATAL_LINE.match(line):
            detail = lines[i + 1] if i + 1 < len(lines) and lines[i + 1][:1].isspace() else ""
            picked.append(PROGRESS_NOISE.split(f"{line.strip()} {detail.strip()}".strip())[0])
    fatal = [line for line in picked if line.startswith("Fatal")]
    chosen = (fatal or picked)[:MAX_REPORTED_LINES]
    return "; ".join(chosen) if chosen else (lines[-1].strip() if lines else "no output")


def is_empty_document(html: str) -> bool:
    """True when LaTeXML's HTML has no text in its document (e.g. it ignored a binary input)."""
    body = DOCUMENT_BODY.search(html)
    return body is None or not TAG.sub("", body.group(1)).strip()


def latex_to_html(source_dir: str | Path, main_tex: str, *, timeout_s: float = 300, engine_hint: str | None = None,
                  memory_bytes: int = 4 << 30, work_root: str | Path | None = None, today: date | None = None,
                  compile_date_printed: bool = False) -> str:
    """The HTML5 text LaTeXML makes of `source_dir/main_tex` (math as TeX in `ltx_Math` spans).

    `today` is the date `\\today` prints (the day the paper's PDF was made: `\\date{\\today}` is common; LaTeXML
    would print the day of the conversion), through LaTeXML's `SOURCE_DATE_EPOCH`. `compile_date_printed` says the
    PDF's title block shows that day: an article's or report's `\\maketitle` prints `\\today` when the paper sets no
    `\\date`, which LaTeXML does not write (the conference styles' `\\maketitle`s print none, hence the PDF's word).

    `engine_hint="xelatex"` makes `\\ifxetex` true, as xelatex would. A `.bbl` beside the main file is used
    instead of LaTeXML's own BibTeX processing, so the references read as the PDF prints them. The paper's
    own `.sty` files are read (and, should LaTeXML fail with them, the paper is converted without). The private
    copy lives in a temp dir under `work_root` (the system's temp dir by default) and is removed afterwards.
    Raises `LatexmlError` on a timeout, a fatal LaTeXML error, no HTML, or an empty document (LaTeXML
    ignores a binary input, for one).
    """
    source_dir = Path(source_dir)
    if not (source_dir / main_tex).is_file():
        raise LatexmlError(f"{main_tex}: no such file in {source_dir}")
    html_name = Path(main_tex).with_suffix(".html").name
    with tempfile.TemporaryDirectory(prefix="docforge-latexml-", dir=work_root) as tmp:
        workdir = Path(tmp) / "source"
        workdir.mkdir()
        copy_source(source_dir, workdir)
        preloads = [AUTHORS_PRELOAD] + ([XETEX_PRELOAD] if engine_hint == "xelatex" else [])
        if style := bibliography_style(workdir, main_tex):
            preloads.append(f"[{style}]{BIBSTYLE_PRELOAD}")
        class_options, class_name = file_class(workdir / main_tex)
        natbib = package_options(workdir / main_tex).get("natbib", []) + sorted(class_natbib_options(class_options,
                                                                                                       class_name))
        if natbib:
            preloads.append(f"[{','.join(natbib)}]{NATBIB_PRELOAD}")
        preloads += class_preloads(class_options, class_name, compile_date_printed)
        options = [USE_BBL] if (source_dir / main_tex).with_suffix(".bbl").is_file() else []
        env = {"SOURCE_DATE_EPOCH": str(int(datetime(today.year, today.month, today.day, 12, tzinfo=timezone.utc)
                                            .timestamp()))} if today else {}
        if readable_local_styles(workdir):
            with_styles = latexmlc_command(main_tex, html_name, timeout_s, preloads, options + [LOCAL_STYLES])
            try:
                return run_latexmlc(with_styles, workdir, main_tex, html_name, timeout_s, memory_bytes, env)
            except LatexmlError:
                pass  # converted once more without them
        return run_latexmlc(latexmlc_command(main_tex, html_name, timeout_s, preloads, options), workdir, main_tex,
                            html_name, timeout_s, memory_bytes, env)


def class_preloads(options: str, name: str, compile_date_printed: bool = False) -> list[str]:
    """docforge's corrections to LaTeXML's binding of the paper's class: llncs numbers theorems within
    sections only with `envcountsect`; article, llncs and acmart print an appendix heading's letter alone;
    IEEEtran's captions, headings and appendix; the compile date an article's title shows (see `latex_to_html`).
    `options` and `name`: the paper's `\\documentclass` (`unpack.file_class`)."""
    preloads = [APPENDIX_PRELOAD] if name in LETTER_APPENDICES else []
    if compile_date_printed and name in DATED_CLASSES:
        preloads.append(COMPILE_DATE_PRELOAD)
    if name == "llncs" and "envcountsect" not in options:
        preloads.append(LLNCS_PRELOAD)
    if name == "IEEEtran":
        preloads.append(IEEETRAN_PRELOAD)
    return preloads


def class_natbib_options(options: str, name: str) -> set[str]:
    """The natbib options the class `name` (loaded with `options`) gives it: sn-jnl loads natbib with
    `sort&compress` for its numbered reference styles (sn-mathphys-num, sn-aps, sn-nature; sn-basic, sn-vancouver,
    sn-chicago with `Numbered`)."""
    given = {option.strip() for option in options.split(",")}
    if name == "sn-jnl" and (given & SN_NUMBERED_STYLES or (given & SN_EITHER_STYLES and "Numbered" in given)):
        return {"sort&compress"}
    return set()


def package_options(main: Path) -> dict[str, list[str]]:
    """Each package the paper loads or passes options to in its main file and its own `.sty` files
    (`\\usepackage[…]`, `\\RequirePackage[…]`, `\\PassOptionsToPackage{…}`), with the options given it there
    (read once for all packages). LaTeXML 0.8.7 loses the passed ones (see `docforge-natbib.sty`)."""
    found: dict[str, list[str]] = {}
    for path in [main] + sorted(path for path in main.parent.rglob("*.sty") if path.is_file()):
        text = strip_comments(path.read_text("utf-8", errors="replace"))
        for match in [*PACKAGE_LOAD.finditer(text), *PASSED_OPTIONS.finditer(text)]:
            options = [option.strip() for option in (match.group(1) or "").split(",") if option.strip()]
            for package in (name.strip() for name in match.group(2).split(",")):
                found[package] = list(dict.fromkeys(found.get(package, []) + options))
    return found


def bibliography_style(workdir: Path, main_tex: str) -> str | None:
    """The `\\bibliographystyle` the paper names (its main file first, then its other `.tex` files)."""
    main = workdir / main_tex
    for path in [main] + sorted(p for p in workdir.rglob("*.tex") if p != main):
        if path.is_file() and (found := BIBLIOGRAPHY_STYLE.search(path.read_text("utf-8", errors="replace"))):
            return found.group(1)
    return None


def readable_local_styles(workdir: Path) -> bool:
    """Whether the paper has `.sty` files of its own and LaTeXML can read them: none is written in expl3
    (`\\ExplSyntaxOn`), which LaTeXML 0.8.7 interprets raw for minutes (FACTS.md)."""
    styles = [path for path in workdir.rglob("*.sty") if path.is_file()]
    return bool(styles) and not any(EXPL3.search(path.read_text("utf-8", errors="replace")) for path in styles)


def run_latexmlc(command: list[str], workdir: Path, main_tex: str, html_name: str, timeout_s: float,
                 memory_bytes: int, env: dict[str, str]) -> str:
    """One latexmlc run of `command` in `workdir` (`env`: more environment): the HTML, or `LatexmlError`."""
    try:
        result = run_tool(command, workdir, timeout_s * 1.1 + TIMEOUT_GRACE_S, memory_bytes, env)
    except ToolTimeout:
        raise LatexmlError(f"{main_tex}: latexmlc timed out after {timeout_s:g} s") from None
    html_path = workdir / html_name
    log = result.output.replace(f"{workdir}/", "")
    if "Fatal:timeout" in log:
        raise LatexmlError(f"{main_tex}: latexmlc timed out after {timeout_s:g} s")
    if result.returncode != 0 or not html_path.is_file():
        raise LatexmlError(f"{main_tex}: latexmlc failed (exit {result.returncode}): {failure_lines(log)}")
    html = html_path.read_text("utf-8", errors="replace")
    if is_empty_document(html):
        raise LatexmlError(f"{main_tex}: latexmlc produced an empty document: {failure_lines(log)}")
    return html
