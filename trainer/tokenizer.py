"""The trainer's tokenizer: a local transformers tokenizer (real runs), or a small byte-level BPE trained
on the fly from text files (tests, the demo), with ChatML special tokens, the image placeholder and a
chat template. Either way the image placeholder is a single special token, so `<image>` in a
conversation becomes exactly one id that the data module expands to the image's visual tokens.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateError
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mixtures.tasks import IMAGE_PLACEHOLDER
from pipelines.storage import open_url

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_PLACEHOLDER]
CHATML = "chatml"  # a recipe's `tokenizer.chat_template` naming CHATML_TEMPLATE


def train_bpe_tokenizer(text_files: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `text_files` (fsspec URLs) with ChatML tokens and a chat template."""
    texts = []
    for url in text_files:
        with open_url(url, "rb") as f:
            texts.append(f.read().decode("utf-8"))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=["<|im_start|>", IMAGE_PLACEHOLDER])
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def load_tokenizer(path: str, chat_template: str | None = None) -> PreTrainedTokenizerFast:
    """A local tokenizer folder (a URL's fetched copy: `trainer.remote_folders`), with `chat_template` in
    place of its own when given (`use_chat_template`); the image placeholder made one special token
    (`as_whole_tokens`)."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"tokenizer {path}: no such folder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if chat_template is not None:
        use_chat_template(tokenizer, chat_template)
    if tokenizer.chat_template is None:
        raise ValueError(f"tokenizer {path}: has no chat template; name one in the recipe "
                         f"(tokenizer.chat_template: {CHATML}, or a Jinja file)")
    as_whole_tokens(tokenizer, [IMAGE_PLACEHOLDER])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def as_whole_tokens(tokenizer: PreTrainedTokenizerFast, tokens: list[str]) -> None:
    """Make each of `tokens` one special token that the text never splits: added where the tokenizer lacks
    it, registered (keeping its id) where it is only an entry of the model's vocabulary, which the
    pre-tokenizer may cut apart (`<`, `image`, `>`) before the vocabulary is looked up."""
    missing = [token for token in tokens if token not in tokenizer.get_added_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)


def use_chat_template(tokenizer: PreTrainedTokenizerFast, template: str) -> None:
    """Give `tokenizer` the chat template a recipe names: CHATML (its two tokens made whole special tokens,
    and `<|im_end|>` made the end-of-sequence token: the token that closes
    each trained turn is the one generation stops at), or a Jinja file's text (a path or URL), which must
    render a user turn and an assistant turn."""
    if template == CHATML:
        as_whole_tokens(tokenizer, ["<|im_start|>", "<|im_end|>"])
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # the old end, kept as padding, as load_tokenizer would
        tokenizer.chat_template = CHATML_TEMPLATE
        tokenizer.eos_token = "<|im_end|>"
        return
    try:
        with open_url(template, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exn:
        raise ValueError(f"chat template {template}: cannot be read ({exn})") from exn
    tokenizer.chat_template = text
    try:
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Read the page."},
                                                  {"role": "assistant", "content": "A page."}], tokenize=False)
    except TemplateError as exn:  # syntax and undefined names, and the template's own raise_exception()
        raise ValueError(f"chat template {template}: does not render a user and an assistant turn "
                         f"({type(exn).__name__}: {exn})") from exn
    if "Read the page." not in rendered or "A page." not in rendered:
        raise ValueError(f"chat template {template}: leaves out a turn's text when rendering a conversation")
