"""Shared by the doc2md tests of publishers' classes: a paper a test writes, compiled by real pdflatex and
converted by real LaTeXML and the markdown writer of its class, as the doc2md job does."""

import shutil
from pathlib import Path

import pymupdf
import pytest

from pipelines.doc2md.compile import citation_form, compile_pdf
from pipelines.doc2md.html_to_markdown import html_to_markdown
from pipelines.doc2md.latexml import latex_to_html
from pipelines.doc2md.pages import PageSplit, split_markdown_into_pages
from pipelines.doc2md.unpack import file_class


def convert_paper(folder: Path, name: str, source: str) -> tuple[str, str, pymupdf.Document]:
    """`source` written to `folder/main.tex`: (its markdown, LaTeXML's HTML, its PDF)."""
    if shutil.which("pdflatex") is None:
        pytest.fail("pdflatex is not installed (make install installs TeX Live)")
    main = folder / "main.tex"
    main.write_text(source)
    pdf, _ = compile_pdf(folder, main, name)
    doc = pymupdf.open(pdf)
    class_options, document_class = file_class(main)
    html = latex_to_html(folder, "main.tex", timeout_s=120)
    markdown = html_to_markdown(html, citations=citation_form(main), document_class=document_class,
                                class_options=class_options, page_count=doc.page_count)
    return markdown, html, doc


def first_pages(tmp_path_factory, sources: dict[str, str]) -> dict[str, tuple[str, PageSplit]]:
    """Each named paper's markdown and its first page's split, from its real PDF."""
    pages = {}
    for name, source in sources.items():
        markdown, _, doc = convert_paper(tmp_path_factory.mktemp(name), name, source)
        pages[name] = (markdown, split_markdown_into_pages(markdown, doc)[0])
    return pages
