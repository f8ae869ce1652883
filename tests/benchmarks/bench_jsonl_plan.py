"""Benchmark: planning a big LLaVA/DocOwl JSONL file, lazily (what `LlavaIngest.plan` does: stream the file, keep
each line's offset and length) against reading it whole (what it did before: every record parsed into the plan).

    .venv/bin/python tests/benchmarks/bench_jsonl_plan.py [--records 300000] [--repeats 3]

Writes a DocStruct4M-shaped JSONL file (`{"image": [...], "messages": [...], "task_name", "dataset_name"}`,
about 1 KB a record, as struct_aware_parse.jsonl's 3.29 GB / ~3M records) to a temporary folder, then times
each way `--repeats` times, alternating: planning, the plan's fingerprint (which hashes every item), and
in a second call the `tracemalloc` peak of planning. Medians are printed; the ratio is lazy / whole.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipelines.ingest.llava import LlavaIngest, read_records  # noqa: E402
from pipelines.job import Plan, chunk_into_tasks  # noqa: E402

WORDS = "the table shows revenue by region and quarter with totals for each year of the report".split()


def write_jsonl(path: Path, records: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(records):
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 160)))
            record = {"image": [f"./imgs/DUE_Benchmark/DocVQA/pngs/doc_{i:07d}.png"],
                      "messages": [{"role": "user", "content": "<|image|>Parse the document into markdown."},
                                   {"role": "assistant", "content": answer}],
                      "task_name": "struct_aware_parse", "dataset_name": "DocVQA"}
            f.write(json.dumps(record) + "\n")


def lazy_plan(path: Path) -> Plan:
    return LlavaIngest([str(path)], None, "docstruct4m").plan()


def whole_plan(path: Path) -> Plan:
    """The plan as it was: every record parsed and carried in its item."""
    records, _ = read_records(str(path))
    items = [{"file": str(path), "index": i, "key": f"docstruct4m-{i:09d}", "record": r} for i, r in records]
    return Plan(chunk_into_tasks(items, 1000), [])


def measure(plan_of, path: Path) -> tuple[float, float, float]:
    """(plan seconds, fingerprint seconds, peak MiB while planning): timed in one call, the peak traced in
    another (`tracemalloc` slows allocation several times over)."""
    started = time.perf_counter()
    plan = plan_of(path)
    planned = time.perf_counter() - started
    started = time.perf_counter()
    plan.fingerprint()
    fingerprinted = time.perf_counter() - started
    del plan
    tracemalloc.start()
    plan_of(path)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return planned, fingerprinted, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "struct_aware_parse.jsonl"
        write_jsonl(path, args.records)
        size = path.stat().st_size / 2**20
        print(f"{args.records} records, {size:.0f} MiB")
        results: dict[str, list[tuple[float, float, float]]] = {"lazy": [], "whole": []}
        for _ in range(args.repeats):
            results["lazy"].append(measure(lazy_plan, path))
            results["whole"].append(measure(whole_plan, path))
    medians = {name: [statistics.median(run[k] for run in runs) for k in range(3)] for name, runs in results.items()}
    for name, (plan_s, fingerprint_s, peak) in medians.items():
        print(f"{name:6s} plan {plan_s:6.2f} s   fingerprint {fingerprint_s:6.2f} s   peak {peak:8.1f} MiB")
    lazy, whole = medians["lazy"], medians["whole"]
    print(f"lazy / whole: plan {lazy[0] / whole[0]:.2f}x, fingerprint {lazy[1] / whole[1]:.2f}x, "
          f"peak {lazy[2] / whole[2]:.3f}x")


if __name__ == "__main__":
    main()
