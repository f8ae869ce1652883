"""Corpora for `build ocr`, however large: the corpus files (plain text, or JSONL with a `text` field,
any fsspec URL) streamed once into a local file of code points that every worker of a machine
memory-maps, one to four bytes a character (the narrowest width its text needs). A page reads only the
few thousand characters it shows (`synth.text_layout.iter_tokens` reads a chunk at a time), so a
multi-gigabyte dump costs disk and shared page cache, not a copy of the text in each worker's memory.

The text is what the files hold, each stripped of leading and trailing whitespace, JSONL records'
texts joined by blank lines, files joined by blank lines; character offsets into it are the page
seeds' offsets (`render.corpus_spans`). A file that is missing, unreadable, not UTF-8, a JSONL line
without a `text` field, or a file with no text is a `CorpusError` naming the file (and line or byte).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.storage import open_url

_BLOCK = 1 << 20  # bytes read from a corpus file at a time
_INFO_KEYS = ("size", "mtime", "LastModified", "last_modified", "ETag", "etag", "md5Hash", "generation")


class CorpusError(ValueError):
    """A corpus file that is missing, unreadable, not text, or empty."""


# Code-point widths a prepared corpus is stored in: the narrowest that holds its largest code point
# (Latin-1 text one byte a character, other text of the Basic Multilingual Plane two, the rest four).
_WIDTHS = ((0xFF, "u8", np.uint8, "latin-1"), (0xFFFF, "u16", np.dtype("<u2"), "utf-16-le"),
           (0x10FFFF, "u32", np.dtype("<u4"), "utf-32-le"))


class MappedCorpus:
    """A prepared corpus: its length in characters and str slices, read from the memory-mapped file."""

    def __init__(self, path: Path):
        self.path = path
        _, _, dtype, self._encoding = next(width for width in _WIDTHS if path.suffix == f".{width[1]}")
        self._codes = np.memmap(path, dtype=dtype, mode="r")

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, part: slice) -> str:
        return self._codes[part].tobytes().decode(self._encoding)


def cache_dir() -> Path:
    """Where prepared corpora live: $DOCFORGE_CACHE/corpora, else ~/.cache/docforge/corpora."""
    root = os.environ.get("DOCFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "docforge")
    return Path(root) / "corpora"


def _fingerprint(urls: list[str]) -> str:
    """A key for the corpus files as they are now: their URLs and what the file system says of each
    (size, modification time or ETag); a changed file gets a new prepared copy."""
    import fsspec

    digest = hashlib.sha256()
    for url in urls:
        try:
            fs, path = fsspec.core.url_to_fs(url)
            info = fs.info(path)
        except FileNotFoundError as exn:
            raise CorpusError(f"corpus {url}: no such file") from exn
        except OSError as exn:
            raise CorpusError(f"corpus {url}: unreadable ({exn})") from exn
        digest.update(json.dumps([url, {key: str(info.get(key)) for key in _INFO_KEYS}]).encode())
    return digest.hexdigest()[:32]


def _raw_blocks(url: str) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) of the file, a block at a time."""
    try:
        with open_url(url, "rb") as f:
            offset = 0
            while block := f.read(_BLOCK):
                yield offset, block
                offset += len(block)
    except FileNotFoundError as exn:
        raise CorpusError(f"corpus {url}: no such file") from exn
    except OSError as exn:
        raise CorpusError(f"corpus {url}: unreadable ({exn})") from exn


def _not_utf8(url: str, exn: UnicodeDecodeError, offset: int) -> CorpusError:
    return CorpusError(f"corpus {url}: not UTF-8 text ({exn.reason} at byte {offset + exn.start})")


def _plain_pieces(url: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    end = 0
    for offset, block in _raw_blocks(url):
        held = len(decoder.getstate()[0])  # bytes of a character cut by the last block, decoded with this one
        try:
            yield decoder.decode(block)
        except UnicodeDecodeError as exn:
            raise _not_utf8(url, exn, offset - held) from exn
        end = offset + len(block)
    held = len(decoder.getstate()[0])
    try:
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exn:
        raise _not_utf8(url, exn, end - held) from exn


def _jsonl_lines(url: str) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, line) of the file's lines, split on "\\n" only."""
    tail, at, number = b"", 0, 0  # `tail`: the unfinished last line, from byte `at`
    for _, block in _raw_blocks(url):
        *lines, tail = (tail + block).split(b"\n")
        for line in lines:
            number += 1
            yield number, at, line
            at += len(line) + 1
    yield number + 1, at, tail


def _jsonl_pieces(url: str) -> Iterator[str]:
    """Each record's text, blank lines between them."""
    first = True
    for number, at, line in _jsonl_lines(url):
        text = _record_text(url, line, number, at)
        if text is not None:
            yield text if first else "\n\n" + text
            first = False


def _record_text(url: str, line: bytes, number: int, offset: int) -> str | None:
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exn:
        raise _not_utf8(url, exn, offset) from exn
    if not decoded.strip():
        return None
    try:
        return str(json.loads(decoded)["text"])
    except (ValueError, KeyError, TypeError) as exn:
        raise CorpusError(f"corpus {url}:{number}: expected a JSON object with a 'text' field") from exn


def _stripped(pieces: Iterator[str]) -> Iterator[str]:
    """The pieces' text without its leading and trailing whitespace (what str.strip removes)."""
    started, held = False, ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        body = piece.rstrip()
        if body:
            yield held + body
            held = piece[len(body):]
        else:
            held += piece
    # trailing whitespace (held) is dropped


def _write_corpus(urls: list[str], stem: Path) -> Path:
    """Stream the files into `stem`.u32, then narrow it to the width its largest code point needs; the
    file appears under its final name whole or not at all (workers sharing the cache never see a part)."""
    wide = stem.with_name(f"{stem.name}.{os.getpid()}.partial")
    narrow = stem.with_name(f"{stem.name}.{os.getpid()}.narrow")
    try:
        largest = 0
        with open(wide, "wb") as out:
            for k, url in enumerate(urls):
                pieces = _jsonl_pieces(url) if url.endswith(".jsonl") else _plain_pieces(url)
                wrote = False
                for piece in _stripped(pieces):
                    codes = np.frombuffer(((k and not wrote) * "\n\n" + piece).encode("utf-32-le"), dtype="<u4")
                    largest = max(largest, int(codes.max()))
                    out.write(codes.tobytes())
                    wrote = True
                if not wrote:
                    raise CorpusError(f"corpus {url}: empty")
        _, suffix, dtype, _ = next(width for width in _WIDTHS if largest <= width[0])
        target = stem.with_suffix(f".{suffix}")
        if suffix == "u32":
            os.replace(wide, target)
            return target
        codes = np.memmap(wide, dtype="<u4", mode="r")
        with open(narrow, "wb") as out:
            for start in range(0, len(codes), _BLOCK):
                out.write(codes[start : start + _BLOCK].astype(dtype).tobytes())
        del codes
        os.replace(narrow, target)
        return target
    finally:
        wide.unlink(missing_ok=True)
        narrow.unlink(missing_ok=True)


def prepare_corpus(urls: list[str]) -> MappedCorpus:
    """The corpus of `urls`, prepared on this machine once (reused while the files are unchanged)."""
    if not urls:
        raise CorpusError("no corpus files given")
    stem = cache_dir() / _fingerprint(urls)
    prepared = [stem.with_suffix(f".{width[1]}") for width in _WIDTHS]
    target = next((path for path in prepared if path.exists()), None)
    if target is None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        target = _write_corpus(urls, stem)
    return MappedCorpus(target)
