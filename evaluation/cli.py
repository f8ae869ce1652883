"""`docforge eval {doc2md,table,formula} --pred P --gold G [--out scores.json]`: score predictions.

P and G are each a JSONL of `{"key", "text"}` lines, a folder of `KEY.md`/`KEY.html`/`KEY.tex` files,
or a docforge shard dataset (its `KEY.md`/`.html`/`.tex` members). Samples are paired by key; a gold
sample without a prediction scores as an empty prediction. Prints the paper's metrics, writes the
per-sample scores with `--out`.
"""

from __future__ import annotations

import argparse
import json
import posixpath
from typing import Any

from evaluation.edit_distance import normalized_edit_distance, token_edit_accuracy
from evaluation.teds import teds

TARGET_EXTENSIONS = {"doc2md": "md", "table": "html", "formula": "tex"}

EXAMPLES = """examples:
  docforge eval table --pred predictions.jsonl --gold demo-out/tables-en --out table-scores.json
  docforge eval formula --pred preds/ --gold demo-out/formulas
  docforge eval doc2md --pred model-md/ --gold /shards/doc2md-test
metrics: doc2md: Nougat's normalised edit distance (lower is better); table: TEDS and structure-only TEDS
(PubTabNet), edit distance; formula: im2markup's token edit accuracy on normalised LaTeX, edit distance,
exact match.
"""


class EvalInputError(ValueError):
    """A prediction or reference set that cannot be read; the message names the file and line."""


def read_jsonl_texts(url: str) -> dict[str, str]:
    from pipelines.storage import open_url

    texts = {}
    with open_url(url, "rb") as f:
        for number, line in enumerate(f.read().decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, text = record["key"], record["text"]
            except (ValueError, KeyError, TypeError) as exn:
                raise EvalInputError(f"{url}:{number}: expected a JSON object with 'key' and 'text'") from exn
            texts[str(key)] = str(text)
    return texts


def read_texts(url: str, extension: str) -> dict[str, str]:
    """Key -> text of a JSONL file, a folder of KEY.EXT files, or a shard dataset (index.json)."""
    from pipelines.shard_reader import intact_samples
    from pipelines.shards import read_index
    from pipelines.storage import Folder

    if url.endswith(".jsonl"):
        return read_jsonl_texts(url)
    folder = Folder(url)
    if not folder.fs.isdir(folder.root):
        raise EvalInputError(f"{url}: not a .jsonl file, a folder of .{extension} files or a shard dataset")
    if folder.exists("index.json"):
        texts = {}
        for shard in read_index(folder)["shards"]:
            for sample in intact_samples(folder, shard["name"]):
                if extension in sample:
                    texts[sample["__key__"]] = sample[extension].decode("utf-8")
        return texts
    return {posixpath.basename(rel)[:-len(extension) - 1]: folder.read_bytes(rel).decode("utf-8")
            for rel in folder.find() if rel.endswith(f".{extension}")}


def formula_tokens(latex: str) -> list[str]:
    """Normalised LaTeX tokens (im2markup compares whitespace-separated normalised tokens)."""
    from synth.formulas import FormulaError, normalize_latex

    try:
        return normalize_latex(latex).split()
    except FormulaError:
        return latex.split()


def score_pairs(task: str, pairs: list[tuple[str, str, str]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(corpus metrics, per-sample scores) for (key, pred, gold) triples."""
    samples = []
    for key, pred, gold in pairs:
        sample: dict[str, Any] = {"key": key, "edit_distance": normalized_edit_distance(pred, gold)}
        if task == "table":
            sample["teds"] = teds(pred, gold)
            sample["teds_struct"] = teds(pred, gold, structure_only=True)
        elif task == "formula":
            sample["pred_tokens"], sample["gold_tokens"] = formula_tokens(pred), formula_tokens(gold)
            sample["exact"] = sample["pred_tokens"] == sample["gold_tokens"]
        samples.append(sample)

    def mean(name: str) -> float:
        return sum(float(s[name]) for s in samples) / max(len(samples), 1)

    metrics = {"edit_distance": mean("edit_distance")}
    if task == "table":
        metrics.update(teds=mean("teds"), teds_struct=mean("teds_struct"))
    elif task == "formula":
        metrics.update(token_edit_accuracy=token_edit_accuracy([(s["pred_tokens"], s["gold_tokens"]) for s in samples]),
                       exact_match=mean("exact"))
        for s in samples:
            del s["pred_tokens"], s["gold_tokens"]
    return metrics, samples


def evaluate(task: str, pred_url: str, gold_url: str) -> dict[str, Any]:
    extension = TARGET_EXTENSIONS[task]
    preds, golds = read_texts(pred_url, extension), read_texts(gold_url, extension)
    if not golds:
        raise EvalInputError(f"{gold_url}: no .{extension} references")
    missing = sorted(set(golds) - set(preds))
    pairs = [(key, preds.get(key, ""), golds[key]) for key in sorted(golds)]
    metrics, samples = score_pairs(task, pairs)
    return {"task": task, "pred": pred_url, "gold": gold_url, "count": len(pairs), "missing_predictions": len(missing),
            "extra_predictions": len(set(preds) - set(golds)), "metrics": metrics, "samples": samples}


def cmd_eval(args: argparse.Namespace, console) -> int:
    from rich.console import Console
    from rich.table import Table

    try:
        report = evaluate(args.task, args.pred, args.gold)
    except (EvalInputError, FileNotFoundError, ValueError) as exn:
        Console(stderr=True).print(f"[red]docforge eval {args.task}: {exn}", highlight=False)
        return 2
    table = Table(title=f"docforge eval {args.task}: {report['count']} samples "
                        f"({report['missing_predictions']} without a prediction)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    if args.out:
        from pipelines.storage import open_url

        with open_url(args.out, "wb") as f:
            f.write(json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"))
    return 0


def add_eval_command(subparsers, formatter=argparse.RawDescriptionHelpFormatter) -> None:
    parser = subparsers.add_parser("eval", help="score predictions: edit distance, TEDS, token edit accuracy",
                                   epilog=EXAMPLES, formatter_class=formatter)
    parser.add_argument("task", choices=sorted(TARGET_EXTENSIONS), help="what the predictions are")
    parser.add_argument("--pred", required=True, metavar="URL",
                        help="predictions: JSONL {key, text}, folder or dataset")
    parser.add_argument("--gold", required=True, metavar="URL", help="references: JSONL {key, text}, folder or dataset")
    parser.add_argument("--out", metavar="URL", help="write the metrics and per-sample scores as JSON")
    parser.set_defaults(func=cmd_eval)
