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


def trained_model(tokenizer, trainable: set[str], tie_word_embeddings: bool = False):
    torch.manual_seed(0)
    llm = dict(LLM, tie_word_embeddings=tie_word_embeddings)
    model = build_model(ModelConfig({"config": VISION}, {"config": llm}), tokenizer, "<image>").train()
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



def weight_products(model, batches, autocast) -> dict[str, torch.Tensor]:
    """Each Linear and Embedding weight's gradient as the fp32 sum over micro-batches of the bf16 factors the
    model's own backward sees (grad_outputᵀ · input; the output rows' gradients added at their ids, none at
    the padding index), a tied weight's two parts added: what the fused adds must add up to."""
    factors: dict[int, list] = {}

    def keep_input(module):
        def hook(_, args, output):
            x = args[0].detach()
            output.register_hook(lambda g: factors.setdefault(id(module), []).append((g.detach(), x)))
        return hook
    modules = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    handles = [m.register_forward_hook(keep_input(m)) for m in modules]
    for batch in batches:
        with autocast:
            loss = model(**batch.model_inputs())["loss_sum"]
        loss.backward()
        model.zero_grad(set_to_none=True)
    for handle in handles:
        handle.remove()

    def fp32(t):  # the bf16 value a bf16 product multiplies (autocast casts an fp32 input first)
        return t.reshape(-1, t.shape[-1]).to(torch.bfloat16).float()

    def summed(module, g, x):
        if isinstance(module, torch.nn.Linear):
            return fp32(g).t() @ fp32(x)
        ids, rows = x.reshape(-1), fp32(g)
        if module.padding_idx is not None:
            rows[ids == module.padding_idx] = 0
        return torch.zeros_like(module.weight, dtype=torch.float32).index_add_(0, ids, rows)
    by_weight: dict[int, torch.Tensor] = {}
    for module in modules:
        for g, x in factors.get(id(module), []):
            by_weight[id(module.weight)] = by_weight.get(id(module.weight), 0) + summed(module, g, x)
    return {name: by_weight[id(p)] for name, p in model.named_parameters() if id(p) in by_weight}


CUDA = pytest.param("cuda", True, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"))


@pytest.mark.parametrize("device,tied", [("cpu", False), ("cpu", True), CUDA])
def test_fused_products_add_each_linear_and_embedding_weight_gradient_into_its_fp32_sum(tokenizer, device, tied):
    """On a GPU the passes run under autocast, as the trainer runs them, and cuBLAS adds into the sums; its
    attention backward sums in a nondeterministic order, so the two runs agree to a tolerance only. A tied
    embedding and output layer add both their parts into the one sum."""
    model = trained_model(tokenizer, {"vision", "projector", "llm"}, tie_word_embeddings=tied).to(device)
    batches = [b.to(torch.device(device)) for b in micro_batches(tokenizer, model)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    reference = copy.deepcopy(model)
    for p in reference.parameters():
        p.data = p.data.to(torch.bfloat16)
    expected = {}
    for batch in batches:
        with autocast:
            loss = reference(**batch.model_inputs())["loss_sum"]
        loss.backward()
        for name, p in reference.named_parameters():
            if p.grad is not None:
                expected[name] = expected.get(name, 0) + p.grad.float()
        reference.zero_grad(set_to_none=True)
    products = weight_products(reference, batches, autocast)

    weights = Bf16Weights(model, ONE_PROCESS, fuse_linear_grads=True)
    names = {id(p): name for name, p in model.named_parameters()}
    fused = {names[id(w)] for w in weights.fused.weights}
    assert {"projector.fc1.weight", "llm.model.layers.0.self_attn.q_proj.weight",
            "llm.model.layers.1.mlp.down_proj.weight", "vision.encoder.layers.0.mlp.fc1.weight",
            "llm.model.embed_tokens.weight", "vision.embeddings.position_embedding.weight"} <= fused
    assert ("llm.lm_head.weight" in fused) is not tied  # tied: the embeddings' name is the one weight's
    assert not any(name.endswith("bias") or "norm" in name or "patch_embedding" in name for name in fused)
    with weights.passes():
        for batch in batches:
            with autocast:
                loss = model(**batch.model_inputs())["loss_sum"]
            loss.backward()
            assert all(p.grad is None for p in model.parameters())
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(expected)

    def close(atol, rtol):
        return {"atol": atol, "rtol": rtol} if device == "cpu" else {"atol": 1e-3, "rtol": 1e-2}
    for name, grad in grads.items():
        assert grad.dtype == torch.float32
        if name in fused:  # the fp32 sum of the products, never rounded to bf16 on the way
            torch.testing.assert_close(grad, products[name], **close(1e-5, 1e-4), msg=name)
            # and near autograd's bf16 gradients' sum (a tied weight's two bf16 parts are rounded apart there)
            assert (grad - expected[name]).norm() <= 1e-2 * expected[name].norm(), name
        else:  # biases, norms, the patch convolution: the hooks' sums of autograd's bf16 gradients
            torch.testing.assert_close(grad, expected[name], **close(0, 0), msg=name)


class TwoBranches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.used = torch.nn.Linear(8, 4)
        self.unused = torch.nn.Linear(8, 4)

    def forward(self, x, branch="used"):
        return getattr(self, branch)(x)


class ScaledEmbedding(torch.nn.Embedding):
    """An embedding with its own forward (as Gemma's scaled word embeddings)."""

    def forward(self, ids):
        return super().forward(ids) * 2.0


class Lookups(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = torch.nn.Embedding(10, 4, padding_idx=0)
        self.scaled = ScaledEmbedding(10, 4)
        self.by_freq = torch.nn.Embedding(10, 4, scale_grad_by_freq=True)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.scaled.weight  # tied to a module that cannot be routed

    def forward(self, ids):
        return self.head(self.plain(ids) + self.scaled(ids) + self.by_freq(ids)).square().sum()


def test_an_embedding_adds_its_rows_at_their_ids_but_the_padding_one_and_odd_ones_stay_with_the_hooks():
    torch.manual_seed(0)
    model = Lookups()
    ids = torch.tensor([[0, 3, 3, 7, 0, 3], [9, 0, 7, 7, 1, 3]])
    reference = copy.deepcopy(model)
    for p in reference.parameters():
        p.data = p.data.to(torch.bfloat16)
    rows = []

    def keep_rows(module, args, out):
        out.register_hook(rows.append)
    reference.plain.register_forward_hook(keep_rows)
    reference(ids).backward()
    plain = torch.zeros(10, 4).index_add_(0, ids.flatten(), rows[0].reshape(-1, 4).float()
                                          * (ids.flatten() != 0).unsqueeze(1))

    weights = Bf16Weights(model, ONE_PROCESS, fuse_linear_grads=True)
    assert weights.fused.weights == [model.plain.weight]  # the others: own forward, by frequency, tied to it
    with weights.passes():
        model(ids).backward()
        assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model.plain.weight.grad[0], torch.zeros(4))  # the padding row gets nothing
    torch.testing.assert_close(model.plain.weight.grad, plain, atol=1e-6, rtol=0)
    for name in ("scaled", "by_freq"):  # the hooks' sums of autograd's bf16 gradients
        torch.testing.assert_close(getattr(model, name).weight.grad, getattr(reference, name).weight.grad.float(),
                                   atol=0, rtol=0, msg=name)


def test_a_fused_weight_no_micro_batch_reached_gets_no_gradient_and_the_next_step_starts_clean():
    torch.manual_seed(0)
    model = TwoBranches()
    weights = Bf16Weights(model, ONE_PROCESS, fuse_linear_grads=True)
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    with weights.passes():
        model(x).square().sum().backward()
    assert model.used.weight.grad is not None and model.used.bias.grad is not None
    assert model.unused.weight.grad is None and model.unused.bias.grad is None  # AdamW skips them
    first = model.used.weight.grad.clone()
    with weights.passes():
        model(x, "unused").square().sum().backward()
    assert model.used.weight.grad is None and model.unused.weight.grad is not None
    with weights.passes():
        model(x).square().sum().backward()
    torch.testing.assert_close(model.used.weight.grad, first, atol=0, rtol=0)  # the sum was zeroed between steps


def test_fused_products_run_inside_compiled_blocks_without_breaking_their_graphs(tokenizer):
    """The trainer compiles each transformer block: with fusion, the blocks' other gradients come out bitwise
    the same and the Linear weights' within bf16 rounding of the unfused sums, with no more graph breaks.
    Graph breaks are Dynamo's and the op's declared mutations AOTAutograd's, so the blocks compile with the
    aot_eager backend here, over one micro-batch: Inductor's code for these blocks, and the recompile for a
    second length, would take minutes on a 2-core CPU. The next test runs the op through both."""
    from torch._dynamo.utils import counters

    from trainer.distributed import block_modules

    sums, breaks = {}, {}
    for fuse in (False, True):
        torch._dynamo.reset()
        counters.clear()
        model = trained_model(tokenizer, {"vision", "projector", "llm"})
        for block in block_modules(model):
            block.compile(backend="aot_eager")
        weights = Bf16Weights(model, ONE_PROCESS, fuse_linear_grads=fuse)
        with weights.passes():
            model(**micro_batches(tokenizer, model)[0].model_inputs())["loss_sum"].backward()
        sums[fuse] = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        breaks[fuse] = sum(counters["graph_break"].values())
        assert counters["stats"]["unique_graphs"] > 0  # the blocks did compile
        names = {id(p): name for name, p in model.named_parameters()}
        fused = {names[id(w)] for w in weights.fused.weights} if fuse else set()
    assert breaks[True] == breaks[False]
    assert set(sums[True]) == set(sums[False]) and len(fused) > 20
    for name, grad in sums[True].items():
        if name in fused:
            assert (grad - sums[False][name]).norm() <= 1e-2 * sums[False][name].norm(), name
        else:
            torch.testing.assert_close(grad, sums[False][name], atol=0, rtol=0, msg=name)


class MlpBlock(torch.nn.Module):
    """A transformer block's MLP: norm, up, GELU, down, residual."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.LayerNorm(16)
        self.up = torch.nn.Linear(16, 64)
        self.down = torch.nn.Linear(64, 16)

    def forward(self, x):
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


def test_inductor_compiles_the_fused_product_into_a_block_with_the_eager_sums():
    """Inductor (the trainer's `block.compile()` default) lowers the op inside a block's forward and backward
    graphs: over two micro-batches of different lengths, the sums agree with eager fusion's, with no graph break."""
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    inputs = [torch.randn(2, n, 16, dtype=torch.bfloat16) for n in (5, 7)]
    start = torch.nn.Sequential(MlpBlock(), MlpBlock())
    grads = []
    for compiled in (False, True):
        torch._dynamo.reset()
        counters.clear()
        model = copy.deepcopy(start)
        if compiled:
            for block in model:
                block.compile()
        weights = Bf16Weights(model, ONE_PROCESS, fuse_linear_grads=True)
        assert len(weights.fused.weights) == 4
        with weights.passes():
            for x in inputs:
                model(x).float().square().sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"]
    assert counters["inductor"]["fxgraph_cache_miss"] + counters["inductor"]["fxgraph_cache_hit"] > 0
    for name, grad in grads[1].items():
        expected = grads[0][name]  # bf16 passes: Inductor's kernels round some values differently
        assert 0 < expected.norm() and (grad - expected).norm() <= 1e-2 * expected.norm(), name
