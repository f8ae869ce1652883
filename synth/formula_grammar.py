"""Formulas composed from a small grammar: seeded expressions with fractions, scripts, roots, sums, integrals.

A fallback source when no arXiv sources or formula lists are at hand; `pipelines.formulas` uses it for
`--source generated`. The output is plain LaTeX that pdflatex with amsmath renders.
"""

from __future__ import annotations

import random

LETTERS = tuple("abcdefghijklmnpqrstuvwxyz") + ("A", "B", "C", "F", "L", "N", "X")
GREEK = (r"\alpha", r"\beta", r"\gamma", r"\delta", r"\epsilon", r"\theta", r"\lambda", r"\mu", r"\pi", r"\sigma",
         r"\phi", r"\omega", r"\Gamma", r"\Omega", r"\Delta")
RELATIONS = ("=", "<", ">", r"\leq", r"\geq", r"\approx", r"\neq", r"\equiv")
OPERATORS = ("+", "-", r"\cdot", r"\times", "+", "-")
UPPER_LIMITS = ("N", "n", r"\infty")
FUNCTIONS = (r"\sin", r"\cos", r"\log", r"\exp", r"\tan")


def atom(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(LETTERS)
    if roll < 0.7:
        return rng.choice(GREEK)
    return str(rng.randint(0, 99))


def expression(rng: random.Random, depth: int) -> str:
    """A sum of terms; deeper levels get simpler so formulas stay a line or two long."""
    terms = [term(rng, depth) for _ in range(rng.randint(1, 3 if depth < 2 else 2))]
    out = terms[0]
    for t in terms[1:]:
        out += f" {rng.choice(OPERATORS)} {t}"
    return out


def term(rng: random.Random, depth: int) -> str:
    if depth >= 3:
        return scripted(rng, atom(rng))
    roll = rng.random()
    if roll < 0.2:
        return rf"\frac{{{expression(rng, depth + 1)}}}{{{expression(rng, depth + 1)}}}"
    if roll < 0.3:
        return rf"\sqrt{{{expression(rng, depth + 1)}}}"
    if roll < 0.4:
        index, upper = rng.choice("ijkn"), rng.choice(UPPER_LIMITS)
        return rf"\sum_{{{index}=1}}^{{{upper}}} {scripted(rng, atom(rng), index)}"
    if roll < 0.48:
        return rf"\int_{{{atom(rng)}}}^{{{atom(rng)}}} {expression(rng, depth + 1)} \, d{rng.choice('txyz')}"
    if roll < 0.58:
        return rf"{rng.choice(FUNCTIONS)} \left( {expression(rng, depth + 1)} \right)"
    if roll < 0.66:
        return rf"\left( {expression(rng, depth + 1)} \right)^{{{atom(rng)}}}"
    return scripted(rng, atom(rng))


def scripted(rng: random.Random, base: str, index: str | None = None) -> str:
    if index is not None or rng.random() < 0.3:
        base += f"_{{{index or atom(rng)}}}"
    if rng.random() < 0.25:
        base += f"^{{{atom(rng)}}}"
    return base


def generate_formula(seed: int) -> str:
    """A relation `lhs REL rhs` of random expressions."""
    rng = random.Random(seed)
    return f"{scripted(rng, atom(rng))} {rng.choice(RELATIONS)} {expression(rng, 0)}"
