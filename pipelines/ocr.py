"""`docforge build ocr`: synthetic OCR pages (SynthDoG-style, English and Chinese) as a Ray job.

The job splits N pages into blocks of seeds (one Ray task each); page i is `synth.text_page.render_page`
of the corpus, the fonts and a seed derived from (job seed, i), so any page can be regenerated alone.
Each sample: `KEY.jpg` (the page), `KEY.txt` (its text in reading order) and `KEY.json` (word and line
boxes, font, lang, seed, generator version). Corpora are plain text or JSONL (`text` field) files.
"""

from __future__ import annotations

import argparse
import hashlib
import posixpath
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from pipelines.corpus_store import MappedCorpus, prepare_corpus
from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version
from pipelines.storage import Folder, absolute_url

CORPORA = Path(__file__).resolve().parents[1] / "synth" / "corpora"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# Debian's font packages installed by `make install`: Latin faces for en, CJK faces for zh (Noto CJK,
# WenQuanYi, and AR PL's Kaiti and Song for GB text). The Latin faces are DejaVu and Liberation (metric
# twins of Arial, Times and Courier): FreeType draws them 5-8x faster than Noto Sans/Serif, whose hinting
# bytecode made Noto half of an English page's CPU time (tests/benchmarks/bench_ocr.py --per-font);
# `--fonts` takes any others.
DEFAULT_FONT_NAMES = {
    "en": ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif-Italic.ttf",
           "DejaVuSansCondensed.ttf", "DejaVuSerifCondensed.ttf", "LiberationSans-Regular.ttf",
           "LiberationSans-Bold.ttf", "LiberationSerif-Regular.ttf", "LiberationSerif-Italic.ttf",
           "LiberationSerif-Bold.ttf", "LiberationMono-Regular.ttf"),
    "zh": ("NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", "wqy-microhei.ttc",
           "wqy-zenhei.ttc", "gkai00mp.ttf", "gbsn00lp.ttf"),
}

EXAMPLES = """examples:
  # 10,000 English pages from the shipped corpus and Debian's fonts
  docforge build ocr --lang en --count 10000 --output /shards/synthdog-en
  # Chinese pages from your own corpus and fonts, on a cluster
  docforge build ocr --lang zh --corpus s3://bucket/zh-wiki.jsonl --fonts /fonts/cjk --count 500000 \\
      --output s3://bucket/shards/synthdog-zh --address auto
"""


def read_corpus(urls: list[str]) -> str:
    """The whole text of the corpus files (`pipelines.corpus_store`): for small corpora and tests."""
    return prepare_corpus(urls)[:]


@lru_cache(maxsize=8)
def cached_corpus(urls: tuple[str, ...]) -> MappedCorpus:
    """The corpus prepared on this machine and memory-mapped, once per Ray worker process."""
    return prepare_corpus(list(urls))


def find_fonts(locations: list[str]) -> list[str]:
    """Font files (.ttf/.otf/.ttc) in the given files or folders, sorted; a location that does not exist is an error."""
    fonts = []
    for location in locations:
        path = Path(location)
        if path.is_file():
            fonts.append(str(path))
        elif path.is_dir():
            fonts += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
        else:
            raise FileNotFoundError(f"--fonts {location}: no such file or folder")
    return fonts


def default_fonts(lang: str) -> list[str]:
    """The system fonts docforge uses for `lang` when no --fonts are given (installed by `make install`)."""
    wanted = set(DEFAULT_FONT_NAMES["zh" if lang == "zh" else "en"])
    found = [f for d in SYSTEM_FONT_DIRS if Path(d).is_dir() for f in find_fonts([d]) if Path(f).name in wanted]
    if not found:
        raise FileNotFoundError(f"no default {lang} fonts ({', '.join(sorted(wanted))}) under {SYSTEM_FONT_DIRS}: "
                                "run `make install` or pass --fonts")
    return sorted(found)


def page_seed(job_seed: int, index: int) -> int:
    """The seed of page `index`: a stable hash of (job seed, index), so pages do not share random streams."""
    digest = hashlib.sha256(f"docforge-ocr:{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class OcrJob(Job):
    name = "ocr"

    def __init__(self, lang: str, count: int, corpus: list[str], fonts: list[str], seed: int = 0,
                 pages_per_task: int = 50, backgrounds: str | None = None, source: str | None = None):
        self.lang = lang
        self.count = count
        self.corpus = [absolute_url(u) for u in corpus]
        self.fonts = fonts
        self.seed = seed
        self.pages_per_task = pages_per_task
        self.backgrounds = absolute_url(backgrounds) if backgrounds else None
        self.source = source or f"synthdog-{lang}"

    def config(self) -> dict[str, Any]:
        return {"lang": self.lang, "count": self.count, "corpus": self.corpus, "fonts": self.fonts, "seed": self.seed,
                "pages_per_task": self.pages_per_task, "backgrounds": self.backgrounds, "source": self.source}

    def plan(self) -> Plan:
        from synth.text_layout import iter_tokens
        from synth.text_page import SynthError, font_choices

        if self.count < 1:
            raise ValueError("--count must be at least 1")
        corpus = cached_corpus(tuple(self.corpus))
        try:
            font_choices(self.fonts, list(islice(iter_tokens(corpus, 0, self.lang), 400)))
        except SynthError as exn:
            raise ValueError(f"the corpus's first 400 words: {exn}") from exn
        return Plan(chunk_into_tasks(list(range(self.count)), self.pages_per_task))

    def describe(self, item: int) -> str:
        return f"{self.source} page {item} (seed {page_seed(self.seed, item)})"

    def process(self, item: int, task_index: int) -> Iterator[dict[str, Any] | InputError]:
        from synth.text_page import GENERATOR, GENERATOR_VERSION, PageConfig, render_page

        seed = page_seed(self.seed, item)
        page = render_page(cached_corpus(tuple(self.corpus)), self.fonts, seed, PageConfig(lang=self.lang),
                           backgrounds=cached_backgrounds(self.backgrounds))
        record = {
            "family": "ocr",
            "lang": self.lang,
            "source": self.source,
            "image": {"width": page.image.width, "height": page.image.height, "format": "jpg"},
            "words": page.words,
            "lines": page.lines,
            "render": page.meta,
            "provenance": {"generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
                           "job_seed": self.seed, "index": item, "corpus": self.corpus, "version": code_version()},
        }
        yield {"__key__": f"ocr-{self.lang}-s{self.seed}-{item:09d}", "jpg": page.jpeg, "txt": page.text,
               "json": record}


@lru_cache(maxsize=2)
def cached_backgrounds(url: str | None) -> tuple:
    """User background images (any PIL-readable files in a folder), loaded once per worker."""
    if url is None:
        return ()
    from PIL import Image

    folder = Folder(url)
    images = []
    for rel in folder.find():
        if posixpath.splitext(rel)[1].lower() in (".jpg", ".jpeg", ".png", ".webp"):
            with folder.open(rel, "rb") as f:
                images.append(Image.open(f).convert("RGB"))
    if not images:
        raise FileNotFoundError(f"--backgrounds {url}: no .jpg/.png/.webp images")
    return tuple(images)


def add_ocr_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="page language (default: en)")
    parser.add_argument("--count", type=int, required=True, help="pages to generate")
    parser.add_argument("--corpus", nargs="+", metavar="URL",
                        help="text/JSONL corpus files (default: the corpus shipped for --lang)")
    parser.add_argument("--fonts", nargs="+", metavar="PATH",
                        help="font files or folders (default: Debian's DejaVu/Liberation for en, "
                             "Noto CJK/WenQuanYi/AR PL for zh)")
    parser.add_argument("--backgrounds", metavar="URL", help="folder of background images to place pages on")
    parser.add_argument("--seed", type=int, default=0, help="job seed: page i uses a seed derived from (seed, i)")
    parser.add_argument("--pages-per-task", type=int, default=50, help="pages per Ray task (default: 50)")
    parser.add_argument("--source", help="dataset name in records (default: synthdog-LANG)")


def make_ocr_job(args: argparse.Namespace) -> OcrJob:
    corpus = args.corpus or [str(CORPORA / f"{args.lang}.txt")]
    fonts = find_fonts(args.fonts) if args.fonts else default_fonts(args.lang)
    if not fonts:
        raise FileNotFoundError(f"--fonts {' '.join(args.fonts)}: no .ttf/.otf/.ttc files")
    return OcrJob(args.lang, args.count, corpus, fonts, args.seed, args.pages_per_task, args.backgrounds, args.source)
