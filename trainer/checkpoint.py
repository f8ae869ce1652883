"""Training checkpoints: everything a stage needs to continue exactly where it stopped.

`STAGE_DIR/checkpoints/step-NNNNNN/` holds the trainable weights and the optimizer state
(`torch.distributed.checkpoint`, so FSDP ranks write their own shards and DDP ranks write one copy),
`trainer.pt` (schedule, step, counters, the world size) and one `rank-RRRRR.pt` per rank (its RNG states
and its data state: mixture stream positions and the sample drawn but not yet packed). A checkpoint is
written under a temporary name and renamed once every rank is done, so a crash never leaves a partial
`step-*` folder; the newest ones are kept. Checkpoints live on a local or shared POSIX filesystem. A
checkpoint is resumed by the world size that saved it, or, with `--reshard`, by another one.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from trainer.distributed import Runtime

STEP_PATTERN = re.compile(r"^step-(\d{6,})$")
FROZEN_SKIPPED = StateDictOptions(ignore_frozen_params=True)


class WorldSizeChanged(ValueError):
    """A checkpoint saved by another number of ranks, resumed without `--reshard`."""


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def latest_checkpoint(directory: Path) -> Path | None:
    steps = sorted((int(m.group(1)), p) for p in directory.glob("step-*") if (m := STEP_PATTERN.match(p.name)))
    return steps[-1][1] if steps else None


def save_checkpoint(directory: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    trainer_state: dict[str, Any], data_state: dict[str, Any], runtime: Runtime, keep: int) -> Path:
    final = directory / f"step-{step:06d}"
    staging = directory / f".step-{step:06d}.partial"
    if runtime.is_main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    runtime.barrier()
    model_state, optim_state = get_state_dict(model, optimizer, options=FROZEN_SKIPPED)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(staging / "weights"))
    torch.save({"rng": rng_states(), "data": data_state}, staging / f"rank-{runtime.rank:05d}.pt")
    if runtime.is_main:
        torch.save(trainer_state | {"step": step, "world_size": runtime.world_size}, staging / "trainer.pt")
    runtime.barrier()
    if runtime.is_main:
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        kept = sorted(p for p in directory.glob("step-*") if STEP_PATTERN.match(p.name))
        for old in kept[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    runtime.barrier()
    return final


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, runtime: Runtime,
                    reshard: bool = False) -> tuple[dict[str, Any], dict[str, Any] | list[dict[str, Any]]]:
    """Restore weights, optimizer and this rank's RNG; return (trainer state, this rank's data state). A
    checkpoint saved by another number of ranks is refused unless `reshard`: then the weights and optimizer
    are read into this world size (torch.distributed.checkpoint reshards them) and every old rank's data
    state comes back, as a list, for the data to be dealt out anew (`PackedBatches.load_resharded`)."""
    trainer_state = torch.load(path / "trainer.pt", weights_only=False)
    saved_world = trainer_state["world_size"]
    if saved_world != runtime.world_size and not reshard:
        raise WorldSizeChanged(f"{path}: saved by {saved_world} ranks, resumed with {runtime.world_size}; exact "
                               "resume needs the same world size (each rank owns its share of the mixture); add "
                               f"--reshard to continue on {runtime.world_size} (every sample not yet trained still "
                               "is, once)")
    model_state, optim_state = get_state_dict(model, optimizer, options=FROZEN_SKIPPED)
    state = {"model": model_state, "optim": optim_state}
    # parameters that never got a gradient (e.g. tower layers above feature_layer) have no optimizer state
    dcp.load(state, checkpoint_id=str(path / "weights"), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"],
                   options=FROZEN_SKIPPED)
    if saved_world != runtime.world_size:
        return trainer_state, [torch.load(path / f"rank-{rank:05d}.pt", weights_only=False)["data"]
                               for rank in range(saved_world)]
    rank_state = torch.load(path / f"rank-{runtime.rank:05d}.pt", weights_only=False)
    set_rng_states(rank_state["rng"])
    return trainer_state, rank_state["data"]
