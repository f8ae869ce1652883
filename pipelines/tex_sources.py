"""The LaTeX a formulas or tables build lifts from: `.tex` files, folders and tarballs of them, and
doc2md's `lifted/*.jsonl` side output.

`iter_arxiv_inputs` walks the `--input` URLs once and yields each `.tex` document (tarball members
included) and each lifted JSONL file as text; an unreadable tarball becomes an `InputError` in `errors`
and the walk goes on. `pipelines.formulas` and `pipelines.tables_arxiv` decide what to take from them.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.job import InputError
from pipelines.storage import Folder

TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class SourceText:
    name: str  # where it came from: a path relative to its input, `TARBALL/member.tex`, or a lifted file's URL
    text: str
    lifted: bool  # doc2md's lifted JSONL (else a .tex document)


def decode_text(data: bytes) -> str:
    """UTF-8, else Latin-1 (older arXiv sources)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def tarball_documents(folder: Folder, rel: str, errors: list[InputError]) -> Iterator[SourceText]:
    try:
        with folder.open(rel, "rb") as f, tarfile.open(fileobj=io.BytesIO(f.read())) as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".tex")),
                             key=lambda m: m.name)
            documents = [(m.name, archive.extractfile(m).read()) for m in members]
    except (tarfile.TarError, EOFError, OSError) as exn:
        errors.append(InputError(folder.url_of(rel), "read tarball", str(exn) or type(exn).__name__,
                                 exception=type(exn).__name__))
        return
    for name, data in documents:
        yield SourceText(f"{posixpath.basename(rel)}/{name}", decode_text(data), lifted=False)


def iter_arxiv_inputs(urls: list[str], errors: list[InputError]) -> Iterator[SourceText]:
    """Every .tex document and lifted JSONL file under the inputs, in sorted order. JSONL files count as
    lifted output only when given directly, inside a folder named `lifted`, or when the input is that folder
    (not a job's errors.jsonl)."""
    for url in urls:
        folder = Folder(url)
        if not folder.fs.exists(folder.root):
            raise FileNotFoundError(f"--input {url}: no such file or folder")
        if folder.fs.isfile(folder.root):
            parent, base = posixpath.split(folder.url)
            folder, files, lifted = Folder(parent), [base], {base}
        else:
            files = folder.find()
            inside = posixpath.basename(folder.root) == "lifted"  # the input is doc2md's DST/lifted itself
            lifted = {rel for rel in files if inside or "lifted" in rel.split("/")[:-1]}
        for rel in files:
            if rel.endswith(".tex"):
                yield SourceText(rel, decode_text(folder.read_bytes(rel)), lifted=False)
            elif rel.endswith(".jsonl") and rel in lifted:
                yield SourceText(folder.url_of(rel), decode_text(folder.read_bytes(rel)), lifted=True)
            elif rel.endswith(TARBALL_SUFFIXES):
                yield from tarball_documents(folder, rel, errors)
