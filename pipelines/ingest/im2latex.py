"""Ingest im2latex-100k (rendered formula images + their LaTeX) as formula samples.

Input: `--formulas im2latex_formulas.lst` (one formula per line, line i is formula i), one or more split
lists as `--input` in either form the dataset ships: `IDX IMAGE_NAME RENDER_TYPE` (the original
`im2latex_train.lst`, image `IMAGE_NAME.png`) or `IMAGE_FILE IDX` (the processed `im2latex_train_filter.lst`),
and `--images` (the `formula_images/` folder). One sample per image, family `formula`: `KEY.tex` = the
formula in the canonical tokens every formula source writes (`formula_target`; `record.latex_raw` as the file
has it, a stray "\\r" inside it a space, as in im2markup's preprocessing), the record with its formula index,
split list and render type.
"""

from __future__ import annotations

import posixpath
from functools import lru_cache
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_bytes, read_text, text_lines
from pipelines.ingest.targets import formula_target
from pipelines.job import InputError, Plan
from pipelines.storage import Folder, absolute_url

IMAGE_SUFFIX = ".png"


def split_entry(row: str) -> tuple[str, int, str | None]:
    """(image file, formula index, render type) of a split-list row in either of its two forms."""
    parts = row.split()
    if len(parts) == 3 and parts[0].isdigit():
        return parts[1] + IMAGE_SUFFIX, int(parts[0]), parts[2]
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1]), None
    raise ValueError(f"expected 'IDX IMAGE_NAME RENDER_TYPE' or 'IMAGE_FILE IDX', got {row[:120]!r}")


@lru_cache(maxsize=2)
def formula_lines(url: str) -> list[bytes]:
    """The formulas file's lines, read once per worker; only "\\n" ends a line (formulas may hold a stray "\\r")."""
    lines = read_bytes(url, "formulas").split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


class Im2latexIngest(AnnotatedIngest):
    format = "im2latex"
    family = "formula"
    suffixes = (".lst",)

    def __init__(self, formulas_url: str | None, *args: Any, **kwargs: Any):
        if not formulas_url:
            raise ValueError("--format im2latex needs --formulas (im2latex_formulas.lst)")
        self.formulas_url = absolute_url(formulas_url)
        super().__init__(*args, **kwargs)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "formulas": self.formulas_url}

    def plan(self) -> Plan:
        formulas = Folder(self.formulas_url)
        if not formulas.fs.isfile(formulas.root):
            raise FileNotFoundError(f"{self.formulas_url}: no such formulas file")
        return super().plan()

    def is_annotation(self, rel: str) -> bool:
        return posixpath.basename(rel) != posixpath.basename(self.formulas_url)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        items, errors = [], []
        for number, row in enumerate(text_lines(read_text(url, "split list")), 1):
            if not row.strip():
                continue
            try:
                image, index, render_type = split_entry(row)
            except ValueError as exn:
                errors.append(InputError(f"{url}:{number}", "read split list", str(exn), exception="ValueError"))
                continue
            items.append({"id": posixpath.splitext(image)[0], "line": number, "image": image, "formula": index,
                          "render_type": render_type})
        return items, errors

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}:{item['line']}"

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        lines = formula_lines(self.formulas_url)
        index = item["formula"]
        expect(index < len(lines), name, "read formula", f"formula {index} is past the end of {self.formulas_url} "
                                                         f"({len(lines)} formulas)")
        encoding = "utf-8"
        try:
            formula = lines[index].decode(encoding)
        except UnicodeDecodeError:  # not UTF-8: Latin-1 reads any byte; the record says which was used
            encoding = "latin-1"
            formula = lines[index].decode(encoding)
        formula = formula.replace("\r", " ").strip()  # a stray "\r" inside a formula is a space, as in im2markup
        expect(bool(formula), name, "read formula", f"formula {index} of {self.formulas_url} is empty")
        target = formula_target(formula, name)
        record = {"latex": target, "latex_raw": formula,
                  "meta": {"formula_index": index, "render_type": item["render_type"], "formulas": self.formulas_url,
                           "encoding": encoding}}
        return Targets(item["image"], record, members={"tex": target})
