"""`docforge build formulas`: formula images with LaTeX targets, rendered by pdflatex in batches, as a Ray job.

Sources: `arxiv` (display math lifted from .tex files, folders or tarballs of them, and doc2md's
`lifted/*.jsonl` side output, found in a folder named `lifted`; 40-1024 characters), `list` (one
formula per line, im2latex's `formulas.lst`) or `generated` (`synth.formula_grammar`). Planning collects and deduplicates the
formulas (by normalised form) and cuts them into batches; each batch is one pdflatex run
(`synth.formula_render`). Each sample: `KEY.png`, `KEY.tex` (normalised LaTeX) and `KEY.json` (raw and
normalised LaTeX, where it came from). A refused or failing formula is one error-log line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
from collections.abc import Iterator
from typing import Any

from pipelines.job import InputError, Job, Plan, Task, code_version, safe_key
from pipelines.storage import Folder, absolute_url
from pipelines.tex_sources import decode_text, iter_arxiv_inputs
from synth.formula_grammar import generate_formula
from synth.formula_render import RenderOptions, render_formulas
from synth.formulas import FormulaError, check_formula_safe, extract_display_math, normalize_latex

SOURCES = ("arxiv", "list", "generated")
GENERATOR = "docforge.synth.formula_render"

EXAMPLES = """examples:
  # display formulas lifted from arXiv sources (folders of .tex files, source tarballs, doc2md's lifted/*.jsonl)
  docforge build formulas --source arxiv --input /data/arxiv-src /shards/doc2md/lifted --output /shards/formulas-arxiv
  # im2latex-100k's formula list, rendered 128 per pdflatex run
  docforge build formulas --source list --input im2latex_formulas.lst --batch-size 128 --output /shards/im2latex
  # formulas composed from a grammar
  docforge build formulas --source generated --count 5000 --output /shards/formulas-gen
pdflatex runs without shell escape, reads and writes only its private temp dir, under a timeout; formulas
using \\write18, \\input, \\def and other file or definition macros are refused.
"""


def formula_seed(job_seed: int, index: int) -> int:
    digest = hashlib.sha256(f"docforge-formulas:{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class Candidates:
    """Formulas collected at planning time, deduplicated by normalised form, with unique keys."""

    def __init__(self, min_chars: int, max_chars: int):
        self.min_chars, self.max_chars = min_chars, max_chars
        self.items: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.keys: set[str] = set()
        self.errors: list[InputError] = []
        self.skipped = {"length": 0, "duplicate": 0}

    def add(self, key: str, latex: str, origin: dict[str, Any], filter_length: bool = True) -> None:
        latex = latex.strip()
        if filter_length and not self.min_chars <= len(latex) <= self.max_chars:
            self.skipped["length"] += 1
            return
        try:
            identity = normalize_latex(latex)
        except FormulaError:
            identity = latex  # it fails again, and is logged, when its batch runs
        if identity in self.seen:
            self.skipped["duplicate"] += 1
            return
        self.seen.add(identity)
        while key in self.keys:
            key += "_"
        self.keys.add(key)
        self.items.append({"key": key, "latex": latex, "origin": origin})


def add_tex_source(candidates: Candidates, name: str, text: str) -> None:
    try:
        lifted = extract_display_math(text)
    except FormulaError as exn:
        candidates.errors.append(InputError(name, "extract", str(exn), exception="FormulaError"))
        return
    stem = safe_key(name)
    for number, formula in enumerate(lifted):
        candidates.add(f"formula-{stem}-{number:04d}", formula.latex,
                       {"input": name, "environment": formula.environment, "number": number})


def lifted_latex(record: dict[str, Any]) -> str | None:
    """A lifted formula's LaTeX: `latex`, or doc2md's `tex` rows (several rows become a `gathered` block)."""
    if isinstance(record.get("latex"), str):
        return record["latex"]
    rows = record.get("tex")
    if isinstance(rows, list) and rows and all(isinstance(row, str) for row in rows):
        return rows[0] if len(rows) == 1 else "\\begin{gathered}" + " \\\\ ".join(rows) + "\\end{gathered}"
    return None


def add_lifted_jsonl(candidates: Candidates, name: str, text: str) -> None:
    """doc2md's side output: `{"paper", "kind": "formula"|"table", "latex" or "tex": [rows], ...}` per line."""
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{line_number}"
        try:
            record = json.loads(line)
        except ValueError as exn:
            candidates.errors.append(InputError(where, "read lifted", f"not JSON ({exn})", exception="JSONDecodeError"))
            continue
        if not isinstance(record, dict) or record.get("kind") not in ("formula", "table"):
            candidates.errors.append(InputError(where, "read lifted", "expected an object with kind formula or table"))
            continue
        if record["kind"] != "formula":
            continue
        latex = lifted_latex(record)
        if latex is None:
            candidates.errors.append(InputError(where, "read lifted", "a formula needs a 'latex' string or 'tex' rows"))
            continue
        paper = str(record.get("paper", posixpath.basename(name)))
        candidates.add(f"formula-{safe_key(paper)}-l{line_number:05d}", latex,
                       {"input": where, "paper": paper, "environment": "lifted"})


def collect_arxiv(urls: list[str], candidates: Candidates) -> None:
    for source in iter_arxiv_inputs(urls, candidates.errors):
        if source.lifted:
            add_lifted_jsonl(candidates, source.name, source.text)
        else:
            add_tex_source(candidates, source.name, source.text)


def collect_list(urls: list[str], candidates: Candidates) -> None:
    for url in urls:
        folder = Folder(posixpath.dirname(url))
        base = posixpath.basename(url)
        if not folder.exists(base):
            raise FileNotFoundError(f"--input {url}: no such file")
        stem = safe_key(posixpath.splitext(base)[0])
        for number, line in enumerate(decode_text(folder.read_bytes(base)).split("\n")):
            if line.strip():
                candidates.add(f"formula-{stem}-{number:07d}", line, {"input": url, "line": number},
                               filter_length=False)


class FormulasJob(Job):
    name = "formulas"

    def __init__(self, source: str, inputs: list[str] | None = None, count: int = 0, seed: int = 0,
                 batch_size: int = 64, batches_per_task: int = 2, min_chars: int = 40, max_chars: int = 1024,
                 dpi: int = 200, timeout_s: float = 120.0, name: str | None = None):
        if source not in SOURCES:
            raise ValueError(f"--source {source}: choose from {', '.join(SOURCES)}")
        if batch_size < 1 or batches_per_task < 1:
            raise ValueError("--batch-size and --batches-per-task must be at least 1")
        self.source = source
        self.inputs = [absolute_url(u) for u in inputs or []]
        self.count = count
        self.seed = seed
        self.batch_size = batch_size
        self.batches_per_task = batches_per_task
        self.min_chars, self.max_chars = min_chars, max_chars
        self.options = RenderOptions(dpi=dpi, timeout_s=timeout_s)
        self.dataset = name or f"formulas-{source}"

    def config(self) -> dict[str, Any]:
        return {"source": self.source, "inputs": self.inputs, "count": self.count, "seed": self.seed,
                "batch_size": self.batch_size, "batches_per_task": self.batches_per_task, "min_chars": self.min_chars,
                "max_chars": self.max_chars, "dpi": self.options.dpi, "timeout_s": self.options.timeout_s,
                "name": self.dataset}

    def plan(self) -> Plan:
        candidates = Candidates(self.min_chars, self.max_chars)
        if self.source == "generated":
            if self.count < 1:
                raise ValueError("--count must be at least 1 for --source generated")
            for index in range(self.count):
                seed = formula_seed(self.seed, index)
                candidates.add(f"formula-gen-s{self.seed}-{index:09d}", generate_formula(seed),
                               {"generator": "docforge.synth.formula_grammar", "seed": seed, "index": index},
                               filter_length=False)
        elif not self.inputs:
            raise ValueError(f"--source {self.source} needs --input")
        elif self.source == "arxiv":
            collect_arxiv(self.inputs, candidates)
        else:
            collect_list(self.inputs, candidates)
        batches = [candidates.items[i:i + self.batch_size] for i in range(0, len(candidates.items), self.batch_size)]
        tasks = [Task(t, batches[start:start + self.batches_per_task])
                 for t, start in enumerate(range(0, len(batches), self.batches_per_task))]
        return Plan(tasks, candidates.errors)

    def describe(self, item: list[dict[str, Any]]) -> str:
        return f"batch of {len(item)} formulas from {item[0]['key']}" if item else "empty batch"

    def process(self, item: list[dict[str, Any]], task_index: int) -> Iterator[dict[str, Any] | InputError]:
        ready, normalized = [], []
        for formula in item:
            try:
                check_formula_safe(formula["latex"])
                normalized.append(normalize_latex(formula["latex"]))
                ready.append(formula)
            except FormulaError as exn:
                yield InputError(self.where(formula), "check", str(exn), exception="FormulaError")
        result = render_formulas(normalized, self.options)
        for position, formula in enumerate(ready):
            if position in result.failures:
                yield InputError(self.where(formula), "render", result.failures[position], exception="FormulaError")
                continue
            image = result.images[position]
            record = {
                "family": "formula",
                "source": self.dataset,
                "image": {"width": image.width, "height": image.height, "format": "png"},
                "latex": normalized[position],
                "latex_raw": formula["latex"],
                "origin": formula["origin"],
                "render": {"engine": "pdflatex", "dpi": self.options.dpi, "pad": self.options.pad,
                           "batch": len(ready), "batch_runs": result.runs},
                "provenance": {"generator": GENERATOR, "job_source": self.source, "version": code_version()},
            }
            yield {"__key__": formula["key"], "png": image.png, "tex": normalized[position], "json": record}

    @staticmethod
    def where(formula: dict[str, Any]) -> str:
        return f"{formula['key']} ({formula['origin'].get('input', 'generated')}): {formula['latex'][:120]}"


def add_formulas_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=SOURCES, required=True,
                        help="arxiv: .tex files/folders/tarballs and lifted/*.jsonl; list: one formula per line; "
                             "generated: from a grammar")
    parser.add_argument("--input", nargs="+", metavar="URL", help="inputs for --source arxiv or list")
    parser.add_argument("--count", type=int, default=0, help="formulas to generate (--source generated)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --source generated")
    parser.add_argument("--batch-size", type=int, default=64, help="formulas per pdflatex run (default: 64)")
    parser.add_argument("--batches-per-task", type=int, default=2, help="batches per Ray task (default: 2)")
    parser.add_argument("--min-chars", type=int, default=40, help="shortest lifted arXiv formula kept (default: 40)")
    parser.add_argument("--max-chars", type=int, default=1024, help="longest lifted arXiv formula kept (default: 1024)")
    parser.add_argument("--dpi", type=int, default=200, help="rendering resolution (default: 200, as im2markup)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one pdflatex run may take (default: 120)")
    parser.add_argument("--name", help="dataset name in records (default: formulas-SOURCE)")


def make_formulas_job(args: argparse.Namespace) -> FormulasJob:
    return FormulasJob(args.source, args.input, args.count, args.seed, args.batch_size, args.batches_per_task,
                       args.min_chars, args.max_chars, args.dpi, args.timeout, args.name)
