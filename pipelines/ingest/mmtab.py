"""Ingest MMTab's table recognition samples (Table-LLaVA, ACL 2024) as `table` samples: table image -> HTML.

Input: MMTab's LLaVA-format JSON lists (`MMTab-pre_pretrain_data_llava_format_150K.json`, all table
recognition; `MMTab-instruct_sft_data_llava_format_232K.json`, 14 tasks) of `{id, image: "FOLDER/NAME.jpg",
conversations: [{from: "human", value: "<image>\\nREQUEST"}, {from: "gpt", value: ANSWER}]}`, and `--images`,
the folder the image paths are relative to (Table-LLaVA's `LLaVA-Pretrain/images`, with the image zips
unpacked and renamed as its README says). Table recognition asks for the whole table, cell text included, as
HTML, Markdown or LaTeX. The answer tells, whatever task fields a record may carry: a record is table
recognition in HTML when a `gpt` turn holds a `<table>`, and the records without a table answer are not this
format's and are only counted (one log line per file). Markdown and LaTeX answers are counted and skipped:
Markdown has no merged cells and MMTab's own LaTeX conversion reads flat tables only, so either would guess
the spans that the HTML answer states. One sample per table image (an image asked again, in another format
or another file, once), family `table`: `KEY.html`, the answer's table read with lxml and written as the
table generator writes its targets (`synth.tables`: `<thead>`/`<tbody>` as the answer has them, `<th>` as
`<td>`, spans, escaped text, `<b>`/`<i>`); `record.structure` + `record.cells` (PubTabNet's tokens) and
`record.html_raw`, the answer's table as given.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections import Counter
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect
from pipelines.ingest.llava import check_conversations, read_records
from pipelines.job import InputError
from synth.tables import TableError, cell_tokens, parse_table_html, structure_tokens, table_html

log = logging.getLogger("docforge.ingest")

FORMS = ("html", "markdown", "latex")  # the table forms table recognition asks for, the kept one first
MARKDOWN_RULE = re.compile(r"^(?=[^\n]*\|)(?=[^\n]*---)[ \t|:-]+$", re.MULTILINE)  # a Markdown table's |---|---|
TABLE_ROW = re.compile(r"<tr[\s>]", re.IGNORECASE)
LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # a break inside a cell: a space between its words
UNINGESTED_FILES = ("enhanced_llava_", "MMTab-eval_")  # in an --input folder: MMTab-pre/-instruct mixed into
# LLaVA's own data again, and the test split


def table_form(answer: str) -> str | None:
    """Which table an answer holds: "html", "markdown", "latex", or None (not a table)."""
    if "<table" in answer.lower():
        return "html"
    if "\\begin{tabular" in answer:
        return "latex"
    return "markdown" if MARKDOWN_RULE.search(answer) else None


def recognition_answer(turns: list[dict[str, str]]) -> tuple[str | None, str]:
    """The table form of a record's table answer (an HTML one first) and the answer; (None, "") when no answer
    is a table, i.e. the record is not table recognition."""
    found = [(table_form(turn["value"]), turn["value"]) for turn in turns if turn["from"] == "gpt"]
    return next(((form, answer) for wanted in FORMS for form, answer in found if form == wanted), (None, ""))


def is_test_record(record: Any) -> bool:
    """MMTab-eval's shape: `item_id`, `input`, `output` (its LLaVA JSONL: `question_id`, `text`), no conversations."""
    if not isinstance(record, dict) or "conversations" in record:
        return False
    return "item_id" in record or "question_id" in record


def table_target(answer: str, name: str) -> tuple[str, dict[str, Any]]:
    """The canonical HTML of an answer's table and its record part; `InputError` when there is no single
    complete table, lxml's reading of it is not a grid, or rows would be dropped (a `<tfoot>`, or bare rows
    after a `<thead>`)."""
    lowered = answer.lower()
    start, end = lowered.find("<table"), lowered.rfind("</table>")
    expect(start >= 0 and end > start, name, "parse table", "the answer holds no complete <table>...</table>")
    expect(lowered.count("<table") == 1, name, "parse table", f"{lowered.count('<table')} tables in one answer")
    markup = answer[start:end + len("</table>")]
    try:
        table = parse_table_html(LINE_BREAK.sub(" ", markup))
    except TableError as exn:
        raise InputError(name, "parse table", str(exn), exception="TableError") from None
    rows = len(TABLE_ROW.findall(markup))
    expect(rows == table.rows, name, "parse table", f"{rows} <tr> rows, {table.rows} of them in <thead>/<tbody>: "
                                                    "rows in a <tfoot> or outside the table's sections would be lost")
    cells = [{"text": cell.text, "tokens": cell_tokens(cell)} for cell in table.cells]
    return table_html(table), {"structure": structure_tokens(table), "cells": cells, "html_raw": markup}


class MmtabIngest(AnnotatedIngest):
    format = "mmtab"
    family = "table"
    suffixes = (".json", ".jsonl")

    def is_annotation(self, rel: str) -> bool:
        return not posixpath.basename(rel).startswith(UNINGESTED_FILES)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        """One item per table image: its first record with an HTML table answer."""
        records, errors = read_records(url)
        expect(not (records and is_test_record(records[0][1])), url, "check record",
               "MMTab-eval's test records (item_id or question_id, no conversations): the test split is not ingested")
        images: dict[str, dict[str, Any]] = {}
        forms: Counter[str] = Counter()
        for index, record in records:
            name = f"{url}#{index}"
            try:
                form, answer = recognition_answer(check_conversations(record, name))
                forms[form or "not table recognition"] += 1
                if form != "html":
                    continue
                image = record.get("image")
                expect(isinstance(image, str) and bool(image.strip()), name, "check record",
                       f"a table recognition record needs 'image', the table image's path, got {image!r}")
                stem = posixpath.splitext(posixpath.basename(image))[0]
                kept = images.setdefault(stem, {"id": stem, "index": index, "image": image, "answer": answer,
                                                "meta": {k: v for k, v in record.items()
                                                         if k not in ("image", "conversations")}})
                expect(self.same_image(kept, image), name, "check record",
                       f"image {image} has the name of record #{kept['index']}'s {kept['image']}")
            except InputError as exn:
                errors.append(exn)
        log.info("mmtab %s: %d records: %d table recognition in HTML (%d table images), %d in Markdown and %d in "
                 "LaTeX (skipped), %d not table recognition, %d errors", url, len(records), forms["html"],
                 len(images), forms["markdown"], forms["latex"], forms["not table recognition"], len(errors))
        return list(images.values()), errors

    @staticmethod
    def same_image(kept: dict[str, Any], image: str) -> bool:
        """Two paths of one table image: the same file name (MMTab-instruct's images are MMTab-pre's part 1)."""
        return posixpath.basename(kept["image"]) == posixpath.basename(image)

    def merge(self, kept: dict[str, Any], again: dict[str, Any]) -> bool:
        """A table recognised again in a later file (MMTab-pre and -instruct share images) keeps its first sample."""
        return self.same_image(kept, again["image"])

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}#{item['index']}"

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        html, record = table_target(item["answer"], name)
        return Targets(item["image"], {**record, "meta": item["meta"]}, members={"html": html})
