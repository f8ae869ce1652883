"""Formula text: display math (and tabulars) lifted from LaTeX sources, refusal of unsafe LaTeX, normalisation.

`extract_display_math` walks a .tex source with pylatexenc and returns the bodies of `equation`,
`align`, `gather`, `multline` (starred or not), `$$...$$` and `\\[...\\]`; `normalize_latex` rewrites
a formula into canonical tokens (one space between tokens, no comments or `\\label`, `{a \\over b}` ->
`\\frac {a} {b}`), idempotently, without changing what it draws: text-mode arguments (`\\text{for all }`)
and TeX dimensions (`\\hspace{1cm}`, `\\kern2pt`, `\\\\[2pt]`, an array's `{p{2cm}c}`) stay whole, the
display environments that only work at the top level become their inner forms (`split` -> `aligned`,
`alignat` -> `alignedat`), and Unicode math characters pdflatex cannot read become their macros (`−` -> `-`). `synth.formula_render` turns formulas into images; `pipelines.formulas`
runs the job.
"""

from __future__ import annotations

import re
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
# macro -> braced arguments kept as one token each (after any [optional] ones): text-mode words, whose
# spaces count, and TeX dimensions, which do not survive being cut into characters
WHOLE_ARGUMENTS = {"text": 1, "mbox": 1, "hbox": 1, "textrm": 1, "textbf": 1, "textit": 1, "textsf": 1, "texttt": 1,
                   "textup": 1, "textsc": 1, "textnormal": 1, "emph": 1, "hspace": 1, "vspace": 1, "mspace": 1,
                   "rule": 2, "raisebox": 2, "makebox": 1, "framebox": 1, "parbox": 2, "phantom": 0}
GLUED_DIMENSIONS = {"kern", "mkern", "hskip", "mskip", "vskip"}  # `\kern2pt`: a dimension with no braces
SPEC_ENVIRONMENTS = {"array", "subarray", "tabular", "alignat", "alignat*", "alignedat"}  # `{p{2cm}c}`, `{2}`: whole
# display environments that only work at the top level of a displayed equation -> the forms that work inside
INNER_FORMS = {"split": "aligned", "alignat": "alignedat", "alignat*": "alignedat", "align": "aligned",
               "align*": "aligned", "gather": "gathered", "gather*": "gathered", "multline": "gathered",
               "multline*": "gathered", "flalign": "aligned", "flalign*": "aligned", "equation": None,
               "equation*": None}
DIMENSION = re.compile(r"\s*([-+]?\s*(?:\d+\.?\d*|\.\d+)\s*(?:pt|mm|cm|in|ex|em|mu|bp|dd|pc|sp|cc|nd|nc)"
                       r"(?:\s+(?:plus|minus)\s+[-+]?(?:\d+\.?\d*|\.\d+)\s*(?:fil+|pt|mm|cm|in|ex|em|mu))*)")
# Unicode math characters pdflatex's default input cannot typeset in math, as the macros that draw them
UNICODE_MATH = {"\u2212": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u00b7": "\\cdot ", "\u22c5": "\\cdot ",
                "\u2264": "\\leq ", "\u2265": "\\geq ", "\u2260": "\\neq ", "\u2248": "\\approx ", "\u2261": "\\equiv ",
                "\u00b1": "\\pm ", "\u2213": "\\mp ", "\u221e": "\\infty ", "\u2192": "\\rightarrow ", "\u2190": "\\leftarrow ",
                "\u2194": "\\leftrightarrow ", "\u21d2": "\\Rightarrow ", "\u21d4": "\\Leftrightarrow ", "\u2208": "\\in ",
                "\u2209": "\\notin ", "\u2282": "\\subset ", "\u2286": "\\subseteq ", "\u222a": "\\cup ", "\u2229": "\\cap ",
                "\u2211": "\\sum ", "\u220f": "\\prod ", "\u222b": "\\int ", "\u2202": "\\partial ", "\u2207": "\\nabla ",
                "\u2032": "'", "\u2026": "\\ldots ", "\u2200": "\\forall ", "\u2203": "\\exists ", "\u00ac": "\\neg ",
                "\u03b1": "\\alpha ", "\u03b2": "\\beta ", "\u03b3": "\\gamma ", "\u03b4": "\\delta ", "\u03b5": "\\epsilon ",
                "\u03b6": "\\zeta ", "\u03b7": "\\eta ", "\u03b8": "\\theta ", "\u03ba": "\\kappa ", "\u03bb": "\\lambda ",
                "\u03bc": "\\mu ", "\u03bd": "\\nu ", "\u03be": "\\xi ", "\u03c0": "\\pi ", "\u03c1": "\\rho ", "\u03c3": "\\sigma ",
                "\u03c4": "\\tau ", "\u03c6": "\\phi ", "\u03c7": "\\chi ", "\u03c8": "\\psi ", "\u03c9": "\\omega ",
                "\u0393": "\\Gamma ", "\u0394": "\\Delta ", "\u0398": "\\Theta ", "\u039b": "\\Lambda ", "\u03a0": "\\Pi ",
                "\u03a3": "\\Sigma ", "\u03a6": "\\Phi ", "\u03a8": "\\Psi ", "\u03a9": "\\Omega "}


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


def next_token(walker: LatexWalker, pos: int):
    """pylatexenc's next token from `pos`, None at the end; `FormulaError` where it cannot tokenise."""
    try:
        return walker.get_token(pos, environments=True)
    except LatexWalkerEndOfStream:
        return None
    except LatexWalkerError as exn:
        raise FormulaError(f"cannot tokenise at character {pos}: {exn}") from exn


def token_text(token, latex: str) -> str | None:
    """A token as a formula's tokens write it; None for a comment or a stray whitespace character ("\\r")."""
    if token.tok == "comment":
        return None
    if token.tok == "macro":
        return "\\" + token.arg
    if token.tok == "specials":
        return token.arg.specials_chars
    if token.tok in ("begin_environment", "end_environment"):
        return f"\\{token.tok.split('_')[0]}{{{token.arg}}}"
    return latex[token.pos:token.pos + token.len].strip() or None


def latex_tokens(latex: str) -> list[str]:
    """The formula's tokens (macros, characters, braces, specials, `\\begin{env}`), comments and spaces dropped."""
    walker = LatexWalker(latex, tolerant_parsing=False)
    tokens = []
    pos = 0
    while (token := next_token(walker, pos)) is not None:
        pos = token.pos + token.len
        if (text := token_text(token, latex)) is not None:
            tokens.append(text)
    return tokens


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


def closing(latex: str, start: int, opener: str, closer: str) -> int:
    """The index just past the `closer` that balances the `opener` at `start` (escaped braces skipped)."""
    depth = 0
    i = start
    while i < len(latex):
        if latex[i] == "\\":
            i += 2
            continue
        if latex[i] == opener:
            depth += 1
        elif latex[i] == closer:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise FormulaError(f"unbalanced {opener} at character {start}")


def whole(text: str) -> str:
    """An argument kept as one token: its whitespace runs made single spaces (TeX reads them so)."""
    return re.sub(r"\s+", " ", text)


def whole_arguments(latex: str, pos: int, count: int, tokens: list[str]) -> int:
    """Append a macro's `*`, [optional] arguments and `count` braced ones from `pos` as whole tokens; the
    position after them."""
    def skip(at: int) -> int:
        while at < len(latex) and latex[at].isspace():
            at += 1
        return at

    pos = skip(pos)
    if latex.startswith("*", pos):
        tokens.append("*")
        pos = skip(pos + 1)
    while latex.startswith("[", pos):
        end = closing(latex, pos, "[", "]")
        tokens.append(whole(latex[pos:end]))
        pos = skip(end)
    for _ in range(count):
        if not latex.startswith("{", pos):
            break
        end = closing(latex, pos, "{", "}")
        tokens.append(whole(latex[pos:end]))
        pos = skip(end)
    return pos


def canonical_tokens(latex: str) -> list[str]:
    """`latex_tokens`, but with text-mode and dimension arguments, a row break's `[2pt]` and an array's
    column spec kept whole, and top-level-only environments as their inner forms."""
    for char, macro in UNICODE_MATH.items():
        latex = latex.replace(char, macro)
    walker = LatexWalker(latex, tolerant_parsing=False)
    tokens: list[str] = []
    pos = 0
    while (token := next_token(walker, pos)) is not None:
        pos = token.pos + token.len
        text = token_text(token, latex)
        if text is None:
            continue
        if token.tok in ("begin_environment", "end_environment"):
            kind = token.tok.split("_")[0]
            name = INNER_FORMS.get(token.arg, token.arg)
            if name is not None:
                tokens.append(f"\\{kind}{{{name}}}")
            if kind == "begin" and token.arg in SPEC_ENVIRONMENTS:
                pos = whole_arguments(latex, pos, 1, tokens)
            continue
        tokens.append(text)
        if token.tok != "macro":
            continue
        if token.arg in WHOLE_ARGUMENTS:
            pos = whole_arguments(latex, pos, WHOLE_ARGUMENTS[token.arg], tokens)
        elif token.arg in GLUED_DIMENSIONS and (found := DIMENSION.match(latex, pos)):
            tokens.append(whole(found.group(1)))
            pos = found.end()
        elif token.arg == "\\" and latex.startswith("[", pos):  # amsmath reads `\\[2pt]` only glued
            end = closing(latex, pos, "[", "]")
            tokens[-1] += whole(latex[pos:end]).replace(" ", "")
            pos = end
    return tokens


def normalize_latex(latex: str) -> str:
    """Canonical tokens joined by single spaces; `normalize_latex(normalize_latex(x)) == normalize_latex(x)`, and
    both draw the same."""
    tokens = rewrite_fractions(drop_macros(canonical_tokens(latex)))
    return " ".join(tokens)
