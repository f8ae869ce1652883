"""Ingest document, infographic, chart and scene-text QA sets as `vqa` samples: question -> answers.

Formats, each one JSON file per split plus an image folder (`--images`, default the JSON's folder):
- `docvqa`: `{data: [{questionId, question, answers: [...], image: "documents/NAME.png"}]}`
- `infovqa`: InfographicVQA, the same with `image_local_name: "NAME.jpeg"`
- `chartqa`: `[{imgname: "NAME.png", query, label}]` (ChartQA's train_human/train_augmented files)
- `textvqa`: `{data: [{question_id, image_id, question, answers: [10 answers]}]}`, image `IMAGE_ID.jpg`
One sample per image with all its questions, in file order (an image questioned in several files, as
ChartQA's human and augmented splits, once with the questions of all): `record.qa = [{question, answers, id}]`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.job import InputError

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
