"""OCR-VQA ingest from its own dataset.json (an object keyed by image id, parallel question and answer
lists, split codes 1/2/3): one sample per cover of the chosen split, covers under loadDataset.py's names
(IMAGE_ID + imageURL's extension) or LLaVA's (IMAGE_ID.jpg); every bad entry is an error line naming it."""

import argparse
import io
import json
import random
from pathlib import Path

from PIL import Image

from mixtures.tasks import render_conversation
from pipelines.ingest import add_ingest_arguments, make_ingest_job
from pipelines.ingest.vqa import OcrvqaIngest
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import jpeg, read_dataset, read_errors

OPTIONS = RunOptions(progress=False)
AMAZON = "http://ecx.images-amazon.com/images/I/"

# entries as dataset.json has them (mmpretrain's OCRVQA loader quotes the first), plus the real world's mess
DATASET = {
    "761183272": {
        "imageURL": f"{AMAZON}61Y5cOdHJbL.jpg",
        "questions": ["Who wrote this book?", "What is the title of this book?", "What is the genre of this book?",
                      "Is this a games related book?", "What is the year printed on this calendar?"],
        "answers": ["Sandra Boynton", "Mom's Family Wall Calendar 2016", "Calendars", "No", 2016],
        "title": "Mom's Family Wall Calendar 2016", "authorName": "Sandra Boynton", "genre": "Calendars",
        "genreID": 4, "split": 1},
    "1590282078": {  # a GIF cover: loadDataset.py saves images/1590282078.gif, LLaVA's copy 1590282078.jpg
        "imageURL": f"{AMAZON}51Y6oN8w6rL.gif",
        "questions": ["Who is the author of this book?", "What is the title of this book?", "Is this a sci-fi book?"],
        "answers": ["Jim Kjelgaard", "Big Red", ""],  # the empty answer is logged, the other two kept
        "title": "Big Red", "authorName": "Jim Kjelgaard", "genre": "Children's Books", "genreID": 5, "split": 1},
    "B00IAPNWG6": {"imageURL": f"{AMAZON}41WcQHWQqPL.jpg", "questions": ["Who wrote this book?"],
                   "answers": ["Lonely Planet"], "title": "Lonely Planet Peru", "authorName": "Lonely Planet",
                   "genre": "Travel", "genreID": 29, "split": 2},
    "60256656": {"imageURL": f"{AMAZON}51AD2SH4HGL.png", "questions": ["What is the title of this book?"],
                 "answers": ["Goodnight Moon"], "title": "Goodnight Moon", "authorName": "Margaret Wise Brown",
                 "genre": "Children's Books", "genreID": 5, "split": 3},
    "312064555": {"imageURL": f"{AMAZON}51J9S5P3JGL.jpg",
                  "questions": ["Who wrote this book?", "Is this a pharmaceutical book?"],
                  "answers": ["Nora Roberts"], "split": 1},  # lists that do not pair up
    "470824301": {"imageURL": f"{AMAZON}41V2JM0W3QL.jpg", "questions": "Who wrote this book?",
                  "answers": "Hal Higdon", "split": 1},  # strings, not lists
    "1118017390": {"imageURL": f"{AMAZON}51jKXcn3ZML.jpg", "questions": ["Who wrote this book?"],
                   "answers": ["Dan Gookin"], "split": "1"},  # a split code that is not 1, 2 or 3
    "786965479": {"imageURL": f"{AMAZON}51kBh4lQH8L.jpg", "questions": ["What type of book is this?"],
                  "answers": ["Travel"], "split": 1},  # its cover was never downloaded
}


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (24, 36), 3).save(out, "GIF")
    return out.getvalue()


def make_ocrvqa(root: Path, cover_names: dict[str, str]) -> Path:
    """dataset.json in `root` and the covers in `root/images` under `cover_names` (image id -> file name)."""
    (root / "images").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(DATASET, indent=1))
    for image_id, file_name in cover_names.items():
        data = gif() if DATASET[image_id]["imageURL"].endswith(".gif") else jpeg(len(image_id), size=(30, 44))
        (root / "images" / file_name).write_bytes(data)
    return root / "dataset.json"


LOADDATASET_NAMES = {"761183272": "761183272.jpg", "1590282078": "1590282078.gif", "B00IAPNWG6": "B00IAPNWG6.jpg",
                     "60256656": "60256656.png", "312064555": "312064555.jpg", "470824301": "470824301.jpg",
                     "1118017390": "1118017390.jpg"}


def error_causes(out: Path) -> dict[str, str]:
    return {e["input"].rsplit("/", 1)[-1]: e["message"] for e in read_errors(out)}


def test_train_split_is_one_sample_per_cover_with_all_its_questions(ray_local, tmp_path):
    dataset = make_ocrvqa(tmp_path / "ocr-vqa", LOADDATASET_NAMES)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text('{"761183272": {"imageURL": "http://ecx.images-amazon.com/im')
    out = tmp_path / "out"
    job = OcrvqaIngest([str(dataset), str(tmp_path / "broken" / "dataset.json")], None, "ocr-vqa")
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["ocr-vqa-1590282078", "ocr-vqa-761183272"]  # val, test and broken entries left out
    record = json.loads(samples["ocr-vqa-761183272"]["json"])
    assert [(qa["question"], qa["answers"]) for qa in record["qa"]] == [
        ("Who wrote this book?", ["Sandra Boynton"]),
        ("What is the title of this book?", ["Mom's Family Wall Calendar 2016"]),
        ("What is the genre of this book?", ["Calendars"]), ("Is this a games related book?", ["No"]),
        ("What is the year printed on this calendar?", ["2016"])]
    assert record["meta"] == {"title": "Mom's Family Wall Calendar 2016", "authorName": "Sandra Boynton",
                              "genre": "Calendars", "genreID": 4, "imageURL": f"{AMAZON}61Y5cOdHJbL.jpg",
                              "split": "train"}
    assert record["family"] == "vqa"
    assert record["provenance"]["image_file"] == str(dataset.parent / "images" / "761183272.jpg")
    gif_cover = samples["ocr-vqa-1590282078"]
    assert [qa["answers"] for qa in json.loads(gif_cover["json"])["qa"]] == [["Jim Kjelgaard"], ["Big Red"]]
    assert Image.open(io.BytesIO(gif_cover["png"])).size == (24, 36)  # images/1590282078.gif, re-encoded
    assert error_causes(out) == {
        "dataset.json#1590282078":
            "question 2 needs a question text and a non-empty answer, got 'Is this a sci-fi book?' -> ''",
        "dataset.json#312064555": "2 questions but 1 answers: the lists pair up by position",
        "dataset.json#470824301": "'questions' and 'answers' must be lists, got str and str",
        "dataset.json#1118017390": "'split' must be 1 (train), 2 (val) or 3 (test), got '1'",
        "dataset.json#786965479": f"missing image file {dataset.parent}/images/786965479.jpg",
        "dataset.json": "Unterminated string starting at: line 1 column 28 (char 27)"}
    assert str(tmp_path / "broken" / "dataset.json") in {e["input"] for e in read_errors(out)}
    for sample in samples.values():
        question, answer = render_conversation("vqa", sample, random.Random(0))
        pairs = {qa["question"]: qa["answers"][0] for qa in json.loads(sample["json"])["qa"]}
        assert pairs[question["content"].removeprefix("<image>\n")] == answer["content"]
    assert verify_dataset(str(out)).ok


def test_llavas_copy_is_read_when_the_loaddataset_name_is_missing(ray_local, tmp_path):
    """LLaVA's OCR-VQA images are all IMAGE_ID.jpg, GIF covers included (GIF bytes under a .jpg name); a cover
    missing under both names is one error naming both files."""
    llava_names = {image_id: f"{image_id}.jpg" for image_id in ("761183272", "1590282078", "B00IAPNWG6")}
    dataset = make_ocrvqa(tmp_path / "ocr-vqa", {})
    images = tmp_path / "llava" / "ocr_vqa" / "images"
    make_ocrvqa(tmp_path / "llava" / "ocr_vqa", llava_names)
    (images / "60256656.gif").write_bytes(gif())  # neither of the names the test cover goes by
    out = tmp_path / "out"
    assert run_job(OcrvqaIngest([str(dataset)], str(images), "ocr-vqa", split="val"), str(out), OPTIONS).ok
    assert sorted(read_dataset(out)) == ["ocr-vqa-B00IAPNWG6"]
    assert [e["input"].rsplit("#", 1)[-1] for e in read_errors(out)] == ["1118017390"]  # a bad split code: any split
    out = tmp_path / "out-train"
    assert run_job(OcrvqaIngest([str(dataset)], str(images), "ocr-vqa"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["ocr-vqa-1590282078", "ocr-vqa-761183272"]
    record = json.loads(samples["ocr-vqa-1590282078"]["json"])
    assert record["provenance"]["image_file"] == str(images / "1590282078.jpg")
    assert record["image"]["source_format"] == "GIF"
    out = tmp_path / "out-test"
    assert run_job(OcrvqaIngest([str(dataset)], str(images), "ocr-vqa", split="test"), str(out), OPTIONS).ok
    assert json.loads((out / "index.json").read_text())["shards"] == []
    assert [(e["input"].rsplit("/", 1)[-1], e["step"], e["message"]) for e in read_errors(out)][-1:] == [
        ("dataset.json#60256656", "read image",
         f"missing image file {images}/60256656.png and LLaVA's copy {images}/60256656.jpg")]


def test_the_cli_ingests_the_train_split_by_default():
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)
    job = make_ingest_job(parser.parse_args(["--format", "ocrvqa", "--input", "ocr-vqa/dataset.json"]))
    assert (job.split, job.source, job.config()["split"]) == ("train", "ocrvqa-dataset", "train")
    job = make_ingest_job(parser.parse_args(["--format", "ocrvqa", "--input", "dataset.json", "--split", "test"]))
    assert job.split == "test"
