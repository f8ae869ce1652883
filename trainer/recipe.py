"""Training recipes: one YAML file naming the model, the tokenizer, the runtime and the three stages
(mixture, trainable modules, per-module learning rates, schedule, batch, sequence length, tiles).
`load_recipe` validates it; `trainer.train` runs it. Relative paths resolve against the recipe's folder;
the tokenizer, model and `init` paths may also be fsspec URLs (s3://…, fetched once per node:
`trainer.remote_folders`); `${VAR}` / `${VAR:-default}` take environment variables (as in mixture
manifests).

    name: tiny
    output: ${DOCFORGE_TRAIN_OUT:-../../train-out}/tiny
    seed: 0
    tokenizer: {train: {files: [../../synth/corpora/en.txt], vocab_size: 1024}}   # or {path: /models/qwen2}
                                # (+ chat_template: chatml, or a Jinja file, for a tokenizer without one)
    model:
      vision: {config: {model_type: clip_vision_model, image_size: 336, patch_size: 14, ...}}  # or {path: ...}
                                # (+ trust_remote_code: true for a folder with its own model code)
      llm: {config: {model_type: qwen2, hidden_size: 64, ...}}                                # or {path: ...}
    stages:
      - stage: 1
        mixture: ../../mixtures/demo/stage1.yaml
        trainable: [projector]
        lr: {projector: 1.0e-3}
        steps: 4
        micro_batch: 1
        grad_accum: 2
        seq_len: 1024
        max_tiles: 4                # tiles are the vision tower's image size (336 for CLIP ViT-L/14-336)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixtures.manifest import YamlLines, field_name, interpolate
from trainer.model import ModelConfig
from trainer.tokenizer import CHATML

class RecipeError(ValueError):
    """A recipe that cannot be used; the message starts with `FILE:LINE: FIELD:`."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainedTokenizer(Strict):
    files: list[str] = Field(min_length=1)
    vocab_size: int = Field(ge=300)


class TokenizerSpec(Strict):
    path: str | None = None
    train: TrainedTokenizer | None = None
    # the chat template to use in place of the tokenizer's own (a base LLM's tokenizer often has none):
    # "chatml" (adds <|im_start|> and <|im_end|> where missing; <|im_end|> becomes the end-of-sequence
    # token, so generation stops where the trained turns end), or a Jinja file's path or URL
    chat_template: str | None = None

    @model_validator(mode="after")
    def one_source(self) -> TokenizerSpec:
        if (self.path is None) == (self.train is None):
            raise ValueError("give exactly one of path (a tokenizer folder or its URL) or train (files, vocab_size)")
        return self


class PartSpec(Strict):
    path: str | None = None
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def one_source(self) -> PartSpec:
        if (self.path is None) == (self.config is None):
            raise ValueError("give exactly one of path (a folder of weights or its URL) or config (random weights)")
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("config needs a model_type (e.g. clip_vision_model, siglip_vision_model, qwen2)")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path} if self.path is not None else {"config": self.config}


class VisionSpec(PartSpec):
    # a tower folder whose model code ships with it (`auto_map` in its config.json, e.g. InternViT-300M):
    # run that code. Only for folders you trust; the LLM must be a class transformers has (the packed
    # attention goes through transformers' attention functions)
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def remote_code_from_a_folder(self) -> VisionSpec:
        if self.trust_remote_code and self.path is None:
            raise ValueError("trust_remote_code runs the code of a model folder: give path")
        return self

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | ({"trust_remote_code": True} if self.trust_remote_code else {})


class ModelSpec(Strict):
    vision: VisionSpec
    llm: PartSpec
    feature_layer: int = -2
    pixel_shuffle: bool = True
    row_separators: bool = True
    projector_hidden: int | None = Field(default=None, gt=0)
    attention: Literal["varlen", "sdpa_per_sample", "sdpa", "eager", "flash_attention_2"] = "varlen"
    # the tower's pixel statistics per RGB channel; default: the vision path's preprocessor_config.json,
    # else the tower type's (SigLIP 0.5, CLIP's otherwise)
    image_mean: list[float] | None = Field(default=None, min_length=3, max_length=3)
    image_std: list[Annotated[float, Field(gt=0)]] | None = Field(default=None, min_length=3, max_length=3)

    def vlm_config(self) -> ModelConfig:
        return ModelConfig(self.vision.as_dict(), self.llm.as_dict(), self.feature_layer, self.pixel_shuffle,
                           self.row_separators, self.projector_hidden, self.attention, self.image_mean,
                           self.image_std)


class RuntimeSpec(Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    parallel: Literal["ddp", "fsdp"] = "ddp"
    bf16: bool = True  # autocast on GPU; CPU runs stay float32
    # a step's passes run on bf16 copies of the weights, cast once a step, with fp32 master weights and
    # gradients summed in fp32 (trainer.bf16_weights); saves autocast's per-micro-batch casts. One process
    # or ddp (FSDP2 has its own mixed precision); on a CPU the passes then run in bf16 too
    bf16_weights: bool = False
    # with bf16_weights: each trained Linear's backward product (and each Embedding's row scatter) adds its
    # weight gradient straight into the fp32 sum (trainer.fused_weight_grads) instead of writing a bf16
    # gradient for a hook to add
    fused_weight_grads: bool = False
    activation_checkpointing: bool = False
    # torch.compile each transformer block (the LLM's decoder layers, the tower's encoder layers): fuses the
    # norms, activations, rotary embeddings and dtype casts between the matrix products; and the loss (its
    # fp32 cast and log-softmax over the vocabulary); the first steps compile (about a minute on a GPU),
    # and a CPU run needs a C++ compiler
    compile: bool = False
    prefetch: int = Field(default=4, ge=1)  # micro-batches made ready beyond the current step's
    # a micro-batch is as wide as its longest packed row rounded up to this (never wider than seq_len), so
    # compute is not spent on padding; null: always seq_len wide (fixed shapes)
    pad_to_multiple_of: int | None = Field(default=64, ge=1)
    # drawn samples that rows are packed from (trainer.data.PackedBatches): each row starts with the oldest,
    # then takes the held samples that fill the rest most closely, so rows come out fuller; each sample is
    # packed within this many rows of being drawn, and the held samples' raw records travel in every
    # batch's data state. 1: stream order (a sample that does not fit starts the next row)
    packing_window: int = Field(default=16, ge=1)
    # where micro-batches are prepared: a thread of the training process (batches pinned there on a GPU),
    # or a forked worker process, which shares no interpreter lock with the training loop, so it never
    # delays a kernel launch (batches cross through shared slots made before the fork, page-locked on a
    # GPU: trainer.batch_slots)
    data_worker: Literal["thread", "process"] = "thread"
    shuffle_buffer: int = Field(default=256, ge=1)
    log_every: int = Field(default=1, ge=1)
    checkpoint_every: int = Field(default=0, ge=0)  # 0: only at the stage's end
    keep_checkpoints: int = Field(default=2, ge=1)
    tensorboard: bool = False
    # [first, last]: a kernel profile of those steps (1-based) in STAGE_DIR/profile/ (trainer.profiling)
    profile_steps: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    checkpoint_url: str | None = None  # fsspec URL every node reaches: checkpoints and stage models mirrored there

    @model_validator(mode="after")
    def consistent(self) -> RuntimeSpec:
        if self.bf16_weights and self.parallel == "fsdp":
            raise ValueError("bf16_weights works with parallel: ddp or one process; FSDP2 already computes on bf16 "
                             "gathers of its fp32 shards (its mixed-precision policy, set by bf16: true)")
        if self.fused_weight_grads and not self.bf16_weights:
            raise ValueError("fused_weight_grads adds into the fp32 gradient sums of bf16_weights: set bf16_weights: "
                             "true as well")
        if self.profile_steps and self.profile_steps[1] < self.profile_steps[0]:
            raise ValueError(f"profile_steps is [first, last], got {list(self.profile_steps)}")
        return self


class StageSpec(Strict):
    stage: int = Field(ge=1, le=3)
    mixture: str
    trainable: list[Literal["vision", "projector", "llm"]] = Field(min_length=1)
    lr: dict[Literal["vision", "projector", "llm"], float]
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    steps: int | None = Field(default=None, gt=0)
    samples: int | None = Field(default=None, gt=0)  # global samples; steps = ceil(samples / samples per step)
    micro_batch: int = Field(default=1, gt=0)  # packed rows per micro-batch
    grad_accum: int = Field(default=1, gt=0)
    # packed rows a step over all ranks, in place of grad_accum: the accumulation is then worked out from the
    # world size the run has (`accumulation`), so an elastic group or a resharded resume keeps the batch
    global_batch: int | None = Field(default=None, gt=0)
    seq_len: int = Field(gt=16)
    max_tiles: int = Field(default=16, ge=1)
    global_view: bool = True
    grad_clip: float = Field(default=1.0, gt=0)
    init: str | None = None  # a model folder or its URL; default: the previous stage's output (stage 1: the model spec)

    @model_validator(mode="after")
    def consistent(self) -> StageSpec:
        if (self.steps is None) == (self.samples is None):
            raise ValueError("give exactly one of steps or samples")
        if self.global_batch is not None and "grad_accum" in self.model_fields_set:
            raise ValueError("give grad_accum or global_batch, not both (global_batch sets the accumulation from "
                             "the number of ranks)")
        missing = [m for m in self.trainable if m not in self.lr]
        if missing:
            raise ValueError(f"trainable modules {missing} have no learning rate in lr")
        return self


def accumulation(stage: StageSpec, world_size: int) -> int:
    """Micro-batches a rank accumulates a step: the stage's grad_accum, or the whole number that brings
    micro_batch × it × world_size nearest to its global_batch (at least 1)."""
    if stage.global_batch is None:
        return stage.grad_accum
    return max(1, round(stage.global_batch / (stage.micro_batch * world_size)))


class RecipeSpec(Strict):
    name: str
    output: str
    seed: int = 0
    tokenizer: TokenizerSpec
    model: ModelSpec
    runtime: RuntimeSpec = RuntimeSpec()
    stages: list[StageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def stages_in_order(self) -> RecipeSpec:
        numbers = [s.stage for s in self.stages]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"stages must be distinct and in order, got {numbers}")
        return self


def resolve_against(base: Path, value: str | None) -> str | None:
    if value is None or "://" in value:
        return value
    return str((base / value).resolve()) if not os.path.isabs(value) else value


def load_recipe(path: str) -> RecipeSpec:
    """Validate a recipe file; errors name the file, line and field."""
    recipe_path = Path(path)
    try:
        text = recipe_path.read_text(encoding="utf-8")
    except OSError as exn:
        raise RecipeError(f"{path}: cannot read the recipe ({exn})") from exn
    lines = YamlLines(text)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exn:
        raise RecipeError(f"{path}: not valid YAML ({exn})") from exn

    def fail(where: tuple, message: str):
        raise RecipeError(f"{path}:{lines.line(where)}: {field_name(where) or 'recipe'}: {message}")

    if not isinstance(raw, dict):
        fail((), "a recipe is a YAML mapping")
    raw = interpolate(raw, (), fail)
    try:
        spec = RecipeSpec.model_validate(raw)
    except ValidationError as exn:
        error = exn.errors()[0]
        where = tuple(p for p in error["loc"] if p not in ("function-after",))
        fail(where, error["msg"])
    base = recipe_path.resolve().parent
    spec.output = resolve_against(base, spec.output)
    if spec.tokenizer.path:
        spec.tokenizer.path = resolve_against(base, spec.tokenizer.path)
    if spec.tokenizer.chat_template not in (None, CHATML):
        spec.tokenizer.chat_template = resolve_against(base, spec.tokenizer.chat_template)
    if spec.tokenizer.train:
        spec.tokenizer.train.files = [resolve_against(base, f) for f in spec.tokenizer.train.files]
    for part in (spec.model.vision, spec.model.llm):
        part.path = resolve_against(base, part.path)
    for stage in spec.stages:
        stage.mixture = resolve_against(base, stage.mixture)
        stage.init = resolve_against(base, stage.init)
    return spec
