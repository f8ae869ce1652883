"""doc2md on the physics and astronomy classes (MNRAS, AASTeX 6.31, REVTeX 4.2, all in TeX Live): docforge's
LaTeXML bindings write what the real classes print on the first page (MNRAS's preprint line and copyright, AAS's
"Draft version"/"Typeset using" lines, "Submitted to", corresponding author, REVTeX's author footnotes and
"Dated:"), so the first page of each is kept. Real pdflatex with the real classes, real LaTeXML."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from tests.doc2md_papers import first_pages

BODY = r"""
\section{Introduction}
Dark matter haloes formed in cold dark matter cosmologies follow a universal density profile whose shape is set
by one parameter, the concentration, which correlates with the halo mass because small haloes collapse earlier,
when the mean density of the Universe was higher \citep{nfw}. Feedback from supernovae and active galactic nuclei
can expel gas and lower the central density of the haloes, a change that we measure in simulations here.
\begin{table}
\caption{Best-fitting parameters.}
\begin{tabular}{lcc}
\hline
Redshift & $A$ & $B$\\
\hline
0.0 & 0.87 & 0.097\\
1.0 & 0.74 & 0.071\\
\hline
\end{tabular}
\end{table}
"""
BIBLIOGRAPHY = r"""
\begin{thebibliography}{1}
\bibitem[Navarro et al.(1997)]{nfw} Navarro J.~F., Frenk C.~S., White S.~D.~M., 1997, ApJ, 490, 493
\end{thebibliography}
"""

MNRAS = r"""\documentclass[fleqn,usenatbib]{mnras}
\title[Halo concentrations]{The concentration of dark matter haloes in hydrodynamical simulations}
\author[K. T. Smith et al.]{Keith T. Smith,$^{1}$\thanks{E-mail: k.smith@example.ac.uk}
A. N. Other$^{2}$\\ $^{1}$Royal Astronomical Society, Burlington House, London W1J 0BQ, UK\\
$^{2}$Department of Physics, University of Example, Exampletown EX1 2AB, UK}
\date{Accepted XXX. Received YYY; in original form ZZZ}
\pubyear{2025}
\begin{document}
\label{firstpage}
\pagerange{\pageref{firstpage}--\pageref{lastpage}}
\maketitle
\begin{abstract}
We measure the concentration of dark matter haloes in simulations with baryonic feedback and find that feedback
from active galactic nuclei lowers it in groups by up to 15 per cent.
\end{abstract}
\begin{keywords}
galaxies: haloes -- dark matter -- methods: numerical
\end{keywords}
""" + BODY + BIBLIOGRAPHY + r"""
\bsp
\label{lastpage}
\end{document}
"""

AASTEX = r"""\documentclass[twocolumn]{aastex631}
\received{June 1, 2025}
\revised{August 10, 2025}
\accepted{September 2, 2025}
\submitjournal{ApJ}
\shorttitle{Nova remnants}
\shortauthors{Schwarz et al.}
\begin{document}
\title{Ultraviolet Variability of Classical Nova Remnants}
\correspondingauthor{August Muench}
\email{gus.muench@example.org}
\author[0000-0002-0786-7307]{Greg J. Schwarz}
\affiliation{American Astronomical Society, 1667 K Street NW, Washington, DC 20006, USA}
\author{August Muench}
\affiliation{Center for Astrophysics, 60 Garden Street, Cambridge, MA 02138, USA}
\begin{abstract}
We present ultraviolet light curves of twelve classical nova remnants observed with the Swift Observatory and
find that eight of them vary by more than 0.3 mag on timescales of days.
\end{abstract}
\keywords{Classical novae (251) --- Ultraviolet astronomy (1741)}
\section{Observations}
All observations were taken with the UVOT in the $uvw2$ filter and binned to one point per visit; the light
curves of the young remnants show flickering that we attribute to a re-formed accretion disk \citep{nfw}.
\begin{deluxetable}{lcc}
\tablecaption{Swift observations\label{tab:obs}}
\tablehead{\colhead{Name} & \colhead{Outburst} & \colhead{$N_{\rm vis}$}}
\startdata
V339 Del & 2013 & 41 \\
GK Per & 1901 & 55 \\
\enddata
\tablecomments{One visit is one Swift pointing.}
\end{deluxetable}
\begin{acknowledgments}
We thank the Swift team for scheduling the observations.
\end{acknowledgments}
\facilities{Swift(XRT and UVOT), AAVSO}
\software{astropy, emcee, HEASoft}
""" + BIBLIOGRAPHY + r"""
\end{document}
"""

REVTEX = r"""\documentclass[aps,prl,twocolumn,reprint,superscriptaddress]{revtex4-2}
\begin{document}
\preprint{APS/123-QED}
\title{Observation of Fractional Edge Modes in a Driven Optical Lattice}
\author{Ann Author}
\email{ann.author@example.edu}
\affiliation{Department of Physics, Example University, Example City, EX 12345, USA}
\author{Carla Third}
\altaffiliation[Also at ]{Physics Department, Another University.}
\affiliation{Institute for Quantum Matter, Example Laboratory, Exampleville 54321, Germany}
\date{March 3, 2025}
\begin{abstract}
We report chiral edge states carrying fractional charge in a periodically driven optical lattice of ultracold
fermionic atoms, and we image the edge dynamics with single-site resolution.
\end{abstract}
\maketitle
Topological phases of matter host robust edge states whose properties are fixed by bulk invariants
\cite{hasan}, which we observe here in an optical lattice whose depth is modulated at twice the tunneling
frequency, so that the atoms at the boundary move in one direction only.
\begin{figure}[b]
\rule{2cm}{1cm}
\caption{\label{fig:edge}Edge velocity for five driving amplitudes.}
\end{figure}
\begin{table}[t]
\caption{\label{tab:v}Edge velocity $v$ per driving amplitude.}
\begin{tabular}{lc}
Amplitude & Velocity\\
\hline
0.2 & 0.01\\
0.6 & 0.47\\
\end{tabular}
\end{table}
Table~\ref{tab:v} lists the fitted velocities.
\begin{acknowledgments}
We thank D. Example for discussions.
\end{acknowledgments}
\begin{thebibliography}{1}
\bibitem{hasan} M. Z. Hasan and C. L. Kane, Rev. Mod. Phys. \textbf{82}, 3045 (2010).
\end{thebibliography}
\end{document}
"""

# REVTeX's default title block: the authors an \affiliation follows share it, printed in groups
REVTEX_GROUPED = (REVTEX.replace("reprint,superscriptaddress", "reprint")
                  .replace("\\author{Carla Third}", "\\author{Ben Second}\n\\author{Carla Third}")
                  .replace("\\affiliation{Department of Physics, Example University, Example City, EX 12345, USA}\n", ""))
PAPERS = {"mnras": MNRAS, "aastex631": AASTEX, "revtex4-2": REVTEX, "revtex4-2-grouped": REVTEX_GROUPED}


@pytest.fixture(scope="module", name="first_pages")
def first_pages_fixture(tmp_path_factory):
    return first_pages(tmp_path_factory, PAPERS)


def test_mnras_first_page_has_the_preprint_line_copyright_and_key_words_and_is_kept(first_pages):
    markdown, page = first_pages["mnras"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert any(block.startswith("Footnote: Preprint ") and block.endswith(" Compiled using MNRAS LATEX style file "
                                                                          "v3.0") for block in blocks)
    assert "Footnote: © 2025 The Authors" in blocks
    assert "(Navarro et al. 1997)" in markdown  # mnras.cls's \\bibpunct: no comma before the year
    assert ["###### Key words:", "galaxies: haloes – dark matter – methods: numerical"] == \
        blocks[blocks.index("###### Key words:"):blocks.index("###### Key words:") + 2]
    assert markdown.endswith("\n\nThis paper has been typeset from a TEX/LATEX file prepared by the author.\n")


def test_aastex631_first_page_has_its_notices_and_the_end_matter_its_labels(first_pages):
    markdown, page = first_pages["aastex631"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert any(block.startswith("Footnote: Draft version ") and block.endswith(
        " Typeset using LATEX **twocolumn** style in AASTeX631") for block in blocks)
    assert {"Footnote: Submitted to ApJ", "Footnote: Corresponding author: August Muench",
            "Footnote: gus.muench@example.org", "###### Keywords:"} <= set(blocks)
    assert "We thank the Swift team for scheduling the observations." in blocks  # the paragraphs after it stand alone
    assert "_Facilities:_ Swift(XRT and UVOT), AAVSO" in blocks
    assert "_Software:_ astropy, emcee, HEASoft" in blocks
    assert "V339 Del & 2013 & 41 \\\\" in markdown  # deluxetable
    assert "re-formed accretion disk (Navarro et al. 1997)." in markdown  # AASTeX's \\bibpunct: no comma before the year


def test_revtex42_author_footnotes_date_and_captions_are_printed_as_revtex_prints_them(first_pages):
    markdown, page = first_pages["revtex4-2"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert {"Footnote: ann.author@example.edu", "Footnote: Also at Physics Department, Another University.",
            "(Dated: March 3, 2025)", "FIG. 1. Edge velocity for five driving amplitudes.",
            "TABLE I. Edge velocity \\(v\\) per driving amplitude.", "Table I lists the fitted velocities."} <= set(blocks)
    assert "bulk invariants [1]," in markdown  # numeric citations, as apsrev4-2 prints them
    assert "]Physics" not in markdown and "APS/123-QED" not in markdown  # \preprint is not printed with reprint
    assert not {"###### Abstract", "###### Acknowledgements.", "## References"} & set(blocks)


def test_revtex_groups_the_authors_who_share_an_affiliation_over_it(first_pages):
    """Without superscriptaddress, REVTeX prints "A, B, and C" over the affiliation the three share (LaTeXML gives
    it to the last one only)."""
    markdown, page = first_pages["revtex4-2-grouped"]
    assert page.kept and page.score >= 0.97, (page.score, page.reason)
    assert ("Ann Author, Ben Second, and Carla Third\nInstitute for Quantum Matter, Example Laboratory, Exampleville "
            "54321, Germany") in markdown.split("\n\n")


def test_aastex63_and_62_papers_get_the_same_first_page_as_aastex631(tmp_path):
    """The 6.2 and 6.3 classes print the same title block; LaTeXML alone would fall back to its plain aastex."""
    (tmp_path / "main.tex").write_text(AASTEX.replace("{aastex631}", "{aastex63}"))
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=120), document_class="aastex63",
                                class_options="twocolumn")
    assert "Typeset using LATEX **twocolumn** style in AASTeX63" in markdown
    assert "Footnote: Submitted to ApJ" in markdown.split("\n\n")
