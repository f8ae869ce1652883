"""doc2md on Elsevier's CAS class (cas-sc; cas-dc shares its binding) and SPIE's proceedings class (spie.cls, both
in TeX Live), which LaTeXML has no binding for: docforge's bindings (`docforge-cas.sty`, `spie.cls.ltxml`) and
`CasMarkdownWriter` write the front matter as the classes print it, so the highlights page and the first pages are
kept. Real pdflatex with the real classes, real LaTeXML, the real page split."""

import pytest

from pipelines.doc2md.pages import split_markdown_into_pages
from tests.doc2md_papers import convert_paper

BODY = ("Lithium-ion cells fade slowly for hundreds of cycles and then quickly, so that their life is known only "
        "after months of testing, which early prediction from the first cycles would save. ") * 8

CAS = r"""\documentclass[a4paper,fleqn]{cas-sc}
\usepackage[numbers]{natbib}
\begin{document}
\shorttitle{Battery life}
\shortauthors{M. Rossi et~al.}
\title [mode = title]{Early prediction of lithium-ion battery cycle life with a temporal attention network}
\tnotemark[1]
\tnotetext[1]{Funded by the Example Science Foundation.}
\author[1]{Marco Rossi}[orcid=0000-0002-1825-0097]
\cormark[1]
\ead{marco.rossi@polimi.it}
\ead[url]{https://www.polimi.it/energy}
\credit{Conceptualization, Software}
\affiliation[1]{organization={Politecnico di Milano}, addressline={Via Lambruschini 4}, city={Milan},
    postcode={20156}, country={Italy}}
\author[2]{Zhang Wei}[style=chinese]
\ead{zhangwei@tsinghua.edu.cn}
\credit{Data curation}
\affiliation[2]{organization={Tsinghua University}, city={Beijing}, country={China}}
\author[1,2]{Anna Keller}
\cortext[cor1]{Corresponding author}
\begin{abstract}
We predict the cycle life of lithium-ion cells from their first hundred cycles with an attention network.
\end{abstract}
\begin{highlights}
\item Cycle life is predicted from the initial 100 cycles.
\item The error is 7.9 per cent.
\end{highlights}
\begin{keywords}
lithium-ion battery \sep cycle life \sep attention
\end{keywords}
\maketitle
\section{Introduction}
BODY
\printcredits
\end{document}
""".replace("BODY", BODY)

SPIE = r"""\documentclass[a4paper]{spie}
\title{Laboratory characterization of a pyramid wavefront sensor}
\author{Giulia Bianchi\supit{a}, Thomas Weber\supit{b}, and Emma Laurent\supit{a}
\skiplinehalf
\supit{a}INAF -- Osservatorio Astronomico di Padova, Vicolo dell'Osservatorio 5, Padova, Italy\\
\supit{b}European Southern Observatory, Karl-Schwarzschild-Str. 2, Garching, Germany}
\authorinfo{Send correspondence to G.B.: E-mail: giulia.bianchi@inaf.it}
\begin{document}
\maketitle
\begin{abstract}
We present the laboratory characterization of the pyramid wavefront sensor prototype built for the natural guide
star channel of an adaptive optics instrument, on a bench with a deformable mirror of 468 actuators.
\end{abstract}
\keywords{Adaptive optics, pyramid wavefront sensor, laboratory testing}
\section{INTRODUCTION}
The pyramid sensor is more sensitive than the Shack-Hartmann sensor, but its optical gain depends on the
residual turbulence and has to be calibrated on the sky, which we test on a laboratory prototype here.
\acknowledgments
We thank the consortium for the loan of the deformable mirror.
\end{document}
"""


def convert(tmp_path_factory, name: str, source: str):
    """(markdown, page splits) of one paper, compiled and converted as doc2md does."""
    markdown, _, doc = convert_paper(tmp_path_factory.mktemp(name), name, source)
    return markdown, split_markdown_into_pages(markdown, doc, 0.9)


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    return convert(tmp_path_factory, "cas", CAS)


@pytest.fixture(scope="module")
def spie(tmp_path_factory):
    return convert(tmp_path_factory, "spie", SPIE)


def test_cas_highlights_page_and_title_page_are_kept(cas):
    """The highlights page (before the title page) and the title page with its front matter are both kept. (A
    title of one line, repeated at the top of both pages, is taken for a running header by the page split.)"""
    markdown, pages = cas
    assert [page.kept for page in pages[:2]] == [True, True], [(page.score, page.reason) for page in pages]
    assert markdown.index("Highlights") < markdown.index("# Early prediction")
    assert "* Cycle life is predicted from the initial 100 cycles." in markdown
    assert "Marco Rossi,Zhang Wei,Anna Keller" in markdown


def test_cas_front_matter_is_written_as_the_class_prints_it(cas):
    """Names "A, B and C", key-value affiliations as their parts, keywords one a line under ARTICLE INFO before
    the abstract, e-mails/URLs/ORCIDs as footnotes naming their authors by initials, the title and corresponding
    author notes, and `\\printcredits`; none of the arguments leaks as raw text."""
    markdown, _ = cas
    assert "Marco Rossi, Zhang Wei and Anna Keller" in markdown
    assert "Politecnico di Milano, Via Lambruschini 4, Milan, 20156, Italy" in markdown
    assert "ARTICLE INFO\n_Keywords:_\nlithium-ion battery\ncycle life\nattention\n\nABSTRACT\n\nWe predict" in markdown
    for footnote in ["Footnote: marco.rossi@polimi.it (M. Rossi); zhangwei@tsinghua.edu.cn (Z. Wei)",
                     "Footnote: https://www.polimi.it/energy (M. Rossi)",
                     "Footnote: ORCID(s): 0000-0002-1825-0097 (M. Rossi)",
                     "Footnote: Funded by the Example Science Foundation.", "Footnote: Corresponding author"]:
        assert footnote in markdown.split("\n\n")
    assert "## CRediT authorship contribution statement\n\n**Marco Rossi:** Conceptualization, Software." in markdown
    assert not any(raw in markdown for raw in ["organization=", "orcid=", "[1]", "\\sep", "style="])


def test_spie_first_page_is_kept_with_its_authors_and_correspondence_footnote(spie):
    """spie.cls's `\\author{…\\supit{a}… \\skiplinehalf …}` as its lines, `\\authorinfo` a footnote (it was printed
    before the title), the keywords in place."""
    markdown, pages = spie
    assert pages[0].kept, (pages[0].score, pages[0].reason)
    assert markdown.startswith("# Laboratory characterization of a pyramid wavefront sensor\n\n"
                               "Giulia Bianchi, Thomas Weber, and Emma Laurent\nINAF – Osservatorio")
    assert "Footnote: Send correspondence to G.B.: E-mail: giulia.bianchi@inaf.it" in markdown.split("\n\n")
    assert "**Keywords:** Adaptive optics, pyramid wavefront sensor, laboratory testing" in markdown
    assert "## ACKNOWLEDGMENTS" in markdown
