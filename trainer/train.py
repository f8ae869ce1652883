"""The training loop and the three-stage runner: the last step of the flow (stream ▶ tile ▶ tokenize ▶ pack
▶ **train**). `run_recipe` trains the recipe's stages in order, each starting from the previous stage's
output folder (stage 1 from the recipe's model spec); `train_stage` is one stage read top to bottom:
build the parts, restore the newest checkpoint when resuming, then per step draw grad_accum micro-batches,
forward/backward each (loss summed over labelled tokens, divided by the step's labelled tokens over all
ranks), clip, step, log, checkpoint (and stop there on a SIGTERM: trainer.stop_request). Output layout
under the recipe's `output`:

    tokenizer/                      the tokenizer every stage uses
    stage1/log.jsonl                one JSON line per step
    stage1/checkpoints/step-*/      resumable checkpoints (trainer.checkpoint)
    stage1/final/                   the stage's model folder (trainer.model), the next stage's start

With `runtime.checkpoint_url`, finished checkpoints and stage models are also mirrored to that fsspec URL
(`trainer.mirror`), and `--resume` on a node without them fetches them from there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from mixtures.manifest import load_manifest
from mixtures.stream import MixtureStream
from trainer.bf16_weights import Bf16Weights
from trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from trainer.mirror import fetch_newest_checkpoint, is_complete, join, pull_folder, push_checkpoint, push_folder
from trainer.data import MicroBatch, PackedBatches, Prefetcher, SampleEncoder
from trainer.distributed import (Runtime, block_modules, gradient_sync, start_runtime, stop_runtime, unwrap,
                                 wrap_model)
from trainer.metrics import FlopCounter, StepLog, peak_flops
from trainer.model import DocVLM, build_model
from trainer.profiling import StepProfiler
from trainer.recipe import RecipeSpec, StageSpec, accumulation, load_recipe
from trainer.remote_folders import local_folder
from trainer.stop_request import StopRequest, Stopped
from trainer.tiling import TilingConfig
from trainer.tokenizer import load_tokenizer, train_bpe_tokenizer

FINAL = "final"


class WarmupCosine:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_ratio` of each group's base rate by the
    end of the stage (progress = steps or samples done over the stage's target)."""

    def __init__(self, optimizer: torch.optim.Optimizer, stage: StageSpec):
        self.optimizer = optimizer
        self.stage = stage
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.steps = 0
        self.samples = 0
        self.apply()

    @property
    def progress(self) -> float:
        done = self.steps / self.stage.steps if self.stage.steps else self.samples / self.stage.samples
        return min(1.0, done)

    @property
    def finished(self) -> bool:
        return self.progress >= 1.0

    def factor(self) -> float:
        if self.steps < self.stage.warmup_steps:
            return (self.steps + 1) / (self.stage.warmup_steps + 1)
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress))
        return self.stage.min_lr_ratio + (1 - self.stage.min_lr_ratio) * cosine

    def apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * self.factor()

    def step(self, samples: int) -> None:
        self.steps += 1
        self.samples += samples
        self.apply()

    def state_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "samples": self.samples}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps, self.samples = state["steps"], state["samples"]
        self.apply()


def stage_directory(recipe: RecipeSpec, stage: StageSpec) -> Path:
    return Path(recipe.output) / f"stage{stage.stage}"


def prepare_tokenizer(recipe: RecipeSpec, runtime: Runtime):
    """The recipe's tokenizer folder (a URL's fetched copy), or the one trained for it (once, by rank 0,
    kept in OUTPUT/tokenizer)."""
    if recipe.tokenizer.path:
        return load_tokenizer(local_folder(recipe.tokenizer.path, recipe.output, runtime, "tokenizer.path"),
                              recipe.tokenizer.chat_template)
    folder = Path(recipe.output) / "tokenizer"
    if runtime.is_main and not folder.is_dir():
        spec = recipe.tokenizer.train
        staging = folder.with_name(".tokenizer.partial")
        shutil.rmtree(staging, ignore_errors=True)
        train_bpe_tokenizer(spec.files, spec.vocab_size).save_pretrained(str(staging))
        staging.rename(folder)
    runtime.barrier()
    return load_tokenizer(str(folder), recipe.tokenizer.chat_template)


def initial_model(recipe: RecipeSpec, index: int, tokenizer, runtime: Runtime, skeleton: bool = False) -> DocVLM:
    """The stage's starting model: its init folder, the previous stage's final model, or the model spec's
    (folders given as URLs read from their fetched copies; fresh weights seeded, so every rank builds the
    same). A `skeleton` has the same shapes on the meta device and reads no weights: an FSDP rank other
    than 0 gets its shards from rank 0 (`shard_from_rank0`)."""
    stage = recipe.stages[index]
    init = stage.init and local_folder(stage.init, recipe.output, runtime, f"stages[{index}].init")
    if init is None and index > 0:
        init = str(stage_directory(recipe, recipe.stages[index - 1]) / FINAL)
    if init is not None and not Path(init).is_dir():
        raise FileNotFoundError(f"stage {stage.stage} starts from {init}, which does not exist: train the previous "
                                "stage first (--stage all) or set the stage's init")
    config = recipe.model.vlm_config()
    if init is None:
        config = replace(config, **{
            name: spec | {"path": local_folder(spec["path"], recipe.output, runtime, f"model.{name}.path")}
            if "path" in spec else spec for name, spec in (("vision", config.vision), ("llm", config.llm))})
    with torch.device("meta") if skeleton else contextlib.nullcontext():
        if init is not None:
            return DocVLM.from_pretrained(init, weights=not skeleton)
        torch.manual_seed(recipe.seed)
        return build_model(config, tokenizer, weights=not skeleton)


def set_trainable(model: DocVLM, trainable: list[str]) -> None:
    for name, params in model.module_parameters().items():
        for param in params:
            param.requires_grad_(name in trainable)


def build_optimizer(model: DocVLM, stage: StageSpec, device: torch.device) -> torch.optim.AdamW:
    """AdamW with one group per trained module (its own learning rate); no weight decay on biases/norms."""
    groups = []
    for name, params in model.module_parameters().items():
        if name not in stage.trainable:
            continue
        decay = [p for p in params if p.ndim >= 2]
        plain = [p for p in params if p.ndim < 2]
        groups.append({"params": decay, "lr": stage.lr[name], "weight_decay": stage.weight_decay, "name": name})
        groups.append({"params": plain, "lr": stage.lr[name], "weight_decay": 0.0, "name": name})
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, betas=stage.betas, fused=device.type == "cuda")


def make_batches(recipe: RecipeSpec, stage: StageSpec, model: DocVLM, tokenizer, runtime: Runtime) -> PackedBatches:
    mixture = load_manifest(stage.mixture)
    stream = MixtureStream(mixture, runtime.slot, buffer_size=recipe.runtime.shuffle_buffer)
    tiling = TilingConfig(tile_size=model.tile_size, max_tiles=stage.max_tiles, global_view=stage.global_view)
    encoder = SampleEncoder(tokenizer, model.visual_token_count, tiling, stage.seq_len)
    return PackedBatches(stream, encoder, stage.micro_batch, tokenizer.pad_token_id,
                         recipe.runtime.pad_to_multiple_of, recipe.runtime.packing_window)


def take_step_batches(prefetch: Prefetcher, count: int) -> tuple[list[MicroBatch], float]:
    """A step's `count` micro-batches (fewer when the mixture runs out) and the seconds spent waiting for them."""
    taken, wait = [], 0.0
    for _ in range(count):
        fetch = time.perf_counter()
        batch = prefetch.next()
        wait += time.perf_counter() - fetch
        if batch is None:
            break
        taken.append(batch)
    return taken, wait


def batch_digest(batches: list[MicroBatch]) -> str:
    """A short fingerprint of the sample keys this rank trained on in a step, in order."""
    return hashlib.sha1("\n".join(k for b in batches for k in b.keys).encode()).hexdigest()[:16]


def train_stage(recipe: RecipeSpec, index: int, runtime: Runtime, tokenizer, resume: bool,
                reshard: bool = False, stop: StopRequest | None = None) -> Path:
    stage = recipe.stages[index]
    directory = stage_directory(recipe, stage)
    final = directory / FINAL
    checkpoints = directory / "checkpoints"
    mirror = join(recipe.runtime.checkpoint_url, f"stage{stage.stage}") if recipe.runtime.checkpoint_url else None
    if resume and mirror and not final.is_dir() and is_complete(join(mirror, FINAL)):
        if runtime.local_rank == 0:  # one fetch per node
            pull_folder(join(mirror, FINAL), final)
        runtime.barrier()
    if final.is_dir() and resume:
        return final
    started_before = directory.exists()
    runtime.barrier()  # every rank looks before rank 0 creates the folder
    if started_before and not resume:
        raise FileExistsError(f"{directory} exists: pass --resume to continue that run, or remove it")
    if runtime.is_main:
        checkpoints.mkdir(parents=True, exist_ok=True)
    runtime.barrier()

    settings = recipe.runtime
    # FSDP ranks other than 0 read no weights: they shard a skeleton that rank 0 fills (wrap_model)
    from_rank0 = runtime.distributed and settings.parallel == "fsdp"
    model = initial_model(recipe, index, tokenizer, runtime, skeleton=from_rank0 and not runtime.is_main)
    set_trainable(model, stage.trainable)
    if settings.activation_checkpointing:
        for part in (model.vision, model.llm):
            if part.supports_gradient_checkpointing:
                part.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not from_rank0:  # FSDP moves each rank's shards to its device
        model.to(runtime.device)
    model.train()
    if settings.compile:
        for block in block_modules(model):
            block.compile()
        model.compile_loss()
    flops = FlopCounter(model, set(stage.trainable))
    # bf16 weights average their fp32 gradients over the ranks themselves, in place of DDP
    weights = Bf16Weights(model, runtime, settings.fused_weight_grads) if settings.bf16_weights else None
    wrapped = model if weights else wrap_model(model, runtime, settings.parallel, settings.bf16)
    optimizer = build_optimizer(unwrap(wrapped), stage, runtime.device)
    schedule = WarmupCosine(optimizer, stage)
    batches = make_batches(recipe, stage, model, tokenizer, runtime)
    trained = Counter()  # samples trained per source, all ranks

    rank_seed = recipe.seed * 1000 + stage.stage * 100 + runtime.rank  # this rank's RNG in this stage
    torch.manual_seed(rank_seed)
    if resume and mirror:
        if runtime.local_rank == 0:
            fetch_newest_checkpoint(join(mirror, "checkpoints"), checkpoints)
        runtime.barrier()
    latest = latest_checkpoint(checkpoints) if resume else None
    log = StepLog(directory, stage.stage, stage.steps, runtime.is_main, settings.tensorboard)
    if latest is not None:
        trainer_state, saved_data = load_checkpoint(latest, wrapped, optimizer, runtime, reshard)
        schedule.load_state_dict(trainer_state["schedule"])
        trained = Counter(trainer_state["trained"])
        if isinstance(saved_data, list):  # saved by another number of ranks
            batches.load_resharded(saved_data)
            torch.manual_seed(rank_seed + 7919 * schedule.steps)  # the old ranks' RNG states fit no new rank
            log.note(f"stage {stage.stage}: resumed from {latest} (step {schedule.steps}), resharded from "
                     f"{len(saved_data)} ranks to {runtime.world_size}")
        else:
            batches.load_state_dict(saved_data)
            log.note(f"stage {stage.stage}: resumed from {latest} (step {schedule.steps})")

    accum = accumulation(stage, runtime.world_size)
    if stage.global_batch is not None:
        rows = stage.micro_batch * accum * runtime.world_size
        log.note(f"stage {stage.stage}: grad_accum {accum} on {runtime.world_size} ranks, {rows} rows a step"
                 + ("" if rows == stage.global_batch else f" (the nearest to global_batch {stage.global_batch})"))
    # a step takes its grad_accum micro-batches at once: the queue holds those plus `prefetch` more, so the
    # worker is never left to build the rest of a step while the GPU waits; a step is done with its batches
    # once its last copy to the GPU is done, and the next step's are taken then (so a worker process may
    # reuse the slots of the step before)
    prefetch = Prefetcher(batches, settings.prefetch + accum, pin=runtime.device.type == "cuda",
                          process=settings.data_worker == "process", keep=accum)
    peak = peak_flops(runtime.device)
    sources = [s.name for s in batches.stream.mixture.sources]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if settings.bf16 and runtime.device.type == "cuda"
                else contextlib.nullcontext())
    data_state: dict[str, Any] = batches.state_dict()
    profiler = StepProfiler(settings.profile_steps, directory, runtime.device, accum, runtime.is_main)
    try:
        ahead: tuple[list[MicroBatch], float] | Exception | None = None  # the next step's, taken early
        while not schedule.finished:
            profiler.before_step(schedule.steps + 1)
            started = time.perf_counter()
            if isinstance(ahead, Exception):
                raise ahead
            step_batches, wait = ahead or take_step_batches(prefetch, accum)
            ahead = None
            if runtime.min(len(step_batches) == accum) < 1:
                log.note(f"stage {stage.stage}: the mixture ran out after step {schedule.steps}")
                break
            local_labels = sum(b.label_tokens for b in step_batches)
            label_tokens = runtime.sum(local_labels)
            loss_total = torch.zeros((), device=runtime.device)
            previous_done = None
            with weights.passes() if weights else contextlib.nullcontext():
                for i, batch in enumerate(step_batches):
                    batch = batch.to(runtime.device)
                    if runtime.device.type == "cuda" and i == len(step_batches) - 1:
                        copied = torch.cuda.Event()
                        copied.record()
                    with gradient_sync(wrapped, i == len(step_batches) - 1), autocast:
                        out = wrapped(**batch.model_inputs())
                        loss = out["loss_sum"] * runtime.world_size / max(label_tokens, 1.0)
                    loss.backward()
                    loss_total += out["loss_sum"].detach().float()
                    if runtime.device.type == "cuda":
                        # keep the CPU at most one micro-batch ahead of the GPU: the wait on the event frees
                        # the GIL for the data thread, which a training thread launching non-stop can starve
                        done = torch.cuda.Event()
                        done.record()
                        if previous_done is not None:
                            previous_done.synchronize()
                        previous_done = done
            trainable = [p for group in optimizer.param_groups for p in group["params"]]
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, stage.grad_clip)
            if hasattr(grad_norm, "full_tensor"):
                grad_norm = grad_norm.full_tensor()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            data_state = step_batches[-1].state
            # the next step's batches are taken while a GPU runs this step's last passes and update (a
            # worker process's take is ~1 ms a micro-batch); this step's copies to the GPU are done, so
            # their slots may be refilled. A worker's error waits for this step's log and checkpoint.
            if runtime.device.type == "cuda":
                copied.synchronize()
            try:
                ahead = take_step_batches(prefetch, accum)
            except Exception as exn:
                ahead = exn
            if runtime.device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
            step_samples = Counter()
            for batch in step_batches:
                step_samples.update(batch.sources)
            local_tokens = sum(b.real_tokens for b in step_batches)
            lengths = [n for b in step_batches for n in b.lengths]
            views = sum(b.pixels.shape[0] for b in step_batches if b.pixels is not None)
            local_flops = flops.step_flops(local_tokens, local_labels, lengths, views)
            loss_sum, tokens, step_flops, stop_votes, *counts = runtime.sum_all(
                [float(loss_total), local_tokens, local_flops, float(bool(stop and stop.requested))]
                + [step_samples[name] for name in sources])
            trained.update({name: int(c) for name, c in zip(sources, counts)})
            lr = optimizer.param_groups[0]["lr"]
            schedule.step(int(sum(counts)))
            all_trained = sum(trained.values()) or 1
            record = {
                "step": schedule.steps, "ranks": runtime.world_size, "grad_accum": accum,
                "loss": loss_sum / max(label_tokens, 1.0), "lr": lr,
                "lrs": {g["name"]: g["lr"] for g in optimizer.param_groups},
                "grad_norm": float(grad_norm), "tokens": int(tokens), "label_tokens": int(label_tokens),
                "samples": int(sum(counts)), "step_time": elapsed, "tokens_per_s": tokens / elapsed,
                "samples_per_s": sum(counts) / elapsed, "data_wait": wait, "data_wait_share": wait / elapsed,
                "mfu": step_flops / (elapsed * peak * runtime.world_size) if peak else None,
                "mix": {name: trained[name] / all_trained for name in sources},
                "batch_digest": batch_digest(step_batches),
            }
            if runtime.device.type == "cuda":
                record["peak_memory_gib"] = torch.cuda.max_memory_allocated(runtime.device) / 2 ** 30
            log.step(record, print_line=schedule.steps % settings.log_every == 0 or schedule.finished)
            profiler.after_step(schedule.steps, elapsed)
            every = settings.checkpoint_every
            stopping = stop_votes > 0 and not schedule.finished  # on any rank's request, all ranks at this step
            if (every and schedule.steps % every == 0 or stopping) and not schedule.finished:
                saved = save_checkpoint(checkpoints, schedule.steps, wrapped, optimizer,
                                        {"schedule": schedule.state_dict(), "trained": dict(trained)}, data_state,
                                        runtime, settings.keep_checkpoints)
                if mirror and runtime.is_main:
                    push_checkpoint(saved, join(mirror, "checkpoints"), settings.keep_checkpoints)
            if stopping:
                raise Stopped(f"stage {stage.stage}: stopped on SIGTERM after step {schedule.steps}, which is "
                              f"checkpointed ({saved}): rerun the same command with --resume to continue")
    finally:
        profiler.close()
        prefetch.close()
        log.close()
    saved = save_checkpoint(checkpoints, schedule.steps, wrapped, optimizer,
                            {"schedule": schedule.state_dict(), "trained": dict(trained)}, data_state, runtime,
                            settings.keep_checkpoints)
    if mirror and runtime.is_main:
        push_checkpoint(saved, join(mirror, "checkpoints"), settings.keep_checkpoints)
    check_replicas(model, directory, runtime, settings.parallel)
    save_final(wrapped, model, tokenizer, final, runtime)
    if mirror and runtime.is_main:
        push_folder(final, join(mirror, FINAL))
    log.note(f"stage {stage.stage}: done after {schedule.steps} steps; model in {final}; "
             f"skipped samples: {data_state['skipped'] or 'none'}")
    return final


def check_replicas(model: DocVLM, directory: Path, runtime: Runtime, parallel: str) -> None:
    """DDP ranks must end a stage with identical weights: each hashes its trainable parameters, rank 0
    records the hashes in STAGE_DIR/replicas.json and refuses to go on when they differ."""
    if not runtime.distributed or parallel != "ddp":
        return
    digest = hashlib.sha1()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().cpu().float().numpy().tobytes())
    hashes: list[str | None] = [None] * runtime.world_size
    torch.distributed.all_gather_object(hashes, digest.hexdigest())
    if runtime.is_main:
        (directory / "replicas.json").write_text(json.dumps({"weights_sha1": hashes}, indent=2))
    if len(set(hashes)) != 1:
        raise RuntimeError(f"{directory}: the DDP ranks ended with different weights: {hashes}")


def save_final(wrapped, model: DocVLM, tokenizer, final: Path, runtime: Runtime) -> None:
    """The stage's model folder, gathered to rank 0 and renamed into place when complete."""
    state = get_model_state_dict(wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if runtime.is_main:
        staging = final.with_name(f".{FINAL}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, tokenizer, state_dict=state)
        staging.rename(final)
    runtime.barrier()


def run_recipe(path: str, stage: str = "all", resume: bool = False, reshard: bool = False) -> list[Path]:
    """Train the recipe's stages (all of them in order, or the one named); return their model folders.
    `reshard`: a resumed stage may continue from a checkpoint that another number of ranks saved."""
    recipe = load_recipe(path)
    numbers = [s.stage for s in recipe.stages]
    if stage != "all" and int(stage) not in numbers:
        raise ValueError(f"{path}: has stages {numbers}, not stage {stage}")
    for spec in recipe.stages:  # every mixture must load before any stage starts training
        if stage == "all" or int(stage) == spec.stage:
            load_manifest(spec.mixture)
    runtime = start_runtime(recipe.runtime.device)
    try:
        with StopRequest() as stop:  # SIGTERM: stop after the step under way, checkpointed (trainer.stop_request)
            tokenizer = prepare_tokenizer(recipe, runtime)
            outputs = []
            for index, spec in enumerate(recipe.stages):
                if stage == "all" or int(stage) == spec.stage:
                    if outputs and runtime.sum(float(stop.requested)) > 0:
                        raise Stopped(f"stopped on SIGTERM before stage {spec.stage}: rerun the same command "
                                      "with --resume to continue")
                    outputs.append(train_stage(recipe, index, runtime, tokenizer, resume, reshard, stop))
            return outputs
    finally:
        stop_runtime()

