"""Ingest document, infographic, chart and scene-text QA sets as `vqa` samples: question -> answers.

Formats, each one JSON file per split plus an image folder (`--images`, default the JSON's folder):
- `docvqa`: `{data: [{questionId, question, answers: [...], image: "documents/NAME.png"}]}`
- `infovqa`: InfographicVQA, the same with `image_local_name: "NAME.jpeg"`
- `chartqa`: `[{imgname: "NAME.png", query, label}]` (ChartQA's train_human/train_augmented files)
- `textvqa`: `{data: [{question_id, image_id, question, answers: [10 answers]}]}`, image `IMAGE_ID.jpg`
- `ocrvqa` (`OcrvqaIngest`): OCR-VQA's `dataset.json`, `{IMAGE_ID: {imageURL, questions: [...], answers: [...]
  (parallel, one answer each), title, authorName, genre, split: 1 train | 2 val | 3 test}}`; one split is
  ingested. Its `loadDataset.py` saves each cover as `images/IMAGE_ID<imageURL's extension>` beside the JSON
  (the default `--images`); LLaVA's copy saves them all as `IMAGE_ID.jpg`, read when the first name is missing.
One sample per image with all its questions, in file order (an image questioned in several files, as
ChartQA's human and augmented splits, once with the questions of all): `record.qa = [{question, answers, id}]`
(`id` where the set has question ids); OCR-VQA's book title, author and genre go to `record.meta`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from pipelines.images import CheckedImage
from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.job import InputError
from pipelines.storage import join_url

Question = tuple[str, str, Any, Any]  # (image path, question, answers as given, question id)


def docvqa_question(record: dict[str, Any]) -> Question:
    return record.get("image"), record.get("question"), record.get("answers"), record.get("questionId")


def infovqa_question(record: dict[str, Any]) -> Question:
    return record.get("image_local_name"), record.get("question"), record.get("answers"), record.get("questionId")


def chartqa_question(record: dict[str, Any]) -> Question:
    label = record.get("label")
    return record.get("imgname"), record.get("query"), None if label is None else [str(label)], None


def textvqa_question(record: dict[str, Any]) -> Question:
    image_id = record.get("image_id")
    return (f"{image_id}.jpg" if isinstance(image_id, str) else None, record.get("question"), record.get("answers"),
            record.get("question_id"))


READERS: dict[str, Callable[[dict[str, Any]], Question]] = {
    "docvqa": docvqa_question, "infovqa": infovqa_question, "chartqa": chartqa_question, "textvqa": textvqa_question,
}


def qa_records(data: Any, url: str) -> list[Any]:
    """The question records of a file: a list, or the `data` list of an object."""
    records = data.get("data") if isinstance(data, dict) else data
    expect(isinstance(records, list), url, "check qa", "expected a JSON list of questions or an object with a 'data' list")
    return records


def checked_answers(answers: Any) -> list[str] | None:
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list):
        return None
    kept = [a.strip() for a in answers if isinstance(a, str) and a.strip()]
    return kept or None


class VqaIngest(AnnotatedIngest):
    family = "vqa"

    def __init__(self, format: str, *args: Any, **kwargs: Any):
        if format not in READERS:
            raise ValueError(f"unknown QA format {format!r}; known: {', '.join(READERS)}")
        self.format = format
        super().__init__(*args, **kwargs)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        read = READERS[self.format]
        images: dict[str, dict[str, Any]] = {}
        errors = []
        for i, record in enumerate(qa_records(read_json(url, "qa json"), url)):
            image, question, answers, question_id = read(record) if isinstance(record, dict) else (None,) * 4
            answers = checked_answers(answers)
            if not isinstance(image, str) or not isinstance(question, str) or not question.strip() or answers is None:
                errors.append(InputError(f"{url}#{i}", "check qa", "a question needs an image, a question text and "
                                                                   f"non-empty answers, got {str(record)[:160]}"))
                continue
            pair = {"question": question.strip(), "answers": answers}
            if question_id is not None:
                pair["id"] = question_id
            page = images.setdefault(image, {"id": posixpath.splitext(image)[0], "image": image, "qa": []})
            page["qa"].append(pair)
        return list(images.values()), errors

    def merge(self, kept: dict[str, Any], again: dict[str, Any]) -> bool:
        """The same image questioned in two files (ChartQA's train_human and train_augmented name the same
        charts) is one sample with the questions of both, in file order."""
        if self.image_url(kept, kept["image"]) != self.image_url(again, again["image"]):
            return False
        kept["qa"] = kept["qa"] + again["qa"]
        return True

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        return Targets(item["image"], {"qa": item["qa"]})


OCRVQA_SPLITS = {1: "train", 2: "val", 3: "test"}  # dataset.json's `split` codes (loadDataset.py)
OCRVQA_META = ("title", "authorName", "genre", "genreID", "imageURL")


def ocrvqa_pairs(record: dict[str, Any], name: str) -> tuple[list[dict[str, Any]], list[InputError]]:
    """The question-answer pairs of one OCR-VQA image and an error for each pair that has no text."""
    questions, answers = record.get("questions"), record.get("answers")
    expect(isinstance(questions, list) and isinstance(answers, list), name, "check qa",
           f"'questions' and 'answers' must be lists, got {type(questions).__name__} and {type(answers).__name__}")
    expect(len(questions) == len(answers), name, "check qa",
           f"{len(questions)} questions but {len(answers)} answers: the lists pair up by position")
    expect(bool(questions), name, "check qa", "no questions")
    pairs, errors = [], []
    for i, (question, answer) in enumerate(zip(questions, answers)):
        if isinstance(answer, int) and not isinstance(answer, bool):  # a year or a numeric title
            answer = str(answer)
        checked = checked_answers([answer])
        if not isinstance(question, str) or not question.strip() or checked is None:
            errors.append(InputError(name, "check qa", f"question {i} needs a question text and a non-empty "
                                                       f"answer, got {question!r} -> {answer!r}"))
            continue
        pairs.append({"question": question.strip(), "answers": checked})
    return pairs, errors


class OcrvqaIngest(AnnotatedIngest):
    """OCR-VQA's dataset.json, one split of it: an object keyed by image id, not a list of questions."""

    format = "ocrvqa"
    family = "vqa"

    def __init__(self, inputs: list[str], images_url: str | None, source: str, lang: str | None = None,
                 items_per_task: int = 1000, split: str = "train"):
        if split not in OCRVQA_SPLITS.values():
            raise ValueError(f"unknown OCR-VQA split {split!r}; known: {', '.join(OCRVQA_SPLITS.values())}")
        super().__init__(inputs, images_url, source, lang, items_per_task)
        self.split = split

    def config(self) -> dict[str, Any]:
        return {**super().config(), "split": self.split}

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        data = read_json(url, "qa json")
        expect(isinstance(data, dict), url, "check qa", "expected OCR-VQA's dataset.json, an object keyed by image id")
        items, errors = [], []
        for image_id, record in data.items():
            name = f"{url}#{image_id}"
            try:
                item, bad = self.image_item(image_id, record, name)
            except InputError as exn:
                errors.append(exn)
                continue
            errors += bad
            if item is not None:
                items.append(item)
        return items, errors

    def image_item(self, image_id: str, record: Any, name: str) -> tuple[dict[str, Any] | None, list[InputError]]:
        """The item of one image of this job's split (None for another split, or when no question is usable)."""
        expect(isinstance(record, dict), name, "check qa",
               f"an image's entry must be an object, got {str(record)[:160]}")
        split = record.get("split")
        expect(type(split) is int and split in OCRVQA_SPLITS, name, "check qa",
               f"'split' must be 1 (train), 2 (val) or 3 (test), got {split!r}")
        if OCRVQA_SPLITS[split] != self.split:
            return None, []
        cover_url = record.get("imageURL")
        expect(isinstance(cover_url, str) and bool(cover_url.strip()), name, "check qa",
               f"'imageURL' must be a URL (its extension names the image file), got {cover_url!r}")
        pairs, errors = ocrvqa_pairs(record, name)
        if not pairs:
            return None, errors
        meta = {key: record[key] for key in OCRVQA_META if key in record}
        image = f"{image_id}{posixpath.splitext(cover_url.strip())[1]}"
        return {"id": image_id, "image": image, "qa": pairs, "meta": {**meta, "split": self.split}}, errors

    def image_url(self, item: dict[str, Any], rel: str) -> str:
        """Covers are under --images, else in `images/` beside dataset.json, where loadDataset.py saves them."""
        return join_url(self.images_url or join_url(posixpath.dirname(item["file"]), "images"), rel)

    def load_image(self, item: dict[str, Any], image: str | bytes, name: str) -> tuple[CheckedImage, str | None]:
        """The cover under loadDataset.py's name, else under LLaVA's (`IMAGE_ID.jpg`, whatever the URL's
        extension): the second name costs a read only when the first is missing."""
        llava_name = f"{item['id']}.jpg"
        try:
            return super().load_image(item, image, name)
        except InputError as exn:
            if exn.exception != "FileNotFoundError" or image == llava_name:
                raise
        try:
            return super().load_image(item, llava_name, name)
        except InputError as exn:
            if exn.exception != "FileNotFoundError":
                raise
            raise InputError(name, "read image", f"missing image file {self.image_url(item, image)} and LLaVA's "
                                                 f"copy {self.image_url(item, llava_name)}",
                             exception="FileNotFoundError") from exn

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        return Targets(item["image"], {"qa": item["qa"], "meta": item["meta"]})
