"""doc2md step 1: find the papers in an input folder and unpack each one's LaTeX source safely.

arXiv ships a paper's source as a gzipped tarball, a single gzipped `.tex` (often with no extension at
all), or, in mirrors, an unpacked folder; the PDF sits beside it (`ID.pdf`) or in a folder of its own.
Unpacking refuses absolute paths, `..`, links that leave the folder and device files (Python's tarfile
`data` filter), and caps member count and bytes, so a hostile archive cannot write outside the work dir.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipelines.job import InputError
from pipelines.storage import Folder

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz")
VERSION = re.compile(r"v\d+$")
OTHER_FILE = re.compile(r"\.[A-Za-z][A-Za-z0-9]*$")
DOCUMENTCLASS = re.compile(r"^[^%\n]*\\documentclass", re.MULTILINE)
PREFERRED_MAIN = ("ms.tex", "main.tex", "paper.tex", "article.tex")
# the class may be named by a path: MDPI papers load `Definitions/mdpi`
DOCUMENT_CLASS = re.compile(r"^[^%\n]*\\documentclass\s*(?:\[([^\]]*)\])?\s*\{\s*([\w./-]+)\s*\}", re.MULTILINE)
PART_CLASSES = {"subfiles", "standalone"}  # a part of another file (`\documentclass[../main.tex]{subfiles}`)
# `\input{sec/a}`, `\include{a}`, `\subfile{sec/a.tex}`, `\import{dir/}{a}`, `\subimport{dir/}{a}`
INPUTS = re.compile(r"\\(?:input|include|subfile|(?:sub)?import\*?\s*\{([^}]*)\})\s*\{([^}]+)\}")


def document_class(text: str) -> tuple[str, str] | None:
    """The (options, name) of a LaTeX file's `\\documentclass[options]{name}` outside comments, or None; a class
    named by a path (`Definitions/mdpi`) by its file's name (`mdpi`)."""
    found = DOCUMENT_CLASS.search(text)
    return (found.group(1) or "", found.group(2).rsplit("/", 1)[-1]) if found else None


def file_class(path: Path) -> tuple[str, str]:
    """The (options, name) of a LaTeX file's class; ("", "") when it declares none."""
    return document_class(path.read_text("utf-8", errors="replace")) or ("", "")


def strip_comments(text: str) -> str:
    """LaTeX text without its `%` comments (an escaped `\\%` stays)."""
    return re.sub(r"(?<!\\)%.*", "", text)


@dataclass(frozen=True)
class Limits:
    """Caps on one paper's source: compressed bytes read, unpacked bytes and number of files."""

    max_archive_bytes: int = 256 << 20
    max_unpacked_bytes: int = 1 << 30
    max_files: int = 5000


@dataclass(frozen=True)
class PaperInput:
    """One paper as found in the input: its id, its source (an archive file or a folder) and its PDF."""

    paper: str
    source: str | None
    source_is_folder: bool
    pdf: str | None

    def to_item(self) -> dict:
        return {"paper": self.paper, "source": self.source, "source_is_folder": self.source_is_folder, "pdf": self.pdf}

    @classmethod
    def from_item(cls, item: dict) -> PaperInput:
        return cls(item["paper"], item["source"], item["source_is_folder"], item["pdf"])


def paper_id_of(name: str) -> str:
    """`2403.08295v2.tar.gz` → `2403.08295v2`; a folder or a bare arXiv download name stays as it is."""
    for suffix in ARCHIVE_SUFFIXES + (".pdf",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_papers(inputs: list[str], pdfs: str | None = None) -> tuple[list[PaperInput], list[InputError]]:
    """The papers in the input folders, sorted by id: sources (archives, bare gzip files, folders) paired with
    PDFs of the same id (with or without the `vN` suffix) from the same folder or from `pdfs`. A PDF with no
    source, or two sources for one id, is an error for that paper."""
    sources: dict[str, tuple[str, bool]] = {}
    pdf_urls: dict[str, str] = {}
    errors: list[InputError] = []
    for url in inputs:
        folder = Folder(url)
        if not folder.fs.isdir(folder.root):
            raise FileNotFoundError(f"--input {url}: no such folder")
        for name in folder.list():
            if name.startswith((".", "_")):
                continue
            full = folder.url_of(name)
            paper = paper_id_of(name)
            is_folder = folder.fs.isdir(folder.path(name))
            if not is_folder and not name.lower().endswith(ARCHIVE_SUFFIXES + (".pdf",)) and OTHER_FILE.search(name):
                continue  # README.md, listings, checksums: not papers (arXiv's bare names end in digits)
            if name.lower().endswith(".pdf"):
                pdf_urls[paper] = full
                continue
            if paper in sources:
                errors.append(InputError(full, "find papers", f"paper {paper} has two sources: {sources[paper][0]} "
                                         "and this one; both skipped"))
                sources[paper] = ("", False)
                continue
            sources[paper] = (full, is_folder)
    if pdfs:
        folder = Folder(pdfs)
        for name in folder.list():
            if name.lower().endswith(".pdf"):
                pdf_urls.setdefault(paper_id_of(name), folder.url_of(name))
    by_base: dict[str, list[str]] = {}
    for paper in sorted(pdf_urls):  # `2403.08295v2.pdf` also serves a source named `2403.08295`
        by_base.setdefault(VERSION.sub("", paper), []).append(paper)
    papers, used = [], set()
    for paper, (source, is_folder) in sorted(sources.items()):
        if not source:
            continue
        named = paper if paper in pdf_urls else VERSION.sub("", paper)
        candidates = [named] if named in pdf_urls else by_base.get(paper, [])[-1:]  # the latest version
        pdf = pdf_urls[candidates[0]] if candidates else None
        used.update(candidates)
        papers.append(PaperInput(paper, source, is_folder, pdf))
    for paper in sorted(set(pdf_urls) - used):
        if not any(VERSION.sub("", s) == VERSION.sub("", paper) for s in sources):
            errors.append(InputError(pdf_urls[paper], "find papers", f"paper {paper} has a PDF but no LaTeX source"))
    return papers, errors


def read_capped(stream, limit: int, what: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} is larger than the {limit >> 20} MiB limit")
    return data


def unpack_archive(data: bytes, dest: Path, limits: Limits) -> None:
    """Unpack arXiv's source shapes into `dest`: a (gzipped) tar, or one gzipped `.tex` (written as `main.tex`)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = read_capped(gzip.GzipFile(fileobj=io.BytesIO(data)), limits.max_unpacked_bytes, "unpacked source")
        except (EOFError, OSError, zlib.error) as exn:
            raise ValueError(f"corrupt or truncated gzip ({exn})") from exn
    if data[:5] == b"%PDF-":
        raise ValueError("the source is a PDF, not LaTeX (a PDF-only submission)")
    if is_tar(data):
        extract_tar(data, dest, limits)
        return
    if not DOCUMENTCLASS.search(data[:200_000].decode("utf-8", errors="replace")):
        raise ValueError("neither a tar archive nor a LaTeX file with \\documentclass")
    (dest / "main.tex").write_bytes(data)


def is_tar(data: bytes) -> bool:
    return len(data) >= 512 and (data[257:262] == b"ustar" or tarfile_header_ok(data[:512]))


def tarfile_header_ok(block: bytes) -> bool:
    """An old-style (pre-POSIX) tar header: its stored checksum matches the header's bytes."""
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def extract_tar(data: bytes, dest: Path, limits: Limits) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = archive.getmembers()
            if len(members) > limits.max_files:
                raise ValueError(f"{len(members)} files, more than the limit of {limits.max_files}")
            total = sum(m.size for m in members if m.isfile())
            if total > limits.max_unpacked_bytes:
                raise ValueError(f"{total >> 20} MiB unpacked, more than the {limits.max_unpacked_bytes >> 20} MiB limit")
            for member in members:
                if member.name.startswith("/") or re.match(r"^[A-Za-z]:", member.name):
                    raise ValueError(f"unsafe member {member.name!r}: an absolute path")
                try:
                    tarfile.data_filter(member, str(dest))
                except tarfile.FilterError as exn:
                    raise ValueError(f"unsafe member {member.name!r}: {exn}") from exn
            archive.extractall(dest, filter="data")
    except (tarfile.ReadError, EOFError) as exn:
        raise ValueError(f"corrupt or truncated tar ({exn})") from exn


def copy_folder(url: str, dest: Path, limits: Limits) -> None:
    """Copy a source folder into `dest`; on a local disk, a link that leaves the folder is refused."""
    folder = Folder(url)
    files = folder.find()
    if len(files) > limits.max_files:
        raise ValueError(f"{len(files)} files, more than the limit of {limits.max_files}")
    total = 0
    root = Path(folder.root).resolve() if folder.protocol == "file" else None
    for rel in files:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"unsafe path {rel!r}")
        if root is not None and not Path(folder.path(rel)).resolve().is_relative_to(root):
            raise ValueError(f"{rel!r} links outside the paper's folder")
        with folder.open(rel, "rb") as f:
            data = read_capped(f, limits.max_unpacked_bytes - total, "the source folder")
        total += len(data)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def unpack_paper(paper: PaperInput, dest: Path, limits: Limits = Limits()) -> None:
    """Put the paper's LaTeX source into the empty folder `dest`; raises `InputError` naming the paper."""
    try:
        if paper.source_is_folder:
            copy_folder(paper.source, dest, limits)
        else:
            folder = Folder(posixpath.dirname(paper.source))
            with folder.open(posixpath.basename(paper.source), "rb") as f:
                data = read_capped(f, limits.max_archive_bytes, "the source archive")
            unpack_archive(data, dest, limits)
    except (ValueError, OSError) as exn:
        raise InputError(paper.source, "unpack", f"paper {paper.paper}: {exn}", exception=type(exn).__name__) from exn


def arxiv_toplevel(root: Path) -> Path | None:
    """The main file arXiv's own `00README.json` names (`"usage": "toplevel"`; the first of several), or the
    older `00README.XXX`'s (a line `NAME toplevelfile`), when it exists in the source."""
    named: list[str] = []
    readme = root / "00README.json"
    if readme.is_file():
        try:
            sources = json.loads(readme.read_text("utf-8", errors="replace")).get("sources", [])
            named = [s.get("filename", "") for s in sources if isinstance(s, dict) and s.get("usage") == "toplevel"]
        except (ValueError, AttributeError):
            named = []
    legacy = root / "00README.XXX"
    if not named and legacy.is_file():
        rows = (line.split() for line in legacy.read_text("utf-8", errors="replace").split("\n"))
        named = [row[0] for row in rows if len(row) >= 2 and row[1].lower() == "toplevelfile"]
    for name in named:
        path = root / name
        if name and path.is_file() and path.resolve().is_relative_to(root.resolve()):
            return path
    return None


def pulled_in(candidates: list[tuple[Path, str]], root: Path) -> set[Path]:
    """The candidates another candidate reads with `\\input`/`\\include`/`\\subfile`/`\\import`: parts
    of a paper that also compile alone (a `subfiles` child, a section with its own `\\documentclass`)."""
    by_name: dict[str, Path] = {}
    for path, _ in candidates:
        rel = path.relative_to(root).as_posix()
        for name in (rel, rel[:-4], path.name, path.stem):
            by_name.setdefault(name, path)
    read: set[Path] = set()
    for path, text in candidates:
        for match in INPUTS.finditer(strip_comments(text)):
            name = posixpath.normpath(posixpath.join(match.group(1) or "", match.group(2).strip()))
            target = by_name.get(name) or by_name.get(posixpath.basename(name))
            if target is not None and target != path:
                read.add(target)
    return read


def find_main_tex(root: Path, paper: str) -> Path:
    """The main `.tex`: the one arXiv's `00README` names; else among the files with a `\\documentclass` outside
    comments, less `subfiles`/`standalone` parts and files another of them reads, `ms.tex`/`main.tex`, then
    the one a `.bbl` is named after, then the one with `\\begin{document}`, then the largest."""
    if (named := arxiv_toplevel(root)) is not None:
        return named
    candidates = []
    for path in sorted(root.rglob("*.tex")):
        if path.is_file():
            text = path.read_text("utf-8", errors="replace")
            if DOCUMENTCLASS.search(text):
                candidates.append((path, text))
    if not candidates:
        raise InputError(paper, "find main tex", f"paper {paper}: no .tex file with \\documentclass")
    parts = pulled_in(candidates, root)
    whole = [(p, t) for p, t in candidates
             if p not in parts and (document_class(t) or ("", ""))[1] not in PART_CLASSES]
    candidates = whole or candidates
    if len(candidates) == 1:
        return candidates[0][0]
    by_name = {p.name.lower(): p for p, _ in candidates}
    for name in PREFERRED_MAIN:
        if name in by_name:
            return by_name[name]
    bbl_stems = {p.stem for p in root.rglob("*.bbl")}
    for path, _ in candidates:
        if path.stem in bbl_stems:
            return path
    with_body = [(p, t) for p, t in candidates if "\\begin{document}" in t]
    return max(with_body or candidates, key=lambda pt: len(pt[1]))[0]
