"""Splitting markdown into PDF pages, on a real pdflatex document with running headers, page numbers,
hyphenated lines, a footnote and a float whose markdown sits elsewhere than the PDF puts it."""

import re
from pathlib import Path

import pymupdf
import pytest

from pipelines.doc2md.compile import compile_pdf
from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.layout import page_layout
from pipelines.doc2md.pages import (MOVABLE, PdfLine, line_tokens, markdown_tokens, read_pdf_pages,
                                    split_markdown_into_pages, tokens_of)
from pipelines.doc2md.running_heads import declared_running_heads

CORPUS = Path(__file__).resolve().parents[1] / "synth" / "corpora" / "en.txt"
FOOTNOTE = "The footnote says where the sensors were mounted during the whole campaign."
CAPTION = "Measured drift of the gauges over the season, with the repaired gauge marked separately."


def paragraphs(count: int) -> list[str]:
    text = CORPUS.read_text()
    found = [re.sub(r"\s+", " ", p).strip() for p in text.split("\n\n") if len(p.split()) > 40]
    found = [re.sub(r"[^A-Za-z0-9 ,.;:()'-]", "", p) for p in found]
    return (found * 4)[:count]


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    """A three-page article: LaTeX for pdflatex and the markdown a converter would make of it."""
    work = tmp_path_factory.mktemp("pages")
    body = paragraphs(22)
    tex = [r"\documentclass{article}", r"\usepackage{fancyhdr}", r"\pagestyle{fancy}",
           r"\fancyhead[L]{Drift Gauges Running Title}", r"\fancyfoot[C]{\thepage}", r"\begin{document}",
           r"\section{Introduction}"]
    md = ["## 1 Introduction"]
    for i, paragraph in enumerate(body):
        if i == 3:
            tex.append(paragraph + r"\footnote{" + FOOTNOTE + "}")
            md += [paragraph + "1", f"Footnote 1: {FOOTNOTE}"]
        elif i == 5:
            tex += [r"\begin{figure}[t]\centering\fbox{\rule{0pt}{3cm}\rule{6cm}{0pt}}", r"\caption{" + CAPTION + "}",
                    r"\end{figure}", paragraph]
            md += [paragraph, f"Figure 1: {CAPTION}"]
        else:
            tex.append(paragraph)
            md.append(paragraph)
        tex.append("")
        if i == 7:
            tex += [r"\section{Method}", ""]
            md.append("## 2 Method")
    tex.append(r"\end{document}")
    (work / "main.tex").write_text("\n".join(tex))
    pdf, _ = compile_pdf(work, work / "main.tex", "pages-test")
    return pymupdf.open(pdf), "\n\n".join(md)


def test_running_headers_and_page_numbers_are_removed(document):
    doc, _ = document
    pages = read_pdf_pages(doc)
    assert len(pages) >= 3
    for page in pages:
        assert any("Running Title" in h.text for h in page.headers) and any(h.text.isdigit() for h in page.headers)
        assert "running" not in page.tokens


def test_every_page_is_kept_and_covers_the_markdown(document):
    doc, markdown = document
    splits = split_markdown_into_pages(markdown, doc)
    assert [s.number for s in splits] == list(range(1, doc.page_count + 1))
    assert all(s.kept and s.score >= 0.95 for s in splits), [(s.number, s.score, s.reason) for s in splits]
    joined = "\n\n".join(s.markdown for s in splits)
    assert sorted(markdown_tokens(joined)[0]) == sorted(markdown_tokens(markdown)[0])


def test_footnotes_and_floats_go_to_the_page_the_pdf_shows_them_on(document):
    doc, markdown = document
    splits = split_markdown_into_pages(markdown, doc)
    for text in (FOOTNOTE, CAPTION):
        on_pdf = [p.number for p in read_pdf_pages(doc) if " ".join(tokens_of(text)) in " ".join(p.tokens)]
        in_markdown = [s.number for s in splits if text in s.markdown]
        assert on_pdf and in_markdown == on_pdf


def test_a_page_with_unresolved_references_or_bad_text_is_dropped_with_a_reason(document):
    doc, markdown = document
    broken = markdown.replace("## 2 Method", "## 2 Method\n\nAs shown in Section [??], the method works.")
    splits = split_markdown_into_pages(broken, doc)
    assert any(not s.kept and "unresolved reference" in s.reason for s in splits)
    scrambled = split_markdown_into_pages(markdown[: len(markdown) // 3], doc)
    assert any(not s.kept and ("score" in s.reason or "no markdown" in s.reason) for s in scrambled)


def test_cjk_text_is_compared_character_by_character():
    assert tokens_of("自适应步长 for streaming 最小二乘") == ["自", "适", "应", "步", "长", "for", "streaming",
                                                              "最", "小", "二", "乘"]
    assert markdown_tokens("公式 \\(x^2\\) 成立")[0] == ["公", "式", "成", "立"]


def write_float_document(work: Path, head: list[str], markdown_head: list[str], body: list[str], at: int,
                         float_tex: list[str], float_markdown: list[str]) -> str:
    """`work/main.tex`: `head`, the paragraphs, a float defined after paragraph `at` (printed at the top of
    the next page when that paragraph ends one), the end; and the markdown a converter makes of it, where
    the float follows its paragraph."""
    tex, markdown = list(head), list(markdown_head)
    for i, paragraph in enumerate(body):
        markdown.append(paragraph)
        if i == at:
            tex += float_tex
            markdown += float_markdown
        tex += [paragraph.replace("%", r"\%"), ""]
    (work / "main.tex").write_text("\n".join(tex + [r"\end{document}"]))
    return "\n\n".join(markdown)


def assert_float_follows_the_pdf(work: Path, markdown: str, printed: str, marker: str | None = None) -> None:
    """Compile `work/main.tex`: the float whose text `printed` the PDF prints after page 1 is on that page of the
    split (its block found by `marker`, `printed` itself by default), and every page is kept."""
    pdf, _ = compile_pdf(work, work / "main.tex", work.name)
    doc = pymupdf.open(pdf)
    on_pdf = [p.number for p in read_pdf_pages(doc) if " ".join(tokens_of(printed)) in " ".join(p.tokens)]
    splits = split_markdown_into_pages(markdown, doc)
    assert on_pdf and on_pdf[0] > 1
    assert [s.number for s in splits if (marker or printed) in s.markdown] == on_pdf
    assert all(s.kept for s in splits), [(s.number, s.score, s.reason) for s in splits]


def layout_of(split, page) -> list[dict]:
    """The page's layout boxes in PDF points."""
    return page_layout(split, page, 1.0, int(page.rect.width), int(page.rect.height))


ZH_CAPTION = "不同方法在三个数据集上的实验结果与误差范围"


@pytest.fixture(scope="module")
def chinese_document(tmp_path_factory):
    """A ctexart article (xelatex) whose table float, captioned 表 1, is printed at the top of a later page
    than the paragraph its markdown follows."""
    work = tmp_path_factory.mktemp("pages-zh")
    text = (CORPUS.parent / "zh.txt").read_text()
    body = [re.sub(r"\s+", "", p) for p in text.split("\n\n") if len(p) > 60]
    body += [p[::-1] for p in body]  # about three pages, no paragraph twice
    table = [r"\begin{table}[t]\centering\caption{" + ZH_CAPTION + r"}", r"\begin{tabular}{cc}",
             r"方法 & 准确率 \\ 基线 & 81.2 \\ 本文 & 88.5 \\", r"\end{tabular}", r"\end{table}"]
    table_md = [f"表 1: {ZH_CAPTION}", "\\begin{tabular}{cc}\n方法 & 准确率 \\\\\n基线 & 81.2 \\\\\n本文 & 88.5 \\\\\n"
                                       "\\end{tabular}"]
    markdown = write_float_document(work, [r"\documentclass{ctexart}", r"\begin{document}", r"\section{方法}"],
                                    ["## 1 方法"], body, 8, table, table_md)
    pdf, engine = compile_pdf(work, work / "main.tex", "pages-zh-test")
    assert engine == "xelatex"
    return pymupdf.open(pdf), markdown


def test_a_chinese_caption_goes_with_its_float_to_the_page_the_pdf_shows_it_on(chinese_document):
    doc, markdown = chinese_document
    on_pdf = [p.number for p in read_pdf_pages(doc) if " ".join(tokens_of(ZH_CAPTION)) in " ".join(p.tokens)]
    splits = split_markdown_into_pages(markdown, doc)
    in_markdown = [s.number for s in splits if ZH_CAPTION in s.markdown]
    assert on_pdf and on_pdf[0] > 1 and in_markdown == on_pdf
    assert all(s.kept for s in splits), [(s.number, s.score, s.reason) for s in splits]


def test_the_page_number_of_a_letter_layout_on_a4_paper_is_a_footer(tmp_path):
    """article's letter layout on A4 paper (what pdflatex makes where pdftex's configured paper is A4, as
    TeX Live's default on Debian, and the paper sets none) prints the page number 83 % down the page,
    above the bottom 15 %: it is still the page's footer."""
    body = "\n\n".join(paragraphs(12))
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\pdfpagewidth=210mm \\pdfpageheight=297mm\n"
                                       "\\begin{document}\n" + body + "\n\\end{document}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "a4-test")
    doc = pymupdf.open(pdf)
    pages = read_pdf_pages(doc)
    assert len(pages) >= 2
    for number, page in enumerate(pages, 1):
        assert [h.text for h in page.headers] == [str(number)]
        assert 0.8 < page.headers[0].bbox[1] / doc[0].rect.height < 0.85


def test_a_line_of_numbers_ending_a_paragraph_is_its_text_not_a_formula(tmp_path):
    """A reference or sentence whose last line holds only numbers ("2019.") belongs to the block above it;
    a display formula's number at the right margin is still the formula's."""

    reference = "S. Haykin and A. Sayed. Adaptive filters for drifting gauges. Signal Processing, 12(3):1--10,"
    tex = ("\\documentclass{article}\n\\begin{document}\n" + paragraphs(1)[0] + "\n\n" + reference +
           "\\\\\n2019.\n\\begin{equation}\na^2+b^2=c^2\n\\end{equation}\n\\end{document}\n")
    (tmp_path / "main.tex").write_text(tex)
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "tails-test")
    doc = pymupdf.open(pdf)
    markdown = paragraphs(1)[0] + "\n\n" + reference.replace("--", "–") + " 2019.\n\n\\[a^{2}+b^{2}=c^{2}\\] (1)"
    split = split_markdown_into_pages(markdown, doc)[0]
    page = doc[0]
    layout = layout_of(split, page)
    tail = next(line for line in split.pdf.lines if line.text.strip() == "2019.")
    formulas = [b["bbox"] for b in layout if b["label"] == "Formula"]
    texts = [b["bbox"] for b in layout if b["label"] == "Text"]
    equation = next(line for line in split.pdf.lines if line.math)
    assert len(formulas) == 1 and formulas[0][0] > tail.bbox[2]  # the equation, not the tail ...
    assert formulas[0][0] <= equation.bbox[0] + 0.1 and equation.bbox[2] <= formulas[0][2] + 0.1  # ... all of it
    assert any(box[1] <= tail.bbox[1] + 0.1 and tail.bbox[3] <= box[3] + 0.1 for box in texts)


def test_accents_drawn_apart_in_a_pdf_without_t1_fonts_match_the_markdowns_letters(tmp_path):
    """pdflatex's default OT1 fonts draw an accent as a glyph of its own, which PyMuPDF returns beside its
    letter ("Universit¨at"); the markdown has "Universität": both read "universitat"."""
    names = "Jürgen Müller of the Universität Tübingen, Jana Nováková of São Paulo, naïve polyèdres and Ørsted"
    tex = ("\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\begin{document}\n" + names + ".\n\n"
           + paragraphs(1)[0] + "\n\\end{document}\n")
    (tmp_path / "main.tex").write_text(tex, encoding="utf-8")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "ot1-test")
    doc = pymupdf.open(pdf)
    assert "¨" in doc[0].get_text() or "´" in doc[0].get_text()  # the accents come apart in this PDF
    markdown = names + ".\n\n" + paragraphs(1)[0]
    (split,) = split_markdown_into_pages(markdown, doc)
    assert split.kept and split.score == 1.0, (split.score, split.pdf.tokens[:20])


ROMAN_CAPTION = "Accuracy and speed of the routed heads on the three gauge campaigns"


@pytest.mark.parametrize("head, tag, count, at", [
    ([r"\documentclass{article}", r"\renewcommand{\thetable}{\Roman{table}}", r"\renewcommand{\tablename}{TABLE}"],
     "TABLE I:", 12, 10),
    ([r"\documentclass[onecolumn]{IEEEtran}"], "TABLE I", 24, 18)])
def test_an_upper_case_roman_numbered_table_caption_goes_with_its_float(tmp_path, head, tag, count, at):
    """A caption tagged "TABLE I: …" (an article with IEEEtran's names) or "TABLE I" over the caption (IEEEtran)
    moves to the page the PDF shows its table on, as "Table 1: …" does (the float is defined in the paragraph
    that ends page 1)."""
    body = paragraphs(count)
    table = [r"\begin{table}[t]\centering\caption{" + ROMAN_CAPTION + r"}", r"\begin{tabular}{cc}",
             r"Campaign & Accuracy \\ River & 81.2 \\", r"\end{tabular}", r"\end{table}"]
    table_md = [f"{tag} {ROMAN_CAPTION}", "\\begin{tabular}{cc}\nCampaign & Accuracy \\\\\nRiver & 81.2 \\\\\n\\end{tabular}"]
    markdown = write_float_document(tmp_path, head + [r"\begin{document}"], [], body, at, table, table_md)
    assert MOVABLE.match(table_md[0])  # a float's block, placed where the PDF prints it
    assert_float_follows_the_pdf(tmp_path, markdown, ROMAN_CAPTION)


def test_a_two_column_equation_number_stays_with_its_formula(tmp_path):
    """The number at the left column's right edge is on the same row as the right column's text: it is the
    equation's, not that text's."""

    body = paragraphs(10)
    tex = ["\\documentclass[twocolumn]{article}\n\\begin{document}", body[0], "\\begin{equation}\na^2+b^2=c^2\n"
           "\\end{equation}"] + body[1:] + ["\\end{document}"]
    (tmp_path / "main.tex").write_text("\n\n".join(tex))
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "twocol-test")
    doc = pymupdf.open(pdf)
    markdown = "\n\n".join([body[0], "\\[a^{2}+b^{2}=c^{2}\\] (1)"] + body[1:])
    split = split_markdown_into_pages(markdown, doc)[0]
    page = doc[0]
    number = next(line for line in split.pdf.lines if line.text.strip() == "(1)")
    beside = [line for line in split.pdf.lines if line.bbox[0] > number.bbox[2] and line.text.strip()
              and min(line.bbox[3], number.bbox[3]) - max(line.bbox[1], number.bbox[1]) > 0]
    assert beside  # the right column's text on the number's row: what the number was once given to
    layout = layout_of(split, page)
    holding = [b["label"] for b in layout if b["bbox"][0] <= number.bbox[0] + 0.1 and number.bbox[2] <= b["bbox"][2] + 0.1
               and b["bbox"][1] <= number.bbox[1] + 0.1 and number.bbox[3] <= b["bbox"][3] + 0.1]
    assert holding == ["Formula"], holding


TEXT_FONT_MATH = r"""
The attention is \(\operatorname{softmax}(\mathbf{Q}\mathbf{K}^{\top})\) and the loss is
\[ \mathcal{L}(\theta) = \max_{i} \log p_{\theta}(y_i \mid x_i) \quad \text{for all } i \in \mathcal{D}, \]
\[ f(x) = \begin{cases} \exp(x) & \text{if } x > 0, \\ \sin(x) & \text{otherwise}, \end{cases} \]
and \(\arg\min_{w} \|\mathbf{W} x\|\) with \(\mathrm{Attn}(q) = \lim_{n} \det(A_n)\).
"""


def test_the_words_a_formula_sets_in_text_fonts_count_on_both_sides(tmp_path):
    """The PDF's text keeps a formula's words in text fonts (\\text{if}, \\operatorname{softmax}, \\max,
    \\mathbf{W}); the markdown's formulas now give those words too, so a math-heavy page scores as it reads
    (it scored 0.91 when only the PDF had them)."""

    tex = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n" + paragraphs(1)[0] + "\n"
           + TEXT_FONT_MATH + "\n" + paragraphs(2)[1] + "\n\\end{document}\n")
    (tmp_path / "main.tex").write_text(tex)
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "math-words")
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    (split,) = split_markdown_into_pages(markdown, pymupdf.open(pdf))
    assert split.score >= 0.99, split.score
    assert {"softmax", "otherwise", "attn", "arg", "min"} <= set(markdown_tokens(markdown)[0])


def test_items_of_a_list_with_printed_labels_are_list_items(tmp_path):
    """enumitem's `(i)` labels are written as printed: each item is still a List-item box."""

    items = "".join(f"\\item {sentence}\n" for sentence in paragraphs(3)[0].split(". ")[:3])
    tex = ("\\documentclass{article}\n\\usepackage{enumitem}\n\\begin{document}\n" + paragraphs(2)[1] +
           "\n\\begin{enumerate}[label=(\\roman*)]\n" + items + "\\end{enumerate}\n\\end{document}\n")
    (tmp_path / "main.tex").write_text(tex)
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "list-test")
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    assert "\n(i) " in markdown and "\n(iii) " in markdown
    doc = pymupdf.open(pdf)
    (split,) = split_markdown_into_pages(markdown, doc)
    page = doc[0]
    labels = [b["label"] for b in layout_of(split, page)]
    assert labels.count("List-item") == 3, labels


def test_a_thanks_note_goes_to_the_foot_of_the_page_and_its_label_is_not_a_word(tmp_path):
    """`\\thanks` becomes an unnumbered `Footnote: …` block after the names; the PDF prints it at the foot of
    the page, where it moves, and its label counts as no word."""

    tex = ("\\documentclass{article}\n\\title{Drift of River Gauges}\n\\author{Ann Smith\\thanks{Supported by the "
           "river gauge foundation under its second campaign.}}\n\\date{}\n\\begin{document}\n\\maketitle\n"
           + "\n\n".join(paragraphs(4)[:3]) + "\n\\end{document}\n")
    (tmp_path / "main.tex").write_text(tex)
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "thanks-test")
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    assert "\nFootnote: Supported by the river gauge foundation under its second campaign.\n" in markdown
    split = split_markdown_into_pages(markdown, pymupdf.open(pdf))[0]
    assert split.markdown.rstrip().endswith("Footnote: Supported by the river gauge foundation under its second "
                                            "campaign."), split.markdown[-200:]
    assert split.score >= 0.98, split.score


LONG_CAPTION = "Every gauge of the campaign with its river and its two readings."
GAUGE_RIVERS = ["Alder", "Birch", "Cedar", "Maple", "Willow"]


def long_table(rows: int, form: str) -> tuple[list[str], str]:
    """A longtable of `rows` gauges whose header every page repeats (`\\endhead`), and its markdown in the
    `--tables` form given, as LaTeXML's is converted: the header once, then every row."""
    cells = [(f"Gauge{i:03d}", f"{GAUGE_RIVERS[i % 5]} river", f"{i * 1.5:.1f}") for i in range(rows)]
    tex = [r"\begin{longtable}{llr}", r"\caption{" + LONG_CAPTION + r"}\\", r"\hline Name & River & Reading \\ \hline",
           r"\endfirsthead", r"\hline Name & River & Reading \\ \hline", r"\endhead", r"\hline", r"\endfoot"]
    tex += [" & ".join(row) + r" \\" for row in cells] + [r"\end{longtable}"]
    if form == "latex":
        table = "\n".join([r"\begin{tabular}{llr}", r"\hline", r"Name & River & Reading \\", r"\hline"]
                          + [" & ".join(row) + r" \\" for row in cells] + [r"\hline", r"\end{tabular}"])
    else:
        table = ("<table><tr><th>Name</th><th>River</th><th>Reading</th></tr>"
                 + "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in cells) + "</table>")
    return tex, f"Table 1: {LONG_CAPTION}\n\n{table}"


@pytest.fixture(scope="module")
def long_table_pdf(tmp_path_factory):
    work = tmp_path_factory.mktemp("longtable")
    tex, _ = long_table(110, "latex")
    write_float_document(work, [r"\documentclass{article}", r"\usepackage{longtable}", r"\begin{document}"], [],
                         paragraphs(8), 2, tex, [])
    pdf, _ = compile_pdf(work, work / "main.tex", "longtable-test")
    return pdf


@pytest.mark.parametrize("form", ["latex", "html"])
def test_a_table_continued_over_pages_is_cut_where_the_pdf_cuts_it(long_table_pdf, form):
    """A longtable over three pages is one table block in the markdown: each page gets the rows it prints,
    after the header rows it repeats, as a table of its own; before, every page it touched was dropped."""
    _, table_md = long_table(110, form)
    body = paragraphs(8)
    markdown = "\n\n".join(body[:3] + [table_md] + body[3:])  # as write_float_document puts it
    doc = pymupdf.open(long_table_pdf)
    splits = split_markdown_into_pages(markdown, doc)
    assert all(s.kept for s in splits), [(s.number, s.score, s.reason) for s in splits]
    table_pages = [s for s in splits if "Gauge" in s.markdown]
    assert len(table_pages) >= 3
    for split in splits:
        page_text = doc[split.number - 1].get_text()
        rows = re.findall(r"Gauge\d{3}", split.markdown)
        assert rows == [row for row in re.findall(r"Gauge\d{3}", page_text)], split.number
    opening, closing = ("\\begin{tabular}", "\\end{tabular}") if form == "latex" else ("<table>", "</table>")
    for split in table_pages:  # each page's share is one whole table, the header first
        assert split.markdown.count(opening) == split.markdown.count(closing) == split.markdown.count("Name") == 1
        assert split.markdown.index(opening) < split.markdown.index("Name") < split.markdown.index("Gauge")
        assert split.markdown.index("Gauge") < split.markdown.index(closing)
    assert [s.number for s in splits if LONG_CAPTION in s.markdown] == [table_pages[0].number]


def test_html_tables_move_with_their_float_and_their_tags_are_not_words(tmp_path):
    """`--tables html`: a table's block is a float like a tabular (it follows its float to the next page)
    and its tag names and entities are not compared as words."""
    assert markdown_tokens('<table><tr><th colspan="2">Flow &amp; level</th></tr></table>')[0] == ["flow", "level"]
    body = paragraphs(12)
    rows = [("Campaign", "Accuracy"), ("River & lake", "81.2")] + [(f"{river} river", "90.1") for river in GAUGE_RIVERS]
    table = [r"\begin{table}[t]\centering\caption{" + ROMAN_CAPTION + r"}", r"\begin{tabular}{cc}",
             " ".join(name.replace("&", r"\&") + f" & {value} \\\\" for name, value in rows),
             r"\end{tabular}", r"\end{table}"]
    table_md = [f"Table 1: {ROMAN_CAPTION}", "<table>" + "".join(
        f"<tr><td>{name.replace('&', '&amp;')}</td><td>{value}</td></tr>" for name, value in rows) + "</table>"]
    markdown = write_float_document(tmp_path, [r"\documentclass{article}", r"\begin{document}"], [], body, 10,
                                    table, table_md)
    assert_float_follows_the_pdf(tmp_path, markdown, ROMAN_CAPTION, "<table>")  # whole: a one-page table is not cut


def test_a_paragraph_the_pdf_continues_under_a_figure_is_cut_around_it(tmp_path):
    """Two columns: a paragraph runs from the bottom of the left column into the right one, whose top holds a
    figure defined earlier. The PDF is read column by column, so its page markdown has the paragraph's start,
    the figure's caption, then the rest of the paragraph (before: the whole paragraph, then the caption)."""
    body = paragraphs(12)
    body[0] += " Extra words shift the column break by a line or two." * 2  # the break falls inside paragraph 7
    figure = [r"\begin{figure}[t]\centering\fbox{\rule{0pt}{9cm}\rule{3cm}{0pt}}", r"\caption{" + CAPTION + "}",
              r"\end{figure}"]
    markdown = write_float_document(tmp_path, [r"\documentclass[twocolumn]{article}", r"\begin{document}"], [], body,
                                    5, figure, [f"Figure 1: {CAPTION}"])
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "two-column-test")
    first = split_markdown_into_pages(markdown, pymupdf.open(pdf))[0]
    assert first.kept and first.score > 0.99, first.score
    crossing = body[6]
    assert first.markdown.index(crossing[:40]) < first.markdown.index(CAPTION) < first.markdown.index(crossing[-40:])
    assert all(part in first.markdown for part in (crossing[:40], crossing[-40:]))  # every word once, in two parts
    assert first.markdown.count(crossing[:40]) == 1 and crossing not in first.markdown


def test_a_figures_panel_captions_go_with_its_caption_and_get_boxes_of_their_own(tmp_path):
    """A figure of two panels (subcaption) printed at the top of the next page: its "(a) …", "(b) …" and
    "Figure 1: …" captions are one movable block, so the panels' captions go where the PDF prints them (they
    stayed in the body before), and the layout boxes each caption apart."""
    body = paragraphs(12)
    figure = [r"\begin{figure}[t]\centering",
              r"\begin{subfigure}{0.45\textwidth}\centering\fbox{\rule{0pt}{2cm}\rule{3cm}{0pt}}"
              r"\caption{Upstream gauge readings}\end{subfigure}",
              r"\begin{subfigure}{0.45\textwidth}\centering\fbox{\rule{0pt}{2cm}\rule{3cm}{0pt}}"
              r"\caption{Downstream gauge readings}\end{subfigure}",
              r"\caption{" + CAPTION + "}", r"\end{figure}"]
    write_float_document(tmp_path, [r"\documentclass{article}", r"\usepackage{subcaption}", r"\begin{document}"], [],
                         body, 10, figure, [])
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "subfigure-test")
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60))
    assert f"(a) Upstream gauge readings\n(b) Downstream gauge readings\nFigure 1: {CAPTION}" in markdown
    doc = pymupdf.open(pdf)
    on_pdf = [p.number for p in read_pdf_pages(doc) if "upstream gauge readings" in " ".join(p.tokens)]
    splits = split_markdown_into_pages(markdown, doc)
    assert on_pdf and on_pdf[0] > 1 and [s.number for s in splits if "Upstream gauge" in s.markdown] == on_pdf
    assert all(s.kept for s in splits), [(s.number, s.score, s.reason) for s in splits]
    page = splits[on_pdf[0] - 1]
    boxes = page_layout(page, doc[page.number - 1], 1.0, int(doc[0].rect.width), int(doc[0].rect.height))
    assert [box["label"] for box in boxes].count("Caption") == 3


NOTE_TEXT = "Measured against exhaustive pairwise comparison of every gauge"


def test_a_tables_notes_go_with_it_to_the_page_the_pdf_prints_it_on(tmp_path):
    """threeparttable's notes (`\\item[a]`, labels printed) are lines under the tabular's block, so they move with
    the float; the tabular's `\\end{tabular}` is not a word."""
    body = paragraphs(12)
    table = [r"\begin{table}[t]\centering\begin{threeparttable}\caption{" + ROMAN_CAPTION + r"}",
             r"\begin{tabular}{cc}", r"Campaign & Recall\tnote{a} \\ River & 81.2 \\", r"\end{tabular}",
             r"\begin{tablenotes}\item[a] " + NOTE_TEXT + r".\end{tablenotes}", r"\end{threeparttable}\end{table}"]
    write_float_document(tmp_path, [r"\documentclass{article}", r"\usepackage{threeparttable}", r"\begin{document}"],
                         [], body, 10, table, [])
    markdown = html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=120))
    assert f"\\end{{tabular}}\n* a {NOTE_TEXT}." in markdown
    assert_float_follows_the_pdf(tmp_path, markdown, NOTE_TEXT)
    assert "tabular" not in markdown_tokens(markdown)[0]


def test_the_arxiv_identifier_stamped_up_the_first_pages_margin_is_not_page_text(tmp_path):
    """arXiv's PDFs carry "arXiv:ID [category] date" rotated in page 1's left margin; no markdown has it."""
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n" + "\n\n".join(paragraphs(3))
                                       + "\n\\end{document}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "stamp-test")
    doc = pymupdf.open(pdf)
    before = read_pdf_pages(doc)[0].tokens
    doc[0].insert_text((20, 600), "arXiv:2603.01234v2  [cs.CL]  5 Mar 2026", rotate=90, fontsize=20,
                       fontname="Times-Roman")
    stamped = pymupdf.open(stream=doc.tobytes(), filetype="pdf")
    assert "arXiv" in stamped[0].get_text() and read_pdf_pages(stamped)[0].tokens == before


def test_a_submission_copys_line_numbers_are_not_formulas(tmp_path):
    """lineno's margin numbers (NeurIPS/ICML/ACL review copies) have no words: they are not display formulas,
    also beside a heading and a list whose rows they do not share."""
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage{lineno}\n\\linenumbers\n\\begin{document}\n"
        + "\n\n".join(paragraphs(3)) + "\n\\section{Checklist}\n\\begin{enumerate}\n\\item {\\bf Claims}\n"
        "\\item[] Question: Do the main claims reflect the scope of the paper?\n\\item[] Answer: Yes.\n"
        "\\end{enumerate}\n\\end{document}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "lineno-test")
    doc = pymupdf.open(pdf)
    split = split_markdown_into_pages(html_to_markdown(latex_to_html(tmp_path, "main.tex", timeout_s=60)), doc)[0]
    page = doc[0]
    left = min(line.bbox[0] for line in split.pdf.lines if tokens_of(line.text))
    numbers = [line.bbox for line in split.pdf.lines if line.text.isdigit() and line.bbox[2] <= left]
    assert len(numbers) > 10  # the numbers are there ...
    layout = layout_of(split, page)
    labels = [b["label"] for b in layout]
    assert "Formula" not in labels and labels.count("Text") >= 3 and "List-item" in labels  # ... and boxed as nothing,
    assert all(b["bbox"][0] > max(box[2] for box in numbers) for b in layout if b["label"] != "Page-footer")  # nor in text


def test_a_footnote_marks_superscript_digit_is_not_part_of_the_word():
    """The markdown writes a mark as "note¹" where the PDF has "note" and a small "1": both read "note"."""
    assert markdown_tokens("Haddad² and the note¹ here, x₂.")[0] == tokens_of("Haddad2 and the note1 here, x2.") == [
        "haddad", "and", "the", "note", "here", "x"]


def test_the_ligatures_of_t1_bitmap_fonts_read_as_their_letters(tmp_path):
    """pdfTeX sets `\\usepackage[T1]{fontenc}` text in Type 3 bitmap fonts where cm-super is not installed (old
    arXiv PDFs too): their ligatures come out of PyMuPDF as character codes 0x1b-0x1f ("\\x1crst" for "first")."""
    sentence = "The first office of the fluffy efficient baffle."
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\begin{document}\n"
                                       f"{sentence}\n\\end{{document}}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "t1-test")
    doc = pymupdf.open(pdf)
    assert read_pdf_pages(doc)[0].tokens == tokens_of(sentence)
    assert split_markdown_into_pages(sentence, doc)[0].score == 1.0


def test_the_running_heads_a_short_paper_declares_are_not_its_text(tmp_path):
    """A twoside paper prints its left head on even pages and its right head on odd ones: in three pages each
    stands once, too rarely to be found recurring; the heads the source declares (`\\markboth` here) are removed
    from the later pages' edges, the first page's title (which reads as the right head) is kept."""
    body = paragraphs(22)
    (tmp_path / "main.tex").write_text("\n\n".join(
        ["\\documentclass[twoside]{article}\n\\pagestyle{myheadings}\n"
         "\\markboth{A.~Lee and B.~Chen}{Routing \\emph{Sparse} Attention} % the heads\n\\begin{document}\n"
         "\\title{Routing Sparse Attention}\n\\author{Ann Lee \\and Bo Chen}\n\\date{}\n\\maketitle"]
        + body + ["\\end{document}"]))
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "heads-test")
    doc = pymupdf.open(pdf)
    heads = declared_running_heads(tmp_path / "main.tex")
    assert heads == ["A. Lee and B. Chen", "Routing Sparse Attention"]
    before, after = read_pdf_pages(doc), read_pdf_pages(doc, heads)
    assert len(doc) == 3
    assert before[1].tokens[:5] == ["a", "lee", "and", "b", "chen"] and before[2].tokens[:3] == tokens_of(heads[1])
    assert [page.tokens for page in after] == [before[0].tokens, before[1].tokens[5:], before[2].tokens[3:]]
    markdown = "\n\n".join(["# Routing Sparse Attention", "Ann Lee Bo Chen"] + body)
    assert all(split.score > 0.99 for split in split_markdown_into_pages(markdown, doc, running_heads=heads))


def test_declared_running_heads_are_read_from_the_classes_commands(tmp_path):
    (tmp_path / "main.tex").write_text(
        "\\documentclass[pmlr]{jmlr}\n\\title[Short {\\em Title}]{A Much Longer Title}\n"
        "\\ShortHeadings{Routing Heads}{Lee and Chen}\n% \\titlerunning{Commented Out}\n\\titlerunning{Sparse Routing}\n"
        "\\authorrunning{A.~Lee et al.}\n\\renewcommand{\\shortauthors}{Lee, Chen}\n\\author[1]{Ann Lee}\n")
    assert declared_running_heads(tmp_path / "main.tex") == [
        "Routing Heads", "Lee and Chen", "Sparse Routing", "A. Lee et al.", "Short Title", "Lee, Chen", "1"]


def test_a_word_broken_at_a_line_end_is_joined_across_a_margin_line_number():
    """A submission copy's line numbers (lineno, IJCAI's and NeurIPS's templates) are lines of their own in the
    PDF's text, which may stand between the two halves of a hyphenated word."""
    lines = [PdfLine((0, 0, 100, 10), "the lin-", False), PdfLine((0, 10, 5, 20), "12", False),
             PdfLine((0, 10, 100, 20), "ear map", False)]
    assert line_tokens(lines) == (["the", "linear", "map"], [0, 0, 2])


def test_upright_capital_greek_in_formulas_counts_as_the_text_font_letter_it_prints(tmp_path):
    """TeX sets math's upright capital Greek (`\\Phi`, `\\mathbf{\\Phi}`) in the text font (cmr, cmbx), which the
    PDF's words keep (cmr's Delta as U+2206): the markdown's formulas count them too (`\\varPhi` is math italic, a
    math font). The PDF's words part where a formula's math-font glyphs stood (`\\Delta h/\\Delta t`) and at a
    subscript in a text font (`\\Gamma_{\\mathbf{k}}`, `\\mathbf{W}_{\\mathrm{q}}`), as the formula's words do."""
    sentence = (r"The map $\Phi$ and $\mathbf{\Phi}$ and $\varPhi$ and $\Sigma_i$ end, rate $\Gamma_{\mathbf{k}}$ "
                r"and $\Delta h/\Delta t$ and $\mathbf{W}_{\mathrm{q}}$.")
    (tmp_path / "main.tex").write_text(f"\\documentclass{{article}}\n\\usepackage{{amsmath}}\n\\begin{{document}}\n"
                                       f"{sentence}\n\\end{{document}}\n")
    pdf, _ = compile_pdf(tmp_path, tmp_path / "main.tex", "greek-test")
    doc = pymupdf.open(pdf)
    markdown = re.sub(r"\$([^$]*)\$", r"\\(\1\\)", sentence)
    assert read_pdf_pages(doc)[0].tokens == markdown_tokens(markdown)[0] == [
        "the", "map", "φ", "and", "φ", "and", "and", "σ", "end", "rate", "γ", "k", "and", "δ", "δ", "and", "w", "q"]


def test_aa_composes_its_running_heads_from_the_authors_and_the_title(tmp_path):
    """aa.cls prints "Authors: Title" on odd pages (the authors as "A and B" or "A et al." without
    `\\authorrunning`) and "A&A proofs: manuscript no. <job name>" on even ones."""
    main = tmp_path / "aa12345-25.tex"
    main.write_text("\\documentclass{aa}\n\\title{Lithium in solar twins}\n\\titlerunning{Lithium in twins}\n"
                    "\\author{A. Lee\\inst{1}\\fnmsep\\thanks{Corresponding.} \\and B. Chen\\inst{2} \\and C. Wu\\inst{1}}\n")
    assert declared_running_heads(main) == ["A&A proofs: manuscript no. aa12345-25", "A. Lee et al.: Lithium in twins",
                                            "Lithium in twins"]
    main.write_text("\\documentclass{aa}\n\\title{Lithium in \\emph{solar} twins}\n\\author{A. Lee \\and B. Chen}\n")
    assert declared_running_heads(main)[1] == "A. Lee and B. Chen: Lithium in solar twins"
