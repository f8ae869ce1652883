"""Labels under the chat templates of real LLM families (trainer.chat_labels): which text of a rendered
conversation the model learns. The templates are those the checkpoints' tokenizer_config.json ship, without
their tool-calling branches (the mixtures carry no tools); the tokenizer is a small BPE trained on the shipped
corpus, given each family's special tokens as its checkpoints declare them."""

import copy

import pytest

from trainer.chat_labels import ChatLabels, ConversationError
from trainer.data import SampleEncoder
from trainer.model import IGNORE_INDEX
from trainer.tiling import TilingConfig
from trainer.tokenizer import train_bpe_tokenizer

TURNS = [{"role": "user", "content": "<image>\nWhat is the title?"}, {"role": "assistant", "content": "A town."},
         {"role": "user", "content": "And the year?"}, {"role": "assistant", "content": "1887"}]
SYSTEM = {"role": "system", "content": "Be brief."}

# Qwen3: the empty think block only in an assistant turn after the last user turn, so the rendering of the
# first two turns is not a prefix of the rendering of all four
QWEN3 = r"""{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

# Mistral-7B-Instruct-v0.3: the system message goes into the last user turn (so a conversation that ends
# with the assistant renders without it), assistant text trimmed, no generation prompt
MISTRAL_V03 = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages | rejectattr("role", "equalto", "tool") | rejectattr("role", "equalto", "tool_results") | selectattr("tool_calls", "undefined") %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
{%- endfor %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}"""

# Phi-3-mini-4k-instruct: a rendering without a generation prompt ends with the eos, which the next turn
# replaces
PHI3 = ("{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
        "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")

# DeepSeek-R1-Distill-Qwen: the generation prompt opens a think block the rendered turns lack, and the
# system prompt comes first with no header
DEEPSEEK_R1 = ("{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
               "{% set ns = namespace(system_prompt='') %}{%- for message in messages %}"
               "{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}"
               "{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}"
               "{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}"
               "{%- if message['role'] == 'assistant' and message['content'] is not none %}"
               "{% set content = message['content'] %}{% if '</think>' in content %}"
               "{% set content = content.split('</think>')[-1] %}{% endif %}"
               "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor -%}"
               "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}")

# Gemma 2: no system role, the assistant is "model", text trimmed
GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
          "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")


@pytest.fixture(scope="module")
def base():
    return train_bpe_tokenizer(["synth/corpora/en.txt"], 500)


def family(base, template, named=None, added=()):
    """The BPE tokenizer with a family's template and special tokens: `named` (bos/eos) and `added` (added
    tokens marked special but not named, as Phi-3's `<|end|>` is)."""
    tokenizer = copy.deepcopy(base)
    tokenizer.chat_template = template
    if named:
        tokenizer.add_special_tokens(named)
    if added:
        tokenizer.add_tokens(list(added), special_tokens=True)
    return tokenizer


def labelled(pieces):
    return [text for text, is_labelled in pieces if is_labelled]


FAMILIES = {
    "qwen3": (QWEN3, {}, (), ["A town.<|im_end|>", "<think>\n\n</think>\n\n1887<|im_end|>"]),
    "mistral-v0.3": (MISTRAL_V03, {"bos_token": "<s>", "eos_token": "</s>"}, ("[INST]", "[/INST]"),
                     [" A town.</s>", " 1887</s>"]),
    "phi-3": (PHI3, {"bos_token": "<s>", "eos_token": "<|endoftext|>"}, ("<|user|>", "<|assistant|>", "<|end|>"),
              ["A town.<|end|>", "1887<|end|>"]),
    "deepseek-r1": (DEEPSEEK_R1, {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
                    ("<｜User｜>", "<｜Assistant｜>"), ["A town.<｜end▁of▁sentence｜>", "1887<｜end▁of▁sentence｜>"]),
    "gemma-2": (GEMMA2, {"bos_token": "<bos>", "eos_token": "<eos>"}, ("<start_of_turn>", "<end_of_turn>"),
                ["A town.<end_of_turn>\n", "1887<end_of_turn>\n"]),
}


@pytest.mark.parametrize("name", FAMILIES)
def test_every_assistant_turn_is_labelled_under_each_familys_template(base, name):
    """Multi-turn conversations: each assistant turn's text and its end-of-turn token are the labels, nothing
    else; the pieces put together are the template's own rendering (Qwen3, Mistral v0.3, Phi-3 and
    DeepSeek-R1 re-render earlier turns or close with a token a next turn drops, so their rendering of the
    first turns is no prefix of the whole; Gemma 2's is)."""
    template, named, added, expected = FAMILIES[name]
    tokenizer = family(base, template, named, added)
    pieces = ChatLabels(tokenizer).pieces(TURNS)
    assert labelled(pieces) == expected
    assert "".join(text for text, _ in pieces) == tokenizer.apply_chat_template(TURNS, tokenize=False)


def test_qwen3_labels_the_empty_think_block_it_writes_before_a_last_answer(base):
    """One turn renders as prefixes: the label is everything after the assistant header, the empty think
    block included (what the model writes at inference after `<|im_start|>assistant\\n`)."""
    pieces = ChatLabels(family(base, QWEN3)).pieces(TURNS[:2])
    assert labelled(pieces) == ["<think>\n\n</think>\n\nA town.<|im_end|>\n"]
    with_system = ChatLabels(family(base, QWEN3)).pieces([SYSTEM] + TURNS)
    assert labelled(with_system) == ["A town.<|im_end|>", "<think>\n\n</think>\n\n1887<|im_end|>"]
    assert not any(is_labelled for text, is_labelled in with_system if "Be brief." in text)


def test_mistral_v03_drops_a_system_message_the_template_would_only_put_in_a_last_user_turn(base):
    template, named, added, expected = FAMILIES["mistral-v0.3"]
    pieces = ChatLabels(family(base, template, named, added)).pieces([SYSTEM] + TURNS)
    assert labelled(pieces) == expected
    assert "Be brief." not in "".join(text for text, _ in pieces)


def test_a_template_that_refuses_a_conversation_gives_the_reason(base):
    template, named, added, _ = FAMILIES["gemma-2"]
    labels = ChatLabels(family(base, template, named, added))
    with pytest.raises(ConversationError, match="chat template: the tokenizer's chat template refused it: "
                                                "System role not supported"):
        labels.pieces([SYSTEM] + TURNS)
    with pytest.raises(ConversationError, match="roles must alternate"):
        labels.pieces([TURNS[0], TURNS[2], TURNS[1]])


def test_a_template_that_leaves_out_the_assistant_gives_the_reason(base):
    """A template written for other role names (LLaVA's human/gpt) renders no assistant text to learn."""
    llava_roles = "{% for m in messages %}{% if m.role in ('human', 'user') %}{{ m.content }}\n{% endif %}{% endfor %}"
    with pytest.raises(ConversationError, match=r"chat template: turn 2 \(assistant\): its text is not in"):
        ChatLabels(family(base, llava_roles)).pieces(TURNS)


def test_encoded_labels_are_the_labelled_pieces_token_for_token(base):
    """Through the encoder (the image placeholder expanded): the labelled token ids decode to the labelled
    pieces, and special tokens stay single ids."""
    tokenizer = family(base, QWEN3)
    encoder = SampleEncoder(tokenizer, lambda rows, cols, has_global: 5 * (rows * cols + has_global),
                            TilingConfig(tile_size=112, max_tiles=4), 512)
    from tests.test_trainer_model import png

    encoded = encoder.encode({"key": "q3", "source": "vqa", "image": png(200, 100), "conversation": TURNS})
    spans, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    assert spans == ["A town.<|im_end|>", "<think>\n\n</think>\n\n1887<|im_end|>"]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert [label for label in encoded.labels if label == end] == [end, end]
