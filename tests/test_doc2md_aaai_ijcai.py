"""doc2md on the AAAI and IJCAI styles: docforge's `aaai` and `ijcai` LaTeXML bindings (reached by LaTeXML's
fallback from `aaai24`, `aaai2026`, `ijcai25`, …) with real latexmlc and the real markdown writer. The styles are
not installed here: where a paper ships one, the test writes a stand-in with only the lines the binding reads
(in the real aaai25.sty's shape), and the markdown is checked against what the real styles print."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html

AAAI_PREAMBLE = r"""\documentclass[letterpaper]{article}
\usepackage%s
\usepackage{times}
\usepackage[hyphens]{url}
\usepackage{natbib}
\pdfinfo{
/TemplateVersion (2025.1)
}
%s
\title{Verified Subgoals}
"""
AAAI_BODY = r"""\begin{document}
\maketitle
\begin{abstract}
We plan.
\end{abstract}
\begin{links}
    \link{Code}{https://example.org/code}
\end{links}
\section{Introduction}
Planners are slow \cite{helmert2006,lowe2017}, as \citet{lowe2017} note \shortcite{helmert2006}.
\begin{thebibliography}{2}
\bibitem[{Helmert(2006)}]{helmert2006}
Helmert, M. 2006.
\newblock The Fast Downward planning system.
\bibitem[{Lowe et~al.(2017)Lowe, Wu, and Tamar}]{lowe2017}
Lowe, R.; Wu, Y.; and Tamar, A. 2017.
\newblock Multi-agent actor-critic.
\end{thebibliography}
\end{document}
"""
AAAI_AUTHORS = r"""\author{
    Maria Gonz\'alez\textsuperscript{\rm 1}\equalcontrib,
    Wei Chen\textsuperscript{\rm 2}\equalcontrib
}
\affiliations{
    \textsuperscript{\rm 1}University of Example\\
    \textsuperscript{\rm 2}Example AI Research\\
    \{mgonzalez, wchen\}@example.edu
}"""
AAAI_STAFF = r"""\author{
    Written by AAAI Press Staff\textsuperscript{\rm 1}\thanks{With help from the AAAI Publications Committee.}\\
}
\affiliations{
    \textsuperscript{\rm 1}Association for the Advancement of Artificial Intelligence\\
    proceedings-questions@aaai.org
}"""
# aaai25.sty's lines that the binding reads: the year, the copyright text (\copyrighttext's \gdef of it comes
# after), the anonymous line
AAAI25_STY = r"""\ProvidesPackage{aaai25}[2025/05/08 AAAI 2025 Submission format]%
\def\year{2025}%
\def\copyright@year{\number\year}
\def\copyright@text{Copyright \copyright\space \copyright@year,
Association for the Advancement of Artificial Intelligence (www.aaai.org).
All rights reserved.}
\def\copyrighttext#1{\gdef\copyright@on{T}\gdef\copyright@text{#1}}
\def\@maketitle{%
  \def\theauthors{\if T\showauthors@on\@author\else Anonymous submission\fi}
}
"""
IJCAI_PAPER = r"""\documentclass{article}
\usepackage{ijcai25}
\usepackage{times}
\usepackage{amsmath}
\title{Counterfactual Explanations}
\author{
Anna M\"uller$^1$
\and
Rahul Iyer$^2$\and
Sofia Rossi$^{2,3}$\And
James O'Connor$^4$\\
\affiliations
$^1$Technical University of Example\\
$^2$University of Example\\
$^3$National Research Council\\
$^4$Example Labs\\
\emails
\{anna, rahul\}@example.edu,
james@example.com
}
\begin{document}
\maketitle
\begin{abstract}
We explain.
\end{abstract}
\section{Introduction}
The standard answer is a core \cite{liffiton2008}, or several \cite{liffiton2008,miller2019}; as
\citeauthor{miller2019}~\shortcite{miller2019} found, users prefer advice.
\begin{thebibliography}{}
\bibitem[\protect\citeauthoryear{Liffiton and Sakallah}{2008}]{liffiton2008}
Mark~H. Liffiton and Karem~A. Sakallah.
\newblock Algorithms for computing minimal unsatisfiable subsets of constraints.
\bibitem[\protect\citeauthoryear{Miller}{2019}]{miller2019}
Tim Miller.
\newblock Explanation in artificial intelligence.
\end{thebibliography}
\end{document}
"""
PAPERS = {  # name: the paper's files (main.tex, and the style file where the paper ships it)
    "aaai_camera": {"main.tex": AAAI_PREAMBLE % ("{aaai24}", AAAI_AUTHORS) + AAAI_BODY},
    "aaai_submission": {"main.tex": AAAI_PREAMBLE % ("[submission]{aaai24}", AAAI_STAFF) + AAAI_BODY},
    "aaai_shipped": {"main.tex": AAAI_PREAMBLE % ("{aaai25}", AAAI_STAFF) + AAAI_BODY, "aaai25.sty": AAAI25_STY},
    "aaai_nocopyright": {"main.tex": AAAI_PREAMBLE % ("{aaai25}", AAAI_STAFF + r"\nocopyright") + AAAI_BODY},
    "ijcai": {"main.tex": IJCAI_PAPER},
}


@pytest.fixture(scope="module")
def markdown(tmp_path_factory):
    """Each paper's markdown blocks."""
    def convert(name: str) -> list[str]:
        folder = tmp_path_factory.mktemp(name)
        for filename, text in PAPERS[name].items():
            (folder / filename).write_text(text)
        return html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120)).split("\n\n")
    return {name: convert(name) for name in PAPERS}


def footnotes(blocks: list[str]) -> list[str]:
    return [block for block in blocks if block.startswith("Footnote: ")]


def test_aaai_camera_ready_prints_affiliations_equal_contribution_and_copyright(markdown):
    """aaai2X.sty sets \\author as written with \\equalcontrib's "*", the \\affiliations lines under it, and at the
    foot of the first column "These authors contributed equally." and the copyright notice of the name's year."""
    blocks = markdown["aaai_camera"]
    assert blocks[1:3] == ["Maria González¹*, Wei Chen²*",
                           "¹University of Example\n²Example AI Research\n{mgonzalez, wchen}@example.edu"], blocks
    assert footnotes(blocks) == [
        "Footnote: These authors contributed equally.",
        "Footnote: Copyright © 2024, Association for the Advancement of Artificial Intelligence (www.aaai.org). "
        "All rights reserved."]


def test_aaai_citations_links_and_unnumbered_sections_as_printed(markdown):
    """With natbib the style makes \\cite \\citep with no comma before the year, \\shortcite \\citeyearpar;
    {links} prints "Code — URL"; sections are unnumbered (secnumdepth 0)."""
    text = "\n\n".join(markdown["aaai_camera"])
    assert "Planners are slow (Helmert 2006; Lowe et al. 2017), as Lowe et al. (2017) note (2006)." in text, text
    assert "**Code** — https://example.org/code" in text
    assert "## Introduction" in text


def test_aaai_submission_prints_anonymous_submission_only(markdown):
    """[submission]: "Anonymous submission" in place of the authors; no affiliations, \\thanks or copyright;
    \\pdfinfo prints nothing."""
    blocks = markdown["aaai_submission"]
    text = "\n\n".join(blocks)
    assert blocks[1] == "Anonymous submission", blocks
    assert "AAAI Press Staff" not in text and "Association for the" not in text and "Publications" not in text
    assert "TemplateVersion" not in text and footnotes(blocks) == []


def test_aaai_shipped_style_gives_the_copyright_and_nocopyright_drops_it(markdown):
    """Where the paper ships aaai25.sty its \\copyright@text and \\year are read (its first definition, not
    \\copyrighttext's \\gdef); \\nocopyright removes the notice; \\thanks stays a footnote."""
    assert footnotes(markdown["aaai_shipped"]) == [
        "Footnote: With help from the AAAI Publications Committee.",
        "Footnote: Copyright © 2025, Association for the Advancement of Artificial Intelligence (www.aaai.org). "
        "All rights reserved."]
    assert footnotes(markdown["aaai_nocopyright"]) == ["Footnote: With help from the AAAI Publications Committee."]


def test_ijcai_author_block_is_one_line_of_names_then_affiliations_and_emails(markdown):
    """ijcai2X.sty's \\maketitle: \\and a comma, \\And "and", the names on one line; \\affiliations and \\emails
    start new lines."""
    assert markdown["ijcai"][1] == (
        "Anna Müller\\({}^{1}\\), Rahul Iyer\\({}^{2}\\), Sofia Rossi\\({}^{2,3}\\) and James O’Connor\\({}^{4}\\)\n"
        "\\({}^{1}\\)Technical University of Example\n\\({}^{2}\\)University of Example\n"
        "\\({}^{3}\\)National Research Council\n\\({}^{4}\\)Example Labs\n{anna, rahul}@example.edu, james@example.com")


def test_ijcai_named_citations_and_reference_labels(markdown):
    """named.sty (inside ijcai2X.sty): \\cite "[Author, Year]", several joined by "; ", \\shortcite "[Year]",
    and each reference labelled "[Author, Year]"."""
    text = "\n\n".join(markdown["ijcai"])
    assert "a core [Liffiton and Sakallah, 2008], or several [Liffiton and Sakallah, 2008; Miller, 2019]" in text
    assert "as Miller [2019] found" in text
    assert "* [Liffiton and Sakallah, 2008] Mark H. Liffiton and Karem A. Sakallah." in text
    assert "* [Miller, 2019] Tim Miller." in text
