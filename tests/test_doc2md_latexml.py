"""doc2md's LaTeXML step: real latexmlc with docforge's bindings on the shipped papers and small sources."""

import datetime
import time
from pathlib import Path

import pymupdf
import pytest

from pipelines.doc2md.compile import compile_pdf
from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import LatexmlError, latex_to_html
from pipelines.doc2md.pages import first_page_prints, pdf_creation_date

PAPERS = Path(__file__).resolve().parents[1] / "samples" / "papers"


def write_tex(folder: Path, name: str, body: str, preamble: str = "", documentclass: str = "article") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"\\documentclass{{{documentclass}}}\n{preamble}\n\\begin{{document}}\n{body}\n"
                               "\\end{document}\n", encoding="utf-8")
    return folder


def test_lipsum_and_xparse_paper_converts_in_seconds_with_the_bindings():
    started = time.monotonic()
    html = latex_to_html(PAPERS / "2601.00004", "main.tex", timeout_s=120)
    assert time.monotonic() - started < 30
    assert "Lorem ipsum dolor sit amet, consectetuer adipiscing elit." in html
    assert "ltx_ERROR" not in html
    assert "between 4\u00a0pages and 11\u00a0pages of output" in html  # \NewDocumentCommand, O{pages} argument
    assert "ltx_font_smallcaps\">Fold</span>" in html


def test_siunitx_basic_forms_become_math(tmp_path):
    source = write_tex(tmp_path, "si.tex", r"Speed \SI{3.5}{\metre\per\second}, \si{\kilo\hertz}, \num{1.5e-3}, "
                       r"\SI{12}{\square\kilo\metre} and \SI{20}{\percent}.", preamble=r"\usepackage{siunitx}")
    html = latex_to_html(source, "si.tex", timeout_s=60)
    assert r"3.5\,\mathrm{m}\,\mathrm{s}^{-1}" in html
    assert r"\mathrm{kHz}" in html
    assert r"1.5\times 10^{-3}" in html
    assert r"12\,\mathrm{km}^{2}" in html
    assert "ltx_ERROR" not in html


def test_unicode_math_fonts_are_accepted_and_alphabets_map_to_classic_ones(tmp_path):
    source = write_tex(tmp_path, "um.tex", r"Hello $\symbf{x}^2 + \symbb{R} + \symbfit{v}$.",
                       preamble="\\usepackage{unicode-math}\n\\setmathfont{Latin Modern Math}")
    html = latex_to_html(source, "um.tex", timeout_s=60, engine_hint="xelatex")
    assert r"\mathbf{x}^{2}+\mathbb{R}+\boldsymbol{v}" in html
    assert "ltx_ERROR" not in html


def test_tcolorbox_boxes_keep_their_titles_and_text(tmp_path):
    source = write_tex(tmp_path, "box.tex",
                       "\\begin{tcolorbox}[colback=blue!5,title={Key idea}]Boxed text.\\end{tcolorbox}\n"
                       "\\begin{notebox}{Caveat}Second box.\\end{notebox}",
                       preamble="\\usepackage{tcolorbox}\n\\tcbuselibrary{skins,breakable}\n"
                                "\\newtcolorbox{notebox}[1]{colback=gray!10,title=#1}")
    html = latex_to_html(source, "box.tex", timeout_s=60)
    assert "ltx_ERROR" not in html
    assert html.index("Key idea") < html.index("Boxed text.") < html.index("Caveat") < html.index("Second box.")


def test_ctexart_class_keeps_chinese_text_and_names(tmp_path):
    source = write_tex(tmp_path, "zh.tex", "\\begin{abstract}本文研究文档去重。\\end{abstract}\n"
                       "\\section{引言}\n扫描文档常常重复出现。\\begin{table}[h]\\caption{结果}\\end{table}",
                       documentclass="ctexart")
    started = time.monotonic()
    html = latex_to_html(source, "zh.tex", timeout_s=60, engine_hint="xelatex")
    assert time.monotonic() - started < 30
    assert "摘要" in html and "引言" in html and "扫描文档常常重复出现。" in html
    assert "表 1" in html
    assert "ltx_ERROR" not in html


def test_xelatex_hint_takes_the_xetex_branch(tmp_path):
    source = write_tex(tmp_path, "engine.tex", r"\ifxetex XETEXBRANCH\else PDFTEXBRANCH\fi",
                       preamble=r"\usepackage{iftex}")
    plain = latex_to_html(source, "engine.tex", timeout_s=60)
    xetex = latex_to_html(source, "engine.tex", timeout_s=60, engine_hint="xelatex")
    assert "PDFTEXBRANCH" in plain and "XETEXBRANCH" not in plain
    assert "XETEXBRANCH" in xetex and "PDFTEXBRANCH" not in xetex


def test_conversion_leaves_no_files_beside_the_source_or_in_the_work_root(tmp_path):
    source = write_tex(tmp_path / "paper", "main.tex", "Hello world.")
    work_root = tmp_path / "work"
    work_root.mkdir()
    html = latex_to_html(source, "main.tex", timeout_s=60, work_root=work_root)
    assert "Hello world." in html
    assert sorted(p.name for p in source.iterdir()) == ["main.tex"]  # no log or HTML beside the source
    assert list(work_root.iterdir()) == []  # the private copy is gone


def test_latex_that_loops_forever_is_an_error_within_the_timeout(tmp_path):
    source = write_tex(tmp_path, "loop.tex", r"Before. \loop\iftrue\repeat")
    started = time.monotonic()
    with pytest.raises(LatexmlError, match=r"loop\.tex: latexmlc timed out after 4 s"):
        latex_to_html(source, "loop.tex", timeout_s=4)
    assert time.monotonic() - started < 4 * 1.1 + 5 + 3


def test_binary_input_is_a_clear_error(tmp_path):
    (tmp_path / "main.tex").write_bytes(b"\x00\xff\xfe\x00 not latex \x00\x01\x02" * 20)
    with pytest.raises(LatexmlError, match=r"main\.tex: latexmlc produced an empty document: .*binary"):
        latex_to_html(tmp_path, "main.tex", timeout_s=60)


def test_missing_main_file_is_a_clear_error(tmp_path):
    with pytest.raises(LatexmlError, match=r"nope\.tex: no such file"):
        latex_to_html(tmp_path, "nope.tex")


MACROS_STY = r"""\ProvidesPackage{mymacros}
\RequirePackage{amsmath,amsthm}
\newcommand{\method}{RouteAttn}
\newcommand{\vect}[1]{\mathbf{#1}}
\DeclareMathOperator{\rank}{rank}
\newtheorem{lemma}{Lemma}
"""


def test_the_papers_own_style_file_is_read(tmp_path):
    """Macros, operators and theorems defined in the paper's own .sty (no LaTeXML binding has them)."""
    source = write_tex(tmp_path, "main.tex", r"\method{} routes each query \(\vect{q}_i\) with \(\rank(A)\)."
                       "\n\\begin{lemma}The router converges.\\end{lemma}", preamble=r"\usepackage{mymacros}")
    (source / "mymacros.sty").write_text(MACROS_STY)
    html = latex_to_html(source, "main.tex", timeout_s=60)
    assert "RouteAttn routes each query" in html
    assert r"\mathbf{q}_{i}" in html and r"\operatorname{rank}" in html
    assert "Lemma 1" in html
    assert "ltx_ERROR" not in html


def test_a_style_file_in_expl3_is_not_read_raw(tmp_path):
    """LaTeXML 0.8.7 would interpret expl3 for minutes: such a .sty is left out, the paper converts at once."""
    source = write_tex(tmp_path, "main.tex", r"Hello world, \method.", preamble=r"\usepackage{modern}")
    (source / "modern.sty").write_text("\\ProvidesExplPackage{modern}{2024/01/01}{1.0}{x}\n"
                                       "\\cs_new:Npn \\method {RouteAttn}\n")
    started = time.monotonic()
    html = latex_to_html(source, "main.tex", timeout_s=60)
    assert time.monotonic() - started < 20
    assert "Hello world," in html


def test_a_style_file_latexml_cannot_get_through_is_left_out_on_a_second_run(tmp_path):
    source = write_tex(tmp_path, "main.tex", "Hello world.", preamble=r"\usepackage{stuck}")
    (source / "stuck.sty").write_text("\\loop\\iftrue\\repeat\n")
    started = time.monotonic()
    html = latex_to_html(source, "main.tex", timeout_s=4)
    assert "Hello world." in html
    assert time.monotonic() - started < 4 * 1.1 + 5 + 20


LLNCS_TEX = r"""\documentclass[OPTIONS]{llncs}
\begin{document}
\section{One}
\begin{theorem}First.\end{theorem}
\section{Two}
\begin{theorem}Second.\end{theorem}
\begin{lemma}A lemma.\end{lemma}
\end{document}
"""


@pytest.mark.parametrize("options, numbers", [("", ["Theorem 1", "Theorem 2", "Lemma 1"]),
                                               ("envcountsect", ["Theorem 1.1", "Theorem 2.1", "Lemma 1"])])
def test_llncs_theorems_are_numbered_as_its_options_say(tmp_path, options, numbers):
    """llncs numbers theorems across the paper ("Theorem 1"), within sections only with `envcountsect`;
    LaTeXML's binding always did the latter."""
    import re

    (tmp_path / "main.tex").write_text(LLNCS_TEX.replace("OPTIONS", options))
    html = latex_to_html(tmp_path, "main.tex", timeout_s=60)
    assert re.findall(r'ltx_tag_theorem">([^<]*?)\.?<', html) == numbers


@pytest.mark.parametrize("documentclass, preamble, heading", [("article", "", "A Proofs"),
                                                               ("article", "\\usepackage[english]{babel}", "A Proofs"),
                                                               ("amsart", "", "Appendix A Proofs")])
def test_an_appendix_heading_reads_as_its_class_prints_it(tmp_path, documentclass, preamble, heading):
    """article prints "A Proofs" (LaTeXML wrote "Appendix A Proofs" for every class; babel's captions restored
    `\\appendixname` at `\\begin{document}`); amsart "Appendix A"."""
    from pipelines.doc2md.html_to_markdown import html_to_markdown

    source = write_tex(tmp_path, "main.tex", "\\section{Intro}\nText.\n\\appendix\n\\section{Proofs}\nMore.",
                       preamble=preamble, documentclass=documentclass)
    markdown = html_to_markdown(latex_to_html(source, "main.tex", timeout_s=60))
    assert f"\n## {heading}\n" in markdown, markdown


def test_an_article_figure_caption_reads_figure_colon(tmp_path):
    from pipelines.doc2md.html_to_markdown import html_to_markdown

    figure = "\\begin{figure}[h]\\centering\\fbox{Plot}\\caption{Gauge drift.}\\end{figure}\nText."
    source = write_tex(tmp_path, "main.tex", figure)
    markdown = html_to_markdown(latex_to_html(source, "main.tex", timeout_s=60))
    assert markdown.split("\n\n")[0] == "Figure 1: Gauge drift.", markdown


CAPTIONS_BODY = r"""\begin{document}
\begin{figure}[h]\centering\fbox{Plot}\caption{Gauge drift.}\end{figure}
\begin{table}[h]\centering\caption{Accuracy of the heads.}\begin{tabular}{cc}a & b\end{tabular}\end{table}
Text.
\end{document}"""


@pytest.mark.parametrize("preamble", [
    "\\usepackage[labelsep=period]{caption}",
    "\\usepackage{caption}\n\\captionsetup[figure]{name=Fig.,labelsep=endash}",
    "\\usepackage[font=small,labelfont=bf]{caption}\n\\captionsetup{labelsep=space}\n"
    "\\captionsetup[table]{labelformat=empty}",
    "\\usepackage{subcaption}"])
def test_captions_read_as_the_caption_package_sets_them(tmp_path, preamble):
    """The caption lines pdflatex prints are the markdown's caption blocks: the caption package's label separator,
    float name and empty label format, from its options and `\\captionsetup` (LaTeXML ignored them all)."""
    (tmp_path / "main.tex").write_text(f"\\documentclass{{article}}\n{preamble}\n{CAPTIONS_BODY}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "captions-test")
    printed = pymupdf.open(pdf)[0].get_text().split("\n")[1:3]
    blocks = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)).split("\n\n")
    assert blocks[:2] == printed, (blocks, printed)


IEEETRAN_BODY = r"""\section{Intro}
Text.
\begin{figure}[h]\centering\fbox{Plot}\caption{Gauge drift.}\end{figure}
\begin{table}[h]\centering\caption{Accuracy of the heads}\begin{tabular}{cc}a & b\\ 1 & 2\end{tabular}\end{table}
\subsection{Setup}
More.
\subsubsection{Detail}
Even more.
\paragraph{Para} Last.
\appendix
\section{Proofs}
Proof text."""


@pytest.mark.parametrize("head, printed", [
    ("\\documentclass{IEEEtran}",
     ["## I. Intro", "Fig. 1. Gauge drift.", "TABLE I Accuracy of the heads", "### A. _Setup_", "#### 1) Detail",
      "##### a) Para"]),
    ("\\documentclass[compsoc]{IEEEtran}",
     ["## 1 Intro", "Fig. 1. Gauge drift.", "TABLE 1 Accuracy of the heads", "### 1.1 _Setup_", "#### 1.1.1 Detail",
      "##### 1.1.1.1 Para"]),
    ("\\documentclass[compsoc,conference]{IEEEtran}",
     ["## 1. Intro", "Figure 1. Gauge drift.", "TABLE 1. Accuracy of the heads", "### 1.1. _Setup_",
      "#### 1.1.1. Detail", "##### Para"]),
    ("\\documentclass[conference]{IEEEtran}\n\\usepackage{subcaption}",
     ["## I. Intro", "Fig. 1: Gauge drift.", "TABLE I: Accuracy of the heads", "### A. _Setup_", "#### 1) Detail",
      "##### a) Para"])])
def test_ieeetran_captions_headings_and_appendix_read_as_ieeetran_prints_them(tmp_path, head, printed):
    r"""What pdflatex prints with IEEEtran.cls in each mode: "Fig. 1. …"; "TABLE I" over the caption (no colon);
    headings numbered "I.", "A.", "1)", "a)" (LaTeXML wrote "Figure 1: …", "TABLE I: …", "I-A", "I-A1" and no
    paragraph number); a single `\appendix` is one "Appendix" heading and the title of the `\section` after it
    is not printed. The caption package (subcaption loads it) sets "Fig. 1: …" and "TABLE I: …" on one line."""
    from pipelines.doc2md.html_to_markdown import html_to_markdown

    (tmp_path / "main.tex").write_text(f"{head}\n\\begin{{document}}\n{IEEETRAN_BODY}\n\\end{{document}}\n")
    blocks = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)).split("\n\n")
    assert blocks[:4] == printed[:1] + ["Text."] + printed[1:3], blocks
    assert [block for block in blocks if block.startswith("#")] == [printed[0]] + printed[3:] + ["## Appendix"], blocks
    assert blocks[-1].strip() == "Proof text."


def test_ieeetran_appendices_are_numbered(tmp_path):
    from pipelines.doc2md.html_to_markdown import html_to_markdown

    source = write_tex(tmp_path, "main.tex", "\\section{Intro}\nText.\n\\appendices\n\\section{Proofs}\nA.\n"
                       "\\section{Data}\nB.", documentclass="IEEEtran")
    markdown = html_to_markdown(latex_to_html(source, "main.tex", timeout_s=60))
    assert "\n## Appendix A Proofs\n" in markdown and "\n## Appendix B Data\n" in markdown, markdown


@pytest.mark.parametrize("date, printed", [("", True), ("\\date{}", False), ("\\date{Spring 2020}", False)])
def test_an_article_without_a_date_shows_the_day_its_pdf_was_made(tmp_path, date, printed):
    """article's `\\maketitle` prints `\\today` when the paper sets no `\\date` (LaTeXML printed none): the PDF's first
    page shows the day it was made, and so does the markdown, under the author; `\\date{}` prints no date, a given
    date itself only."""
    (tmp_path / "main.tex").write_text(f"\\documentclass{{article}}\n\\title{{Gauges}}\n\\author{{Ann Lee}}\n{date}\n"
                                       "\\begin{document}\n\\maketitle\nText.\n\\end{document}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "dated-test")
    doc = pymupdf.open(pdf)
    made = pdf_creation_date(doc)
    assert first_page_prints(doc, made) == printed
    day = f"{made:%B} {made.day}, {made.year}"
    blocks = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60, today=made,
                                            compile_date_printed=True)).split("\n\n")
    assert blocks[:3] == ["# Gauges", "Ann Lee", day] if printed else day not in blocks, blocks
    assert ("Spring 2020" in blocks) == ("Spring" in date)


def test_today_prints_the_day_the_pdf_was_made(tmp_path):
    """`\\date{\\today}` (REVTeX papers' habit) prints the day pdfTeX made the PDF, which its creationDate keeps;
    LaTeXML would print the day of the conversion."""
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\title{T}\n\\author{A}\n\\date{\\today}\n"
                                       "\\begin{document}\n\\maketitle\nText.\n\\end{document}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "today-test")
    doc = pymupdf.open(pdf)
    doc.set_metadata({**doc.metadata, "creationDate": "D:20210303101500+01'00'"})
    made = pdf_creation_date(pymupdf.open(stream=doc.tobytes(), filetype="pdf"))
    assert made == datetime.date(2021, 3, 3)
    assert "March 3, 2021" in html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60, today=made))
    doc.set_metadata({**doc.metadata, "creationDate": "not a date"})
    assert pdf_creation_date(pymupdf.open(stream=doc.tobytes(), filetype="pdf")) is None


def test_a_tie_in_a_formula_stays_a_tie_with_babel(tmp_path):
    """babel makes `~` active and LaTeXML wrote a formula's `~` as `\\leavevmode\\nobreak\\ `, which KaTeX and
    MathJax cannot read (`$10^{-4}~M_\\odot$`, astro papers' habit)."""
    source = write_tex(tmp_path, "main.tex", "Mass $10^{-4}~M_\\odot$ and\n\\[a~b\\]", "\\usepackage[english]{babel}")
    markdown = html_to_markdown(latex_to_html(source, "main.tex", timeout_s=60))
    assert "\\(10^{-4}~M_{\\odot}\\)" in markdown and "\\[a~b\\]" in markdown, markdown
