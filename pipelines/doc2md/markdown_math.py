"""doc2md step 4 (math): LaTeXML's math, kept as TeX (`--mathtex`), in Nougat's delimiters.

Inline formulas become `\\( … \\)`; a display equation or equation group (`align`, `gather`, `eqnarray`)
becomes one `\\[ … \\]` with its rows joined by `\\\\` and each row's number kept as `\\tag{N}`, as Nougat
writes them. Used by `html_to_markdown` and by `extract_lifted` for the formulas side output.
"""

from __future__ import annotations

import re

from bs4 import Tag

LINE_CONTINUATION = re.compile(r"(?<!\\)%\n\s*")
LEADING_DISPLAYSTYLE = re.compile(r"^\s*\\displaystyle\b\s*")
WHITESPACE = re.compile(r"\s+")
EQUATION_NUMBER = re.compile(r"^\((.*)\)$")
# babel makes `~` active; LaTeXML then writes a formula's `~` as its expansion, which KaTeX and MathJax cannot read
BABEL_TIE = re.compile(r"\\leavevmode\s*\\nobreak\s*\\ ")
ROW_SEPARATOR = " \\\\ "


def is_math(node: Tag) -> bool:
    return node.name == "math" or "ltx_Math" in (node.get("class") or [])


def math_tex(node: Tag) -> str:
    """The TeX of one LaTeXML formula: `<span class="ltx_Math">` text, or a MathML `<math>`'s alttext."""
    tex = node.get("alttext") if node.name == "math" else node.get_text()
    tex = BABEL_TIE.sub("~", LINE_CONTINUATION.sub("", tex or ""))
    return WHITESPACE.sub(" ", tex).strip()


def inline_math(node: Tag) -> str:
    tex = math_tex(node)
    return f"\\({tex}\\)" if tex else ""


def equation_rows(table: Tag) -> list[tuple[str, str | None]]:
    """(TeX, number) for each row of a LaTeXML equation table; the row's cells joined in order."""
    rows = []
    for row in table.find_all("tr"):
        if "ltx_eqn_row" not in (row.get("class") or []) and "ltx_equation" not in (row.get("class") or []):
            continue
        cells = []
        number = None
        for cell in row.find_all("td", recursive=False):
            tag = cell.find(class_="ltx_tag_equation")
            if tag is not None:
                number = tag.get_text(strip=True)
                continue
            for formula in cell.find_all(is_math):
                cells.append(LEADING_DISPLAYSTYLE.sub("", math_tex(formula)))
        tex = " ".join(part for part in cells if part)
        if tex:
            rows.append((tex, number))
    return rows


def tag_of(number: str) -> str:
    """`(3)` -> `\\tag{3}`; other labels (e.g. `(3a)`, `(A.1)`) keep their text inside the tag."""
    match = EQUATION_NUMBER.match(number)
    return f"\\tag{{{match.group(1) if match else number}}}"


def display_math(table: Tag) -> str:
    """One `\\[ … \\]` for a LaTeXML equation or equation group, rows joined by `\\\\`, numbers as `\\tag`."""
    rows = [tex + (f" {tag_of(number)}" if number else "") for tex, number in equation_rows(table)]
    return "\\[" + ROW_SEPARATOR.join(rows) + "\\]" if rows else ""
