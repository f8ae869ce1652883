"""Attention over packed rows (trainer.attention): run lengths read from position ids, and the varlen
attention equal to one masked attention over the whole row, forward and backward. The CUDA test checks
PyTorch's flash varlen kernel the same way where a GPU is at hand."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from trainer.attention import (FLASH_VARLEN, SDPA_PER_SAMPLE, VARLEN, attention_per_run, no_mask, packed_runs,
                               sdpa_per_sample_attention, varlen_attention)
from trainer.data import EncodedSample, pack_rows


def positions(*rows: list[int]) -> torch.Tensor:
    return torch.tensor([[p for n in row for p in range(n)] for row in rows])


def test_runs_start_at_each_zero_and_each_row():
    runs = packed_runs(positions([3, 5, 2], [4, 6]))
    assert runs.cu_lengths.tolist() == [0, 3, 8, 10, 14, 20]
    assert runs.cu_lengths.dtype == torch.int32 and runs.longest == 6
    # a row whose positions do not start at 0 still starts a run of its own
    shifted = torch.tensor([[0, 1, 2, 3], [7, 8, 0, 1]])
    assert packed_runs(shifted).cu_lengths.tolist() == [0, 4, 6, 8]


def test_pack_rows_positions_give_one_run_per_sample_and_padding():
    samples = [EncodedSample(key=f"s{n}", source="t", input_ids=[5] * n, labels=[1] * n, image=None)
               for n in (7, 3, 11)]
    batch = pack_rows([samples[:2], samples[2:]], 16, pad_id=0)
    assert packed_runs(batch.position_ids).cu_lengths.tolist() == [0, 7, 10, 16, 27, 32]
    assert batch.lengths == [7, 3, 11] and batch.real_tokens == 21  # padding runs are not samples
    assert batch.cu_lengths.tolist() == [0, 7, 10, 16, 27, 32] and batch.longest == 11  # the same, from the host


@pytest.mark.parametrize("multiple, width", [(None, 64), (8, 16), (4, 12), (1, 11), (100, 64)])
def test_batches_are_as_wide_as_their_longest_row_rounded_up(multiple, width):
    samples = [EncodedSample(key=f"s{n}", source="t", input_ids=[5] * n, labels=[1] * n, image=None)
               for n in (7, 3, 11)]
    batch = pack_rows([samples[:2], samples[2:]], 64, pad_id=0, pad_to_multiple_of=multiple)
    assert batch.input_ids.shape == (2, width)
    padding = [[width] if width > 10 else [], [2 * width] if width > 11 else []]  # each row's padding run
    assert batch.cu_lengths.tolist() == [0, 7, 10, *padding[0], width + 11, *padding[1]]
    assert batch.longest == max(11, width - 10)
    assert (batch.labels.flatten()[batch.label_index + 1] == 1).all()
    assert batch.image_index.numel() == 0
    assert batch.label_tokens == int((batch.labels[:, 1:] != -100).sum()) == 9 + 10  # every position before a label


def block_diagonal_reference(q, k, v, cu_lengths, scale):
    """One causal attention over the whole (tokens, heads, dim) row with a block-diagonal boolean mask."""
    tokens = q.shape[0]
    run = torch.zeros(tokens, dtype=torch.long, device=q.device)
    run[cu_lengths[1:-1].long().to(q.device)] = 1
    run = run.cumsum(0)
    index = torch.arange(tokens, device=q.device)
    allowed = (run[:, None] == run[None, :]) & (index[:, None] >= index[None, :])
    out = torch.nn.functional.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                                           attn_mask=allowed, scale=scale, enable_gqa=True)
    return out.transpose(0, 1)


def random_qkv(tokens, heads=4, kv_heads=2, dim=16, device="cpu", dtype=torch.float32):
    generator = torch.Generator(device).manual_seed(0)
    make = lambda h: torch.randn(tokens, h, dim, generator=generator, device=device, dtype=dtype,  # noqa: E731
                                 requires_grad=True)
    return make(heads), make(kv_heads), make(kv_heads)


def gradients(output, inputs):
    weight = torch.linspace(-1, 1, output.numel(), device=output.device, dtype=output.dtype).view_as(output)
    return torch.autograd.grad((output * weight).sum(), inputs)


def test_per_run_attention_equals_the_block_diagonal_mask_forward_and_backward():
    cu = packed_runs(positions([5, 9, 1, 17])).cu_lengths
    q, k, v = random_qkv(32)
    ours = attention_per_run(q, k, v, cu, 0.25)
    reference = block_diagonal_reference(q, k, v, cu, 0.25)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)
    for mine, theirs in zip(gradients(ours, (q, k, v)), gradients(reference, (q, k, v))):
        torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("attention", [varlen_attention, sdpa_per_sample_attention])
def test_registered_packed_attention_reads_its_runs_and_falls_back_to_sdpa_without_them(attention):
    cu = packed_runs(positions([6, 10])).cu_lengths
    runs = {"cu_seq_lens_q": cu, "max_length_q": 10} if attention is varlen_attention else {"run_bounds": cu}
    q, k, v = random_qkv(16)
    as_model = lambda t: t.detach().transpose(0, 1).unsqueeze(0)  # noqa: E731  (batch, heads, seq, dim)
    module = torch.nn.Module()
    module.is_causal, module.num_key_value_groups = True, 2
    packed, _ = attention(module, as_model(q), as_model(k), as_model(v), None, scaling=0.25, **runs)
    torch.testing.assert_close(packed[0], block_diagonal_reference(q, k, v, cu, 0.25), atol=1e-6, rtol=1e-5)
    plain, _ = attention(module, as_model(q), as_model(k), as_model(v), None, scaling=0.25)
    whole = torch.tensor([0, 16], dtype=torch.int32)
    torch.testing.assert_close(plain[0], block_diagonal_reference(q, k, v, whole, 0.25), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="sliding window"):
        attention(module, as_model(q), as_model(k), as_model(v), None, sliding_window=4, **runs)


TINY_LLM = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, pad_token_id=0)
# the families a recipe's LLM is likely to be, each as transformers builds it (Mistral without its window)
LLM_FAMILIES = {"qwen2": {}, "qwen3": {"head_dim": 16}, "llama": {}, "mistral": {"sliding_window": None},
                "phi3": {}}


@pytest.mark.parametrize("family", sorted(LLM_FAMILIES))
@pytest.mark.parametrize("attention", [VARLEN, SDPA_PER_SAMPLE])
def test_a_transformers_llm_with_packed_attention_equals_sdpa_with_the_packed_mask(attention, family):
    config = AutoConfig.for_model(model_type=family, **TINY_LLM, **LLM_FAMILIES[family])
    torch.manual_seed(0)
    sdpa = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    packed = AutoModelForCausalLM.from_config(config, attn_implementation=attention).eval()
    packed.load_state_dict(sdpa.state_dict())
    position_ids = positions([9, 14, 9])
    input_ids = torch.randint(0, 97, position_ids.shape)
    runs = packed_runs(position_ids)
    kwargs = runs.attention_kwargs() if attention == VARLEN else runs.per_sample_kwargs()
    # the stand-in mask the trainer passes: plain sdpa could not run with it, so the runs must have arrived
    kwargs["attention_mask"] = no_mask(torch.empty(position_ids.shape))
    with torch.no_grad():
        expected = sdpa(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
        got = packed(input_ids=input_ids, position_ids=position_ids, use_cache=False, **kwargs).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available() or FLASH_VARLEN is None,
                    reason="needs a CUDA GPU and a torch with torch.nn.attention.varlen")
@pytest.mark.parametrize("kernel", ["flash-varlen", "sdpa-per-sample"])
def test_packed_attention_kernels_equal_the_block_diagonal_mask_on_cuda(kernel):
    """PyTorch's flash varlen kernel, and one sdpa call a sample (cuDNN on Hopper, k/v heads expanded),
    against fp32 masked attention, forward and gradients, at the 1.5B LLM's head layout in bf16."""
    host = packed_runs(positions([700, 1300, 33, 2048])).cu_lengths
    q, k, v = random_qkv(4081, heads=12, kv_heads=2, dim=128, device="cuda", dtype=torch.bfloat16)
    if kernel == "flash-varlen":
        ours = FLASH_VARLEN(q, k, v, host.cuda(), 2048, 128 ** -0.5)
    else:
        ours = attention_per_run(q, k, v, host, 128 ** -0.5)
    reference = block_diagonal_reference(q.float(), k.float(), v.float(), host, 128 ** -0.5)
    torch.testing.assert_close(ours.float(), reference, atol=2e-2, rtol=2e-2)
    for mine, theirs in zip(gradients(ours.float(), (q, k, v)), gradients(reference, (q, k, v))):
        torch.testing.assert_close(mine.float(), theirs.float(), atol=3e-2, rtol=3e-2)


def test_an_llm_whose_attention_soft_caps_its_logits_is_refused_not_run_wrong():
    """Gemma 2 soft-caps attention logits (and alternates sliding-window layers): packed varlen attention
    has neither, so the forward stops naming what is missing and what to use instead."""
    config = AutoConfig.for_model(model_type="gemma2", **TINY_LLM, head_dim=16, sliding_window=8,
                                  attn_logit_softcapping=50.0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=VARLEN).eval()
    position_ids = positions([9, 14])
    with pytest.raises(ValueError, match="no sliding window and no logit soft-capping.*eager"):
        model(input_ids=torch.randint(0, 97, position_ids.shape), position_ids=position_ids, use_cache=False,
              attention_mask=no_mask(torch.empty(position_ids.shape)), **packed_runs(position_ids).attention_kwargs())


def test_generation_with_a_cache_and_padding_is_sdpa_under_varlen():
    config = AutoConfig.for_model(model_type="qwen2", vocab_size=97, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  pad_token_id=0, eos_token_id=96)
    torch.manual_seed(0)
    sdpa = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    varlen = AutoModelForCausalLM.from_config(config, attn_implementation=VARLEN).eval()
    varlen.load_state_dict(sdpa.state_dict())
    input_ids = torch.tensor([[0, 0, 5, 17, 33], [4, 8, 15, 16, 23]])  # the first row left-padded
    attention_mask = (input_ids != 0).long()
    settings = {"attention_mask": attention_mask, "max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    torch.testing.assert_close(varlen.generate(input_ids, **settings), sdpa.generate(input_ids, **settings))
    with torch.no_grad():
        # the padded row's logits: attention must skip the padding, as sdpa's mask does
        expected = sdpa(input_ids=input_ids, attention_mask=attention_mask).logits
        got = varlen(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(got[0, 2:], expected[0, 2:], atol=1e-5, rtol=1e-5)
