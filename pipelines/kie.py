"""`docforge build kie`: synthetic key-information documents (receipts and forms, English and Chinese).

The job splits N documents into blocks of seeds (one Ray task each); document i is
`synth.kie_documents.render_kie_document` of kind `kinds[i % len(kinds)]`, the fonts and a seed derived
from (job seed, i), so any document can be regenerated alone. Each sample: `KEY.jpg` and `KEY.json`
with `fields` (what the `kie` task answers), `entities` (FUNSD labels, pixel boxes) and `links`, the
same record shape as the FUNSD/XFUND ingest.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version
from pipelines.ocr import default_fonts, find_fonts, page_seed
from synth.errors import SynthError
from synth.fonts import usable_fonts
from synth.kie_documents import GENERATOR, GENERATOR_VERSION, KINDS, render_kie_document, template_text

EXAMPLES = """examples:
  # 5,000 English receipts and forms from Debian's fonts
  docforge build kie --lang en --count 5000 --output /shards/kie-synth-en
  # Chinese receipts only, on a cluster
  docforge build kie --lang zh --kinds receipt --count 100000 --output s3://bucket/shards/kie-synth-zh --address auto
"""


class KieJob(Job):
    name = "kie"

    def __init__(self, lang: str, count: int, fonts: list[str], kinds: tuple[str, ...] = KINDS, seed: int = 0,
                 docs_per_task: int = 100, source: str | None = None):
        self.lang = lang
        self.count = count
        self.fonts = fonts
        self.kinds = tuple(kinds)
        self.seed = seed
        self.docs_per_task = docs_per_task
        self.source = source or f"kie-synth-{lang}"

    def config(self) -> dict[str, Any]:
        return {"lang": self.lang, "count": self.count, "fonts": self.fonts, "kinds": list(self.kinds),
                "seed": self.seed, "docs_per_task": self.docs_per_task, "source": self.source}

    def plan(self) -> Plan:
        if self.count < 1:
            raise ValueError("--count must be at least 1")
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"--kinds must name some of {', '.join(KINDS)}, got {', '.join(self.kinds) or 'none'}")
        try:
            usable = usable_fonts(self.fonts, template_text(self.lang))
        except SynthError as exn:
            raise ValueError(str(exn)) from exn
        if len(usable) != len(self.fonts):
            lacking = ", ".join(Path(f).name for f in self.fonts if f not in usable)
            raise ValueError(f"fonts without glyphs for the {self.lang} templates: {lacking}")
        return Plan(chunk_into_tasks(list(range(self.count)), self.docs_per_task))

    def describe(self, item: int) -> str:
        return f"{self.source} document {item} (seed {page_seed(self.seed, item)})"

    def process(self, item: int, task_index: int) -> Iterator[dict[str, Any] | InputError]:
        seed = page_seed(self.seed, item)
        document = render_kie_document(self.kinds[item % len(self.kinds)], self.lang, self.fonts, seed)
        record = {
            "family": "kie",
            "lang": self.lang,
            "source": self.source,
            "kind": document.kind,
            "image": {"width": document.width, "height": document.height, "format": "jpg"},
            "fields": document.fields,
            "entities": document.entities,
            "links": document.links,
            "provenance": {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
                           "job_seed": self.seed, "index": item, "version": code_version()},
        }
        yield {"__key__": f"kie-{self.lang}-s{self.seed}-{item:09d}", "jpg": document.jpeg, "json": record}


def add_kie_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="document language (default: en)")
    parser.add_argument("--count", type=int, required=True, help="documents to generate")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="document kinds, taken in turn (default: receipt form)")
    parser.add_argument("--fonts", nargs="+", metavar="PATH",
                        help="font files or folders (default: Debian's DejaVu/Noto for en, Noto CJK/WenQuanYi for zh)")
    parser.add_argument("--seed", type=int, default=0, help="job seed: document i uses a seed derived from (seed, i)")
    parser.add_argument("--docs-per-task", type=int, default=100, help="documents per Ray task (default: 100)")
    parser.add_argument("--source", help="dataset name in records (default: kie-synth-LANG)")


def make_kie_job(args: argparse.Namespace) -> KieJob:
    """The job over the given (or default) fonts that can draw every character of the templates."""
    fonts = find_fonts(args.fonts) if args.fonts else default_fonts(args.lang)
    if not fonts:
        raise FileNotFoundError(f"--fonts {' '.join(args.fonts)}: no .ttf/.otf/.ttc files")
    try:
        usable = usable_fonts(fonts, template_text(args.lang))
    except SynthError as exn:
        raise ValueError(str(exn)) from exn
    if not usable:
        names = ", ".join(Path(f).name for f in fonts[:8]) + (" ..." if len(fonts) > 8 else "")
        raise ValueError(f"none of the fonts ({names}) has glyphs for every character of the {args.lang} templates")
    fonts = usable
    return KieJob(args.lang, args.count, fonts, tuple(args.kinds), args.seed, args.docs_per_task, args.source)
