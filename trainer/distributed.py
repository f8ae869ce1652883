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
    """DDP or FSDP2 around the model when there are several ranks; the model itself otherwise. Under FSDP2
    the ranks other than 0 pass a meta-device skeleton, which rank 0 fills (`shard_from_rank0`)."""
    if not runtime.distributed:
        return model
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [runtime.local_rank] if runtime.device.type == "cuda" else None
        # a batch whose images are all one tile leaves the row separator unused
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
    return shard_from_rank0(model, runtime, bf16)


def shard(model: nn.Module, runtime: Runtime, bf16: bool) -> nn.Module:
    """FSDP2 in place: each transformer block its own unit, then the rest; the shards go to this rank's device."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if bf16 and runtime.device.type == "cuda" else MixedPrecisionPolicy()
    for block in block_modules(model):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def shard_from_rank0(model: nn.Module, runtime: Runtime, bf16: bool) -> nn.Module:
    """FSDP2 over a model whose weights only rank 0 holds: the other ranks pass its skeleton, built on the
    meta device from the same configs. Each rank shards, the skeletons get room for their shards on the
    device, and rank 0 sends every weight, one tensor at a time, with the buffers a state dict leaves out
    (e.g. the rotary frequencies). So one process, not every rank, reads the checkpoint into host memory
    (a 7B LLM is ~30 GB in fp32), and no GPU ever holds more than its shards and one full tensor."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    state = model.state_dict()
    shapes = [{name: tuple(value.shape) for name, value in state.items()}]
    dist.broadcast_object_list(shapes, src=0)
    mine = {name: tuple(value.shape) for name, value in state.items()}
    all_agree = runtime.min(float(mine == shapes[0])) == 1  # every rank stops, not only the odd one
    if mine != shapes[0]:
        differ = sorted(name for name in shapes[0].keys() | mine.keys() if shapes[0].get(name) != mine.get(name))
        raise ValueError(f"rank {runtime.rank}'s model skeleton differs from rank 0's model in {len(differ)} "
                         f"entries (rank 0 / this rank): " + "; ".join(
                             f"{name} {shapes[0].get(name)} / {mine.get(name)}" for name in differ[:5]))
    if not all_agree:
        raise ValueError(f"rank {runtime.rank}: another rank's model skeleton differs from rank 0's model")
    full = state if runtime.is_main else {}
    buffers = [{name: buffer for name, buffer in model.named_buffers() if name not in state}
               if runtime.is_main else None]
    del state
    shard(model, runtime, bf16)
    if not runtime.is_main:
        model.to_empty(device=runtime.device)
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    dist.broadcast_object_list(buffers, src=0)
    with torch.no_grad():
        for name, value in buffers[0].items():
            model.get_buffer(name).copy_(value)
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
