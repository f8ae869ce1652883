"""Ingest FUNSD and XFUND forms as key-information samples: entities, their words, and key-value links.

FUNSD: one JSON per form (`annotations/NAME.json`: `form: [{id, text, box, label, words: [{text, box}],
linking: [[from, to], ...]}]`), the image `NAME.png` under `--images`. XFUND: one JSON per language and
split (`zh.train.json`: `lang`, `documents: [{id, img: {fname, width, height}, document: [entities as
FUNSD]}]`), images under `--images`. One sample per form, family `kie`: `record.entities = [{id, label,
text, bbox, words: [{text, bbox}]}]`, `record.links = [[from, to], ...]` (each link once), and
`record.fields = {question text: answer text (or a list when a question has several answers)}`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.ingest.targets import corner_box
from pipelines.job import InputError

LABELS = ("header", "question", "answer", "other")


def form_entities(form: Any, name: str) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """FUNSD-shaped entities as records, and their links, each once, in first-seen order."""
    expect(isinstance(form, list) and form != [], name, "check form", "the form must be a non-empty list of entities")
    entities, links, ids = [], [], set()
    for i, entity in enumerate(form):
        where = f"entity {entity.get('id', i) if isinstance(entity, dict) else i}"
        if not isinstance(entity, dict) or not isinstance(entity.get("id"), int) or entity.get("label") not in LABELS \
                or not isinstance(entity.get("text"), str):
            raise InputError(name, "check form", f"{where}: needs an integer 'id', a 'text' and a 'label' in "
                                                 f"{', '.join(LABELS)}; got {str(entity)[:160]}")
        words = []
        for j, word in enumerate(entity.get("words") or []):
            if not isinstance(word, dict) or not isinstance(word.get("text"), str):
                raise InputError(name, "check form", f"{where} word {j}: needs a 'text' and a 'box', got {str(word)[:120]}")
            words.append({"text": word["text"], "bbox": corner_box(word.get("box"), name, f"{where} word {j}")})
        entities.append({"id": entity["id"], "label": entity["label"], "text": entity["text"],
                         "bbox": corner_box(entity.get("box"), name, where), "words": words})
        ids.add(entity["id"])
        for link in entity.get("linking") or []:
            if not (isinstance(link, list) and len(link) == 2 and all(isinstance(v, int) for v in link)):
                raise InputError(name, "check form", f"{where}: a link is [from_id, to_id], got {link!r}")
            if link not in links:
                links.append(link)
    for link in links:
        expect(set(link) <= ids, name, "check form", f"link {link} names an entity the form does not have")
    return entities, links


def question_answer_fields(entities: list[dict[str, Any]], links: list[list[int]]) -> dict[str, str | list[str]]:
    """`{question text: answer text}` from the links between a question and an answer (either direction);
    a question with several answers (or repeated question texts) gets the list of answers."""
    by_id = {e["id"]: e for e in entities}
    fields: dict[str, list[str]] = {}
    for a, b in links:
        pair = {by_id[a]["label"]: by_id[a], by_id[b]["label"]: by_id[b]}
        if set(pair) == {"question", "answer"}:
            question, answer = pair["question"]["text"].strip(), pair["answer"]["text"].strip()
            if question and answer:
                fields.setdefault(question, []).append(answer)
    return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}


def form_targets(form: Any, name: str) -> dict[str, Any]:
    entities, links = form_entities(form, name)
    fields = question_answer_fields(entities, links)
    expect(bool(fields), name, "check form", "no question is linked to an answer")
    return {"entities": entities, "links": links, "fields": fields}


class FunsdIngest(AnnotatedIngest):
    format = "funsd"
    family = "kie"

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        return [{"id": posixpath.splitext(posixpath.basename(url))[0]}], []

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        annotation = read_json(item["file"], "form json")
        expect(isinstance(annotation, dict), name, "check form", "a FUNSD file is an object with a 'form' list")
        return Targets(f"{item['id']}.png", form_targets(annotation.get("form"), name))


class XfundIngest(AnnotatedIngest):
    format = "xfund"
    family = "kie"

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        data = read_json(url, "xfund json")
        expect(isinstance(data, dict) and isinstance(data.get("documents"), list), url, "check xfund",
               "an XFUND file is an object with a 'documents' list")
        items, errors = [], []
        for i, document in enumerate(data["documents"]):
            image = document.get("img") if isinstance(document, dict) else None
            if not (isinstance(image, dict) and isinstance(image.get("fname"), str) and isinstance(document.get("id"), str)):
                errors.append(InputError(f"{url}#documents[{i}]", "check xfund", "a document needs an 'id' and "
                                         f"'img': {{fname, width, height}}, got {str(document)[:120]}"))
                continue
            items.append({"id": document["id"], "image": image["fname"], "size": [image.get("width"), image.get("height")],
                          "form": document.get("document"), "lang": data.get("lang")})
        return items, errors

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        width, height = item["size"]
        size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        return Targets(item["image"], form_targets(item["form"], name), size=size, lang=item.get("lang"))
