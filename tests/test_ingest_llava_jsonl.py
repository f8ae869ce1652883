"""`--format llava` on big JSONL files (DocStruct4M's 3.29 GB struct_aware_parse.jsonl, Cambrian-7M's ~7M lines):
planning streams each file and keeps only where each line is; the task reads and parses its lines. The samples,
keys and error lines are those of an eager read, whatever the file's mess (BOM, CRLF, blank lines, U+2028 in a
string, a line cut short, a line that is not UTF-8, no final newline), and a changed file is a different plan."""

import json
import random
import tracemalloc

import pytest

from mixtures.tasks import render_conversation
from pipelines.ingest.jsonl_lines import BLOCK
from pipelines.ingest.llava import LlavaIngest
from pipelines.runner import JobConfigMismatch, RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import jpeg, read_dataset, read_errors

OPTIONS = RunOptions(progress=False)
SYSTEM_PROMPT = "Answer the question using a single word or phrase."  # Cambrian7M_withsystemprompt's suffix


def cambrian(id: str, question: str, answer: str, image: str | None = None) -> dict:
    """A Cambrian-7M line as cambrian/train/train_fsdp.py reads it: LLaVA turns, `image` relative to the image
    folder, absent for text-only records."""
    human = f"<image>\n{question}\n{SYSTEM_PROMPT}" if image else question
    record = {"id": id, "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]}
    return {**record, "image": image} if image else record


def docowl(image: str, question: str, answer: str) -> dict:
    """A DocStruct4M line as DocOwl1.5's README shows it: a one-path `image` list, `<|image|>` before the question."""
    return {"image": [image], "messages": [{"role": "user", "content": f"<|image|>{question}"},
                                           {"role": "assistant", "content": answer}],
            "task_name": "doc_parse", "dataset_name": "CCpdf"}


def line(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def write_messy_jsonl(root) -> tuple[bytes, list]:
    """A JSONL file with the real world's mess, and the records an eager read gives each index (None for a bad
    line: it keeps its index, as today). Two long page parses cross the worker's read blocks."""
    (root / "coco" / "train2017").mkdir(parents=True)
    (root / "imgs" / "CCpdf" / "pages").mkdir(parents=True)
    (root / "coco" / "train2017" / "000000033471.jpg").write_bytes(jpeg(1, (64, 48)))
    (root / "imgs" / "CCpdf" / "pages" / "1e531ef2_page19.png").write_bytes(jpeg(2, (90, 120)))
    page = "| year | revenue |\n| --- | --- |\n" + "".join(f"| {1900 + i % 120} | {i * 7} |\n" for i in range(60_000))
    records = [
        cambrian("000000033471", "What color is the bus?", "White", "coco/train2017/000000033471.jpg"),
        cambrian("sharegpt-1", "Quote the page.", "first\u2028second\u2029third\x85fourth"),
        docowl("./imgs/CCpdf/pages/1e531ef2_page19.png", "Convert the picture to Markdown syntax.", page),
        None,
        None,
        cambrian("sharegpt-2", "Translate 'bonjour'.", "Hello." + " again" * 380_000),
        cambrian("000000033472", "Is it raining?", "No", "coco/train2017/000000033471.jpg"),
    ]
    data = b"".join([
        b"\xef\xbb\xbf" + line(records[0]) + b"\r\n",  # a BOM, a Windows line end
        line(records[1]) + b"\n",  # U+2028 and U+2029 raw in a string: not line ends
        b"\n",
        b"  \t\r\n",
        "\u3000".encode("utf-8") + b"\n",  # blank to str.strip() too
        line(records[2]) + b"\n",  # ~1.2 MB: across the first block boundary
        b'{"id": "000000033999", "conversations": [{"from": "human", "value": "<image>\\nWhat is' + b"\r\n",
        '{"id": "légende", "conversations": []}'.encode("latin-1") + b"\n",
        line(records[5]) + b"\n",  # ~2.3 MB: spans three blocks
        line(records[6]),  # no final newline
    ])
    (root / "Cambrian7M_withsystemprompt.jsonl").write_bytes(data)
    return data, records


def comparable(sample: dict) -> tuple:
    """A sample as the input file does not change it: its members, the record without `provenance.input`."""
    record = json.loads(sample["json"])
    del record["provenance"]["input"]
    return record, {k: v for k, v in sample.items() if k not in ("__url__", "__local_path__", "json")}


def test_jsonl_lines_give_the_samples_keys_and_errors_of_an_eager_read(ray_local, tmp_path):
    data, records = write_messy_jsonl(tmp_path)
    eager = tmp_path / "eager.json"
    eager.write_text(json.dumps([r if r is not None else "bad line" for r in records], ensure_ascii=False))
    jsonl = str(tmp_path / "Cambrian7M_withsystemprompt.jsonl")
    job = LlavaIngest([jsonl], str(tmp_path), "cambrian7m", items_per_task=3)
    items = [item for task in job.plan().tasks for item in task.items]
    assert max((i["offset"] + i["length"] - 1) // BLOCK - i["offset"] // BLOCK for i in items) == 2  # 3 blocks
    assert data[items[0]["offset"]:items[0]["offset"] + items[0]["length"]] == line(records[0])  # no BOM, no \r
    assert run_job(job, str(tmp_path / "out"), OPTIONS).ok
    assert run_job(LlavaIngest([str(eager)], str(tmp_path), "cambrian7m", items_per_task=3),
                   str(tmp_path / "eager-out"), OPTIONS).ok

    samples, eager_samples = read_dataset(tmp_path / "out"), read_dataset(tmp_path / "eager-out")
    keys = [f"cambrian7m-{i:09d}" for i in (0, 1, 2, 5, 6)]
    assert sorted(samples) == sorted(eager_samples) == keys
    for key in keys:
        assert comparable(samples[key]) == comparable(eager_samples[key])
    record = json.loads(samples["cambrian7m-000000001"]["json"])
    assert record["conversations"][1]["value"] == "first\u2028second\u2029third\x85fourth"
    assert record["provenance"]["input"] == jsonl and record["provenance"]["record"] == 1
    parse = json.loads(samples["cambrian7m-000000002"]["json"])
    assert parse["conversations"][1]["value"] == records[2]["messages"][1]["content"]
    for sample in samples.values():
        turns = render_conversation("conversation", sample, random.Random(0))
        assert turns[-1]["role"] == "assistant" and "<|image|>" not in turns[0]["content"]
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]): e["message"] for e in read_errors(tmp_path / "out")}
    assert set(errors) == {("Cambrian7M_withsystemprompt.jsonl:7", "parse json"),
                           ("Cambrian7M_withsystemprompt.jsonl:8", "read json")}
    assert "Unterminated string" in errors[("Cambrian7M_withsystemprompt.jsonl:7", "parse json")]
    assert "not UTF-8" in errors[("Cambrian7M_withsystemprompt.jsonl:8", "read json")]
    assert verify_dataset(str(tmp_path / "out")).ok


def test_planning_a_big_jsonl_holds_no_records_and_a_small_peak(tmp_path):
    """~50 MB of DocStruct4M-like page parses: the plan's items say where each line is, nothing of what it holds."""
    path = tmp_path / "struct_aware_parse.jsonl"
    body = "## Annual Report 2019\n\nRevenue grew 4% over the year. " * 150
    with path.open("wb") as f:
        for i in range(6000):
            f.write(line(docowl(f"./imgs/CCpdf/pages/{i:08x}_page1.png", "Recognize text in the image.", body)) + b"\n")
    size = path.stat().st_size
    assert size > 45_000_000
    job = LlavaIngest([str(path)], None, "docstruct4m")
    tracemalloc.start()
    try:
        plan = job.plan()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    items = [item for task in plan.tasks for item in task.items]
    assert len(items) == 6000 and items[5999]["key"] == "docstruct4m-000005999"
    assert all(set(item) == {"file", "index", "line", "offset", "length", "key", "sha256"} for item in items)
    assert peak < size / 5, f"planning {size} bytes peaked at {peak} bytes"


def test_rerun_skips_committed_tasks_and_a_same_length_edit_is_refused(ray_local, tmp_path):
    (tmp_path / "coco" / "train2017").mkdir(parents=True)
    (tmp_path / "coco" / "train2017" / "000000033471.jpg").write_bytes(jpeg(1, (64, 48)))
    path = tmp_path / "Cambrian7M_withsystemprompt.jsonl"
    answers = ["White", "Two", "Blue"]
    path.write_bytes(b"".join(line(cambrian(f"q{i}", "Which?", a, "coco/train2017/000000033471.jpg")) + b"\n"
                              for i, a in enumerate(answers)))
    job = LlavaIngest([str(path)], str(tmp_path), "cambrian7m", items_per_task=2)
    out = tmp_path / "out"
    assert run_job(job, str(out), OPTIONS).tasks_run == 2
    again = run_job(job, str(out), OPTIONS)
    assert (again.tasks_run, again.tasks_skipped) == (0, 2)
    index = json.loads((out / "index.json").read_text())
    assert index["totals"]["samples"] == len(read_dataset(out)) == 3

    item = job.plan().tasks[0].items[1]
    assert next(job.process(item, 0))["json"]["conversations"][1]["value"] == "Two"  # its block now cached here
    path.write_bytes(path.read_bytes().replace(b'"Two"', b'"Six"'))  # every line keeps its offset and length
    replanned = job.plan().tasks[0].items[1]
    assert (replanned["offset"], replanned["length"]) == (item["offset"], item["length"])
    assert next(job.process(replanned, 0))["json"]["conversations"][1]["value"] == "Six"
    with pytest.raises(JobConfigMismatch, match="different plan"):
        run_job(job, str(out), OPTIONS)
