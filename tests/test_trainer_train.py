"""The training loop and the three-stage runner (trainer.train) over real shards read through the demo
mixtures: tiny.yaml end to end, what each stage trains (bitwise), kill + --resume, 2-process gloo DDP."""

import contextlib
import io
from collections import Counter
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from mixtures.manifest import load_manifest
from pipelines.shards import ShardWriter, build_index, write_index
from pipelines.storage import Folder
from trainer.data import NothingUsable
from trainer.generate import answer
from trainer.model import DocVLM, build_model
from trainer.recipe import RecipeError, load_recipe
from trainer.remote_folders import FETCHED
from trainer.tokenizer import load_tokenizer
from trainer.train import run_recipe

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "trainer" / "recipes" / "tiny.yaml"


def page(i: int, size=(420, 300)) -> bytes:
    image = Image.new("RGB", size, (255, 255 - 20 * (i % 5), 240))
    ImageDraw.Draw(image).text((20, 20), f"page {i}", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write_dataset(root: Path, name: str, samples: list[dict], max_count: int = 4) -> None:
    folder = Folder(str(root / name))
    with ShardWriter(folder, 0, max_count=max_count) as writer:
        for s in samples:
            writer.write(s)
    write_index(folder, build_index([s.to_dict() for s in writer.shards], {"job": "test"},
                                    {"complete": True, "missing_tasks": []}))


def demo_sample(folder: str, tasks: set[str], i: int) -> dict:
    """A sample every task template of `tasks` can read (caption and ocr need their own family)."""
    family = "caption" if "caption" in tasks else "ocr" if "ocr" in tasks else sorted(tasks)[0]
    lang = "zh" if folder.endswith("-zh") else "en"
    record = {"family": family, "lang": lang,
              "positional": [{"kind": "region_to_text", "region": [0, 0, 500, 500], "text": f"page {i}"}],
              "conversations": [{"from": "human", "value": "<image>\nWhich page is this?"},
                                {"from": "gpt", "value": f"Page {i}."},
                                {"from": "human", "value": "Is it blank?"}, {"from": "gpt", "value": "No."}]}
    record |= {"image": {"width": 420, "height": 300}, "layout": [{"label": "Title", "bbox": [10, 10, 200, 40]}],
               "fields": {"total": str(i)}, "qa": [{"question": "Which page?", "answers": [str(i)]}]}
    return {"__key__": f"{folder.replace('/', '-')}-{i}", "png": page(i, [(420, 300), (300, 500), (600, 300)][i % 3]),
            "txt": f"page {i} text" if lang == "en" else f"第{i}页", "md": f"# Page {i}\n\nBody.",
            "html": f"<table><tr><td>{i}</td></tr></table>", "tex": f"x^{i}", "json": record}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """Every dataset the demo mixtures read, small (6 samples), written by the real ShardWriter."""
    root = tmp_path_factory.mktemp("demo-out")
    tasks: dict[str, set[str]] = {}
    for manifest in sorted((REPO / "mixtures" / "demo").glob("stage*.yaml")):
        for source in yaml.safe_load(manifest.read_text())["sources"]:
            task = source["task"]
            names = {task} if isinstance(task, str) else {t["name"] for t in task}
            shards = source["shards"] if isinstance(source["shards"], list) else [source["shards"]]
            for spec in shards:
                tasks.setdefault(spec.split("}/", 1)[1].rstrip("/"), set()).update(names)
    for folder, names in tasks.items():
        write_dataset(root, folder, [demo_sample(folder, names, i) for i in range(6)])
    return root


@pytest.fixture
def env(demo_out, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCFORGE_DEMO_OUT", str(demo_out))
    monkeypatch.setenv("DOCFORGE_TRAIN_OUT", str(tmp_path / "train-out"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def tiny_variant(tmp_path: Path, name: str, steps: int, stages=(1, 2, 3), **runtime) -> Path:
    """tiny.yaml with fewer steps (and runtime overrides), written beside a copy of the repository layout."""
    recipe = yaml.safe_load(TINY.read_text())
    recipe["output"] = str(tmp_path / name)
    recipe["tokenizer"]["train"]["files"] = [str(REPO / "synth" / "corpora" / f) for f in ("en.txt", "zh.txt")]
    recipe["runtime"].update(runtime)
    recipe["stages"] = [s | {"steps": steps, "mixture": str(REPO / "mixtures" / "demo" / f"stage{s['stage']}.yaml")}
                        for s in recipe["stages"] if s["stage"] in stages]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def steps_of(stage_dir: Path) -> dict[int, dict]:
    """The log's last record of each step (a resumed run logs the steps after its checkpoint again)."""
    records = [json.loads(line) for line in (stage_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in records}


def parameters_of(state: dict[str, torch.Tensor], module: str) -> dict[str, torch.Tensor]:
    prefix = f"{module}."
    return {k: v for k, v in state.items() if k.startswith(prefix) or (module == "projector" and k == "row_separator")}


def parameters(model: DocVLM, module: str) -> dict[str, torch.Tensor]:
    return parameters_of(model.state_dict(), module)


def changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_tiny_recipe_trains_three_stages_each_from_the_last_and_reloads(env):
    recipe_path = tiny_variant(env, "tiny", steps=2)
    finals = run_recipe(str(recipe_path), "all")
    assert [f.parent.name for f in finals] == ["stage1", "stage2", "stage3"]
    recipe = load_recipe(str(recipe_path))
    tokenizer = load_tokenizer(str(Path(recipe.output) / "tokenizer"))
    torch.manual_seed(recipe.seed)
    start = build_model(recipe.model.vlm_config(), tokenizer, "<image>")  # what stage 1 started from
    stage1, stage2, stage3 = (DocVLM.from_pretrained(f) for f in finals)
    # stage 1 trains the projector only: tower and LLM bitwise equal to the start
    assert not changed(parameters(start, "vision"), parameters(stage1, "vision"))
    assert not changed(parameters(start, "llm"), parameters(stage1, "llm"))
    assert changed(parameters(start, "projector"), parameters(stage1, "projector"))
    # stage 2 starts from stage 1 and trains everything
    for module in ("vision", "projector", "llm"):
        assert changed(parameters(stage1, module), parameters(stage2, module)), module
        assert changed(parameters(stage2, module), parameters(stage3, module)), module
    log = steps_of(finals[1].parent)
    assert sorted(log) == [1, 2]
    record = log[2]
    assert set(record["mix"]) == {s.name for s in load_manifest(str(REPO / "mixtures/demo/stage2.yaml")).sources}
    assert record["tokens_per_s"] > 0 and record["label_tokens"] > 0 and 0 <= record["data_wait_share"] <= 1
    assert set(record["lrs"]) == {"vision", "projector", "llm"}
    reply = answer(stage3.eval(), load_tokenizer(str(finals[2] / "llm")), Image.open(io.BytesIO(page(1))),
                   "Read the text.", max_tiles=4, max_new_tokens=5)
    assert isinstance(reply, str)
    with pytest.raises(FileExistsError, match="--resume"):
        run_recipe(str(recipe_path), "1")


def start_training(recipe: Path, *launcher: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *launcher, "-m", "pipelines.cli", "train", str(recipe), "--stage", "2"],
                            cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def signal_after_steps(process: subprocess.Popen, log: Path, steps: int, send) -> None:
    """`send()` once the run has logged `steps` steps; fails if the run ended first."""
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= steps:
            send()
            return
        time.sleep(0.05)
    raise AssertionError(f"the run ended (or took too long) before step {steps}: {process.poll()}")


def assert_same_steps(resumed: dict, expected: dict) -> None:
    assert sorted(resumed) == sorted(expected) == [1, 2, 3, 4, 5]
    for step in expected:
        assert resumed[step]["batch_digest"] == expected[step]["batch_digest"], step
        assert resumed[step]["loss"] == expected[step]["loss"], step
        assert resumed[step]["grad_norm"] == expected[step]["grad_norm"], step


def test_killed_or_sigtermed_run_resumes_with_the_same_losses_and_data_order(env):
    """SIGKILL after step 2: `--resume` continues from the newest checkpoint (one every step). SIGTERM (a
    preemption) after step 2, with no checkpoint due before the stage's end: the run finishes the step under
    way, checkpoints it and exits 143 naming it; `--resume` continues from there. Both reproduce the
    uninterrupted run's losses and data order exactly."""
    reference = tiny_variant(env, "reference", steps=5, stages=(2,), checkpoint_every=1)
    run_recipe(str(reference), "2")
    expected = steps_of(env / "reference" / "stage2")

    killed = tiny_variant(env, "killed", steps=5, stages=(2,), checkpoint_every=1)
    process = start_training(killed)
    signal_after_steps(process, env / "killed" / "stage2" / "log.jsonl", 2, lambda: process.send_signal(signal.SIGKILL))
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (env / "killed" / "stage2" / "final").exists()
    run_recipe(str(killed), "2", resume=True)
    assert_same_steps(steps_of(env / "killed" / "stage2"), expected)

    stopped = tiny_variant(env, "stopped", steps=5, stages=(2,), checkpoint_every=0)
    stage = env / "stopped" / "stage2"
    process = start_training(stopped)
    signal_after_steps(process, stage / "log.jsonl", 2, lambda: process.send_signal(signal.SIGTERM))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-3000:]
    last = max(steps_of(stage))
    assert 2 <= last < 5 and not (stage / "final").exists()
    assert f"stopped on SIGTERM after step {last}, which is checkpointed" in " ".join(stderr.split())
    assert [p.name for p in (stage / "checkpoints").glob("step-*")] == [f"step-{last:06d}"]
    run_recipe(str(stopped), "2", resume=True)
    assert_same_steps(steps_of(stage), expected)


def test_sigterm_to_one_rank_stops_both_at_the_same_step_with_a_checkpoint(env):
    """torchrun, 2 gloo ranks; SIGTERM reaches rank 1 only: the ranks agree in the step's all-reduce, so both
    stop after the same step, whose checkpoint holds both ranks' states."""
    import psutil

    recipe = tiny_variant(env, "ddp-stop", steps=8, stages=(2,), checkpoint_every=0)
    stage = env / "ddp-stop" / "stage2"
    launcher = start_training(recipe, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")

    def rank_1():
        for child in psutil.Process(launcher.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.environ().get("RANK") == "1" and "pipelines.cli" in child.cmdline():
                    return child
        raise AssertionError("no rank-1 process under torchrun")
    signal_after_steps(launcher, stage / "log.jsonl", 2, lambda: rank_1().send_signal(signal.SIGTERM))
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode != 0, stderr[-3000:]
    last = max(steps_of(stage))
    assert last < 8 and not (stage / "final").exists()
    assert " ".join(stderr.split()).count(f"stopped on SIGTERM after step {last}") == 2  # both ranks, one step
    checkpoint = stage / "checkpoints" / f"step-{last:06d}"
    assert (checkpoint / "rank-00000.pt").is_file() and (checkpoint / "rank-00001.pt").is_file()


def test_checkpoints_mirrored_to_a_url_resume_a_run_on_a_fresh_node(env):
    """Node A mirrors its checkpoints to a URL; node B (an empty output folder) resumes from the mirror's
    step-2 checkpoint and trains step 3 exactly as A did (B preparing batches in a worker process, A in a
    thread); a finished stage is fetched whole."""
    shared = env / "shared"
    first = tiny_variant(env, "node-a", steps=3, stages=(2,), checkpoint_every=1, checkpoint_url=f"file://{shared}")
    run_recipe(str(first), "2")
    expected = steps_of(env / "node-a" / "stage2")
    mirrored = shared / "stage2"
    assert sorted(p.name for p in (mirrored / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    assert all((p / "_COMPLETE").is_file() for p in (mirrored / "checkpoints").iterdir())
    assert (mirrored / "final" / "_COMPLETE").is_file()

    shutil.rmtree(mirrored / "final")  # as if node A died after its step-2 checkpoint reached the mirror
    shutil.rmtree(mirrored / "checkpoints" / "step-000003")
    second = tiny_variant(env, "node-b", steps=3, stages=(2,), checkpoint_every=1, checkpoint_url=f"file://{shared}",
                          data_worker="process")  # batches from a worker process: the same data as A's thread
    (final_b,) = run_recipe(str(second), "2", resume=True)
    resumed = steps_of(env / "node-b" / "stage2")
    assert sorted(resumed) == [3]  # steps 1-2 came from the mirror
    assert resumed[3]["loss"] == expected[3]["loss"] and resumed[3]["batch_digest"] == expected[3]["batch_digest"]
    model_a = DocVLM.from_pretrained(env / "node-a" / "stage2" / "final")
    assert not changed(model_a.state_dict(), DocVLM.from_pretrained(final_b).state_dict())

    third = tiny_variant(env, "node-c", steps=3, stages=(2,), checkpoint_url=f"file://{shared}")
    (final_c,) = run_recipe(str(third), "2", resume=True)  # the mirror now holds B's final model: fetched whole
    assert not (env / "node-c" / "stage2" / "log.jsonl").exists()
    assert not changed(model_a.state_dict(), DocVLM.from_pretrained(final_c).state_dict())


@pytest.mark.parametrize("last", [3, 9])  # 9: the stage ends first, and the steps profiled are written
def test_profiled_steps_write_a_kernel_table_and_time_by_kind(env, last):
    recipe = tiny_variant(env, "profiled", steps=3, stages=(2,), profile_steps=[2, last])
    run_recipe(str(recipe), "2")
    profile = env / "profiled" / "stage2" / "profile"
    summary = json.loads((profile / "summary.json").read_text())
    assert (summary["steps"], summary["micro_batches"]) == (2, 4)  # tiny.yaml: grad_accum 2
    assert summary["ms_per_step"]["matrix products"] > 0 and summary["ms_per_step"]["attention"] > 0
    assert summary["total_ms_per_step"] == pytest.approx(sum(summary["ms_per_step"].values()))
    assert 0 < summary["total_ms_per_step"] < 4 * summary["wall_ms_per_step"]  # CPU time, two cores
    # an instant inside some op is inside some op's own time: the union is at most the own times summed
    assert 0 < summary["busy_ms_per_step"] <= summary["total_ms_per_step"] * 1.001
    assert summary["idle_ms_per_step"] == pytest.approx(summary["wall_ms_per_step"] - summary["busy_ms_per_step"])
    # the gaps between ops, step boundaries included (the log's step time leaves those out)
    gaps = summary["idle_between_kernels_ms_per_step"]
    assert list(gaps) == ["under 0.05 ms", "0.05-1 ms", "1-10 ms", "over 10 ms"] and sum(gaps.values()) > 0
    assert summary["longest_idle_gaps_ms"] == sorted(summary["longest_idle_gaps_ms"], reverse=True)
    assert "aten::mm" in (profile / "kernels.txt").read_text()
    assert (profile / "trace.json.gz").stat().st_size > 0


def test_busy_time_counts_overlapping_kernels_once():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from trainer.profiling import busy_intervals, busy_ms

    def event(start, end, device=DeviceType.CUDA):
        return SimpleNamespace(time_range=SimpleNamespace(start=start, end=end), device_type=device)

    # two streams overlapping on 1000..3000 µs, one kernel nested, a gap, and a CPU op that does not count
    events = [event(0, 3000), event(1000, 4000), event(1500, 2000), event(6000, 7000), event(4000, 9000, DeviceType.CPU)]
    assert busy_ms(busy_intervals(events, DeviceType.CUDA)) == pytest.approx(5.0)
    assert busy_ms(busy_intervals(events, DeviceType.CPU)) == pytest.approx(5.0)
    assert busy_intervals([], DeviceType.CUDA) == [] and busy_ms([]) == 0


def test_idle_gaps_between_kernels_are_summed_by_length():
    from trainer.profiling import idle_gaps

    # gaps of 0.02, 0.5, 0.02, 4 and 25 ms between five kernels (µs in, ms out)
    starts = [0, 1000, 2500, 3520, 8520, 34520]
    intervals = [(start, start + 1000) for start in starts]
    gaps = idle_gaps([(0, 980)] + intervals[1:])
    assert gaps["ms_by_length"] == pytest.approx({"under 0.05 ms": 0.02 + 0.02, "0.05-1 ms": 0.5, "1-10 ms": 4.0,
                                                  "over 10 ms": 25.0})
    assert gaps["longest_ms"] == pytest.approx([25.0, 4.0, 0.5, 0.02, 0.02])
    assert idle_gaps([])["longest_ms"] == [] and idle_gaps([(0, 5)])["ms_by_length"]["over 10 ms"] == 0


def train_two_ranks(recipe: Path, stage: str, *flags: str) -> None:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "pipelines.cli", "train", str(recipe), "--stage", stage, *flags],
                          cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def assert_gathered_final(stage: Path) -> None:
    assert (stage / "checkpoints" / "step-000002" / "rank-00001.pt").is_file()
    reloaded = DocVLM.from_pretrained(stage / "final")
    assert sum(p.numel() for p in reloaded.parameters()) > 0
    assert all(p.dtype == torch.float32 for p in reloaded.parameters())  # the fp32 weights, never the bf16 copies


@pytest.mark.parametrize("bf16_weights,fused", [(False, False), (True, False), (True, True)])
def test_two_process_gloo_ddp_run_trains_both_ranks_in_step(env, bf16_weights, fused):
    """torchrun, 2 CPU processes (gloo), the whole model trained: DDP ranks end with identical weights
    (the trainer's own replica check, written to replicas.json). With bf16 weights the trainer averages the
    ranks' fp32 gradient sums itself, in place of DDP, also when the Linear weights' products add into
    those sums (fused_weight_grads)."""
    name = "ddp" + ("-bf16-weights" if bf16_weights else "") + ("-fused" if fused else "")
    recipe = tiny_variant(env, name, steps=2, stages=(2,), bf16_weights=bf16_weights, fused_weight_grads=fused)
    train_two_ranks(recipe, "2")
    stage = env / name / "stage2"
    replicas = json.loads((stage / "replicas.json").read_text())["weights_sha1"]
    assert len(replicas) == 2 and replicas[0] == replicas[1]
    assert sorted(steps_of(stage)) == [1, 2]
    assert_gathered_final(stage)


def test_fsdp_ranks_shard_the_weights_rank_0_sends_and_train_as_ddp_does(env):
    """FSDP2 over 2 gloo ranks, with activation checkpointing, through the three stages (stage 1 trains the
    projector beside frozen weights in the same FSDP units): rank 1 builds only a meta-device skeleton
    (fresh weights in stage 1, the previous stage's folder's configs after) and gets every weight and
    buffer from rank 0. Its losses match DDP's over the same data from the first step of each stage, which they
    could not with one rank's weights (or rotary frequencies) wrong; it checkpoints per rank and gathers
    a full final model. Cut back to stage 3's step-1 checkpoint, `--resume` trains step 2 exactly again."""
    losses = {}
    for parallel in ("ddp", "fsdp"):
        # FSDP with activation checkpointing, as the 7B recipe runs: recomputing changes no loss
        recipe = tiny_variant(env, parallel, steps=2, parallel=parallel,
                              activation_checkpointing=parallel == "fsdp", checkpoint_every=1)
        train_two_ranks(recipe, "all")
        losses[parallel] = [steps_of(env / parallel / f"stage{n}")[step]["loss"] for n in (1, 2, 3) for step in (1, 2)]
    assert losses["fsdp"] == pytest.approx(losses["ddp"], rel=1e-5, abs=1e-6)
    for n in (1, 2, 3):
        assert_gathered_final(env / "fsdp" / f"stage{n}")

    stage = env / "fsdp" / "stage3"
    expected = steps_of(stage)[2]
    shutil.rmtree(stage / "final")  # as if the run had died after stage 3's step-1 checkpoint
    shutil.rmtree(stage / "checkpoints" / "step-000002")
    train_two_ranks(recipe, "all", "--resume")
    resumed = [json.loads(line) for line in (stage / "log.jsonl").read_text().splitlines()][-1]
    assert resumed["step"] == 2 and resumed["batch_digest"] == expected["batch_digest"]
    assert (resumed["loss"], resumed["grad_norm"]) == (expected["loss"], expected["grad_norm"])


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_a_run_saved_by_two_ranks_resumes_on_one_only_with_reshard(env, capsys, parallel):
    """A checkpoint of 2 DDP ranks, or 2 FSDP ranks' shards: resumed by 1 process, it is refused (exit 2,
    naming --reshard); with
    --reshard the weights and AdamW state load as saved (the step-4 checkpoint read into one process equals
    the 2-rank run's final model) and the run continues from step 2 with the same schedule, the old ranks'
    data dealt out anew (`PackedBatches.load_resharded`, tested in depth on the stream), and the stage's
    global_batch kept by accumulating twice as many micro-batches on one rank."""
    from trainer.checkpoint import load_checkpoint
    from trainer.distributed import start_runtime, stop_runtime
    from trainer.train import build_optimizer, initial_model, prepare_tokenizer, set_trainable

    recipe_path = tiny_variant(env, "reshard", steps=4, stages=(2,), checkpoint_every=1, keep_checkpoints=5,
                               parallel=parallel)
    spec = yaml.safe_load(recipe_path.read_text())
    spec["stages"] = [{k: v for k, v in s.items() if k != "grad_accum"} | {"global_batch": 4} for s in spec["stages"]]
    recipe_path.write_text(yaml.safe_dump(spec))
    train_two_ranks(recipe_path, "2")
    stage_dir = env / "reshard" / "stage2"
    two_ranks = steps_of(stage_dir)

    recipe = load_recipe(str(recipe_path))
    runtime = start_runtime("cpu")
    try:
        model = initial_model(recipe, 0, prepare_tokenizer(recipe, runtime), runtime)
        set_trainable(model, recipe.stages[0].trainable)
        optimizer = build_optimizer(model, recipe.stages[0], torch.device("cpu"))
        trainer_state, saved = load_checkpoint(stage_dir / "checkpoints" / "step-000004", model, optimizer, runtime,
                                               reshard=True)
    finally:
        stop_runtime()
    assert trainer_state["world_size"] == 2 and [s["stream"]["slot"][:2] for s in saved] == [[0, 2], [1, 2]]
    final = DocVLM.from_pretrained(stage_dir / "final").state_dict()
    for name, weight in model.state_dict().items():
        assert torch.equal(weight, final[name]), name
    names = {id(p): n for n, p in model.named_parameters()}
    steps = {names[id(p)]: int(state["step"]) for p, state in optimizer.state.items()}
    # (the tower block above the feature layer, which no gradient reaches, gets a placeholder state from
    # torch.distributed.checkpoint's loader, as on every resume)
    assert {n: k for n, k in steps.items() if n.startswith(("llm.", "projector."))} and \
        {k for n, k in steps.items() if n.startswith(("llm.", "projector."))} == {4}

    shutil.rmtree(stage_dir / "final")  # as if both ranks had died after step 2's checkpoint
    for step in (3, 4):
        shutil.rmtree(stage_dir / "checkpoints" / f"step-{step:06d}")
    refused = subprocess.run([sys.executable, "-m", "pipelines.cli", "train", str(recipe_path), "--stage", "2",
                              "--resume"], cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "saved by 2 ranks, resumed with 1" in refused.stderr
    assert "add --reshard" in refused.stderr.replace("\n", " ")
    run_recipe(str(recipe_path), "2", resume=True, reshard=True)
    assert "resharded from 2 ranks to 1" in capsys.readouterr().err
    resumed = steps_of(stage_dir)
    assert sorted(resumed) == [1, 2, 3, 4] and (stage_dir / "final").is_dir()
    for step in (3, 4):
        assert resumed[step]["lr"] == two_ranks[step]["lr"]  # the schedule went on from step 2
        assert resumed[step]["samples"] > 0 and resumed[step]["loss"] > 0
        # global_batch 4 rows: 2 ranks accumulated 2 micro-batches a step, the one rank 4
        assert (two_ranks[step]["ranks"], two_ranks[step]["grad_accum"]) == (2, 2)
        assert (resumed[step]["ranks"], resumed[step]["grad_accum"]) == (1, 4)


@pytest.mark.parametrize("name", ["tiny.yaml", "inf-mllm2-1.5b.yaml", "inf-mllm2-7b.yaml"])
def test_shipped_recipes_validate_with_stage_1_training_the_projector_only(name):
    recipe = load_recipe(str(REPO / "trainer" / "recipes" / name))
    assert [s.stage for s in recipe.stages] == [1, 2, 3]
    assert recipe.stages[0].trainable == ["projector"]
    assert all(set(s.trainable) == {"vision", "projector", "llm"} for s in recipe.stages[1:])
    assert all(Path(s.mixture).is_file() for s in recipe.stages)


@pytest.mark.parametrize("old,new,error", [
    ("    lr: {vision: 2.0e-4, projector: 1.0e-3, llm: 1.0e-3}", "    lr: {projector: 1.0e-3}",
     r"stages\[1\]: .*no learning rate"),
    ("model:\n", "model:\n  image_std: [0.5, 0.0, 0.5]\n", r"model\.image_std"),
    ("  parallel: ddp\n", "  parallel: ddp\n  profile_steps: [4, 2]\n",
     r"runtime: .*profile_steps is \[first, last\], got \[4, 2\]"),
    ("  parallel: ddp\n", "  parallel: fsdp\n  bf16_weights: true\n",
     r"runtime: .*bf16_weights works with parallel: ddp"),
    ("  parallel: ddp\n", "  parallel: ddp\n  fused_weight_grads: true\n",
     r"runtime: .*fused_weight_grads adds into the fp32 gradient sums of bf16_weights"),
    ("    grad_accum: 2\n", "    grad_accum: 2\n    global_batch: 8\n", r"stages\[0\]: .*grad_accum or global_batch, not both"),
])
def test_bad_recipe_fails_naming_file_line_and_field(tmp_path, old, new, error):
    text = TINY.read_text().replace(old, new, 1)
    assert text != TINY.read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=r"bad\.yaml:\d+: " + error):
        load_recipe(str(path))


@pytest.mark.parametrize("world, accum", [(1, 8), (2, 4), (3, 3), (5, 2), (8, 1), (32, 1)])
def test_global_batch_sets_the_accumulation_nearest_to_it_for_the_world_size(world, accum):
    from trainer.recipe import StageSpec, accumulation

    stage = StageSpec(stage=2, mixture="m.yaml", trainable=["llm"], lr={"llm": 1e-5}, steps=1, seq_len=64,
                      micro_batch=1, global_batch=8)
    assert accumulation(stage, world) == accum
    assert accumulation(stage.model_copy(update={"global_batch": None, "grad_accum": 5}), world) == 5


SHARD_FROM_RANK0 = '''
import os, sys, torch, torch.distributed as dist
from torch import nn
from trainer.distributed import shard_from_rank0, start_runtime

def say(line):  # one write a line: both ranks share the pipe, and print writes the text and its newline apart
    os.write(1, (line + "\\n").encode())

class Part(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(4, width)
        self.embed, self.head = nn.Embedding(6, 4), nn.Linear(4, 6, bias=False)
        self.head.weight = self.embed.weight  # tied, as a tied LM head (Qwen2-1.5B)
        self.register_buffer("scale", torch.arange(4.0), persistent=False)

    def forward(self, x):
        return self.linear(x * self.scale).sum() + self.head(self.embed(torch.arange(6))).sum()

runtime = start_runtime("cpu")
torch.manual_seed(7)
width = 5 if runtime.rank == 1 and sys.argv[1] == "mismatch" else 3
with torch.device("cpu" if runtime.is_main else "meta"):
    model = Part(width)
try:
    shard_from_rank0(model, runtime, bf16=False)
except ValueError as error:
    say(f"rank {runtime.rank}: {error}")
    sys.exit(3)
out = model(torch.ones(2, 4)).sum()
torch.manual_seed(7)
expected = Part(3)(torch.ones(2, 4)).sum()
say(f"rank {runtime.rank}: {float(out):.6f} {float(expected):.6f}")
dist.destroy_process_group()
'''


@pytest.mark.parametrize("case", ["same", "mismatch"])
def test_shard_from_rank0_fills_a_meta_skeleton_or_names_the_entries_that_differ(tmp_path, case):
    """Rank 1 shards a meta-device skeleton and computes with rank 0's weights (a tied pair among them) and
    unsaved buffer; a skeleton whose shapes differ from rank 0's model fails naming the entry and both
    shapes."""
    script = tmp_path / "shard.py"
    script.write_text(SHARD_FROM_RANK0)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), case], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    if case == "same":
        assert done.returncode == 0, done.stderr[-3000:]
        results = sorted(line.split(": ")[1].split() for line in done.stdout.splitlines() if line.startswith("rank"))
        assert len(results) == 2 and all(out == expected for out, expected in results)
    else:
        assert done.returncode != 0
        assert "rank 1's model skeleton differs from rank 0's model in 2 entries" in done.stdout
        assert "rank 0: another rank's model skeleton differs" in done.stdout
        assert "linear.weight (3, 4) / (5, 4)" in done.stdout and "linear.bias (3,) / (5,)" in done.stdout


def test_recipe_reads_its_tokenizer_and_model_folders_from_fsspec_urls(env, monkeypatch, capsys):
    """Tokenizer, tower and LLM paths, and a stage's init, given as URLs (fsspec's in-memory filesystem here,
    s3:// or gs:// in a real run): each folder is fetched once into OUTPUT/.fetched and trained from; the
    frozen parts of a projector-only stage keep exactly the fetched weights. A URL with no folder fails
    naming the recipe entry and the URL. `trainer.generate` takes a model folder's URL and an image URL."""
    import fsspec

    from trainer import generate
    from trainer.mirror import push_folder
    from trainer.tokenizer import train_bpe_tokenizer

    recipe = yaml.safe_load(TINY.read_text())
    tokenizer = train_bpe_tokenizer([str(REPO / "synth" / "corpora" / "en.txt")], 600)
    torch.manual_seed(0)
    model = build_model(load_recipe(str(TINY)).model.vlm_config(), tokenizer, "<image>")
    model.save_pretrained(env / "vlm", tokenizer)
    push_folder(env / "vlm", "memory://models/vlm")
    for part in ("vision", "llm"):
        push_folder(env / "vlm" / part, f"memory://models/{part}")
    original = model.state_dict()

    def run(name: str, **changes) -> dict:
        variant = recipe | {"output": str(env / name), "tokenizer": {"path": "memory://models/llm"}}
        variant["stages"] = [recipe["stages"][0] | {"steps": 1, "mixture": str(REPO / "mixtures/demo/stage1.yaml")}
                             | changes]
        variant["model"] = recipe["model"] | {"vision": {"path": "memory://models/vision"},
                                              "llm": {"path": "memory://models/llm"}}
        path = env / f"{name}.yaml"
        path.write_text(yaml.safe_dump(variant))
        (final,) = run_recipe(str(path), "1")
        return DocVLM.from_pretrained(final).state_dict()

    try:
        from_parts = run("from-parts")
        from_init = run("from-init", init="memory://models/vlm")
        with pytest.raises(FileNotFoundError, match=r"stages\[0\]\.init memory://models/gone: cannot fetch it "
                                                    r"\(no such folder\)"):
            run("from-nothing", init="memory://models/gone")
        with pytest.raises(FileNotFoundError, match=r"stages\[0\]\.init /nowhere/model: no such folder"):
            run("from-nowhere", init="/nowhere/model")  # not taken for a model hub's repository id
        fsspec.filesystem("memory").pipe_file("/models/page.png", page(1, (300, 200)))
        monkeypatch.setenv("DOCFORGE_CACHE", str(env / "cache"))
        assert generate.main(["memory://models/vlm", "--image", "memory://models/page.png", "--max-new-tokens", "2"]) == 0
        assert "memory://models/vlm reloaded" in capsys.readouterr().out
        assert [p.name.rsplit("-", 1)[0] for p in (env / "cache" / FETCHED).iterdir()] == ["vlm"]
    finally:
        fsspec.filesystem("memory").rm("/models", recursive=True)
    assert sorted(p.name.rsplit("-", 1)[0] for p in (env / "from-parts" / FETCHED).iterdir()) == ["llm", "vision"]
    assert sorted(p.name.rsplit("-", 1)[0] for p in (env / "from-init" / FETCHED).iterdir()) == ["llm", "vlm"]
    for trained in (from_parts, from_init):
        assert not changed(parameters_of(original, "vision"), parameters_of(trained, "vision"))
        assert not changed(parameters_of(original, "llm"), parameters_of(trained, "llm"))
        assert changed(parameters_of(original, "projector"), parameters_of(trained, "projector"))


def test_a_data_error_met_while_a_step_runs_stops_the_run_after_that_step_is_logged_and_saved(env):
    """The loop takes the next step's batches while the current step's last passes run. When the data side
    fails then (here: after three good pages, 600 truncated PNGs in a row, so the packer gives up), the
    step that was running is still logged and checkpointed before the run stops with the data's error."""
    good = [{"__key__": f"good-{i}", "png": page(i, (700, 700)), "txt": f"page {i} " * 20,
             "json": {"family": "ocr", "lang": "en"}} for i in range(3)]
    bad = [{"__key__": f"bad-{i:03d}", "png": page(i)[:100], "txt": "cut short",
            "json": {"family": "ocr", "lang": "en"}} for i in range(600)]
    write_dataset(env, "pages", good + bad, max_count=1000)  # one shard: read in this order
    (env / "pages.yaml").write_text(f"name: pages\nstage: 2\nseed: 0\nsources:\n"
                                    f"  - {{name: pages, shards: {env / 'pages'}, weight: 1, task: ocr}}\n")
    recipe = yaml.safe_load(tiny_variant(env, "data-error", steps=6, stages=(2,), checkpoint_every=1,
                                         shuffle_buffer=1, packing_window=1).read_text())
    # each good page (2×2 tiles + global view: 720 image tokens) fills a row of 1,024 alone
    recipe["stages"][0] |= {"mixture": str(env / "pages.yaml"), "grad_accum": 1}
    path = env / "data-error.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(NothingUsable, match="512 samples drawn were all skipped"):
        run_recipe(str(path), "2")
    stage = env / "data-error" / "stage2"
    assert sorted(steps_of(stage)) == [1, 2]  # the third page waits for a row-mate that never comes
    assert (stage / "checkpoints" / "step-000002").is_dir()


def test_generate_opens_a_photo_upright_by_its_exif_orientation(tmp_path):
    from trainer.generate import open_image

    stored = Image.new("RGB", (40, 20), "white")  # stored wide; EXIF orientation 6: shown turned, tall
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "photo.jpg", exif=exif.tobytes())
    stored.save(tmp_path / "plain.jpg")
    assert open_image(str(tmp_path / "photo.jpg")).size == (20, 40)
    assert open_image(f"file://{tmp_path / 'plain.jpg'}").size == (40, 20)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("worker", ["thread", "process"])
def test_the_loop_trains_on_cuda_with_the_gpu_settings(env, worker):
    """The loop's CUDA-only parts (pinned or page-locked slot batches, the copy event before the next
    step's batches are taken, bf16 weights with fused weight gradients, the step-end sync, MFU and peak
    memory in the log) over a few steps of the tiny model, each data worker."""
    name = f"cuda-{worker}"
    recipe = tiny_variant(env, name, steps=3, stages=(2,), device="cuda", bf16_weights=True,
                          fused_weight_grads=True, data_worker=worker, checkpoint_every=2)
    run_recipe(str(recipe), "2")
    steps = steps_of(env / name / "stage2")
    assert sorted(steps) == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(s["loss"])) and s["peak_memory_gib"] > 0 for s in steps.values())
    assert (env / name / "stage2" / "final").is_dir()
