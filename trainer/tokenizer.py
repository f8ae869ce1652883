"""The trainer's tokenizer: a local transformers tokenizer (real runs), or a small byte-level BPE trained
on the fly from text files (tests, the demo), with ChatML special tokens, the image placeholder and a
chat template. Either way the image placeholder is a single special token, so `<image>` in a
conversation becomes exactly one id that the data module expands to the image's visual tokens.
"""

from __future__ import annotations

from pathlib import Path

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


def load_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """A local tokenizer folder (a URL's fetched copy: `trainer.remote_folders`); the image placeholder is
    added as a special token when it lacks one."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"tokenizer {path}: no such folder")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise ValueError(f"tokenizer {path}: has no chat template")
    if IMAGE_PLACEHOLDER not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_PLACEHOLDER]},
                                     replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
