"""AnyWord-3M ingest (AnyText's per-subset data.json / data_v1.1.json + imgs/): one `ocr` sample per image with
its legible lines in reading order and their boxes, readable by `docforge build positional`; invalid and
illegible lines left out; bad files, entries, polygons and missing images are error-log lines."""

import io
import json
import random

from PIL import Image

from mixtures.tasks import render_conversation
from pipelines.ingest.anyword import AnywordIngest, reading_order
from pipelines.positional import PositionalJob
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

OPTIONS = RunOptions(progress=False)
AUTHORS_ROOT = "/data/vdb/yuxiang.tyx/AIGC/data"  # where the shipped files' data_root points: not this machine


def photo(width: int, height: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180 + shade, 160)).save(out, "JPEG", quality=80)
    return out.getvalue()


def rect(x1, y1, x2, y2) -> list[list[int]]:
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def line(polygon, text, language="Latin", valid=True, **extra) -> dict:
    return {"polygon": polygon, "text": text, "language": language, "valid": valid, **extra}


SHOP_FRONT = [  # listed out of reading order, with a curved polygon (ArT), a tilted word, an invalid line and "###"
    line(rect(30, 150, 250, 180), "OPEN 24 HOURS", pos=7),
    line([[200, 42], [300, 40], [302, 70], [201, 72]], "COFFEE", pos=2),
    line([[20, 40], [180, 38], [181, 75], [21, 77]], "STARBUCKS", pos=0),
    line(rect(10, 200, 60, 220), "Tel 555", valid=False),  # LAION/Wukong: too small or blurry to trust
    line(rect(100, 200, 140, 220), "###"),
    line([[40, 100], [80, 95], [120, 95], [160, 100], [160, 125], [120, 120], [80, 120], [40, 125]], " Est.  1971 "),
]
FRUIT_STALL = [  # Wukong-style Chinese: a tall vertical sign beside three horizontal lines
    line(rect(60, 250, 200, 280), "每斤十元", "Chinese"),
    line(rect(10, 20, 40, 200), "营业中", "Chinese"),
    line(rect(60, 30, 220, 60), "新鲜水果", "Chinese"),
    line(rect(60, 95, 220, 125), "欢迎光临", "Chinese"),
]


def write_subset(folder, name, data_root, entries, images):
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    for image, (size, shade) in images.items():
        (folder / "imgs" / image).write_bytes(photo(*size, shade))
    content = {"data_root": data_root, "data_list": entries}
    (folder / name).write_text(json.dumps(content, ensure_ascii=False, indent=4), encoding="utf-8")


def make_anyword(root, wukong_images):
    art = root / "ocr_data" / "Art"
    write_subset(art, "data.json", f"{AUTHORS_ROOT}/ocr_data/Art/imgs", [
        {"img_name": "gt_0.jpg", "annotations": SHOP_FRONT},
        {"img_name": "gt_1.jpg", "annotations": [line(rect(5, 5, 50, 20), "###", valid=False)]},
        {"img_name": "gt_2.jpg", "annotations": [line(rect(5, 5, 50, 20), "EXIT")]},
        {"img_name": "gt_3.jpg", "annotations": [{"polygon": rect(5, 5, 50, 20), "language": "Latin", "valid": True}]},
        {"img_name": "gt_4.jpg", "annotations": [line([[10, 10]], "TAXI")]},
        {"caption": "an entry without its image name"},
        {"img_name": "gt_6.jpg", "annotations": [line(rect(300, 10, 400, 30), "BUS")]},
        {"img_name": "gt_7.jpg", "annotations": [line([], "POLICE"), line(rect(20, 20, 120, 60), "STOP")]},
        {"img_name": "gt_8.jpg", "annotations": [line(rect(250, 200, 326, 246), "PARK")]},  # 6 px past the corner
    ], {f"gt_{k}.jpg": ((320, 240), k) for k in (0, 1, 3, 4, 6, 7, 8)})
    write_subset(root / "laion", "data_v1.1.json", f"{AUTHORS_ROOT}/laion_word/imgs", [
        {"img_name": "000051234.jpg", "caption": "a poster of a summer sale in a shop window", "wm_score": 0.02,
         "annotations": [line(rect(40, 200, 200, 240), "50% OFF", pos=7), line(rect(30, 40, 280, 100), "SUMMER SALE",
                                                                                pos=1)]},
    ], {"000051234.jpg": ((320, 320), 9)})
    wukong = root / "wukong_1of5"
    (wukong_images / "0007.jpg").parent.mkdir(parents=True)
    (wukong_images / "0007.jpg").write_bytes(photo(240, 320, 20))
    entry = {"img_name": "0007.jpg", "caption": "水果摊", "wm_score": 0.7, "annotations": FRUIT_STALL}
    write_subset(wukong, "data_v1.1.json", str(wukong_images), [entry], {})  # data_root set as AnyText's README says
    recoloured = {**entry, "annotations": [{**a, "color": [200, 30, 30]} for a in FRUIT_STALL]}
    write_subset(wukong, "data_v1.2b.json", str(wukong_images), [recoloured], {})  # AnyText2's re-annotation
    (root / "ocr_data" / "ReCTS").mkdir()
    (root / "ocr_data" / "ReCTS" / "data.json").write_text('{"data_root": "/data", "data_list": [{"img_name": ')
    (root / "ocr_data" / "meta.json").write_text(json.dumps({"subsets": ["Art", "ReCTS"]}))


def test_anyword_subsets_become_ocr_samples_in_reading_order_with_word_boxes(ray_local, tmp_path):
    root = tmp_path / "AnyWord-3M"
    make_anyword(root, tmp_path / "my_wukong_imgs")
    out = tmp_path / "out"
    assert run_job(AnywordIngest([str(root)], None, "anytext-3m", items_per_task=3), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert {key: s["txt"].decode() for key, s in samples.items()} == {
        "anytext-3m-Art_gt_0": "STARBUCKS COFFEE\nEst. 1971\nOPEN 24 HOURS",
        "anytext-3m-Art_gt_7": "STOP",
        "anytext-3m-Art_gt_8": "PARK",
        "anytext-3m-laion_000051234": "SUMMER SALE\n50% OFF",
        "anytext-3m-wukong_1of5_0007": "新鲜水果\n营业中 欢迎光临\n每斤十元",
    }
    records = {key: json.loads(s["json"]) for key, s in samples.items()}
    assert {key: r["lang"] for key, r in records.items()} == {
        "anytext-3m-Art_gt_0": "en", "anytext-3m-Art_gt_7": "en", "anytext-3m-Art_gt_8": "en",
        "anytext-3m-laion_000051234": "en",
        "anytext-3m-wukong_1of5_0007": "zh"}
    shop = records["anytext-3m-Art_gt_0"]
    assert [(w["text"], w["line"]) for w in shop["words"]] == [("STARBUCKS", 0), ("COFFEE", 0), ("Est. 1971", 1),
                                                               ("OPEN 24 HOURS", 2)]
    assert shop["words"][2]["quad"] == SHOP_FRONT[5]["polygon"] and shop["words"][2]["box"] == [40, 95, 160, 125]
    assert shop["lines"][0] == {"text": "STARBUCKS COFFEE", "words": [0, 1], "box": [20, 38, 302, 77]}
    assert shop["meta"] == {"img_name": "gt_0.jpg", "left_out": 2}
    assert shop["family"] == "ocr" and shop["provenance"]["index"] == 0
    park = records["anytext-3m-Art_gt_8"]  # a few pixels past the edge: clipped to it, not the image lost
    assert park["words"][0]["quad"] == rect(250, 200, 320, 240) and park["lines"][0]["box"] == [250, 200, 320, 240]
    fruit = records["anytext-3m-wukong_1of5_0007"]
    assert fruit["provenance"]["image_file"] == str(tmp_path / "my_wukong_imgs" / "0007.jpg")
    assert fruit["provenance"]["input"].endswith("wukong_1of5/data_v1.1.json") and "color" not in fruit["words"][0]
    assert fruit["meta"]["wm_score"] == 0.7 and fruit["words"][0]["language"] == "Chinese"
    errors = {(e["input"].removeprefix(str(root) + "/"), e["step"]): e["message"] for e in read_errors(out)}
    assert set(errors) == {
        ("ocr_data/Art/data.json#data_list[1]", "read annotations"),
        ("ocr_data/Art/data.json#data_list[2]", "read image"),
        ("ocr_data/Art/data.json#data_list[3]", "read annotations"),
        ("ocr_data/Art/data.json#data_list[4]", "check box"),
        ("ocr_data/Art/data.json#data_list[5]", "read annotations"),
        ("ocr_data/Art/data.json#data_list[6]", "check box"),
        ("ocr_data/ReCTS/data.json", "parse annotations"),
        ("ocr_data/meta.json", "read annotations"),
    }
    assert errors[("ocr_data/Art/data.json#data_list[2]", "read image")].endswith("ocr_data/Art/imgs/gt_2.jpg")
    assert "no legible text" in errors[("ocr_data/Art/data.json#data_list[1]", "read annotations")]
    assert "annotations[0] has no 'text'" in errors[("ocr_data/Art/data.json#data_list[3]", "read annotations")]
    assert verify_dataset(str(out)).ok
    for sample in samples.values():
        assert render_conversation("ocr", sample, random.Random(0))[1]["content"] == sample["txt"].decode()
        assert render_conversation("positional", sample, random.Random(1))[1]["content"]

    positional = tmp_path / "positional"
    assert run_job(PositionalJob([str(out)], "anyword-positional", per_page=2), str(positional), OPTIONS).ok
    assert read_errors(positional) == []
    made = read_dataset(positional)
    assert {key.rsplit("-", 1)[0] for key in made} == {f"anyword-positional-{key}" for key in samples}
    for sample in made.values():
        render_conversation("positional", sample, random.Random(2))


def test_a_row_is_the_boxes_level_with_its_first_not_a_chain_down_a_slope():
    top, beside, lower = [0, 0, 50, 20], [60, 8, 110, 28], [120, 16, 170, 36]  # each level with the one before
    sign, level_with_sign_top = [0, 0, 30, 200], [40, 10, 140, 40]
    assert reading_order([lower, beside, top]) == [[2, 1], [0]]
    assert reading_order([level_with_sign_top, sign]) == [[0], [1]]


def test_lang_option_decides_for_every_sample(tmp_path):
    root = tmp_path / "AnyWord-3M"
    make_anyword(root, tmp_path / "my_wukong_imgs")
    job = AnywordIngest([str(root / "wukong_1of5" / "data_v1.1.json")], None, "anytext-3m", lang="en")
    sample = next(job.process(job.plan().tasks[0].items[0], 0))
    assert sample["json"]["lang"] == "en" and sample["txt"].startswith("新鲜水果")
