"""bf16 weights for a step's forward and backward passes (`runtime.bf16_weights`): part of the model step
(… ▶ pack ▶ **forward/backward on bf16 copies, gradients summed in fp32** ▶ clip ▶ AdamW on fp32 weights).

Under autocast alone, every matrix product casts its fp32 weight to bf16 again in each micro-batch, and
its gradient comes back through a cast to fp32 and an fp32 add into `.grad`: about 24 bytes of memory
traffic per parameter per micro-batch, all of it memory-bound (a 1.5B profile on an H100: ~13 ms of a
242 ms micro-batch). Here the model's floating parameters hold bf16 copies during a step's passes, cast
from the fp32 weights once a step (frozen ones once a stage); autograd hands each bf16 gradient to a hook
that adds it into an fp32 buffer and frees it: about 10 bytes per parameter per micro-batch. After the
passes the parameters are the fp32 tensors again and carry the summed fp32 gradients, so clipping, AdamW,
checkpoints and the saved model see what they see without this option. The numerics are those of bf16
weights with fp32 master weights and fp32 gradient accumulation (as Megatron-LM's bf16 training):
autocast keeps its fp32 ops (softmax, norms, the loss), and the residual stream is bf16. With
`runtime.fused_weight_grads`, the Linear and Embedding weights skip the hook: their backward adds into
the buffer itself (trainer.fused_weight_grads).

With several ranks the model is not wrapped in DDP: rank 0's weights are broadcast once, as DDP does,
and the summed gradients are averaged over the ranks by one all-reduce of the fp32 buffer after a step's
last micro-batch (DDP would reduce the last micro-batch's bf16 gradients only, in bf16). FSDP2 brings
its own mixed precision (bf16 gathers of fp32 shards), so the recipe does not combine the two.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from trainer.distributed import Runtime
from trainer.fused_weight_grads import FusedWeightGrads


class Bf16Weights:
    def __init__(self, model: nn.Module, runtime: Runtime, fuse_linear_grads: bool = False):
        self.runtime = runtime
        self.params = [p for p in model.parameters() if p.is_floating_point()]
        self.copies = [torch.empty_like(p, dtype=torch.bfloat16) for p in self.params]
        self.trained = [p for p in self.params if p.requires_grad]
        sizes = [p.numel() for p in self.trained]
        device = self.params[0].device if self.params else torch.device("cpu")
        self.summed = torch.zeros(sum(sizes), dtype=torch.float32, device=device)
        self.sums = {p: view.view_as(p) for p, view in zip(self.trained, self.summed.split(sizes))}
        self.received: set[nn.Parameter] = set()  # the parameters a gradient reached in this step
        self.frozen_cast = False  # frozen weights never change within a stage: cast at the first step only
        if runtime.distributed:
            for param in self.params:
                dist.broadcast(param.data, src=0)
        # the Linear and Embedding weights whose backward adds into the sum itself (trainer.fused_weight_grads)
        self.fused = FusedWeightGrads(model, self.sums) if fuse_linear_grads else None
        for param in self.trained:  # for a fused weight too: a gradient some code reaches it by directly
            param.register_post_accumulate_grad_hook(self.accumulate)

    def accumulate(self, param: nn.Parameter) -> None:
        """Autograd's hook, once a parameter's bf16 gradient of a micro-batch is complete (none when a fused
        add took it: autograd still calls the hook)."""
        if param.grad is None:
            return
        self.sums[param].add_(param.grad)
        self.received.add(param)
        param.grad = None

    @contextlib.contextmanager
    def passes(self) -> Iterator[None]:
        """A step's forward and backward passes run inside: the parameters hold the bf16 copies; on leaving,
        the fp32 weights with the step's summed (and, over ranks, averaged) fp32 gradients."""
        weights = [p.data for p in self.params]  # the fp32 tensors: the optimizer's and the checkpoint's
        cast = [(c, w) for p, c, w in zip(self.params, self.copies, weights) if p.requires_grad or not self.frozen_cast]
        if cast:
            torch._foreach_copy_([c for c, _ in cast], [w for _, w in cast])
        self.frozen_cast = True
        self.summed.zero_()
        self.received.clear()
        if self.fused:
            self.fused.start_step()
        for param, copy in zip(self.params, self.copies):
            param.data = copy
        try:
            yield
        finally:
            for param, weight in zip(self.params, weights):
                param.data = weight
        self.publish_gradients()

    def publish_gradients(self) -> None:
        if self.fused:
            self.received |= self.fused.reached_weights()
        received = [param in self.received for param in self.trained]
        if self.runtime.distributed:
            dist.all_reduce(self.summed)
            self.summed.div_(self.runtime.world_size)
            flags = torch.tensor(received, dtype=torch.float32, device=self.summed.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)  # a gradient on any rank is one for all
            received = [bool(f) for f in flags.tolist()]
        for param, got in zip(self.trained, received):
            # a parameter no micro-batch reached keeps no gradient, as autograd leaves it: AdamW skips it
            param.grad = self.sums[param] if got else None
