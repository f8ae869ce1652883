"""Formula ingest: im2latex-100k (both split-list forms, formulas by line index) and CROHME (InkML strokes
rendered to an image, the truth LaTeX as target); bad rows, indexes, images and InkML are error-log lines."""

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pipelines.ingest.crohme import TARGET_HEIGHT, CrohmeIngest
from pipelines.ingest.im2latex import Im2latexIngest, split_entry
from synth.formulas import normalize_latex
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "datasets"
OPTIONS = RunOptions(progress=False)


def test_split_lists_in_both_forms():
    assert split_entry("17 60ee748793 basic") == ("60ee748793.png", 17, "basic")
    assert split_entry("60ee748793.png 17") == ("60ee748793.png", 17, None)
    with pytest.raises(ValueError, match="IDX IMAGE_NAME RENDER_TYPE"):
        split_entry("60ee748793 basic")


def test_im2latex_reads_formulas_by_index_and_logs_bad_rows(ray_local, tmp_path):
    root = tmp_path / "im2latex"
    shutil.copytree(SAMPLES / "im2latex", root)
    formulas = (root / "im2latex_formulas.lst").read_text().split("\n")
    with (root / "im2latex_formulas.lst").open("ab") as f:
        f.write("\\text { caf\xe9 }\n".encode("latin-1"))  # formula 4, not UTF-8
    shutil.copy(root / "formula_images" / "f9abd2d9f2.png", root / "formula_images" / "bbbbbbbbbb.png")
    with (root / "im2latex_train.lst").open("a") as f:
        f.write("99 aaaaaaaaaa basic\nnot a row\n3 0000000000 basic\n4 bbbbbbbbbb basic\n")
    out = tmp_path / "out"
    job = Im2latexIngest(str(root / "im2latex_formulas.lst"), [str(root)], str(root / "formula_images"), "im2latex")
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    rows = [line.split() for line in (SAMPLES / "im2latex" / "im2latex_train.lst").read_text().splitlines()]
    rows += [[line.split()[1], line.split()[0].removesuffix(".png")]
             for line in (SAMPLES / "im2latex" / "im2latex_validate_filter.lst").read_text().splitlines()]
    assert sorted(samples) == sorted([f"im2latex-{row[1]}" for row in rows] + ["im2latex-bbbbbbbbbb"])
    latin1 = json.loads(samples["im2latex-bbbbbbbbbb"]["json"])
    assert latin1["latex_raw"] == "\\text { café }" and latin1["meta"]["encoding"] == "latin-1"
    assert latin1["latex"] == "\\text { café }"  # text-mode words whole, as `docforge build formulas` writes them
    for row in rows:
        sample = samples[f"im2latex-{row[1]}"]
        assert sample["tex"].decode() == normalize_latex(formulas[int(row[0])]) == json.loads(sample["json"])["latex"]
        assert json.loads(sample["json"])["latex_raw"] == formulas[int(row[0])]
        record = json.loads(sample["json"])
        assert record["family"] == "formula" and record["meta"]["formula_index"] == int(row[0])
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("im2latex_train.lst:4", "read formula"), ("im2latex_train.lst:5", "read split list"),
                      ("im2latex_train.lst:6", "read image")}
    assert verify_dataset(str(out)).ok


def test_crohme_strokes_render_to_an_image_with_symbol_boxes(ray_local, tmp_path):
    root = tmp_path / "crohme"
    shutil.copytree(SAMPLES / "crohme", root)
    (root / "broken.inkml").write_text("<ink xmlns='http://www.w3.org/2003/InkML'><trace id='0'>1 2, 3</trace>")
    (root / "no-truth.inkml").write_text("<ink xmlns='http://www.w3.org/2003/InkML'><trace id='0'>1 2, 3 4</trace></ink>")
    (root / "bad-point.inkml").write_text("<ink xmlns='http://www.w3.org/2003/InkML'><annotation type='truth'>$x$"
                                          "</annotation><trace id='0'>1 2, 3 q</trace></ink>")
    out = tmp_path / "out"
    assert run_job(CrohmeIngest([str(root)], None, "crohme"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["crohme-formulaire001-equation001", "crohme-formulaire001-equation002"]
    sample = samples["crohme-formulaire001-equation001"]
    assert sample["tex"] == b"x ^ { 2 } + 1" and json.loads(sample["json"])["latex_raw"] == "x^{2}+1"
    record = json.loads(sample["json"])
    image = Image.open(io.BytesIO(sample["png"])).convert("L")
    assert image.height == TARGET_HEIGHT + 2 * 12 and image.getextrema() == (0, 255)
    assert [s["label"] for s in record["symbols"]] == ["x", "2", "+", "1"]
    for symbol in record["symbols"]:  # each symbol's box holds its ink
        assert image.crop(tuple(round(v) for v in symbol["bbox"])).getextrema()[0] < 100
    two, x = record["symbols"][1]["bbox"], record["symbols"][0]["bbox"]
    assert two[3] < (x[1] + x[3]) / 2  # the superscript sits above the middle of the x
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"], e["message"][:30]) for e in read_errors(out)}
    assert {(name, step) for name, step, _ in errors} == {("broken.inkml#broken", "parse inkml"),
                                                          ("no-truth.inkml#no-truth", "parse inkml"),
                                                          ("bad-point.inkml#bad-point", "parse inkml")}
    assert verify_dataset(str(out)).ok


def test_cli_builds_each_stage3_format_and_im2latex_needs_its_formulas_file():
    from pipelines.cli import build_parser
    from pipelines.ingest import BUILDERS, make_ingest_job

    parser = build_parser()
    for name in set(BUILDERS) - {"img2dataset", "llava", "im2latex"}:
        job = make_ingest_job(parser.parse_args(["build", "ingest", "--format", name, "--input", "in.json",
                                                 "--output", "out"]))
        assert job.name == f"ingest-{name}" and job.config()["format"] == name and job.config()["source"] == "in"
    for given, source in (("DocLayNet/COCO/train.json", "doclaynet-train"), ("DocLayNet/COCO/val.json", "doclaynet-val"),
                          ("dln/", "dln")):  # a split's name alone would name every dataset "train"
        job = make_ingest_job(parser.parse_args(["build", "ingest", "--format", "doclaynet", "--input", given,
                                                 "--output", "out"]))
        assert job.config()["source"] == source
    args = ["build", "ingest", "--format", "im2latex", "--input", "train.lst", "--output", "out"]
    with pytest.raises(ValueError, match="needs --formulas"):
        make_ingest_job(parser.parse_args(args))
    job = make_ingest_job(parser.parse_args(args + ["--formulas", "f.lst", "--images", "imgs"]))
    assert job.config()["formulas"].endswith("/f.lst") and job.config()["images"].endswith("/imgs")


def test_im2latex_stray_carriage_return_inside_a_formula_becomes_a_space(ray_local, tmp_path):
    root = tmp_path / "im2latex"
    shutil.copytree(SAMPLES / "im2latex", root)
    formulas = (root / "im2latex_formulas.lst").read_bytes().split(b"\n")[:-1]
    with (root / "im2latex_formulas.lst").open("ab") as f:
        f.write(b"x ^ { 2 } \r+ 1\r\n")  # formula len(formulas): a bare "\r" inside, and a CRLF ending
    shutil.copy(root / "formula_images" / "f9abd2d9f2.png", root / "formula_images" / "cccccccccc.png")
    (root / "im2latex_train.lst").write_text(f"{len(formulas)} cccccccccc basic\n")
    (root / "im2latex_validate_filter.lst").unlink()
    out = tmp_path / "out"
    job = Im2latexIngest(str(root / "im2latex_formulas.lst"), [str(root)], str(root / "formula_images"), "im2latex")
    assert run_job(job, str(out), OPTIONS).ok
    sample = read_dataset(out)["im2latex-cccccccccc"]
    assert sample["tex"].decode() == "x ^ { 2 } + 1" and json.loads(sample["json"])["latex_raw"] == "x ^ { 2 }  + 1"
    assert json.loads(sample["json"])["latex"] == "x ^ { 2 } + 1"
