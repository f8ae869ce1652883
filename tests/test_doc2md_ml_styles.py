"""doc2md on the NeurIPS and ICML styles: docforge's `neurips` and `icml` LaTeXML bindings (reached by LaTeXML's
fallback from `neurips_2024`, `icml2024`, …) with real latexmlc and the real markdown writer. The conference
.sty files are not installed here: where a paper ships one, the test writes a stand-in with only the lines the
bindings read (the notice macros, in the real styles' shape), and the markdown is checked against what the real
styles print on the first page."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html

NEURIPS_BODY = r"""\usepackage{xcolor}
\title{Sparse Routing}
\author{Ada Quint\thanks{Work done at Example Labs.} \\ Example Labs \\ \texttt{ada@example.org}}
\begin{document}
\maketitle
\begin{abstract}
We route tokens.
\end{abstract}
\section{Introduction}
Routing saves memory.
\begin{ack}
We thank the reviewers.
\end{ack}
\section*{NeurIPS Paper Checklist}
\begin{enumerate}
\item {\bf Claims}
  \item[] Answer: \answerYes{}
  \item[] Justification: Section 1.
\item {\bf Theory}
  \item[] Answer: \answerNA{}
\item {\bf Limitations}
  \item[] Answer: \answerNo{}
\end{enumerate}
\end{document}
"""
# neurips_20XX's notices, defined in this order under \if@preprint … \else \if@neuripsfinal … \else …; a
# workshop's edited copy of the style (its official line commented out), as arXiv sources ship them
NEURIPS_WORKSHOP_STY = r"""\ProvidesPackage{neurips_2024}
\newcommand{\@neuripsordinal}{38th}
\newcommand{\@neuripsyear}{2024}
\if@preprint
  \newcommand{\@noticestring}{%
    Preprint. Under review.%
  }
\else
  \if@neuripsfinal
    \newcommand{\@noticestring}{%
      \@neuripsordinal\/ Conference on Neural Information Processing Systems
      (NeurIPS \@neuripsyear).%, \@neuripslocation.%
    }
  \else
    \newcommand{\@noticestring}{%
      % Submitted to \@neuripsordinal\/ Conference on Neural Information Processing Systems.
      Submitted to the Workshop on Efficient Attention at NeurIPS \@neuripsyear. Do not distribute.%
    }
  \fi
\fi
"""
# nips_2016/nips_2017's notices: \if@nipsfinal … \else … (no preprint option), the location in the final one
NIPS_2017_STY = r"""\ProvidesPackage{nips_2017}
\newcommand{\@nipsordinal}{31st}
\newcommand{\@nipsyear}{2017}
\newcommand{\@nipslocation}{Long Beach, CA, USA}
\if@nipsfinal
  \newcommand{\@noticestring}{%
    \@nipsordinal\/ Conference on Neural Information Processing Systems
    (NIPS \@nipsyear), \@nipslocation.%
  }
\else
  \newcommand{\@noticestring}{%
    Submitted to \@nipsordinal\/ Conference on Neural Information
    Processing Systems (NIPS \@nipsyear). Do not distribute.%
  }
\fi
"""
ICML_BODY = r"""\begin{document}
\twocolumn[
\icmltitle{Skipping Gradient Steps}
\icmlsetsymbol{equal}{*}
\begin{icmlauthorlist}
\icmlauthor{Dana Okafor}{equal,uni}
\icmlauthor{Erik Lindqvist}{equal,uni,comp}
\icmlauthor{Fatima Haddad}{comp}
\end{icmlauthorlist}
\icmlaffiliation{uni}{Department of Statistics, University of Example, Boston, MA, USA}
\icmlaffiliation{comp}{Example AI, London, UK}
\icmlcorrespondingauthor{Dana Okafor}{dana@example.edu}
\icmlcorrespondingauthor{Erik Lindqvist}{erik@example.ai}
\icmlkeywords{Machine Learning, ICML}
\vskip 0.3in
]
\printAffiliationsAndNotice{\icmlEqualContribution}
\begin{abstract}
We skip steps.
\end{abstract}
\section{Introduction}
Skipping saves compute.
\end{document}
"""
# icml20XX's notices: [accepted] points \Notice@String at \ICML@appearing (here an arXiv copy's edit of it: the
# last definition TeX reads wins, a commented-out one is none)
ICML_PREPRINT_STY = r"""\ProvidesPackage{icml2024}
\DeclareOption{accepted}{%
  \renewcommand{\Notice@String}{\ICML@appearing}
  \gdef\isaccepted{1}
}
\newcommand{\ICML@appearing}{\textit{Proceedings of the 41st International Conference on Machine Learning}}
\renewcommand{\ICML@appearing}{\textit{Preprint.} Copyright 2024 by the author(s).}
% \renewcommand{\ICML@appearing}{Preliminary work. Do not distribute.}
\newcommand{\Notice@String}{Preliminary work.  Under review by the
International Conference on Machine Learning (ICML)\@.  Do not distribute.}
\ProcessOptions\relax
"""
ICLR_BODY = r"""\usepackage{amsmath}
\title{Sparse Routing}
\author{Ada Quint \\ Example Labs \\ \texttt{ada@example.org} \And Ben Ortiz \\ Example University}
FINAL
\begin{document}
\maketitle
\begin{abstract}
We route tokens, and $p \And q$ stays a formula.
\end{abstract}
\end{document}
"""
PAPERS = {  # name: (preamble, body, the style file the paper ships)
    "neurips_final": (r"\usepackage[final]{neurips_2023}", NEURIPS_BODY, None),
    "neurips_preprint": (r"\usepackage[preprint]{neurips_2024}", NEURIPS_BODY, None),
    "neurips_submission": (r"\usepackage{neurips_2024}", NEURIPS_BODY, ("neurips_2024.sty", NEURIPS_WORKSHOP_STY)),
    "nips_final": (r"\usepackage[final]{nips_2017}", NEURIPS_BODY, ("nips_2017.sty", NIPS_2017_STY)),
    "nips_preprint": (r"\usepackage[preprint]{nips_2018}", NEURIPS_BODY, None),
    "icml_accepted": (r"\usepackage[accepted]{icml2024}", ICML_BODY, ("icml2024.sty", ICML_PREPRINT_STY)),
    "icml_submission": (r"\usepackage{icml2024}", ICML_BODY, None),
    # \iclrfinalcopy after \author, as the template has it
    "iclr_final": (r"\usepackage{iclr2024_conference}", ICLR_BODY.replace("FINAL", r"\iclrfinalcopy"), None),
    "iclr_submission": (r"\usepackage{iclr2025_conference}", ICLR_BODY.replace("FINAL", ""), None),
}


@pytest.fixture(scope="module")
def markdown(tmp_path_factory):
    """Each paper's markdown blocks."""
    blocks = {}
    for name, (preamble, body, style) in PAPERS.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "main.tex").write_text(f"\\documentclass{{article}}\n{preamble}\n{body}")
        if style:
            (folder / style[0]).write_text(style[1])
        blocks[name] = html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120)).split("\n\n")
    return blocks


def footnotes(blocks: list[str]) -> list[str]:
    return [block for block in blocks if block.startswith("Footnote: ")]


@pytest.mark.parametrize("name, notice", [
    # the name's year gives the ordinal, as neurips_2023.sty's own macros say: 37th, 2023
    ("neurips_final", "37th Conference on Neural Information Processing Systems (NeurIPS 2023)."),
    ("neurips_preprint", "Preprint. Under review."),
    ("neurips_submission", "Submitted to the Workshop on Efficient Attention at NeurIPS 2024. Do not distribute."),
    # the NIPS names (nips_2016 to nips_2018) read through the same binding
    ("nips_final", "31st Conference on Neural Information Processing Systems (NIPS 2017), Long Beach, CA, USA."),
    ("nips_preprint", "Preprint. Work in progress."),
])
def test_neurips_first_page_notice_is_a_footnote_as_the_style_prints_it(markdown, name, notice):
    """The notice the style floats to the bottom of page 1, per option; where the paper ships the style (a
    workshop's edit here), its own text."""
    assert footnotes(markdown[name])[-1] == f"Footnote: {notice}", markdown[name]
    assert len(footnotes(markdown[name])) == (1 if name == "neurips_submission" else 2)  # + \thanks, unless anonymous


def test_neurips_checklist_answers_read_as_printed_and_keep_the_list_whole(markdown):
    """LaTeXML's own binding closed one group too many in \\answerYes (the checklist's enumerate ended there and
    the rest became loose paragraphs) and printed "[N/A]"; neurips_2024.sty prints [Yes], [No], [NA]."""
    text = "\n\n".join(markdown["neurips_final"])
    items = [line for line in text.splitlines() if line.startswith(("1. ", "2. ", "3. "))]
    assert items == ["1. **Claims**", "2. **Theory**", "3. **Limitations**"], text
    assert "Answer: [Yes]" in text and "Answer: [NA]" in text and "Answer: [No]" in text
    assert "N/A" not in text


def test_neurips_submission_is_anonymous_and_hides_the_acknowledgements(markdown):
    """Without final or preprint the style prints "Anonymous Author(s)", "Affiliation", "Address", "email" in
    place of the authors (their \\thanks too) and its `ack` environment prints nothing."""
    text = "\n\n".join(markdown["neurips_submission"])
    assert [word for word in ("Anonymous Author(s)", "Affiliation", "Address", "email") if word not in text] == []
    assert "Ada Quint" not in text and "Example Labs" not in text
    assert "reviewers" not in text and "Acknowledgments" not in text
    final = "\n\n".join(markdown["neurips_final"])
    assert "Ada Quint" in final and "## Acknowledgments and Disclosure of Funding\n\nWe thank the reviewers." in final


def test_icml_accepted_prints_author_marks_and_the_affiliations_footnote(markdown):
    """\\icmlsetsymbol's symbol and the affiliations numbered in order of first use mark the names; one footnote
    holds \\icmlEqualContribution, the affiliations, "Correspondence to: …" and the notice ([accepted]: the
    shipped style's \\ICML@appearing); \\icmlkeywords prints nothing."""
    blocks = markdown["icml_accepted"]
    text = "\n\n".join(blocks)
    assert "Dana Okafor*¹" in text and "Erik Lindqvist*¹²" in text and "Fatima Haddad²" in text, text
    assert footnotes(blocks) == [
        "Footnote: *Equal contribution ¹Department of Statistics, University of Example, Boston, MA, USA "
        "²Example AI, London, UK. Correspondence to: Dana Okafor <dana@example.edu>, "
        "Erik Lindqvist <erik@example.ai>. _Preprint._ Copyright 2024 by the author(s)."]
    assert "Machine Learning, ICML" not in text


def test_icml_submission_is_anonymous_with_the_review_notice(markdown):
    """Without [accepted]: "Anonymous Authors¹" once, the anonymous institution and correspondent, no equal
    contribution, and the review notice (what every icml20XX prints: no style file shipped here)."""
    blocks = markdown["icml_submission"]
    text = "\n\n".join(blocks)
    assert "Anonymous Authors¹" in text and text.count("Anonymous Authors") == 1
    assert "Okafor" not in text and "Haddad" not in text and "Example AI" not in text
    assert footnotes(blocks) == [
        "Footnote: ¹Anonymous Institution, Anonymous City, Anonymous Region, Anonymous Country. Correspondence to: "
        "Anonymous Author <anon.email@domain.com>. Preliminary work. Under review by the International Conference "
        "on Machine Learning (ICML). Do not distribute."]


def test_iclr_submission_prints_anonymous_authors_and_a_final_copy_its_authors(markdown):
    """iclr20XX_conference.sty without \\iclrfinalcopy sets "Anonymous authors" / "Paper under double-blind review"
    in place of the authors; with it, each author (split at \\And) a block of their lines."""
    assert markdown["iclr_submission"][1] == "Anonymous authors\nPaper under double-blind review"
    assert "Ada Quint" not in "\n\n".join(markdown["iclr_submission"])
    assert markdown["iclr_final"][1:3] == ["Ada Quint\nExample Labs\nada@example.org", "Ben Ortiz\nExample University"]
    assert r"\(p\And q\)" in "\n\n".join(markdown["iclr_final"])
