"""What the training loop reports each step: the console line (and a progress bar on a terminal), one JSON
line per step in `STAGE_DIR/log.jsonl`, TensorBoard scalars when asked; and the model FLOPs behind MFU.

FLOPs per step (counted, not guessed): a dense matmul costs 2 FLOPs per parameter per token forward;
backward costs 4 for a trained module, 2 for a frozen one that gradients must cross (the LLM when only
the projector trains) and 0 for a frozen module nothing upstream of it trains (the tower in stage 1).
The LM head counts only at the labelled positions, the only ones where the model computes it; the tower
counts its patch embedding and its blocks up to the feature layer the model reads (the model stops the
tower there: LLaVA's -2 skips the last block), not a pooling head whose output feeds nothing; the
projector counts the tokens it projects (a quarter of the patches after the 2×2 merge).
Attention adds 4·layers·hidden·len² forward per sequence (halved for the causal LLM, where len is each
packed sample's own length, padding left out; per view for the tower), times the same backward factor / 2.
MFU = FLOPs / (step time × peak × ranks).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from trainer.model import vision_config_of

# dense bf16 peak per GPU (no sparsity), from the vendors' data sheets
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12,
                   "B200": 2250e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def matmul_parameters(module: nn.Module, skip: torch.Tensor | None = None) -> int:
    """Parameters that take part in matmuls per token: not embedding tables (lookups), nor `skip`
    (a tied LM head shares the input table's tensor, so tensors are told apart by identity)."""
    lookups = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    if skip is not None:
        lookups.add(id(skip))
    return sum(p.numel() for p in module.parameters() if id(p) not in lookups)


class FlopCounter:
    def __init__(self, model, trainable: set[str]):
        llm_config = model.llm.config.get_text_config()
        vision_config = vision_config_of(model.vision.config)
        head = model.llm.get_output_embeddings().weight
        self.head_params = head.numel()
        self.llm_params = matmul_parameters(model.llm, skip=head)  # the LM head is counted apart
        # the tower's matmuls that feed the LLM: the patch embedding (a convolution, one matmul per patch)
        # and the blocks up to the feature layer; the model runs no later block, and a pooling head's
        # output (SigLIP's) feeds nothing
        used = model.blocks_read
        if model.tower_stack:
            blocks = list(model.vision.get_submodule(model.tower_stack))[:used]
            patchify = [m for m in model.vision.modules() if isinstance(m, nn.Conv2d)]
            self.vision_params = sum(matmul_parameters(m) for m in patchify + blocks)
        else:  # a tower of unknown layout: all of it
            self.vision_params = matmul_parameters(model.vision)
        self.projector_params = sum(p.numel() for p in model.projector.parameters())
        self.projector_tokens = model.tokens_per_view  # after the 2×2 merge, without a CLS token
        self.llm_attention = 4 * llm_config.num_hidden_layers * llm_config.hidden_size
        self.vision_attention = 4 * used * vision_config.hidden_size
        has_cls = any(hasattr(m, "class_embedding") for m in model.vision.modules())  # CLIP's; SigLIP has none
        self.view_tokens = (vision_config.image_size // vision_config.patch_size) ** 2 + int(has_cls)
        self.pass_factor = {  # forward + backward multipliers per module
            "vision": 6 if "vision" in trainable else 2,
            "projector": 6 if "projector" in trainable else 4 if "vision" in trainable else 2,
            "llm": 6 if "llm" in trainable else 4,
        }

    def step_flops(self, tokens: int, label_tokens: int, sample_lengths: list[int], views: int) -> float:
        f = self.pass_factor
        attention_scale = f["llm"] / 2
        llm = f["llm"] * self.llm_params * tokens + f["llm"] * self.head_params * label_tokens \
            + attention_scale * self.llm_attention * sum(n * n for n in sample_lengths) / 2
        vision_tokens = views * self.view_tokens
        vision = f["vision"] * self.vision_params * vision_tokens \
            + f["vision"] / 2 * self.vision_attention * views * self.view_tokens ** 2
        projector = f["projector"] * self.projector_params * views * self.projector_tokens
        return llm + vision + projector


class StepLog:
    """Console + JSONL (+ TensorBoard) for one stage; only rank 0 writes."""

    def __init__(self, directory: Path, stage: int, total_steps: int | None, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.stage = stage
        self.console = Console(stderr=True)
        self.path = directory / "log.jsonl"
        self.writer = None
        self.progress = None
        if not enabled:
            return
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(directory / "tensorboard"))
        if self.console.is_terminal:
            self.progress = Progress(TextColumn(f"[bold]stage {stage}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=self.console)
            self.bar = self.progress.add_task("train", total=total_steps, status="")
            self.progress.start()

    def step(self, record: dict[str, Any], print_line: bool) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), "stage": self.stage} | record
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.writer is not None:
            for name, value in record.items():
                if isinstance(value, (int, float)) and name not in ("time", "stage", "step"):
                    self.writer.add_scalar(f"stage{self.stage}/{name}", value, record["step"])
        status = (f"loss {record['loss']:.4f} · lr {record['lr']:.2e} · gnorm {record['grad_norm']:.3f} · "
                  f"{record['tokens_per_s']:.0f} tok/s · {record['samples_per_s']:.2f} samples/s · "
                  f"data wait {100 * record['data_wait_share']:.1f}%"
                  + (f" · MFU {100 * record['mfu']:.1f}%" if record.get("mfu") is not None else ""))
        if self.progress is not None:
            self.progress.update(self.bar, completed=record["step"], status=status)
        if print_line:
            mix = " ".join(f"{name}={share:.2f}" for name, share in record["mix"].items())
            self.console.print(f"stage {self.stage} step {record['step']}: {status} · mix {mix}", highlight=False, soft_wrap=True,
                               markup=False)

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()
