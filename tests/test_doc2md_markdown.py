"""doc2md's HTML -> markdown step on real LaTeXML output of the shipped papers (each converted once)."""

import re
from pathlib import Path

import pytest

from pipelines.doc2md.html_to_markdown import extract_lifted, html_to_markdown
from pipelines.doc2md.latexml import latex_to_html

PAPERS = Path(__file__).resolve().parents[1] / "samples" / "papers"

FEATURES_TEX = r"""\documentclass{article}
\usepackage{amsmath,amsthm,float,listings}
\newtheorem{theorem}{Theorem}
\newfloat{algorithm}{t}{loa}
\floatname{algorithm}{Algorithm}
\begin{document}
\section{Odds and ends}
See Section~\ref{sec:nowhere}, reference \cite{nobody} and \nosuchmacro{} here.
\begin{theorem} Every $x$ equals $x$. \end{theorem}
\begin{description}\item[Term] The definition.\end{description}
\begin{verbatim}
for i in range(3):
    print(i)
\end{verbatim}
\begin{tabular}{|l|r|}\hline a & 50\% \\ \multicolumn{2}{|c|}{\textbf{wide}} \\ \hline\end{tabular}
\begin{algorithm}
\caption{Running sum}
\begin{lstlisting}[language=Python]
total = 0
for i in range(n):
    total += i
\end{lstlisting}
\end{algorithm}
\end{document}
"""


@pytest.fixture(scope="module")
def html():
    converted = {paper: latex_to_html(PAPERS / paper, "main.tex", timeout_s=120,
                                      engine_hint="xelatex" if paper == "2601.00003" else None)
                 for paper in ("2601.00001", "2601.00002", "2601.00003")}
    return converted


@pytest.fixture(scope="module")
def markdown(html):
    return {paper: html_to_markdown(text) for paper, text in html.items()}


@pytest.fixture(scope="module")
def features_markdown(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    (folder / "main.tex").write_text(FEATURES_TEX)
    return html_to_markdown(latex_to_html(folder, "main.tex", timeout_s=60))


def paragraphs(text: str) -> list[str]:
    return text.rstrip("\n").split("\n\n")


def test_headings_keep_the_title_and_section_numbers(markdown):
    blocks = paragraphs(markdown["2601.00001"])
    assert blocks[0] == "# Adaptive Step Sizes for Streaming Least Squares on Drifting Sensor Data"
    assert blocks[1] == "Mira Castellanos, Jonah Whitfield"
    for heading in ("###### Abstract", "## 1 Introduction", "## 2 Method", "### 2.1 Streaming least squares",
                    "## 4 Discussion", "## References"):
        assert heading in blocks


def test_math_uses_nougat_delimiters_and_tags(markdown):
    text = markdown["2601.00001"]
    assert r"\(x_{t}\in\mathbb{R}^{d}\)" in text
    assert r"\[w_{t}=w_{t-1}+\frac{\mu_{t}}{\epsilon+\lVert x_{t}\rVert^{2}}\,e_{t}\,x_{t}, \tag{1}\]" in paragraphs(text)
    assert "$" not in text and r"\displaystyle" not in text


def test_align_rows_merge_into_one_display(markdown):
    align = [b for b in paragraphs(markdown["2601.00001"]) if b.startswith(r"\[s_{t}")]
    assert align == [r"\[s_{t} =(1-\alpha)\,s_{t-1}+\alpha\,e_{t}^{2}, \tag{2} \\ "
                     r"l_{t} =(1-\beta)\,l_{t-1}+\beta\,e_{t}^{2},\qquad 0<\beta<\alpha<1. \tag{3}\]"]
    unnumbered_row = [b for b in paragraphs(markdown["2601.00002"]) if b.startswith(r"\[S(\pi)")][0]
    first_row, second_row = unnumbered_row.split(r" \\ ")
    assert r"\tag" not in first_row and second_row.endswith(r"\tag{2}\]")


def test_lists_use_stars_numbers_and_two_space_nesting(markdown):
    itemize = markdown["2601.00001"]
    assert "\n* a step-size update driven by the ratio" in itemize
    assert "\n  * heavy-tailed noise, where single outliers mimic a change point;\n" in itemize
    enumerate_ = markdown["2601.00002"]
    assert "\n1. a block graph in which every edge carries cues" in enumerate_
    assert "\n  (a) a block that starts with a headline begins a new article;\n" in enumerate_
    assert "\n3. an annotated collection of 412 newsletter pages" in enumerate_


def test_footnote_follows_the_paragraph_that_marks_it(markdown):
    blocks = paragraphs(markdown["2601.00001"])
    marked = next(i for i, b in enumerate(blocks) if "the memory trade-off described above.¹" in b)
    assert blocks[marked + 1].startswith("Footnote 1: The exact effective window depends on the spread")


def test_citations_and_references(markdown):
    text = markdown["2601.00001"]
    assert "with a constant step size [1, 2]." in text
    assert "\n* [1] S. Haykin. _Adaptive Filter Theory_. Prentice Hall, 4th edition, 2002.\n" in text
    assert text.rstrip().endswith("40(7):1633–1642, 1992.")


def test_references_come_from_the_shipped_bbl(markdown):
    # as bibtex's plain style printed them in the PDF, not LaTeXML's own BibTeX rendering with back-links
    assert ("\n* [2] G. Nagy and S. Seth. Hierarchical representation of optically scanned documents. In "
            "_Proceedings of the Seventh International Conference on Pattern Recognition_, pages 347–349, 1984.\n"
            in markdown["2601.00002"])
    assert "Cited by" not in markdown["2601.00002"]


def test_tabular_with_multicolumn_in_nougat_latex(markdown):
    table = next(b for b in paragraphs(markdown["2601.00001"]) if b.startswith(r"\begin{tabular}"))
    assert table == "\n".join([
        r"\begin{tabular}{l|cc|cc}",
        r"\hline",
        r" & \multicolumn{2}{c|}{Steady-state error} & \multicolumn{2}{c}{Recovery (samples)} \\",
        r"Method & River & Bridge & River & Bridge \\",
        r"\hline",
        r"Constant, \(\mu=0.01\) & 0.112 & 0.087 & 2140 & 1810 \\",
        r"Constant, \(\mu=0.1\) & 0.164 & 0.131 & 260 & 240 \\",
        r"Variance ratio (ours) & 0.115 & 0.089 & 310 & 290 \\",
        r"\hline",
        r"\end{tabular}"])
    blocks = paragraphs(markdown["2601.00001"])
    assert blocks[blocks.index(table) + 1].startswith("Table 1: Steady-state error (root mean square")


def test_tables_as_html_on_request(html):
    text = html_to_markdown(html["2601.00001"], tables="html")
    assert '<tr><th></th><th colspan="2">Steady-state error</th><th colspan="2">Recovery (samples)</th></tr>' in text
    assert r"<td>0.112</td>" in text and r"\begin{tabular}" not in text
    with pytest.raises(ValueError, match="tables must be one of latex, html"):
        html_to_markdown(html["2601.00001"], tables="csv")


def test_figure_becomes_its_caption(markdown):
    blocks = paragraphs(markdown["2601.00001"])
    assert ("Figure 1: Step size chosen by the variance-ratio rule around a change point \\(t_{0}\\): it rises as "
            "soon as the fast residual variance exceeds the slow one") in "\n".join(blocks)
    assert "tikz" not in markdown["2601.00001"].lower()


def test_chinese_text_is_kept_without_spaces_between_characters(markdown):
    text = markdown["2601.00003"]
    assert "# 面向扫描文档语料的分块哈希近重复检测" in text
    assert "## 1 引言" in paragraphs(text) and "### 2.1 文本片段" in paragraphs(text)
    assert "的压缩质量反复出现。这些近重复样本" in text  # a source line break between two CJK characters
    assert "个最小哈希值 [1]，" in text
    assert "Footnote 1: 抽样检查共覆盖两千页" in text
    assert r"\multicolumn{2}{c}{质量}" in text


def test_error_nodes_dropped_and_unresolved_references_marked(features_markdown):
    assert "nosuchmacro" not in features_markdown
    assert "See Section [??], reference [??] and here." in features_markdown


def test_theorem_description_verbatim_and_escaped_table_cells(features_markdown):
    blocks = paragraphs(features_markdown)
    assert "**Theorem 1.** _Every \\(x\\) equals \\(x\\)._" in blocks
    assert "* **Term** The definition." in blocks
    assert "```\nfor i in range(3):\n    print(i)\n```" in blocks
    table = next(b for b in blocks if b.startswith(r"\begin{tabular}"))
    assert table.splitlines()[:3] == [r"\begin{tabular}{|l|r|}", r"\hline", r"a & 50\% \\"]
    assert r"\multicolumn{2}{|c|}{**wide**} \\" in table


def test_algorithm_float_becomes_caption_and_fenced_block(features_markdown):
    blocks = paragraphs(features_markdown)
    caption = blocks.index("Algorithm 1: Running sum")
    assert blocks[caption + 1] == "```\ntotal = 0\nfor i in range(n):\n    total += i\n```"


def test_lifted_formulas_and_tables(html):
    lifted = extract_lifted(html["2601.00001"])
    formulas = [item for item in lifted if item["kind"] == "formula"]
    tables = [item for item in lifted if item["kind"] == "table"]
    assert [f["numbers"] for f in formulas] == [["(1)"], ["(2)", "(3)"], ["(4)"]]
    assert formulas[1]["tex"][0] == r"s_{t} =(1-\alpha)\,s_{t-1}+\alpha\,e_{t}^{2},"
    assert len(tables) == 1
    assert tables[0]["caption"].startswith("Table 1: Steady-state error")
    assert tables[0]["latex"].startswith(r"\begin{tabular}{l|cc|cc}")
    assert re.search(r'<th class="[^"]*" colspan="2">Steady-state error</th>', tables[0]["html"])


ALGPSEUDOCODE_BODY = r"""\begin{algorithm}
\caption{Running sum}
\begin{algorithmic}[1]
\Require a list $a$ of $n$ numbers
\Procedure{Sum}{$a$}
\State $s \gets 0$ \Comment{the total}
\For{$i = 1$ to $n$}
  \If{$a_i > 0$} \State $s \gets s + a_i$ \EndIf
\EndFor
\State \Return $s$
\EndProcedure
\end{algorithmic}
\end{algorithm}"""

ALGORITHMIC_BODY = r"""\begin{algorithm}
\caption{Halving}
\begin{algorithmic}
\REQUIRE $n > 0$
\WHILE{$n > 1$}
\STATE $n \gets n / 2$
\ENDWHILE
\RETURN $n$
\end{algorithmic}
\end{algorithm}"""


@pytest.mark.parametrize("package, body, lines", [
    ("algpseudocode", ALGPSEUDOCODE_BODY, [
        r"Input: a list \(a\) of \(n\) numbers", r"procedure Sum(\(a\))",
        r"\(s\leftarrow 0\) \(\triangleright\) the total", r"for \(i=1\) to \(n\) do", r"if \(a_{i}>0\) then",
        r"\(s\leftarrow s+a_{i}\)", "end if", "end for", r"return \(s\)", "end procedure"]),
    ("algorithmic", ALGORITHMIC_BODY, [
        r"Input: \(n>0\)", r"while \(n>1\) do", r"\(n\leftarrow n/2\)", "end while", r"return \(n\)"]),
])
def test_algorithm_packages_become_caption_and_fenced_lines(tmp_path, package, body, lines):
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\usepackage{algorithm}\n"
                                       f"\\usepackage{{{package}}}\n\\renewcommand{{\\algorithmicrequire}}{{\\textbf{{Input:}}}}\n"
                                       f"\\begin{{document}}\nBefore.\n{body}\nAfter.\n\\end{{document}}\n")
    blocks = paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
    caption = next(i for i, block in enumerate(blocks) if block.startswith("Algorithm 1: "))
    fenced = blocks[caption + 1].splitlines()
    assert fenced[0] == fenced[-1] == "```"
    assert [" ".join(line.split()) for line in fenced[1:-1]] == lines
    assert blocks[caption + 2] == "After."



PARTIAL_RULES_TEX = r"""\documentclass{article}
\usepackage{booktabs,multirow}
\begin{document}
\begin{tabular}{llcc}
\toprule
\multirow{2}{*}{Model} & \multirow{2}{*}{Params} & \multicolumn{2}{c}{TEDS} \\
\cmidrule(l){3-4}
 & & Science & Finance \\
\midrule
Ours & 1.5B & 91.2 & 88.0 \\
\cline{2-2}
Base & 7B & 89.9 & 86.1 \\
\bottomrule
\end{tabular}
\end{document}
"""


def test_a_rule_under_some_columns_stays_a_cline(tmp_path):
    """booktabs' \\cmidrule{3-4} and \\cline{2-2} rule their columns only: `\\cline`, not a full `\\hline`."""
    (tmp_path / "main.tex").write_text(PARTIAL_RULES_TEX)
    table = next(b for b in paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
                 if b.startswith(r"\begin{tabular}"))
    assert table.splitlines() == [
        r"\begin{tabular}{llcc}",
        r"\hline",
        r"\multirow{2}{*}{Model} & \multirow{2}{*}{Params} & \multicolumn{2}{c}{TEDS} \\",
        r"\cline{3-4}",
        r" &  & Science & Finance \\",
        r"\hline",
        r"Ours & 1.5B & 91.2 & 88.0 \\",
        r"\cline{2-2}",
        r"Base & 7B & 89.9 & 86.1 \\",
        r"\hline",
        r"\end{tabular}"]


def test_a_header_cell_centred_over_a_left_column_does_not_set_the_column(tmp_path):
    """The ICLR/NeurIPS templates' `\\multicolumn{1}{c}{\\bf Model}` over an `l` column: the column stays `l` (the
    alignment most of its cells have) and the header cell keeps its own `\\multicolumn{1}{c}`."""
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\begin{tabular}{lcr}\n"
                                       "\\multicolumn{1}{c}{\\bf Model} & Acc & \\multicolumn{1}{c}{F1} \\\\\n"
                                       "Ours & 91.2 & 88.0 \\\\\nBase & 89.9 & 86.1 \\\\\n\\end{tabular}\n\\end{document}\n")
    table = next(b for b in paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
                 if b.startswith(r"\begin{tabular}"))
    assert table.splitlines()[:3] == [r"\begin{tabular}{lcr}",
                                      r"\multicolumn{1}{c}{**Model**} & Acc & \multicolumn{1}{c}{F1} \\",
                                      r"Ours & 91.2 & 88.0 \\"]


MARKS_AND_LABELS_TEX = r"""\documentclass{article}
\begin{document}
\title{A Title}
\author{Alice Zhang\thanks{Equal contribution.} \and Bob Li\footnotemark[1] \and Carol Mart\'inez}
\maketitle
Text with a note\footnote{First note.} and again\footnotemark[1] here.
\begin{enumerate}
\item[] Question: why?
\item[] Answer: yes.
\item Normal.
\end{enumerate}
\begin{itemize}
\item[(i)] First claim.
\item Plain bullet.
\end{itemize}
\end{document}
"""


def test_footnote_marks_and_item_labels_read_as_latex_prints_them(tmp_path):
    """`\\footnotemark[1]` is a mark with no footnote of its own (in the title block, no mark: its symbols are not
    words); `\\item[]` prints no label, not a number; an itemize's `\\item[(i)]` prints its label."""
    (tmp_path / "main.tex").write_text(MARKS_AND_LABELS_TEX)
    blocks = paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
    assert "Alice Zhang, Bob Li, Carol Martínez" in blocks and "Footnote: Equal contribution." in blocks
    assert "Text with a note¹ and again¹ here." in blocks
    assert [block for block in blocks if block.startswith("Footnote 1:")] == ["Footnote 1: First note."]
    assert "* Question: why?\n* Answer: yes.\n1. Normal." in blocks
    assert "* (i) First claim.\n* Plain bullet." in blocks


def test_authors_given_with_their_places_are_a_block_each(tmp_path):
    """`\\author{Name \\\\ Department \\\\ e-mail \\and …}` (the NeurIPS/ICLR/ACL way): the PDF sets each author's
    lines under their name, so the markdown has a block per author, a line each."""
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\n\\title{A Title}\n\\author{Alice Zhang \\\\ Department of "
        "Computer Science \\\\ \\texttt{alice@example.edu} \\and Bob Li \\\\ Example Labs}\n\\maketitle\nText.\n"
        "\\end{document}\n")
    blocks = paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
    assert blocks[1:3] == ["Alice Zhang\nDepartment of Computer Science\nalice@example.edu", "Bob Li\nExample Labs"]


NATBIB_TEX = r"""\documentclass{article}
\usepackage[OPTIONS]{natbib}
\begin{document}
As \citet{smith2020} show, and others agree \citep{smith2020,lee2021}.
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""
NATBIB_BBL = r"""\begin{thebibliography}{2}
\providecommand{\natexlab}[1]{#1}
\bibitem[Lee(2021)]{lee2021}
Kim Lee.
\newblock Sparse bounds.
\newblock 2021.
\bibitem[Smith and Brown(2020)]{smith2020}
Ann Smith and Bob Brown.
\newblock Dense bounds.
\newblock 2020.
\end{thebibliography}
"""


@pytest.mark.parametrize("options, cited", [
    # plainnat's own punctuation, as LaTeX reads \bibstyle{plainnat} back from the .aux before the first \cite
    ("", "As Smith and Brown [2020] show, and others agree [Smith and Brown, 2020, Lee, 2021]."),
    # natbib's options win over the style's, in LaTeX and here
    ("round", "As Smith and Brown (2020) show, and others agree (Smith and Brown, 2020; Lee, 2021)."),
])
def test_author_year_citations_and_references_read_as_natbib_prints_them(tmp_path, options, cited):
    (tmp_path / "main.tex").write_text(NATBIB_TEX.replace("[OPTIONS]", f"[{options}]" if options else ""))
    (tmp_path / "main.bbl").write_text(NATBIB_BBL)
    text = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    assert cited in text
    # an author-year list prints no labels: not "* Lee [2021] Kim Lee."
    assert "\n* Kim Lee. Sparse bounds. 2021.\n* Ann Smith and Bob Brown. Dense bounds. 2020." in text


NUMERIC_CITES_TEX = r"""\documentclass{article}
PACKAGES
\begin{document}
Prior work \cite{d,a,b,c,f} and \cite{b,a}.
\begin{thebibliography}{9}
\bibitem{a} A. One. First. 2001.
\bibitem{b} B. Two. Second. 2002.
\bibitem{c} C. Three. Third. 2003.
\bibitem{d} D. Four. Fourth. 2004.
\bibitem{e} E. Five. Fifth. 2005.
\bibitem{f} F. Six. Sixth. 2006.
\end{thebibliography}
\end{document}
"""


@pytest.mark.parametrize("packages, cited", [
    (r"\usepackage{cite}", "Prior work [1–4, 6] and [1, 2]."),  # IEEE's default: sorted, runs of 3+ a range
    (r"\usepackage[numbers,sort&compress]{natbib}", "Prior work [1–4, 6] and [1, 2]."),
    (r"\usepackage[nocompress]{cite}", "Prior work [1, 2, 3, 4, 6] and [1, 2]."),
    ("", "Prior work [4, 1, 2, 3, 6] and [2, 1]."),  # LaTeX's own \cite: as cited
])
def test_numeric_citations_are_sorted_and_compressed_as_the_papers_package_prints_them(tmp_path, packages, cited):
    from pipelines.doc2md.compile import citation_form, compile_pdf

    main = tmp_path / "main.tex"
    main.write_text(NUMERIC_CITES_TEX.replace("PACKAGES", packages))
    text = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60), citations=citation_form(main))
    assert cited in text
    pdf, _ = compile_pdf(tmp_path, main, "cites")  # and the PDF prints the same (cite's comma: a thin space)
    import pymupdf

    assert cited.replace(" ", "") in "".join(pymupdf.open(pdf)[0].get_text().split())


def test_what_latexml_could_not_interpret_is_counted_for_the_records(html, tmp_path):
    from pipelines.doc2md.html_to_markdown import latexml_errors

    source = tmp_path / "main.tex"
    source.write_text(FEATURES_TEX)
    found = latexml_errors(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    assert found["errors"] >= 1 and "\\nosuchmacro" in found["undefined"]
    assert latexml_errors(html["2601.00001"]) == {"errors": 0, "undefined": []}


ADJUSTBOX_TEX = r"""\documentclass{article}
\usepackage{adjustbox,booktabs}
\begin{document}
Intro text.
\begin{table}[h]\centering
\caption{Scaled with adjustbox.}
\begin{adjustbox}{width=\linewidth}
\begin{tabular}{lc}\toprule
Epsilon & 5 \\ \midrule
Zeta & 6 \\ \bottomrule
\end{tabular}
\end{adjustbox}
\end{table}
\end{document}
"""


def test_a_tabular_in_an_adjustbox_is_a_table_not_a_line_of_words(tmp_path):
    """LaTeXML sets a tabular inside an inline box as spans (span.ltx_tabular, span.ltx_tr, span.ltx_td): it
    is still the markdown's tabular and a lifted table, not "Epsilon 5 Zeta 6"."""
    (tmp_path / "main.tex").write_text(ADJUSTBOX_TEX)
    converted = latex_to_html(tmp_path, "main.tex", timeout_s=60)
    assert 'span class="ltx_tabular' in converted
    expected = "\n".join([r"\begin{tabular}{lc}", r"\hline", r"Epsilon & 5 \\", r"\hline", r"Zeta & 6 \\", r"\hline",
                          r"\end{tabular}"])
    assert expected in paragraphs(html_to_markdown(converted))
    (table,) = [found for found in extract_lifted(converted) if found["kind"] == "table"]
    assert table["latex"] == expected and table["caption"] == "Table 1: Scaled with adjustbox."
    html_table = html_to_markdown(converted, tables="html")
    assert "<table><tr><td>Epsilon</td><td>5</td></tr><tr><td>Zeta</td><td>6</td></tr></table>" in html_table


def test_a_paragraph_column_keeps_its_width_and_a_tabularx_column_is_valid_latex(tmp_path):
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\usepackage{tabularx}\n\\begin{document}\n"
                                       "\\begin{tabular}{lp{2cm}}\na & long text in a paragraph column \\\\\n"
                                       "\\end{tabular}\n\n\\begin{tabularx}{\\linewidth}{lX}\nb & x column \\\\\n"
                                       "\\end{tabularx}\n\\end{document}\n")
    tables = [b for b in paragraphs(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)))
              if b.startswith("\\begin{tabular}")]
    assert [t.splitlines()[0] for t in tables] == ["\\begin{tabular}{lp{56.9pt}}", "\\begin{tabular}{ll}"]


def test_a_table_of_contents_is_a_line_per_entry(tmp_path):
    """`\\tableofcontents` as the PDF prints it: its heading, then each entry's number and title on a line, nested
    entries in order (LaTeXML's nested lists became a numbered markdown list whose numbers the PDF has not)."""
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\tableofcontents\n"
                                       "\\section{Introduction}\nText.\n\\section{Model}\n\\subsection{The soft-wall "
                                       "background}\nMore.\n\\appendix\n\\section{Proofs}\nP.\n\\end{document}\n")
    blocks = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)).split("\n\n")
    assert blocks[:2] == ["###### Contents", "1 Introduction\n2 Model\n2.1 The soft-wall background\nA Proofs"], blocks
