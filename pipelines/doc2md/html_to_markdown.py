"""doc2md step 4: LaTeXML's HTML5 (from `latexml.latex_to_html`) -> markdown in Nougat's conventions.

`html_to_markdown` writes a document with the writer of its class (`class_writers.writer_for`; the conventions:
`markdown_writer`); `latexml_errors` counts what LaTeXML could not interpret, for the records' provenance;
`extract_lifted` gives the display formulas and tables of the same HTML for the formulas/tables output.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from pipelines.doc2md.class_writers import writer_for
from pipelines.doc2md.markdown_math import display_math, equation_rows
from pipelines.doc2md.markdown_tables import is_tabular, tabular_latex
from pipelines.doc2md.markdown_writer import DROPPED, CitationForm, MarkdownWriter, classes, document_root, squeeze

LATEXML_ERROR = re.compile(r'class="(ltx_ERROR[^"]*)"[^>]*>([^<]*)<')
MAX_UNDEFINED_LISTED = 20


def html_to_markdown(html: str, *, tables: str = "latex", citations: CitationForm = CitationForm(),
                     document_class: str = "", class_options: str = "", page_count: int | None = None) -> str:
    """The markdown of a LaTeXML HTML5 document, Nougat style; `tables="html"` keeps tables as HTML;
    `citations` is how the paper prints numeric citations of several works; `document_class` and
    `class_options` its class (the AMS classes print their front matter elsewhere: `AmsMarkdownWriter`;
    acmart prints more: `AcmMarkdownWriter`, whose reference format gives the PDF's `page_count`)."""
    root = document_root(BeautifulSoup(html, "html.parser"))
    writer = writer_for(document_class, class_options, tables, citations, root, page_count)
    writer.walk(root)
    writer.finish()
    return "\n\n".join(block for block in writer.blocks if block.strip()) + "\n"


def latexml_errors(html: str) -> dict:
    """What LaTeXML could not interpret in a document, as its HTML marks it (`ltx_ERROR`, left out of the
    markdown): how many such places and the undefined macros and environments among them, for a record's
    provenance, so a user can leave out the pages of papers whose text lost words (`\\method` defined in
    a class file LaTeXML has no binding for)."""
    found = LATEXML_ERROR.findall(html)
    undefined = sorted({text.strip() for kind, text in found if "undefined" in kind and text.strip()})
    return {"errors": len(found), "undefined": undefined[:MAX_UNDEFINED_LISTED]}


def extract_lifted(html: str) -> list[dict]:
    """Each display formula (`kind: "formula"`, TeX per row, numbers) and each table (`kind: "table"`,
    LaTeX tabular, LaTeXML's HTML, caption) of a LaTeXML document, in reading order."""
    root = document_root(BeautifulSoup(html, "html.parser"))
    writer = MarkdownWriter("latex")
    lifted = []
    for node in root.find_all(lambda found: found.name == "table" or is_tabular(found)):
        names = classes(node)
        if node.find_parent(class_=lambda name: name in DROPPED) is not None:
            continue
        if names & {"ltx_equation", "ltx_equationgroup"} and node.find_parent("table") is None:
            rows = equation_rows(node)
            if rows:
                lifted.append({"kind": "formula", "id": node.get("id"), "tex": [tex for tex, _ in rows],
                               "numbers": [number for _, number in rows], "display": display_math(node)})
        elif is_tabular(node) and node.find_parent(is_tabular) is None:
            float_node = node.find_parent("figure", class_="ltx_table")
            caption = float_node.find("figcaption") if float_node is not None else None
            lifted.append({"kind": "table", "id": (float_node or node).get("id"),
                           "latex": tabular_latex(node, writer.cell_text), "html": str(node),
                           "caption": squeeze(writer.inline(caption)) if caption is not None else ""})
    return lifted
