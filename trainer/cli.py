"""`docforge train RECIPE [--stage 1|2|3|all] [--resume [--reshard]]`: the trainer's command, added to the `docforge` CLI."""

from __future__ import annotations

import argparse

from rich.console import Console

TRAIN_EXAMPLES = """examples:
  docforge train trainer/recipes/tiny.yaml                      # all stages, one CPU process
  docforge train trainer/recipes/tiny.yaml --stage 2 --resume   # continue stage 2 from its newest checkpoint
  torchrun --nproc_per_node=8 --no-python docforge train trainer/recipes/inf-mllm2-7b.yaml
  torchrun --nproc_per_node=4 --no-python docforge train RECIPE --resume --reshard   # a run saved by 8 ranks
each stage writes OUTPUT/stageN/{log.jsonl,checkpoints/,final/}; stage N+1 starts from stage N's final/.
a recipe's tokenizer, model and init paths may be fsspec URLs (s3://...): fetched once per node into
OUTPUT/.fetched/.
exit status: 0 when the stages finished, 1 on a training error, 2 for a bad recipe or a refused start.
"""


def add_train_command(commands, formatter) -> None:
    train = commands.add_parser("train", help="train the VLM through a recipe's stages (projector, all, SFT)",
                                epilog=TRAIN_EXAMPLES, formatter_class=formatter)
    train.add_argument("recipe", metavar="RECIPE.yaml")
    train.add_argument("--stage", default="all", choices=["1", "2", "3", "all"],
                       help="the stage to train (default: all, in order)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint; finished stages are kept")
    train.add_argument("--reshard", action="store_true",
                       help="with --resume: continue a checkpoint saved by another number of ranks (weights and "
                            "optimizer resharded; every sample not yet trained in the pass still is, once)")
    train.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from transformers.utils import logging as transformers_logging

    from mixtures.manifest import ManifestError
    from trainer.checkpoint import WorldSizeChanged
    from trainer.recipe import RecipeError
    from trainer.stop_request import Stopped
    from trainer.train import run_recipe

    transformers_logging.disable_progress_bar()
    errors = Console(stderr=True)
    if args.reshard and not args.resume:
        errors.print("docforge train: --reshard continues a checkpoint: give --resume too", style="red")
        return 2
    try:
        outputs = run_recipe(args.recipe, args.stage, args.resume, args.reshard)
    except (RecipeError, ManifestError, FileExistsError, FileNotFoundError, WorldSizeChanged) as exn:
        errors.print(f"docforge train: {exn}", style="red", highlight=False, markup=False)
        return 2
    except Stopped as exn:
        errors.print(str(exn), style="yellow", highlight=False, markup=False)
        return 143  # 128 + SIGTERM, as a process the signal ended
    except KeyboardInterrupt:
        errors.print("interrupted: rerun the same command with --resume to continue from the newest checkpoint",
                     style="yellow")
        return 130
    for folder in outputs:
        console.print(f"model: {folder}", highlight=False)
    return 0
