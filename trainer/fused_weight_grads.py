"""Weight gradients summed by their own matrix product (`runtime.fused_weight_grads`, with bf16 weights): part
of the model step (… ▶ forward/backward on bf16 copies ▶ **each Linear's weight gradient added into its fp32
sum by the backward product** ▶ clip ▶ AdamW on fp32 weights).

With bf16 weights alone (trainer.bf16_weights), a Linear's backward writes its weight gradient as a new bf16
tensor and a hook then adds it into the weight's fp32 sum: 2 bytes written, then 2 + 4 read and 4 written
per parameter per micro-batch (a 1.5B profile on an H100: 9.7 ms of a 226 ms micro-batch). Here the
backward's weight product adds straight into the fp32 sum (cuBLAS with fp32 output and beta = 1, what
Megatron-LM calls gradient accumulation fusion): its epilogue reads and writes the sum once and nothing
else is launched. The product is accumulated in fp32 and no longer rounded to bf16 before it is summed.

Every trained `nn.Linear` runs through `LinearIntoSum`: its forward is the Linear's, its backward hands
autograd the input's and the bias's gradients and no weight gradient; the weight's sum is a view of
trainer.bf16_weights' flat buffer. The product runs in a custom op that says which tensors it mutates, so a
compiled block keeps it whole. Every trained `nn.Embedding` runs through `EmbeddingIntoSum`, whose backward
adds each looked-up row's gradient into the sum at its id, in fp32: the vocabulary-sized bf16 gradient that
autograd's embedding backward writes (zeros, then the rows: 0.47 GB a micro-batch for Qwen2-1.5B's
151,936 × 1,536) is never made, nor read by a hook. A weight the embeddings and the output layer share
(tied) gets both adds. A module whose class has its own forward, an embedding with max_norm,
scale_grad_by_freq or sparse gradients, and a weight some other module also holds are left to the hooks.
Each weight has a flag that the adds set, so a step knows which weights a gradient reached, as autograd's
`.grad` tells for the others.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.library.custom_op("docforge::add_weight_grad", mutates_args=("summed", "reached"))
def add_weight_grad(summed: Tensor, reached: Tensor, grad_output: Tensor, inputs: Tensor) -> None:
    """summed += grad_outputᵀ · inputs over all leading dimensions, summed in fp32; reached = 1."""
    grad_output = grad_output.reshape(-1, grad_output.shape[-1])
    inputs = inputs.reshape(-1, inputs.shape[-1])
    if summed.is_cuda:
        torch.addmm(summed, grad_output.t(), inputs, out_dtype=summed.dtype, out=summed)
    else:  # addmm with out_dtype is CUDA-only: the same sum from fp32 copies
        summed.addmm_(grad_output.t().to(summed.dtype), inputs.to(summed.dtype))
    reached.fill_(1)


class LinearIntoSum(torch.autograd.Function):
    """y = x·Wᵀ + b; backward adds the weight's gradient into `summed` and returns none for the weight."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, summed: Tensor, reached: Tensor) -> Tensor:
        x_in = x.to(weight.dtype)  # what autocast would multiply: the weights are the bf16 copies
        ctx.save_for_backward(x_in, weight)
        # not saved tensors: the sums are views of one buffer, whose version every sum's add moves on
        ctx.summed, ctx.reached = summed, reached
        ctx.input_dtype = x.dtype
        return F.linear(x_in, weight, bias)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        x_in, weight = ctx.saved_tensors
        grad_output = grad_output.to(weight.dtype)
        add_weight_grad(ctx.summed, ctx.reached, grad_output, x_in)
        grad_x = (grad_output @ weight).to(ctx.input_dtype) if ctx.needs_input_grad[0] else None
        grad_bias = grad_output.reshape(-1, grad_output.shape[-1]).sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, None, grad_bias, None, None


class EmbeddingIntoSum(torch.autograd.Function):
    """e = weight[ids]; backward adds each row's gradient into `summed` at its id (none at `padding_idx`),
    in fp32, and returns none for the weight."""

    @staticmethod
    def forward(ctx, ids: Tensor, weight: Tensor, padding_idx: int | None, summed: Tensor, reached: Tensor) -> Tensor:
        ctx.save_for_backward(ids)
        ctx.summed, ctx.reached, ctx.padding_idx = summed, reached, padding_idx
        return F.embedding(ids, weight, padding_idx)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (ids,) = ctx.saved_tensors
        ids = ids.reshape(-1)
        rows = grad_output.reshape(-1, grad_output.shape[-1]).to(ctx.summed.dtype)
        if ctx.padding_idx is not None:
            rows = rows.masked_fill((ids == ctx.padding_idx).unsqueeze(1), 0)
        ctx.summed.index_add_(0, ids, rows)
        ctx.reached.fill_(1)
        return None, None, None, None, None


def routed(module: nn.Module) -> bool:
    """A module whose weight gradient can go straight into its sum: a plain Linear, or a plain Embedding
    whose backward is the plain scatter of rows."""
    if type(module).forward is nn.Linear.forward:
        return isinstance(module, nn.Linear)
    if type(module).forward is nn.Embedding.forward and isinstance(module, nn.Embedding):
        return module.max_norm is None and not module.scale_grad_by_freq and not module.sparse
    return False


def check_fused_products(device: torch.device) -> None:
    """This torch must add a bf16 product into an fp32 matrix on the GPU (addmm with out_dtype, fp32 self)."""
    if device.type != "cuda":
        return
    summed = torch.zeros(2, 2, device=device)
    factor = torch.ones(2, 2, device=device, dtype=torch.bfloat16)
    try:
        torch.addmm(summed, factor, factor, out_dtype=torch.float32, out=summed)
    except (RuntimeError, TypeError) as error:
        raise RuntimeError(f"runtime.fused_weight_grads: torch {torch.__version__} cannot add a bf16 product into "
                           f"an fp32 sum on the GPU ({error}); set fused_weight_grads: false") from error
    if not torch.equal(summed, torch.full_like(summed, 2.0)):
        raise RuntimeError(f"runtime.fused_weight_grads: torch {torch.__version__} gave a wrong fp32 sum of a bf16 "
                           f"product on the GPU; set fused_weight_grads: false")


class FusedWeightGrads:
    """Routes the trained weights of `model`'s Linear and Embedding modules through LinearIntoSum and
    EmbeddingIntoSum, summing into `sums`; a weight is routed when every module that holds it can be."""

    def __init__(self, model: nn.Module, sums: dict[nn.Parameter, Tensor]):
        uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        holders: dict[int, list[nn.Module]] = {}
        for module in model.modules():
            if routed(module) and module.weight in sums:
                holders.setdefault(id(module.weight), []).append(module)
        self.modules = [m for key, held in holders.items() if len(held) == uses[key] for m in held]
        self.weights = list({id(m.weight): m.weight for m in self.modules}.values())
        device = self.weights[0].device if self.weights else torch.device("cpu")
        if any(isinstance(m, nn.Linear) for m in self.modules):
            check_fused_products(device)
        self.reached = torch.zeros(len(self.weights), device=device)
        slot = {id(w): index for index, w in enumerate(self.weights)}
        for module in self.modules:
            index = slot[id(module.weight)]
            module.forward = self.routed_forward(module, sums[module.weight], self.reached[index:index + 1])

    @staticmethod
    def routed_forward(module: nn.Module, summed: Tensor, reached: Tensor):
        if isinstance(module, nn.Embedding):
            def embedding_forward(ids: Tensor) -> Tensor:
                return EmbeddingIntoSum.apply(ids, module.weight, module.padding_idx, summed, reached)
            return embedding_forward

        def linear_forward(x: Tensor) -> Tensor:
            return LinearIntoSum.apply(x, module.weight, module.bias, summed, reached)
        return linear_forward

    def start_step(self) -> None:
        self.reached.zero_()

    def reached_weights(self) -> set[nn.Parameter]:
        """The weights some micro-batch of this step sent a gradient to (reads the flags back: a sync)."""
        return {w for w, got in zip(self.weights, self.reached.tolist()) if got}
