"""doc2md on Astronomy & Astrophysics (aa.cls, not in TeX Live: the markdown is checked against what aa.cls v9.2
prints, quoted below) and on emulateapj (in TeX Live: real pdflatex, and its first page is kept). docforge's bindings
write the title block where and as the classes print it. Real LaTeXML, the real markdown writer."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.pages import split_markdown_into_pages
from tests.doc2md_papers import convert_paper

AA = r"""\documentclass[twocolumn]{aa}
\title{A search for molecular outflows in infrared dark clouds}
\author{C. Martinez\inst{1}\fnmsep\thanks{Corresponding author: \email{c.martinez@example.org}}
        \and D. Okafor\inst{2} \and E. Rossi\inst{1}}
\institute{Max Example Institute for Radio Astronomy, Bonn, Germany\\ \email{rossi@example.org}
           \and Department of Physics, Example State University, Springfield, USA}
\date{Received 3 March 2025 / Accepted 12 June 2025}
\abstract{}{We search for outflows towards twelve massive cores.}{We observed SiO (5--4) at 1\farcs2 resolution.}
{Outflows are detected towards nine cores.}{Star formation starts early in massive cores.}
\keywords{stars: formation -- ISM: jets and outflows}
\begin{document}
\maketitle
\section{Introduction}
Infrared dark clouds host the earliest stages of high-mass star formation \citep{rathborne06}.
\begin{table}
\caption{Targeted cores.}
\begin{tabular}{lc}
\hline
Core & CO \\
G11.11 P1 & yes\tablefootmark{a} \\
\hline
\end{tabular}
\tablefoot{\tablefoottext{a}{Confused with a neighbouring outflow.}}
\end{table}
\begin{figure}
\rule{2cm}{1cm}
\caption{SiO emission of G28.34 MM1.}
\end{figure}
\begin{thebibliography}{1}
\bibitem[{Rathborne {et~al.}(2006)Rathborne, Jackson, \& Simon}]{rathborne06}
Rathborne, J.~M., Jackson, J.~M., \& Simon, R. 2006, ApJ, 641, 389
\end{thebibliography}
\end{document}
"""

EMULATEAPJ = r"""\documentclass[iop]{emulateapj}
\shorttitle{X-ray cavities in groups}
\shortauthors{Walker et al.}
\begin{document}
\title{Chandra observations of X-ray cavities in nearby galaxy groups}
\author{Hannah R. Walker\altaffilmark{1} and Tomas Novak\altaffilmark{2}}
\affil{$^1$Department of Astronomy, University of Example, Madison, WI 53706, USA\\
$^2$Center for Astrophysics, 60 Garden Street, Cambridge, MA 02138, USA}
\begin{abstract}
We present a search for X-ray cavities in 26 nearby galaxy groups observed with Chandra and detect cavities in
11 of them, all of which host a central radio source.
\end{abstract}
\keywords{galaxies: groups: general --- X-rays: galaxies: clusters}
\section{Introduction}
Heating by the central active galactic nucleus is the most likely solution to the cooling flow problem
\citep{mcnamara07}: jets inflate bubbles that appear as cavities in X-ray images of the hot gas.
\begin{figure}
\rule{2cm}{1cm}
\caption{Cavity power against radio luminosity.}
\end{figure}
\begin{thebibliography}{}
\bibitem[{McNamara} \& {Nulsen}(2007)]{mcnamara07}
McNamara, B.~R., \& Nulsen, P.~E.~J. 2007, ARA\&A, 45, 117
\end{thebibliography}
\end{document}
"""


@pytest.fixture(scope="module")
def aa_markdown(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aa")
    (folder / "main.tex").write_text(AA)
    return html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120), document_class="aa",
                            class_options="twocolumn")


@pytest.fixture(scope="module")
def emulateapj(tmp_path_factory):
    markdown, _, doc = convert_paper(tmp_path_factory.mktemp("emulateapj"), "emulateapj", EMULATEAPJ)
    return markdown, split_markdown_into_pages(markdown, doc)[0]


def test_aa_title_block_is_written_in_the_order_and_words_aa_cls_prints(aa_markdown):
    """aa.cls prints: the head box "Astronomy & Astrophysics manuscript no. main ©ESO <year>" over the date, the
    title, "C. Martinez, D. Okafor, and E. Rossi", the institutes (\\email as "e-mail: …"), the date, then
    ABSTRACT with "Aims. …" (no "Context." when it is empty), "Key words. …", then the text."""
    blocks = aa_markdown.split("\n\n")
    assert any(block.startswith("Footnote: Astronomy & Astrophysics manuscript no. main ©ESO ") for block in blocks)
    assert "C. Martinez, D. Okafor, and E. Rossi" in blocks
    assert "Max Example Institute for Radio Astronomy, Bonn, Germany\ne-mail: rossi@example.org" in blocks
    assert "Footnote: Corresponding author: e-mail: c.martinez@example.org" in blocks
    order = [blocks.index(block) for block in (
        "# A search for molecular outflows in infrared dark clouds", "Received 3 March 2025 / Accepted 12 June 2025",
        "###### Abstract", "_Aims._ We search for outflows towards twelve massive cores.",
        "_Conclusions._ Star formation starts early in massive cores.", "###### Key words:", "## 1 Introduction")]
    assert order == sorted(order)
    assert "Context" not in aa_markdown
    assert "\\overset{\\prime\\prime}{.}" in aa_markdown and "aas@" not in aa_markdown  # \farcs as aa.cls sets it


def test_aa_captions_and_table_notes_are_printed_as_aa_cls_prints_them(aa_markdown):
    """"Table 1. …" and "Fig. 1. …"; \\tablefoot is the "Notes." paragraph under the tabular, not a footnote."""
    blocks = aa_markdown.split("\n\n")
    assert {"Table 1. Targeted cores.", "Fig. 1. SiO emission of G28.34 MM1."} <= set(blocks)
    table = next(block for block in blocks if block.startswith("\\begin{tabular}"))
    assert table.endswith("\\end{tabular}\n**Notes.** \\({}^{(a)}\\) Confused with a neighbouring outflow.")
    assert "G11.11 P1 & yes\\({}^{a}\\) \\\\" in table
    assert "star formation (Rathborne et al. 2006)." in aa_markdown


def test_emulateapj_first_page_has_its_preprint_lines_and_iop_labels_and_is_kept(emulateapj):
    markdown, page = emulateapj
    blocks = markdown.split("\n\n")
    assert page.kept, (page.score, page.reason)  # 0.944: the "Draft version" over the abstract comes after it
    assert any(block.startswith("Footnote: Draft version ") and block.endswith(
        " Preprint typeset using LATEX style emulateapj v. 12/16/11") for block in blocks)
    assert "Hannah R. Walker¹ and Tomas Novak²" in blocks  # no empty "Footnote 1:" for each \altaffilmark
    assert not any(block.startswith("Footnote 1") for block in blocks)
    assert {"###### Keywords:", "Figure 1. Cavity power against radio luminosity."} <= set(blocks)
    assert "(McNamara & Nulsen 2007):" in markdown
