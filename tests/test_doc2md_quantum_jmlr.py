"""doc2md on the Quantum journal's class (quantumarticle) and on jmlr.cls (JMLR and the PMLR proceedings: COLT,
ALT, CLeaR, …), both in TeX Live: docforge's LaTeXML bindings and QuantumMarkdownWriter write the first page as
the real classes print it, so it is kept. Real pdflatex with the real classes, real LaTeXML."""

import pytest

from pipelines.doc2md.html_to_markdown import latexml_errors
from pipelines.doc2md.pages import split_markdown_into_pages
from tests.doc2md_papers import convert_paper

QUANTUM = r"""\documentclass[a4paper]{quantumarticle}
\pdfoutput=1
\usepackage[english]{babel}
\usepackage{amsmath}
\begin{document}
\title{Shallow circuits for preparing Gibbs states of frustrated spin chains}
\author{Jonas Weber}
\email{jonas.weber@example.de}
\thanks{These authors contributed equally.}
\affiliation{Institute for Quantum Optics, Example University of Technology, Munich, Germany}
\affiliation{Munich Center for Quantum Science and Technology, Munich, Germany}
\author{Li Na Chen}
\homepage{https://chen.example.org}
\author{Pieter de Vries}
\affiliation{QuTech, Delft University of Example, Delft, The Netherlands}
\keywords{variational algorithms, Gibbs states}
\maketitle
\begin{abstract}
Preparing thermal states on a quantum computer is a key subroutine for quantum simulation. We propose shallow
variational circuits that prepare Gibbs states of frustrated spin chains by purification, trained by minimising
the free energy, and reach fidelities above ninety-nine per cent for twelve sites at intermediate temperatures.
\end{abstract}
\section{Introduction}
Quantum computers promise to simulate the thermodynamics of quantum many-body systems beyond the reach of
classical methods \cite{preskill}. Thermal states require mixed states, which a unitary circuit can only prepare on
a larger system: we prepare a purification on the system and an ancilla register, and trace out the ancillas.
\appendix
\section{Proof of the depth bound}
The Gibbs state of a one-dimensional local Hamiltonian with a finite correlation length is close to a matrix
product operator whose bond dimension grows polynomially in the system size.
\begin{thebibliography}{1}
\bibitem{preskill} John Preskill. Quantum computing in the NISQ era and beyond. Quantum 2, 79 (2018).
\end{thebibliography}
\end{document}
"""

JMLR = r"""\documentclass[pmlr]{jmlr}
\jmlrvolume{247}
\jmlryear{2025}
\jmlrworkshop{38th Annual Conference on Learning Theory}
\title[Structured Bandits]{Optimistic Exploration in Structured\titlebreak Bandits with Graph Feedback}
\author{\Name{Hanna Kowalczyk} \Email{hkowalczyk@example.edu}\\
 \addr Department of Computer Science, Example University, Boston, MA, USA
 \AND
 \Name{Daniel {van der Berg}} \Email{d.vanderberg@example.com}\\
 \addr Example Research Lab, Lisbon, Portugal}
\editors{Nika Haghtalab and Ankur Moitra}
\begin{document}
\maketitle
\begin{abstract}
We study stochastic bandits in which pulling an arm also reveals the rewards of its neighbours in a known
feedback graph, and show that an optimistic algorithm attains regret that depends on the independence number.
\end{abstract}
\begin{keywords}
multi-armed bandits, graph feedback
\end{keywords}
\section{Introduction}\label{sec:intro}
The multi-armed bandit problem is the simplest model of the trade-off between exploration and exploitation
\citep{robbins}. We give an algorithm (\sectionref{sec:intro,sec:analysis}) with the regret of
\theoremref{thm:upper}, index \equationref{eq:index} and results in \tableref{tab:results}.
\begin{equation}\label{eq:index}
  I_t \in \arg\max_i \hat\mu_i + \sqrt{2\log t / N_i} .
\end{equation}
\section{Analysis}\label{sec:analysis}
\begin{lemma}\label{lem:conc}
With probability at least $1 - 1/T$ every empirical mean is within its confidence radius.
\end{lemma}
\begin{theorem}\label{thm:upper}
The regret of the algorithm grows as the square root of the independence number times the horizon.
\end{theorem}
\begin{proof}
Each observation of an arm in a dominating set informs all of its neighbours.
\end{proof}
\begin{table}[h]
\floatconts
  {tab:results}
  {\caption{Final regret after one hundred thousand rounds.}}
  {\begin{tabular}{lc}
  Method & Regret\\
  UCB & 4210\\
  Ours & 870\\
  \end{tabular}}
\end{table}
\acks{We thank the anonymous reviewers for their comments.}
\begin{thebibliography}{1}
\bibitem[Robbins and Monro(1951)]{robbins} Herbert Robbins and Sutton Monro. A stochastic approximation method.
\newblock The Annals of Mathematical Statistics, 22(3):400--407, 1951.
\end{thebibliography}
\end{document}
"""
PAPERS = {"quantum": QUANTUM, "jmlr": JMLR}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Each paper's markdown, LaTeXML's HTML and its first page's split, from its real PDF."""
    papers = {}
    for name, source in PAPERS.items():
        markdown, html, doc = convert_paper(tmp_path_factory.mktemp(name), name, source)
        papers[name] = (markdown, html, split_markdown_into_pages(markdown, doc)[0])
    return papers


def test_quantumarticle_front_matter_is_written_as_the_class_prints_it_and_page_one_is_kept(converted):
    markdown, html, page = converted["quantum"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert latexml_errors(html)["undefined"] == []  # \keywords: recorded, not printed
    # an \affiliation belongs to every author since the previous one; each is printed once, numbered
    assert blocks[1] == r"Jonas Weber\({}^{1,2}\), Li Na Chen\({}^{3}\), and Pieter de Vries\({}^{3}\)"
    assert blocks[2] == ("\\({}^{1}\\)Institute for Quantum Optics, Example University of Technology, Munich, Germany\n"
                         "\\({}^{2}\\)Munich Center for Quantum Science and Technology, Munich, Germany\n"
                         "\\({}^{3}\\)QuTech, Delft University of Example, Delft, The Netherlands")
    assert "Footnote: Jonas Weber: jonas.weber@example.de, These authors contributed equally." in blocks
    assert "Footnote: Li Na Chen: https://chen.example.org" in blocks
    assert "variational algorithms" not in markdown
    assert "Abstract" not in markdown
    assert "## A Proof of the depth bound" in blocks  # babel's \appendixname does not come back


def test_jmlr_paper_is_read_with_the_class_macros_and_its_first_page_furniture(converted):
    markdown, html, page = converted["jmlr"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert latexml_errors(html)["errors"] == 0
    assert blocks[0] == "# Optimistic Exploration in Structured Bandits with Graph Feedback"
    assert ("Hanna Kowalczyk hkowalczyk@example.edu\n"
            "Department of Computer Science, Example University, Boston, MA, USA") in blocks
    assert ("Footnote: Proceedings of Machine Learning Research 247, 2025 38th Annual Conference on Learning Theory"
            in blocks)
    assert "Footnote: © 2025 H. Kowalczyk & D. van der Berg." in blocks
    assert "Footnote: Editors: Nika Haghtalab and Ankur Moitra" in blocks
    assert "**Keywords:** multi-armed bandits, graph feedback" in blocks
    assert ("We give an algorithm (Sections 1 and 2) with the regret of Theorem 2, index Equation (1) and results "
            "in Table 1.") in markdown
    assert "**Lemma 1** _With probability" in markdown and "**Theorem 2** _The regret" in markdown  # one counter
    table = next(index for index, block in enumerate(blocks) if block.startswith("\\begin{tabular}"))
    assert blocks[table - 1] == "Table 1: Final regret after one hundred thousand rounds."  # caption above
    assert "## Acknowledgments" in blocks
    assert "(Robbins and Monro, 1951)" in markdown
