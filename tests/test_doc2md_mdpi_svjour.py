"""doc2md on MDPI's class (`\\documentclass[journal,article,submit,pdftex,moreauthors]{Definitions/mdpi}`), which
TeX Live does not ship: arXiv sources carry it in Definitions/ beside main.tex. docforge's binding
(`mdpi.cls.ltxml`, reached through `Definitions/mdpi.cls.ltxml`) writes what the real class (v6.5a) prints; the
expected text below quotes its PDF: the first page's "Maria Rossi 1,†, Jonas Berg 2,† and Li Wen 1,*", the
numbered affiliations, "* Correspondence: …", "† These authors contributed equally to this work.", "Abstract",
"Keywords: …", the left column "Academic Editor: Anna Kowalska / Received: … / Accepted: … / Published: … /
Copyright: © 2025 by the authors. Submitted to Appl. Sci. for possible open access publication under the terms and
conditions of the Creative Commons Attribution (CC BY) license.", the citations "[1]", "[1,2]", the back matter's
"Author Contributions: …", "Abbreviations", "References" and "Disclaimer/Publisher's Note: …". Real LaTeXML and
markdown writer; the class is not installed, so no PDF is compiled here."""

import pytest

from pipelines.doc2md.html_to_markdown import html_to_markdown, latexml_errors
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.unpack import file_class

MDPI = r"""\documentclass[applsci,article,submit,pdftex,moreauthors]{Definitions/mdpi}
\firstpage{1}
\makeatletter
\setcounter{page}{\@firstpage}
\makeatother
\pubvolume{1}
\issuenum{1}
\articlenumber{0}
\pubyear{2025}
\copyrightyear{2025}
\externaleditor{Anna Kowalska}
\datereceived{12 December 2024}
\dateaccepted{20 January 2025}
\datepublished{28 January 2025}
\Title{Low-Cost Inertial Sensing for Gait Event Detection}
\newcommand{\orcidauthorA}{0000-0000-0000-000X}
\Author{Maria Rossi $^{1,\dagger}$\orcidA{}, Jonas Berg $^{2,\dagger}$ and Li Wen $^{1,}$*}
\AuthorNames{Maria Rossi, Jonas Berg and Li Wen}
\address{%
$^{1}$ \quad Department of Biomedical Engineering, University of Examplestadt, Germany; maria.rossi@uni-example.de\\
$^{2}$ \quad Institute of Sports Science, Northern University, Norway; jonas.berg@north-example.no}
\corres{Correspondence: li.wen@uni-example.de}
\firstnote{These authors contributed equally to this work.}
\abstract{We evaluate three gait event detectors on a low-cost inertial sensor.}
\keyword{inertial measurement unit; gait analysis}
\begin{document}
\section{Introduction}
Gait analysis is a standard tool~\cite{ref-perry}, now also outdoors~\cite{ref-perry,ref-tao}.
\begin{Theorem}\label{thm1}
The detector finds every heel strike.
\end{Theorem}
\vspace{6pt}
\authorcontributions{Conceptualization, M.R.; software, J.B.}
\funding{This research received no external funding.}
\conflictsofinterest{The authors declare no conflicts of interest.}
\abbreviations{Abbreviations}{
The following abbreviations are used in this manuscript:\\
\noindent
\begin{tabular}{@{}ll}
IMU & Inertial measurement unit
\end{tabular}
}
\begin{adjustwidth}{-\extralength}{0cm}
\reftitle{References}
\begin{thebibliography}{999}
\bibitem[Perry and Burnfield(2010)]{ref-perry}
Perry, J.; Burnfield, J.M. \emph{Gait Analysis}; SLACK: Thorofare, NJ, USA, 2010.
\bibitem[Tao et~al.(2012)]{ref-tao}
Tao, W.; Liu, T. Gait Analysis Using Wearable Sensors. \emph{Sensors} \textbf{2012}, \emph{12}, 2255--2283.
\end{thebibliography}
\PublishersNote{}
\end{adjustwidth}
\end{document}
"""
# one line in the format of the Definitions/journalnames.tex that MDPI's sources ship (the journal's short name)
JOURNAL_NAMES = "\\DeclareOption{applsci}{\t\\gdef\\@journal{applsci}\t\\gdef\\@journalshort{Appl. Sci.}\t" \
                "\\gdef\\@journalfull{Applied Sciences}\t\\gdef\\@doiabbr{app}\t\\gdef\\@ISSN{2076-3417}}\n"


@pytest.fixture(scope="module")
def mdpi(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("mdpi")
    (folder / "Definitions").mkdir()
    (folder / "Definitions" / "journalnames.tex").write_text(JOURNAL_NAMES)
    (folder / "main.tex").write_text(MDPI)
    html = latex_to_html(folder, "main.tex", timeout_s=120)
    class_options, document_class = file_class(folder / "main.tex")
    return html_to_markdown(html, document_class=document_class, class_options=class_options), html


def test_mdpi_binding_found_through_the_definitions_path(mdpi, tmp_path):
    _, html = mdpi
    assert latexml_errors(html)["undefined"] == []
    (tmp_path / "main.tex").write_text(MDPI)
    assert file_class(tmp_path / "main.tex") == ("applsci,article,submit,pdftex,moreauthors", "mdpi")


TITLE_BLOCK = [
    "# Low-Cost Inertial Sensing for Gait Event Detection\n",
    "Maria Rossi \\({}^{1,\\dagger}\\), Jonas Berg \\({}^{2,\\dagger}\\) and Li Wen \\({}^{1,}\\)",
    "\\({}^{1}\\) Department of Biomedical Engineering, University of Examplestadt, Germany;",
    "* Correspondence: li.wen@uni-example.de",
    "\\({}^{\\dagger}\\) These authors contributed equally to this work.",
    "###### Abstract\n\nWe evaluate three gait event detectors",
    "inertial measurement unit; gait analysis",
    # the left column, with the journal's short name from the paper's Definitions/journalnames.tex
    "Academic Editor: Anna Kowalska Received: 12 December 2024 Accepted: 20 January 2025 Published: "
    "28 January 2025 **Copyright:** © ",
    " by the authors. Submitted to _Appl. Sci._ for possible open access publication under the terms and "
    "conditions of the Creative Commons Attribution (CC BY) license."]
BODY_AND_BACK_MATTER = [
    "Gait analysis is a standard tool [1], now also outdoors [1, 2].",
    "**Theorem 1.**",
    "**Author Contributions:** Conceptualization, M.R.; software, J.B.",
    "**Funding:** This research received no external funding.",
    "**Conflicts of Interest:** The authors declare no conflicts of interest.",
    "**Abbreviations**",
    "## References",
    "**Disclaimer/Publisher’s Note:** The statements, opinions and data contained"]


@pytest.mark.parametrize("printed", [TITLE_BLOCK, BODY_AND_BACK_MATTER], ids=["title block", "body and back matter"])
def test_mdpi_paper_reads_as_the_class_prints_it(mdpi, printed):
    markdown, _ = mdpi
    assert [text for text in printed if text not in markdown] == []
