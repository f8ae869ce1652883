"""`docforge build positional`: positional question items about pages that carry word boxes, as a Ray job.

Reads docforge datasets (OCR pages, doc2md pages: any sample whose record has `words`), one Ray task per
input shard, and writes `--per-page` samples per page made by `synth.positional`, seeded from (job seed,
input key): the page image (or, for colour questions, a JPEG of the copy with the rectangles drawn) and
`KEY.json` with the structured items. Prompts are not written: the `positional` task template asks them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import posixpath
import random
from collections.abc import Iterator
from typing import Any

from PIL import Image

from pipelines.images import check_image
from pipelines.job import InputError, Job, Plan, Task, code_version, safe_key
from pipelines.shard_reader import IMAGE_EXTENSIONS, intact_samples
from pipelines.shards import read_index
from pipelines.storage import Folder, absolute_url
from synth.positional import KINDS, PositionalError, make_positional_samples

GENERATOR = "docforge.positional"
JPEG_QUALITY = 90

EXAMPLES = """examples:
  # two positional samples per OCR page (kinds drawn from all four)
  docforge build positional --input /shards/synthdog-en /shards/synthdog-zh --output /shards/positional
  # only grounding and region reading, three questions per sample, on a cluster
  docforge build positional --input s3://bucket/shards/doc2md-en --output s3://bucket/shards/positional-doc \\
      --kinds text_to_region region_to_text --questions 3 --per-page 1 --address auto
kinds: region_to_text (text inside [x1,y1,x2,y2]), text_to_region (grounding), point_to_text (the line under
a point), colour_to_text (rectangles drawn in red/green/blue; the text inside one colour). Coordinates 0-1000.
"""


def page_seed(job_seed: int, key: str) -> int:
    """The seed of one input page: a stable hash of (job seed, input key)."""
    digest = hashlib.sha256(f"docforge-positional:{job_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class PositionalJob(Job):
    name = "positional"

    def __init__(self, input_urls: list[str], source: str = "positional", per_page: int = 2,
                 kinds: list[str] | tuple[str, ...] = KINDS, questions: int = 1, seed: int = 0):
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise ValueError(f"--kinds {unknown or '(none)'}: choose from {', '.join(KINDS)}")
        if per_page < 1 or questions < 1:
            raise ValueError("--per-page and --questions must be at least 1")
        self.inputs = [absolute_url(u) for u in input_urls]
        self.source = source
        self.per_page = per_page
        self.kinds = [k for k in KINDS if k in kinds]
        self.questions = questions
        self.seed = seed

    def config(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "source": self.source, "per_page": self.per_page, "kinds": self.kinds,
                "questions": self.questions, "seed": self.seed}

    def plan(self) -> Plan:
        """One task per input shard, in the order of the inputs and their index.json."""
        tasks = []
        for url in self.inputs:
            for shard in read_index(Folder(url))["shards"]:
                tasks.append(Task(len(tasks), [{"dataset": url, "shard": shard["name"]}]))
        return Plan(tasks)

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['dataset']}/{item['shard']}"

    def key_prefix(self, dataset: str) -> str:
        """Keys say where a sample came from; with several inputs the dataset's name keeps them unique."""
        if len(self.inputs) == 1:
            return safe_key(self.source)
        return f"{safe_key(self.source)}-{safe_key(posixpath.basename(dataset))}"

    def process(self, item: dict[str, Any], task_index: int) -> Iterator[dict[str, Any] | InputError]:
        folder = Folder(item["dataset"])
        url = folder.url_of(item["shard"])
        for member in intact_samples(folder, item["shard"]):
            yield from self.page_samples(item["dataset"], url, member)

    def page_samples(self, dataset: str, url: str, member: dict[str, Any]) -> Iterator[dict[str, Any] | InputError]:
        """The positional samples of one page, nothing for a page without words, an `InputError` for a bad one."""
        key = member["__key__"]
        name = f"{url}:{key}"
        try:
            record = self.read_record(member, name)
            if not record.get("words"):
                return
            image_ext = next((ext for ext in IMAGE_EXTENSIONS if ext in member), None)
            if image_ext is None:
                raise InputError(name, "read image", "the page has words but no image member")
            checked = check_image(member[image_ext], f"{name}.{image_ext}")
            size = record.get("image")
            if isinstance(size, dict) and (size.get("width"), size.get("height")) != (checked.width, checked.height):
                raise InputError(name, "read words", f"the record's image size {size.get('width')}x{size.get('height')} "
                                                     f"is not the image's {checked.width}x{checked.height}")
            rng = random.Random(page_seed(self.seed, key))
            with Image.open(io.BytesIO(checked.data)) as image:
                try:
                    made = make_positional_samples(image, record["words"], record.get("lines"), rng,
                                                   self.per_page, self.kinds, self.questions)
                except PositionalError as exn:
                    raise InputError(name, "read words", str(exn), exception="PositionalError") from exn
        except InputError as exn:
            yield exn
            return
        prefix = self.key_prefix(dataset)
        for k, sample in enumerate(made):
            if sample is None:
                continue
            if sample.image is None:
                ext, data, width, height = checked.ext, checked.data, checked.width, checked.height
            else:
                ext, data, (width, height) = "jpg", jpeg_bytes(sample.image), sample.image.size
            out = {
                "family": "positional",
                "lang": record.get("lang") or "en",
                "source": self.source,
                "image": {"width": width, "height": height, "format": ext},
                "positional": sample.items,
                "provenance": {"input": url, "key": key, "generator": GENERATOR, "version": code_version(),
                               "seed": self.seed},
            }
            if sample.drawn:
                out["drawn"] = sample.drawn
            yield {"__key__": f"{prefix}-{key}-{k}", ext: data, "json": out}

    @staticmethod
    def read_record(member: dict[str, Any], name: str) -> dict[str, Any]:
        if "json" not in member:
            raise InputError(name, "read record", "no .json record")
        try:
            record = json.loads(member["json"].decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exn:
            raise InputError(name, "read record", f"invalid JSON ({exn})", exception=type(exn).__name__) from exn
        if not isinstance(record, dict):
            raise InputError(name, "read record", f"expected a JSON object, got {type(record).__name__}")
        return record


def add_positional_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, nargs="+", metavar="URL",
                        help="docforge dataset folder(s) (with index.json) whose records carry word boxes")
    parser.add_argument("--source", default="positional", help="name used in sample keys and records (default: positional)")
    parser.add_argument("--per-page", type=int, default=2, help="positional samples written per page (default: 2)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), metavar="KIND",
                        help=f"kinds to draw from, one per sample (default: all: {', '.join(KINDS)})")
    parser.add_argument("--questions", type=int, default=1,
                        help="questions per sample, all of its kind, asked as one multi-turn conversation (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="job seed; a page's randomness is (seed, input key) (default: 0)")


def make_positional_job(args: argparse.Namespace) -> Job:
    return PositionalJob(args.input, args.source, args.per_page, args.kinds, args.questions, args.seed)
