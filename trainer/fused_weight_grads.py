"""Weight gradients summed by their own matrix product (`runtime.fused_weight_grads`, with bf16 weights): part
of the model step (… ▶ forward/backward on bf16 copies ▶ **each Linear's weight gradient added into its fp32
sum by the backward product** ▶ clip ▶ AdamW on fp32 weights).

With bf16 weights alone (trainer.bf16_weights), a Linear's backward writes its weight gradient as a new bf16
tensor and a hook then adds it into the weight's fp32 sum: 2 bytes written, then 2 + 4 read and 4 written
per parameter per micro-batch (a 1.5B profile on an H100: 9.7 ms of a 226 ms micro-batch). Here the
backward's weight product adds straight into the fp32 sum (cuBLAS with fp32 output and beta = 1, what
Megatron-LM calls gradient accumulation fusion): its epilogue reads and writes the sum once and nothing
else is launched. The product is accumulated in fp32 and no longer rounded to bf16 before it is summed.

Every trained `nn.Linear` whose weight no other module shares (a tied output layer is left to the hooks)
runs through `LinearIntoSum`: its forward is the Linear's, its backward hands autograd the input's and the
bias's gradients and no weight gradient; the weight's sum is a view of trainer.bf16_weights' flat buffer.
The product runs in a custom op that says which tensors it mutates, so a compiled block keeps it whole.
Each weight has a flag that the op sets, so a step knows which weights a gradient reached, as autograd's
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
    """Routes the trained, unshared Linear weights of `model` through LinearIntoSum, summing into `sums`."""

    def __init__(self, model: nn.Module, sums: dict[nn.Parameter, Tensor]):
        uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        self.linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight in sums
                        and uses[id(m.weight)] == 1]
        self.weights = [m.weight for m in self.linears]
        device = self.weights[0].device if self.weights else torch.device("cpu")
        check_fused_products(device)
        self.reached = torch.zeros(len(self.linears), device=device)
        for index, linear in enumerate(self.linears):
            linear.forward = self.linear_forward(linear, sums[linear.weight], self.reached[index:index + 1])

    @staticmethod
    def linear_forward(linear: nn.Linear, summed: Tensor, reached: Tensor):
        def forward(x: Tensor) -> Tensor:
            return LinearIntoSum.apply(x, linear.weight, linear.bias, summed, reached)
        return forward

    def start_step(self) -> None:
        self.reached.zero_()

    def reached_weights(self) -> set[nn.Parameter]:
        """The weights some micro-batch of this step sent a gradient to (reads the flags back: a sync)."""
        return {w for w, got in zip(self.weights, self.reached.tolist()) if got}
