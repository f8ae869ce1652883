"""docforge on a real multi-node Ray cluster on this machine (`docforge cluster up`: head + 2 worker nodes,
loopback only): OCR and doc2md builds across nodes with a worker node's raylet killed mid-job, a killed
driver resumed, jobs submitted through the Ray Jobs SDK, the tiny recipe trained on 2 gloo ranks
through the training launcher, and an elastic launch that grows from 1 rank to 2 when a node comes back.
The tests share one cluster and run in this order: the node-kill test leaves it one worker node, the
elastic test brings that node back with `cluster up`, the last test runs `cluster up` again (a node
restarted since the cluster started) and takes the cluster down.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import webdataset as wds
import yaml

from pipelines.cli import build_parser, main
from pipelines.cluster import local
from pipelines.doc2md.job import make_doc2md_job
from pipelines.ocr import CORPORA, OcrJob, default_fonts
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]
OCR_PAGES, OCR_PAGES_PER_TASK, OCR_SEED = 24, 2, 5
DOC2MD_PAPERS = ("2601.00002", "2601.00006")  # one per task: the killed node very likely holds one


def docforge(*args: str, env: dict | None = None, timeout: float = 240, cwd: Path = REPO):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def ocr_build_args(out: Path, address: str) -> list[str]:
    return ["build", "ocr", "--count", str(OCR_PAGES), "--pages-per-task", str(OCR_PAGES_PER_TASK), "--seed",
            str(OCR_SEED), "--output", str(out), "--address", address, "--no-progress"]


def doc2md_build_args(papers: Path, out: Path, address: str | None = None) -> list[str]:
    return ["build", "doc2md", "--input", str(papers), "--papers-per-task", "1", "--output", str(out),
            "--no-progress", *(["--address", address] if address else [])]


def sample_digests(out: Path, members: tuple[str, ...] = ("jpg", "txt", "json")) -> dict[str, dict[str, str]]:
    """Samples of a dataset as {key: {extension: sha256}} for `members`, read back with webdataset; a duplicate
    key fails. The record's code version is left out: other work may commit to the checkout between builds."""
    index = json.loads((out / "index.json").read_text())
    digests = {}
    for sample in wds.WebDataset([str(out / s["name"]) for s in index["shards"]], shardshuffle=False):
        assert sample["__key__"] not in digests, f"duplicate key {sample['__key__']}"
        if "json" in members:
            record = json.loads(sample["json"])
            del record["provenance"]["version"]
            sample["json"] = json.dumps(record, sort_keys=True).encode()
        digests[sample["__key__"]] = {k: hashlib.sha256(sample[k]).hexdigest() for k in members}
    return digests


def markers(out: Path) -> dict[int, str]:
    """The committed tasks of a build and the attempt that committed each."""
    found = {}
    for path in (out / "_tasks").glob("task-*.json"):
        try:
            found[json.loads(path.read_text())["task"]] = json.loads(path.read_text())["attempt"]
        except (ValueError, FileNotFoundError):
            continue  # being rewritten by a retried task
    return found


def wait_for_markers(out: Path, build: subprocess.Popen, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(markers(out)) if (out / "_tasks").exists() else 0
        if count >= at_least:
            return count
        assert build.poll() is None, f"the build ended before {at_least} task(s) committed: {build.communicate()}"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} committed tasks after {timeout} s")


def wait_for_node_state(cluster, name: str, gcs_state: str, timeout: float = 60) -> dict:
    """The node's status once the GCS reports `gcs_state` for it (a build can finish before the GCS
    declares a killed node dead: the owner sees its workers die first)."""
    deadline = time.monotonic() + timeout
    while True:
        node = next(n for n in local.status(cluster.state_dir)["nodes"] if n["name"] == name)
        if node["gcs"] == gcs_state or time.monotonic() > deadline:
            assert node["gcs"] == gcs_state, node
            return node
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster():
    """`docforge cluster up --workers 2` in a short private folder; always torn down, even on failure."""
    state_dir = Path(tempfile.mkdtemp(prefix="dfc-", dir="/tmp"))
    try:
        assert main(["cluster", "up", "--workers", "2", "--state-dir", str(state_dir)]) == 0
        yield local.ClusterState.load(state_dir)
    finally:
        if (state_dir / local.STATE_FILE).exists():
            local.down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_env(cluster):
    return {**os.environ, **cluster.env(), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def one_node_ocr_dir(ray_local, tmp_path_factory):
    """The reference: the same OCR build on one embedded Ray node."""
    out = tmp_path_factory.mktemp("ocr-one-node")
    job = OcrJob("en", OCR_PAGES, [str(CORPORA / "en.txt")], default_fonts("en"), OCR_SEED, OCR_PAGES_PER_TASK)
    assert run_job(job, str(out), RunOptions(progress=False)).ok
    return out


@pytest.fixture(scope="module")
def one_node_ocr(one_node_ocr_dir):
    return sample_digests(one_node_ocr_dir)


@pytest.fixture(scope="module")
def doc2md_papers(tmp_path_factory):
    papers = tmp_path_factory.mktemp("papers")
    for paper in DOC2MD_PAPERS:
        shutil.copytree(REPO / "samples" / "papers" / paper, papers / paper)
    return papers


@pytest.fixture(scope="module")
def one_node_doc2md(ray_local, doc2md_papers, tmp_path_factory):
    """The reference: the same doc2md build (the CLI's job) on one embedded Ray node; pages and markdown."""
    out = tmp_path_factory.mktemp("doc2md-one-node") / "out"
    job = make_doc2md_job(build_parser().parse_args(doc2md_build_args(doc2md_papers, out)))
    assert run_job(job, str(out), RunOptions(progress=False)).ok
    return sample_digests(out, ("png", "md"))


def test_cluster_up_runs_a_head_and_two_worker_nodes_that_status_reports(cluster, capsys):
    assert main(["cluster", "status", "--state-dir", cluster.state_dir]) == 0
    report = local.status(cluster.state_dir)
    assert [(n["name"], n["cpus"], n["state"], n["gcs"]) for n in report["nodes"]] == [
        ("head", 0, "running", "ALIVE"), ("worker-1", 1, "running", "ALIVE"), ("worker-2", 1, "running", "ALIVE")]
    pids = {p.pid for p in local.cluster_processes(cluster.cluster_id)}
    assert {n["pid"] for n in report["nodes"]} | {n["raylet_pid"] for n in report["nodes"]} <= pids
    assert os.getpid() not in pids
    capsys.readouterr()
    assert main(["cluster", "env", "--state-dir", cluster.state_dir]) == 0
    exports = capsys.readouterr().out
    assert f"export RAY_ADDRESS={cluster.address}" in exports and "RAY_AUTH_MODE=token" in exports


def test_submit_streams_logs_and_returns_the_jobs_exit_code(cluster, cluster_env, tmp_path):
    workdir = tmp_path / "job"
    workdir.mkdir()
    (workdir / "note.txt").write_text("read from the uploaded working dir")
    script = "import sys; print(open('note.txt').read()); sys.exit(3)"
    result = docforge("submit", "--working-dir", str(workdir), "--", "python", "-c", script, env=cluster_env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "read from the uploaded working dir" in result.stdout
    assert "FAILED (exit status 3)" in result.stderr


def test_submit_and_launch_refuse_bad_usage_before_reaching_any_cluster(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "400")  # one error per line
    address = ["--address", "http://127.0.0.1:9"]  # nothing listens there: a refusal must come first
    assert main(["submit", *address]) == 2
    assert main(["submit", *address, "--working-dir", str(tmp_path / "missing"), "--", "echo", "hi"]) == 2
    assert main(["submit", *address, "--env", "NOVALUE", "--", "echo", "hi"]) == 2
    assert main(["launch", *address, "--", "bash", "-c", "true"]) == 2
    assert main(["launch", *address, "--", "python"]) == 2
    assert main(["launch", *address, "--workers", "3-1", "--", "docforge", "train", "r.yaml"]) == 2
    assert main(["launch", *address, "--workers", "two", "--", "docforge", "train", "r.yaml"]) == 2
    assert main(["launch", *address, "--workers", "1-2", "--", "docforge", "train", "r.yaml", "--resume"]) == 2
    errors = capsys.readouterr().err
    for expected in ("nothing to run", "missing: no such folder", "--env NOVALUE: expected KEY=VALUE",
                     "`bash`: the launcher runs", "give `python SCRIPT ...` or `python -m MODULE ...`",
                     "--workers 3-1: MIN-MAX needs 1 <= MIN <= MAX", "--workers two: give a number",
                     "the training command needs --reshard to continue"):
        assert expected in errors, expected


def test_allreduce_check_reports_every_rank_under_torchrun(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(REPO / "cluster" / "check_allreduce.py"), "--world-size", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"], r["backend"], r["sum"]) for r in ranks] == [(0, 2, "gloo", 3.0),
                                                                                (1, 2, "gloo", 3.0)]


def write_tiny_recipe(tmp_path: Path, shards: Path, steps: int, **runtime) -> Path:
    """tiny.yaml's stage 2 over the OCR pages (repeated), `steps` long, with `runtime` settings."""
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump({"name": "cluster-smoke", "stage": 2, "seed": 1, "sources": [
        {"name": "ocr", "shards": str(shards), "weight": 1, "task": "ocr", "repeat": True}]}))
    recipe = yaml.safe_load((REPO / "trainer" / "recipes" / "tiny.yaml").read_text())
    recipe["output"] = str(tmp_path / "train")
    recipe["tokenizer"]["train"]["files"] = [str(CORPORA / "en.txt")]
    recipe["runtime"] |= runtime
    recipe["stages"] = [s | {"steps": steps, "mixture": str(tmp_path / "mix.yaml")} for s in recipe["stages"]
                        if s["stage"] == 2]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "recipe.yaml"


def test_launcher_trains_the_tiny_recipe_on_two_gloo_ranks_submitted_to_the_cluster(cluster, cluster_env,
                                                                                    one_node_ocr_dir, tmp_path):
    """`docforge submit -- docforge launch --workers 2 -- docforge train RECIPE`: Ray Train gives the trainer
    its ranks; DDP keeps both replicas identical (the trainer's own check, replicas.json)."""
    recipe = write_tiny_recipe(tmp_path, one_node_ocr_dir, steps=2)
    result = docforge("submit", "--", "docforge", "launch", "--workers", "2", "--storage", str(tmp_path / "ray-train"),
                      "--", "docforge", "train", str(recipe), "--stage", "2", env=cluster_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stage = tmp_path / "train" / "stage2"
    replicas = json.loads((stage / "replicas.json").read_text())["weights_sha1"]
    assert len(replicas) == 2 and replicas[0] == replicas[1]
    assert sorted({json.loads(line)["step"] for line in (stage / "log.jsonl").read_text().splitlines()}) == [1, 2]
    assert (stage / "final").is_dir()


def test_rerun_after_the_driver_is_killed_runs_only_the_missing_tasks(cluster, cluster_env, one_node_ocr, tmp_path):
    out = tmp_path / "ocr"
    build = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *ocr_build_args(out, cluster.address)], cwd=REPO,
                             env=cluster_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_markers(out, build, at_least=2)
    build.send_signal(signal.SIGKILL)
    build.wait()
    time.sleep(2)  # Ray stops the dead driver's tasks
    before = markers(out)
    total = OCR_PAGES // OCR_PAGES_PER_TASK
    assert 2 <= len(before) < total

    result = docforge(*ocr_build_args(out, cluster.address), env=cluster_env)
    assert result.returncode == 0, result.stdout + result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tasks"]["skipped"] >= len(before) and stats["tasks"]["run"] == total - stats["tasks"]["skipped"]
    after = markers(out)
    assert all(after[task] == attempt for task, attempt in before.items())  # committed tasks were not rerun
    assert sample_digests(out) == one_node_ocr
    assert verify_dataset(str(out)).ok


def test_ocr_and_doc2md_builds_survive_a_worker_node_killed_mid_job(cluster, cluster_env, one_node_ocr,
                                                                     one_node_doc2md, doc2md_papers, tmp_path):
    out, doc2md_out = tmp_path / "ocr", tmp_path / "doc2md"
    raylet = cluster.node("worker-1").raylet()
    assert raylet is not None
    logs = [tmp_path / "ocr.log", tmp_path / "doc2md.log"]
    builds = [subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=cluster_env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
              for args, log in zip((ocr_build_args(out, cluster.address),
                                    doc2md_build_args(doc2md_papers, doc2md_out, cluster.address)), logs)]
    # kill as soon as the doc2md build has planned (its papers take seconds each, so none is done yet) and
    # the OCR build is under way: both jobs lose a node mid-job
    deadline = time.monotonic() + 120
    while not (doc2md_out / "_job.json").exists() and time.monotonic() < deadline:
        assert builds[1].poll() is None, logs[1].read_text()[-4000:]
        time.sleep(0.02)
    committed_at_kill = len(markers(out)) if (out / "_tasks").exists() else 0
    doc2md_committed_at_kill = len(markers(doc2md_out)) if (doc2md_out / "_tasks").exists() else 0
    raylet.kill()
    for build, log in zip(builds, logs):
        assert build.wait(timeout=300) == 0, log.read_text()[-4000:]
    assert committed_at_kill < OCR_PAGES // OCR_PAGES_PER_TASK and doc2md_committed_at_kill < len(DOC2MD_PAPERS)
    assert sample_digests(doc2md_out, ("png", "md")) == one_node_doc2md
    assert verify_dataset(str(doc2md_out)).ok
    assert sample_digests(out) == one_node_ocr  # same keys and bytes as one node: none lost, none twice
    index = json.loads((out / "index.json").read_text())
    assert index["complete"] and index["totals"]["samples"] == OCR_PAGES
    assert main(["shards", "verify", str(out)]) == 0
    assert wait_for_node_state(cluster, "worker-1", "DEAD")["state"] != "running"


STEPS = 60  # at ~0.9 s a step on one rank, the group grew here ~20 s after the first checkpoint (at step ~23)


def test_an_elastic_launch_grows_onto_a_node_that_comes_back_and_the_run_reshards_onto_the_new_ranks(
        cluster, cluster_env, one_node_ocr_dir, tmp_path):
    """`docforge launch --workers 1-2 -- docforge train RECIPE --resume --reshard` while one of the two worker
    nodes is down (the node-kill test left it so): Ray Train starts one rank; once `cluster up` has brought the
    node back, it restarts the group with two, and the run continues from the one rank's checkpoint on two
    (`--reshard`), to the end of the stage."""
    if next(n for n in local.status(cluster.state_dir)["nodes"] if n["name"] == "worker-1")["gcs"] == "ALIVE":
        cluster.node("worker-1").raylet().kill()  # run alone: take the node down here
        wait_for_node_state(cluster, "worker-1", "DEAD")
    recipe = write_tiny_recipe(tmp_path, one_node_ocr_dir, steps=STEPS, checkpoint_every=1)
    output = tmp_path / "launch.log"
    launch = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "launch", "--address", cluster.address,
                               "--workers", "1-2", "--resize-every", "1", "--max-failures", "2", "--storage",
                               str(tmp_path / "ray-train"), "--", "docforge", "train", str(recipe), "--stage", "2",
                               "--resume", "--reshard"], cwd=REPO, env=cluster_env, stdout=output.open("w"),
                              stderr=subprocess.STDOUT)
    stage = tmp_path / "train" / "stage2"
    try:
        deadline = time.monotonic() + 180
        while not list((stage / "checkpoints").glob("step-*")):  # the one rank's first checkpoint, complete
            assert launch.poll() is None and time.monotonic() < deadline, output.read_text()[-4000:]
            time.sleep(0.2)
        assert main(["cluster", "up", "--workers", "2", "--state-dir", cluster.state_dir]) == 0
        assert launch.wait(timeout=300) == 0, output.read_text()[-4000:]
    finally:
        launch.kill()
    records = [json.loads(line) for line in (stage / "log.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in records}) == list(range(1, STEPS + 1)) and (stage / "final").is_dir()
    grown = next((r["step"] for r in records if r["ranks"] == 2), None)
    assert grown is not None, "the group never grew before the stage ended"
    assert all(r["ranks"] == 1 for r in records if r["step"] < grown)
    last_logged = {r["step"]: r["ranks"] for r in records}  # a step the old group logged is logged again
    assert all(last_logged[step] == 2 for step in range(grown, STEPS + 1))
    assert f"(step {grown - 1}), resharded from 1 ranks to 2" in output.read_text()
    newest = max((stage / "checkpoints").glob("step-*"))
    assert newest.name == f"step-{STEPS:06d}" and torch_load(newest / "trainer.pt")["world_size"] == 2
    replicas = json.loads((stage / "replicas.json").read_text())["weights_sha1"]
    assert len(replicas) == 2 and replicas[0] == replicas[1]


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=False)


def test_cluster_up_restarts_a_dead_worker_and_down_stops_only_its_own_processes(cluster):
    assert main(["cluster", "up", "--workers", "2", "--state-dir", cluster.state_dir]) == 0
    restarted = wait_for_node_state(cluster, "worker-1", "ALIVE")
    assert restarted["state"] == "running" and restarted["pid"] != cluster.node("worker-1").pid
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = local.cluster_processes(cluster.cluster_id)
        assert len(started) >= 9  # the three nodes' processes at least
        assert main(["cluster", "down", "--state-dir", cluster.state_dir]) == 0
        assert not [p for p in started if p.is_running() and p.status() != "zombie"]
        assert bystander.poll() is None
        assert main(["cluster", "status", "--state-dir", cluster.state_dir]) == 2
    finally:
        bystander.kill()
