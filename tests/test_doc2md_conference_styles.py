"""doc2md on the ML/NLP conference styles' front matter and citations: real latexmlc with docforge's bindings and
the real markdown writer. The conference .sty files are not installed (nor shipped): a paper here carries a
stand-in for its style that does what the real one does to LaTeXML when read raw, and the markdown is checked
against what the real style prints (quoted)."""

from pathlib import Path

import pymupdf
import pytest

from pipelines.doc2md.compile import citation_form, compile_pdf
from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html, package_options
from pipelines.doc2md.markdown_writer import CitationForm

# acl.sty (acl-org/acl-style-files) redefines \maketitle in \AtBeginDocument (as \twocolumn[\@maketitle]), which
# LaTeXML obeys when it reads the style raw: the title then came out twice.
NEW_ACL_STYLE = "\\AtBeginDocument{\\def\\maketitle{\\par{\\Large\\bf \\@title \\par}}}\n"
# The styles up to 2021 (acl2020.sty, acl2021.sty, …): a review copy unless the paper says \aclfinalcopy; its
# \outauthor prints "\bf Anonymous ACL-IJCNLP submission" (acl2021.sty) in place of the authors.
OLD_ACL_STYLE = r"""\newif\ifaclfinal
\def\aclfinalcopy{\global\aclfinaltrue}
\newcommand\outauthor{\begin{tabular}[t]{c}
  \ifaclfinal \bf\@author
  \else
    \bf Anonymous ACL-IJCNLP submission
  \fi
\end{tabular}}
"""

ACL_PAPER = r"""\documentclass[11pt]{article}
\usepackage[final]{acl}
\usepackage{amsmath}
\setlength\titlebox{5cm}
\title{Aligning Table Cells with Their Mentions}
\author{Priya Raman\Thanks{Equal contribution.} \\ University of Example \\ \texttt{priya@example.edu} \\\And
  Tom\'as Oliveira \\ Example NLP Lab \AND
  Wen Li \\ Example Institute}
\begin{document}
\maketitle
\begin{abstract}
Tables are discussed in the text around them.
\end{abstract}
\section{Introduction}
Language models \cite{devlin} read tables poorly; \newcite{devlin} train on text, as in \citeposs{vaswani}
encoder \shortcite{vaswani}. In logic, $p \And q$ holds.
\begin{thebibliography}{2}
\bibitem[{Devlin et~al.(2019)Devlin, Chang, Lee, and Toutanova}]{devlin}
Jacob Devlin, Ming-Wei Chang, Kenton Lee, and Kristina Toutanova. 2019.
\newblock BERT: Pre-training of deep bidirectional transformers.
\bibitem[{Vaswani et~al.(2017)}]{vaswani}
Ashish Vaswani, Noam Shazeer, and Niki Parmar. 2017.
\newblock Attention is all you need.
\end{thebibliography}
\end{document}
"""

# plainnat's .bbl shape; with natbib's `numbers` the PDF cites them [1]…[5] and lists them "[1] Tri Dao, …"
PLAINNAT_BBL = r"""\begin{thebibliography}{5}
\providecommand{\natexlab}[1]{#1}
\bibitem[Dao et~al.(2022)Dao, Fu, and Ermon]{dao}
Tri Dao, Daniel~Y. Fu, and Stefano Ermon.
\newblock Flashattention: Fast exact attention.
\newblock In \emph{Advances in Neural Information Processing Systems}, 2022.
\bibitem[Devlin et~al.(2019)Devlin, Chang, and Lee]{devlin}
Jacob Devlin, Ming-Wei Chang, and Kenton Lee.
\newblock Bert: Pre-training of deep bidirectional transformers.
\newblock In \emph{Proceedings of NAACL-HLT}, 2019.
\bibitem[He et~al.(2016)He, Zhang, and Ren]{he}
Kaiming He, Xiangyu Zhang, and Shaoqing Ren.
\newblock Deep residual learning for image recognition.
\newblock In \emph{Proceedings of CVPR}, 2016.
\bibitem[Kingma and Ba(2014)]{kingma}
Diederik~P. Kingma and Jimmy Ba.
\newblock Adam: A method for stochastic optimization.
\newblock \emph{arXiv preprint arXiv:1412.6980}, 2014.
\bibitem[Vaswani et~al.(2017)Vaswani, Shazeer, and Parmar]{vaswani}
Ashish Vaswani, Noam Shazeer, and Niki Parmar.
\newblock Attention is all you need.
\newblock In \emph{Advances in Neural Information Processing Systems}, 2017.
\end{thebibliography}
"""

NATBIB_PAPER = r"""\documentclass{article}
PREAMBLE
\begin{document}
Self-attention \citep{vaswani} is costly; models \citep{CITED} and \citet{kingma} too.
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""


def markdown_of(folder: Path, name: str = "paper.tex") -> str:
    return html_to_markdown(latex_to_html(folder, name, timeout_s=60), citations=citation_form(folder / name))


def write_paper(folder: Path, text: str, styles: dict[str, str], bbl: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, style in styles.items():
        (folder / name).write_text(style, encoding="utf-8")
    if bbl is not None:
        (folder / "paper.bbl").write_text(bbl, encoding="utf-8")
    (folder / "paper.tex").write_text(text, encoding="utf-8")
    return folder


def test_acl_paper_prints_its_title_once_its_authors_apart_and_its_citations_as_acl_sty_does(tmp_path):
    text = markdown_of(write_paper(tmp_path, ACL_PAPER, {"acl.sty": NEW_ACL_STYLE}))
    assert text.count("Aligning Table Cells with Their Mentions") == 1
    # \And and \AND separate the authors (amsmath's \And would have made one author with a "&")
    front = text[:text.index("Abstract")]
    assert "&" not in front
    for author in ("Priya Raman", "Tomás Oliveira", "Wen Li"):
        assert f"\n{author}" in front
    assert "Equal contribution." in front  # \Thanks is \thanks
    # acl.sty: \cite is \citep "(Author, Year)", \newcite \citet, \citeposs "Author's (Year)", \shortcite "(Year)"
    assert ("Language models (Devlin et al., 2019) read tables poorly; Devlin et al. (2019) train on text, as in "
            "Vaswani et al.’s (2017) encoder (2017).") in text
    assert r"\(p\And q\)" in text  # amsmath's \And in math is still its "&"


@pytest.mark.parametrize("package, styles, printed, hidden", [
    # acl.sty's [review] (here under EMNLP2023, a venue's copy of it, reached through its alias): the anonymous line
    (r"\usepackage[review]{EMNLP2023}", {"EMNLP2023.sty": NEW_ACL_STYLE}, "Anonymous ACL submission", "Priya"),
    # a style up to 2021 is a review copy unless \aclfinalcopy; the anonymous line is the paper's copy's
    (r"\usepackage[hyperref]{acl2021}", {"acl2021.sty": OLD_ACL_STYLE}, "Anonymous ACL-IJCNLP submission", "Priya"),
    (r"\usepackage[hyperref]{acl2021}\aclfinalcopy", {"acl2021.sty": OLD_ACL_STYLE}, "Priya Raman", "Anonymous"),
])
def test_acl_review_copies_print_the_styles_anonymous_author_and_final_copies_the_authors(tmp_path, package, styles, printed, hidden):
    paper = ACL_PAPER.replace(r"\usepackage[final]{acl}", package)
    text = markdown_of(write_paper(tmp_path, paper, styles))
    front = text[:text.index("Abstract")]
    assert text.count("Aligning Table Cells with Their Mentions") == 1
    assert printed in front and hidden not in front


@pytest.mark.parametrize("preamble, styles, cited, markdown_citations", [
    # the NeurIPS template's advice: LaTeXML 0.8.7 took \PassOptionsToPackage's arguments the wrong way round
    ("\\PassOptionsToPackage{numbers, compress}{natbib}\n\\usepackage{natbib}", {}, "dao,devlin,he",
     "Self-attention [5] is costly; models [1–3] and Kingma and Ba [4] too."),
    # cvpr.sty's \RequirePackage[numbers,sort&compress]{natbib}: citation_form read the main file's options only
    ("\\usepackage{confstyle}", {"confstyle.sty": "\\RequirePackage[numbers,sort&compress]{natbib}\n"},
     "vaswani,dao,he", "Self-attention [5] is costly; models [1, 3, 5] and Kingma and Ba [4] too."),
])
def test_natbib_options_from_passed_options_and_the_papers_own_style_number_the_citations_as_the_pdf(
        tmp_path, preamble, styles, cited, markdown_citations):
    folder = write_paper(tmp_path, NATBIB_PAPER.replace("PREAMBLE", preamble).replace("CITED", cited), styles,
                         PLAINNAT_BBL)
    text = markdown_of(folder)
    assert markdown_citations in text
    assert "* [1] Tri Dao, Daniel Y. Fu, and Stefano Ermon." in text  # the list's labels, as natbib prints them
    pdf, _ = compile_pdf(folder, folder / "paper.tex", "natbib")
    printed = "".join(pymupdf.open(pdf)[0].get_text().split())
    assert markdown_citations.replace(" ", "") in printed and "[1]TriDao" in printed


def test_package_options_are_read_from_the_main_file_and_the_papers_styles_outside_comments(tmp_path):
    main = tmp_path / "paper.tex"
    main.write_text("% \\PassOptionsToPackage{super}{natbib}\n\\PassOptionsToPackage{numbers, compress}{natbib}\n"
                    "\\usepackage{mystyle}\n")
    (tmp_path / "mystyle.sty").write_text("\\RequirePackage[sort]{natbib}\n\\RequirePackage{cite}\n")
    options = package_options(main)
    assert options["natbib"] == ["numbers", "compress", "sort"]
    assert options["cite"] == [] and "biblatex" not in options
    assert citation_form(main) == CitationForm(sort=True, compress=True)


@pytest.mark.parametrize("options, form", [("pdflatex,sn-mathphys-num", CitationForm(sort=True, compress=True)),
                                           ("sn-basic,Numbered", CitationForm(sort=True, compress=True)),
                                           ("sn-basic", CitationForm()), ("pdflatex,sn-mathphys-ay", CitationForm())])
def test_a_class_that_loads_natbib_gives_its_options(tmp_path, options, form):
    """sn-jnl loads natbib with `sort&compress` for its numbered reference styles."""
    main = tmp_path / "paper.tex"
    main.write_text(f"\\documentclass[{options}]{{sn-jnl}}\n")
    assert citation_form(main) == form
