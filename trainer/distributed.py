"""Where the training loop runs: one process, or one process per rank under torchrun (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT), with gloo on CPU and nccl on GPU; and how the model is wrapped for it
(DDP, or FSDP2 `fully_shard` per transformer block of the tower and the LLM, then the whole model).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mixtures.stream import Slot


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def slot(self) -> Slot:
        return Slot(self.rank, self.world_size)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, value: float | int) -> float:
        return self.sum_all([value])[0]

    def sum_all(self, values: list[float | int]) -> list[float]:
        """Each value summed over every rank, in one all-reduce."""
        return self.reduce(values, dist.ReduceOp.SUM)

    def min(self, value: float | int) -> float:
        return self.reduce([value], dist.ReduceOp.MIN)[0]

    def reduce(self, values: list[float | int], op) -> list[float]:
        if not self.distributed:
            return [float(v) for v in values]
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=op)
        return tensor.tolist()


def start_runtime(device: str = "auto") -> Runtime:
    """This process's rank and device; joins the process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the recipe asks for device cuda but torch sees no GPU")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                device_id=where if use_cuda else None)
    return Runtime(rank, world, local_rank, where)


def stop_runtime() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks of every transformers part (the classes they list as
    `_no_split_modules`, e.g. Qwen2DecoderLayer, CLIPEncoderLayer): the units FSDP shards one by one."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    return [module for module in model.modules() if type(module).__name__ in names]


def wrap_model(model: nn.Module, runtime: Runtime, parallel: str, bf16: bool) -> nn.Module:
    """DDP or FSDP2 around the model when there are several ranks; the model itself otherwise."""
    if not runtime.distributed:
        return model
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [runtime.local_rank] if runtime.device.type == "cuda" else None
        # a batch whose images are all one tile leaves the row separator unused
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if bf16 and runtime.device.type == "cuda" else MixedPrecisionPolicy()
    for block in block_modules(model):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def gradient_sync(model: nn.Module, last: bool):
    """Sync gradients only on the last micro-batch of a step: DDP's no_sync before it, FSDP2's switch."""
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(last)
    elif hasattr(model, "no_sync") and not last:
        return model.no_sync()
    return contextlib.nullcontext()
