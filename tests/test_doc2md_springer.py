"""doc2md on Springer Nature's sn-jnl class (its journals' template since 2021), which TeX Live does not ship:
arXiv sources carry sn-jnl.cls beside main.tex. docforge's binding (`sn-jnl.cls.ltxml`) and SnJnlMarkdownWriter
write the first page as the real class prints it; the expected text below quotes the real class's PDF (template
3.1: "Ann Lee1,2*, Bruno Costa2,3† and Chen Wei1†", "1*Institute …, Germany.", "*Corresponding author(s).
E-mail(s): …;", "Contributing authors: …;", "†These authors contributed equally to this work.", "Fig. 1",
"[1] Helmig, R.: …"). Real LaTeXML and markdown writer; the class is not installed, so no PDF is compiled here."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown, latexml_errors
from pipelines.doc2md.latexml import latex_to_html

SN_JNL = r"""\documentclass[pdflatex,sn-mathphys-num]{sn-jnl}
\usepackage{graphicx}
\usepackage{amsmath}
\usepackage{booktabs}
\theoremstyle{thmstyleone}
\newtheorem{theorem}{Theorem}
\begin{document}
\title[Adaptive Refinement]{Adaptive Mesh Refinement for Two-Phase Flow}
\author*[1,2]{\fnm{Ann} \sur{Lee}}\email{ann.lee@uni-example.de}
\author[2,3]{\fnm{Bruno} \sur{Costa}}\email{bruno.costa@inst-example.pt}
\equalcont{These authors contributed equally to this work.}
\author[1]{\fnm{Chen} \sur{Wei}}\email{chen.wei@uni-example.de}
\equalcont{These authors contributed equally to this work.}
\affil*[1]{\orgdiv{Institute of Applied Mathematics}, \orgname{University of Examplestadt}, \orgaddress{\street{Hauptstrasse 12}, \city{Examplestadt}, \postcode{12345}, \country{Germany}}}
\affil[2]{\orgdiv{Department of Geosciences}, \orgname{Instituto Exemplar},
\orgaddress{\city{Lisbon}, \country{Portugal}}}
\affil[3]{\orgname{Northern Research Centre}, \orgaddress{\city{Oslo}, \country{Norway}}}
\abstract{We present an adaptive mesh refinement strategy for immiscible two-phase flow.}
\keywords{adaptive mesh refinement, porous media}
\maketitle
\section{Introduction}\label{sec1}
Simulating multiphase flow is central to groundwater management \cite{bib1}.
\begin{theorem}\label{thm1}
The discrete saturation remains in $[0,1]$.
\end{theorem}
\begin{figure}[h]
\centering
\caption{Adapted mesh at $t=0.4$.}\label{fig1}
\end{figure}
\begin{table}[h]
\caption{Cells needed}\label{tab1}
\begin{tabular}{@{}ll@{}}
\toprule
Problem & Cells\\
\midrule
Layered & 24310\\
\botrule
\end{tabular}
\end{table}
\backmatter
\bmhead{Acknowledgements}
We thank the computing centre.
\bibliography{sn-bibliography}
\end{document}
"""
# main.bbl as sn-mathphys-num.bst (2024/07/19 v1.1) writes it: its preamble, then \citeauthoryear labels
BBL = r"""%% BioMed_Central_Bib_Style_v1.01

\begin{thebibliography}{1}
% BibTex style file: bmc-mathphys.bst (version 2.1), 2014-07-24
\ifx \bauthor  \undefined \def \bauthor#1{#1}\fi
\ifx \bsnm \undefined \def \bsnm#1{#1}\fi
\ifx \binits  \undefined \def \binits#1{#1}\fi
\ifx \bbtitle  \undefined \def \bbtitle#1{#1}\fi
\ifx \bpublisher  \undefined \def \bpublisher#1{#1}\fi
\ifx \blocation  \undefined \def \blocation#1{#1}\fi
\ifx \byear  \undefined \def \byear#1{#1}\fi
\bibcommenthead
\ifx \bbook \undefined \def \bbook#1{#1}\fi
\ifx \endbibitem  \undefined \def \endbibitem {}\fi

%%% 1
\bibitem[\protect\citeauthoryear{Helmig}{1997}]{bib1}
\begin{bbook}
\bauthor{\bsnm{Helmig}, \binits{R.}}:
\bbtitle{Multiphase Flow and Transport Processes in the Subsurface}.
\bpublisher{Springer}, \blocation{Berlin}
(\byear{1997})
\end{bbook}
\endbibitem

\end{thebibliography}
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The paper's markdown and LaTeXML's HTML (sn-jnl.cls itself is not there: the binding stands in for it)."""
    folder = tmp_path_factory.mktemp("sn-jnl")
    (folder / "main.tex").write_text(SN_JNL)
    (folder / "main.bbl").write_text(BBL)
    html = latex_to_html(folder, "main.tex", timeout_s=120)
    return html_to_markdown(html, document_class="sn-jnl", class_options="pdflatex,sn-mathphys-num"), html


def test_sn_jnl_title_block_is_written_as_the_class_prints_it(converted):
    markdown, html = converted
    blocks = markdown.split("\n\n")
    assert latexml_errors(html)["undefined"] == []
    assert blocks[0] == "# Adaptive Mesh Refinement for Two-Phase Flow"
    # \author*'s marks end in "*", \equalcont adds "†" after the name; "and" before the last name, no comma
    assert blocks[1] == "Ann Lee1,2*, Bruno Costa2,3† and Chen Wei¹†"
    assert blocks[2] == (
        "1*Institute of Applied Mathematics, University of Examplestadt, Hauptstrasse 12, Examplestadt, 12345, "
        "Germany.\n²Department of Geosciences, Instituto Exemplar, Lisbon, Portugal.\n"
        "³Northern Research Centre, Oslo, Norway.\n"
        "*Corresponding author(s). E-mail(s): ann.lee@uni-example.de;\n"
        "Contributing authors: bruno.costa@inst-example.pt; chen.wei@uni-example.de;\n"
        "†These authors contributed equally to this work.")
    assert blocks[3:6] == ["###### Abstract", "We present an adaptive mesh refinement strategy for immiscible "
                           "two-phase flow.", "###### Keywords:"]


def test_sn_jnl_body_uses_the_class_captions_rules_headings_and_numbered_references(converted):
    markdown, _ = converted
    blocks = markdown.split("\n\n")
    assert "management [1]." in markdown  # sn-mathphys-num: natbib numbers
    # the PDF prints "[1] Helmig, R.: …" (LaTeXML's natbib tagged a \citeauthoryear item "Helmig [1997]" even in
    # numbers mode: docforge-natbib.sty's labels, with the options the class gives natbib)
    assert "## References\n\n* [1] Helmig, R.: Multiphase Flow and Transport Processes in the Subsurface. Springer, Berlin (1997)" in markdown
    assert "Fig. 1: Adapted mesh at \\(t=0.4\\)." in blocks
    assert "**Theorem 1** _The discrete saturation remains in \\([0,1]\\)._" in blocks  # thmstyleone: no "."
    assert "Layered & 24310 \\\\\n\\hline\n\\end{tabular}" in markdown  # \botrule is a rule, not a row
    assert "**Acknowledgements.** We thank the computing centre." in blocks  # \bmhead: run in, ending in "."
