"""doc2md on the speech and signal-processing conference styles: docforge's `spconf.sty` binding (ICASSP, ICIP:
article + spconf) and `Interspeech.cls` binding (`Interspeech`, and `Interspeech2024` through LaTeXML's fallback
from the versioned name), with real latexmlc and the real markdown writer. Neither style is installed here, so
the papers do not ship them (the bindings are found by name either way, before a shipped copy), and the markdown
is checked against what the real spconf.sty (2007) and Interspeech.cls (2025) / Interspeech2024.cls print."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html

BODY = r"""\begin{abstract}
We enhance speech.
\end{abstract}
%s
\section{Introduction}
Masks help~\cite{boll}.
\subsection{Signal model}
\begin{figure}[t]
\caption{Block diagram.}
\end{figure}
\begin{table}[t]
\caption{Results.}
\begin{tabular}{lc}
A & 1 \\
\end{tabular}
\end{table}
\begin{thebibliography}{1}
\bibitem{boll} S.~Boll, ``Suppression of acoustic noise,'' 1979.
\end{thebibliography}
\end{document}
"""
SPCONF_KEYWORDS = r"""\begin{keywords}
Speech enhancement, beamforming
\end{keywords}"""
PAPERS = {
    "icassp_name": r"""\documentclass{article}
\usepackage{spconf,amsmath}
\title{A Compact MVDR Network}
\name{Maria Lindqvist and Kenji Watanabe\thanks{Supported by grant 2023-04411.}}
\address{Chalmers University of Technology \\ Gothenburg, Sweden}
\copyrightnotice{\copyright\ IEEE 2026}
\begin{document}
\ninept
\maketitle
""" + BODY % SPCONF_KEYWORDS,
    "icassp_two": r"""\documentclass{article}
\usepackage[preprint]{spconf}
\copyrightnotice{\copyright\ IEEE 2026}
\toappear{To appear in Proc.\ ICASSP 2026}
\title{Gated Filterbanks}
\twoauthors{Anna Kowalska\sthanks{Supported by the NCN.}}{Warsaw University of Technology\\Warsaw, Poland}
  {David Okafor}{Sonova AG\\St\"afa, Switzerland}
\begin{document}
\maketitle
""" + BODY % "",
    "interspeech": r"""\documentclass{Interspeech}
\interspeechcameraready
\title{Low-Latency Enhancement}
\author[affiliation=1,equalcontribution]{Lena}{Fischer}
\author[affiliation=1,equalcontribution]{Jonas}{Weber}
\author[affiliation=2]{Priya}{Raman}
\affiliation{Institute of Communication Acoustics}{Ruhr University Bochum}{Germany}
\affiliation[nocounter]{}{Fraunhofer IDMT}{Germany}
\affiliation{}{Samsung AI Center}{United Kingdom}
\email{lena.fischer@rub.de, p.raman@samsung.com}
\keywords{speech enhancement, hearing aids}
\begin{document}
\maketitle
""" + BODY % "",
    "interspeech2024_review": r"""\documentclass{Interspeech2024}
\title{Compact Beamforming}
\name[affiliation=1]{Sofia}{Marino}
\name[affiliation=2]{Hannes}{Berg}
\address{$^1$Politecnico di Milano, Italy; $^2$KTH, Sweden}
\email{sofia.marino@polimi.it}
\keywords{speech enhancement, MVDR}
\begin{document}
\maketitle
""" + BODY % "",
}


@pytest.fixture(scope="module")
def markdown(tmp_path_factory):
    """Each paper's markdown blocks."""
    def convert(name: str) -> list[str]:
        folder = tmp_path_factory.mktemp(name)
        (folder / "main.tex").write_text(PAPERS[name])
        return html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=120)).split("\n\n")
    return {name: convert(name) for name in PAPERS}


def footnotes(blocks: list[str]) -> list[str]:
    return [block for block in blocks if block.startswith("Footnote: ")]


def test_spconf_name_and_address_under_the_title_with_the_thanks(markdown):
    """spconf's \\@maketitle: `\\begin{tabular}[t]{c}\\@name \\\\ \\@address` under the title, \\name in italics,
    its \\thanks a footnote without mark; no copyright notice without [preprint]."""
    blocks = markdown["icassp_name"]
    assert blocks[:3] == ["# A Compact MVDR Network", "Maria Lindqvist and Kenji Watanabe",
                          "Chalmers University of Technology\nGothenburg, Sweden"], blocks
    assert footnotes(blocks) == ["Footnote: Supported by grant 2023-04411."]


def test_spconf_index_terms_captions_and_headings_as_printed(markdown):
    """spconf's {keywords} prints "Index Terms—" (bold italic: the writer keeps the bold) before them; \\fnum@figure "Fig. 1", \\fnum@table
    "Table 1" (bold) and \\@makecaption's ". "; \\@sect's "1." and "1.1." before the headings."""
    blocks = markdown["icassp_name"]
    assert "**Index Terms—** Speech enhancement, beamforming" in blocks, blocks
    assert {"## 1. Introduction", "### 1.1. Signal model", "**Fig. 1**. Block diagram.",
            "## References"} <= set(blocks), blocks
    assert any(block.startswith("**Table 1**. Results.") for block in blocks), blocks


def test_spconf_twoauthors_each_name_over_its_address_and_preprint_notes(markdown):
    """\\twoauthors sets two tabulars side by side, each name over its address lines; with [preprint] the first
    page's foot has \\toappear (left) and \\copyrightnotice (right)."""
    blocks = markdown["icassp_two"]
    assert blocks[1:3] == ["Anna Kowalska\nWarsaw University of Technology\nWarsaw, Poland",
                           "David Okafor\nSonova AG\nStäfa, Switzerland"], blocks
    assert footnotes(blocks) == ["Footnote: Supported by the NCN.", "Footnote: To appear in Proc. ICASSP 2026",
                                 "Footnote: © IEEE 2026"]


def test_interspeech_camera_ready_author_block_index_terms_and_headings(markdown):
    """Interspeech.cls (2025) with \\interspeechcameraready: "First Last$^{1,*}$" joined by ", ", a line
    "$^{n}$Dept, Institution, Country" per \\affiliation (no Dept: "Institution, Country"; [nocounter]: no mark, n
    not counted), the e-mails, the
    footnote "These authors contributed equally."; \\endabstract's "Index Terms: …"; "1." and "1.1." headings;
    captions as the caption package tags them."""
    blocks = markdown["interspeech"]
    assert blocks[:3] == [
        "# Low-Latency Enhancement",
        r"Lena Fischer\({}^{1,*}\), Jonas Weber\({}^{1,*}\), Priya Raman\({}^{2}\)",
        "\\({}^{1}\\)Institute of Communication Acoustics, Ruhr University Bochum, Germany\n"
        "Fraunhofer IDMT, Germany\n\\({}^{2}\\)Samsung AI Center, United Kingdom\nlena.fischer@rub.de, p.raman@samsung.com"], blocks
    assert footnotes(blocks) == ["Footnote: These authors contributed equally."]
    abstract = blocks.index("###### Abstract")
    assert blocks[abstract + 1:abstract + 3] == ["We enhance speech.", "**Index Terms**: speech enhancement, hearing aids"]
    assert {"### 1.1. Signal model", "Figure 1: Block diagram.", "## References"} <= set(blocks), blocks


def test_interspeech2024_review_version_prints_anonymous_submission_only(markdown):
    """Interspeech2024.cls (reached from the versioned name) without \\interspeechcameraready: \\anonname is
    "Anonymous submission to Interspeech 2024", \\anonaddress and \\anonemail are empty."""
    blocks = markdown["interspeech2024_review"]
    assert blocks[:3] == ["# Compact Beamforming", "Anonymous submission to Interspeech 2024", "###### Abstract"], blocks
    assert "**Index Terms**: speech enhancement, MVDR" in blocks, blocks
