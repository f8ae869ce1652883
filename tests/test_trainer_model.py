"""The VLM (trainer.model) and its inputs (trainer.data, trainer.tokenizer): real tiny transformers models
(CLIP vision tower, Qwen2 LLM) built from configs and a BPE tokenizer trained on the shipped corpus."""

import io

import pytest
import torch
from PIL import Image

from trainer.attention import SDPA_PER_SAMPLE, VARLEN
from trainer.data import SampleEncoder, SkippedSample, pack_rows
from trainer.model import (CLIP_MEAN, CLIP_STD, IGNORE_INDEX, DocVLM, LogitFinish, ModelConfig, build_model,
                           compiled_label_loss_sum, label_loss_sum)
from trainer.tiling import TilingConfig
from trainer.tokenizer import train_bpe_tokenizer

VISION = {"model_type": "clip_vision_model", "image_size": 112, "patch_size": 14, "hidden_size": 32,
          "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
LLM = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2}


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(["synth/corpora/en.txt", "synth/corpora/zh.txt"], 600)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return build_model(ModelConfig({"config": VISION}, {"config": LLM}), tokenizer, "<image>").eval()


def png(width: int, height: int, colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def sample(key: str, size=(300, 120), answer="The quick brown fox.", turns=None):
    conversation = turns or [{"role": "user", "content": "<image>\nRead the text."},
                             {"role": "assistant", "content": answer}]
    return {"key": key, "source": "test", "conversation": conversation, "image": png(*size) if size else None}


def encoder(tokenizer, model, seq_len=512, max_tiles=6):
    return SampleEncoder(tokenizer, model.visual_token_count, TilingConfig(tile_size=112, max_tiles=max_tiles), seq_len)


def loss_and_gradients(model, batch):
    """One forward and backward of `batch`: the loss and each parameter's gradient; the model's left cleared."""
    model.zero_grad(set_to_none=True)
    out = model(**batch.model_inputs())
    out["loss_sum"].backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out["loss_sum"].detach(), grads


def assert_same_loss_and_gradients(got, expected, loss_atol):
    (loss, grads), (expected_loss, expected_grads) = got, expected
    torch.testing.assert_close(loss, expected_loss, atol=loss_atol, rtol=1e-6)
    assert grads.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("size", [(300, 120), (120, 300), (50, 50), (1000, 990)])
def test_placeholder_expands_to_exactly_the_visual_tokens(tokenizer, model, size):
    encoded = encoder(tokenizer, model).encode(sample("a", size))
    image = encoded.image
    expected = (image.rows * image.cols + int(image.has_global)) * 16 + (image.rows - 1)
    assert model.visual_token_count(*image.grid) == expected
    assert encoded.input_ids.count(model.image_token_id) == expected
    batch = pack_rows([[encoded]], 512, tokenizer.pad_token_id)
    assert batch.image_index.tolist() == torch.nonzero(batch.input_ids.flatten() == model.image_token_id)[:, 0].tolist()
    embeds = model.embed(batch.input_ids, batch.grids, batch.pixels)
    assert embeds.shape == (1, 512, 64)
    torch.testing.assert_close(model.embed(batch.input_ids, batch.grids, batch.pixels, batch.image_index), embeds,
                               atol=0, rtol=0)
    with pytest.raises(ValueError, match="placeholder tokens"):
        model.embed(batch.input_ids, [(2, 1, False)], batch.pixels[:1])


def test_labels_cover_only_assistant_turns(tokenizer, model):
    turns = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "<image>\nWhat is the title?"},
             {"role": "assistant", "content": "A river town."},
             {"role": "user", "content": "And the year?"},
             {"role": "assistant", "content": "1887"}]
    encoded = encoder(tokenizer, model).encode(sample("b", turns=turns))
    labelled = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX])
    assert labelled == "A river town.<|im_end|>\n1887<|im_end|>\n"
    text = tokenizer.decode(encoded.input_ids)
    assert text.count("<|im_start|>assistant\n") == 2  # the headers are in the input, not in the labels


# the chat templates the shipped 1.5B/7B recipes meet, as their checkpoints' tokenizer_config.json ship them:
# Qwen2-Instruct's, and Qwen2.5-Instruct's without its tool-calling branches (the mixtures carry no tools)
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}")


@pytest.mark.parametrize("template", [QWEN2_TEMPLATE, QWEN25_TEMPLATE], ids=["qwen2", "qwen2.5"])
@pytest.mark.parametrize("system", [False, True])
def test_labels_cover_only_assistant_turns_under_qwen_chat_templates(tokenizer, model, template, system):
    """The Qwen templates add a default system turn when a conversation has none: it is input, never a
    label, and the image placeholder still expands in place."""
    import copy

    qwen = copy.deepcopy(tokenizer)
    qwen.chat_template = template
    turns = [{"role": "user", "content": "<image>\nWhat is the title?"}, {"role": "assistant", "content": "A town."},
             {"role": "user", "content": "And the year?"}, {"role": "assistant", "content": "1887"}]
    if system:
        turns.insert(0, {"role": "system", "content": "Be brief."})
    encoded = encoder(qwen, model).encode(sample("q", turns=turns))
    labelled = qwen.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX])
    assert labelled == "A town.<|im_end|>\n1887<|im_end|>\n"
    text = qwen.decode(encoded.input_ids)
    assert text.startswith("<|im_start|>system\n" + ("Be brief." if system else "You are"))
    assert text.count("<|im_start|>system") == 1 and text.count("<|im_start|>assistant\n") == 2
    start, end = encoded.image_tokens
    assert end - start == model.visual_token_count(*encoded.image.grid) > 0


# Qwen1.5-Chat's: a turn's <|im_end|> comes only before a next turn (or a generation prompt)
QWEN15_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content']}}"
    "{% if (loop.last and add_generation_prompt) or not loop.last %}{{ '<|im_end|>' + '\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}")
PLAIN_TEMPLATE = ("{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}"
                  "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")


@pytest.mark.parametrize("template,expected,added", [
    (QWEN15_TEMPLATE, "A town.<|im_end|>1887<|im_end|>", 1),  # the template's own <|im_end|>, then one added
    (PLAIN_TEMPLATE, "A town.\n1887\n<|im_end|>", 1),  # no end-of-turn token at all: the last turn gets one
    (QWEN2_TEMPLATE, "A town.<|im_end|>\n1887<|im_end|>\n", 0),  # closes every turn itself: nothing added
], ids=["qwen1.5", "plain", "qwen2"])
def test_every_labelled_conversation_ends_with_the_end_of_turn_token(tokenizer, model, template, expected, added):
    """A model must learn to stop: where a template writes the eos only before a next turn, or never, the
    labels still end each turn with it (once: never doubled where the template wrote it)."""
    import copy

    other = copy.deepcopy(tokenizer)
    other.chat_template = template
    turns = [{"role": "user", "content": "<image>\nWhat is the title?"}, {"role": "assistant", "content": "A town."},
             {"role": "user", "content": "And the year?"}, {"role": "assistant", "content": "1887"}]
    encoded = encoder(other, model).encode(sample("t", turns=turns))
    labelled = other.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX])
    assert labelled == expected
    rendered = other.apply_chat_template(turns, tokenize=False)
    assert other.decode(encoded.input_ids).count("<|im_end|>") == rendered.count("<|im_end|>") + added


def test_text_only_sample_and_truncation_rule(tokenizer, model):
    text_only = encoder(tokenizer, model).encode(sample("c", size=None, turns=[
        {"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}]))
    assert text_only.image is None and model.image_token_id not in text_only.input_ids
    long_answer = " ".join(["river"] * 400)
    cut = encoder(tokenizer, model, seq_len=200).encode(sample("d", size=(50, 50), answer=long_answer))
    assert len(cut) == 200 and cut.labels[-1] != IGNORE_INDEX
    with pytest.raises(SkippedSample, match="image tokens end"):
        encoder(tokenizer, model, seq_len=60).encode(sample("e", size=(300, 120)))
    with pytest.raises(SkippedSample, match="bad image"):
        encoder(tokenizer, model).encode(sample("f") | {"image": b"not an image"})


def test_broken_and_oversized_images_are_skipped_samples_not_a_crash(tokenizer, model, monkeypatch):
    """Shards from elsewhere hold what docforge's own ingest refuses: truncated files and images past PIL's
    decompression-bomb limit. Each is one skipped sample; the data worker goes on."""
    whole = png(300, 120)
    with pytest.raises(SkippedSample, match="bad image: OSError"):
        encoder(tokenizer, model).encode(sample("t") | {"image": whole[:len(whole) // 2]})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 300×120 is then more than twice the limit
    with pytest.raises(SkippedSample, match="bad image: DecompressionBombError"):
        encoder(tokenizer, model).encode(sample("b"))


@pytest.mark.parametrize("attention", [VARLEN, "sdpa", "eager"])
def test_packed_forward_equals_each_sample_alone(tokenizer, model, attention):
    """No attention crosses samples: varlen by its run lengths, sdpa and eager by the block-diagonal mask
    transformers builds from the restarting position ids."""
    if attention != VARLEN:
        torch.manual_seed(0)
        model = build_model(ModelConfig({"config": VISION}, {"config": LLM}, attention=attention), tokenizer,
                            "<image>").eval()
    enc = encoder(tokenizer, model, seq_len=400)
    samples = [enc.encode(sample("p1", (300, 120), "first answer")),
               enc.encode(sample("p2", size=None, turns=[{"role": "user", "content": "Hello there"},
                                                        {"role": "assistant", "content": "general kenobi"}])),
               enc.encode(sample("p3", (120, 300), "third, a little longer answer", ))]
    packed = pack_rows([samples], 400, tokenizer.pad_token_id)
    assert packed.position_ids[0].tolist().count(0) == 4  # three samples and the padding run
    with torch.no_grad():
        logits = model(packed.input_ids, packed.position_ids, packed.grids, packed.pixels)["logits"][0]
        at = 0
        for one in samples:
            alone = pack_rows([[one]], len(one), tokenizer.pad_token_id)
            single = model(alone.input_ids, alone.position_ids, alone.grids, alone.pixels)["logits"][0]
            torch.testing.assert_close(logits[at:at + len(one)], single, atol=1e-5, rtol=0)
            at += len(one)


# LLM families whose own forward finishes the head's logits: Gemma 2 soft-caps them, Cohere and Granite scale them
FINISHED_LOGITS = {"gemma2": {"head_dim": 16, "final_logit_softcapping": 3.0, "sliding_window": 8},
                   "cohere": {"logit_scale": 0.25}, "granite": {"logits_scaling": 8.0}}


@pytest.mark.parametrize("family", [None, *FINISHED_LOGITS])
def test_loss_on_labelled_positions_equals_the_loss_from_full_logits(tokenizer, model, family):
    """The loss computes the LM head at the labelled positions only, finishing the logits as the LLM's own
    forward does (which the logits path runs)."""
    if family is not None:
        llm = dict(LLM, model_type=family, **FINISHED_LOGITS[family])
        torch.manual_seed(0)
        attention = "eager" if family == "gemma2" else "sdpa"  # transformers gives Gemma 2 no sdpa
        model = build_model(ModelConfig({"config": VISION}, {"config": llm}, attention=attention), tokenizer,
                            "<image>").eval()
    enc = encoder(tokenizer, model, seq_len=300)
    rows = [[enc.encode(sample("l1", (300, 120), "first answer")), enc.encode(sample("l2", (50, 50), "second"))]]
    batch = pack_rows(rows, 300, tokenizer.pad_token_id)
    with torch.no_grad():
        out = model(batch.input_ids, batch.position_ids, batch.grids, batch.pixels, batch.labels)
        logits = model(batch.input_ids, batch.position_ids, batch.grids, batch.pixels)["logits"]
    full = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch.labels[:, 1:].flatten(),
                                             ignore_index=IGNORE_INDEX, reduction="sum")
    assert out["label_tokens"] == (batch.labels[:, 1:] != IGNORE_INDEX).sum() > 0
    torch.testing.assert_close(out["loss_sum"], full, atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="Inductor's Triton kernels need CUDA"))])
@pytest.mark.parametrize("finish", [LogitFinish(), LogitFinish(scale=0.25, cap=3.0)], ids=["plain", "scaled-capped"])
def test_the_compiled_loss_gives_the_eager_loss_and_gradients_from_one_graph_for_any_label_count(finish, device):
    """`runtime.compile` runs the loss through Inductor: over bf16 logits (a GPU's) of two different label
    counts it gives the eager loss and logits' gradient, compiled once (the count is a dynamic size)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    generator = torch.Generator().manual_seed(0)
    for count in (37, 53):
        logits = (torch.randn(count, 301, generator=generator) * 4).to(device, torch.bfloat16)
        targets = torch.randint(0, 301, (count,), generator=generator).to(device)
        results = []
        for loss_sum in (label_loss_sum, compiled_label_loss_sum()):
            leaf = logits.clone().requires_grad_()
            if loss_sum is not label_loss_sum:
                torch._dynamo.maybe_mark_dynamic(leaf, 0)
                torch._dynamo.maybe_mark_dynamic(targets, 0)
            loss = loss_sum(leaf, targets, finish)
            loss.backward()
            results.append((loss.detach(), leaf.grad))
        (eager, eager_grad), (compiled, compiled_grad) = results
        assert eager.dtype == compiled.dtype == torch.float32 and compiled_grad.dtype == torch.bfloat16
        torch.testing.assert_close(compiled, eager, atol=1e-3, rtol=1e-5)
        torch.testing.assert_close(compiled_grad.float(), eager_grad.float(), atol=2e-3, rtol=1e-2)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])


def test_a_model_with_its_loss_compiled_trains_as_the_eager_one(tokenizer, model):
    """`DocVLM.compile_loss` (the trainer calls it under `runtime.compile`): the same loss and gradients."""
    enc = encoder(tokenizer, model, seq_len=300)
    batch = pack_rows([[enc.encode(sample("c1", (300, 120), "first answer")),
                        enc.encode(sample("c2", (50, 50), "second"))]], 300, tokenizer.pad_token_id)
    eager = loss_and_gradients(model, batch)
    model.compile_loss()
    try:
        assert_same_loss_and_gradients(loss_and_gradients(model, batch), eager, loss_atol=1e-4)
    finally:
        model.loss_compiled = False  # the fixture's model is shared


def test_a_trimmed_batch_with_host_made_runs_trains_as_the_full_width_one(tokenizer, model):
    """Rounding the width down to the longest row (plus padding to a multiple) and handing the model its runs
    and labelled positions from the host change no loss and no gradient: only the work on padding goes."""
    enc = encoder(tokenizer, model, seq_len=512)
    rows = [[enc.encode(sample("t1", (300, 120), "first answer")), enc.encode(sample("t2", (50, 50), "second"))],
            [enc.encode(sample("t3", (120, 300), "a third answer, a little longer"))]]
    results = []
    for multiple in (None, 32):
        batch = pack_rows(rows, 512, tokenizer.pad_token_id, pad_to_multiple_of=multiple)
        assert torch.equal(batch.image_index, torch.nonzero(batch.input_ids.flatten() == model.image_token_id)[:, 0])
        model.zero_grad()
        out = model(**batch.model_inputs())
        out["loss_sum"].backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((batch.input_ids.shape[1], out["loss_sum"].detach(), out["label_tokens"], grads))
    (full_width, full_loss, full_labels, full_grads), (width, loss, labels, grads) = results
    assert full_width == 512 and width < 512 and width % 32 == 0
    assert labels == full_labels > 0
    torch.testing.assert_close(loss, full_loss, atol=1e-5, rtol=1e-6)
    assert len(grads) == len(full_grads)
    for trimmed, full in zip(grads, full_grads):
        torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-4)
    model.zero_grad(set_to_none=True)


def test_per_sample_sdpa_trains_as_varlen_from_the_host_copy_of_the_runs(tokenizer, model):
    per_sample = build_model(ModelConfig({"config": VISION}, {"config": LLM}, attention=SDPA_PER_SAMPLE), tokenizer,
                             "<image>")
    per_sample.load_state_dict(model.state_dict())
    per_sample.eval()  # as the fixture's model
    enc = encoder(tokenizer, model, seq_len=512)
    rows = [[enc.encode(sample("s1", (300, 120), "first answer")), enc.encode(sample("s2", (50, 50), "second"))]]
    batch = pack_rows(rows, 512, tokenizer.pad_token_id, pad_to_multiple_of=32).to(torch.device("meta"))
    assert batch.host_cu_lengths.device.type == "cpu"  # `to` leaves the host copy where the attention reads it
    batch = pack_rows(rows, 512, tokenizer.pad_token_id, pad_to_multiple_of=32)
    assert_same_loss_and_gradients(loss_and_gradients(per_sample, batch), loss_and_gradients(model, batch),
                                   loss_atol=1e-5)


def test_loss_drops_when_overfitting_a_fixed_batch(tokenizer):
    torch.manual_seed(1)
    model = build_model(ModelConfig({"config": VISION}, {"config": LLM}), tokenizer, "<image>")
    enc = encoder(tokenizer, model, seq_len=160)
    rows = [[enc.encode(sample("o1", (200, 100), "red page with a title"))],
            [enc.encode(sample("o2", (100, 200), "tall page"))]]
    batch = pack_rows(rows, 160, tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        out = model(batch.input_ids, batch.position_ids, batch.grids, batch.pixels, batch.labels)
        loss = out["loss_sum"] / out["label_tokens"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_saved_model_reloads_with_the_same_outputs(tokenizer, model, tmp_path):
    model.save_pretrained(tmp_path / "m", tokenizer)
    reloaded = DocVLM.from_pretrained(tmp_path / "m").eval()
    enc = encoder(tokenizer, model)
    batch = pack_rows([[enc.encode(sample("r", (300, 120)))]], 512, tokenizer.pad_token_id)
    with torch.no_grad():
        before = model(batch.input_ids, batch.position_ids, batch.grids, batch.pixels)["logits"]
        after = reloaded(batch.input_ids, batch.position_ids, batch.grids, batch.pixels)["logits"]
    torch.testing.assert_close(before, after, atol=0, rtol=0)
    assert (tmp_path / "m" / "llm" / "tokenizer.json").is_file()


def test_real_run_parts_load_from_local_folders(tmp_path):
    """As real runs do: a full CLIP checkpoint folder (text + vision) gives its vision tower, a causal LM
    folder its LLM, and a tokenizer without an image token gets one (the embeddings grow to match). The
    checkpoints are stored in bfloat16, as Qwen2's are: the weights to train come out float32, the same
    values."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from trainer.tokenizer import CHATML_TEMPLATE, load_tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train(["synth/corpora/en.txt"], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    plain = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>")
    plain.chat_template = CHATML_TEMPLATE
    plain.save_pretrained(tmp_path / "llm")
    vision = {k: v for k, v in VISION.items() if k != "model_type"}
    clip = CLIPModel(CLIPConfig(vision_config=vision, text_config={"hidden_size": 32, "intermediate_size": 64,
                                                                   "num_hidden_layers": 1, "num_attention_heads": 2}))
    clip.to(torch.bfloat16).save_pretrained(tmp_path / "clip")
    llm = {k: v for k, v in LLM.items() if k != "model_type"}
    stored_llm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(plain), **llm)).to(torch.bfloat16)
    stored_llm.save_pretrained(tmp_path / "llm")

    tokenizer = load_tokenizer(str(tmp_path / "llm"))
    assert len(tokenizer) == len(plain) + 1 and tokenizer.pad_token is not None
    model = build_model(ModelConfig({"path": str(tmp_path / "clip")}, {"path": str(tmp_path / "llm")}),
                        tokenizer, "<image>")
    assert type(model.vision).__name__ == "CLIPVisionModel"
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    torch.testing.assert_close(model.vision.get_input_embeddings().weight,
                               clip.vision_model.get_input_embeddings().weight.float(), atol=0, rtol=0)
    torch.testing.assert_close(model.vision.get_submodule("encoder.layers.1.mlp.fc2").weight,
                               clip.vision_model.encoder.layers[1].mlp.fc2.weight.float(), atol=0, rtol=0)
    torch.testing.assert_close(model.llm.model.layers[0].mlp.up_proj.weight,
                               stored_llm.model.layers[0].mlp.up_proj.weight.float(), atol=0, rtol=0)
    assert model.llm.get_input_embeddings().num_embeddings == len(tokenizer)
    encoded = encoder(tokenizer, model).encode(sample("x", (300, 120)))
    batch = pack_rows([[encoded]], 512, tokenizer.pad_token_id)
    assert model(batch.input_ids, batch.position_ids, batch.grids, batch.pixels, batch.labels)["loss_sum"] > 0


def test_flop_count_leaves_out_tower_layers_after_the_feature_layer(tokenizer):
    from trainer.metrics import FlopCounter, matmul_parameters

    counts = {}
    for layer in (-1, -2, 1):
        torch.manual_seed(0)
        built = build_model(ModelConfig({"config": VISION}, {"config": LLM}, feature_layer=layer), tokenizer, "<image>")
        counts[layer] = FlopCounter(built, {"vision", "projector", "llm"})
    block = matmul_parameters(next(m for m in built.vision.modules() if type(m).__name__ == "CLIPEncoderLayer"))
    assert counts[-1].vision_params - counts[-2].vision_params == block  # the last of 2 layers feeds nothing
    assert counts[-2].vision_params == counts[1].vision_params
    assert counts[-1].vision_attention == 2 * counts[-2].vision_attention
    # a SigLIP tower has no CLS token, and its pooling head feeds nothing: neither counts
    siglip = build_model(ModelConfig({"config": dict(VISION, model_type="siglip_vision_model")}, {"config": LLM},
                                     feature_layer=-1), tokenizer, "<image>")
    siglip_flops = FlopCounter(siglip, {"vision", "projector", "llm"})
    assert siglip_flops.view_tokens == counts[-1].view_tokens - 1 == (112 // 14) ** 2
    after_encoder = [siglip.vision.head, siglip.vision.post_layernorm]
    assert siglip_flops.vision_params == matmul_parameters(siglip.vision) - sum(
        p.numel() for m in after_encoder for p in m.parameters())
    # the projector counts the merged tokens it projects: 64 patches a view -> 16, the CLS token dropped
    flops = counts[-2]
    tower = 6 * flops.vision_params * flops.view_tokens + 3 * flops.vision_attention * flops.view_tokens ** 2
    assert flops.view_tokens == 65 and flops.projector_tokens == 16
    assert flops.step_flops(0, 0, [], 2) - 2 * tower == 6 * flops.projector_params * 2 * 16
    # attention FLOPs grow with each sample's own length squared
    flops = counts[-1]
    assert flops.step_flops(100, 10, [60, 40], 1) < flops.step_flops(100, 10, [100], 1)


@pytest.mark.parametrize("tower", ["clip_vision_model", "siglip_vision_model"])
def test_the_tower_stops_at_the_feature_layer_with_the_full_runs_features_and_gradients(tokenizer, tower):
    """Blocks after the feature layer feed nothing: they do not run, and the features and gradients are
    those of the whole tower's hidden state at that layer, bitwise (a SigLIP tower's norm and pooling head
    come after its encoder and do not change the hidden states either)."""
    vision = dict(VISION, model_type=tower, num_hidden_layers=4)
    for layer, expected_blocks in ((-2, [0, 1, 2]), (-4, [0]), (2, [0, 1]), (0, []), (-1, [0, 1, 2, 3])):
        torch.manual_seed(0)
        built = build_model(ModelConfig({"config": vision}, {"config": LLM}, feature_layer=layer), tokenizer, "<image>")
        blocks = built.vision.get_submodule("encoder.layers")
        ran = []
        for i, block in enumerate(blocks):
            block.register_forward_pre_hook(lambda module, args, i=i: ran.append(i))
        pixels = torch.randn(2, 3, 112, 112)
        features = built.tower_features(pixels)
        assert ran == expected_blocks, layer
        assert len(blocks) == 4 and built.vision.get_submodule("encoder.layers") is blocks
        features.square().sum().backward()
        stopped = {name: p.grad.clone() for name, p in built.vision.named_parameters() if p.grad is not None}
        built.zero_grad(set_to_none=True)
        full = built.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[layer]
        assert torch.equal(features, full), layer
        full.square().sum().backward()
        whole = {name: p.grad for name, p in built.vision.named_parameters()
                 if p.grad is not None and p.grad.count_nonzero()}
        assert stopped.keys() == whole.keys() and all(torch.equal(stopped[k], whole[k]) for k in whole), layer
    for outside in (5, -6):
        with pytest.raises(ValueError, match=f"feature_layer {outside} is not a hidden state of a 4-block tower"):
            build_model(ModelConfig({"config": vision}, {"config": LLM}, feature_layer=outside), tokenizer, "<image>")
    # a tower that fails mid-call gets its whole block list back
    with pytest.raises((ValueError, RuntimeError)):
        built.tower_features(torch.randn(2, 3, 98, 98))
    assert len(built.vision.get_submodule("encoder.layers")) == 4


def test_the_model_normalises_uint8_tiles_with_its_towers_statistics(tokenizer, model):
    """Tiles travel as bytes; the tower sees (x/255 - mean)/std per channel, computed on the model's side."""
    seen = {}
    hook = model.vision.register_forward_pre_hook(lambda _, args, kwargs: seen.update(kwargs), with_kwargs=True)
    tiles = torch.randint(0, 256, (3, 3, 112, 112), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            model.encode_views(tiles)
    finally:
        hook.remove()
    mean, std = torch.tensor(CLIP_MEAN)[:, None, None], torch.tensor(CLIP_STD)[:, None, None]
    torch.testing.assert_close(seen["pixel_values"], (tiles / 255.0 - mean) / std, atol=1e-6, rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        model.encode_views(tiles.float())


def test_tower_statistics_come_from_its_image_processor_else_its_type(tokenizer, tmp_path):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    vision = {k: v for k, v in VISION.items() if k != "model_type"}
    CLIPVisionModel(CLIPVisionConfig(**vision)).save_pretrained(tmp_path / "clip")
    CLIPImageProcessor(image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6]).save_pretrained(tmp_path / "clip")
    built = build_model(ModelConfig({"path": str(tmp_path / "clip")}, {"config": LLM}), tokenizer, "<image>")
    assert (built.config.image_mean, built.config.image_std) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    built.save_pretrained(tmp_path / "saved", tokenizer)  # the saved folder records them
    reloaded = DocVLM.from_pretrained(tmp_path / "saved")
    assert (reloaded.config.image_mean, reloaded.config.image_std) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    torch.testing.assert_close(reloaded.pixel_shift, built.pixel_shift, atol=0, rtol=0)

    siglip = dict(vision, model_type="siglip_vision_model")
    assert build_model(ModelConfig({"config": siglip}, {"config": LLM}), tokenizer, "<image>").config.image_mean \
        == [0.5, 0.5, 0.5]
    plain = build_model(ModelConfig({"config": VISION}, {"config": LLM}), tokenizer, "<image>")
    assert (plain.config.image_mean, plain.config.image_std) == (CLIP_MEAN, CLIP_STD)
    with pytest.raises(ValueError, match="image_std needs one value per RGB channel"):
        build_model(ModelConfig({"config": VISION}, {"config": LLM}, image_mean=[0.5] * 3, image_std=[0.5]),
                    tokenizer, "<image>")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("attention", [VARLEN, SDPA_PER_SAMPLE])
def test_a_training_forward_and_backward_on_cuda_never_wait_for_the_gpu(tokenizer, attention):
    """The trainer's forward reads nothing back from the device (a read stalls the CPU until the GPU has
    caught up, which then idles while the CPU launches again): sync debug mode raises on any sync."""
    torch.manual_seed(0)
    model = build_model(ModelConfig({"config": VISION}, {"config": LLM}, attention=attention), tokenizer,
                        "<image>").cuda().train()
    enc = encoder(tokenizer, model, seq_len=512)
    rows = [[enc.encode(sample("c1", (300, 120), "first answer")), enc.encode(sample("c2", (120, 300), "second"))]]
    batch = pack_rows(rows, 512, tokenizer.pad_token_id, pad_to_multiple_of=64).pinned().to(torch.device("cuda"))
    for watched in (False, True):  # the first pass may set up kernels and caches
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error" if watched else "default")
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(**batch.model_inputs())
            out["loss_sum"].backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out["loss_sum"]).item()


def test_pixel_shuffle_merges_2x2_blocks_and_pads_an_odd_grid_with_zeros():
    from trainer.model import pixel_shuffle

    # a 4 × 4 grid of one-channel patches numbered row by row: token (i, j) holds its block's 4 patches
    even = pixel_shuffle(torch.arange(16.0).reshape(1, 16, 1))
    assert even[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    # a 3 × 3 grid (as SigLIP-so400m's 27 × 27): a zero row and column complete the last blocks
    odd = pixel_shuffle(torch.arange(1.0, 10.0).reshape(1, 9, 1))
    assert odd[0].tolist() == [[1, 2, 4, 5], [3, 0, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0]]
    with pytest.raises(ValueError, match="square patch grid, got 8 patches"):
        pixel_shuffle(torch.zeros(1, 8, 1))


def test_a_tower_with_an_odd_patch_grid_merges_to_the_rounded_up_token_count(tokenizer):
    """A SigLIP tower whose tiles are 3 × 3 patches (42 px, 14 px patches; so400m's are 27 × 27 at 384 px)
    gives 2 × 2 tokens a view; the placeholders, the embedding and a training pass agree with that."""
    vision = dict(VISION, model_type="siglip_vision_model", image_size=42)
    torch.manual_seed(0)
    odd = build_model(ModelConfig({"config": vision}, {"config": LLM}), tokenizer, "<image>")
    assert odd.patches_per_side == 3 and odd.tokens_per_view == 4
    encoded = SampleEncoder(tokenizer, odd.visual_token_count, TilingConfig(tile_size=42, max_tiles=6), 256) \
        .encode(sample("odd", (120, 50)))
    image = encoded.image
    assert encoded.input_ids.count(odd.image_token_id) == (image.rows * image.cols + 1) * 4 + image.rows - 1
    batch = pack_rows([[encoded]], 256, tokenizer.pad_token_id)
    loss = odd(**batch.model_inputs())["loss_sum"]
    loss.backward()
    assert torch.isfinite(loss) and odd.projector.fc1.weight.grad.count_nonzero() > 0
