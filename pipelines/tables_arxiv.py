"""`docforge build tables --arxiv`: tabulars lifted from arXiv sources, rendered standalone with pdflatex,
with targets from LaTeXML's HTML, as a Ray job.

Planning collects every outermost `tabular` of the `.tex` inputs (folders, tarballs) and doc2md's lifted
table records (`{"kind": "table", "latex", "html"}`: LaTeXML's HTML comes with them), deduplicated, in
batches. Per batch: one LaTeXML run (doc2md's `latex_to_html`) converts the tabulars that have no HTML yet,
one pdflatex run (`synth.formula_render`, one tabular per page; xelatex for those with Chinese text)
renders them; LaTeXML's table becomes
PubTabNet-shaped HTML (bold/italic kept, math as `$TeX$`). A tabular LaTeXML or pdflatex fails on (a
paper's own macro, say) is an error-log line. Cell boxes are not recorded for these samples.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.job import InputError, Job, Plan, Task, code_version, safe_key
from pipelines.storage import absolute_url
from pipelines.tex_sources import iter_arxiv_inputs
from synth.formula_render import CJK_PREAMBLE, SNIPPET_PAGE, BatchResult, RenderOptions, render_formulas
from synth.formulas import FormulaError, extract_tabulars, latex_tokens, refused_macro
from synth.tables import CJK, TableError, cell_tokens, parse_table_html, structure_tokens, table_html

LATEXML_PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath,amssymb,array,booktabs,multirow}\n\\begin{document}\n"
MAX_TABULAR_CHARS = 20_000


def latexml_document(tabulars: list[str]) -> str:
    """Each tabular in a `table` float of its own, so LaTeXML's `figure.ltx_table` elements come one per tabular."""
    floats = "".join(f"\\begin{{table}}\n{tabular}\n\\end{{table}}\n" for tabular in tabulars)
    return LATEXML_PREAMBLE + floats + "\\end{document}\n"


def latexml_tables(tabulars: list[str], timeout_s: float) -> list[str | Exception]:
    """LaTeXML's `<table class="ltx_tabular">` for each tabular, or the reason it has none. One LaTeXML run
    for the batch; when that run fails as a whole, each half is converted on its own (bisection)."""
    from lxml import html as lxml_html

    from pipelines.doc2md.latexml import LatexmlError, latex_to_html

    with tempfile.TemporaryDirectory(prefix="docforge-tables-") as workdir:
        Path(workdir, "tables.tex").write_text(latexml_document(tabulars), encoding="utf-8")
        try:
            page = latex_to_html(workdir, "tables.tex", timeout_s=timeout_s)
            figures = lxml_html.fromstring(page).xpath("//figure[contains(concat(' ', @class, ' '), ' ltx_table ')]")
            if len(figures) != len(tabulars):
                raise TableError(f"LaTeXML made {len(figures)} tables of {len(tabulars)} tabulars")
        except (LatexmlError, TableError) as exn:
            if len(tabulars) == 1:
                return [exn]
            middle = len(tabulars) // 2
            return latexml_tables(tabulars[:middle], timeout_s) + latexml_tables(tabulars[middle:], timeout_s)
    out: list[str | Exception] = []
    for figure in figures:
        errors = figure.xpath(".//*[contains(concat(' ', @class, ' '), ' ltx_ERROR ')]")
        tables = figure.xpath(".//table[contains(concat(' ', @class, ' '), ' ltx_tabular ')]")
        if errors:
            out.append(TableError(f"LaTeXML: {' '.join(e.text_content() for e in errors[:3])} "
                                  f"({errors[0].get('class', '').replace('ltx_ERROR', '').strip()})"))
        elif not tables:
            out.append(TableError("LaTeXML made no tabular"))
        else:
            out.append(lxml_html.tostring(tables[0], encoding="unicode"))
    return out


def has_class(element, name: str) -> bool:
    return name in (element.get("class") or "").split()


def pubtabnet_html(latexml_table: str) -> str:
    """LaTeXML's table as PubTabNet-shaped HTML: `th` -> `td`, bold/italic spans -> `<b>`/`<i>`, math -> `$TeX$`."""
    from lxml import html as lxml_html

    root = lxml_html.fragment_fromstring(latexml_table)
    for math in [e for e in root.iter() if has_class(e, "ltx_Math")]:
        tex, tail = math.get("alttext") or math.text_content(), math.tail
        math.clear()
        math.text, math.tail = f"${tex.strip()}$", tail
    for element in root.iter():
        if has_class(element, "ltx_font_bold"):
            element.tag = "b"
        elif has_class(element, "ltx_font_italic"):
            element.tag = "i"
    return table_html(parse_table_html(lxml_html.tostring(root, encoding="unicode")))


def has_cjk(text: str) -> bool:
    return bool(CJK.search(text))


def render_by_script(entries: list[dict[str, Any]], options: RenderOptions) -> BatchResult:
    """pdflatex for the batch, xelatex (xeCJK, Noto CJK) for the tabulars with Chinese text; positions kept."""
    result = BatchResult({}, {}, 0)
    cjk = [i for i, entry in enumerate(entries) if has_cjk(entry["latex"])]
    latin = [i for i in range(len(entries)) if i not in set(cjk)]
    for positions, engine in ((latin, options), (cjk, replace(options, pdflatex="xelatex", preamble=CJK_PREAMBLE))):
        if not positions:
            continue
        part = render_formulas([entries[i]["latex"] for i in positions], engine)
        result.images.update({positions[i]: image for i, image in part.images.items()})
        result.failures.update({positions[i]: reason for i, reason in part.failures.items()})
        result.runs += part.runs
    return result


class ArxivTablesJob(Job):
    name = "tables"

    def __init__(self, inputs: list[str], batch_size: int = 16, dpi: int = 144, timeout_s: float = 300.0,
                 source: str = "arxiv-tables"):
        if batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        self.inputs = [absolute_url(u) for u in inputs]
        self.batch_size = batch_size
        self.options = RenderOptions(dpi=dpi, pad=8, timeout_s=timeout_s, page=SNIPPET_PAGE)
        self.source = source

    def config(self) -> dict[str, Any]:
        return {"arxiv": self.inputs, "batch_size": self.batch_size, "dpi": self.options.dpi,
                "timeout_s": self.options.timeout_s, "source": self.source}

    def plan(self) -> Plan:
        errors: list[InputError] = []
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(key: str, latex: str, html: str | None, origin: dict[str, Any]) -> None:
            if latex.strip() in seen:
                return
            seen.add(latex.strip())
            entries.append({"key": key, "latex": latex, "html": html, "origin": origin})

        for source in iter_arxiv_inputs(self.inputs, errors):
            if source.lifted:
                for number, line in enumerate(source.text.splitlines(), 1):
                    try:
                        record = json.loads(line) if line.strip() else {}
                    except ValueError as exn:
                        errors.append(InputError(f"{source.name}:{number}", "read lifted", f"not JSON ({exn})",
                                                 exception="JSONDecodeError"))
                        continue
                    if record.get("kind") == "table" and isinstance(record.get("latex"), str):
                        paper = str(record.get("paper", posixpath.basename(source.name)))
                        html = record.get("html") if isinstance(record.get("html"), str) else None
                        add(f"table-{safe_key(paper)}-l{number:05d}", record["latex"], html,
                            {"input": f"{source.name}:{number}", "paper": paper})
                continue
            try:
                tabulars = extract_tabulars(source.text)
            except FormulaError as exn:
                errors.append(InputError(source.name, "extract", str(exn), exception="FormulaError"))
                continue
            for number, tabular in enumerate(tabulars):
                add(f"table-{safe_key(source.name)}-{number:04d}", tabular, None,
                    {"input": source.name, "number": number})
        batches = [entries[i:i + self.batch_size] for i in range(0, len(entries), self.batch_size)]
        return Plan([Task(i, [batch]) for i, batch in enumerate(batches)], errors)

    def describe(self, item: list[dict[str, Any]]) -> str:
        return f"batch of {len(item)} tabulars from {item[0]['key']}" if item else "empty batch"

    def process(self, item: list[dict[str, Any]], task_index: int) -> Iterator[dict[str, Any] | InputError]:
        ready = []
        for entry in item:
            try:
                refused = refused_macro(latex_tokens(entry["latex"]))
            except FormulaError as exn:
                refused = str(exn)
            if len(entry["latex"]) > MAX_TABULAR_CHARS:
                refused = f"{len(entry['latex'])} characters (at most {MAX_TABULAR_CHARS})"
            if refused:
                yield InputError(self.where(entry), "check", f"refused: {refused}", exception="FormulaError")
            else:
                ready.append(entry)
        missing = [entry for entry in ready if not entry["html"]]
        converted = dict(zip((e["key"] for e in missing),
                             latexml_tables([e["latex"] for e in missing], self.options.timeout_s) if missing else []))
        rendered = render_by_script(ready, self.options)
        for position, entry in enumerate(ready):
            html = entry["html"] or converted[entry["key"]]
            if isinstance(html, Exception):
                yield InputError(self.where(entry), "latexml", str(html), exception=type(html).__name__)
                continue
            if position in rendered.failures:
                yield InputError(self.where(entry), "render", rendered.failures[position], exception="FormulaError")
                continue
            try:
                target = pubtabnet_html(html)
                table = parse_table_html(target)
            except TableError as exn:
                yield InputError(self.where(entry), "convert", str(exn), exception="TableError")
                continue
            image = rendered.images[position]
            record = {
                "family": "table",
                "lang": "zh" if has_cjk(entry["latex"]) else "en",
                "source": self.source,
                "image": {"width": image.width, "height": image.height, "format": "png"},
                "html": {"structure": {"tokens": structure_tokens(table)},
                         "cells": [{"tokens": cell_tokens(c), "row": c.row, "col": c.col, "rowspan": c.rowspan,
                                    "colspan": c.colspan} for c in table.cells]},
                "grid": {"rows": table.rows, "cols": table.cols, "header_rows": table.header_rows},
                "latex": entry["latex"],
                "origin": entry["origin"],
                "render": {"engine": "pdflatex", "dpi": self.options.dpi, "target": "latexml"},
                "provenance": {"generator": "docforge.tables_arxiv", "version": code_version()},
            }
            yield {"__key__": entry["key"], "png": image.png, "html": target, "json": record}

    @staticmethod
    def where(entry: dict[str, Any]) -> str:
        return f"{entry['key']} ({entry['origin'].get('input')})"
