"""doc2md's front matter and footnotes on real LaTeXML output: the publisher classes' authors, contacts and
metadata notes (LaTeXML's own bindings, no .cls needed), `\\thanks`, and footnotes that LaTeX loses in a tabular."""

import pymupdf
import pytest

from pipelines.doc2md.compile import compile_pdf
from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.pages import split_markdown_into_pages
from pipelines.doc2md.unpack import file_class

BODY = "\\begin{abstract}\nWe report.\n\\end{abstract}\n"
SOURCES = {
    "ieeetran": r"""\documentclass[conference]{IEEEtran}
\begin{document}
\title{Sparse Routing}
\author{\IEEEauthorblockN{Alice Martin}
\IEEEauthorblockA{\textit{Dept. of Electrical Engineering} \\ \textit{Northbridge University}\\ Boston, USA \\
alice@northbridge.edu}
\and
\IEEEauthorblockN{Bogdan Petrov}
\IEEEauthorblockA{\textit{Systems Group} \\ Zurich, Switzerland \\ petrov@keller.ch}}
\maketitle
BODY\end{document}
""",
    "llncs": r"""\documentclass[runningheads]{llncs}
\begin{document}
\title{Mirror Descent}
\author{Clara Jensen\inst{1}\orcidID{0000-0002-1825-0097} \and Daniel Okafor\inst{2} \and Emma Lindqvist\inst{1,2}}
\institute{Aarhus University, Aarhus, Denmark\\ \email{clara@cs.au.dk}\and
Lund University, Lund, Sweden\\ \email{\{okafor,emma\}@math.lu.se}}
\maketitle
BODY\end{document}
""",
    "acmart": r"""\documentclass[sigconf]{acmart}
\setcopyright{acmlicensed}
\copyrightyear{2025}
\acmYear{2025}
\acmDOI{10.1145/1234567.1234568}
\acmConference[KDD '25]{Proceedings of KDD}{August 3--7, 2025}{Toronto, Canada}
\acmISBN{978-1-4503-XXXX-X/2025/08}
\begin{document}
\title{Streaming Deduplication}
\author{Farah Haddad}
\affiliation{\institution{Cedar Labs}\city{Beirut}\country{Lebanon}}
\email{farah@cedarlabs.ai}
\author{Gustavo Ribeiro}
\affiliation{\institution{Universidade de S\~ao Paulo}\city{S\~ao Paulo}\country{Brazil}}
\email{gribeiro@usp.br}
BODY\ccsdesc[500]{Information systems~Data mining}
\maketitle
\end{document}
""",
    "elsarticle": r"""\documentclass[preprint,12pt]{elsarticle}
\journal{Computers \& Geosciences}
\begin{document}
\begin{frontmatter}
\title{Groundwater Recharge}
\author[a]{Jana Nov\'akov\'a\corref{cor1}}
\ead{jana.novakova@cuni.cz}
\ead[url]{https://hydro.cuni.cz}
\author[b]{Lukas Meier}
\ead{meier@ethz.ch}
\cortext[cor1]{Corresponding author}
\affiliation[a]{organization={Charles University}, addressline={Albertov 6}, city={Prague}, postcode={128 00},
  country={Czech Republic}}
\affiliation[b]{ETH Zurich, Switzerland}
BODY\end{frontmatter}
\end{document}
""",
    "revtex": r"""\documentclass[aps,prl,twocolumn,superscriptaddress]{revtex4-2}
\begin{document}
\title{Topological Edge Modes}
\author{Hiroshi Tanaka}
\affiliation{Department of Physics, Kyoto University, Japan}
\author{Isabel Moreno}
\thanks{On leave from Madrid.}
\affiliation{Institute for Quantum Optics, Madrid, Spain}
\affiliation{Department of Physics, Kyoto University, Japan}
BODY\maketitle
\end{document}
""",
    "amsart": r"""\documentclass{amsart}
\begin{document}
\title{Lattice Points}
\author{Karl Weber}
\address{Mathematisches Institut, Universit\"at Bonn, Germany}
\email{weber@math.uni-bonn.de}
BODY\maketitle
\end{document}
""",
    "article": r"""\documentclass{article}
\begin{document}
\title{Plain Title\thanks{Title note.}}
\author{Mira Castellanos\thanks{Corresponding author.} \and Jonah Whitfield}
\maketitle
BODY\end{document}
""",
}


@pytest.fixture(scope="module")
def front_matter(tmp_path_factory):
    """Each source's blocks from the title to the abstract (the title first, "###### Abstract" left out)."""
    blocks = {}
    for name, source in SOURCES.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "main.tex").write_text(source.replace("BODY", BODY))
        options, document_class = file_class(folder / "main.tex")
        text = html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120), document_class=document_class,
                                class_options=options)
        found = text.split("\n\n")
        blocks[name] = found[:next(i for i, block in enumerate(found) if "Abstract" in block or block == "We report.")]
    return blocks


@pytest.mark.parametrize("name, expected", [
    ("ieeetran", ["# Sparse Routing", "Alice Martin, Bogdan Petrov",
                  "_Dept. of Electrical Engineering_\n_Northbridge University_\nBoston, USA\nalice@northbridge.edu",
                  "_Systems Group_\nZurich, Switzerland\npetrov@keller.ch"]),
    # LaTeXML leaves llncs's institutes before the title and the \inst marks as bare digits ("1122")
    ("llncs", ["# Mirror Descent", "Clara Jensen, Daniel Okafor, Emma Lindqvist",
               "Aarhus University, Aarhus, Denmark\nclara@cs.au.dk", "Lund University, Lund, Sweden\n{okafor,emma}@math.lu.se"]),
    # acmart's sigconf prints each name over its contacts (its CCS concepts, reference and rights: test_doc2md_acmart)
    ("acmart", ["# Streaming Deduplication", "Farah Haddad\nCedar Labs, Beirut, Lebanon\nfarah@cedarlabs.ai",
                "Gustavo Ribeiro\nUniversidade de São Paulo, São Paulo, Brazil\ngribeiro@usp.br"]),
    # elsarticle 3's key-value \affiliation printed as its parts; e-mails and URLs a footnote naming their authors
    ("elsarticle", ["# Groundwater Recharge", "Jana Nováková, Lukas Meier",
                    "Charles University, Albertov 6, Prague, 128 00, Czech Republic\nETH Zurich, Switzerland",
                    "Footnote: _Email addresses:_ jana.novakova@cuni.cz (Jana Nováková), meier@ethz.ch (Lukas Meier)",
                    "Footnote: _URL:_ https://hydro.cuni.cz (Jana Nováková)"]),
    # a shared affiliation once, as the PDF prints it (its \thanks a title-block footnote: test_doc2md_physics_classes)
    ("revtex", ["# Topological Edge Modes", "Hiroshi Tanaka and Isabel Moreno", "Department of Physics, Kyoto University, Japan",
                "Institute for Quantum Optics, Madrid, Spain"]),
    ("amsart", ["# Lattice Points", "Karl Weber"]),  # amsart prints the address after the references
    ("article", ["# Plain Title", "Mira Castellanos, Jonah Whitfield", "Footnote: Title note.", "Footnote: Corresponding author."]),
])
def test_author_contacts_are_plain_lines_under_the_names_and_only_thanks_is_a_footnote(front_matter, name, expected):
    assert front_matter[name] == expected


def test_class_metadata_notes_and_bare_marks_are_not_written(front_matter):
    written = "\n\n".join(block for blocks in front_matter.values() for block in blocks)
    for metadata in ("acmlicensed", "10.1145", "978-1-4503", "Proceedings of KDD", "Data mining", "Computers & Geosciences",
                     "0000-0002-1825-0097", "institutetext", "email:", "thanks:", "†"):
        assert metadata not in written


TABLE_FOOTNOTES_TEX = r"""\documentclass{article}
\begin{document}
Body.
\begin{table}[h]
\centering
\caption{Float cell note.}
\begin{tabular}{lc} Iota\footnote{The iota row is estimated.} & 9 \\ Kappa & 10 \\ \end{tabular}
\end{table}
\begin{table}[h]
\begin{minipage}{0.45\textwidth}
\begin{tabular}{lc} Alpha\footnote{Side A note.} & 1 \\ \end{tabular}
\caption{Left.}
\end{minipage}\hfill
\begin{minipage}{0.45\textwidth}
\begin{tabular}{lc} Beta & 2 \\ \end{tabular}
\caption{Right.}
\end{minipage}
\end{table}
\begin{tabular}{lc} Gamma\footnote{Inline tabular note.} & 3 \\ \end{tabular}
\end{document}
"""


def test_a_footnote_in_a_tabular_keeps_only_its_mark_unless_in_a_minipage_as_the_pdf_prints_it(tmp_path):
    main = tmp_path / "main.tex"
    main.write_text(TABLE_FOOTNOTES_TEX)
    text = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    pdf, _ = compile_pdf(tmp_path, main, "table-footnotes")
    printed = " ".join(" ".join(page.get_text() for page in pymupdf.open(pdf)).split())
    for lost in ("The iota row is estimated.", "Inline tabular note."):
        assert lost not in printed and lost not in text
    assert "Iota¹ & 9" in text
    # a minipage prints its footnotes under it, marked a, b, …
    assert "Alphaa" in printed and "aSide A note." in printed
    assert "Alphaᵃ & 1" in text and "Footnote a: Side A note." in text.split("\n\n")


AMS_PAPER = r"""\documentclass{amsart}
\begin{document}
\title{Counting Lattice Points}
\author{Karl Weber}
\address{Mathematisches Institut, Universit\"at Bonn\\ Endenicher Allee 60, Bonn, Germany}
\curraddr{Max Planck Institute for Mathematics, Bonn, Germany}
\email{weber@math.uni-bonn.de}
\urladdr{https://www.math.uni-bonn.de/~weber}
\author{Lucia Bianchi}
\address{Dipartimento di Matematica, Universit\`a di Pisa, Italy}
\email{bianchi@dm.unipi.it}
\author{Marta Nowak}
\address{Instytut Matematyczny PAN, Warsaw, Poland}
\date{January 5, 2026}
\subjclass[2020]{Primary 52B20; Secondary 11P21}
\keywords{Ehrhart polynomial, lattice polytope}
\begin{abstract}
We give a new bound for the coefficients of the Ehrhart polynomial of a lattice polytope.
\end{abstract}
\maketitle
\section{Introduction}
BODY
\begin{thebibliography}{1}
\bibitem{E} E. Ehrhart, Sur les poly\`edres rationnels, C. R. Acad. Sci. Paris 254 (1962), 616--618.
\end{thebibliography}
\end{document}
"""


def test_amsart_front_matter_goes_where_the_pdf_prints_it(tmp_path):
    """amsart prints the date, subject classification and keywords as first-page footnotes and the addresses
    after the references; the authors as "A, B, and C". Before, all of it sat under the title and an amsart
    paper's first page scored about 0.5."""
    body = " ".join(["A lattice polytope is the convex hull of finitely many lattice points, and the number of "
                     "lattice points in its dilates is a polynomial whose coefficients we bound."] * 6)
    (tmp_path / "main.tex").write_text(AMS_PAPER.replace("BODY", body))
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "amsart-test")
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=120), document_class="amsart")
    blocks = markdown.strip().split("\n\n")
    assert blocks[:2] == ["# Counting Lattice Points", "Karl Weber, Lucia Bianchi, and Marta Nowak"]
    assert blocks[-3:] == [
        "Mathematisches Institut, Universität Bonn, Endenicher Allee 60, Bonn, Germany\n"
        "_Current address_: Max Planck Institute for Mathematics, Bonn, Germany\n"
        "_Email address_: weber@math.uni-bonn.de\n_URL_: https://www.math.uni-bonn.de/~weber",
        "Dipartimento di Matematica, Università di Pisa, Italy\n_Email address_: bianchi@dm.unipi.it",
        "Instytut Matematyczny PAN, Warsaw, Poland"]
    for note in ("Footnote: _Date_: January 5, 2026.",
                 "Footnote: _2020 Mathematics Subject Classification._ Primary 52B20; Secondary 11P21.",
                 "Footnote: _Key words and phrases._ Ehrhart polynomial, lattice polytope."):
        assert note in blocks
    (page,) = split_markdown_into_pages(markdown, pymupdf.open(pdf))
    assert page.kept and page.score > 0.97, (page.score, page.markdown)
    assert page.markdown.index("Instytut Matematyczny") > page.markdown.index("Ehrhart, Sur les")


def test_an_elsarticle_first_page_with_key_value_affiliations_is_kept(tmp_path):
    """Elsevier's template since 2019: `\\affiliation[a]{organization=…, city=…}` (printed as raw text before),
    `\\cortext`, e-mail footnotes, the "Preprint submitted to …" footer with its date (page furniture)."""
    main = tmp_path / "main.tex"
    main.write_text(SOURCES["elsarticle"].replace("BODY", BODY + "\\end{frontmatter}\n\\section{Introduction}\n"
                                                  + "Recharge is the flux of water that reaches the saturated zone. " * 6
                                                  + "\n\\begin{frontmatter}"))
    pdf, _ = compile_pdf(tmp_path, main, "elsarticle-test")
    doc = pymupdf.open(pdf)
    options, document_class = file_class(main)
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=120), document_class=document_class,
                                class_options=options)
    page = split_markdown_into_pages(markdown, doc)[0]
    assert "organization" not in markdown and "Footnote: Corresponding author" in markdown.split("\n\n")
    assert "Preprint submitted to" in doc[0].get_text()
    assert page.kept and page.score >= 0.95, (page.score, page.reason)
