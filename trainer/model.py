"""The document VLM the trainer optimises: a transformers vision tower, an MLP projector and a transformers
causal LM. Tiles (`trainer.tiling`) go through the tower; the chosen layer's patch features, optionally
merged 2×2 (pixel shuffle) and projected, replace the image placeholder tokens of the LLM's input
embeddings, global view first, then the local tiles row by row with an optional learned separator
between tile rows.

A trained model is a folder: `vision/` and `llm/` (each `save_pretrained`, so transformers reloads them
alone; `llm/` also holds the tokenizer), `projector.safetensors` and `docforge_vlm.json`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PreTrainedModel

from mixtures.tasks import IMAGE_PLACEHOLDER
from trainer.attention import SDPA_PER_SAMPLE, VARLEN, PackedRuns, no_mask, packed_runs

CONFIG_FILE = "docforge_vlm.json"
PROJECTOR_FILE = "projector.safetensors"
IGNORE_INDEX = -100
ImageGrid = tuple[int, int, bool]  # a tiled image's (rows, cols, has_global view)
VARLEN_READERS = (VARLEN, "flash_attention_2")  # attentions that take packed run lengths
PREPROCESSOR_FILE = "preprocessor_config.json"  # a transformers image processor's settings
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
HALF = [0.5, 0.5, 0.5]  # SigLIP's mean and std


def label_positions(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices (row·width + p) of the positions p whose next token is a label, for (rows, width) labels."""
    predicts = torch.zeros_like(labels, dtype=torch.bool)
    predicts[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return torch.nonzero(predicts.flatten())[:, 0]


@dataclass
class ModelConfig:
    """What to build. `vision` and `llm` are `{"path": LOCAL_DIR}` or `{"config": {model_type: ..., ...}}`
    (random weights from a transformers config; an LLM config without vocab_size takes the tokenizer's);
    a vision path may add `"trust_remote_code": True` (`build_vision_tower`)."""

    vision: dict[str, Any]
    llm: dict[str, Any]
    feature_layer: int = -2  # hidden state of the tower to read (-1: last layer; LLaVA uses -2)
    pixel_shuffle: bool = True  # merge 2×2 neighbouring patches into one token (4× fewer visual tokens)
    row_separators: bool = True  # a learned embedding between rows of local tiles
    projector_hidden: int | None = None  # default: the LLM's hidden size
    # the LLM's attention over packed rows (trainer.attention): "varlen" (flash varlen kernel inside each
    # sample on CUDA, per-sample sdpa elsewhere), "sdpa_per_sample" (one sdpa call a sample everywhere, so
    # torch may pick cuDNN on Hopper), "sdpa" (one call with a block-diagonal mask), "eager" (the same mask,
    # transformers' own attention: for LLMs only it implements, as Gemma 2's soft-capping) or
    # "flash_attention_2" (the flash-attn package's varlen; needs it installed and a GPU)
    attention: str = VARLEN
    # the tower's pixel statistics, (x/255 - mean) / std per RGB channel; None: the vision path's
    # preprocessor_config.json, else the tower type's own (SigLIP 0.5, CLIP and the rest CLIP's)
    image_mean: list[float] | None = None
    image_std: list[float] | None = None


class Projector(nn.Module):
    """Linear-GELU-Linear from visual features to the LLM's embedding space."""

    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(features)))


def merged_side(side: int) -> int:
    """Tokens a side of a g × g patch grid keeps after the 2×2 merge: ⌈g/2⌉."""
    return (side + 1) // 2


def pixel_shuffle(features: torch.Tensor) -> torch.Tensor:
    """(views, g·g, C) patch features -> (views, ⌈g/2⌉², 4C): each 2×2 block of patches becomes one token,
    row by row. An odd grid (SigLIP-so400m's 27 × 27 at 384 px) first gets a row and a column of zeros at
    its bottom and right, so its last tokens merge fewer patches."""
    views, count, channels = features.shape
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"pixel shuffle needs a square patch grid, got {count} patches")
    grid = features.reshape(views, side, side, channels)
    half = merged_side(side)
    if side % 2:
        grid = F.pad(grid, (0, 0, 0, 1, 0, 1))
    grid = grid.reshape(views, half, 2, half, 2, channels)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(views, half * half, 4 * channels)


def vision_config_of(config: Any) -> Any:
    """The vision part of a transformers config (a full CLIP/SigLIP config holds it as `vision_config`)."""
    return getattr(config, "vision_config", None) or config


def tower_blocks(vision: nn.Module) -> str | None:
    """The name of the tower's list of transformer blocks (`encoder.layers` in transformers' CLIP and SigLIP
    towers): its one ModuleList as long as the config's layer count; None when there is none."""
    layers = vision_config_of(vision.config).num_hidden_layers
    return next((name for name, m in vision.named_modules() if isinstance(m, nn.ModuleList) and len(m) == layers),
                None)


def blocks_read(num_layers: int, feature_layer: int) -> int:
    """How many tower blocks the feature layer's hidden state has passed through (hidden state 0 is the
    embeddings' output, so LLaVA's -2 of 24 blocks has passed through 23)."""
    return num_layers + 1 + feature_layer if feature_layer < 0 else feature_layer


@dataclass(frozen=True)
class LogitFinish:
    """How a causal LM's own forward finishes its head's logits, which the loss, computing the head at the
    labelled positions only, has to repeat: Cohere's `logit_scale`, Granite's `logits_scaling`, Gemma 2's
    `final_logit_softcapping`."""

    scale: float | None = None
    scaling: float | None = None
    cap: float | None = None

    @classmethod
    def of(cls, text_config: Any) -> LogitFinish:
        return cls(getattr(text_config, "logit_scale", None), getattr(text_config, "logits_scaling", None),
                   getattr(text_config, "final_logit_softcapping", None))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            logits = logits * self.scale
        if self.scaling is not None:
            logits = logits / self.scaling
        if self.cap is not None:
            logits = torch.tanh(logits / self.cap) * self.cap
        return logits


def label_loss_sum(logits: torch.Tensor, targets: torch.Tensor, finish: LogitFinish) -> torch.Tensor:
    """The next-token cross-entropy summed over the labelled positions, from the head's raw logits there
    (bf16 on a GPU), finished and computed in fp32."""
    return F.cross_entropy(finish(logits.float()), targets, reduction="sum")


@functools.cache
def compiled_label_loss_sum() -> Callable[[torch.Tensor, torch.Tensor, LogitFinish], torch.Tensor]:
    """`label_loss_sum` through torch.compile (`runtime.compile`; made on first use, as torch.compile takes
    most of a second). Compiled, the fp32 cast, the finish, the log-softmax and their backward fuse into a
    few kernels that read the bf16 logits and write their bf16 gradient; eager, each is a pass over the
    (labelled tokens x vocabulary) logits, the fp32 copy and log-softmax kept for the backward (Qwen2's
    151,936-word vocabulary: 3,000 labelled tokens make 1.8 GB of fp32 logits)."""
    return torch.compile(label_loss_sum)


class _FeatureLayerReached(Exception):
    """Stops the tower as its encoder hands back the feature layer's hidden state (`DocVLM.tower_features`)."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__("the tower's feature layer is reached")
        self.hidden = hidden


# The trained weights are kept in float32 whatever a checkpoint or config stores (Qwen2's are bfloat16, and
# transformers loads a checkpoint's own dtype by default): AdamW on bfloat16 weights would lose the small
# updates. The passes still run in bf16 on a GPU (autocast, `runtime.bf16_weights`, or FSDP2's policy).
MASTER_DTYPE = torch.float32


def build_vision_tower(spec: dict[str, Any], weights: bool = True) -> PreTrainedModel:
    """The tower a spec names: a folder's weights, or a config's fresh ones; without `weights`, a path's
    config alone (for a skeleton on the meta device that another rank fills). With `trust_remote_code`,
    the folder's own model code (its config's `auto_map`) builds it."""
    remote = bool(spec.get("trust_remote_code"))
    if "path" in spec:
        config = AutoConfig.from_pretrained(spec["path"], trust_remote_code=remote)
        if remote and "AutoModel" not in getattr(config, "auto_map", {}):
            raise ValueError(f"vision tower {spec['path']}: trust_remote_code is set but its config.json maps no "
                             "AutoModel class (auto_map)")
        config = config if remote else vision_config_of(config)
        if weights and remote:
            return AutoModel.from_pretrained(spec["path"], trust_remote_code=True, dtype=MASTER_DTYPE)
        if weights:
            model_class = AutoModel._model_mapping[type(config)]
            return model_class.from_pretrained(spec["path"], config=config, dtype=MASTER_DTYPE)
    else:
        config = vision_config_of(AutoConfig.for_model(**spec["config"]))
    return AutoModel.from_config(config, dtype=MASTER_DTYPE, trust_remote_code=remote)


def with_pixel_statistics(config: ModelConfig, vision_config: Any) -> ModelConfig:
    """`config` with the mean and std its tower was trained with, when it names none: the image processor's
    when the tower comes from a folder that has one, else its type's."""
    if config.image_mean is not None and config.image_std is not None:
        return config
    mean, std = (HALF, HALF) if vision_config.model_type.startswith("siglip") else (CLIP_MEAN, CLIP_STD)
    processor = Path(config.vision.get("path", "")) / PREPROCESSOR_FILE
    if "path" in config.vision and processor.is_file():
        settings = json.loads(processor.read_text())
        mean, std = settings.get("image_mean", mean), settings.get("image_std", std)
    return replace(config, image_mean=list(mean), image_std=list(std))


def build_llm(spec: dict[str, Any], vocab_size: int, attention: str = VARLEN, weights: bool = True) -> PreTrainedModel:
    """The causal LM a spec names (as `build_vision_tower`), its embeddings grown to `vocab_size` if smaller."""
    if "path" in spec and weights:
        model = AutoModelForCausalLM.from_pretrained(spec["path"], attn_implementation=attention, dtype=MASTER_DTYPE)
    else:
        config = AutoConfig.from_pretrained(spec["path"]) if "path" in spec \
            else AutoConfig.for_model(**{"vocab_size": vocab_size, **spec["config"]})
        model = AutoModelForCausalLM.from_config(config, attn_implementation=attention, dtype=MASTER_DTYPE)
    if model.get_input_embeddings().num_embeddings < vocab_size:
        # the new rows' mean-and-covariance start needs real weights; a skeleton's are filled by another rank
        model.resize_token_embeddings(vocab_size, mean_resizing=weights)
    return model


class DocVLM(nn.Module):
    def __init__(self, vision: PreTrainedModel, llm: PreTrainedModel, config: ModelConfig, image_token_id: int):
        super().__init__()
        vision_config = vision_config_of(vision.config)
        config = with_pixel_statistics(config, vision_config)
        self.vision = vision
        self.llm = llm
        self.config = config
        self.image_token_id = image_token_id
        self.logit_finish = LogitFinish.of(llm.config.get_text_config())
        self.loss_compiled = False
        self.patches_per_side = vision_config.image_size // vision_config.patch_size
        layers = vision_config.num_hidden_layers
        self.blocks_read = blocks_read(layers, config.feature_layer)
        if not 0 <= self.blocks_read <= layers:
            raise ValueError(f"feature_layer {config.feature_layer} is not a hidden state of a {layers}-block tower "
                             f"(0 to {layers}, or -1 to -{layers + 1} from the last)")
        self.tower_stack = tower_blocks(vision)
        # the tower stops early (`tower_features`) when blocks come after the feature layer and an encoder
        # module, below the tower's top, holds them
        blocks_after = self.tower_stack is not None and self.blocks_read < layers
        self.truncated_stack = self.tower_stack if blocks_after and "." in self.tower_stack else None
        merge = 4 if config.pixel_shuffle else 1
        llm_hidden = llm.config.get_text_config().hidden_size
        self.projector = Projector(vision_config.hidden_size * merge, config.projector_hidden or llm_hidden,
                                   llm_hidden)
        self.row_separator = nn.Parameter(torch.randn(llm_hidden) * 0.02) if config.row_separators else None
        for name, values in (("image_mean", config.image_mean), ("image_std", config.image_std)):
            if len(values) != 3:
                raise ValueError(f"{name} needs one value per RGB channel, got {values}")
        std = torch.tensor(config.image_std, dtype=torch.float32)[:, None, None]
        # uint8 -> normalised in one multiply-add: x·(1/(255·std)) + (-mean/std)
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("pixel_shift", -torch.tensor(config.image_mean, dtype=torch.float32)[:, None, None] / std,
                             persistent=False)

    # -- sizes --------------------------------------------------------------------------------------------
    @property
    def tile_size(self) -> int:
        return vision_config_of(self.vision.config).image_size

    @property
    def tokens_per_view(self) -> int:
        side = self.patches_per_side
        return merged_side(side) ** 2 if self.config.pixel_shuffle else side ** 2

    def visual_token_count(self, rows: int, cols: int, has_global: bool) -> int:
        """Placeholder tokens an image tiled as rows × cols (+ global view) takes in the text."""
        separators = rows - 1 if self.row_separator is not None else 0
        return (rows * cols + int(has_global)) * self.tokens_per_view + separators

    # -- forward ------------------------------------------------------------------------------------------
    def encode_views(self, pixels: torch.Tensor) -> torch.Tensor:
        """(views, 3, S, S) uint8 RGB tiles (`trainer.tiling`) -> (views, tokens_per_view, llm_hidden); the
        tiles are normalised here, on the model's device."""
        if pixels.dtype != torch.uint8:
            raise TypeError(f"the model takes uint8 RGB tiles (trainer.tiling.tile_image), got {pixels.dtype}")
        pixels = (pixels.float() * self.pixel_scale + self.pixel_shift).to(next(self.vision.parameters()).dtype)
        hidden = self.tower_features(pixels)
        patches = self.patches_per_side ** 2
        features = hidden[:, -patches:]  # drops a CLS token when the tower has one (CLIP), none for SigLIP
        if self.config.pixel_shuffle:
            features = pixel_shuffle(features)
        return self.projector(features)

    def tower_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's hidden state at the feature layer. Blocks after that layer would feed nothing (yet
        their forward would run and keep activations), so when there are some the call runs the encoder
        over the blocks up to the feature layer only (a shortened block list, put back afterwards) and
        stops the tower as the encoder returns, before any final norm or pooling head."""
        if self.truncated_stack is None:
            return self.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[self.config.feature_layer]
        encoder_name, _, attribute = self.truncated_stack.rpartition(".")
        encoder = self.vision.get_submodule(encoder_name)
        blocks = getattr(encoder, attribute)

        def stop(module, args, output):
            raise _FeatureLayerReached(output[0])

        hook = encoder.register_forward_hook(stop)
        setattr(encoder, attribute, blocks[:self.blocks_read])
        try:
            self.vision(pixel_values=pixels)
        except _FeatureLayerReached as reached:
            return reached.hidden
        finally:
            setattr(encoder, attribute, blocks)
            hook.remove()
        raise RuntimeError(f"the vision tower never ran its encoder ({encoder_name})")

    def visual_sequence(self, views: torch.Tensor, grid: ImageGrid) -> torch.Tensor:
        """One image's projected views as the token sequence: global ⊕ local tiles, rows separated."""
        rows, cols, has_global = grid
        parts = []
        if has_global:
            parts.append(views[0])
        local = views[int(has_global):]
        for row in range(rows):
            if row and self.row_separator is not None:
                parts.append(self.row_separator.to(local.dtype).unsqueeze(0))
            parts.extend(local[row * cols:(row + 1) * cols])
        return torch.cat(parts)

    def embed(self, input_ids: torch.Tensor, grids: list[ImageGrid], pixels: torch.Tensor | None,
              image_index: torch.Tensor | None = None) -> torch.Tensor:
        """The LLM's input embeddings with the images' visual tokens in place of their placeholders;
        `image_index` (the placeholders' flat positions) is read from input_ids when not given."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        if image_index is None:
            image_index = torch.nonzero((input_ids == self.image_token_id).flatten())[:, 0]
        wanted = sum(self.visual_token_count(*grid) for grid in grids)
        if image_index.numel() != wanted:
            raise ValueError(f"the batch has {image_index.numel()} image placeholder tokens but its {len(grids)} "
                             f"images make {wanted} visual tokens")
        if not grids:
            if not self.training:
                return embeds
            # a text-only batch still runs the tower (on one blank view, weighted 0), so every rank
            # runs the same modules: FSDP's per-block collectives would otherwise go out of step
            blank = torch.zeros(1, 3, self.tile_size, self.tile_size, dtype=torch.uint8, device=embeds.device)
            return embeds + 0.0 * self.encode_views(blank).sum().to(embeds.dtype)
        views = self.encode_views(pixels)
        sequences, start = [], 0
        for rows, cols, has_global in grids:
            count = rows * cols + int(has_global)
            sequences.append(self.visual_sequence(views[start:start + count], (rows, cols, has_global)))
            start += count
        visual = torch.cat(sequences).to(embeds.dtype)
        # by index, not by mask: a masked scatter's backward reads the mask's count back from the device
        embeds = embeds.reshape(-1, embeds.shape[-1]).index_copy(0, image_index, visual).reshape(embeds.shape)
        if self.training and self.row_separator is not None:
            # batches of one-row images leave the separator out; a 0-weighted use keeps its gradient
            # defined on every rank, which FSDP's reduce-scatter and DDP need
            embeds = embeds + 0.0 * self.row_separator.sum().to(embeds.dtype)
        return embeds

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, grids: list[ImageGrid],
                pixels: torch.Tensor | None, labels: torch.Tensor | None = None, runs: PackedRuns | None = None,
                image_index: torch.Tensor | None = None,
                label_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Without labels: the logits. With labels: the next-token loss summed over the labelled tokens
        and their count; the LM head then runs only at the positions that predict a label (image,
        prompt and padding positions need no vocabulary-sized logits).

        Packed rows: `position_ids` restart at 0 for each sample and no attention mask is passed, so
        attention stays inside each sample: sdpa builds a block-diagonal mask from them (`use_cache=False`
        is what keeps it so); varlen and flash attention get the samples' run lengths instead, and
        sdpa_per_sample their host copy (both with a stand-in mask, `trainer.attention.no_mask`, so that
        none is built). `runs`,
        `image_index` and `label_index` (`label_positions`) are read from the batch when not given; the
        trainer gives them, computed on the host (`trainer.data.pack_rows`), because reading them on a GPU
        syncs.
        """
        embeds = self.embed(input_ids, grids, pixels, image_index)
        attention = {}
        if self.config.attention in VARLEN_READERS:
            attention = (runs or packed_runs(position_ids)).attention_kwargs()
        elif self.config.attention == SDPA_PER_SAMPLE:
            attention = (runs or packed_runs(position_ids)).per_sample_kwargs()
        if self.config.attention in (VARLEN, SDPA_PER_SAMPLE):
            attention["attention_mask"] = no_mask(embeds)
        if labels is None:
            return {"logits": self.llm(inputs_embeds=embeds, position_ids=position_ids, use_cache=False,
                                       **attention).logits}
        hidden = self.llm.get_decoder()(inputs_embeds=embeds, position_ids=position_ids, use_cache=False,
                                        **attention).last_hidden_state
        if label_index is None:
            label_index = label_positions(labels)
        logits = self.llm.get_output_embeddings()(hidden.reshape(-1, hidden.shape[-1]).index_select(0, label_index))
        targets = labels.reshape(-1).index_select(0, label_index + 1)
        if self.loss_compiled:
            # one graph for every micro-batch's count of labelled tokens
            torch._dynamo.maybe_mark_dynamic(logits, 0)
            torch._dynamo.maybe_mark_dynamic(targets, 0)
        loss = (compiled_label_loss_sum() if self.loss_compiled else label_loss_sum)(logits, targets, self.logit_finish)
        return {"loss_sum": loss, "label_tokens": label_index.numel()}

    def compile_loss(self) -> None:
        """Run the loss (`label_loss_sum`) through torch.compile from now on (`runtime.compile`)."""
        self.loss_compiled = True

    # -- parameters by module -------------------------------------------------------------------------------
    def module_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The trainable groups a recipe names: vision, projector (with the row separator), llm."""
        projector = list(self.projector.parameters())
        if self.row_separator is not None:
            projector.append(self.row_separator)
        return {"vision": list(self.vision.parameters()), "projector": projector, "llm": list(self.llm.parameters())}

    # -- save / load ------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, tokenizer=None, state_dict: dict | None = None) -> None:
        """Write the model folder; `state_dict` (a full one, e.g. gathered from FSDP) replaces this module's."""
        directory = Path(directory)
        state = state_dict if state_dict is not None else self.state_dict()
        parts = {name: {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
                 for name in ("vision", "llm", "projector")}
        self.vision.save_pretrained(directory / "vision", state_dict=parts["vision"])
        self.llm.save_pretrained(directory / "llm", state_dict=parts["llm"])
        projector = {f"projector.{k}": v.detach().cpu().contiguous() for k, v in parts["projector"].items()}
        if "row_separator" in state:
            projector["row_separator"] = state["row_separator"].detach().cpu().contiguous()
        save_file(projector, str(directory / PROJECTOR_FILE))
        remote = {"trust_remote_code": True} if self.config.vision.get("trust_remote_code") else {}
        settings = asdict(self.config) | {"vision": {"path": "vision"} | remote, "llm": {"path": "llm"},
                                          "image_token_id": self.image_token_id}
        (directory / CONFIG_FILE).write_text(json.dumps(settings, indent=2))
        if tokenizer is not None:
            tokenizer.save_pretrained(directory / "llm")

    @classmethod
    def from_pretrained(cls, directory: str | Path, weights: bool = True) -> DocVLM:
        """The model a folder holds; without `weights`, built from its configs alone (see `build_model`)."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory}: not a docforge model folder (no {CONFIG_FILE})")
        settings = json.loads(config_path.read_text())
        image_token_id = settings.pop("image_token_id")
        config = ModelConfig(**settings)
        vision = build_vision_tower(config.vision | {"path": str(directory / "vision")}, weights)
        llm = build_llm({"path": str(directory / "llm")}, vocab_size=0, attention=config.attention, weights=weights)
        model = cls(vision, llm, config, image_token_id)
        if not weights:
            return model
        projector = load_file(str(directory / PROJECTOR_FILE))
        missing, unexpected = model.load_state_dict(projector, strict=False)
        wanted = {k for k in model.state_dict() if k.startswith("projector.") or k == "row_separator"}
        if wanted & set(missing) or unexpected:
            raise ValueError(f"{directory / PROJECTOR_FILE}: missing {sorted(wanted & set(missing))}, "
                             f"unexpected {sorted(unexpected)}")
        return model


def build_model(config: ModelConfig, tokenizer, image_token: str = IMAGE_PLACEHOLDER, weights: bool = True) -> DocVLM:
    """A fresh model from `config`; the LLM's embeddings grow to the tokenizer's vocabulary when needed.
    Without `weights`, the parts given as paths are built from their configs alone: under
    `torch.device("meta")` that is the skeleton an FSDP rank shards before rank 0 sends it the weights
    (`trainer.distributed.shard_from_rank0`)."""
    vision = build_vision_tower(config.vision, weights)
    llm = build_llm(config.llm, vocab_size=len(tokenizer), attention=config.attention, weights=weights)
    return DocVLM(vision, llm, config, tokenizer.convert_tokens_to_ids(image_token))
