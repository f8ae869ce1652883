"""Key-information ingest (FUNSD, XFUND, SROIE, WildReceipt) on the bundled format samples, with damaged
copies: links and fields survive, boxes stay in pixels, every bad record or file is an error-log line."""

import json
import random
import shutil
from pathlib import Path

import pytest

from mixtures.tasks import render_conversation
from pipelines.cli import build_parser
from pipelines.ingest import make_ingest_job
from pipelines.ingest.funsd import FunsdIngest, XfundIngest, question_answer_fields
from pipelines.ingest.sroie import SroieIngest
from pipelines.ingest.wildreceipt import WildreceiptIngest
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "datasets"
OPTIONS = RunOptions(progress=False)


def error_steps(out: Path, root: Path) -> set[tuple[str, str]]:
    """(input below `root`'s parent folder, step) of each error-log line."""
    return {(e["input"].split(f"{root}/", 1)[-1], e["step"]) for e in read_errors(out)}


def test_question_answer_fields_follow_links_either_way_and_collect_repeats():
    entities = [{"id": 1, "label": "question", "text": "Date:"}, {"id": 2, "label": "answer", "text": "May 1"},
                {"id": 3, "label": "answer", "text": "May 2"}, {"id": 4, "label": "header", "text": "FORM"},
                {"id": 5, "label": "question", "text": "Name:"}, {"id": 6, "label": "answer", "text": " Ann "}]
    links = [[1, 2], [3, 1], [4, 1], [5, 6]]
    assert question_answer_fields(entities, links) == {"Date:": ["May 1", "May 2"], "Name:": "Ann"}


def test_funsd_links_survive_and_bad_forms_are_logged(ray_local, tmp_path):
    root = tmp_path / "funsd"
    shutil.copytree(SAMPLES / "funsd" / "training_data", root)
    form = json.loads((root / "annotations" / "0001118259.json").read_text())
    (root / "annotations" / "0000000001.json").write_text(json.dumps({"form": form["form"][:3]}))  # no image
    form["form"][1]["linking"].append([1, 77])  # a link to an entity the form does not have
    (root / "annotations" / "0001118259.json").write_text(json.dumps(form))
    out = tmp_path / "out"
    assert run_job(FunsdIngest([str(root / "annotations")], str(root / "images"), "funsd"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["funsd-0000971160"]
    sample = samples["funsd-0000971160"]
    record = json.loads(sample["json"])
    original = json.loads((SAMPLES / "funsd" / "training_data" / "annotations" / "0000971160.json").read_text())["form"]
    unique_links = []
    for entity in original:
        unique_links += [link for link in entity["linking"] if link not in unique_links]
    assert record["links"] == unique_links and len(unique_links) == 4
    assert [(e["id"], e["label"], e["text"], e["bbox"]) for e in record["entities"]] == \
        [(e["id"], e["label"], e["text"], e["box"]) for e in original]
    assert record["entities"][1]["words"] == [{"text": w["text"], "bbox": w["box"]} for w in original[1]["words"]]
    assert record["fields"] == {"TO:": "Dr. Helen Park", "FROM:": "R. Osei", "DATE:": "March 4, 1998", "PAGES:": "3"}
    assert "SUBJECT:" not in record["fields"]  # a question with no linked answer is no field
    answer = json.loads(render_conversation("kie", sample, random.Random(1))[1]["content"])
    assert answer == record["fields"]
    assert error_steps(out, root / "annotations") == {("0001118259.json#0001118259", "check form"),
                                                      ("0000000001.json#0000000001", "read image")}
    assert verify_dataset(str(out)).ok


def test_xfund_takes_its_language_and_checks_the_image_size(ray_local, tmp_path):
    root = tmp_path / "xfund"
    shutil.copytree(SAMPLES / "xfund", root)
    data = json.loads((root / "zh.train.json").read_text())
    data["documents"][1]["img"]["width"] = 999
    data["documents"].append({"id": "zh_train_9"})
    (root / "zh.train.json").write_text(json.dumps(data, ensure_ascii=False))
    out = tmp_path / "out"
    assert run_job(XfundIngest([str(root / "zh.train.json")], str(root / "zh.train"), "xfund"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    record = json.loads(samples["xfund-zh_train_0"]["json"])
    assert sorted(samples) == ["xfund-zh_train_0"] and record["lang"] == "zh"
    assert record["fields"] == {"姓名：": "王小明", "部门：": "财务部", "金额：": "1280元", "日期：": "2025年3月2日"}
    assert record["links"] == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert error_steps(out, root) == {("zh.train.json#documents[2]", "check xfund"),
                                      ("zh.train.json#zh_train_1", "check image")}


def test_sroie_receipts_keep_fields_and_four_point_lines(ray_local, tmp_path):
    root = tmp_path / "sroie"
    shutil.copytree(SAMPLES / "sroie", root)
    (root / "train" / "entities" / "X51000000001.txt").unlink()
    shutil.copy(root / "train" / "box" / "X51000000000.txt", root / "train" / "box" / "X51000000002.txt")
    shutil.copy(root / "train" / "img" / "X51000000000.jpg", root / "train" / "img" / "X51000000002.jpg")
    shutil.copy(root / "train" / "entities" / "X51000000000.txt", root / "train" / "entities" / "X51000000002.txt")
    with (root / "train" / "box" / "X51000000002.txt").open("a") as f:
        f.write("10,10,20,10,20\n")
    out = tmp_path / "out"
    assert run_job(SroieIngest([str(root / "train")], None, "sroie"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["sroie-X51000000000"]
    record = json.loads(samples["sroie-X51000000000"]["json"])
    assert record["fields"] == json.loads((SAMPLES / "sroie" / "train" / "entities" / "X51000000000.txt").read_text())
    rows = (SAMPLES / "sroie" / "train" / "box" / "X51000000000.txt").read_text().splitlines()
    assert [line["text"] for line in record["lines"]] == [row.split(",", 8)[8] for row in rows]
    assert record["lines"][1]["text"] == "12 JALAN ELM, 50450 KUALA LUMPUR"  # commas inside the text survive
    first = [int(v) for v in rows[0].split(",")[:8]]
    assert record["lines"][0]["quad"] == [first[0:2], first[2:4], first[4:6], first[6:8]]
    assert record["lines"][0]["bbox"] == [first[0], first[1], first[4], first[5]]
    assert error_steps(out, root / "train") == {("entities/X51000000001.txt", "read entities file"),
                                                ("box/X51000000002.txt:7", "check boxes")}


def test_wildreceipt_fields_come_from_value_classes(ray_local, tmp_path):
    root = tmp_path / "wildreceipt"
    shutil.copytree(SAMPLES / "wildreceipt", root)
    lines = (root / "train.txt").read_text().splitlines()
    second = json.loads(lines[1])
    second["annotations"][0]["box"] = [10, 10, 900, 10, 900, 30, 10, 30]  # wider than the receipt
    (root / "train.txt").write_text("\n".join([lines[0], json.dumps(second), "{not json"]) + "\n")
    out = tmp_path / "out"
    assert run_job(WildreceiptIngest([str(root)], None, "wildreceipt"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["wildreceipt-image_files_Image_0_0_receipt_0"]
    record = json.loads(samples["wildreceipt-image_files_Image_0_0_receipt_0"]["json"])
    assert record["fields"] == {"Store_name": "HILLTOP BAKERY", "Date": "2021-06-01", "Prod_item": ["Rye loaf", "Scone"],
                                "Prod_price": ["4.20", "2.10"], "Total": "6.30"}
    assert [line["label"] for line in record["lines"]][:3] == ["Store_name_value", "Others", "Date_key"]
    assert error_steps(out, root) == {("train.txt:3", "parse json"),
                                ("train.txt#image_files/Image_1/0/receipt_1", "check box")}


def test_sroie_box_and_key_files_in_legacy_encodings_are_read_and_rows_end_only_at_newline(ray_local, tmp_path):
    root = tmp_path / "sroie"
    shutil.copytree(SAMPLES / "sroie", root)
    train = root / "train"
    rows = (train / "box" / "X51000000000.txt").read_text().splitlines()
    # Latin-1 (0x81 is no Windows-1252 character): 0x85 is then U+0085, which str.splitlines() would cut a row at
    latin1_rows = rows[:1] + ["16,60,160,60,160,70,16,70,CAF\xc9 \x81\x85 NO.7"] + rows[1:]
    (train / "box" / "X51000000000.txt").write_bytes("\r\n".join(latin1_rows).encode("latin-1") + b"\r\n")
    key = json.loads((train / "entities" / "X51000000001.txt").read_text())
    key["company"] = "CAFÉ “ROSE” SDN BHD"  # Windows-1252: 0xC9, 0x93, 0x94
    (train / "entities" / "X51000000001.txt").write_bytes(json.dumps(key, ensure_ascii=False).encode("cp1252"))
    out = tmp_path / "out"
    assert run_job(SroieIngest([str(train)], None, "sroie"), str(out), OPTIONS).ok
    assert read_errors(out) == []
    samples = read_dataset(out)
    assert sorted(samples) == ["sroie-X51000000000", "sroie-X51000000001"]
    latin1 = json.loads(samples["sroie-X51000000000"]["json"])
    assert [line["text"] for line in latin1["lines"]] == [row.split(",", 8)[8] for row in rows[:1]] + \
        ["CAF\xc9 \x81\x85 NO.7"] + [row.split(",", 8)[8] for row in rows[1:]]
    assert latin1["provenance"]["encodings"] == {"box": "latin-1", "entities": "utf-8"}
    cp1252 = json.loads(samples["sroie-X51000000001"]["json"])
    assert cp1252["fields"]["company"] == "CAFÉ “ROSE” SDN BHD"
    assert cp1252["provenance"]["encodings"] == {"box": "utf-8", "entities": "cp1252"}


def test_sroie_official_layout_reads_box_files_beside_images_and_key_files_from_entities(ray_local, tmp_path):
    task1, task2 = tmp_path / "0325updated.task1train(626p)", tmp_path / "0325updated.task2train(626p)"
    task1.mkdir()
    task2.mkdir()
    kaggle = SAMPLES / "sroie" / "train"
    for stem, image_name in (("X51000000000", "X51000000000.jpg"), ("X51000000001", "X51000000001.JPG")):
        shutil.copy(kaggle / "box" / f"{stem}.txt", task1 / f"{stem}.txt")
        shutil.copy(kaggle / "img" / f"{stem}.jpg", task1 / image_name)
        shutil.copy(kaggle / "entities" / f"{stem}.txt", task2 / f"{stem}.txt")
        shutil.copy(kaggle / "img" / f"{stem}.jpg", task2 / image_name)
    shutil.copy(kaggle / "box" / "X51000000000.txt", task1 / "X51000000002.txt")  # no key file, no image
    with pytest.raises(FileNotFoundError, match=r"task1train\(626p\): no box/\*\.txt files; .* needs --entities"):
        SroieIngest([str(task1)], None, "sroie").plan()
    out = tmp_path / "out"
    args = ["build", "ingest", "--format", "sroie", "--input", str(task1), "--entities", str(task2),
            "--source", "sroie", "--output", str(out)]
    job = make_ingest_job(build_parser().parse_args(args))
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["sroie-X51000000000", "sroie-X51000000001"]
    for stem in ("X51000000000", "X51000000001"):
        record = json.loads(samples[f"sroie-{stem}"]["json"])
        assert record["fields"] == json.loads((kaggle / "entities" / f"{stem}.txt").read_text())
        rows = (kaggle / "box" / f"{stem}.txt").read_text().splitlines()
        assert [line["text"] for line in record["lines"]] == [row.split(",", 8)[8] for row in rows]
        assert record["provenance"]["entities_file"].endswith(f"task2train(626p)/{stem}.txt")
    assert error_steps(out, tmp_path) == {("0325updated.task2train(626p)/X51000000002.txt", "read entities file")}
    assert verify_dataset(str(out)).ok


def test_wildreceipt_lines_end_only_at_newline_not_at_unicode_separators(ray_local, tmp_path):
    root = tmp_path / "wildreceipt"
    shutil.copytree(SAMPLES / "wildreceipt", root)
    lines = (root / "train.txt").read_text().splitlines()
    first = json.loads(lines[0])
    first["annotations"][0]["text"] = "HILLTOP\u2028BAKERY\x85"
    (root / "train.txt").write_text("\n".join([json.dumps(first, ensure_ascii=False)] + lines[1:]) + "\n")
    out = tmp_path / "out"
    assert run_job(WildreceiptIngest([str(root)], None, "wildreceipt"), str(out), OPTIONS).ok
    assert read_errors(out) == []
    samples = read_dataset(out)
    assert sorted(samples) == ["wildreceipt-image_files_Image_0_0_receipt_0",
                               "wildreceipt-image_files_Image_1_0_receipt_1"]
    record = json.loads(samples["wildreceipt-image_files_Image_0_0_receipt_0"]["json"])
    assert record["lines"][0]["text"] == "HILLTOP\u2028BAKERY\x85"
    assert record["fields"]["Store_name"] == "HILLTOP\u2028BAKERY"
