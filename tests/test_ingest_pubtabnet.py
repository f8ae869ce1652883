"""PubTabNet ingest: the rebuilt HTML round-trips to the annotation's structure and cell tokens, cell boxes
stay, and a malformed line, a cell-count mismatch or a missing image is an error-log line."""

import html
import json
import shutil
from pathlib import Path

from lxml import etree
from lxml import html as lxml_html

from evaluation.teds import teds
from pipelines.ingest.pubtabnet import PubtabnetIngest, table_html
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "datasets"


def reference_html(annotation: dict) -> str:
    """PubTabNet's own way to build a table's HTML (insert each cell after its opener, back to front)."""
    code = list(annotation["html"]["structure"]["tokens"])
    openers = [i for i, tag in enumerate(code) if tag in ("<td>", ">")]
    for i, cell in zip(openers[::-1], annotation["html"]["cells"][::-1]):
        if cell["tokens"]:
            code.insert(i + 1, "".join(html.escape(t) if len(t) == 1 else t for t in cell["tokens"]))
    return "<table>" + "".join(code) + "</table>"


def tokens_of(markup: str) -> tuple[list[str], list[list[str]]]:
    """Structure tokens and per-cell content tokens read back from table HTML with lxml."""
    table = lxml_html.fragment_fromstring(markup)
    structure, cells = [], []

    def content(element) -> list[str]:
        tokens = list(element.text or "")
        for child in element:
            tokens += [f"<{child.tag}>", *content(child), f"</{child.tag}>", *(child.tail or "")]
        return tokens

    def walk(element) -> None:
        for child in element:
            if child.tag == "td":
                spans = [f' {name}="{child.get(name)}"' for name in ("rowspan", "colspan") if child.get(name)]
                structure.extend(["<td", *spans, ">"] if spans else ["<td>"])
                cells.append(content(child))
                structure.append("</td>")
            else:
                structure.append(f"<{child.tag}>")
                walk(child)
                structure.append(f"</{child.tag}>")

    walk(table)
    return structure, cells


def test_rebuilt_html_round_trips_to_the_annotation_tokens():
    for line in (SAMPLES / "pubtabnet" / "PubTabNet_2.0.0.jsonl").read_text().splitlines():
        annotation = json.loads(line)
        structure = annotation["html"]["structure"]["tokens"]
        cells = [cell["tokens"] for cell in annotation["html"]["cells"]]
        rebuilt = table_html(structure, cells)
        assert rebuilt == reference_html(annotation)
        assert tokens_of(rebuilt) == (structure, cells)
        assert teds(rebuilt, f"<html><body>{reference_html(annotation)}</body></html>") == 1.0
        assert teds(table_html(structure, cells[1:] + [["x"]]), rebuilt) < 1.0
    assert table_html(["<tr>", "<td>", "</td>", "</tr>"], [["a", "<", "&", "<b>", "b", "</b>"]]) == \
        "<table><tr><td>a&lt;&amp;<b>b</b></td></tr></table>"
    assert etree.tostring(lxml_html.fragment_fromstring(
        table_html(["<tr>", "<td", ' rowspan="2"', ">", "</td>", "</tr>"], [["x"]]))) == \
        b'<table><tr><td rowspan="2">x</td></tr></table>'


def test_pubtabnet_job_writes_html_and_cell_boxes_and_logs_bad_lines(ray_local, tmp_path):
    root = tmp_path / "pubtabnet"
    shutil.copytree(SAMPLES / "pubtabnet", root)
    lines = (root / "PubTabNet_2.0.0.jsonl").read_text().splitlines()
    short = json.loads(lines[1])
    short["html"]["cells"].pop()
    missing = json.loads(lines[2])
    missing["filename"] = "PMC0000000_000_00.png"
    (root / "PubTabNet_2.0.0.jsonl").write_text("\n".join([lines[0], json.dumps(short), "{not json", lines[2],
                                                           json.dumps(missing)]) + "\n")
    out = tmp_path / "out"
    job = PubtabnetIngest([str(root / "PubTabNet_2.0.0.jsonl")], str(root), "pubtabnet")
    assert run_job(job, str(out), RunOptions(progress=False)).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["pubtabnet-PMC2871264_002_00", "pubtabnet-PMC4219599_004_00"]
    first = samples["pubtabnet-PMC2871264_002_00"]
    annotation = json.loads(lines[0])
    assert first["html"].decode() == reference_html(annotation)
    assert '<td colspan="2"><b>Expression</b></td>' in first["html"].decode()
    record = json.loads(first["json"])
    assert record["family"] == "table" and record["structure"] == annotation["html"]["structure"]["tokens"]
    assert [c.get("bbox") for c in record["cells"]] == [c.get("bbox") for c in annotation["html"]["cells"]]
    assert record["cells"][0]["text"] == "Gene" and "bbox" not in record["cells"][2]  # the empty corner cell
    assert json.loads(samples["pubtabnet-PMC4219599_004_00"]["json"])["meta"]["split"] == "val"
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("PubTabNet_2.0.0.jsonl:2", "check table"), ("PubTabNet_2.0.0.jsonl:3", "parse json"),
                      ("PubTabNet_2.0.0.jsonl:5", "read image")}
    assert verify_dataset(str(out)).ok
