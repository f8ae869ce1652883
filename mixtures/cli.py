"""`docforge mix check` and `docforge mix preview`: the mixture commands, added to the `docforge` CLI."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mixtures.manifest import ManifestError, load_manifest

CHECK_EXAMPLES = """examples:
  docforge mix check mixtures/demo/stage2.yaml
  docforge mix check mixtures/inf-mllm2/stage2.yaml --samples 50000000 --tokenizer /models/qwen2-7b
exit status: 0 when the manifest is valid and every source is readable and non-empty, 1 otherwise.
"""

PREVIEW_EXAMPLES = """examples:
  docforge mix preview mixtures/demo/stage2.yaml -n 24 --out preview.html
"""


def add_mix_commands(commands, formatter) -> None:
    mix = commands.add_parser("mix", help="check and preview mixture manifests", epilog=CHECK_EXAMPLES,
                              formatter_class=formatter)
    actions = mix.add_subparsers(dest="mix_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a manifest and report what each source contributes",
                               epilog=CHECK_EXAMPLES, formatter_class=formatter)
    check.add_argument("manifest", metavar="FILE")
    check.add_argument("--samples", type=int, help="planned training samples: report the epochs per source")
    check.add_argument("--tokenizer", metavar="PATH", help="local tokenizer (transformers) to estimate text tokens")
    check.set_defaults(func=cmd_check)
    preview = actions.add_parser("preview", help="write the first conversations the trainer would see to HTML",
                                 epilog=PREVIEW_EXAMPLES, formatter_class=formatter)
    preview.add_argument("manifest", metavar="FILE")
    preview.add_argument("-n", "--samples", type=int, default=24, help="conversations to show (default: 24)")
    preview.add_argument("--out", default="preview.html", help="HTML file to write (default: preview.html)")
    preview.set_defaults(func=cmd_preview)


def load_or_report(path: str, console: Console):
    try:
        return load_manifest(path)
    except ManifestError as exn:
        Console(stderr=True).print(str(exn), style="red", highlight=False, markup=False)
        return None


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from mixtures.check import check_mixture

    mixture = load_or_report(args.manifest, console)
    if mixture is None:
        return 1
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    reports = check_mixture(mixture, args.samples, tokenizer)
    table = Table(title=f"{mixture.name} (stage {mixture.stage}, seed {mixture.seed})")
    for column in ("source", "tasks", "shards", "samples", "share", "epochs", "tokens/sample", "tokens"):
        table.add_column(column, justify="left" if column in ("source", "tasks") else "right")
    for r in reports:
        table.add_row(r.name, r.tasks, str(r.shards), f"{r.samples:,}", f"{r.share:.1%}",
                      "-" if r.epochs is None else f"{r.epochs:.2f}",
                      "-" if r.tokens_per_sample is None else f"{r.tokens_per_sample:.0f}",
                      "-" if r.tokens is None else f"{r.tokens:,.0f}")
    wide = console if console.is_terminal else Console(width=200)  # a log or a pipe: no 80-column squeeze
    wide.print(table)
    problems = [(r.name, p) for r in reports for p in r.problems]
    for name, problem in problems:
        console.print(f"[red]{name}: {problem}", highlight=False)
    console.print(f"{mixture.path}: {'OK' if not problems else f'{len(problems)} problem(s)'}", highlight=False)
    return 0 if not problems else 1


def cmd_preview(args: argparse.Namespace, console: Console) -> int:
    from mixtures.preview import preview_mixture

    mixture = load_or_report(args.manifest, console)
    if mixture is None:
        return 1
    page, samples = preview_mixture(mixture, args.samples)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(page)
    console.print(f"{len(samples)} conversations from {mixture.name} -> {args.out}", highlight=False)
    return 0 if samples else 1
