"""`docforge build ingest`: turn existing public datasets into docforge shards, one module per format.

Formats: `img2dataset` (caption folders or tars: CC3M/CC12M, LAION, CapsFusion), `llava` (conversation
JSON/JSONL + image folder: LLaVA-665k, ShareGPT4V, mPLUG-DocOwl 1.5's "messages" JSONL; or the Hub's Parquet
files with the images inside: LLaVA-ReCap, LLaVA-OneVision-Data), and the stage-3 task sets, annotation
files + images (`pipelines.ingest.annotated`): layout (`doclaynet`, `cdla`), key information (`funsd`,
`xfund`, `sroie`, `wildreceipt`), QA (`docvqa`, `infovqa`, `chartqa`, `textvqa`, `ocrvqa`), tables
(`pubtabnet`, `mmtab`) and formulas (`im2latex`, `crohme`), Donut-format OCR sets (`donut`: SynthDoG's
output, synthdog-en/zh as folders or the Hub's Parquet files) and AnyText's AnyWord-3M text images
(`anyword`). `BUILDERS` maps each format to the function that makes its `Job` for the runner.
"""

from __future__ import annotations

import argparse
import posixpath
from collections.abc import Callable

from pipelines.ingest.anyword import AnywordIngest
from pipelines.ingest.cdla import CdlaIngest
from pipelines.ingest.crohme import CrohmeIngest
from pipelines.ingest.doclaynet import DoclaynetIngest
from pipelines.ingest.donut import DonutIngest
from pipelines.ingest.funsd import FunsdIngest, XfundIngest
from pipelines.ingest.im2latex import Im2latexIngest
from pipelines.ingest.img2dataset import Img2datasetIngest
from pipelines.ingest.llava import LlavaIngest
from pipelines.ingest.mmtab import MmtabIngest
from pipelines.ingest.pubtabnet import PubtabnetIngest
from pipelines.ingest.sroie import SroieIngest
from pipelines.ingest.vqa import READERS as QA_FORMATS
from pipelines.ingest.vqa import OCRVQA_SPLITS, OcrvqaIngest, VqaIngest
from pipelines.ingest.wildreceipt import WildreceiptIngest
from pipelines.job import Job

ANNOTATED = {"doclaynet": DoclaynetIngest, "cdla": CdlaIngest, "funsd": FunsdIngest, "xfund": XfundIngest,
             "wildreceipt": WildreceiptIngest, "pubtabnet": PubtabnetIngest, "mmtab": MmtabIngest,
             "crohme": CrohmeIngest, "donut": DonutIngest, "anyword": AnywordIngest}

EXAMPLES = """examples:
  # img2dataset output (folders or .tar shards of .jpg + .txt [+ .json]) -> caption shards
  docforge build ingest --format img2dataset --input /data/cc3m --output /shards/cc3m --source cc3m
  # LLaVA conversation JSON + its image folder, written to object storage
  docforge build ingest --format llava --input llava_v1_5_mix665k.json --images /data/llava \\
      --output s3://bucket/shards/llava665k --source llava665k --address auto
  # mPLUG-DocOwl 1.5's JSONL ("messages", <|image|>; image paths relative to the file's folder by default)
  docforge build ingest --format llava --input DocStruct4M/struct_aware_parse.jsonl \\
      DocStruct4M/multi_grained_text_localization.jsonl --output /shards/docstruct4m --source docstruct4m
  # the Hub's Parquet files of a LLaVA-shaped set (id, image {bytes, path}, conversations)
  docforge build ingest --format llava --input LLaVA-ReCap-CC3M/data --output /shards/llava-recap-3m \\
      --source llava-recap-3m
  # layout: DocLayNet's COCO file + page images; CDLA's labelme folder (images beside the JSON)
  docforge build ingest --format doclaynet --input DocLayNet/COCO/train.json --images DocLayNet/PNG \\
      --output /shards/doclaynet
  docforge build ingest --format cdla --input CDLA/train --output /shards/cdla
  # key information: FUNSD (annotations/ + images/), XFUND, SROIE (Kaggle's folder with img/ box/ entities/, or
  # the official release's X*.jpg + X*.txt folder with --entities, the key-field folder), WildReceipt
  docforge build ingest --format funsd --input funsd/training_data/annotations \\
      --images funsd/training_data/images --output /shards/funsd
  docforge build ingest --format xfund --input zh.train.json --images zh.train --output /shards/xfund-zh
  docforge build ingest --format sroie --input SROIE2019/train --output /shards/sroie
  docforge build ingest --format sroie --input "0325updated.task1train(626p)" \\
      --entities "0325updated.task2train(626p)" --output /shards/sroie
  docforge build ingest --format wildreceipt --input wildreceipt/train.txt --output /shards/wildreceipt
  # QA: docvqa | infovqa | chartqa | textvqa (JSON + image folder)
  docforge build ingest --format docvqa --input spdocvqa/train_v1.0.json --output /shards/docvqa
  docforge build ingest --format textvqa --input TextVQA_0.5.1_train.json --images train_images \\
      --output /shards/textvqa
  # OCR-VQA's dataset.json (one --split: train, the default, val or test); covers in images/ beside it,
  # as its loadDataset.py saves them, or LLaVA's copy (IMAGE_ID.jpg) with --images
  docforge build ingest --format ocrvqa --input ocr-vqa/dataset.json --split train --output /shards/ocr-vqa \\
      --source ocr-vqa
  docforge build ingest --format ocrvqa --input ocr-vqa/dataset.json --images llava/ocr_vqa/images \\
      --output /shards/ocr-vqa --source ocr-vqa
  # tables and formulas
  docforge build ingest --format pubtabnet --input PubTabNet_2.0.0.jsonl --images pubtabnet \\
      --output /shards/pubtabnet
  # MMTab-pre's table recognition samples with HTML answers; --images holds table_pretrain_part_1/ (the
  # unzipped IID_train_image/, renamed) and table_pretrain_part_2/, as Table-LLaVA's README lays them out
  docforge build ingest --format mmtab --input MMTab-pre_pretrain_data_llava_format_150K.json \\
      --images LLaVA-Pretrain/images --output /shards/mmtab --source mmtab
  docforge build ingest --format im2latex --formulas im2latex_formulas.lst --input im2latex_train.lst \\
      --images formula_images --output /shards/im2latex-100k
  docforge build ingest --format crohme --input CROHME/train/INKML --output /shards/crohme
  # OCR pages in Donut's format: SynthDoG's output folder, or synthdog-zh's Parquet files from the Hub
  docforge build ingest --format donut --input synthdog-out --output /shards/synthdog-en --source synthdog-en
  docforge build ingest --format donut --input synthdog-zh/data --lang zh --output /shards/synthdog-zh \\
      --source synthdog-zh
  # AnyWord-3M (unzipped: each subset's JSON with its imgs/ beside it): text lines in reading order + boxes
  docforge build ingest --format anyword --input AnyWord-3M --output /shards/anytext-3m --source anytext-3m
"""


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="input dataset format")
    parser.add_argument("--input", required=True, nargs="+", metavar="URL",
                        help="input folder/file URL(s): img2dataset takes one folder; the others take annotation "
                             "files or folders of them")
    parser.add_argument("--images", metavar="URL", help="the folder that the records' image paths are relative to "
                                                        "(default: the annotation file's folder; ocrvqa: its images/)")
    parser.add_argument("--formulas", metavar="URL", help="im2latex: the formulas file (im2latex_formulas.lst)")
    parser.add_argument("--entities", metavar="URL", help="sroie: the folder of key-field NAME.txt files (default: "
                                                          "entities/ beside box/; the official layout needs it)")
    parser.add_argument("--split", choices=tuple(OCRVQA_SPLITS.values()), default="train",
                        help="ocrvqa: the part of dataset.json to ingest, by its records' split code (1 train, 2 val, "
                             "3 test; default: train, what the stage-3 recipe trains on)")
    parser.add_argument("--source", help="dataset name used in sample keys and records (default: the input's name; "
                                         "FORMAT-NAME for a split's name such as train or annotations)")
    parser.add_argument("--lang", help="language of the text (default: en; cdla: zh; xfund: the file's)")
    parser.add_argument("--items-per-task", type=int, default=1000, help="inputs per Ray task (default: 1000)")


def make_img2dataset(args: argparse.Namespace, source: str) -> Job:
    if len(args.input) != 1:
        raise ValueError("--format img2dataset takes one --input folder")
    return Img2datasetIngest(args.input[0], source, args.lang or "en", args.items_per_task)


def make_llava(args: argparse.Namespace, source: str) -> Job:
    return LlavaIngest(args.input, args.images, source, args.lang or "en", args.items_per_task)


def make_im2latex(args: argparse.Namespace, source: str) -> Job:
    return Im2latexIngest(args.formulas, args.input, args.images, source, args.lang, args.items_per_task)


def make_sroie(args: argparse.Namespace, source: str) -> Job:
    return SroieIngest(args.input, args.images, source, args.lang, args.items_per_task, entities_url=args.entities)


def make_ocrvqa(args: argparse.Namespace, source: str) -> Job:
    return OcrvqaIngest(args.input, args.images, source, args.lang, args.items_per_task, split=args.split)


def annotated_builder(job_class: type) -> Callable[[argparse.Namespace, str], Job]:
    return lambda args, source: job_class(args.input, args.images, source, args.lang, args.items_per_task)


def qa_builder(qa_format: str) -> Callable[[argparse.Namespace, str], Job]:
    return lambda args, source: VqaIngest(qa_format, args.input, args.images, source, args.lang, args.items_per_task)


BUILDERS: dict[str, Callable[[argparse.Namespace, str], Job]] = {
    "img2dataset": make_img2dataset,
    "llava": make_llava,
    **{name: annotated_builder(job_class) for name, job_class in ANNOTATED.items()},
    "sroie": make_sroie,
    **{name: qa_builder(name) for name in QA_FORMATS},
    "ocrvqa": make_ocrvqa,
    "im2latex": make_im2latex,
}
FORMATS = tuple(BUILDERS)


# input names that say which part of a dataset it is, not which dataset (DocLayNet's COCO/train.json,
# FUNSD's training_data/annotations): a default source is then FORMAT-NAME
SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing", "dev", "eval", "annotations",
               "training_data", "testing_data", "data", "dataset", "images", "img", "box", "metadata"}


def default_source(args: argparse.Namespace) -> str:
    """The input's name, or `FORMAT-NAME` when the name is a split's or folder's (`doclaynet-train`)."""
    name = posixpath.splitext(posixpath.basename(args.input[0].rstrip("/")))[0]
    if not name:
        return args.format
    return f"{args.format}-{name}" if name.lower() in SPLIT_NAMES else name


def make_ingest_job(args: argparse.Namespace) -> Job:
    return BUILDERS[args.format](args, args.source or default_source(args))
