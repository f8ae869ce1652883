"""Big JSONL files read lazily, for the ingests that take them (`llava`: DocStruct4M's 3.29 GB
struct_aware_parse.jsonl, Cambrian-7M): planning streams a file and keeps per record only where its line is
(number, byte offset, length) and the file's SHA-256; a task reads its lines from a few cached blocks.

Only "\\n" ends a line (a U+2028 in a JSON string does not; see `annotated.text_lines`), a "\\r" before it and a BOM
at the file's start are left out, blank lines are skipped; a line that is not UTF-8 or not JSON is an `InputError`
naming `file:LINE`, and the other lines keep their indices.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from typing import IO, Any

from pipelines.job import InputError
from pipelines.storage import open_url

CHUNK = 1 << 20  # bytes read at a time while planning a JSONL file
BLOCK = 1 << 20  # bytes a worker reads (and keeps a few of) to find the lines of its JSONL items


def file_lines(f: IO[bytes], digest: Any | None) -> Iterator[tuple[int, bytes]]:
    """Each line of a binary file and its byte offset, read `CHUNK` bytes at a time, the "\\n" dropped: only "\\n"
    ends a line (as in `text_lines`), the last line may lack it. `digest` is updated with every byte."""
    offset, parts = 0, []
    while chunk := f.read(CHUNK):
        if digest is not None:
            digest.update(chunk)
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            line = b"".join([*parts, chunk[start:end]])
            yield offset, line
            offset += len(line) + 1
            parts, start = [], end + 1
        parts.append(chunk[start:])
    if any(parts):
        yield offset, b"".join(parts)


def is_blank(line: bytes) -> bool:
    """Whether a line is blank as `str.strip()` sees it (which also drops U+3000, U+2028, "\\x1c"...), decoding
    only a line whose first byte past the ASCII spaces is not ASCII or is one of "\\x1c"-"\\x1f"."""
    head = line.lstrip()
    if not head:
        return True
    if head[0] < 0x80 and head[0] not in b"\x1c\x1d\x1e\x1f":
        return False
    try:
        return not head.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def jsonl_lines(url: str, digest: Any | None = None) -> Iterator[tuple[int, int, bytes]]:
    """The non-blank lines of a JSONL file as (line number, byte offset, bytes), streamed, a "\\r" before the "\\n"
    and a BOM at the file start left out; raises `InputError` for an unreadable file."""
    try:
        with open_url(url, "rb") as f:
            for number, (offset, line) in enumerate(file_lines(f, digest), 1):
                if number == 1 and line.startswith(codecs.BOM_UTF8):
                    offset, line = offset + len(codecs.BOM_UTF8), line[len(codecs.BOM_UTF8):]
                line = line.removesuffix(b"\r")
                if not is_blank(line):
                    yield number, offset, line
    except OSError as exn:
        raise InputError(url, "read json", str(exn), exception=type(exn).__name__) from exn


def parse_jsonl_line(line: bytes, name: str, offset: int) -> Any:
    """A JSONL line's record; a line that is not UTF-8 or not JSON is an `InputError` naming it (`file:LINE`)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exn:
        raise InputError(name, "read json", f"not UTF-8 ({exn.reason} at byte {offset + exn.start})",
                         exception="UnicodeDecodeError") from exn
    try:
        return json.loads(text)
    except ValueError as exn:
        raise InputError(name, "parse json", str(exn), exception="JSONDecodeError") from exn


def jsonl_items(url: str, prefix: str) -> list[dict[str, Any]]:
    """The items of one JSONL file, its records left in it: per non-blank line its ordinal index and key, its line
    number (for messages), its byte offset and length, and the file's SHA-256 (so that a rerun after any edit of
    the file, even one that keeps every line's length, is a different plan)."""
    digest = hashlib.sha256()
    items = [{"file": url, "index": index, "line": number, "offset": offset, "length": len(line),
              "key": f"{prefix}-{index:09d}"} for index, (number, offset, line) in enumerate(jsonl_lines(url, digest))]
    sha256 = digest.hexdigest()
    for item in items:
        item["sha256"] = sha256
    return items


@lru_cache(maxsize=4)
def _jsonl_block(url: str, sha256: str, block: int) -> bytes:
    """One `BLOCK` of a JSONL file (keyed by the file's planned SHA-256 too: a file changed since is not this one):
    a task's lines are consecutive, so its items read a block or two, not a remote request each."""
    with open_url(url, "rb") as f:
        f.seek(block * BLOCK)
        return f.read(BLOCK)


def read_jsonl_record(item: dict[str, Any]) -> Any:
    """The record on a JSONL item's line, read from the blocks it spans (two or more for a line across a boundary)."""
    name = f"{item['file']}:{item['line']}"
    start, stop = item["offset"], item["offset"] + item["length"]
    try:
        line = b"".join(_jsonl_block(item["file"], item["sha256"], b)[max(start - b * BLOCK, 0):stop - b * BLOCK]
                        for b in range(start // BLOCK, (stop - 1) // BLOCK + 1))
    except OSError as exn:
        raise InputError(name, "read json", str(exn), exception=type(exn).__name__) from exn
    if len(line) != item["length"]:
        raise InputError(name, "read json", f"the file ends before the {item['length']} bytes planned for this line: "
                                            "it changed since planning")
    return parse_jsonl_line(line, name, start)


