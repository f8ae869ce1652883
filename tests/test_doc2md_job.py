"""`docforge build doc2md` end to end on real Ray, pdflatex, xelatex, LaTeXML and PyMuPDF: the bundled papers
become verified page pairs, bad papers become one error line each, and the pages cover each paper in order."""

import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import pymupdf
import pytest
import webdataset as wds
from PIL import Image

from pipelines.doc2md.compile import compile_pdf
from pipelines.doc2md.job import Doc2mdJob
from pipelines.doc2md.pages import markdown_blocks, markdown_tokens, read_pdf_pages, split_markdown_into_pages
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset

PAPERS = Path(__file__).resolve().parents[1] / "samples" / "papers"
GOOD = ("2601.00002", "2601.00003", "2601.00004")  # two-column + BibTeX, Chinese (xelatex), LaTeXML bindings
WITH_OWN_PDF = "2601.00002"
LOOP = r"""\documentclass{article}
\begin{document}
\def\spin{\spin}\spin
\end{document}
"""


def tarball(folder: Path, extra: dict[str, bytes] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            archive.add(path, arcname=path.name)
        for name, data in dict(extra).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def built(ray_local, tmp_path_factory):
    """One real build over the good papers and six bad ones (each bad in its own way)."""
    src = tmp_path_factory.mktemp("arxiv")
    for paper in GOOD:
        if paper == WITH_OWN_PDF:  # as arXiv ships it: a gzipped tarball and the paper's own PDF beside it
            (src / f"{paper}.tar.gz").write_bytes(tarball(PAPERS / paper))
            work = tmp_path_factory.mktemp("own-pdf")
            shutil.copytree(PAPERS / paper, work, dirs_exist_ok=True)
            pdf, _ = compile_pdf(work, work / "main.tex", paper)
            shutil.copy(pdf, src / f"{paper}.pdf")
        else:
            shutil.copytree(PAPERS / paper, src / paper)
    good_tex = (PAPERS / "2601.00004" / "main.tex").read_text()
    whole = tarball(PAPERS / "2601.00004")
    (src / "2601.90001.tar.gz").write_bytes(whole[: len(whole) // 2])                        # truncated tarball
    (src / "2601.90002.tar.gz").write_bytes(tarball(PAPERS / "2601.00004", {"../../evil.tex": b"x"}))  # ../ path
    (src / "2601.90003").mkdir()                                                             # \write18
    (src / "2601.90003" / "main.tex").write_text(good_tex.replace("\\begin{document}",
                                                 "\\begin{document}\n\\immediate\\write18{touch pwned}"))
    (src / "2601.90004").mkdir()                                                             # \input{/etc/passwd}
    (src / "2601.90004" / "main.tex").write_text(good_tex.replace("\\begin{document}",
                                                 "\\begin{document}\n\\input{/etc/passwd}"))
    (src / "2601.90005").mkdir()                                                             # loops forever
    (src / "2601.90005" / "main.tex").write_text(LOOP)
    shutil.copytree(PAPERS / "2601.00004", src / "2601.90006")                              # corrupt PDF
    (src / "2601.90006.pdf").write_bytes(b"%PDF-1.5\n" + bytes(range(256)) * 8)
    before = snapshot(src)
    temps_before = set(Path(tempfile.gettempdir()).glob("docforge-doc2md-*"))
    out = tmp_path_factory.mktemp("doc2md") / "out"
    job = Doc2mdJob([str(src)], papers_per_task=3, compile_timeout_s=20, latexml_timeout_s=120)
    result = run_job(job, str(out), RunOptions(progress=False))
    return {"src": src, "out": out, "result": result, "before": before, "job": job,
            "temps_before": temps_before}


def samples_of(out: Path) -> dict[str, dict]:
    index = json.loads((out / "index.json").read_text())
    return {s["__key__"]: s for s in wds.WebDataset([str(out / e["name"]) for e in index["shards"]], shardshuffle=False)}


def errors_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]


def test_doc2md_writes_verified_page_pairs_from_the_bundled_papers(built):
    out, result = built["out"], built["result"]
    assert result.ok
    assert verify_dataset(str(out)).ok
    samples = samples_of(out)
    dropped = [e for e in errors_of(out) if e["step"] == "keep page"]
    kept_by_paper = {p: sorted(json.loads(s["json"])["page"] for s in samples.values()
                               if json.loads(s["json"])["paper"] == p) for p in GOOD}
    for paper in GOOD:
        assert kept_by_paper[paper], f"{paper}: no page kept; dropped: {dropped}"
    total = sum(len(v) for v in kept_by_paper.values())
    assert total / (total + len(dropped)) >= 0.9, dropped
    for key, sample in samples.items():
        record = json.loads(sample["json"])
        image = Image.open(io.BytesIO(sample["png"]))
        assert key == f"arxiv-{record['paper'].replace('.', '_')}-p{record['page']:04d}"
        assert max(image.size) == 1344 and (record["image"]["width"], record["image"]["height"]) == image.size
        assert record["family"] == "doc2md" and record["score"] >= 0.9 and record["words"] and record["lines"]
        assert record["provenance"]["latexml"]["errors"] >= 0 and "undefined" in record["provenance"]["latexml"]
        assert record["lang"] == ("zh" if record["paper"] == "2601.00003" else "en")
        assert all(0 <= w["box"][0] < w["box"][2] <= image.size[0] and 0 <= w["box"][1] < w["box"][3] <= image.size[1]
                   for w in record["words"])
    own = json.loads(samples["arxiv-2601_00002-p0001"]["json"])["provenance"]["pdf"]
    assert own.endswith("2601.00002.pdf")
    assert "compiled with xelatex" == json.loads(samples["arxiv-2601_00003-p0001"]["json"])["provenance"]["pdf"]
    markdown = "\n".join(s["md"].decode() for s in samples.values())
    assert "\\(" in markdown and "\\)" in markdown and "\\[" in markdown and "\\]" in markdown
    assert "$" not in markdown.replace("\\$", "")
    zh = samples["arxiv-2601_00003-p0001"]["md"].decode()
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh) > 100


def test_kept_pages_agree_with_their_pdf_page_text(built):
    """Independent of the splitter's own score: edit distance of the kept markdown against the PDF page's
    words (math removed on both sides) is at most 0.10."""
    from rapidfuzz.distance import Levenshtein

    samples = samples_of(built["out"])
    docs = {}
    for sample in samples.values():
        record = json.loads(sample["json"])
        paper = record["paper"]
        if paper not in docs:
            pdf = built["src"] / f"{paper}.pdf"
            if not pdf.exists():
                work = Path(tempfile.mkdtemp())
                shutil.copytree(PAPERS / paper, work, dirs_exist_ok=True)
                pdf, _ = compile_pdf(work, work / "main.tex", paper)
            docs[paper] = read_pdf_pages(pymupdf.open(pdf))
        page_tokens = docs[paper][record["page"] - 1].tokens
        md_tokens = markdown_tokens(sample["md"].decode())[0]
        distance = Levenshtein.normalized_distance(" ".join(md_tokens), " ".join(page_tokens))
        assert distance <= 0.10, (sample["__key__"], distance)


def test_each_bad_paper_is_one_error_line_and_the_rest_goes_on(built):
    errors = [e for e in errors_of(built["out"]) if e["step"] != "keep page"]
    by_paper = {}
    for error in errors:
        paper = next(p for p in ("90001", "90002", "90003", "90004", "90005", "90006") if f"2601.{p}" in
                     error["input"] + error["message"])
        by_paper.setdefault(paper, []).append(error)
    assert sorted(by_paper) == ["90001", "90002", "90003", "90004", "90005", "90006"], errors
    assert all(len(v) == 1 for v in by_paper.values()), errors
    expected = {"90001": ("unpack", "corrupt or truncated"), "90002": ("unpack", "unsafe member"),
                "90003": ("check source", "shell escape"), "90004": ("check source", "/etc/passwd"),
                "90005": ("compile", "timed out"), "90006": ("open pdf", "not a readable PDF")}
    for paper, (step, text) in expected.items():
        assert by_paper[paper][0]["step"] == step and text in by_paper[paper][0]["message"], by_paper[paper]


def test_nothing_outside_the_work_dir_is_written_and_reruns_add_nothing(built):
    src, out = built["src"], built["out"]
    assert snapshot(src) == built["before"]  # inputs untouched (no aux files, no `pwned`)
    assert set(Path(tempfile.gettempdir()).glob("docforge-doc2md-*")) <= built["temps_before"]
    index = (out / "index.json").read_bytes()
    again = run_job(built["job"], str(out), RunOptions(progress=False))
    assert again.ok and (out / "index.json").read_bytes() == index


def test_derived_layout_boxes_cover_their_blocks(built):
    """Every kept page has DocLayNet-class layout boxes inside the image; each section header's text, found on
    the PDF page by PyMuPDF, lies inside a Section-header box; the papers' block kinds all show up."""
    from pipelines.doc2md.layout import CLASSES

    samples = samples_of(built["out"])
    headers_checked, seen = 0, set()
    for sample in samples.values():
        record = json.loads(sample["json"])
        width, height = record["image"]["width"], record["image"]["height"]
        layout = record["layout"]
        assert layout and all(b["label"] in CLASSES for b in layout)
        assert all(0 <= b["bbox"][0] < b["bbox"][2] <= width and 0 <= b["bbox"][1] < b["bbox"][3] <= height for b in layout)
        seen.update(b["label"] for b in layout)
        pdf = built["src"] / f"{record['paper']}.pdf"
        if not pdf.exists():
            continue
        page = pymupdf.open(pdf)[record["page"] - 1]
        scale = width / page.rect.width
        boxes = [b["bbox"] for b in layout if b["label"] == "Section-header"]
        for line in sample["md"].decode().splitlines():
            if line.startswith("## "):
                title = line[3:].split(" ", 1)[-1]  # without its number
                hits = page.search_for(title)
                assert hits, (sample["__key__"], title)
                rects = [[v * scale for v in hit] for hit in hits]  # the title's words may also occur in the text
                assert any(b[0] - 2 <= r[0] and b[1] - 2 <= r[1] and r[2] <= b[2] + 2 and r[3] <= b[3] + 2
                           for r in rects for b in boxes), (sample["__key__"], title, rects, boxes)
                headers_checked += 1
    assert headers_checked >= 3
    assert {"Title", "Section-header", "Text", "Formula", "Table", "Caption", "List-item", "Page-footer"} <= seen, seen


def test_formulas_and_tables_are_lifted_to_the_side_stream(built):
    lifted = [json.loads(line) for path in sorted((built["out"] / "lifted").glob("task-*.jsonl"))
              for line in path.read_text().splitlines()]
    papers = {r["paper"] for r in lifted}
    assert set(GOOD) <= papers
    assert any(r["kind"] == "formula" for r in lifted) and any(r["kind"] == "table" for r in lifted)


def body_tokens(markdown: str) -> list[str]:
    """The words of the markdown's non-float blocks, in order."""
    return [t for start, end, movable in markdown_blocks(markdown) if not movable
            for t in markdown_tokens(markdown[start:end])[0]]


def test_pages_cover_the_whole_markdown_in_order():
    """Split a compiled paper's markdown: every word lands on exactly one page and the body text (all but
    floats and footnotes, which go where the PDF shows them) reads in the document's order."""
    from pipelines.doc2md.html_to_markdown import html_to_markdown
    from pipelines.doc2md.latexml import latex_to_html

    work = Path(tempfile.mkdtemp())
    shutil.copytree(PAPERS / "2601.00004", work, dirs_exist_ok=True)
    pdf, _ = compile_pdf(work, work / "main.tex", "2601.00004")
    markdown = html_to_markdown(latex_to_html(work, "main.tex"))
    splits = split_markdown_into_pages(markdown, pymupdf.open(pdf))
    assert len(splits) == 3
    joined = "\n\n".join(s.markdown for s in splits)
    assert sorted(markdown_tokens(joined)[0]) == sorted(markdown_tokens(markdown)[0])
    assert [t for s in splits for t in body_tokens(s.markdown)] == body_tokens(markdown)
    shutil.rmtree(work)
