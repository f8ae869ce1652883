"""The job runner on a real local Ray: exactly-once output, retries, resume, error isolation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webdataset as wds

from pipelines.runner import JobConfigMismatch, RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.jobs import NumbersJob

OPTIONS = dict(progress=False, shard_max_count=2, max_retries=2)


def keys_in_dataset(out: Path) -> list[str]:
    index = json.loads((out / "index.json").read_text())
    urls = [str(out / s["name"]) for s in index["shards"]]
    return [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False)]


def leftover_temp_files(out: Path) -> list[str]:
    return [p.name for p in out.rglob("*tmp-*")]


def test_job_writes_every_input_once_and_logs_bad_inputs(ray_local, tmp_path):
    out = tmp_path / "out"
    result = run_job(NumbersJob(20, 4, str(tmp_path), bad_every=7), str(out), RunOptions(**OPTIONS))
    assert result.ok and result.tasks_run == 5
    expected = [f"num-{i:06d}" for i in range(20) if i % 7]
    assert sorted(keys_in_dataset(out)) == expected
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["input"] for e in errors) == ["number 0", "number 14", "number 7"]
    assert {e["step"] for e in errors} == {"check"}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["samples"] == len(expected) and stats["errors"] == 3 and stats["complete"]
    assert verify_dataset(str(out)).ok


def test_rerun_skips_committed_tasks(ray_local, tmp_path):
    out = tmp_path / "out"
    job = NumbersJob(12, 3, str(tmp_path))
    run_job(job, str(out), RunOptions(**OPTIONS))
    markers = {p.name: p.read_text() for p in (out / "_tasks").iterdir()}
    again = run_job(job, str(out), RunOptions(**OPTIONS))
    assert again.tasks_run == 0 and again.tasks_skipped == 4
    assert {p.name: p.read_text() for p in (out / "_tasks").iterdir()} == markers
    assert sorted(keys_in_dataset(out)) == [f"num-{i:06d}" for i in range(12)]


def side_values(out: Path, stream: str) -> list[int]:
    return [json.loads(line)["value"] for path in sorted((out / stream).glob("task-*.jsonl"))
            for line in path.read_text().splitlines()]


def test_task_that_crashes_once_is_retried_without_duplicate_or_partial_shards(ray_local, tmp_path):
    out = tmp_path / "out"
    # item 5 kills its worker after items 4 (task 1: items 4..7) was already written into a shard
    job = NumbersJob(12, 4, str(tmp_path), crash_item=5)
    result = run_job(job, str(out), RunOptions(**OPTIONS))
    assert (tmp_path / "crash-once").exists(), "the fault was never injected"
    assert result.ok
    keys = keys_in_dataset(out)
    assert sorted(keys) == [f"num-{i:06d}" for i in range(12)] and len(keys) == len(set(keys))
    assert sorted(side_values(out, "squares")) == list(range(12))  # side records exactly once too
    assert leftover_temp_files(out) == []
    shard_files = sorted(p.name for p in out.glob("shard-*.tar"))
    index = json.loads((out / "index.json").read_text())
    assert shard_files == [s["name"] for s in index["shards"]]
    assert verify_dataset(str(out)).ok


def test_task_failing_for_good_leaves_incomplete_index_until_rerun(ray_local, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "poison").touch()
    job = NumbersJob(12, 4, str(tmp_path), crash_item=9)
    first = run_job(job, str(out), RunOptions(progress=False, shard_max_count=2, max_retries=1))
    assert first.failed_tasks == [2]
    index = json.loads((out / "index.json").read_text())
    assert index["complete"] is False and index["missing_tasks"] == [2]
    assert any(p.kind == "incomplete job" for p in verify_dataset(str(out)).problems)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["step"] for e in errors] == ["task"]

    (tmp_path / "poison").unlink()
    second = run_job(job, str(out), RunOptions(**OPTIONS))
    assert second.ok and second.tasks_run == 1 and second.tasks_skipped == 2
    assert sorted(keys_in_dataset(out)) == [f"num-{i:06d}" for i in range(12)]
    assert (out / "errors.jsonl").read_text() == ""
    assert verify_dataset(str(out)).ok


def test_rerun_with_other_config_is_refused(ray_local, tmp_path):
    out = tmp_path / "out"
    run_job(NumbersJob(4, 2, str(tmp_path)), str(out), RunOptions(**OPTIONS))
    with pytest.raises(JobConfigMismatch, match="different config"):
        run_job(NumbersJob(4, 2, str(tmp_path), bad_every=3), str(out), RunOptions(**OPTIONS))


def test_memory_output_is_refused_because_ray_workers_cannot_see_it(tmp_path):
    with pytest.raises(ValueError, match="memory://"):
        run_job(NumbersJob(2, 1, str(tmp_path)), "memory://runner-out", RunOptions(**OPTIONS))


def test_shards_read_back_with_ray_data(ray_local, tmp_path):
    out = tmp_path / "out"
    run_job(NumbersJob(10, 5, str(tmp_path)), str(out), RunOptions(**OPTIONS))
    index = json.loads((out / "index.json").read_text())
    ds = ray_local.data.read_webdataset([str(out / s["name"]) for s in index["shards"]])
    rows = ds.take_all()
    assert sorted(r["__key__"] for r in rows) == [f"num-{i:06d}" for i in range(10)]
    assert {r["txt"] for r in rows} == {str(i) for i in range(10)}
    assert {r["json"]["value"] for r in rows} == set(range(10))


DRIVER = """
import sys
from pipelines.runner import RunOptions, run_job
from tests.jobs import NumbersJob
run_job(NumbersJob(40, 1, sys.argv[2], delay=0.15), sys.argv[1],
        RunOptions(progress=False, num_cpus=1, max_in_flight=1))
"""


def test_killed_driver_then_rerun_finishes_with_every_input_exactly_once(ray_local, tmp_path):
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(out), str(tmp_path)], cwd=repo, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list((out / "_tasks").glob("task-*.json"))) < 5:
            assert proc.poll() is None, "driver exited before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded Ray die together
        proc.wait()
    committed = len(list((out / "_tasks").glob("task-*.json")))
    assert 5 <= committed < 40
    assert not (out / "index.json").exists()

    result = run_job(NumbersJob(40, 1, str(tmp_path), delay=0.15), str(out), RunOptions(**OPTIONS))
    assert result.ok and result.tasks_skipped >= committed and result.tasks_run == 40 - result.tasks_skipped
    keys = keys_in_dataset(out)
    assert sorted(keys) == [f"num-{i:06d}" for i in range(40)] and len(keys) == len(set(keys))
    assert verify_dataset(str(out)).ok
