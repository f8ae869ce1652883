"""QA ingest (DocVQA, InfographicVQA, ChartQA, TextVQA) on the bundled format samples: one sample per
image with all its questions and every annotator answer; unanswered questions and missing images are logged."""

import json
import random
import shutil
from pathlib import Path

import pytest

from mixtures.tasks import render_conversation
from pipelines.ingest.vqa import VqaIngest
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "datasets"
OPTIONS = RunOptions(progress=False)

CASES = {  # format: (annotation file, image folder, {key: [(question, answers)]})
    "infovqa": ("infovqa/infographicVQA_train_v1.0.json", "infovqa/infographicVQA_train_v1.0_images", {
        "infovqa-37313": [("What share of home water use goes to the shower?", ["27%"]),
                          ("Which use takes 12%?", ["kitchen", "Kitchen"])]}),
    "chartqa": ("chartqa/train/train_human.json", "chartqa/train/png", {
        "chartqa-two_col_1001": [("How many visitors were there in 2023?", ["41"]),
                                 ("In which year were visitors highest?", ["2024"])],
        "chartqa-multi_col_207": [("What is the difference between March and February rainfall?", ["25"])]}),
    "textvqa": ("textvqa/TextVQA_0.5.1_train.json", "textvqa/train_images", {
        "textvqa-0054c91397f2fe05": [("what exit number is on the sign?", ["14"] * 8 + ["exit 14"] * 2)]}),
}


@pytest.mark.parametrize("qa_format", sorted(CASES))
def test_questions_group_by_image_with_all_answers(ray_local, tmp_path, qa_format):
    annotations, images, expected = CASES[qa_format]
    out = tmp_path / "out"
    job = VqaIngest(qa_format, [str(SAMPLES / annotations)], str(SAMPLES / images), qa_format)
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert {key: [(qa["question"], qa["answers"]) for qa in json.loads(s["json"])["qa"]] for key, s in samples.items()} \
        == expected
    assert read_errors(out) == []
    for sample in samples.values():
        assert json.loads(sample["json"])["family"] == "vqa"
        question, answer = render_conversation("vqa", sample, random.Random(3))
        pairs = {qa["question"]: qa["answers"] for qa in json.loads(sample["json"])["qa"]}
        assert question["content"].removeprefix("<image>\n") in pairs


def test_textvqa_answer_is_the_most_frequent_of_ten():
    annotations, images, _ = CASES["textvqa"]
    job = VqaIngest("textvqa", [str(SAMPLES / annotations)], str(SAMPLES / images), "textvqa")
    sample = next(job.process(job.plan().tasks[0].items[0], 0))
    assert render_conversation("vqa", sample, random.Random(0))[1]["content"] == "14"


def test_docvqa_logs_unanswered_questions_and_missing_pages(ray_local, tmp_path):
    root = tmp_path / "docvqa"
    shutil.copytree(SAMPLES / "docvqa", root)
    data = json.loads((root / "train_v1.0.json").read_text())
    data["data"].append({"questionId": 7, "question": "What is the date?", "image": "documents/ffbf0023_4.png"})  # test split
    data["data"].append({"questionId": 8, "question": "Who signed?", "image": "documents/nowhere.png", "answers": ["X"]})
    (root / "train_v1.0.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert run_job(VqaIngest("docvqa", [str(root / "train_v1.0.json")], None, "docvqa"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["docvqa-documents_ffbf0023_4", "docvqa-documents_gxbj0223_1"]
    record = json.loads(samples["docvqa-documents_ffbf0023_4"]["json"])
    assert [(qa["id"], qa["question"]) for qa in record["qa"]] == [(1000, "Who is the memo from?"),
                                                                     (1001, "When is the fire drill?")]
    assert record["qa"][0]["answers"] == ["J. Alvarez", "J. Alvarez, Safety Officer"]
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("train_v1.0.json#3", "check qa"), ("nowhere", "read image")}
    assert verify_dataset(str(out)).ok


def test_a_chart_questioned_in_the_human_and_augmented_files_is_one_sample_with_all_questions(ray_local, tmp_path):
    """ChartQA's train_human.json and train_augmented.json question the same charts: one sample each, with
    the questions of both files (the second file's questions were lost to a repeated-key error)."""
    root = tmp_path / "chartqa"
    shutil.copytree(SAMPLES / "chartqa", root)
    augmented = [{"imgname": "two_col_1001.png", "query": "What is the lowest value?", "label": "12"}]
    (root / "train" / "train_augmented.json").write_text(json.dumps(augmented))
    out = tmp_path / "out"
    job = VqaIngest("chartqa", [str(root / "train" / "train_human.json"), str(root / "train" / "train_augmented.json")],
                    str(root / "train" / "png"), "chartqa")
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["chartqa-multi_col_207", "chartqa-two_col_1001"]
    assert [qa["question"] for qa in json.loads(samples["chartqa-two_col_1001"]["json"])["qa"]] == [
        "How many visitors were there in 2023?", "In which year were visitors highest?", "What is the lowest value?"]
    assert read_errors(out) == []
