"""`docforge build ingest`: turn existing public datasets into docforge shards, one module per format.

Formats: `img2dataset` (caption folders or tars: CC3M/CC12M, LAION, CapsFusion) and `llava`
(conversation JSON + image folder: LLaVA-665k, ShareGPT4V). Each returns a `Job` for the runner.
"""

from __future__ import annotations

import argparse
import posixpath

from pipelines.ingest.img2dataset import Img2datasetIngest
from pipelines.ingest.llava import LlavaIngest
from pipelines.job import Job

FORMATS = ("img2dataset", "llava")

EXAMPLES = """examples:
  # img2dataset output (folders or .tar shards of .jpg + .txt [+ .json]) -> caption shards
  docforge build ingest --format img2dataset --input /data/cc3m --output /shards/cc3m --source cc3m
  # LLaVA conversation JSON + its image folder, written to object storage
  docforge build ingest --format llava --input llava_v1_5_mix665k.json --images /data/llava \\
      --output s3://bucket/shards/llava665k --source llava665k --address auto
"""


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="input dataset format")
    parser.add_argument("--input", required=True, nargs="+", metavar="URL",
                        help="input folder/file URL(s): img2dataset takes one folder; llava takes JSON/JSONL files or folders")
    parser.add_argument("--images", metavar="URL", help="llava: the folder that the records' image paths are relative to")
    parser.add_argument("--source", help="dataset name used in sample keys and records (default: the input's name)")
    parser.add_argument("--lang", default="en", help="language of the text (default: en)")
    parser.add_argument("--items-per-task", type=int, default=1000, help="inputs per Ray task (default: 1000)")


def make_ingest_job(args: argparse.Namespace) -> Job:
    source = args.source or posixpath.splitext(posixpath.basename(args.input[0].rstrip("/")))[0] or args.format
    if args.format == "img2dataset":
        if len(args.input) != 1:
            raise ValueError("--format img2dataset takes one --input folder")
        return Img2datasetIngest(args.input[0], source, args.lang, args.items_per_task)
    return LlavaIngest(args.input, args.images, source, args.lang, args.items_per_task)
