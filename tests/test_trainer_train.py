"""The training loop and the three-stage runner (trainer.train) over real shards read through the demo
mixtures: tiny.yaml end to end, what each stage trains (bitwise), profiles, 2-process gloo DDP and FSDP,
recipe validation, fsspec folders, the loop on CUDA. Stopping and resuming: test_trainer_resume.py."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from mixtures.manifest import load_manifest
from tests.trainer_runs import demo_out, env  # noqa: F401 (fixtures)
from tests.trainer_runs import REPO, TINY, changed, page, steps_of, tiny_variant, train_two_ranks
from trainer.generate import answer
from trainer.model import DocVLM, build_model
from trainer.recipe import RecipeError, load_recipe
from trainer.remote_folders import FETCHED
from trainer.tokenizer import load_tokenizer
from trainer.train import run_recipe


def parameters_of(state: dict[str, torch.Tensor], module: str) -> dict[str, torch.Tensor]:
    prefix = f"{module}."
    return {k: v for k, v in state.items() if k.startswith(prefix) or (module == "projector" and k == "row_separator")}


def parameters(model: DocVLM, module: str) -> dict[str, torch.Tensor]:
    return parameters_of(model.state_dict(), module)


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
