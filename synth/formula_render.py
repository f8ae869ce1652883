"""Formulas (or other LaTeX snippets, e.g. tabulars) -> images with pdflatex, many per run, one per page.

`render_formulas` writes one document for a batch (each snippet in a `preview` environment, a page of its
own), runs pdflatex once (no shell escape, files only
readable/writable in its private temp dir, a timeout, a memory cap), crops each page to its ink with
PyMuPDF and pads it. A formula that breaks the run is found (pdflatex's error line names its page; a
culprit not confirmed alone is found by bisection), reported as failed, and the rest is rendered again,
so one bad formula never sinks its batch.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from synth.formulas import FormulaError
from synth.tex_run import ToolTimeout, run_tool

PREAMBLE = r"""\documentclass[12pt]{article}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb,amsfonts,mathtools,bm,array,booktabs,multirow}
\usepackage[active,tightpage]{preview}
\setlength\PreviewBorder{2pt}
\pagestyle{empty}
\begin{document}
"""
CJK_PREAMBLE = r"""\documentclass[12pt]{article}
\usepackage{xeCJK}
\setCJKmainfont{Noto Serif CJK SC}
\usepackage{amsmath,amssymb,amsfonts,mathtools,bm,array,booktabs,multirow}
\usepackage[active,tightpage]{preview}
\setlength\PreviewBorder{2pt}
\pagestyle{empty}
\begin{document}
"""  # for xelatex: Chinese text (Noto CJK, installed by `make install`)
# display-style math, as im2markup renders, in a box: a formula wider than the text stays on one line
FORMULA_PAGE = (r"\begin{preview}\hbox{$\displaystyle", r"$}\end{preview}")
SNIPPET_PAGE = (r"\begin{preview}", r"\end{preview}")  # text-mode material (tabular)
ERROR_LINE = re.compile(r"^l\.(\d+)", re.MULTILINE)
INK_LEVEL = 200  # grey levels below this count as ink
MEMORY_LIMIT = 2 << 30  # bytes of address space for one pdflatex


@dataclass(frozen=True)
class RenderOptions:
    dpi: int = 200
    pad: int = 8  # pixels of white around the ink, as im2markup pads
    timeout_s: float = 60.0
    pdflatex: str = "pdflatex"  # the engine: pdflatex, or xelatex with CJK_PREAMBLE
    preamble: str = PREAMBLE
    page: tuple[str, str] = FORMULA_PAGE  # the lines before and after each snippet


@dataclass
class FormulaImage:
    png: bytes
    width: int
    height: int


@dataclass
class BatchResult:
    images: dict[int, FormulaImage]  # by position in the batch
    failures: dict[int, str]  # position -> reason
    runs: int  # pdflatex invocations spent


class PdflatexFailed(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


def document(formulas: list[str], page: tuple[str, str] = FORMULA_PAGE,
             preamble: str = PREAMBLE) -> tuple[str, list[tuple[int, int]]]:
    """The batch's LaTeX, and each formula's first and last line in it (to map an error line to a formula)."""
    lines = preamble.rstrip("\n").split("\n")
    spans = []
    for formula in formulas:
        body = formula.split("\n")
        first = len(lines) + 1
        lines.append(page[0])
        lines += body
        lines.append(page[1])
        spans.append((first, len(lines)))
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n", spans


def run_pdflatex(source: str, options: RenderOptions) -> bytes:
    """The PDF of `source`, compiled in a private temp dir; `PdflatexFailed` with the error line otherwise."""
    workdir = tempfile.mkdtemp(prefix="docforge-formulas-")
    try:
        with open(os.path.join(workdir, "batch.tex"), "w", encoding="utf-8") as f:
            f.write(source)
        try:
            done = run_tool([options.pdflatex, "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                             "-file-line-error", "batch.tex"], Path(workdir), options.timeout_s, MEMORY_LIMIT)
        except ToolTimeout:
            raise PdflatexFailed(f"pdflatex timed out after {options.timeout_s:g} s", None) from None
        except FileNotFoundError:
            raise FormulaError(f"{options.pdflatex} not found: install TeX Live (make install)") from None
        pdf = os.path.join(workdir, "batch.pdf")
        if done.returncode != 0 or not os.path.exists(pdf):
            log = done.output
            found = re.search(r"batch\.tex:(\d+): (.*)", log) or re.search(r"^! (.*)", log, re.MULTILINE)
            message = found.group(found.lastindex) if found else f"exited with {done.returncode}"
            context = ERROR_LINE.search(log)
            if context:  # pdflatex's `l.N <text up to the error>` line: its end is the offending input
                message += f" at `{log[context.end():].splitlines()[0].strip()[-40:]}`"
            line = int(found.group(1)) if found and found.lastindex == 2 else int(context.group(1)) if context else None
            raise PdflatexFailed(f"pdflatex: {message.strip()}"[:300], line)
        with open(pdf, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def crop_to_ink(pixels: np.ndarray, pad: int) -> Image.Image | None:
    """The greyscale page cropped to its ink and padded with white; None when the page has no ink."""
    ink = pixels < INK_LEVEL
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return None
    crop = pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return Image.fromarray(np.pad(crop, pad, constant_values=255))


def pages_as_images(pdf: bytes, count: int, options: RenderOptions) -> list[Image.Image | None]:
    import pymupdf

    with pymupdf.open("pdf", pdf) as doc:
        if doc.page_count != count:
            raise PdflatexFailed(f"{doc.page_count} pages for {count} formulas", None)
        images = []
        for page in doc:
            pixmap = page.get_pixmap(dpi=options.dpi, colorspace=pymupdf.csGRAY, alpha=False)
            pixels = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.width)
            images.append(crop_to_ink(pixels, options.pad))
    return images


def png_image(image: Image.Image) -> FormulaImage:
    import io

    out = io.BytesIO()
    image.save(out, "PNG", compress_level=3)
    return FormulaImage(out.getvalue(), image.width, image.height)


def render_formulas(formulas: list[str], options: RenderOptions = RenderOptions()) -> BatchResult:
    """Render every formula of the batch; the ones that break pdflatex (or draw nothing) become failures."""
    result = BatchResult({}, {}, 0)
    render_subset(formulas, list(range(len(formulas))), options, result)
    return result


def render_subset(formulas: list[str], positions: list[int], options: RenderOptions, result: BatchResult) -> None:
    while positions:
        source, spans = document([formulas[p] for p in positions], options.page, options.preamble)
        result.runs += 1
        try:
            images = pages_as_images(run_pdflatex(source, options), len(positions), options)
        except PdflatexFailed as failure:
            culprit = culprit_of(failure, spans)
            if culprit is not None and len(positions) > 1:
                if confirm_alone(formulas, positions[culprit], options, result):
                    positions = positions[:culprit] + positions[culprit + 1:]
                    continue
            if len(positions) == 1:
                result.failures[positions[0]] = str(failure)
                return
            middle = len(positions) // 2  # no trustworthy error line: bisect
            render_subset(formulas, positions[:middle], options, result)
            render_subset(formulas, positions[middle:], options, result)
            return
        for position, image in zip(positions, images):
            if image is None:
                result.failures[position] = "renders no ink"
            else:
                result.images[position] = png_image(image)
        return


def culprit_of(failure: PdflatexFailed, spans: list[tuple[int, int]]) -> int | None:
    if failure.line is None:
        return None
    return next((i for i, (first, last) in enumerate(spans) if first <= failure.line <= last), None)


def confirm_alone(formulas: list[str], position: int, options: RenderOptions, result: BatchResult) -> bool:
    """Render the suspected culprit alone: True (and recorded as failed) if it fails by itself too."""
    source, _ = document([formulas[position]], options.page, options.preamble)
    result.runs += 1
    try:
        run_pdflatex(source, options)
    except PdflatexFailed as failure:
        result.failures[position] = str(failure)
        return True
    return False
