"""MMTab ingest: the table recognition records with an HTML answer become one `table` sample per table image,
its HTML in the table generator's convention; Markdown/LaTeX answers and the other tasks are only counted,
and a broken table, a missing image, a bad record or a cut-off file is an error-log line naming it."""

import json
import logging
import random
from pathlib import Path

from mixtures.tasks import render_conversation
from pipelines.ingest.mmtab import MmtabIngest, table_form, table_target
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import jpeg, read_dataset, read_errors

OPTIONS = RunOptions(progress=False)
PRE = "MMTab-pre_pretrain_data_llava_format_150K.json"
INSTRUCT = "MMTab-instruct_sft_data_llava_format_232K.json"

# a table with a title row spanning both columns, as Table-LLaVA renders TABMWP tables, in <html><body> with
# the newlines MMTab's evaluation strips before TEDS
COOKIES = ("<html><body><table>\n<tr>\n<th colspan=\"2\">Cookies baked</th>\n</tr>\n<tr>\n<th>Day</th>\n"
           "<th>Number of cookies</th>\n</tr>\n<tr>\n<td>Friday</td>\n<td>163</td>\n</tr>\n<tr>\n<td>Saturday</td>\n"
           "<td>281</td>\n</tr>\n</table></body></html>")
COOKIES_HTML = ('<table><tbody><tr><td colspan="2">Cookies baked</td></tr><tr><td>Day</td><td>Number of cookies</td>'
                '</tr><tr><td>Friday</td><td>163</td></tr><tr><td>Saturday</td><td>281</td></tr></tbody></table>')
# pandas' to_html shape in a Markdown code fence: thead/tbody, a row span, entities, a line break, bold
FILMOGRAPHY = """```html
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;">
      <th>Year</th>
      <th>Title</th>
      <th>Role</th>
    </tr>
  </thead>
  <tbody>
    <tr>
      <td rowspan="2">2004</td>
      <td>Tom &amp; Jerry<br>Tales</td>
      <td><b>Lead</b></td>
    </tr>
    <tr>
      <td>A &lt;B&gt; C</td>
      <td>Guest</td>
    </tr>
  </tbody>
</table>
```"""
FILMOGRAPHY_HTML = ('<table><thead><tr><td>Year</td><td>Title</td><td>Role</td></tr></thead><tbody><tr>'
                    '<td rowspan="2">2004</td><td>Tom &amp; Jerry Tales</td><td><b>Lead</b></td></tr><tr>'
                    '<td>A &lt;B&gt; C</td><td>Guest</td></tr></tbody></table>')
MARKDOWN = "| Cookies baked | Cookies baked |\n| --- | --- |\n| Day | Number of cookies |\n| Friday | 163 |"
LATEX = "\\begin{tabular}{|l|l|}\n\\hline\nYear & Title \\\\\n\\hline\n2003 & Sky \\\\\n\\hline\n\\end{tabular}"


def record(image: str | None, answer: str, request: str = "Recognize the table in this image and give it in HTML.",
           **fields) -> dict:
    turns = [{"from": "human", "value": f"<image>\n{request}"}, {"from": "gpt", "value": answer}]
    base = {"id": Path(image or "no-image").stem, "conversations": turns, **fields}
    return {**base, "image": image} if image is not None else base


def write_mmtab(root: Path) -> None:
    """An MMTab-pre file with every case, an MMTab-instruct file, and the images Table-LLaVA's README lays out."""
    for rel in ("table_pretrain_part_1/TABMWP_8.jpg", "table_pretrain_part_1/FeTaQA_dev_example-3.jpg",
                "table_pretrain_part_1/HiTab_2.jpg", "table_pretrain_part_1/WTQ_203-csv_9.jpg",
                "table_pretrain_part_2/ToTTo_train_table_0.jpg", "table_pretrain_part_2/ToTTo_train_table_1.jpg",
                "table_instructV/images/HiTab_5.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(jpeg(len(rel)))
    pre = [
        record("table_pretrain_part_1/TABMWP_8.jpg", COOKIES),
        record("table_pretrain_part_1/TABMWP_8.jpg", MARKDOWN, "Show this table in Markdown."),  # asked again
        record("table_pretrain_part_2/ToTTo_train_table_0.jpg", LATEX, "Write this table in LaTeX."),
        record("table_pretrain_part_2/ToTTo_train_table_1.jpg", FILMOGRAPHY),
        record("table_pretrain_part_1/FeTaQA_dev_example-3.jpg",  # a row one cell short: not a grid
               "<table><tr><td>Rank</td><td>Team</td></tr><tr><td>1</td></tr></table>"),
        record("table_pretrain_part_1/FeTaQA_dev_example-9.jpg", COOKIES),  # no such image
        {"id": "TABMWP_17", "image": "table_pretrain_part_1/TABMWP_17.jpg", "conversations": "<image>\nHTML"},
        record("table_pretrain_part_1/HiTab_2.jpg",  # a footer row the convention has no place for
               "<table><tbody><tr><td>a</td></tr></tbody><tfoot><tr><td>total</td></tr></tfoot></table>"),
        record("table_pretrain_part_1/WTQ_203-csv_9.jpg", "<table><tr><td>Nation</td><td>Gold"),  # cut off
        record(None, COOKIES),
    ]
    (root / PRE).write_text(json.dumps(pre, indent=1))
    instruct = [
        record("table_instructV/images/TABMWP_8.jpg", 'The answer is {"answer": "Saturday"}.',
               "Which day were the most cookies baked?"),
        record("table_instructV/images/TABMWP_8.jpg", COOKIES.replace("163", "999")),  # the same image again
        record("table_instructV/images/TABMWP_8.jpg", 'This table has 4 rows and 2 columns. Thus, the final answer '
                                                       'is {"row_number": "4", "column_number": "2"}.'),
        {"id": "HiTab_5", "image": "table_instructV/images/HiTab_5.jpg", "conversations": [  # several turns
            {"from": "human", "value": "<image>\nShow this table in Markdown."}, {"from": "gpt", "value": MARKDOWN},
            {"from": "human", "value": "Now give it in HTML."}, {"from": "gpt", "value": COOKIES}]},
    ]
    (root / INSTRUCT).write_text(json.dumps(instruct))


def test_html_answers_become_one_canonical_table_per_image_and_bad_records_are_logged(ray_local, tmp_path, caplog):
    root = tmp_path / "mmtab"
    write_mmtab(root)
    out = tmp_path / "out"
    caplog.set_level(logging.INFO, logger="docforge.ingest")
    job = MmtabIngest([str(root / PRE), str(root / INSTRUCT)], str(root), "mmtab")
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["mmtab-HiTab_5", "mmtab-TABMWP_8", "mmtab-ToTTo_train_table_1"]
    assert samples["mmtab-HiTab_5"]["html"].decode() == COOKIES_HTML  # the HTML turn, not the Markdown one
    assert samples["mmtab-TABMWP_8"]["html"].decode() == COOKIES_HTML  # MMTab-pre's answer, not MMTab-instruct's
    assert samples["mmtab-ToTTo_train_table_1"]["html"].decode() == FILMOGRAPHY_HTML
    cookies = json.loads(samples["mmtab-TABMWP_8"]["json"])
    assert cookies["family"] == "table" and cookies["lang"] == "en" and cookies["source"] == "mmtab"
    assert cookies["provenance"]["input"].endswith(PRE) and cookies["provenance"]["id"] == "TABMWP_8"
    assert cookies["provenance"]["image_file"].endswith("table_pretrain_part_1/TABMWP_8.jpg")
    assert cookies["structure"][:5] == ["<tbody>", "<tr>", "<td", ' colspan="2"', ">"]
    assert [cell["text"] for cell in cookies["cells"]] == ["Cookies baked", "Day", "Number of cookies", "Friday", "163",
                                                           "Saturday", "281"]
    assert cookies["html_raw"].startswith("<table>\n<tr>") and cookies["meta"] == {"id": "TABMWP_8"}
    films = json.loads(samples["mmtab-ToTTo_train_table_1"]["json"])
    assert films["cells"][4]["text"] == "Tom & Jerry Tales"  # raw characters in the record, escaped in KEY.html
    assert films["cells"][5] == {"text": "Lead", "tokens": ["<b>", "L", "e", "a", "d", "</b>"]}
    for sample in samples.values():
        question, answer = render_conversation("table", sample, random.Random(0))
        assert question["content"].startswith("<image>\n") and answer["content"] == sample["html"].decode()
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {(f"{PRE}#4", "parse table"), (f"{PRE}#5", "read image"), (f"{PRE}#6", "check record"),
                      (f"{PRE}#7", "parse table"), (f"{PRE}#8", "parse table"), (f"{PRE}#9", "check record")}
    messages = {e["input"].rsplit("#", 1)[-1]: e["message"] for e in read_errors(out)}
    assert "covered by no cell" in messages["4"] and "FeTaQA_dev_example-9.jpg" in messages["5"]
    assert "would be lost" in messages["7"] and "no complete <table>" in messages["8"]
    assert f"{PRE}: 10 records: 7 table recognition in HTML (6 table images), 1 in Markdown and 1 in LaTeX " \
           "(skipped), 0 not table recognition, 2 errors" in caplog.text
    assert f"{INSTRUCT}: 4 records: 2 table recognition in HTML (2 table images), 0 in Markdown and 0 in LaTeX " \
           "(skipped), 2 not table recognition, 0 errors" in caplog.text
    assert verify_dataset(str(out)).ok


def test_a_folder_skips_the_merged_and_test_files_and_a_cut_off_file_costs_only_itself(ray_local, tmp_path):
    """From a folder: the `enhanced_llava_*` files (MMTab again, mixed with LLaVA's data) and the test split are
    not read; a JSON list cut short is one error naming the file; the test split given by name is refused
    once, not record by record; a JSONL line that is not JSON costs only its record."""
    root = tmp_path / "MMTab"
    (root / "table_pretrain_part_1").mkdir(parents=True)
    for name in ("TABMWP_8", "TABMWP_9", "TABMWP_10"):
        (root / "table_pretrain_part_1" / f"{name}.jpg").write_bytes(jpeg(len(name)))
    (root / PRE).write_text(json.dumps([record("table_pretrain_part_1/TABMWP_8.jpg", COOKIES)]))
    (root / "enhanced_llava_pretrain_data_708K.json").write_text(json.dumps(
        [record("table_pretrain_part_1/TABMWP_9.jpg", COOKIES)]))
    test_records = [{"item_id": "TR_test_item_0", "image_id": "TABMWP_10", "input": "Convert this table to HTML.",
                     "output": COOKIES, "task_type": "TR", "dataset_name": "TABMWP", "original_query": "None",
                     "answer_list": [], "original_query_type": "table recognition with HTML"}]
    (root / "MMTab-eval_test_data_49K.json").write_text(json.dumps(test_records))
    (root / INSTRUCT).write_text(json.dumps([record("table_pretrain_part_1/TABMWP_9.jpg", COOKIES)])[:60])
    (root / "mmtab_tr_subset.jsonl").write_text(
        "{not json\n" + json.dumps(record("table_pretrain_part_1/TABMWP_10.jpg", COOKIES)) + "\n")
    given = tmp_path / "eval" / "MMTab-eval_test_data_49K.json"
    given.parent.mkdir()
    given.write_text(json.dumps(test_records))
    out = tmp_path / "out"
    assert run_job(MmtabIngest([str(root), str(given)], None, "mmtab"), str(out), OPTIONS).ok
    assert sorted(read_dataset(out)) == ["mmtab-TABMWP_10", "mmtab-TABMWP_8"]
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {(INSTRUCT, "parse json"), ("mmtab_tr_subset.jsonl:1", "parse json"),
                      ("MMTab-eval_test_data_49K.json", "check record")}


def test_table_forms_and_the_canonical_html_is_a_fixed_point():
    assert [table_form(a) for a in (COOKIES, FILMOGRAPHY, MARKDOWN, LATEX, "This table has 4 rows and 2 columns.",
                                    "| A | B |\n|:---|---:|")] == ["html", "html", "markdown", "latex", None, "markdown"]
    for raw, canonical in ((COOKIES, COOKIES_HTML), (FILMOGRAPHY, FILMOGRAPHY_HTML)):
        html, part = table_target(raw, "answer")
        assert html == canonical and table_target(html, "again")[0] == canonical
        assert part["structure"] == table_target(html, "again")[1]["structure"]
