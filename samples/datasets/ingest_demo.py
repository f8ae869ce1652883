"""`make demo`'s stage-3 step: `docforge build ingest` of every bundled format sample and `docforge build
kie` (synthetic receipts and forms, en and zh), then `shards verify` of each.

    .venv/bin/python samples/datasets/ingest_demo.py DEMO_OUT

Runs the real CLI (`pipelines.cli.main`) once per build in one process, so the 18 builds share one
embedded Ray instead of starting 18; writes DEMO_OUT/stage3/NAME. Exit status 1 if a build or a
verification fails. Run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.cli import main as docforge

DATASETS = "samples/datasets"
BUILDS = {  # output name: the ingest arguments
    "doclaynet": ["--format", "doclaynet", "--input", f"{DATASETS}/doclaynet/COCO/train.json",
                  "--images", f"{DATASETS}/doclaynet/PNG"],
    "cdla": ["--format", "cdla", "--input", f"{DATASETS}/cdla/train"],
    "funsd": ["--format", "funsd", "--input", f"{DATASETS}/funsd/training_data/annotations",
              "--images", f"{DATASETS}/funsd/training_data/images"],
    "xfund": ["--format", "xfund", "--input", f"{DATASETS}/xfund/zh.train.json", "--images", f"{DATASETS}/xfund/zh.train"],
    "sroie": ["--format", "sroie", "--input", f"{DATASETS}/sroie/train"],
    "wildreceipt": ["--format", "wildreceipt", "--input", f"{DATASETS}/wildreceipt/train.txt"],
    "docvqa": ["--format", "docvqa", "--input", f"{DATASETS}/docvqa/train_v1.0.json"],
    "infovqa": ["--format", "infovqa", "--input", f"{DATASETS}/infovqa/infographicVQA_train_v1.0.json",
                "--images", f"{DATASETS}/infovqa/infographicVQA_train_v1.0_images"],
    "chartqa": ["--format", "chartqa", "--input", f"{DATASETS}/chartqa/train/train_human.json",
                "--images", f"{DATASETS}/chartqa/train/png"],
    "textvqa": ["--format", "textvqa", "--input", f"{DATASETS}/textvqa/TextVQA_0.5.1_train.json",
                "--images", f"{DATASETS}/textvqa/train_images"],
    "pubtabnet": ["--format", "pubtabnet", "--input", f"{DATASETS}/pubtabnet/PubTabNet_2.0.0.jsonl",
                  "--images", f"{DATASETS}/pubtabnet"],
    "im2latex": ["--format", "im2latex", "--formulas", f"{DATASETS}/im2latex/im2latex_formulas.lst",
                 "--input", f"{DATASETS}/im2latex/im2latex_train.lst", f"{DATASETS}/im2latex/im2latex_validate_filter.lst",
                 "--images", f"{DATASETS}/im2latex/formula_images"],
    "crohme": ["--format", "crohme", "--input", f"{DATASETS}/crohme"],
    "ocrvqa": ["--format", "ocrvqa", "--input", f"{DATASETS}/ocrvqa/dataset.json", "--split", "train"],
    "mmtab": ["--format", "mmtab", "--input", f"{DATASETS}/mmtab/MMTab-pre_pretrain_data_llava_format_150K.json",
              "--images", f"{DATASETS}/mmtab/images"],
    "anyword": ["--format", "anyword", "--input", f"{DATASETS}/anyword"],
}
SYNTHETIC_KIE = {"kie-synth-en": ["--lang", "en", "--count", "12"], "kie-synth-zh": ["--lang", "zh", "--count", "12"]}


def run_builds(out: Path, commands: dict[str, list[str]]) -> list[str]:
    """`docforge build COMMAND --output OUT/NAME` for each (name, command), in this process, then `shards verify`
    of each; the steps that failed."""
    failed = []
    for name, command in commands.items():
        print(f"==> build {command[0]} {name}: -> {out / name}", flush=True)
        if docforge(["build", *command, "--output", str(out / name)]) != 0:
            failed.append(f"build {name}")
    for name in commands:
        if docforge(["shards", "verify", str(out / name)]) != 0:
            failed.append(f"verify {name}")
    return failed


def stage3_commands() -> dict[str, list[str]]:
    """The `docforge build` arguments of each stage-3 dataset, by output name."""
    commands = {name: ["ingest", *arguments, "--source", f"demo-{name}", "--no-progress"]
                for name, arguments in BUILDS.items()}
    commands.update({name: ["kie", *arguments, "--no-progress"] for name, arguments in SYNTHETIC_KIE.items()})
    return commands


def outcome(failed: list[str], what: str) -> int:
    """The exit status of a run whose `failed` steps are listed (named on stderr)."""
    if failed:
        print(f"{what} failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run(out: Path) -> int:
    return outcome(run_builds(out, stage3_commands()), "stage-3 ingest demo")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python samples/datasets/ingest_demo.py DEMO_OUT")
    sys.exit(run(Path(sys.argv[1]) / "stage3"))
