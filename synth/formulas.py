"""Formula text: display math (and tabulars) lifted from LaTeX sources, refusal of unsafe LaTeX, normalisation.

`extract_display_math` walks a .tex source with pylatexenc and returns the bodies of `equation`,
`align`, `gather`, `multline` (starred or not), `$$...$$` and `\\[...\\]`; `normalize_latex` rewrites
a formula into canonical tokens (one space between tokens, no comments or `\\label`, `{a \\over b}` ->
`\\frac {a} {b}`), idempotently. `synth.formula_render` turns formulas into images; `pipelines.formulas`
runs the job.
"""

from __future__ import annotations

from dataclasses import dataclass

from pylatexenc.latexwalker import (LatexEnvironmentNode, LatexMathNode, LatexWalker, LatexWalkerEndOfStream,
                                    LatexWalkerError)

from synth.errors import SynthError

DISPLAY_ENVIRONMENTS = {"equation": None, "displaymath": None, "align": "aligned", "gather": "gathered",
                        "multline": "gathered", "eqnarray": "aligned", "flalign": "aligned", "alignat": None}
TABULAR_ENVIRONMENTS = ("tabular", "tabular*", "tabularx")
# Macros a formula may not carry into a pdflatex run: file access, shell escape, catcode tricks, definitions.
REFUSED_MACROS = frozenset({
    "write", "write18", "immediate", "input", "include", "includeonly", "openin", "openout", "read", "readline",
    "closein", "closeout", "special", "catcode", "def", "edef", "gdef", "xdef", "let", "futurelet", "newcommand",
    "renewcommand", "providecommand", "DeclareRobustCommand", "csname", "endcsname", "usepackage", "RequirePackage",
    "documentclass", "begin{document}", "end{document}", "output", "everypar", "everymath", "everydisplay",
    "jobname", "pdfobj", "pdfliteral", "pdfximage", "directlua", "loop", "repeat", "afterassignment", "expandafter",
    "input@path", "makeatletter", "scantokens", "lowercase", "uppercase", "endinput", "batchmode", "errmessage",
    "InputIfFileExists", "IfFileExists", "verbatiminput", "lstinputlisting", "pdffilesize", "pdfmdfivesum",
    "pdffiledump", "pdffilemoddate", "pdfshellescape", "ShellEscape", "immediatewrite", "newwrite", "newread",
})
DROPPED_MACROS = {"label": 1, "nonumber": 0, "notag": 0, "tag": 1}  # macro -> braced arguments it takes
FRACTION_MACROS = {"over": "\\frac", "choose": "\\binom"}


class FormulaError(SynthError):
    """A formula that is refused (unsafe), cannot be tokenised, or does not render."""


@dataclass(frozen=True)
class LiftedFormula:
    latex: str  # the body, with multi-line environments wrapped in their inline counterpart (aligned, gathered)
    environment: str  # equation, align*, $$, \[ ...


def body_of(node) -> str:
    return "".join(child.latex_verbatim() for child in node.nodelist if child is not None)


def lift_nodes(source: str, take) -> list:
    """What `take(node)` returns for the outermost environment or math nodes it accepts (not None), in
    document order; accepted nodes are not searched further."""
    try:
        nodes, _, _ = LatexWalker(source, tolerant_parsing=True).get_latex_nodes()
    except LatexWalkerError as exn:
        raise FormulaError(f"the source does not parse as LaTeX ({exn})") from exn
    found: list = []

    def walk(children) -> None:
        for node in children or ():
            if isinstance(node, (LatexEnvironmentNode, LatexMathNode)):
                lifted = take(node)
                if lifted is not None:
                    found.append(lifted)
                    continue
            if getattr(node, "nodelist", None):
                walk(node.nodelist)
            elif getattr(node, "nodeargd", None) is not None and node.nodeargd.argnlist:
                walk([arg for arg in node.nodeargd.argnlist if arg is not None])

    walk(nodes)
    return found


def display_formula(node) -> LiftedFormula | None:
    if isinstance(node, LatexMathNode):
        return LiftedFormula(body_of(node).strip(), node.delimiters[0]) if node.displaytype == "display" else None
    base = node.environmentname.rstrip("*")
    if base not in DISPLAY_ENVIRONMENTS:
        return None
    body = body_of(node).strip()
    inline = DISPLAY_ENVIRONMENTS[base]
    if base == "alignat":  # its column count argument stays with the environment
        body = node.latex_verbatim()
    elif inline:
        body = f"\\begin{{{inline}}}{body}\\end{{{inline}}}"
    return LiftedFormula(body, node.environmentname)


def extract_display_math(source: str) -> list[LiftedFormula]:
    """Every display formula of a LaTeX source, in document order (duplicates kept; the caller dedups)."""
    return lift_nodes(source, display_formula)


def extract_tabulars(source: str) -> list[str]:
    """Every outermost `tabular`/`tabular*`/`tabularx` environment of a LaTeX source, verbatim."""
    return lift_nodes(source, lambda node: node.latex_verbatim()
                      if isinstance(node, LatexEnvironmentNode) and node.environmentname in TABULAR_ENVIRONMENTS
                      else None)


def latex_tokens(latex: str) -> list[str]:
    """The formula's tokens (macros, characters, braces, specials, `\\begin{env}`), comments and spaces dropped."""
    walker = LatexWalker(latex, tolerant_parsing=False)
    tokens = []
    pos = 0
    while True:
        try:
            token = walker.get_token(pos, environments=True)
        except LatexWalkerEndOfStream:
            return tokens
        except LatexWalkerError as exn:
            raise FormulaError(f"cannot tokenise at character {pos}: {exn}") from exn
        pos = token.pos + token.len
        if token.tok == "comment":
            continue
        if token.tok == "macro":
            tokens.append("\\" + token.arg)
        elif token.tok == "specials":
            tokens.append(token.arg.specials_chars)
        elif token.tok in ("begin_environment", "end_environment"):
            tokens.append(f"\\{token.tok.split('_')[0]}{{{token.arg}}}")
        else:
            tokens.append(latex[token.pos:token.pos + token.len].strip() or latex[token.pos:token.pos + token.len])


def refused_macro(tokens: list[str]) -> str | None:
    """The first macro that may not reach pdflatex (`\\write18`, `\\input`, definitions, ...), or None."""
    for token in tokens:
        if token.startswith("\\") and token[1:] in REFUSED_MACROS:
            return token
        if token.startswith("\\begin{document") or token.startswith("\\end{document"):
            return token
    return None


def check_formula_safe(latex: str) -> list[str]:
    """The formula's tokens; `FormulaError` when it is empty, does not tokenise or uses a refused macro."""
    tokens = latex_tokens(latex)
    if not tokens:
        raise FormulaError("empty formula")
    refused = refused_macro(tokens)
    if refused:
        raise FormulaError(f"refused: uses {refused}")
    return tokens


def group_end(tokens: list[str], start: int) -> int:
    """The index of the brace closing the group opened at `start` (len(tokens) when unbalanced)."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == "{":
            depth += 1
        elif tokens[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(tokens)


def drop_macros(tokens: list[str]) -> list[str]:
    out = []
    i = 0
    while i < len(tokens):
        arguments = DROPPED_MACROS.get(tokens[i][1:]) if tokens[i].startswith("\\") else None
        if arguments is None:
            out.append(tokens[i])
            i += 1
            continue
        i += 1
        for _ in range(arguments):
            if i < len(tokens) and tokens[i] == "{":
                i = group_end(tokens, i) + 1
    return out


def fraction(out: list[str], start: int, split: tuple[int, str]) -> list[str]:
    at, macro = split
    return [macro, "{", *out[start:at], "}", "{", *out[at:], "}"]


def rewrite_fractions(tokens: list[str]) -> list[str]:
    """`{A \\over B}` (or a whole formula `A \\over B`) -> `\\frac { A } { B }`; `\\choose` -> `\\binom`."""
    out: list[str] = []
    starts: list[int] = [0]  # where each open group's content starts in `out`; [0] is the whole formula
    splits: list[tuple[int, str] | None] = [None]  # per open group: where its denominator starts, and the macro
    for token in tokens:
        if token == "{":
            out.append(token)
            starts.append(len(out))
            splits.append(None)
        elif token == "}" and len(starts) > 1:
            start, split = starts.pop(), splits.pop()
            if split is None:
                out.append(token)
            else:  # the group's braces become the fraction's
                out[start - 1:] = fraction(out, start, split)
        elif token.startswith("\\") and token[1:] in FRACTION_MACROS and splits[-1] is None:
            splits[-1] = (len(out), FRACTION_MACROS[token[1:]])
        else:
            out.append(token)
    while len(starts) > 1:  # unbalanced braces: what is still open stays open
        start, split = starts.pop(), splits.pop()
        if split is not None:
            out[start:] = fraction(out, start, split)
    if splits[0] is not None:
        out = fraction(out, 0, splits[0])
    return out


def normalize_latex(latex: str) -> str:
    """Canonical tokens joined by single spaces; `normalize_latex(normalize_latex(x)) == normalize_latex(x)`."""
    tokens = rewrite_fractions(drop_macros(latex_tokens(latex)))
    return " ".join(tokens)
