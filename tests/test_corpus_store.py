"""pipelines.corpus_store: corpus files streamed once into a memory-mapped file that pages read a chunk
at a time: the same text as the files say, clear errors at the right byte or line, bounded memory."""

import os
import re
from itertools import islice

import pytest

from pipelines import corpus_store
from pipelines.corpus_store import CorpusError, prepare_corpus
from pipelines.ocr import CORPORA, cached_corpus, default_fonts
from synth.text_layout import iter_tokens
from synth.text_page import render_page


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCFORGE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("block", [5, 1 << 20])  # 5 bytes: characters and lines cut between blocks
def test_the_text_is_each_file_stripped_and_joined_by_blank_lines(tmp_path, monkeypatch, block):
    monkeypatch.setattr(corpus_store, "_BLOCK", block)
    plain = tmp_path / "a.txt"
    plain.write_text("  \n\nfirst paragraph\r\nline two\n\n\nsecond: 中文，标点。\n \t ", encoding="utf-8")
    records = tmp_path / "b.jsonl"
    records.write_text('{"text": "one"}\n\n{"text": "  two  \\n\\n three"}\r\n{"text": 5}', encoding="utf-8")
    corpus = prepare_corpus([str(plain), str(records)])
    text = ("first paragraph\r\nline two\n\n\nsecond: 中文，标点。" + "\n\n"
            + "one\n\n  two  \n\n three\n\n5")
    assert corpus[:] == text and len(corpus) == len(text)
    assert corpus[16:24] == text[16:24] and corpus[len(text) - 3 :] == "e\n\n5"[-3:]


def test_each_corpus_is_stored_in_the_narrowest_width_its_characters_need(tmp_path):
    for name, text, suffix in (("latin", "café au lait", ".u8"), ("chinese", "中文 and café", ".u16"),
                               ("emoji", "smile 🙂 中文", ".u32")):
        path = tmp_path / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        corpus = prepare_corpus([str(path)])
        assert corpus.path.suffix == suffix and corpus[:] == text and corpus[3:8] == text[3:8]
    assert not list((tmp_path / "cache" / "corpora").glob("*.partial")) + list((tmp_path / "cache").glob("*/*.narrow"))


def test_a_prepared_corpus_is_reused_until_a_file_changes(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("alpha beta")
    first = prepare_corpus([str(path)])
    written = os.stat(first.path).st_mtime_ns
    assert prepare_corpus([str(path)]).path == first.path and os.stat(first.path).st_mtime_ns == written
    path.write_text("alpha beta gamma")
    changed = prepare_corpus([str(path)])
    assert changed.path != first.path and changed[:] == "alpha beta gamma"


def test_bad_corpus_files_are_clear_errors_at_the_right_byte_or_line(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_store, "_BLOCK", 4)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok café ok".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.txt: not UTF-8 text \(invalid continuation byte at byte 6\)"):
        prepare_corpus([str(latin1)])
    latin1.write_bytes("ok ok café".encode("latin-1"))  # cut off at the file's end
    with pytest.raises(CorpusError, match=r"latin1.txt: not UTF-8 text \(unexpected end of data at byte 9\)"):
        prepare_corpus([str(latin1)])
    broken = tmp_path / "lines.jsonl"
    broken.write_text('{"text": "fine"}\n\n{"title": "no text"}\n')
    with pytest.raises(CorpusError, match="lines.jsonl:3: expected a JSON object with a 'text' field"):
        prepare_corpus([str(broken)])
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"text": "  "}\n\n')
    with pytest.raises(CorpusError, match="nowhere.txt: no such file"):
        prepare_corpus([str(tmp_path / "nowhere.txt")])
    with pytest.raises(CorpusError, match="blank.jsonl: empty"):
        prepare_corpus([str(blank)])
    assert not list((tmp_path / "cache" / "corpora").glob("*.partial"))  # nothing half-written is left


def private_memory() -> int:
    """Bytes of this process's anonymous memory (RssAnon): what a copy of the text would take. The
    mapped corpus's pages are file-backed page cache, shared by every worker of the machine."""
    with open("/proc/self/status") as status:
        return int(re.search(r"RssAnon:\s+(\d+) kB", status.read()).group(1)) * 1024


def test_pages_from_a_large_corpus_read_only_what_they_show(tmp_path):
    paragraph = ("Lines break only between words, and a paragraph ends at a blank line. " * 12).strip()
    path = tmp_path / "large.txt"
    with open(path, "w") as f:
        for k in range(50_000):  # about 43 MB of text
            f.write(f"{k} {paragraph}\n\n")
    before = private_memory()
    corpus = prepare_corpus([str(path)])
    for offset in range(0, len(corpus), len(corpus) // 20):  # 2,000 words from 20 places
        assert len(list(islice(iter_tokens(corpus, offset, "en"), 2000))) == 2000
    grown = private_memory() - before
    assert len(corpus) > 40_000_000 and grown < 5_000_000  # the text alone would be 43 MB
    starts = set()
    for seed in range(3):
        page = render_page(corpus, default_fonts("en"), seed)
        [(start, end)] = page.meta["corpus_spans"]
        assert page.words and " ".join(word["text"] for word in page.words) == " ".join(corpus[start:end].split())
        starts.add(start)
    assert len(starts) == 3


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_page_from_the_mapped_corpus_is_the_page_from_the_same_text_in_memory(lang):
    mapped = cached_corpus((str(CORPORA / f"{lang}.txt"),))
    text = mapped[:]
    for seed in range(3):
        assert render_page(mapped, default_fonts(lang), seed).jpeg == render_page(text, default_fonts(lang), seed).jpeg
