"""Which text of a conversation the model learns: the tokenizer's chat template renders the conversation and
this module cuts the rendering into (text, is_labelled) pieces for `trainer.data.SampleEncoder`. Labelled:
what each assistant turn says and its end-of-turn token; everything else (system and user turns, the
assistant header) is input only.

Two ways, tried in order:
- Prefixes (most templates: ChatML/Qwen2, Llama 3, Gemma, Mistral v0.1): the rendering of the first k turns
  is a prefix of the rendering of the first k+1, and the generation prompt extends it; a turn's pieces are
  the differences, so the labels are exactly what the template writes after its assistant header.
- Located (templates that render an earlier turn differently once later turns follow, or that close the
  rendering with a token they drop when the conversation goes on): Qwen3 keeps the empty think block only
  in the last assistant turn, Mistral v0.3 moves the system message into the last user turn, Phi-3 ends a
  rendering with its eos, DeepSeek-R1's generation prompt opens a think block its turns lack. The whole
  conversation is rendered once and each assistant turn is found in it, in order, after the previous user
  turn's text; its label runs from the end of the template's assistant header (or from the text itself
  where the header is not there) through the first special token after the text.

A template that raises (Gemma's "System role not supported", Mistral's alternation rule) or that leaves an
assistant's text out gives a `ConversationError` naming why; the sample is skipped, counted by reason.
"""

from __future__ import annotations

import os

from jinja2 import TemplateError

Pieces = list[tuple[str, bool]]


class ConversationError(ValueError):
    """The chat template cannot give this conversation labels; `reason` is a short label for counters."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class NotPrefixes(Exception):
    """The template's renderings of a conversation's first turns do not extend one another."""


def special_tokens(tokenizer) -> tuple[str, ...]:
    """Every special token's text: the named ones and the added tokens marked special (Phi-3's `<|end|>` and
    Llama 3's `<|eot_id|>` are only the latter in some checkpoints), longest first."""
    tokens = set(tokenizer.all_special_tokens)
    tokens |= {added.content for added in tokenizer.added_tokens_decoder.values() if added.special}
    return tuple(sorted((token for token in tokens if token), key=len, reverse=True))


def text_span(rendering: str, text: str, start: int) -> tuple[int, int] | None:
    """Where `text` (or, as templates that trim write it, its stripped form) first occurs at or after
    `start`."""
    for candidate in dict.fromkeys((text, text.strip())):
        if candidate and (at := rendering.find(candidate, start)) >= 0:
            return at, at + len(candidate)
    return None


class ChatLabels:
    """Cuts conversations into labelled and unlabelled pieces with one tokenizer's chat template."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token  # what ends a labelled turn (`with_turn_ends`)
        self.specials = special_tokens(tokenizer)

    def render(self, turns: list[dict], generation_prompt: bool = False) -> str:
        if not turns:
            return ""
        return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)

    def pieces(self, turns: list[dict]) -> Pieces:
        """The conversation's rendering as (text, is_labelled) pieces, in order."""
        if turns and turns[0]["role"] == "assistant":
            raise ConversationError("assistant first", "the conversation starts with an assistant turn")
        try:
            try:
                pieces = self.prefix_pieces(turns)
            except NotPrefixes:
                pieces = self.located_pieces(turns)
        except TemplateError as exn:
            raise ConversationError("chat template", f"the tokenizer's chat template refused it: {exn}") from exn
        return self.with_turn_ends(pieces)

    def prefix_pieces(self, turns: list[dict]) -> Pieces:
        pieces, done = [], ""
        for i, turn in enumerate(turns):
            full = self.render(turns[:i + 1])
            if not full.startswith(done):
                raise NotPrefixes
            if turn["role"] == "assistant":
                header = self.render(turns[:i], generation_prompt=True)
                if not (header.startswith(done) and full.startswith(header)):
                    raise NotPrefixes
                if turn["content"].strip() not in full[len(header):]:
                    raise NotPrefixes  # the located way names the turn the template leaves out
                pieces += [(header[len(done):], False), (full[len(header):], True)]
            else:
                pieces.append((full[len(done):], False))
            done = full
        return pieces

    def located_pieces(self, turns: list[dict]) -> Pieces:
        full = self.render(turns)
        pieces, done, cursor = [], 0, 0
        for i, turn in enumerate(turns):
            content = turn["content"]
            if turn["role"] == "user":
                if span := text_span(full, content, cursor):
                    cursor = span[1]
            elif turn["role"] == "assistant":
                header = self.assistant_header(turns[:i])
                begin = cursor
                if header and (at := full.find(header, cursor)) >= 0:
                    begin = at + len(header)
                if not content.strip() and begin == cursor:
                    raise ConversationError("chat template", f"turn {i + 1} (assistant) is empty and the template "
                                                             "has no assistant header to place it after")
                span = text_span(full, content, begin) if content.strip() else (begin, begin)
                if span is None:
                    raise ConversationError("chat template", f"turn {i + 1} (assistant): its text is not in the "
                                                             "template's rendering of the conversation")
                start = begin if begin > cursor else self.with_leading_spaces(full, span[0], cursor)
                end = self.after_turn_end(full, span[1])
                pieces += [(full[done:start], False), (full[start:end], True)]
                done = cursor = end
        pieces.append((full[done:], False))
        return [piece for piece in pieces if piece[0]]

    def assistant_header(self, turns: list[dict]) -> str:
        """What the generation prompt adds after `turns`: the template's assistant header ('' for templates
        without one). Compared with the plain rendering, which may end in a token of its own (Phi-3's eos),
        the cut moves back to the start of a special token it would split."""
        prompt, plain = self.render(turns, generation_prompt=True), self.render(turns)
        cut = len(os.path.commonprefix([prompt, plain]))
        for token in self.specials:
            at = prompt.find(token, max(0, cut - len(token) + 1))
            if 0 <= at < cut < at + len(token):
                cut = at
        return prompt[cut:] if prompt[cut:].strip() else ""

    @staticmethod
    def with_leading_spaces(rendering: str, start: int, limit: int) -> int:
        """Back over the spaces before a turn's text (not before `limit`): a template that writes `[/INST] `
        + text means the text's first word with its space, one token for SentencePiece and byte-level BPE
        alike, as the prefix way labels it."""
        while start > limit and rendering[start - 1] == " ":
            start -= 1
        return start

    def after_turn_end(self, rendering: str, end: int) -> int:
        """Past the special token that closes a turn whose text ends at `end` (whitespace may come between);
        `end` itself where no special token follows."""
        at = end
        while at < len(rendering) and rendering[at].isspace():
            at += 1
        for token in self.specials:
            if rendering.startswith(token, at):
                return at + len(token)
        return end

    def with_turn_ends(self, pieces: Pieces) -> Pieces:
        """Every labelled turn ends with the end-of-turn token, so the model learns to stop. Most templates
        close each turn themselves (ChatML's `<|im_end|>`, Llama 3's `<|eot_id|>`); some (Qwen1.5-Chat's)
        write the tokenizer's eos only before a next turn: the one that opens the next piece becomes the
        turn's, and a last turn that ends in plain text gets one."""
        eos = self.eos
        if eos is None:
            return pieces
        for i, (text, labelled) in enumerate(pieces):
            if not labelled or text.rstrip().endswith(self.specials):
                continue
            following = pieces[i + 1][0] if i + 1 < len(pieces) else ""
            if following.startswith(eos):
                pieces[i], pieces[i + 1] = (text + eos, True), (following[len(eos):], False)
            elif not following:
                pieces[i] = (text + eos, True)
        return pieces
