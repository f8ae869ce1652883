"""The LLM's attention over packed rows: the kernel under the model step (… ▶ pack ▶ forward, **attention
inside each sample**).

A packed row (`trainer.data.pack_rows`) holds whole samples back to back, each with position ids counting
from 0, then a padding run that does the same. `packed_runs` reads those runs once per forward into the
varlen form of flash attention: cumulative run lengths over the flattened batch and the longest run.
DocVLM passes them to the LLM as transformers' flash-attention keyword arguments (`cu_seq_lens_q`, …), which
both `flash_attention_2` (the flash-attn package) and `varlen` below read.

`varlen` is an attention implementation registered with transformers (`attn_implementation="varlen"`):
causal attention inside each run, never across. On CUDA it calls PyTorch's own flash-attention varlen
kernel (`torch.nn.attention.varlen.varlen_attn`, no extra package), so no block-diagonal mask is built and
no time goes to masked-out blocks (sdpa with a packed mask runs a masked kernel over the whole row). Elsewhere
(CPU runs and tests) it runs one causal sdpa call per run: the same arithmetic, one kernel per sample.
Without run lengths (generation with a cache, padded batches) it is plain sdpa with sdpa's own mask, which
transformers builds for it as for sdpa; the packed forward passes `no_mask` instead, so none is built.

`sdpa_per_sample` (`attn_implementation="sdpa_per_sample"`) is the same attention as one causal sdpa call
per sample on every device, with the run bounds read from a host copy (`run_bounds`, no GPU sync) and the
grouped key/value heads expanded on a GPU, so that torch may pick sdpa's fastest kernel for each sample
(cuDNN on Hopper, which takes no grouped heads) instead of PyTorch's FA2-based varlen kernel. The calls run
outside torch.compile's graphs (their number and shapes change with every batch); the rest of each
transformer block stays compiled.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

VARLEN = "varlen"
SDPA_PER_SAMPLE = "sdpa_per_sample"
VARLEN_KERNEL_DTYPES = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class PackedRuns:
    """Where each run (sample or padding) of a packed batch starts, flattened over its rows."""

    cu_lengths: torch.Tensor  # int32 (runs + 1,): 0, end of run 1, end of run 2, …, rows × seq_len
    longest: int
    host_cu_lengths: torch.Tensor | None = None  # the same on the CPU, when the batch was made there

    def attention_kwargs(self) -> dict[str, torch.Tensor | int]:
        """transformers' flash-attention keyword arguments, which decoder layers hand to the attention."""
        return {"cu_seq_lens_q": self.cu_lengths, "cu_seq_lens_k": self.cu_lengths,
                "max_length_q": self.longest, "max_length_k": self.longest}

    def per_sample_kwargs(self) -> dict[str, torch.Tensor]:
        """`sdpa_per_sample`'s keyword argument: the run bounds on the host (copied there when not given,
        which syncs on a GPU)."""
        host = self.host_cu_lengths if self.host_cu_lengths is not None else self.cu_lengths.cpu()
        return {"run_bounds": host}


def packed_runs(position_ids: torch.Tensor) -> PackedRuns:
    """Runs of a (rows, seq_len) position-id batch: a run starts where the position is 0 and at every row
    start (a run never crosses rows)."""
    rows, length = position_ids.shape
    flat = position_ids.reshape(-1)
    row_start = torch.arange(flat.numel(), device=flat.device) % length == 0
    starts = torch.nonzero((flat == 0) | row_start).flatten()
    ends = torch.tensor([flat.numel()], device=flat.device)
    cu_lengths = torch.cat([starts, ends]).to(torch.int32)
    return PackedRuns(cu_lengths, int(cu_lengths.diff().max()))


def no_mask(embeds: torch.Tensor) -> torch.Tensor:
    """A stand-in attention mask for a packed forward with run lengths, which `varlen` never reads. Given no
    mask, transformers would build a rows × length² one from the position ids, reading them back from
    the GPU (a sync that stalls the launch queue) to find the packed runs; a 4D mask it hands on as is."""
    return torch.empty((embeds.shape[0], 1, 0, 0), dtype=torch.bool, device=embeds.device)


def flash_varlen() -> Callable | None:
    """PyTorch's flash varlen attention as f(q, k, v, cu, longest, scale) on (tokens, heads, dim) tensors, or
    None when this torch lacks it. Its signature moved between releases (is_causal, then window_size;
    enable_gqa, scale), so the call is built once from what this release takes: plain values only, which
    torch.compile traces through."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    takes = set(inspect.signature(varlen_attn).parameters)
    if "window_size" in takes:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in takes:
        causal = {"is_causal": True}
    else:
        return None
    has_scale, has_gqa = "scale" in takes, "enable_gqa" in takes

    def attend(query, key, value, cu_lengths, longest, scale):
        options = dict(causal)
        if has_scale:
            options["scale"] = scale
        elif scale != query.shape[-1] ** -0.5:
            raise ValueError(f"this torch's varlen_attn has no scale argument and the model scales by {scale}")
        if key.shape[1] != query.shape[1]:
            if has_gqa:
                options["enable_gqa"] = True
            else:
                groups = query.shape[1] // key.shape[1]
                key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
        return varlen_attn(query, key, value, cu_lengths, cu_lengths, longest, longest, **options)

    return attend


FLASH_VARLEN = flash_varlen()


def attention_per_run(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_lengths: torch.Tensor,
                      scale: float) -> torch.Tensor:
    """Causal sdpa on each run alone; (tokens, heads, dim) in and out. On a GPU grouped key/value heads are
    expanded first: sdpa's cuDNN kernel takes none, and the copies are a few MB a layer."""
    bounds = cu_lengths.tolist()
    groups = query.shape[1] // key.shape[1]
    if query.is_cuda and groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    outputs = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        q, k, v = (t[start:end].transpose(0, 1) for t in (query, key, value))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                             enable_gqa=k.shape[0] != q.shape[0])
        outputs.append(out.transpose(0, 1))
    return torch.cat(outputs)


# outside compiled graphs: a graph would be traced anew for each batch's number and lengths of samples
attention_per_sample = torch.compiler.disable(attention_per_run)


def flat_tokens(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, dropout: float,
                sliding_window: int | None, extra: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """transformers' (batch, heads, seq, dim) query/key/value as (batch · seq, heads, dim) for attention over
    packed runs, in the autocast dtype on a GPU (rotary embeddings leave q and k in the float32 of the
    residual stream under autocast). A model whose attention needs more than causal softmax attention
    (dropout, a sliding window, Gemma 2's logit soft-capping, attention sinks) is refused, not run wrong."""
    refused = {"attention dropout": dropout, "sliding window": sliding_window,
               "logit soft-capping": extra.get("softcap"), "attention sinks": extra.get("s_aux") is not None}
    if named := [name for name, used in refused.items() if used]:
        raise ValueError(f"attention over packed runs takes no {' and no '.join(named)}, which this LLM's "
                         "attention uses: set model.attention to sdpa or eager (transformers' own attention "
                         "over a block-diagonal mask), or flash_attention_2 with the flash-attn package")
    batch, _, length, dim = query.shape
    q, k, v = (t.transpose(1, 2).reshape(batch * length, t.shape[1], dim) for t in (query, key, value))
    if q.is_cuda and torch.is_autocast_enabled(q.device.type):
        q, k, v = (t.to(torch.get_autocast_dtype(q.device.type)) for t in (q, k, v))
    return q, k, v


def varlen_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     sliding_window: int | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                     max_length_q: int | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-interface signature: query (batch, heads, seq, dim), key/value (batch,
    kv_heads, seq, dim) -> output (batch, seq, heads, dim)."""
    if cu_seq_lens_q is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      sliding_window=sliding_window, **kwargs)
    batch, heads, length, dim = query.shape
    scale = scaling if scaling is not None else dim ** -0.5
    q, k, v = flat_tokens(query, key, value, dropout, sliding_window, kwargs)
    if FLASH_VARLEN is not None and q.is_cuda and q.dtype in VARLEN_KERNEL_DTYPES:
        out = FLASH_VARLEN(q, k, v, cu_seq_lens_q, max_length_q, scale)
    else:
        out = attention_per_run(q, k, v, cu_seq_lens_q, scale)
    return out.reshape(batch, length, heads, dim), None


def sdpa_per_sample_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                              sliding_window: int | None = None, run_bounds: torch.Tensor | None = None,
                              **kwargs) -> tuple[torch.Tensor, None]:
    """`varlen_attention`'s signature, with the run bounds on the host (`PackedRuns.per_sample_kwargs`)."""
    if run_bounds is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      sliding_window=sliding_window, **kwargs)
    batch, heads, length, dim = query.shape
    q, k, v = flat_tokens(query, key, value, dropout, sliding_window, kwargs)
    out = attention_per_sample(q, k, v, run_bounds, scaling if scaling is not None else dim ** -0.5)
    return out.reshape(batch, length, heads, dim), None


for name, function in ((VARLEN, varlen_attention), (SDPA_PER_SAMPLE, sdpa_per_sample_attention)):
    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, sdpa_mask)
