"""doc2md step 4 (tables): a LaTeXML `ltx_tabular` table as Nougat's LaTeX `tabular`, or as plain HTML.

LaTeXML keeps a tabular's structure in HTML: `colspan`/`rowspan`, alignment classes (`ltx_align_center`)
and rule classes (`ltx_border_t`, `ltx_border_r`, …). `tabular_latex` turns them back into
`\\begin{tabular}{l|cc}`, `\\multicolumn`, `\\multirow`, `\\hline` and `\\cline` (a rule under some columns only:
`\\cline`, booktabs' `\\cmidrule`); `tabular_html` keeps the table as
HTML without LaTeXML's classes. Cell text comes from the caller's inline renderer (math as `\\( … \\)`).
A tabular LaTeXML sets inside an inline box (`adjustbox`) is made of spans (`span.ltx_tabular`, `span.ltx_tr`,
`span.ltx_td`) rather than table elements: rows and cells are found by their classes as well.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bs4 import Tag

ALIGNMENTS = {"ltx_align_left": "l", "ltx_align_right": "r", "ltx_align_center": "c", "ltx_align_justify": "p"}
TOP_RULES = {"ltx_border_t", "ltx_border_tt"}
BOTTOM_RULES = {"ltx_border_b", "ltx_border_bb"}
STYLE_WIDTH = re.compile(r"(?:^|;)\s*width:\s*([\d.]+(?:pt|px|em|cm|mm|in))")
LATEX_SPECIALS = {"&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$"}

CellRenderer = Callable[[Tag], str]

TABLE_START = r"\\begin\{tabular|<table>"  # how a table block written here starts


@dataclass
class Cell:
    text: str
    column: int
    colspan: int
    rowspan: int
    align: str | None
    rule_left: bool
    rule_right: bool


def classes(node: Tag) -> set[str]:
    return set(node.get("class") or [])


def span(node: Tag, attribute: str) -> int:
    try:
        return max(1, int(node.get(attribute, 1)))
    except (TypeError, ValueError):
        return 1


def is_tabular(node: Tag) -> bool:
    """A LaTeXML tabular: `table.ltx_tabular`, or `span.ltx_tabular` inside an inline box."""
    return "ltx_tabular" in classes(node)


def is_row(node: Tag) -> bool:
    return node.name == "tr" or "ltx_tr" in classes(node)


def is_cell(node: Tag) -> bool:
    return node.name in ("td", "th") or "ltx_td" in classes(node)


def table_rows(table: Tag) -> list[Tag]:
    """The table's own rows, in order (not those of a table nested in a cell)."""
    return [row for row in table.find_all(is_row) if row.find_parent(is_tabular) is table]


def row_cells(row: Tag) -> list[Tag]:
    return row.find_all(is_cell, recursive=False)


def cell_tag(cell: Tag) -> str:
    """`td` or `th`, as the cell's element or (a span's) class says."""
    return cell.name if cell.name in ("td", "th") else "th" if "ltx_th" in classes(cell) else "td"


def cell_alignment(node: Tag, names: set[str]) -> str | None:
    """`l`, `c`, `r`, or a paragraph column with its width (`p{56.9pt}`, from LaTeXML's style); a paragraph
    column LaTeXML gives no width (tabularx's `X`) is `l`, as a bare `p` is no LaTeX."""
    align = next((ALIGNMENTS[name] for name in names if name in ALIGNMENTS), None)
    if align != "p":
        return align
    width = STYLE_WIDTH.search(node.get("style") or "")
    return f"p{{{width.group(1)}}}" if width else "l"


def latex_escape(text: str) -> str:
    """Escape LaTeX's specials in cell text outside `\\( … \\)` math."""
    parts = text.split("\\(")
    escaped = ["".join(LATEX_SPECIALS.get(c, c) for c in parts[0])]
    for part in parts[1:]:
        math, sep, rest = part.partition("\\)")
        escaped.append(math + sep + "".join(LATEX_SPECIALS.get(c, c) for c in rest))
    return "\\(".join(escaped)


Ruled = tuple[set[int], set[int]]  # the columns a row's top and bottom rules run over


def layout(table: Tag, render_cell: CellRenderer) -> tuple[list[list[Cell]], list[Ruled]]:
    """Cells per row with their grid columns (rowspans occupy the rows below), and the columns each row's
    top and bottom rules run over."""
    grid: list[list[Cell]] = []
    rules = []
    occupied: dict[tuple[int, int], bool] = {}
    for r, row in enumerate(table_rows(table)):
        cells = []
        column = 0
        top: set[int] = set()
        bottom: set[int] = set()
        for node in row_cells(row):
            while occupied.get((r, column)):
                column += 1
            names = classes(node)
            cell = Cell(text=" ".join(render_cell(node).split()), column=column, colspan=span(node, "colspan"),
                        rowspan=span(node, "rowspan"),
                        align=cell_alignment(node, names),
                        rule_left="ltx_border_l" in names, rule_right="ltx_border_r" in names)
            for dr in range(cell.rowspan):
                for dc in range(cell.colspan):
                    occupied[(r + dr, column + dc)] = True
            covered = range(column, column + cell.colspan)
            if names & TOP_RULES:
                top.update(covered)
            if names & BOTTOM_RULES:
                bottom.update(covered)
            cells.append(cell)
            column += cell.colspan
        grid.append(cells)
        rules.append((top, bottom))
    return grid, rules


def column_alignments(grid: list[list[Cell]], width: int) -> list[str]:
    """Each column's alignment: the most common among its cells that span it alone (the first on a tie; "c" for
    none), so a header's `\\multicolumn{1}{c}{Model}` over an `l` column does not set the column."""
    counts: list[Counter[str]] = [Counter() for _ in range(width)]
    for cells in grid:
        for cell in cells:
            if cell.colspan == 1 and cell.align:
                counts[cell.column][cell.align] += 1
    return [count.most_common(1)[0][0] if count else "c" for count in counts]


def column_spec(grid: list[list[Cell]], width: int, aligns: list[str]) -> str:
    """`l|cc|r`: each column's alignment and rules, from the cells that span one column only."""
    left_rule = [False] * (width + 1)
    for cells in grid:
        for cell in cells:
            if cell.colspan == 1:
                left_rule[cell.column] |= cell.rule_left
                left_rule[cell.column + 1] |= cell.rule_right
    return "".join(("|" if left_rule[c] else "") + aligns[c] for c in range(width)) + ("|" if left_rule[width] else "")


def rule_line(columns: set[int], width: int) -> str | None:
    """`\\hline` for a rule across the table, `\\cline{a-b}` for each run of ruled columns, None for no rule."""
    if not columns:
        return None
    if columns >= set(range(width)):
        return "\\hline"
    runs: list[list[int]] = []
    for column in sorted(columns):
        if runs and column == runs[-1][1] + 1:
            runs[-1][1] = column
        else:
            runs.append([column, column])
    return " ".join(f"\\cline{{{first + 1}-{last + 1}}}" for first, last in runs)


def tabular_latex(table: Tag, render_cell: CellRenderer) -> str:
    """The table as `\\begin{tabular}{spec} … \\end{tabular}`, one row per line, Nougat style."""
    grid, rules = layout(table, render_cell)
    width = max((cell.column + cell.colspan for cells in grid for cell in cells), default=0)
    aligns = column_alignments(grid, width)
    lines = [f"\\begin{{tabular}}{{{column_spec(grid, width, aligns)}}}"]
    for r, cells in enumerate(grid):  # a rule between two rows: the upper's bottom one and the lower's top one
        if line := rule_line(rules[r][0] | (rules[r - 1][1] if r > 0 else set()), width):
            lines.append(line)
        by_column = {cell.column: cell for cell in cells}
        parts = []
        column = 0
        while column < width:
            cell = by_column.get(column)
            if cell is None:
                parts.append("")
                column += 1
                continue
            text = latex_escape(cell.text)
            if cell.rowspan > 1:
                text = f"\\multirow{{{cell.rowspan}}}{{*}}{{{text}}}"
            if cell.colspan > 1 or (cell.align and cell.align != aligns[column]):  # a cell set apart from its column
                spec = ("|" if cell.rule_left else "") + (cell.align or "c") + ("|" if cell.rule_right else "")
                text = f"\\multicolumn{{{cell.colspan}}}{{{spec}}}{{{text}}}"
            parts.append(text)
            column += cell.colspan
        lines.append(" & ".join(parts) + " \\\\")
    if grid and (line := rule_line(rules[-1][1], width)):
        lines.append(line)
    lines.append("\\end{tabular}")
    return "\n".join(lines)


def tabular_html(table: Tag, render_cell: CellRenderer) -> str:
    """The table as bare HTML (`<table><tr><td colspan="2">…`), cell text as in the markdown."""
    rows = []
    for row in table_rows(table):
        cells = []
        for node in row_cells(row):
            attributes = "".join(f' {name}="{span(node, name)}"' for name in ("colspan", "rowspan")
                                 if span(node, name) > 1)
            tag = cell_tag(node)
            cells.append(f"<{tag}{attributes}>{html.escape(' '.join(render_cell(node).split()), quote=False)}</{tag}>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


@dataclass(frozen=True)
class TableRows:
    """A markdown table (either form above) cut into its rows, so that a table the PDF continues over
    pages (longtable) can be cut between them: `head` (`\\begin{tabular}{…}` with the rules above the
    first row, or `<table>`), each row with the rules under it, `tail`."""

    head: str
    rows: tuple[str, ...]
    tail: str
    separator: str

    def text(self, rows: list[str]) -> str:
        return self.separator.join([self.head, *rows, self.tail])


def table_rows_of(text: str) -> TableRows | None:
    """The rows of a table as `tabular_latex` or `tabular_html` writes it; None for other text."""
    text = text.strip()
    if text.startswith("<table>") and text.endswith("</table>"):
        inner = text[len("<table>"):-len("</table>")]
        rows = re.findall(r"<tr>.*?</tr>", inner, re.DOTALL)
        return TableRows("<table>", tuple(rows), "</table>", "") if "".join(rows) == inner else None
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].startswith("\\begin{tabular") or lines[-1] != "\\end{tabular}":
        return None
    head, rows = [lines[0]], []
    for line in lines[1:-1]:
        if line.endswith("\\\\"):
            rows.append(line)
        elif rows:  # a rule under a row
            rows[-1] += "\n" + line
        else:
            head.append(line)
    return TableRows("\n".join(head), tuple(rows), lines[-1], "\n")
