"""Donut-format OCR ingest (SynthDoG's output folder, the Hub's synthdog Parquet files): one `ocr` sample
per page with `KEY.txt` = gt_parse.text_sequence; bad lines, rows, ground truths and images are error-log lines."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipelines.ingest.donut import DonutIngest
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

OPTIONS = RunOptions(progress=False)
TEXTS = ["Lines break only between words.", "中文按字断行 and 3.11", "A page begins as a blank sheet.",
         "The same seed always gives the same page.", "阅读一份文件很少是从头到尾的。"]


def page(k: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120 + k, 90), (240, 235, 225 - k)).save(out, "JPEG", quality=80)
    return out.getvalue()


def ground_truth(text: str) -> str:
    """As SynthDoG's template writes it (`format_metadata`)."""
    return json.dumps({"gt_parse": {"text_sequence": text}}, ensure_ascii=False)


def make_synthdog_folder(root):
    for split, indexes in (("train", [0, 1, 2]), ("validation", [3])):
        (root / split).mkdir(parents=True)
        lines = []
        for k in indexes:
            (root / split / f"image_{k}.jpg").write_bytes(page(k))
            lines.append(json.dumps({"file_name": f"image_{k}.jpg", "ground_truth": ground_truth(TEXTS[k])},
                                    ensure_ascii=False))
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "train" / "image_9.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "train" / "image_7.jpg").write_bytes(page(7))
    with (root / "train" / "metadata.jsonl").open("a", encoding="utf-8") as f:
        f.write("{not json\n")
        f.write(json.dumps({"file_name": "image_5.jpg", "ground_truth": ground_truth("no such image")}) + "\n")
        f.write(json.dumps({"file_name": "image_9.jpg", "ground_truth": ground_truth("broken image")}) + "\n")
        f.write(json.dumps({"file_name": "image_7.jpg", "ground_truth": '{"gt_parse": {"menu": []}}'}) + "\n")


def make_hub_parquet(path):
    """The Hub's layout of synthdog-en/zh: `image` {bytes, path} and `ground_truth`, several row groups."""
    rows = [{"image": {"bytes": page(10 + k), "path": None}, "ground_truth": ground_truth(text)}
            for k, text in enumerate(TEXTS)]
    rows[1]["image"]["bytes"] = b"GIF89a truncated"
    rows[3]["ground_truth"] = "not json"
    rows[4]["image"] = {"bytes": None, "path": "pages/page-4.jpg"}  # an export that keeps images as files
    (path.parent / "pages").mkdir()
    (path.parent / "pages" / "page-4.jpg").write_bytes(page(14))
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)


def test_synthdog_folders_and_hub_parquet_files_become_ocr_samples(ray_local, tmp_path):
    make_synthdog_folder(tmp_path / "synthdog")
    data = tmp_path / "hub" / "data"
    data.mkdir(parents=True)
    make_hub_parquet(data / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"image": [b"x"], "text": ["no ground truth column"]}), data / "other.parquet")
    out = tmp_path / "out"
    job = DonutIngest([str(tmp_path / "synthdog"), str(tmp_path / "hub")], None, "synthdog-zh", lang="zh",
                      items_per_task=2)
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    folder = {f"synthdog-zh-train_image_{k}": TEXTS[k] for k in (0, 1, 2)} | {"synthdog-zh-validation_image_3": TEXTS[3]}
    hub = {f"synthdog-zh-train-00000-of-00001_{row}": TEXTS[row] for row in (0, 2, 4)}
    assert {key: sample["txt"].decode() for key, sample in samples.items()} == folder | hub
    for key, sample in samples.items():
        record = json.loads(sample["json"])
        assert record["family"] == "ocr" and record["lang"] == "zh" and record["text"] == sample["txt"].decode()
        assert Image.open(io.BytesIO(sample["jpg"])).size == (record["image"]["width"], record["image"]["height"])
    assert json.loads(samples["synthdog-zh-train-00000-of-00001_4"]["json"])["meta"]["row"] == 4
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("metadata.jsonl:4", "read metadata"), ("metadata.jsonl:5", "read image"),
                      ("metadata.jsonl:6", "decode image"), ("metadata.jsonl:7", "read ground truth"),
                      ("train-00000-of-00001.parquet#row1", "decode image"),
                      ("train-00000-of-00001.parquet#row3", "read ground truth"), ("other.parquet", "read parquet")}
    assert verify_dataset(str(out)).ok


def test_metadata_lines_end_only_at_newline_not_at_unicode_separators(ray_local, tmp_path):
    """A Donut-format set written with ensure_ascii=False may hold U+2028, U+0085 ... raw inside a line."""
    split = tmp_path / "donut" / "train"
    split.mkdir(parents=True)
    texts = ["para one\u2028para two", "left\x85right\u2029end\x1d"]
    lines = []
    for k, text in enumerate(texts):
        (split / f"image_{k}.jpg").write_bytes(page(k))
        entry = {"file_name": f"image_{k}.jpg", "ground_truth": ground_truth(text)}
        lines.append(json.dumps(entry, ensure_ascii=False))
    (split / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run_job(DonutIngest([str(tmp_path / "donut")], None, "donut"), str(out), OPTIONS).ok
    assert read_errors(out) == []
    samples = read_dataset(out)
    assert {key: sample["txt"].decode() for key, sample in samples.items()} == \
        {"donut-train_image_0": texts[0], "donut-train_image_1": texts[1]}
    assert json.loads(samples["donut-train_image_1"]["json"])["meta"]["line"] == 2


def test_a_set_mixing_languages_gets_each_samples_own_without_lang(ray_local, tmp_path):
    """AnyWord-3M mixes English and Chinese pages and says neither per sample: without --lang each record's
    `lang` is its text's (so the task templates ask in its language); --lang still decides for all."""
    make_synthdog_folder(tmp_path / "mixed")
    for lang, expected in ((None, {0: "en", 1: "zh", 2: "en"}), ("en", {0: "en", 1: "en", 2: "en"})):
        out = tmp_path / f"out-{lang}"
        assert run_job(DonutIngest([str(tmp_path / "mixed")], None, "anyword", lang=lang), str(out), OPTIONS).ok
        samples = read_dataset(out)
        assert {k: json.loads(samples[f"anyword-train_image_{k}"]["json"])["lang"] for k in (0, 1, 2)} == expected
        assert json.loads(samples["anyword-validation_image_3"]["json"])["lang"] == "en"
