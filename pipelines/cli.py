"""The `docforge` command line: `build` jobs, `shards verify`/`show`, `mix check`/`preview`.

Each subcommand parses its flags, builds a `Job` (or opens a dataset) and hands it to the runner;
no logic lives here beyond wiring and exit codes (0 ok, 1 failed tasks or bad shards, 2 bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from pipelines.doc2md.job import EXAMPLES as DOC2MD_EXAMPLES
from pipelines.doc2md.job import add_doc2md_arguments, make_doc2md_job
from pipelines.formulas import EXAMPLES as FORMULAS_EXAMPLES
from pipelines.formulas import add_formulas_arguments, make_formulas_job
from pipelines.ingest import EXAMPLES as INGEST_EXAMPLES
from pipelines.ingest import add_ingest_arguments, make_ingest_job
from pipelines.kie import EXAMPLES as KIE_EXAMPLES
from pipelines.kie import add_kie_arguments, make_kie_job
from pipelines.ocr import EXAMPLES as OCR_EXAMPLES
from pipelines.ocr import add_ocr_arguments, make_ocr_job
from pipelines.positional import EXAMPLES as POSITIONAL_EXAMPLES
from pipelines.positional import add_positional_arguments, make_positional_job
from pipelines.runner import JobConfigMismatch, RunOptions, run_job
from pipelines.tables import EXAMPLES as TABLES_EXAMPLES
from pipelines.tables import add_tables_arguments, make_tables_job

MAIN_EXAMPLES = """examples:
  docforge build ingest --format img2dataset --input samples/img2dataset --output out/captions
  docforge shards verify out/captions
  docforge shards show out/captions -n 2
  docforge mix check mixtures/demo/stage2.yaml
  docforge train trainer/recipes/tiny.yaml

Ray: jobs start an embedded local Ray by default; --address (or RAY_ADDRESS) targets a cluster.
Storage: every input and output is an fsspec URL (local path, s3://, gs://, memory://).
"""

VERIFY_EXAMPLES = """examples:
  docforge shards verify out/captions
  docforge shards verify s3://bucket/shards/cc3m
  docforge shards verify out/ocr-en out/ocr-zh out/tables-en
exit status: 0 when every shard of every dataset matches its index.json, 1 otherwise (each problem is
printed, and every dataset is checked).
"""

SHOW_EXAMPLES = """examples:
  docforge shards show out/captions
  docforge shards show out/captions -n 5
"""

FORMATTER = argparse.RawDescriptionHelpFormatter


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output and Ray")
    group.add_argument("--output", required=True, metavar="URL", help="dataset folder to write (fsspec URL)")
    group.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded local Ray)")
    group.add_argument("--num-cpus", type=int, help="CPUs for the embedded local Ray (default: all)")
    group.add_argument("--max-in-flight", type=int, help="Ray tasks in flight at once (default: 2 x cluster CPUs)")
    group.add_argument("--max-retries", type=int, default=3, help="Ray retries of a crashed or failing task (default: 3)")
    group.add_argument("--shard-max-count", type=int, default=10_000, help="samples per shard (default: 10000)")
    group.add_argument("--shard-max-bytes", type=int, default=1 << 30, help="bytes per shard (default: 1 GiB)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar or summary table")


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(address=args.address, num_cpus=args.num_cpus, max_in_flight=args.max_in_flight,
                      max_retries=args.max_retries, shard_max_count=args.shard_max_count,
                      shard_max_bytes=args.shard_max_bytes, progress=not args.no_progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docforge", description="docforge: document-VLM data factory and trainer.",
                                     epilog=MAIN_EXAMPLES, formatter_class=FORMATTER)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="run a data job on Ray and write verified shards",
                                epilog=MAIN_EXAMPLES, formatter_class=FORMATTER)
    jobs = build.add_subparsers(dest="job", required=True, metavar="JOB")
    ingest = jobs.add_parser("ingest", help="existing datasets (captions, LLaVA conversations, stage-3 "
                             "layout/KIE/QA/table/formula sets) -> shards",
                             epilog=INGEST_EXAMPLES, formatter_class=FORMATTER)
    add_ingest_arguments(ingest)
    add_run_arguments(ingest)
    ingest.set_defaults(func=cmd_build, make_job=make_ingest_job)
    doc2md = jobs.add_parser("doc2md", help="arXiv LaTeX sources + PDFs -> Nougat-style (page image, page markdown) "
                             "pairs", epilog=DOC2MD_EXAMPLES, formatter_class=FORMATTER)
    add_doc2md_arguments(doc2md)
    add_run_arguments(doc2md)
    doc2md.set_defaults(func=cmd_build, make_job=make_doc2md_job)
    ocr = jobs.add_parser("ocr", help="synthetic OCR pages (SynthDoG-style, en/zh) with word and line boxes",
                          epilog=OCR_EXAMPLES, formatter_class=FORMATTER)
    add_ocr_arguments(ocr)
    add_run_arguments(ocr)
    ocr.set_defaults(func=cmd_build, make_job=make_ocr_job)
    positional = jobs.add_parser("positional", help="positional questions (region/text/point/colour) about pages "
                                 "with word boxes", epilog=POSITIONAL_EXAMPLES, formatter_class=FORMATTER)
    add_positional_arguments(positional)
    add_run_arguments(positional)
    positional.set_defaults(func=cmd_build, make_job=make_positional_job)
    kie = jobs.add_parser("kie", help="synthetic receipts and forms (en/zh) with known fields and boxes",
                          epilog=KIE_EXAMPLES, formatter_class=FORMATTER)
    add_kie_arguments(kie)
    add_run_arguments(kie)
    kie.set_defaults(func=cmd_build, make_job=make_kie_job)
    tables = jobs.add_parser("tables", help="synthetic tables (en/zh, spans, multi-level headers) -> image + "
                             "PubTabNet-shaped HTML with cell boxes", epilog=TABLES_EXAMPLES, formatter_class=FORMATTER)
    add_tables_arguments(tables)
    add_run_arguments(tables)
    tables.set_defaults(func=cmd_build, make_job=make_tables_job)
    formulas = jobs.add_parser("formulas", help="formulas (lifted from arXiv, a list, or generated) -> image + LaTeX, "
                               "pdflatex in batches", epilog=FORMULAS_EXAMPLES, formatter_class=FORMATTER)
    add_formulas_arguments(formulas)
    add_run_arguments(formulas)
    formulas.set_defaults(func=cmd_build, make_job=make_formulas_job)

    shards = commands.add_parser("shards", help="inspect and verify shard datasets", epilog=VERIFY_EXAMPLES,
                                 formatter_class=FORMATTER)
    shard_commands = shards.add_subparsers(dest="shards_command", required=True, metavar="ACTION")
    verify = shard_commands.add_parser("verify", help="re-read every shard and check it against index.json",
                                       epilog=VERIFY_EXAMPLES, formatter_class=FORMATTER)
    verify.add_argument("datasets", metavar="DIR_OR_URL", nargs="+")
    verify.set_defaults(func=cmd_verify)
    show = shard_commands.add_parser("show", help="print a dataset's totals and a few samples",
                                     epilog=SHOW_EXAMPLES, formatter_class=FORMATTER)
    show.add_argument("dataset", metavar="DIR_OR_URL")
    show.add_argument("-n", "--samples", type=int, default=3, help="samples to print (default: 3)")
    show.set_defaults(func=cmd_show)

    from mixtures.cli import add_mix_commands  # the CLI is the one place that composes every layer

    add_mix_commands(commands, FORMATTER)
    from pipelines.cluster.cli import add_cluster_commands

    add_cluster_commands(commands, FORMATTER)
    from evaluation.cli import add_eval_command  # imported here: scoring needs none of the build jobs' setup

    add_eval_command(commands, FORMATTER)
    from trainer.cli import add_train_command  # torch and transformers load only when `train` runs

    add_train_command(commands, FORMATTER)
    return parser


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    try:
        job = args.make_job(args)
        result = run_job(job, args.output, run_options(args))
    except KeyboardInterrupt:
        Console(stderr=True).print(f"[yellow]interrupted: committed tasks are kept in {args.output}; "
                                   "rerun the same command to finish the rest")
        return 130
    except (JobConfigMismatch, FileNotFoundError, ValueError) as exn:
        Console(stderr=True).print(f"[red]docforge build {args.job}: {exn}", highlight=False)
        return 2
    if not result.ok:
        Console(stderr=True).print(f"[red]{len(result.failed_tasks)} task(s) failed after retries: {result.failed_tasks}; "
                      f"rerun the same command to finish them (committed tasks are skipped)")
        return 1
    return 0


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    from pipelines.verify import verify_dataset

    failed = 0
    for dataset in args.datasets:
        report = verify_dataset(dataset)
        for problem in report.problems:
            console.print(f"[red]{problem}", highlight=False)
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        console.print(f"{report.url}: {report.shards} shards, {report.samples} samples, {report.bytes} bytes: "
                      f"{status}", highlight=False)
        failed += not report.ok
    if failed and len(args.datasets) > 1:
        console.print(f"[red]{failed} of {len(args.datasets)} datasets failed verification", highlight=False)
    return 1 if failed else 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    from pipelines.shard_reader import first_samples
    from pipelines.shards import read_index
    from pipelines.storage import Folder

    folder = Folder(args.dataset)
    try:
        index = read_index(folder)
    except (FileNotFoundError, ValueError) as exn:
        Console(stderr=True).print(f"[red]{exn}", highlight=False)
        return 1
    totals = index["totals"]
    console.print(f"{folder.url}: {totals['shards']} shards, {totals['samples']} samples, {totals['bytes']} bytes; "
                  f"job {index['job'].get('job')} ({'complete' if index.get('complete', True) else 'INCOMPLETE'})",
                  highlight=False)
    console.print(f"families: {json.dumps(index['families'], ensure_ascii=False)}", highlight=False)
    for sample in first_samples([folder.url_of(s["name"]) for s in index["shards"]], args.samples):
        console.rule(sample["__key__"])
        for ext, value in sample.items():
            if ext.startswith("__"):
                continue
            if ext in ("txt", "md", "html", "tex", "json"):
                text = value.decode("utf-8", errors="replace")
                console.print(f".{ext}: {text[:400]}{' …' if len(text) > 400 else ''}", highlight=False, markup=False)
            else:
                console.print(f".{ext}: {len(value)} bytes", highlight=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, Console(stderr=False))


if __name__ == "__main__":
    sys.exit(main())
