"""Synthetic tables: seeded structures (spans, multi-level headers), PubTabNet-shaped targets, and rendering.

`generate_table` makes a `TableStructure` from a seed; `table_html` / `structure_tokens` / `cell_tokens`
write it the way PubTabNet annotates tables; `render_table` lays the table out with PyMuPDF's Story
(HTML + CSS, no browser), crops the page to the table and reads every cell's box from the layout.
`pipelines.tables` runs this as a Ray job; `parse_table_html` reads a PubTabNet-shaped table back.
Chinese text is set in Noto CJK (regular and bold faces, read from the system's font files), so a `<b>` in
the target is bold in the image; CJK-only cells are never italic (print has no italic CJK).
"""

from __future__ import annotations

import html
import io
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image

from synth.errors import SynthError
from synth.fonts import font_face
from synth.table_content import COLUMN_KINDS, LANGS, column_value, header_label, row_label

GENERATOR = "docforge.synth.tables"
GENERATOR_VERSION = "2"  # 2: raw characters in cell tokens, bold CJK rendered bold, no italic CJK-only cells
STYLES = ("grid", "booktabs", "zebra", "horizontal", "plain")
FONTS = ("sans-serif", "serif", "monospace")
FINANCIAL_KINDS = ("currency", "decimal", "percent", "integer")
MAX_ROWS = 80
MAX_COLS = 20
PAGE = (2400.0, 3400.0)  # points: the Story's page, wide enough for any table within the limits
MARGIN_PT = 4.0  # white space kept around the table when cropping
PNG_COMPRESSION = 1  # zlib level: the fastest; files about 5 % larger than level 6
# Ideographs, kana, CJK punctuation and full-width forms. PyMuPDF's own fallback for them (Droid Sans
# Fallback) has no bold face, so the layout sets them in Noto CJK's Simplified Chinese faces instead
# (Debian's fonts-noto-cjk, listed in cluster/install-system-packages.sh).
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
CJK_FONT_FILES = {"sans": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),
                  "serif": ("NotoSerifCJK-Regular.ttc", "NotoSerifCJK-Bold.ttc")}
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
CJK_CSS = ("@font-face{font-family:docforge-cjk;src:url(cjk-regular.otf)}"
           "@font-face{font-family:docforge-cjk;font-weight:bold;src:url(cjk-bold.otf)}"
           ".cjk{font-family:docforge-cjk}")


class TableError(SynthError):
    """A table structure that is malformed or too large to render."""


@dataclass(frozen=True)
class Cell:
    """One cell, anchored at its top-left grid position."""

    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1
    text: str = ""
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True)
class TableStructure:
    """A table: a grid of `rows` x `cols` covered exactly once by `cells` (row-major by anchor); the first
    `header_rows` rows are the header, and no cell spans across the header/body line."""

    rows: int
    cols: int
    header_rows: int
    cells: tuple[Cell, ...]

    def rows_of_cells(self) -> list[list[Cell]]:
        rows: list[list[Cell]] = [[] for _ in range(self.rows)]
        for cell in self.cells:
            rows[cell.row].append(cell)
        return rows


@dataclass(frozen=True)
class TableConfig:
    """What `generate_table` may draw from. Defaults give PubTabNet-like sizes."""

    lang: str = "en"
    min_cols: int = 2
    max_cols: int = 7
    min_body_rows: int = 2
    max_body_rows: int = 12
    max_header_rows: int = 3
    span_rate: float = 0.12  # chance that a body label or a header group spans
    financial_rate: float = 0.5  # chance that a table is financial (currency/percent columns, (negatives))
    styles: tuple[str, ...] = STYLES

    def check(self) -> None:
        if self.lang not in LANGS:
            raise TableError(f"lang {self.lang!r}: choose from {', '.join(LANGS)}")
        if not 1 <= self.min_cols <= self.max_cols <= MAX_COLS:
            raise TableError(f"columns {self.min_cols}-{self.max_cols}: need 1 <= min <= max <= {MAX_COLS}")
        if not 1 <= self.min_body_rows <= self.max_body_rows or self.max_body_rows + self.max_header_rows > MAX_ROWS:
            raise TableError(f"body rows {self.min_body_rows}-{self.max_body_rows} with up to {self.max_header_rows} "
                             f"header rows: need 1 <= min <= max and at most {MAX_ROWS} rows in all")
        if self.max_header_rows < 1:
            raise TableError("max_header_rows must be at least 1")
        unknown = sorted(set(self.styles) - set(STYLES))
        if unknown or not self.styles:
            raise TableError(f"styles {unknown or '(none)'}: choose from {', '.join(STYLES)}")


@dataclass(frozen=True)
class TableStyle:
    """How a table looks; the target HTML does not depend on it."""

    borders: str = "grid"
    font: str = "sans-serif"
    font_size: float = 10.0  # pt
    padding: tuple[float, float] = (3.0, 6.0)  # pt, vertical and horizontal
    align: str = "left"  # left | center | numbers-right
    header_fill: str | None = None
    stripe: str | None = None

    def to_dict(self) -> dict:
        return {"borders": self.borders, "font": self.font, "font_size": self.font_size, "padding": list(self.padding),
                "align": self.align, "header_fill": self.header_fill, "stripe": self.stripe}


@dataclass
class RenderedTable:
    png: bytes
    width: int
    height: int
    dpi: int
    cell_boxes: list[list[float]]  # per cell of the structure: the cell's area (padding included), pixels
    content_boxes: list[list[float] | None]  # per cell: the union of its glyphs' boxes, None when empty
    meta: dict = field(default_factory=dict)


def free_run(occupied: list[list[bool]], row: int, col: int) -> int:
    run = 0
    while col + run < len(occupied[row]) and not occupied[row][col + run]:
        run += 1
    return run


def generate_table(seed: int, config: TableConfig = TableConfig()) -> TableStructure:
    """A random table: multi-level headers with column groups, row-label groups in the body, typed columns."""
    config.check()
    rng = random.Random(seed)
    cols = rng.randint(config.min_cols, config.max_cols)
    header_rows = min(config.max_header_rows, rng.choices((1, 2, 3), weights=(5, 4, 1))[0])
    rows = header_rows + rng.randint(config.min_body_rows, config.max_body_rows)
    financial = rng.random() < config.financial_rate
    kinds = [rng.choice(FINANCIAL_KINDS if financial else COLUMN_KINDS) for _ in range(cols)]
    header_bold = rng.random() < 0.5
    total_bold = rng.random() < 0.3  # a bold last (total) row
    occupied = [[False] * cols for _ in range(rows)]
    cells = []
    for row in range(rows):
        in_header = row < header_rows
        section_end = header_rows if in_header else rows
        for col in range(cols):
            if occupied[row][col]:
                continue
            rowspan, colspan = 1, 1
            run = free_run(occupied, row, col)
            if in_header:
                ends_here = any(c.row == row and c.rowspan == 1 for c in cells)  # so the next row is not empty
                if col == 0 and row == 0 and header_rows > 1 and cols > 1 and rng.random() < 0.7:
                    rowspan = header_rows  # the stub head spans every header level
                elif row < header_rows - 1 and run > 1 and rng.random() < 0.5 + config.span_rate:
                    colspan = rng.randint(2, min(run, 4))  # a column group above its sub-columns
                elif row < header_rows - 1 and ends_here and rng.random() < config.span_rate:
                    rowspan = section_end - row  # a column without sub-columns
                text = header_label(rng, config.lang, row if col else header_rows - 1, header_rows)
                bold, italic = header_bold, False
            else:
                if col == 0 and cols > 1 and rng.random() < config.span_rate and section_end - row > 1:
                    rowspan = rng.randint(2, min(3, section_end - row))  # a group label over several rows
                elif col > 0 and run > 1 and rng.random() < config.span_rate / 3:
                    colspan = 2
                if col == 0:
                    text = row_label(rng, config.lang)
                elif rng.random() < 0.05:
                    text = ""
                else:
                    text = column_value(rng, kinds[col], config.lang, financial)
                bold = row == rows - 1 and total_bold
                italic = rng.random() < 0.02
            for r in range(row, row + rowspan):
                for c in range(col, col + colspan):
                    occupied[r][c] = True
            cells.append(Cell(row, col, rowspan, colspan, text, bold and bool(text),
                              italic and bool(text) and not is_cjk_only(text)))
    table = TableStructure(rows, cols, header_rows, tuple(cells))
    check_structure(table)
    return table


def random_style(rng: random.Random, styles: tuple[str, ...] = STYLES) -> TableStyle:
    borders = rng.choice(styles)
    return TableStyle(
        borders=borders,
        font=rng.choice(FONTS),
        font_size=rng.choice((8.0, 9.0, 10.0, 11.0, 12.0)),
        padding=(rng.choice((1.5, 2.0, 3.0, 4.0)), rng.choice((3.0, 4.0, 6.0, 8.0))),
        align=rng.choice(("left", "center", "numbers-right")),
        header_fill=rng.choice((None, None, "#dde4ee", "#e8e8e8", "#f3e9d2")),
        stripe="#eeeeee" if borders == "zebra" else None,
    )


def check_structure(table: TableStructure) -> None:
    """Raise `TableError` unless the cells cover the grid exactly once and no span crosses the header line."""
    if not (1 <= table.rows <= MAX_ROWS and 1 <= table.cols <= MAX_COLS):
        raise TableError(f"table of {table.rows} x {table.cols}: at most {MAX_ROWS} rows and {MAX_COLS} columns")
    if not 0 <= table.header_rows < table.rows:
        raise TableError(f"{table.header_rows} header rows in a table of {table.rows} rows")
    covered = [[False] * table.cols for _ in range(table.rows)]
    for cell in table.cells:
        if cell.rowspan < 1 or cell.colspan < 1 or cell.row + cell.rowspan > table.rows \
                or cell.col + cell.colspan > table.cols:
            raise TableError(f"cell at row {cell.row}, column {cell.col} with span {cell.rowspan}x{cell.colspan} "
                             f"leaves the {table.rows} x {table.cols} grid")
        if cell.row < table.header_rows < cell.row + cell.rowspan:
            raise TableError(f"cell at row {cell.row}, column {cell.col} spans across the header/body line")
        for r in range(cell.row, cell.row + cell.rowspan):
            for c in range(cell.col, cell.col + cell.colspan):
                if covered[r][c]:
                    raise TableError(f"grid position ({r}, {c}) is covered twice")
                covered[r][c] = True
    holes = [(r, c) for r in range(table.rows) for c in range(table.cols) if not covered[r][c]]
    if holes:
        raise TableError(f"grid position {holes[0]} is covered by no cell ({len(holes)} holes)")


def is_cjk_only(text: str) -> bool:
    """Whether every visible character of `text` is CJK (an italic of it would look upright)."""
    return not CJK.sub("", text).strip()


def cell_markup(cell: Cell) -> str:
    """The cell's text for the layout: escaped, CJK runs in `<span class="cjk">` (set in Noto CJK), `<b>`/`<i>`."""
    text = CJK.sub(lambda run: f'<span class="cjk">{run.group()}</span>', html.escape(cell.text, quote=False))
    if cell.italic:
        text = f"<i>{text}</i>"
    if cell.bold:
        text = f"<b>{text}</b>"
    return text


def span_attributes(cell: Cell) -> list[str]:
    attributes = []
    if cell.colspan > 1:
        attributes.append(f' colspan="{cell.colspan}"')
    if cell.rowspan > 1:
        attributes.append(f' rowspan="{cell.rowspan}"')
    return attributes


def structure_tokens(table: TableStructure) -> list[str]:
    """PubTabNet's structure tokens: `<thead>`, `<tr>`, `<td>` or `<td`, ` colspan="2"`, `>`, `</td>`, ..."""
    tokens = []
    rows = table.rows_of_cells()
    for section, span in (("thead", range(0, table.header_rows)), ("tbody", range(table.header_rows, table.rows))):
        if not span:
            continue
        tokens.append(f"<{section}>")
        for row in span:
            tokens.append("<tr>")
            for cell in rows[row]:
                attributes = span_attributes(cell)
                tokens += ["<td", *attributes, ">"] if attributes else ["<td>"]
                tokens.append("</td>")
            tokens.append("</tr>")
        tokens.append(f"</{section}>")
    return tokens


def cell_tokens(cell: Cell) -> list[str]:
    """A cell's content as PubTabNet tokenises it: one token per raw character (`&`, not `&amp;`), `<b>`/`<i>`
    tags as tokens."""
    opening = (["<b>"] if cell.bold else []) + (["<i>"] if cell.italic else [])
    closing = (["</i>"] if cell.italic else []) + (["</b>"] if cell.bold else [])
    return opening + list(cell.text) + closing


def table_html(table: TableStructure) -> str:
    """The target: `<table><thead><tr><td>...` with spans as attributes and inline `<b>`/`<i>` kept."""
    return html_from_tokens(structure_tokens(table), [cell_tokens(cell) for cell in table.cells])


def html_from_tokens(structure: list[str], cells: list[list[str]]) -> str:
    """A table's HTML from PubTabNet structure tokens and per-cell content tokens (cells in order). As in
    PubTabNet's `format_html`, single-character tokens are text and are escaped here; longer ones are tags."""
    parts = []
    contents = iter(cells)
    for token in structure:
        parts.append(token)
        if token in ("<td>", ">"):
            try:
                parts.append("".join(html.escape(t, quote=False) if len(t) == 1 else t for t in next(contents)))
            except StopIteration:
                raise TableError(f"the structure has more cells than the {len(cells)} given") from None
    if next(contents, None) is not None:
        raise TableError(f"{len(cells)} cells given for a structure with fewer cells")
    return "<table>" + "".join(parts) + "</table>"


def parse_table_html(markup: str) -> TableStructure:
    """A PubTabNet-shaped HTML table (`<thead>`/`<tbody>`, `<td>`/`<th>`, spans, `<b>`/`<i>`) as a structure;
    cell text has its whitespace runs squeezed to single spaces."""
    from lxml import etree, html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(markup, create_parent=False)
    except (etree.ParserError, ValueError) as exn:
        raise TableError(f"not an HTML table: {exn}") from exn
    if root.tag != "table":
        raise TableError(f"expected a <table> element, found <{root.tag}>")
    sections = [(child.tag, child) for child in root if child.tag in ("thead", "tbody")] or [("tbody", root)]
    rows = [(tag, tr) for tag, section in sections for tr in section if tr.tag == "tr"]
    header_rows = sum(1 for tag, _ in rows if tag == "thead")
    occupied: dict[tuple[int, int], bool] = {}
    cells = []
    cols = 0
    for r, (_, tr) in enumerate(rows):
        c = 0
        for td in tr:
            if td.tag not in ("td", "th"):
                continue
            while occupied.get((r, c)):
                c += 1
            try:
                rowspan, colspan = int(td.get("rowspan", 1)), int(td.get("colspan", 1))
            except ValueError as exn:
                raise TableError(f"row {r}: span is not a number ({exn})") from exn
            if rowspan > MAX_ROWS or colspan > MAX_COLS:
                raise TableError(f"row {r}: span {rowspan}x{colspan} is larger than {MAX_ROWS}x{MAX_COLS}")
            bold = td.find(".//b") is not None or td.find(".//strong") is not None
            italic = td.find(".//i") is not None or td.find(".//em") is not None
            cells.append(Cell(r, c, rowspan, colspan, " ".join(td.text_content().split()), bold, italic))
            for rr in range(r, r + rowspan):
                for cc in range(c, c + colspan):
                    occupied[(rr, cc)] = True
            c += colspan
            cols = max(cols, c)
    table = TableStructure(len(rows), cols, header_rows, tuple(cells))
    check_structure(table)
    return table


def style_css(style: TableStyle) -> str:
    rule = "1px solid #222"
    css = [f"table{{border-collapse:collapse;font-family:{style.font};font-size:{style.font_size}pt;color:#111}}",
           f"td{{padding:{style.padding[0]}pt {style.padding[1]}pt;vertical-align:middle;text-align:"
           f"{'center' if style.align == 'center' else 'left'}}}"]
    if style.borders == "grid":
        css.append(f"td{{border:{rule}}}")
    elif style.borders == "booktabs":
        css.append("tr.top td{border-top:2px solid #111}tr.mid td{border-bottom:1px solid #111}"
                   "tr.bottom td{border-bottom:2px solid #111}")
    elif style.borders in ("zebra", "horizontal"):
        css.append("td{border-bottom:1px solid #999}")
    if style.header_fill:
        css.append(f"tr.head td{{background-color:{style.header_fill}}}")
    if style.stripe:
        css.append(f"tr.odd td{{background-color:{style.stripe}}}")
    if style.align == "numbers-right":
        css.append("td.num{text-align:right}")
    return "".join(css)


def styled_html(table: TableStructure) -> str:
    """The HTML that is laid out: each cell a `<td id="cN">` so the layout reports its box."""
    parts = ["<table>"]
    index = {cell: i for i, cell in enumerate(table.cells)}
    for r, cells in enumerate(table.rows_of_cells()):
        classes = ["head" if r < table.header_rows else ("odd" if (r - table.header_rows) % 2 else "even")]
        if r == 0:
            classes.append("top")
        if r == table.header_rows - 1:
            classes.append("mid")
        if r == table.rows - 1:
            classes.append("bottom")
        parts.append(f'<tr class="{" ".join(classes)}">')
        for cell in cells:
            numeric = r >= table.header_rows and cell.col > 0 and any(ch.isdigit() for ch in cell.text)
            parts.append(f'<td id="c{index[cell]}"{"".join(span_attributes(cell))}{" class=num" if numeric else ""}>'
                         f"{cell_markup(cell)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    return "".join(parts)


def find_font_file(name: str) -> Path:
    """The first file called `name` under the system's font folders."""
    for folder in SYSTEM_FONT_DIRS:
        found = next(Path(folder).rglob(name), None) if Path(folder).is_dir() else None
        if found:
            return found
    raise TableError(f"font file {name} not found under {', '.join(SYSTEM_FONT_DIRS)}: Chinese table text needs "
                     "Noto CJK (apt-get install fonts-noto-cjk; cluster/install-system-packages.sh)")


def check_cjk_fonts() -> None:
    """Raise `TableError` unless the Noto CJK files that Chinese tables are rendered with are installed."""
    for names in CJK_FONT_FILES.values():
        for name in names:
            find_font_file(name)


def cjk_kind(font: str) -> str:
    """The Noto CJK design that goes with a CSS generic family (monospace CJK ideographs are the sans ones)."""
    return "serif" if font == "serif" else "sans"


@lru_cache(maxsize=len(CJK_FONT_FILES))
def cjk_fonts(kind: str):
    """A PyMuPDF archive holding `cjk-regular.otf` and `cjk-bold.otf`, the Simplified Chinese faces of the
    Noto CJK collections of `kind` (MuPDF's `@font-face` reads only a collection's first face, the Japanese
    one, so each face is copied out of its `.ttc`; read once per process)."""
    import pymupdf
    from fontTools.ttLib import TTFont

    archive = pymupdf.Archive()
    for weight, name in zip(("regular", "bold"), CJK_FONT_FILES[kind]):
        path = str(find_font_file(name))
        out = io.BytesIO()
        TTFont(path, fontNumber=font_face(path).index, lazy=True).save(out, reorderTables=False)
        archive.add(out.getvalue(), f"cjk-{weight}.otf")
    return archive


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=PNG_COMPRESSION)
    return out.getvalue()


def union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def draw_to_display_list(story, page_rect):
    """The placed story drawn into a display list: rendering and text extraction then replay it, with no PDF
    written and parsed in between (about 5x less CPU than drawing through a `DocumentWriter`)."""
    import pymupdf
    from pymupdf import mupdf

    display_list = mupdf.FzDisplayList(mupdf.FzRect(*page_rect))
    device = mupdf.fz_new_list_device(display_list)
    story.draw(pymupdf.DeviceWrapper(device))
    mupdf.fz_close_device(device)
    return pymupdf.DisplayList(display_list)


def render_table(table: TableStructure, style: TableStyle = TableStyle(), dpi: int = 120) -> RenderedTable:
    """Lay the table out with PyMuPDF's Story, render the page, crop it to the table.

    Cell boxes come from the layout (`element_positions` of each `<td id>`, grown by the padding); content
    boxes are the union of the glyph boxes PyMuPDF reports inside each cell. Both are in output pixels."""
    import pymupdf

    cjk = any(CJK.search(cell.text) for cell in table.cells)
    story = pymupdf.Story(html=styled_html(table), user_css=style_css(style) + (CJK_CSS if cjk else ""),
                          archive=cjk_fonts(cjk_kind(style.font)) if cjk else None)
    page_rect = pymupdf.Rect(0, 0, *PAGE)
    more, _ = story.place(page_rect)
    positions: dict[str, tuple[float, float, float, float]] = {}
    story.element_positions(lambda p: positions.setdefault(p.id, tuple(p.rect)) if p.id else None)
    drawing = draw_to_display_list(story, page_rect)
    if more:
        raise TableError(f"table of {table.rows} x {table.cols} does not fit a {PAGE[0]:.0f} x {PAGE[1]:.0f} pt page")
    missing = [i for i in range(len(table.cells)) if f"c{i}" not in positions]
    if missing:
        raise TableError(f"the layout placed no box for cell {missing[0]} ({len(missing)} missing)")
    pad_y, pad_x = style.padding
    cell_pt = []
    for i in range(len(table.cells)):
        x0, y0, x1, y1 = positions[f"c{i}"]
        cell_pt.append((x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y))
    x0, y0, x1, y1 = union(cell_pt)
    if x1 > PAGE[0] - MARGIN_PT or y1 > PAGE[1] - MARGIN_PT:
        raise TableError(f"table of {table.rows} x {table.cols} is wider or taller than the page "
                         f"({x1:.0f} x {y1:.0f} pt)")
    clip = pymupdf.Rect(x0 - MARGIN_PT, y0 - MARGIN_PT, x1 + MARGIN_PT, y1 + MARGIN_PT)
    pixmap = drawing.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72), clip=clip, alpha=False)
    image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
    text = pymupdf.TextPage(drawing.get_textpage(flags=0)).extractRAWDICT()
    glyphs = [(char["bbox"], char["c"]) for block in text["blocks"] for line in block.get("lines", ())
              for span in line["spans"] for char in span["chars"] if not char["c"].isspace()]
    scale_x, scale_y = pixmap.width / clip.width, pixmap.height / clip.height

    def to_pixels(box: tuple[float, float, float, float]) -> list[float]:
        return [round((box[0] - clip.x0) * scale_x, 2), round((box[1] - clip.y0) * scale_y, 2),
                round((box[2] - clip.x0) * scale_x, 2), round((box[3] - clip.y0) * scale_y, 2)]

    owned: list[list[tuple[float, float, float, float]]] = [[] for _ in table.cells]
    for box, _ in glyphs:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for i, (a, b, c, d) in enumerate(cell_pt):
            if a <= cx <= c and b <= cy <= d:
                owned[i].append(tuple(box))
                break
    return RenderedTable(
        png=png_bytes(image),
        width=pixmap.width,
        height=pixmap.height,
        dpi=dpi,
        cell_boxes=[to_pixels(box) for box in cell_pt],
        content_boxes=[to_pixels(union(boxes)) if boxes else None for boxes in owned],
        meta={"style": style.to_dict(), "dpi": dpi},
    )
