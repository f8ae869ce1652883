"""doc2md on the high-energy-physics styles: SISSA's jheppub.sty (JHEP) and IOP's iopart.cls, which TeX Live does
not have (arXiv sources ship them; the papers here ship only a stub of jheppub.sty's \\@fpheader line, so they are
converted by real LaTeXML and checked against what the real styles print, quoted), and REVTeX 4.1, which it has
(compiled by real pdflatex and its first page split against the PDF)."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.pages import split_markdown_into_pages
from tests.doc2md_papers import convert_paper

JHEP = r"""\documentclass[a4paper,11pt]{article}
\usepackage{jheppub}
\title{Entanglement entropy of heavy-quark bound states}
\author[a]{Giulia Ferraro,}
\author[b,1]{Hiroshi Tanaka\note{Corresponding author.}}
\author[a,c]{and Pedro Almeida}
\affiliation[a]{Dipartimento di Fisica, Universit\`a di Torino,\\Via P.~Giuria 1, I-10125 Torino, Italy}
\affiliation[b]{Yukawa Institute for Theoretical Physics, Kyoto University, Kyoto 606-8502, Japan}
\affiliation[c]{Centro de F\'isica do Porto, Universidade do Porto, 4169-007 Porto, Portugal}
\emailAdd{giulia.ferraro@to.infn.it}
\emailAdd{htanaka@yukawa.kyoto-u.ac.jp}
\abstract{We compute the holographic entanglement entropy of a heavy quark pair in a soft-wall background.}
\arxivnumber{2612.00081}
\keywords{Gauge-gravity correspondence, Confinement}
\preprint{YITP-26-118}
\begin{document}
\maketitle
\section{Introduction}
The entanglement entropy is computed by the area of a minimal surface \cite{rt}.
\begin{figure}[t]\rule{2cm}{1cm}\caption{Connected entanglement entropy.}\end{figure}
\acknowledgments
We thank M.~Rossi for discussions.
\begin{thebibliography}{1}
\bibitem{rt} S.~Ryu and T.~Takayanagi, \emph{Phys. Rev. Lett.} \textbf{96} (2006) 181602.
\end{thebibliography}
\end{document}
"""
# jheppub.sty's first line, as SISSA's current copy defines it (the rest of the style is not needed by LaTeXML)
JHEPPUB_HEADER = "\\gdef\\@fpheader{Prepared for submission to JHEP}\n\\gdef\\@journal{jhep}\n"
# a collaboration paper with no table of contents, whose copy of the style prints no first line
JHEP_COLLABORATION = (JHEP.replace("\\begin{document}", "\\collaboration{The XYZ collaboration}\n\\notoc\n"
                                   "\\begin{document}").replace("\\preprint{YITP-26-118}\n", ""))

IOPART = r"""\documentclass[12pt]{iopart}
\begin{document}
\title[Floquet edge states]{Floquet edge states in driven quasiperiodic chains}
\author{M Lindqvist$^1$ and R K Sharma$^2$}
\address{$^1$ Department of Physics, KTH Royal Institute of Technology, SE-106 91 Stockholm, Sweden}
\address{$^2$ Department of Physics, Indian Institute of Science, Bangalore 560012, India}
\ead{mlindq@kth.se}
\begin{abstract}
We show that a periodic drive opens gaps that host edge states in the Aubry--Andr\'e--Harper chain.
\end{abstract}
\pacs{05.30.Rt, 71.23.Ft}
\noindent{\it Keywords\/}: Floquet systems, quasiperiodic lattices
\submitto{\JPA}
\maketitle
\section{Model}
The Floquet operator $U_F = \exp(-\rmi \int_0^T H(t)\,\rmd t)$ has the trace $\Tr U_F$ \cite{aubry}.
\begin{figure}\rule{2cm}{1cm}\caption{\label{fig:ipr}Inverse participation ratio.}\end{figure}
\ack
We thank A Johansson for discussions.
\section*{References}
\begin{thebibliography}{9}
\bibitem{aubry} Aubry S and Andr\'e G 1980 {\it Ann. Israel Phys. Soc.} {\bf 3} 133
\end{thebibliography}
\end{document}
"""

REVTEX41 = r"""\documentclass[aps,prd,twocolumn,showpacs]{revtex4-1}
\begin{document}
\preprint{UCI-TR-2026-07}
\title{Leptoquark explanation of the angular observables in rare $B$ decays}
\author{Daniel R. Whitfield}
\email{dwhitfie@example.edu}
\author{Javier Ortega}
\altaffiliation[Also at ]{Instituto de F\'isica Corpuscular, Valencia, Spain.}
\affiliation{Theoretical Physics Department, CERN, 1211 Geneva 23, Switzerland}
\date{March 3, 2025}
\begin{abstract}
We fit the angular observables of $B\to K^*\mu^+\mu^-$ in a model with a scalar leptoquark of mass between 1.5
and 4 TeV, which improves the fit over the Standard Model by $4.1\sigma$.
\end{abstract}
\pacs{13.20.He, 12.60.-i}
\maketitle
Rare decays mediated by $b\to s\ell^+\ell^-$ transitions are loop- and CKM-suppressed in the Standard Model and
therefore sensitive probes of new physics at scales well above the reach of direct searches \cite{buras}, which
we fit here with the full data set of the angular analysis and the branching ratios of the muonic decays.
\begin{figure}[b]
\rule{2cm}{1cm}
\caption{\label{fig:plane}Allowed region of the leptoquark couplings.}
\end{figure}
\begin{table}[t]
\caption{\label{tab:fit}Fit quality.}
\begin{tabular}{lc}
Scenario & $\chi^2$\\
\hline
SM & 221.4\\
\end{tabular}
\end{table}
\begin{acknowledgments}
We thank the LHCb Rare Decays working group for discussions.
\end{acknowledgments}
\begin{thebibliography}{1}
\bibitem{buras} A. J. Buras, arXiv:hep-ph/9806471 (1998).
\end{thebibliography}
\end{document}
"""


def latexml_markdown(folder, source: str, document_class: str, style: str | None = None) -> str:
    """`source`'s markdown by real LaTeXML (with `style` shipped beside it as jheppub.sty) and the markdown writer."""
    (folder / "main.tex").write_text(source)
    if style is not None:
        (folder / "jheppub.sty").write_text(style)
    return html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120), document_class=document_class)


@pytest.fixture(scope="module")
def papers(tmp_path_factory):
    """Each paper's markdown blocks; REVTeX 4.1's with its first page's split from its real PDF."""
    jhep = latexml_markdown(tmp_path_factory.mktemp("jhep"), JHEP, "article", JHEPPUB_HEADER)
    collaboration = latexml_markdown(tmp_path_factory.mktemp("jhep-collaboration"), JHEP_COLLABORATION, "article",
                                     "\\gdef\\@fpheader{}\n")
    iopart = latexml_markdown(tmp_path_factory.mktemp("iopart"), IOPART, "iopart")
    revtex, _, doc = convert_paper(tmp_path_factory.mktemp("revtex4-1"), "revtex4-1", REVTEX41)
    return {"jhep": jhep.split("\n\n"), "jhep-collaboration": collaboration.split("\n\n"),
            "iopart": iopart.split("\n\n"), "revtex4-1": (revtex.split("\n\n"), split_markdown_into_pages(revtex, doc)[0])}


def following(blocks: list[str], block: str) -> str:
    return blocks[blocks.index(block) + 1]


def test_jheppub_title_page_is_written_as_its_maketitle_prints_it(papers):
    """jheppub's \\maketitle: "\\noindent{\\small\\scshape\\@fpheader}\\@preprint" (\\@preprint: "\\hfill #1"), the
    authors "\\the\\auth@toks" (each "#2$^{#1}$\\ "), the affiliations "\\item[$^{#1}$]#2", "\\textit{E-mail:}
    \\the\\email@toks" (joined by ", "), "\\textsc{Abstract:}", "\\textsc{Keywords:}", "\\textsc{ArXiv ePrint:}",
    then "\\tableofcontents" unless \\notoc."""
    blocks = papers["jhep"]
    assert "Footnote: Prepared for submission to JHEP YITP-26-118" in blocks
    assert "Giulia Ferraro,\\({}^{a}\\) Hiroshi Tanaka\\({}^{b,1}\\) and Pedro Almeida\\({}^{a,c}\\)" in blocks
    assert ("\\({}^{a}\\)Dipartimento di Fisica, Università di Torino,\nVia P. Giuria 1, I-10125 Torino, Italy\n"
            "\\({}^{b}\\)Yukawa Institute for Theoretical Physics, Kyoto University, Kyoto 606-8502, Japan\n"
            "\\({}^{c}\\)Centro de Física do Porto, Universidade do Porto, 4169-007 Porto, Portugal\n"
            "E-mail: giulia.ferraro@to.infn.it, htanaka@yukawa.kyoto-u.ac.jp") in blocks
    assert following(blocks, "###### Abstract:").startswith("We compute the holographic entanglement entropy")
    assert following(blocks, "###### Keywords:") == "Gauge-gravity correspondence, Confinement"
    assert following(blocks, "###### ArXiv ePrint:") == "2612.00081"
    assert "Footnote: Corresponding author." in blocks  # \note: a footnote with no mark in the names
    assert following(blocks, "###### Contents") == "1 Introduction"  # a line per entry, not a numbered list
    assert not [block for block in blocks if block.startswith("Footnote: a") or block.startswith("Footnote: b")]


def test_jheppub_body_has_its_captions_and_acknowledgments_heading(papers):
    blocks = papers["jhep"]
    assert "Figure 1. Connected entanglement entropy." in blocks  # "\\textbf{\\figurename\\nobreakspace\\thefigure}. "
    assert "## Acknowledgments" in blocks  # \acknowledgments: "\\section*{Acknowledgments}"


def test_jheppub_collaboration_stands_over_the_authors_and_notoc_drops_the_contents(papers):
    blocks = papers["jhep-collaboration"]
    assert ("The XYZ collaboration\nGiulia Ferraro,\\({}^{a}\\) Hiroshi Tanaka\\({}^{b,1}\\) and Pedro "
            "Almeida\\({}^{a,c}\\)") in blocks
    assert "###### Contents" not in blocks
    assert not [block for block in blocks if block.startswith("Footnote: Prepared")]  # the style's header is empty


def test_iopart_title_block_lines_are_printed_where_the_class_prints_them(papers):
    """iopart.cls: "\\def\\ead#1{…\\address{E-mail: \\mailto{#1}}}", "\\def\\submitto#1{…Submitted to: {\\it #1}}",
    "\\def\\pacs#1{…PACS numbers: #1}", "\\def\\ack{…\\section*{Acknowledgments}}", its thebibliography with no
    heading, "\\newcommand{\\rmi}{\\mathrm{i}}" and "{\\bf #1.} #2" captions."""
    blocks = papers["iopart"]
    assert ("\\({}^{1}\\) Department of Physics, KTH Royal Institute of Technology, SE-106 91 Stockholm, Sweden\n"
            "\\({}^{2}\\) Department of Physics, Indian Institute of Science, Bangalore 560012, India\n"
            "E-mail: mlindq@kth.se") in blocks
    assert blocks.index("PACS numbers: 05.30.Rt, 71.23.Ft") < blocks.index(
        "_Keywords_: Floquet systems, quasiperiodic lattices") < blocks.index("Submitted to: _J. Phys. A: Math. Gen._")
    assert blocks.count("## References") == 1 and "## Acknowledgments" in blocks
    assert "Figure 1. Inverse participation ratio." in blocks
    model = following(blocks, "## 1 Model")
    assert "\\mathrm{i}" in model and "\\mathrm{d}t" in model and "\\mathop{\\mathrm{Tr}}" in model
    assert "\\rmi" not in model and "\\Tr" not in model


def test_revtex41_first_page_is_printed_as_revtex_prints_it_and_kept(papers):
    blocks, page = papers["revtex4-1"]
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert {"Footnote: dwhitfie@example.edu", "Footnote: Also at Instituto de Física Corpuscular, Valencia, Spain.",
            "(Dated: March 3, 2025)", "###### PACS numbers:", "FIG. 1. Allowed region of the leptoquark couplings.",
            "TABLE I. Fit quality."} <= set(blocks)
    assert any("direct searches [1]," in block for block in blocks)  # apsrev4-1 cites by number
    assert "UCI-TR-2026-07" not in "\n".join(blocks)  # \preprint is printed with preprint only
    assert "###### Acknowledgments." in blocks  # PRD prints the heading PRL leaves out
    assert not {"###### Abstract", "## References"} & set(blocks)
