"""bf16 weights for a step's passes (trainer.bf16_weights) on a real tiny VLM (CLIP tower + Qwen2 LLM built
from configs): the gradients it hands the optimizer are the fp32 sums of what a bf16 copy of the model
computes, micro-batch by micro-batch; between steps the model is its fp32 self again."""

import copy
import io

import pytest
import torch
from PIL import Image

from trainer.bf16_weights import Bf16Weights
from trainer.data import SampleEncoder, pack_rows
from trainer.distributed import Runtime
from trainer.model import ModelConfig, build_model
from trainer.tiling import TilingConfig
from trainer.tokenizer import train_bpe_tokenizer

VISION = {"model_type": "clip_vision_model", "image_size": 112, "patch_size": 14, "hidden_size": 32,
          "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
LLM = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2}
ONE_PROCESS = Runtime(0, 1, 0, torch.device("cpu"))


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(["synth/corpora/en.txt"], 500)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (230, 220, 40)).save(out, format="PNG")
    return out.getvalue()


def micro_batches(tokenizer, model):
    encoder = SampleEncoder(tokenizer, model.visual_token_count, TilingConfig(tile_size=112, max_tiles=4), 384)
    samples = [("a", (300, 120), "The quick brown fox."), ("b", (120, 300), "Jumps over."), ("c", (200, 200), "Dog.")]
    encoded = [encoder.encode({"key": k, "source": "t", "image": png(*size),
                               "conversation": [{"role": "user", "content": "<image>\nRead."},
                                                {"role": "assistant", "content": text}]})
               for k, size, text in samples]
    return [pack_rows([row], 384, tokenizer.pad_token_id) for row in (encoded[:2], encoded[2:])]


def trained_model(tokenizer, trainable: set[str]):
    torch.manual_seed(0)
    model = build_model(ModelConfig({"config": VISION}, {"config": LLM}), tokenizer, "<image>").train()
    for name, params in model.module_parameters().items():
        for param in params:
            param.requires_grad_(name in trainable)
    return model


def test_a_step_sums_in_fp32_the_gradients_of_a_bf16_copy_and_leaves_the_fp32_model(tokenizer):
    model = trained_model(tokenizer, {"projector", "llm"})  # the tower frozen, as a stage may have it
    batches = micro_batches(tokenizer, model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    storage = {name: p.data.data_ptr() for name, p in model.named_parameters()}

    # the reference: a bf16 copy of the model, each micro-batch's gradient cast to fp32 and summed
    reference = copy.deepcopy(model)
    for p in reference.parameters():  # parameters only: buffers (the pixel statistics) stay fp32
        p.data = p.data.to(torch.bfloat16)
    expected: dict[str, torch.Tensor] = {}
    for batch in batches:
        reference(**batch.model_inputs())["loss_sum"].backward()
        for name, p in reference.named_parameters():
            if p.grad is not None:
                expected[name] = expected.get(name, 0) + p.grad.float()
        reference.zero_grad(set_to_none=True)

    weights = Bf16Weights(model, ONE_PROCESS)
    with weights.passes():
        assert all(p.dtype == torch.bfloat16 for p in model.parameters())
        for batch in batches:
            model(**batch.model_inputs())["loss_sum"].backward()
            assert all(p.grad is None for p in model.parameters())  # handed to the fp32 sums and freed
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(expected)
    assert any(name.startswith("llm.") for name in grads) and not any(name.startswith("vision.") for name in grads)
    for name, grad in grads.items():
        assert grad.dtype == torch.float32
        torch.testing.assert_close(grad, expected[name], atol=0, rtol=0, msg=name)
    for name, p in model.named_parameters():  # the same fp32 tensors as before the step, untouched
        assert p.dtype == torch.float32 and p.data.data_ptr() == storage[name]
        torch.testing.assert_close(p.detach(), before[name], atol=0, rtol=0)

    # the optimizer steps the fp32 weights, and the next step's passes run on fresh bf16 copies of them
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    changed = dict(model.named_parameters())["projector.fc1.weight"].detach().clone()
    assert not torch.equal(changed, before["projector.fc1.weight"])
    with weights.passes():
        seen = dict(model.named_parameters())["projector.fc1.weight"].detach().clone()
        model(**batches[0].model_inputs())["loss_sum"].backward()
    torch.testing.assert_close(seen, changed.to(torch.bfloat16), atol=0, rtol=0)
    assert dict(model.named_parameters())["projector.fc1.weight"].grad is not None


def test_a_failing_pass_still_leaves_the_fp32_weights_in_place(tokenizer):
    model = trained_model(tokenizer, {"projector"})
    weights = Bf16Weights(model, ONE_PROCESS)
    with pytest.raises(RuntimeError, match="out of memory"):
        with weights.passes():
            raise RuntimeError("CUDA out of memory (as a real pass may end)")
    assert all(p.dtype == torch.float32 for p in model.parameters())

