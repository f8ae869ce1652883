"""`docforge build tables`: table images with PubTabNet-shaped HTML targets (English, Chinese) as a Ray job.

Tables come from `synth.tables.generate_table` (table i seeded from (job seed, i), so any table can be
regenerated alone) or from `--specs`, a JSONL of `{"html": "<table>..."}` lines to render as given
(`--arxiv`, tabulars lifted from papers, is `pipelines.tables_arxiv`). Each
sample: `KEY.png` (the cropped table), `KEY.html` (the target) and `KEY.json` (PubTabNet's
`html.structure.tokens` and `html.cells[*].tokens/bbox`, plus each cell's grid position and full box). As
in PubTabNet, tokens are raw characters (`&`, `<`); `KEY.html` escapes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version
from pipelines.storage import absolute_url, open_url
from synth.tables import (GENERATOR, GENERATOR_VERSION, STYLES, TableConfig, TableError, TableStructure, cell_tokens,
                          check_cjk_fonts, generate_table, parse_table_html, random_style, render_table,
                          structure_tokens, table_html)

DPI_CHOICES = (96, 110, 120, 144)

EXAMPLES = """examples:
  # 10,000 English tables in every style
  docforge build tables --count 10000 --output /shards/tables-en
  # Chinese financial-report-like tables, booktabs and zebra styles only, larger tables
  docforge build tables --lang zh --count 50000 --style booktabs zebra --max-rows 30 --max-cols 10 \\
      --output s3://bucket/shards/tables-zh --address auto
  # render your own PubTabNet-shaped tables (one {"html": "<table>..."} per line)
  docforge build tables --specs my-tables.jsonl --output /shards/tables-mine
  # tabulars lifted from arXiv sources and doc2md's lifted/ output, 16 per LaTeXML/pdflatex run
  docforge build tables --arxiv /data/arxiv/src /shards/doc2md-en/lifted --tables-per-task 16 \\
      --output /shards/tables-arxiv
"""


def table_seed(job_seed: int, index: int) -> int:
    """The seed of table `index`: a stable hash of (job seed, index)."""
    digest = hashlib.sha256(f"docforge-tables:{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@lru_cache(maxsize=4)
def spec_lines(url: str) -> tuple[str, ...]:
    """The lines of a spec file, read once per Ray worker."""
    with open_url(url, "rb") as f:
        return tuple(f.read().decode("utf-8", errors="replace").splitlines())


def table_from_spec(line: str, where: str) -> TableStructure:
    try:
        spec = json.loads(line)
    except ValueError as exn:
        raise InputError(where, "parse spec", f"not JSON ({exn})", exception="JSONDecodeError") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("html"), str):
        raise InputError(where, "parse spec", "expected a JSON object with an 'html' string")
    try:
        return parse_table_html(spec["html"])
    except TableError as exn:
        raise InputError(where, "parse spec", str(exn), exception="TableError") from None


class TablesJob(Job):
    name = "tables"

    def __init__(self, count: int = 0, lang: str = "en", styles: list[str] | tuple[str, ...] = STYLES, seed: int = 0,
                 max_rows: int = 12, max_cols: int = 7, tables_per_task: int = 100, specs: str | None = None,
                 source: str | None = None):
        self.count = count
        self.lang = lang
        self.styles = list(styles)
        self.seed = seed
        self.max_rows = max_rows
        self.max_cols = max_cols
        self.tables_per_task = tables_per_task
        self.specs = absolute_url(specs) if specs else None
        self.source = source or (f"synth-tables-{lang}" if not specs else "tables-specs")

    def config(self) -> dict[str, Any]:
        return {"count": self.count, "lang": self.lang, "styles": self.styles, "seed": self.seed,
                "max_rows": self.max_rows, "max_cols": self.max_cols, "tables_per_task": self.tables_per_task,
                "specs": self.specs, "source": self.source}

    def table_config(self) -> TableConfig:
        return TableConfig(lang=self.lang, min_cols=min(2, self.max_cols), max_cols=self.max_cols,
                           min_body_rows=min(2, self.max_rows), max_body_rows=self.max_rows, styles=tuple(self.styles))

    def plan(self) -> Plan:
        try:
            self.table_config().check()
            if self.lang == "zh":
                check_cjk_fonts()
        except TableError as exn:
            raise ValueError(str(exn)) from None
        if self.specs:
            try:
                lines = spec_lines(self.specs)
            except FileNotFoundError:
                raise FileNotFoundError(f"--specs {self.specs}: no such file") from None
            items = [number for number, line in enumerate(lines, 1) if line.strip()]
            if not items:
                raise ValueError(f"--specs {self.specs}: no table lines")
        else:
            if self.count < 1:
                raise ValueError("--count must be at least 1 (or give --specs)")
            items = list(range(self.count))
        return Plan(chunk_into_tasks(items, self.tables_per_task))

    def describe(self, item: int) -> str:
        if self.specs:
            return f"{self.specs}:{item}"
        return f"{self.source} table {item} (seed {table_seed(self.seed, item)})"

    def process(self, item: int, task_index: int) -> Iterator[dict[str, Any] | InputError]:
        seed = table_seed(self.seed, item)
        if self.specs:
            table = table_from_spec(spec_lines(self.specs)[item - 1], self.describe(item))
            key = f"table-spec-{item:09d}"
        else:
            table = generate_table(seed, self.table_config())
            key = f"table-{self.lang}-s{self.seed}-{item:09d}"
        rng = random.Random(seed)
        try:
            rendered = render_table(table, random_style(rng, tuple(self.styles)), dpi=rng.choice(DPI_CHOICES))
        except TableError as exn:
            raise InputError(self.describe(item), "render", str(exn), exception="TableError") from None
        cells = []
        for cell, box, content in zip(table.cells, rendered.cell_boxes, rendered.content_boxes):
            entry: dict[str, Any] = {"tokens": cell_tokens(cell), "row": cell.row, "col": cell.col,
                                     "rowspan": cell.rowspan, "colspan": cell.colspan, "cell_bbox": box}
            if content is not None:
                entry["bbox"] = content
            cells.append(entry)
        record = {
            "family": "table",
            "lang": self.lang,
            "source": self.source,
            "image": {"width": rendered.width, "height": rendered.height, "format": "png"},
            "html": {"structure": {"tokens": structure_tokens(table)}, "cells": cells},
            "grid": {"rows": table.rows, "cols": table.cols, "header_rows": table.header_rows},
            "render": rendered.meta,
            "provenance": {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
                           "job_seed": self.seed, "index": item, "specs": self.specs, "version": code_version()},
        }
        yield {"__key__": key, "png": rendered.png, "html": table_html(table), "json": record}


def add_tables_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=0, help="tables to generate (not with --specs)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="cell text language (default: en)")
    parser.add_argument("--style", nargs="+", choices=STYLES, default=list(STYLES), metavar="STYLE",
                        help=f"styles to draw from: {', '.join(STYLES)} (default: all)")
    parser.add_argument("--max-rows", type=int, default=12, help="most body rows of a generated table (default: 12)")
    parser.add_argument("--max-cols", type=int, default=7, help="most columns of a generated table (default: 7)")
    parser.add_argument("--specs", metavar="URL", help='JSONL of {"html": "<table>..."} tables to render instead')
    parser.add_argument("--arxiv", nargs="+", metavar="URL",
                        help="render the tabulars of arXiv sources instead (.tex files, folders, tarballs, doc2md's "
                             "lifted/ records) with pdflatex; targets from LaTeXML")
    parser.add_argument("--seed", type=int, default=0, help="job seed: table i uses a seed derived from (seed, i)")
    parser.add_argument("--tables-per-task", type=int, default=100, help="tables per Ray task (default: 100)")
    parser.add_argument("--source", help="dataset name in records (default: synth-tables-LANG)")


def make_tables_job(args: argparse.Namespace) -> Job:
    if sum(map(bool, (args.count, args.specs, args.arxiv))) > 1:
        raise ValueError("give one of --count, --specs and --arxiv")
    if args.arxiv:
        from pipelines.tables_arxiv import ArxivTablesJob

        return ArxivTablesJob(args.arxiv, batch_size=args.tables_per_task, source=args.source or "arxiv-tables")
    return TablesJob(args.count, args.lang, args.style, args.seed, args.max_rows, args.max_cols, args.tables_per_task,
                     args.specs, args.source)
