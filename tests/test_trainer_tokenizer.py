"""The trainer's tokenizer (trainer.tokenizer): a real tokenizer folder without a chat template, as a base
LLM's often is (Llama 3 8B, Mistral 7B v0.1), given the recipe's `tokenizer.chat_template` (ChatML or a
Jinja file), through the data module's labels and a real training run."""

from pathlib import Path

import pytest
import yaml
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mixtures.tasks import IMAGE_PLACEHOLDER
from tests.trainer_runs import REPO, demo_out, env, steps_of, tiny_variant  # noqa: F401 (fixtures)
from trainer.chat_labels import ChatLabels
from trainer.model import IGNORE_INDEX
from trainer.recipe import RecipeError, load_recipe
from trainer.tokenizer import CHATML, CHATML_TEMPLATE, load_tokenizer
from trainer.train import run_recipe

# Llama 2's chat template, as its tokenizer_config.json holds it (system turn folded into the first user turn)
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}")


def base_tokenizer_folder(folder: Path) -> Path:
    """A byte-level BPE with only an end-of-text token and no chat template, saved as a base LLM's is."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train([str(REPO / "synth" / "corpora" / "en.txt")], trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>").save_pretrained(
        str(folder))
    return folder


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    return base_tokenizer_folder(tmp_path_factory.mktemp("base-tokenizer"))


CONVERSATION = [{"role": "user", "content": f"{IMAGE_PLACEHOLDER}\nRead the page."},
                {"role": "assistant", "content": "A title and two lines."}]


def test_a_tokenizer_without_a_chat_template_names_the_recipe_entry_that_gives_one(base_folder):
    with pytest.raises(ValueError, match=r"has no chat template; name one in the recipe \(tokenizer.chat_template"):
        load_tokenizer(str(base_folder))


def test_chatml_adds_its_tokens_and_ends_each_trained_turn_with_the_token_generation_stops_at(base_folder):
    base = load_tokenizer(str(base_folder), CHATML)
    vocab = base.get_vocab()
    assert base.chat_template == CHATML_TEMPLATE and base.eos_token == "<|im_end|>"
    assert base.pad_token == "<|endoftext|>"  # the old end pads
    assert len(base) == 500 + 3 and {"<|im_start|>", "<|im_end|>", IMAGE_PLACEHOLDER} <= set(vocab)
    assert base("<|im_start|>assistant")["input_ids"][0] == vocab["<|im_start|>"]  # one id, never split
    pieces = ChatLabels(base).pieces(CONVERSATION)
    labelled = [text.rstrip() for text, is_labelled in pieces if is_labelled]
    assert labelled == ["A title and two lines.<|im_end|>"]
    assert "".join(text for text, _ in pieces) == base.apply_chat_template(CONVERSATION, tokenize=False)


def test_a_jinja_file_template_is_used_and_a_broken_one_is_named(base_folder, tmp_path):
    template = tmp_path / "llama2.jinja"
    template.write_text(LLAMA2_TEMPLATE)
    tokenizer = load_tokenizer(str(base_folder), str(template))
    assert tokenizer.apply_chat_template(CONVERSATION, tokenize=False) == (
        f"<|endoftext|>[INST] {IMAGE_PLACEHOLDER}\nRead the page. [/INST] A title and two lines. <|endoftext|>")
    pieces = ChatLabels(tokenizer).pieces(CONVERSATION)
    assert [text.strip() for text, is_labelled in pieces if is_labelled] == ["A title and two lines. <|endoftext|>"]

    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for message in messages %}{{ message['content'] }")
    with pytest.raises(ValueError, match=rf"chat template {broken}: does not render a user and an assistant turn"):
        load_tokenizer(str(base_folder), str(broken))
    users_only = tmp_path / "users-only.jinja"
    users_only.write_text("{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}")
    with pytest.raises(ValueError, match=rf"chat template {users_only}: leaves out a turn's text"):
        load_tokenizer(str(base_folder), str(users_only))
    with pytest.raises(ValueError, match=rf"chat template {tmp_path / 'nowhere.jinja'}: cannot be read"):
        load_tokenizer(str(base_folder), str(tmp_path / "nowhere.jinja"))


def test_a_base_tokenizer_with_chatml_trains_and_its_saved_model_reloads_with_the_template(env, base_folder):
    """A recipe naming a template-less tokenizer folder and `chat_template: chatml` (a relative Jinja path
    resolves against the recipe's folder): the stage trains on assistant labels that end with <|im_end|>,
    the LLM's embeddings grow by the added tokens, and the saved tokenizer keeps the template and its end."""
    path = tiny_variant(env, "base-chatml", steps=2, stages=(1,))
    recipe = yaml.safe_load(path.read_text())
    recipe["tokenizer"] = {"path": str(base_folder), "chat_template": CHATML}
    path.write_text(yaml.safe_dump(recipe))
    final, = run_recipe(str(path), "all")
    assert len(steps_of(final.parent)) == 2
    saved = load_tokenizer(str(final / "llm"))  # no template named: the saved one is there
    assert saved.chat_template == CHATML_TEMPLATE and saved.eos_token == "<|im_end|>" and len(saved) == 503
    weights = yaml.safe_load((final / "llm" / "config.json").read_text())
    assert weights["vocab_size"] == 503

    recipe["tokenizer"]["chat_template"] = "templates/llama2.jinja"
    (env / "templates").mkdir()
    path.write_text(yaml.safe_dump(recipe))
    assert load_recipe(str(path)).tokenizer.chat_template == str(env / "templates" / "llama2.jinja")
    recipe["tokenizer"] = {"train": {"files": ["x.txt"], "vocab_size": 400}, "image_token": "<img>"}
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="image_token"):
        load_recipe(str(path))


def test_labels_of_a_chatml_base_tokenizer_stop_after_the_turn_end(base_folder):
    from trainer.data import SampleEncoder
    from trainer.tiling import TilingConfig

    tokenizer = load_tokenizer(str(base_folder), CHATML)
    encoder = SampleEncoder(tokenizer, lambda rows, cols, has_global: 4, TilingConfig(tile_size=28, max_tiles=1), 256)
    page = Image.new("RGB", (60, 40), "white")
    encoded = encoder.encode({"key": "k", "source": "s", "conversation": CONVERSATION, "image": page})
    assert encoded.input_ids.count(encoded_image_id := tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)) == 4
    assert encoded_image_id == len(tokenizer) - 1
    labelled = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(labelled) == "A title and two lines.<|im_end|>\n"  # as Qwen's own SFT labels a turn
    assert tokenizer.eos_token_id in labelled


def test_an_image_token_only_in_the_vocabulary_is_made_whole_keeping_its_id(tmp_path):
    """A tokenizer whose vocabulary has `<image>` as a plain entry, which its pre-tokenizer splits at the
    brackets: the placeholder becomes one special token with that same id, so each sample's image has
    exactly one placeholder to expand."""
    from tokenizers import pre_tokenizers as pre

    words = ["<unk>", "<|im_start|>", "<|im_end|>", IMAGE_PLACEHOLDER, "<", ">", "image", "user", "assistant",
             "Read", "the", "page", ".", "A", "title", "and", "two", "lines"]
    plain = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    plain.pre_tokenizer = pre.Whitespace()
    folder = tmp_path / "word-level"
    PreTrainedTokenizerFast(tokenizer_object=plain, unk_token="<unk>", eos_token="<|im_end|>",
                            additional_special_tokens=["<|im_start|>", "<|im_end|>"]).save_pretrained(str(folder))
    vocab_id = words.index(IMAGE_PLACEHOLDER)
    raw = PreTrainedTokenizerFast.from_pretrained(str(folder))
    assert vocab_id not in raw(IMAGE_PLACEHOLDER, add_special_tokens=False).input_ids  # split apart

    tokenizer = load_tokenizer(str(folder), CHATML)
    assert tokenizer(f"{IMAGE_PLACEHOLDER}\nRead", add_special_tokens=False).input_ids[0] == vocab_id
    assert len(tokenizer) == len(words) and tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER) == vocab_id
