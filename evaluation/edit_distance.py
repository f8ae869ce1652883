"""Edit-distance metrics: Nougat's normalised character distance and im2markup's token distance.

Nougat scores a page as Levenshtein(pred, gold) / max(len(pred), len(gold)) and averages over pages;
im2markup scores formulas on whitespace-separated tokens of normalised LaTeX, summing distances over the
set and dividing by the summed lengths. Distances come from rapidfuzz (C++), not a hand-written loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def normalized_edit_distance(pred: str, gold: str) -> float:
    """Levenshtein distance over characters divided by the longer length; 0.0 when both are empty."""
    return Levenshtein.normalized_distance(pred, gold)


def token_edit_totals(pred_tokens: Sequence[str], gold_tokens: Sequence[str]) -> tuple[int, int]:
    """(token-level Levenshtein distance, the longer token count): im2markup's per-formula terms."""
    return Levenshtein.distance(list(pred_tokens), list(gold_tokens)), max(len(pred_tokens), len(gold_tokens))


def token_edit_accuracy(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> float:
    """im2markup's "edit distance accuracy": 1 - sum of token distances / sum of the longer lengths."""
    distance, length = 0, 0
    for pred_tokens, gold_tokens in pairs:
        d, n = token_edit_totals(pred_tokens, gold_tokens)
        distance, length = distance + d, length + n
    return 1.0 - distance / length if length else 1.0
