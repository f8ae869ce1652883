"""Metrics against hand-computed values, and `docforge eval` over JSONL files, folders and datasets."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import html

from evaluation.cli import evaluate
from evaluation.edit_distance import normalized_edit_distance, token_edit_accuracy
from evaluation.teds import teds
from pipelines.tables import table_seed
from synth.tables import TableConfig, generate_table, table_html

REPO = Path(__file__).resolve().parents[1]


def test_normalized_edit_distance_is_levenshtein_over_the_longer_length():
    assert normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_edit_distance("same", "same") == 0.0
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("", "abc") == 1.0


def test_token_edit_accuracy_sums_distances_over_the_set():
    assert token_edit_accuracy([(["a", "b", "c"], ["a", "x", "c"])]) == pytest.approx(1 - 1 / 3)
    # distances 1 + 1 over longer lengths 3 + 2
    assert token_edit_accuracy([(["a", "b", "c"], ["a", "x", "c"]), (["a"], ["a", "b"])]) == pytest.approx(1 - 2 / 5)
    assert token_edit_accuracy([(["\\frac", "{", "a", "}"], ["\\frac", "{", "a", "}"])]) == 1.0


def test_teds_matches_hand_computed_values():
    gold = "<table><tr><td>ab</td><td>c</td></tr></table>"
    assert teds(gold, gold) == 1.0
    # one cell's content fully replaced: rename cost 1 over 3 nodes (tr, td, td)
    changed = "<table><tr><td>ab</td><td>d</td></tr></table>"
    assert teds(changed, gold) == pytest.approx(1 - 1 / 3)
    assert teds(changed, gold, structure_only=True) == 1.0
    # two cells merged into one colspan cell: one rename (span differs) + one deletion, over 3 nodes
    merged = '<table><tr><td colspan="2">abc</td></tr></table>'
    assert teds(merged, gold) == pytest.approx(1 - 2 / 3)
    assert teds(merged, gold, structure_only=True) == pytest.approx(1 - 2 / 3)
    # inline bold: tokens <b> a b </b> vs a b: distance 2/4, over 3 nodes (tr, td, b)
    assert teds("<table><tr><td><b>ab</b></td></tr></table>", "<table><tr><td>ab</td></tr></table>") == \
        pytest.approx(1 - 0.5 / 3)
    assert teds("no table here", gold) == 0.0
    assert teds("", gold) == 0.0


def test_teds_scores_th_as_its_own_tag_as_pubtabnet_metric_does():
    # PubTabNet's src/metric.py makes a cell node only of <td>: a <th> is renamed at cost 1 and its inline
    # children are nodes of the tree, its text is not compared
    gold = "<table><tr><td>ab</td></tr></table>"
    assert teds("<table><tr><th>ab</th></tr></table>", gold) == pytest.approx(1 - 1 / 2)  # th->td over (tr, th)
    # th->td and the <b> node deleted, over 3 nodes (tr, th, b)
    assert teds("<table><tr><th><b>ab</b></th></tr></table>", "<table><tr><td><b>ab</b></td></tr></table>") == \
        pytest.approx(1 - 2 / 3)
    assert teds("<table><tr><th>ab</th></tr></table>", "<table><tr><th>cd</th></tr></table>") == 1.0
    # a real generated table written with <th>: each cell renamed and each inline tag deleted (metric.py's TEDS
    # gives the same 0.2326 for this table)
    gold = table_html(generate_table(table_seed(0, 0), TableConfig(lang="zh")))
    pred = gold.replace("<td", "<th").replace("</td>", "</th>")
    root = html.fromstring(gold)
    cells, inline = len(root.xpath("//td")), len(root.xpath("//td//*"))
    expected = 1 - (cells + inline) / len(root.xpath(".//*"))
    assert expected < 0.5 and teds(pred, gold) == pytest.approx(expected)
    assert teds(pred, gold, structure_only=True) == pytest.approx(expected)


def test_teds_reads_a_bare_table_and_an_html_body_document_alike():
    gold = table_html(generate_table(3))
    changed = gold.replace("<td>", "<td>x", 1)
    wrapped = "<html><body>{}</body></html>".format
    assert teds(wrapped(gold), gold) == teds(gold, wrapped(gold)) == teds(wrapped(gold), wrapped(gold)) == 1.0
    assert teds(wrapped(changed), gold) == teds(changed, wrapped(gold)) == teds(changed, gold) < 1.0


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_evaluate_pairs_by_key_and_scores_missing_predictions_as_empty(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", [{"key": "a", "text": "x = {1 \\over 2}"}, {"key": "b", "text": "y"}])
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "a.tex").write_text("x = \\frac{1}{2}")
    (preds / "z.tex").write_text("extra")
    report = evaluate("formula", str(preds), gold)
    assert report["count"] == 2 and report["missing_predictions"] == 1 and report["extra_predictions"] == 1
    # a: identical after normalisation (\over -> \frac); b: empty prediction vs one token
    assert report["metrics"]["exact_match"] == 0.5
    # a: 9 tokens (x = \\frac { 1 } { 2 }), distance 0; b: distance 1 over 1 token
    assert report["metrics"]["token_edit_accuracy"] == pytest.approx(1 - 1 / (9 + 1))
    by_key = {s["key"]: s for s in report["samples"]}
    assert by_key["b"]["edit_distance"] == 1.0


def test_cli_prints_metrics_writes_json_and_names_a_bad_line(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", [{"key": "t", "text": "<table><tr><td>1</td></tr></table>"}])
    out = tmp_path / "scores.json"
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "eval", "table", "--pred", gold, "--gold", gold,
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "teds" in run.stdout and "1.0000" in run.stdout
    assert json.loads(out.read_text())["metrics"] == {"edit_distance": 0.0, "teds": 1.0, "teds_struct": 1.0}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "t", "text": "x"}\n{"key": "u"}\n')
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "eval", "table", "--pred", str(bad), "--gold", gold],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "bad.jsonl:2" in run.stderr


def test_doc2md_scores_pages_by_nougat_edit_distance(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", [{"key": "p1", "text": "# Title\n\nabcd"}, {"key": "p2", "text": "xyz"}])
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "p1.md").write_text("# Title\n\nabce")  # 1 edit over 13 characters
    (preds / "p2.md").write_text("xyz")
    report = evaluate("doc2md", str(preds), gold)
    assert report["metrics"] == {"edit_distance": pytest.approx((1 / 13 + 0) / 2)}
