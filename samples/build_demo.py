"""`make demo`'s builds (the first part of samples/run-demo.sh): the bundled captions and LLaVA conversations
ingested, OCR pages (en, zh), doc2md pages of the bundled papers, positional questions about them, tables
(en, zh, and doc2md's lifted ones), formulas lifted from the papers, then every stage-3 set
(`samples/datasets/ingest_demo.py`), each dataset verified.

    .venv/bin/python samples/build_demo.py DEMO_OUT

Runs the real CLI (`pipelines.cli.main`) once per build in one process, so the builds share one embedded Ray
(starting one costs seconds on a small machine; the demo used to start one per build). Writes DEMO_OUT/NAME
and DEMO_OUT/stage3/NAME. Exit status 1 if a build or a verification fails. Run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "datasets"))

from ingest_demo import outcome, run_builds, stage3_commands  # noqa: E402  (the stage-3 builds, in this process)

OUT = "{out}"  # the demo's output folder, in the arguments of builds that read an earlier one
BUILDS = {  # output name: the `docforge build` arguments
    "captions": ["ingest", "--format", "img2dataset", "--input", "samples/img2dataset", "--source", "demo-captions"],
    "conversations": ["ingest", "--format", "llava", "--input", "samples/llava/conversations.json", "--images",
                      "samples/llava/images", "--source", "demo-llava"],
    "ocr-en": ["ocr", "--lang", "en", "--count", "200"],  # SynthDoG-style pages
    "ocr-zh": ["ocr", "--lang", "zh", "--count", "200"],
    "doc2md": ["doc2md", "--input", "samples/papers", "--source", "demo-arxiv", "--papers-per-task", "1"],
    "positional": ["positional", "--input", f"{OUT}/ocr-en", f"{OUT}/ocr-zh", f"{OUT}/doc2md", "--source",
                   "demo-positional", "--per-page", "1"],
    "tables-en": ["tables", "--lang", "en", "--count", "40", "--no-progress"],
    "tables-zh": ["tables", "--lang", "zh", "--count", "40", "--no-progress"],
    # lifted from the papers; a formula using a paper's own macro is logged
    "formulas": ["formulas", "--source", "arxiv", "--input", "samples/papers", "--no-progress"],
    "tables-arxiv": ["tables", "--arxiv", f"{OUT}/doc2md/lifted", "--no-progress"],  # doc2md's lifted tables
}


def run(out: Path) -> int:
    commands = {name: [argument.format(out=out) for argument in arguments] for name, arguments in BUILDS.items()}
    failed = run_builds(out, commands)
    print(f"==> stage-3 public-set formats (samples/datasets): ingest each into {out / 'stage3'}, verify", flush=True)
    return outcome(failed + run_builds(out / "stage3", stage3_commands()), "demo builds")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python samples/build_demo.py DEMO_OUT")
    sys.exit(run(Path(sys.argv[1])))
