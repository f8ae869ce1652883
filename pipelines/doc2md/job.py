"""The doc2md Ray job: one paper per item, its kept pages as samples, its formulas and tables as side records.

Per paper, in a private temp dir: unpack → check the source → PDF (the paper's own, or compiled) →
LaTeXML → markdown → split into pages → render each kept page. Samples: `KEY.png` (the page), `KEY.md`
(its markdown) and `KEY.json` (paper, page, page count, score, lang, PDF page size, word and line boxes,
and DocLayNet-class layout blocks derived from the markdown's block types: `layout.py`).
A dropped page is one error-log line (step `keep page`, why it was dropped); a paper that fails a step is
one error-log line naming the paper and the step; the other papers go on. Display formulas and tables are
written to the side stream `lifted/` for the formulas and tables jobs.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.doc2md.compile import check_source, choose_engine, citation_form, compile_pdf
from pipelines.doc2md.layout import page_layout
from pipelines.doc2md.pages import first_page_prints, pdf_creation_date, split_markdown_into_pages
from pipelines.doc2md.running_heads import declared_running_heads
from pipelines.doc2md.render import LONGEST_SIDE, page_scale, page_words, render_page_image
from pipelines.doc2md.unpack import PaperInput, file_class, find_main_tex, find_papers, unpack_paper
from pipelines.job import InputError, Job, Plan, SideRecord, chunk_into_tasks, code_version, safe_key
from pipelines.storage import absolute_url, open_url
from pipelines.text_lang import detect_lang

GENERATOR = "docforge.doc2md"

EXAMPLES = """examples:
  # arXiv sources (ID.tar.gz / ID.gz / ID/ folders) with their PDFs beside them (ID.pdf)
  docforge build doc2md --input /data/arxiv/2403 --output /shards/doc2md-2403
  # PDFs in a folder of their own; Chinese papers; pages kept at score >= 0.95; on a cluster
  docforge build doc2md --input s3://bucket/src --pdfs s3://bucket/pdf --lang zh --min-score 0.95 \\
      --output s3://bucket/shards/doc2md-zh --address auto
"""


class Doc2mdJob(Job):
    name = "doc2md"
    side_streams = ("lifted",)

    def __init__(self, inputs: list[str], pdfs: str | None = None, lang: str = "auto", min_score: float = 0.9,
                 longest_side: int = LONGEST_SIDE, dpi: float | None = None, image_format: str = "png",
                 tables: str = "latex", papers_per_task: int = 4, latexml_timeout_s: float = 300.0,
                 compile_timeout_s: float = 120.0, source: str = "arxiv"):
        self.inputs = [absolute_url(u) for u in inputs]
        self.pdfs = absolute_url(pdfs) if pdfs else None
        self.lang = lang
        self.min_score = min_score
        self.longest_side = longest_side
        self.dpi = dpi
        self.image_format = image_format
        self.tables = tables
        self.papers_per_task = papers_per_task
        self.latexml_timeout_s = latexml_timeout_s
        self.compile_timeout_s = compile_timeout_s
        self.source = source

    def config(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "pdfs": self.pdfs, "lang": self.lang, "min_score": self.min_score,
                "longest_side": self.longest_side, "dpi": self.dpi, "image_format": self.image_format,
                "tables": self.tables, "papers_per_task": self.papers_per_task,
                "latexml_timeout_s": self.latexml_timeout_s, "compile_timeout_s": self.compile_timeout_s,
                "source": self.source}

    def plan(self) -> Plan:
        papers, errors = find_papers(self.inputs, self.pdfs)
        return Plan(chunk_into_tasks([p.to_item() for p in papers], self.papers_per_task), errors)

    def describe(self, item: dict) -> str:
        return f"paper {item['paper']} ({item['source']})"

    def process(self, item: dict, task_index: int) -> Iterator[dict[str, Any] | InputError | SideRecord]:
        import pymupdf

        from pipelines.doc2md.html_to_markdown import extract_lifted, html_to_markdown, latexml_errors
        from pipelines.doc2md.latexml import LatexmlError, latex_to_html

        paper = PaperInput.from_item(item)
        with tempfile.TemporaryDirectory(prefix="docforge-doc2md-") as tmp:
            root = Path(tmp) / "src"
            root.mkdir()
            unpack_paper(paper, root)
            main = find_main_tex(root, paper.paper)
            check_source(root, paper.paper, main)
            if paper.pdf:
                with open_url(paper.pdf, "rb") as f:
                    pdf_bytes, pdf_origin = f.read(), paper.pdf
            else:  # compiled first, so LaTeXML also sees the .bbl that bibtex made
                pdf_path, engine = compile_pdf(root, main, paper.paper, timeout_s=self.compile_timeout_s)
                pdf_bytes, pdf_origin = pdf_path.read_bytes(), f"compiled with {engine}"
            try:
                doc = pymupdf.open(stream=pdf_bytes, filetype="pdf")
            except Exception as exn:
                raise InputError(paper.pdf or paper.source, "open pdf",
                                 f"paper {paper.paper}: not a readable PDF ({exn})", exception=type(exn).__name__) from exn
            with doc:
                made = pdf_creation_date(doc)
                try:
                    html = latex_to_html(root, str(main.relative_to(root)), timeout_s=self.latexml_timeout_s,
                                         engine_hint=choose_engine(main), work_root=tmp, today=made,
                                         compile_date_printed=first_page_prints(doc, made))
                except LatexmlError as exn:
                    raise InputError(paper.source, "latexml", f"paper {paper.paper}: {exn}",
                                     exception="LatexmlError") from exn
                class_options, document_class = file_class(main)
                markdown = html_to_markdown(html, tables=self.tables, citations=citation_form(main),
                                            document_class=document_class, class_options=class_options,
                                            page_count=doc.page_count)
                yield from self.page_samples(paper, doc, markdown, pdf_origin, latexml_errors(html),
                                             declared_running_heads(main))
        for number, lifted in enumerate(extract_lifted(html)):
            yield SideRecord("lifted", {"paper": paper.paper, "source": paper.source, "index": number, **lifted})

    def page_samples(self, paper: PaperInput, doc, markdown: str, pdf_origin: str, latexml: dict,
                     running_heads: list[str]) -> Iterator[dict | InputError]:
        lang = detect_lang(markdown) if self.lang == "auto" else self.lang
        paper_key = safe_key(paper.paper)
        for split in split_markdown_into_pages(markdown, doc, self.min_score, running_heads=running_heads):
            if not split.kept:
                yield InputError(f"paper {paper.paper} page {split.number}", "keep page", split.reason,
                                 exception="PageDropped")
                continue
            page = doc[split.number - 1]
            scale = page_scale(page, self.longest_side, self.dpi)
            image, width, height = render_page_image(page, scale, self.image_format)
            words, lines = page_words(page, scale, width, height)
            record = {
                "family": "doc2md",
                "lang": lang,
                "source": self.source,
                "paper": paper.paper,
                "page": split.number,
                "page_count": doc.page_count,
                "score": split.score,
                "image": {"width": width, "height": height, "format": self.image_format},
                "pdf_page_size": [round(page.rect.width, 2), round(page.rect.height, 2)],
                "words": words,
                "lines": lines,
                "layout": page_layout(split, page, scale, width, height),
                "provenance": {"generator": GENERATOR, "version": code_version(), "input": paper.source,
                               "pdf": pdf_origin, "min_score": self.min_score, "latexml": latexml},
            }
            yield {"__key__": f"{self.source}-{paper_key}-p{split.number:04d}", self.image_format: image,
                   "md": split.markdown, "json": record}


def add_doc2md_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, nargs="+", metavar="URL",
                        help="folders holding papers as arXiv ships them: ID.tar.gz, ID.gz or ID (gzip), ID/ folders; "
                             "PDFs as ID.pdf beside them")
    parser.add_argument("--pdfs", metavar="URL", help="a folder of the papers' PDFs (ID.pdf), if not beside the sources")
    parser.add_argument("--lang", choices=("auto", "en", "zh"), default="auto",
                        help="language recorded per page (default: auto, from the text)")
    parser.add_argument("--min-score", type=float, default=0.9, help="keep pages whose markdown matches the PDF "
                        "page text at least this well (1 - normalised edit distance, default 0.9)")
    parser.add_argument("--longest-side", type=int, default=LONGEST_SIDE,
                        help=f"rendered page's longest side in pixels (default {LONGEST_SIDE})")
    parser.add_argument("--dpi", type=float, help="render at this dpi instead of --longest-side")
    parser.add_argument("--image-format", choices=("png", "jpg"), default="png", help="page image format (default: png)")
    parser.add_argument("--tables", choices=("latex", "html"), default="latex",
                        help="tables in the markdown as LaTeX tabular (Nougat, default) or HTML")
    parser.add_argument("--papers-per-task", type=int, default=4, help="papers per Ray task (default: 4)")
    parser.add_argument("--latexml-timeout", type=float, default=300.0, help="seconds per paper for LaTeXML (default 300)")
    parser.add_argument("--compile-timeout", type=float, default=120.0,
                        help="seconds per pdflatex/xelatex run when a paper has no PDF (default 120)")
    parser.add_argument("--source", default="arxiv", help="dataset name in keys and records (default: arxiv)")


def make_doc2md_job(args: argparse.Namespace) -> Doc2mdJob:
    return Doc2mdJob(args.input, args.pdfs, args.lang, args.min_score, args.longest_side, args.dpi, args.image_format,
                     args.tables, args.papers_per_task, args.latexml_timeout, args.compile_timeout, args.source)
