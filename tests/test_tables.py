"""Synthetic tables: valid structures, PubTabNet-shaped targets (TEDS 1.0, raw-character tokens), cell boxes on
the rendered ink, spans rendered as spans, Chinese bold rendered bold, and `docforge build tables` on real Ray
with bad specs logged."""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from evaluation.cli import evaluate
from evaluation.teds import teds
from pipelines.runner import RunOptions, run_job
from pipelines.tables import TablesJob, table_seed
from pipelines.verify import verify_dataset
from synth.tables import (Cell, TableConfig, TableStructure, TableStyle, cell_tokens, check_structure, generate_table,
                          html_from_tokens, parse_table_html, render_table, structure_tokens, table_html)
from tests.test_ocr_job import samples_of

SEEDS = range(30)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_generated_structures_are_valid_and_their_html_says_exactly_them(lang):
    multi_level = spanning = 0
    for seed in SEEDS:
        table = generate_table(seed, TableConfig(lang=lang))
        check_structure(table)
        html = table_html(table)
        assert parse_table_html(html) == table
        rebuilt = html_from_tokens(structure_tokens(table), [cell_tokens(c) for c in table.cells])
        assert rebuilt == html
        if seed < 10:  # apted is quadratic in the table's size: a few tables suffice
            assert teds(rebuilt, html) == 1.0 and teds(html, table_html(generate_table(seed + 1))) < 1.0
        assert all(not (c.row < table.header_rows < c.row + c.rowspan) for c in table.cells)
        assert all(table.rows_of_cells()), "every row has a cell of its own (no empty <tr>)"
        multi_level += table.header_rows > 1 and any(c.colspan > 1 for c in table.cells if c.row < table.header_rows)
        spanning += any(c.rowspan > 1 for c in table.cells if c.row >= table.header_rows)
    assert multi_level >= 5 and spanning >= 3


def ink_mask(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 160


def test_cell_boxes_contain_their_text_ink():
    for seed in range(8):
        table = generate_table(seed, TableConfig(lang="zh" if seed % 2 else "en"))
        rendered = render_table(table, TableStyle(borders="plain"), dpi=120)
        ink = ink_mask(rendered.png)
        covered = np.zeros_like(ink)
        for cell, box, content in zip(table.cells, rendered.cell_boxes, rendered.content_boxes):
            if not cell.text:
                assert content is None
                continue
            x0, y0, x1, y1 = content
            assert box[0] - 1 <= x0 < x1 <= box[2] + 1 and box[1] - 1 <= y0 < y1 <= box[3] + 1
            inside = ink[int(y0):int(np.ceil(y1)) + 1, int(x0):int(np.ceil(x1)) + 1]
            assert inside.any(), f"seed {seed}: no ink in the box of {cell.text!r}"
            covered[max(int(y0) - 1, 0):int(np.ceil(y1)) + 2, max(int(x0) - 1, 0):int(np.ceil(x1)) + 2] = True
        assert not (ink & ~covered).any(), f"seed {seed}: ink outside every cell's text box"


@pytest.mark.parametrize("font", ["sans-serif", "serif", "monospace"])
def test_bold_chinese_text_renders_bold(font):
    def ink(bold: bool) -> int:
        table = TableStructure(1, 1, 0, (Cell(0, 0, text="营业成本合计 2023年", bold=bold),))
        rendered = render_table(table, TableStyle(font=font, font_size=20), dpi=120)
        mask = ink_mask(rendered.png)
        x0, y0, x1, y1 = (int(v) for v in rendered.content_boxes[0])
        left = x0 + (x1 - x0) * 6 // 10  # the six ideographs, left of the Latin digits
        return int(mask[y0:y1 + 1, x0:left].sum())

    assert ink(True) > 1.2 * ink(False)


def test_generated_chinese_tables_put_italic_only_on_text_that_can_look_italic():
    italic = [c.text for seed in range(300) for c in generate_table(seed, TableConfig(lang="zh")).cells if c.italic]
    assert not [text for text in italic if re.fullmatch(r"[\u4e00-\u9fff]+", text)], "italic ideographs only"
    assert sum(bool(re.search(r"[0-9A-Za-z]", text)) for text in italic) >= 10


def test_chinese_tables_job_names_the_missing_cjk_font_package(tmp_path, monkeypatch):
    monkeypatch.setattr("synth.tables.SYSTEM_FONT_DIRS", (str(tmp_path),))
    with pytest.raises(ValueError, match="NotoSansCJK-Regular.ttc not found .*fonts-noto-cjk"):
        TablesJob(count=1, lang="zh").plan()
    assert TablesJob(count=1, lang="en").plan()


def test_spans_render_as_spans():
    checked = 0
    for seed in range(30):
        table = generate_table(seed)
        rendered = render_table(table, TableStyle(borders="grid"), dpi=100)
        lefts, rights, tops, bottoms = {}, {}, {}, {}
        for cell, box in zip(table.cells, rendered.cell_boxes):
            if cell.colspan == 1:
                lefts.setdefault(cell.col, box[0])
                rights.setdefault(cell.col, box[2])
            if cell.rowspan == 1:
                tops.setdefault(cell.row, box[1])
                bottoms.setdefault(cell.row, box[3])
        for cell, box in zip(table.cells, rendered.cell_boxes):
            last_col, last_row = cell.col + cell.colspan - 1, cell.row + cell.rowspan - 1
            if cell.colspan > 1 and cell.col in lefts and last_col in rights:
                assert box[0] == pytest.approx(lefts[cell.col], abs=2.5)
                assert box[2] == pytest.approx(rights[last_col], abs=2.5)
                checked += 1
            if cell.rowspan > 1 and cell.row in tops and last_row in bottoms:
                assert box[1] == pytest.approx(tops[cell.row], abs=2.5)
                assert box[3] == pytest.approx(bottoms[last_row], abs=2.5)
                checked += 1
    assert checked >= 10


def test_tables_job_writes_verified_samples_that_regenerate_alone(ray_local, tmp_path):
    out = tmp_path / "zh"
    job = TablesJob(count=6, lang="zh", seed=5, tables_per_task=3)
    result = run_job(job, str(out), RunOptions(progress=False))
    assert result.ok and result.stats["samples"] == 6 and result.stats["errors"] == 0
    assert verify_dataset(str(out)).ok
    samples = samples_of(out)
    assert sorted(samples) == [f"table-zh-s5-{i:09d}" for i in range(6)]
    sample = samples["table-zh-s5-000000004"]
    record = json.loads(sample["json"])
    image = Image.open(io.BytesIO(sample["png"]))
    assert record["family"] == "table" and (record["image"]["width"], record["image"]["height"]) == image.size
    cells = record["html"]["cells"]
    rebuilt = html_from_tokens(record["html"]["structure"]["tokens"], [c["tokens"] for c in cells])
    assert rebuilt == sample["html"].decode() and teds(rebuilt, sample["html"].decode()) == 1.0
    assert all("bbox" in c for c in cells if c["tokens"])
    table = generate_table(table_seed(5, 4), job.table_config())
    assert table_html(table) == sample["html"].decode()
    report = evaluate("table", str(out), str(out))
    assert report["metrics"]["teds"] == 1.0 and report["count"] == 6


def test_records_hold_raw_characters_and_key_html_escapes_them(ray_local, tmp_path):
    spec = ('<table><thead><tr><td><b>R&amp;D</b></td><td>p &lt; 0.05</td></tr></thead>'
            '<tbody><tr><td>a &gt; b</td><td>"x" 营业</td></tr></tbody></table>')
    specs = tmp_path / "specs.jsonl"
    specs.write_text(json.dumps({"html": spec}) + "\n")
    out = tmp_path / "raw"
    result = run_job(TablesJob(specs=str(specs)), str(out), RunOptions(progress=False))
    assert result.ok and result.stats["samples"] == 1
    (sample,) = samples_of(out).values()
    record = json.loads(sample["json"])
    tokens = [cell["tokens"] for cell in record["html"]["cells"]]
    assert tokens == [["<b>", "R", "&", "D", "</b>"], list("p < 0.05"), list("a > b"), list('"x" 营业')]  # as PubTabNet
    assert sample["html"].decode() == spec  # KEY.html stays escaped
    assert html_from_tokens(record["html"]["structure"]["tokens"], tokens) == spec


def test_specs_render_as_given_and_bad_specs_are_logged(ray_local, tmp_path):
    good = ('<table><thead><tr><td colspan="2"><b>Total</b></td></tr></thead>'
            "<tbody><tr><td>1</td><td>2</td></tr></tbody></table>")
    oversized = "<table><tr>" + "<td>x</td>" * 300 + "</tr></table>"
    crossing = '<table><thead><tr><td rowspan="2">a</td></tr></thead><tbody><tr></tr></tbody></table>'
    specs = tmp_path / "specs.jsonl"
    specs.write_text("\n".join([json.dumps({"html": good}), "{not json", json.dumps({"html": oversized}),
                                json.dumps({"html": crossing}), json.dumps({"table": good})]) + "\n")
    out = tmp_path / "specs"
    result = run_job(TablesJob(specs=str(specs), tables_per_task=2), str(out), RunOptions(progress=False))
    assert result.ok and result.stats["samples"] == 1 and result.stats["errors"] == 4
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    by_line = {e["input"].rsplit(":", 1)[1]: e["message"] for e in errors}
    assert set(by_line) == {"2", "3", "4", "5"}
    assert "not JSON" in by_line["2"] and "1 x 300" in by_line["3"]
    assert "header/body" in by_line["4"] and "'html'" in by_line["5"]
    (sample,) = samples_of(out).values()
    assert sample["html"].decode() == good
