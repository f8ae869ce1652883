"""Stopping and resuming a training run (trainer.train, trainer.checkpoint, trainer.stop_request): SIGKILL
and SIGTERM mid-stage then --resume, the same losses and data order; SIGTERM to one rank of two; checkpoints
mirrored to a URL and resumed on a fresh node; a run saved by 2 ranks resumed by 1 with --reshard; a data
error stopping the run after the step that met it is logged and saved."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from tests.trainer_runs import demo_out, env  # noqa: F401 (fixtures)
from tests.trainer_runs import (REPO, assert_same_steps, changed, page, signal_after_steps, start_training, steps_of,
                                tiny_variant, train_two_ranks, write_dataset)
from trainer.data import NothingUsable
from trainer.model import DocVLM
from trainer.recipe import load_recipe
from trainer.train import run_recipe


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
