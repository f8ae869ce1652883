"""`docforge build tables --arxiv`: tabulars lifted from sources, rendered by pdflatex (xelatex for Chinese),
targets from real LaTeXML."""

import io
import json

from PIL import Image

from pipelines.runner import RunOptions, run_job
from pipelines.tables_arxiv import ArxivTablesJob, pubtabnet_html
from pipelines.verify import verify_dataset
from synth.tables import html_from_tokens
from tests.test_ocr_job import samples_of

PAPER = r"""\documentclass{article}
\begin{document}
\begin{table}
\begin{tabular}{lr}
\multicolumn{2}{c}{\textbf{Results}} \\
Loss $x^2$ & 0.25 \\
R\&D & $a<b$ \\
Accuracy & \textit{91.5}
\end{tabular}
\end{table}
Text. \begin{tabular}{cc} \paperownmacro & 1 \end{tabular}
And \begin{tabular}{c} \input{/etc/hostname} \end{tabular}
\begin{tabular}{lr} 项目 & 金额 \\ 营业收入 & 1,234 \end{tabular}
\end{document}
"""
LIFTED_HTML = ('<table class="ltx_tabular"><thead class="ltx_thead"><tr class="ltx_tr">'
               '<th class="ltx_td ltx_th"><span class="ltx_text ltx_font_bold">Model</span></th>'
               '<th class="ltx_td ltx_th">F1</th></tr></thead><tbody class="ltx_tbody"><tr class="ltx_tr">'
               '<td class="ltx_td">Ours <span class="ltx_Math" id="m1">\\alpha</span></td>'
               '<td class="ltx_td">0.9</td></tr></tbody></table>')
LIFTED_TARGET = ("<table><thead><tr><td><b>Model</b></td><td>F1</td></tr></thead>"
                 "<tbody><tr><td>Ours $\\alpha$</td><td>0.9</td></tr></tbody></table>")


def test_latexml_tables_become_pubtabnet_html():
    assert pubtabnet_html(LIFTED_HTML) == LIFTED_TARGET


def test_arxiv_tabulars_render_with_latexml_targets_and_bad_ones_are_logged(ray_local, tmp_path):
    papers = tmp_path / "src"
    (papers / "2501.00001").mkdir(parents=True)
    (papers / "2501.00001" / "main.tex").write_text(PAPER)
    (papers / "lifted").mkdir()
    (papers / "lifted" / "task-000000.jsonl").write_text(
        json.dumps({"paper": "2501.00002", "kind": "table", "html": LIFTED_HTML,
                    "latex": "\\begin{tabular}{ll}\\textbf{Model} & F1 \\\\ Ours $\\alpha$ & 0.9\\end{tabular}"})
        + "\n{broken\n")
    out = tmp_path / "out"
    result = run_job(ArxivTablesJob([str(papers)], batch_size=8, dpi=100), str(out), RunOptions(progress=False))
    assert result.ok and verify_dataset(str(out)).ok
    samples = samples_of(out)
    assert sorted(samples) == ["table-2501_00001_main_tex-0000", "table-2501_00001_main_tex-0003",
                               "table-2501_00002-l00001"]
    chinese = samples["table-2501_00001_main_tex-0003"]  # rendered by xelatex with xeCJK
    assert json.loads(chinese["json"])["lang"] == "zh"
    assert chinese["html"].decode() == "<table><tbody><tr><td>项目</td><td>金额</td></tr><tr><td>营业收入</td>" \
        "<td>1,234</td></tr></tbody></table>"
    lifted = samples["table-2501_00002-l00001"]
    assert lifted["html"].decode() == LIFTED_TARGET
    paper = samples["table-2501_00001_main_tex-0000"]
    html = paper["html"].decode()
    assert '<td colspan="2"><b>Results</b></td>' in html and "<td>Loss $x^{2}$</td>" in html
    assert "<td><i>91.5</i></td>" in html and "<td>R&amp;D</td><td>$a&lt;b$</td>" in html
    record = json.loads(paper["json"])
    tokens = [cell["tokens"] for cell in record["html"]["cells"]]
    assert list("R&D") in tokens and list("$a<b$") in tokens  # raw characters, as PubTabNet's tokens
    assert html_from_tokens(record["html"]["structure"]["tokens"], tokens) == html
    assert Image.open(io.BytesIO(paper["png"])).size == (record["image"]["width"], record["image"]["height"])
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {(e["input"].split(" ")[0], e["step"]) for e in errors} == {
        ("table-2501_00001_main_tex-0001", "latexml"), ("table-2501_00001_main_tex-0002", "check"),
        (f"{papers / 'lifted' / 'task-000000.jsonl'}:2", "read lifted")}
    assert len(errors) == 3 and "paperownmacro" in next(e["message"] for e in errors if e["step"] == "latexml")


def test_doc2md_lifted_folder_given_directly_is_read(tmp_path):
    lifted = tmp_path / "doc2md" / "lifted"
    lifted.mkdir(parents=True)
    (lifted / "task-000000.jsonl").write_text(json.dumps(
        {"paper": "2501.00002", "kind": "table", "html": LIFTED_HTML, "latex": "\\begin{tabular}{l}a\\end{tabular}"}))
    (tmp_path / "doc2md" / "errors.jsonl").write_text("{not lifted output}\n")
    for url in (lifted, tmp_path / "doc2md"):
        plan = ArxivTablesJob([str(url)]).plan()
        assert not plan.errors and [e["key"] for t in plan.tasks for b in t.items for e in b] == ["table-2501_00002-l00001"]
