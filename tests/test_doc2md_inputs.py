"""doc2md's input steps on real archives and real TeX: finding papers, unpacking safely, refusing escapes,
compiling with a timeout."""

import gzip
import io
import tarfile
import time
from pathlib import Path

import pytest

from pipelines.doc2md.compile import check_source, choose_engine, compile_pdf
from pipelines.doc2md.unpack import PaperInput, find_main_tex, find_papers, unpack_paper
from pipelines.job import InputError

SMALL_PAPER = r"""\documentclass{article}
\begin{document}
\section{Introduction}
A small paper with one section and the formula \(a^2+b^2=c^2\).
\end{document}
"""


def tar_bytes(members: dict[str, bytes], links: dict[str, str] = (), gzipped: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzipped else "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in dict(links).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def unpack_file(tmp_path: Path, name: str, data: bytes) -> Path:
    src = tmp_path / "in" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    unpack_paper(PaperInput(name.split(".tar")[0], str(src), False, None), dest)
    return dest


def test_find_papers_pairs_sources_with_pdfs_and_reports_orphans(tmp_path):
    (tmp_path / "2401.00001.tar.gz").write_bytes(tar_bytes({"main.tex": SMALL_PAPER.encode()}))
    (tmp_path / "2401.00001.pdf").write_bytes(b"%PDF-1.5")
    (tmp_path / "2401.00002v2").write_bytes(gzip.compress(SMALL_PAPER.encode()))  # arXiv's bare download name
    (tmp_path / "2401.00002.pdf").write_bytes(b"%PDF-1.5")  # the PDF without the version suffix
    (tmp_path / "2401.00003").mkdir()
    (tmp_path / "2401.00003" / "ms.tex").write_text(SMALL_PAPER)
    (tmp_path / "2401.00009.pdf").write_bytes(b"%PDF-1.5")  # no source
    (tmp_path / "2401.00004.gz").write_bytes(gzip.compress(SMALL_PAPER.encode()))
    (tmp_path / "2401.00004v1.pdf").write_bytes(b"%PDF-1.5")  # a versioned PDF for an unversioned source
    (tmp_path / "2401.00004v3.pdf").write_bytes(b"%PDF-1.5")
    (tmp_path / "README.md").write_text("not a paper")
    papers, errors = find_papers([str(tmp_path)])
    assert [(p.paper, p.source_is_folder, p.pdf and Path(p.pdf).name) for p in papers] == [
        ("2401.00001", False, "2401.00001.pdf"), ("2401.00002v2", False, "2401.00002.pdf"), ("2401.00003", True, None),
        ("2401.00004", False, "2401.00004v3.pdf")]
    assert len(errors) == 1 and "2401.00009" in errors[0].message and "no LaTeX source" in errors[0].message


def test_unpacks_tarballs_gzip_singles_and_finds_the_main_tex(tmp_path):
    dest = unpack_file(tmp_path, "a.tar.gz", tar_bytes({"sec/intro.tex": b"\\section{Intro}",
                                                         "ms.tex": SMALL_PAPER.encode(),
                                                         "old.tex": SMALL_PAPER.encode()}))
    assert find_main_tex(dest, "a") == dest / "ms.tex"
    dest = unpack_file(tmp_path / "g", "2401.00002", gzip.compress(SMALL_PAPER.encode()))
    assert (dest / "main.tex").read_text() == SMALL_PAPER


LONG_PART = "\\section{Experiments}\n" + "We ran many experiments. " * 400  # larger than the main file


@pytest.mark.parametrize("members, main", [
    # a subfiles child compiles alone and is the largest file
    ({"neurips_2026.tex": SMALL_PAPER.replace("\\section", "\\usepackage{subfiles}\n\\subfile{sections/exp}\n\\section"),
      "sections/exp.tex": "\\documentclass[../neurips_2026.tex]{subfiles}\n\\begin{document}\n" + LONG_PART
                          + "\n\\end{document}\n"}, "neurips_2026.tex"),
    # a section with a \documentclass of its own that the main file \input-s (without the extension)
    ({"paper_final.tex": SMALL_PAPER.replace("\\section", "\\input{sec/results}\n\\section"),
      "sec/results.tex": "%\\documentclass{article}\n\\documentclass{article}\n\\begin{document}\n" + LONG_PART}, "paper_final.tex"),
    # a large standalone figure
    ({"draft.tex": SMALL_PAPER, "fig/plot.tex": "\\documentclass[tikz]{standalone}\n\\begin{document}\n" + LONG_PART},
     "draft.tex"),
    # arXiv's 00README.json names the main file, though a leftover template is larger and called main.tex
    ({"00README.json": '{"process": {"compiler": "pdflatex"}, "sources": [{"filename": "template.tex", "usage": '
                       '"ignore"}, {"filename": "iclr_paper.tex", "usage": "toplevel"}]}',
      "iclr_paper.tex": SMALL_PAPER, "main.tex": SMALL_PAPER + "% " + LONG_PART}, "iclr_paper.tex"),
    # and the older 00README.XXX
    ({"00README.XXX": "fig1.eps ignore\nsubmission.tex toplevelfile\n", "submission.tex": SMALL_PAPER,
      "ms.tex": SMALL_PAPER}, "submission.tex"),
])
def test_the_main_tex_is_the_whole_paper_not_a_part_that_compiles_alone(tmp_path, members, main):
    dest = unpack_file(tmp_path, "2401.00020.tar.gz", tar_bytes({name: text.encode() for name, text in members.items()}))
    assert find_main_tex(dest, "2401.00020") == dest / main


@pytest.mark.parametrize("members, links, cause", [
    ({"../escape.tex": b"x"}, {}, "unsafe member '../escape.tex'"),
    ({"/etc/evil.tex": b"x"}, {}, "unsafe member '/etc/evil.tex'"),
    ({"main.tex": SMALL_PAPER.encode()}, {"passwd": "/etc/passwd"}, "unsafe member 'passwd'"),
    ({"main.tex": SMALL_PAPER.encode()}, {"up": "../../outside"}, "unsafe member 'up'"),
])
def test_hostile_tarballs_are_refused_and_nothing_is_written_outside(tmp_path, members, links, cause):
    with pytest.raises(InputError) as caught:
        unpack_file(tmp_path, "2401.00005.tar.gz", tar_bytes(members, links))
    assert caught.value.step == "unpack" and cause in caught.value.message and "2401.00005" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_and_non_latex_archives_are_clear_errors(tmp_path):
    whole = tar_bytes({"main.tex": SMALL_PAPER.encode() * 200, "fig.eps": bytes(range(256)) * 400})
    with pytest.raises(InputError, match="corrupt or truncated"):
        unpack_file(tmp_path / "t", "2401.00006.tar.gz", whole[: len(whole) // 2])
    with pytest.raises(InputError, match="PDF-only submission"):
        unpack_file(tmp_path / "p", "2401.00007", gzip.compress(b"%PDF-1.4 ..."))
    with pytest.raises(InputError, match="neither a tar archive nor a LaTeX file"):
        unpack_file(tmp_path / "x", "2401.00008", gzip.compress(b"just some bytes"))


@pytest.mark.parametrize("source, cause", [
    ("\\immediate\\write18{touch /tmp/owned}", "shell escape"),
    ("\\input{/etc/passwd}", "'/etc/passwd'"),
    ("\\input /etc/hostname", "'/etc/hostname'"),
    ("\\include{../../secret}", "'../../secret'"),
    ("\\includegraphics[width=2cm]{~/photo.png}", "'~/photo.png'"),
])
def test_sources_that_escape_their_folder_are_refused(tmp_path, source, cause):
    (tmp_path / "main.tex").write_text(SMALL_PAPER.replace("\\section", source + "\n\\section"))
    with pytest.raises(InputError) as caught:
        check_source(tmp_path, "2401.00010")
    assert caught.value.step == "check source" and cause in caught.value.message


def test_an_absolute_bibliography_path_is_let_be_when_the_bbl_is_shipped(tmp_path):
    """pdflatex reads main.bbl and LaTeXML too (its nobibtex mode): the author's own .bib path is never
    opened. Without the .bbl, bibtex would be asked to read it: refused."""
    main = tmp_path / "main.tex"
    main.write_text(SMALL_PAPER.replace("\\end{document}", "\\bibliographystyle{plain}\n"
                                        "\\bibliography{/Users/alice/Dropbox/latex/refs}\n\\end{document}"))
    with pytest.raises(InputError, match="'/Users/alice/Dropbox/latex/refs' with \\\\bibliography"):
        check_source(tmp_path, "2401.00021", main)
    (tmp_path / "main.bbl").write_text("\\begin{thebibliography}{1}\n\\bibitem{a} A. Author. A title.\n"
                                       "\\end{thebibliography}\n")
    check_source(tmp_path, "2401.00021", main)
    (tmp_path / "sec.tex").write_text("\\input{/etc/passwd}")  # other reads are still refused
    with pytest.raises(InputError, match="'/etc/passwd'"):
        check_source(tmp_path, "2401.00021", main)
    pdf, _ = compile_pdf(tmp_path, main, "2401.00021", timeout_s=60)
    assert pdf.read_bytes().startswith(b"%PDF")


def test_a_file_named_by_a_macro_the_file_defines_inside_the_folder_is_let_be(tmp_path):
    """emulateapj.cls (shipped by most papers written with it) loads `\\LoadClass[…]{\\@revtex@cls}` after
    `\\def\\@revtex@cls{revtex4-1}`; a macro that may name a file outside the folder is still refused."""
    (tmp_path / "main.tex").write_text(SMALL_PAPER)
    (tmp_path / "emulateapj.cls").write_text(
        "\\ifx\\x\\y\\def\\@revtex@cls{revtex4-1}\\else\\def\\@revtex@cls{revtex4}\\fi\n"
        "\\LoadClass[twocolumn,nofootinbib]{\\@revtex@cls}\n")
    check_source(tmp_path, "2401.00012")
    for definition in ("\\def\\@revtex@cls{/etc/passwd}", "\\def\\@revtex@cls{\\jobname}", ""):
        (tmp_path / "emulateapj.cls").write_text(f"{definition}\n\\LoadClass[twocolumn]{{\\@revtex@cls}}\n")
        with pytest.raises(InputError, match=r"@revtex@cls' with \\LoadClass, outside the paper's folder"):
            check_source(tmp_path, "2401.00012")


def test_commented_out_escapes_are_not_refused(tmp_path):
    (tmp_path / "main.tex").write_text(SMALL_PAPER.replace("\\section", "% \\input{/etc/passwd}\n\\section"))
    check_source(tmp_path, "2401.00011")


def test_compile_makes_a_pdf_and_picks_xelatex_for_cjk(tmp_path):
    (tmp_path / "main.tex").write_text(SMALL_PAPER)
    pdf, engine = compile_pdf(tmp_path, tmp_path / "main.tex", "2401.00012", timeout_s=60)
    assert engine == "pdflatex" and pdf.read_bytes().startswith(b"%PDF")
    (tmp_path / "zh.tex").write_text(SMALL_PAPER.replace("\\begin{document}", "\\usepackage{xeCJK}\n\\begin{document}"))
    assert choose_engine(tmp_path / "zh.tex") == "xelatex"


def test_latex_that_loops_forever_is_killed_at_the_timeout(tmp_path):
    (tmp_path / "main.tex").write_text(SMALL_PAPER.replace("\\section", "\\def\\loop{\\loop}\\loop\n\\section"))
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        compile_pdf(tmp_path, tmp_path / "main.tex", "2401.00013", timeout_s=3)
    assert time.monotonic() - started < 15
    assert caught.value.step == "compile" and "timed out after 3 s" in caught.value.message


def test_latex_that_fails_without_a_pdf_names_the_error(tmp_path):
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\end{itemize}")
    with pytest.raises(InputError, match="made no PDF"):
        compile_pdf(tmp_path, tmp_path / "main.tex", "2401.00014", timeout_s=30)
