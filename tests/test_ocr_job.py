"""`docforge build ocr` end to end on real Ray with real fonts: verified shards, pages regenerable alone, clear errors."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image

from pipelines.corpus_store import CorpusError
from pipelines.ocr import CORPORA, OcrJob, default_fonts, page_seed, read_corpus
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def samples_of(out: Path) -> dict[str, dict]:
    index = json.loads((out / "index.json").read_text())
    return {s["__key__"]: s for s in wds.WebDataset([str(out / e["name"]) for e in index["shards"]], shardshuffle=False)}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_ocr_job_writes_verified_pages_that_regenerate_alone(ray_local, tmp_path, lang):
    from synth.text_page import PageConfig, render_page

    out = tmp_path / lang
    job = OcrJob(lang, 6, [str(CORPORA / f"{lang}.txt")], default_fonts(lang), seed=11, pages_per_task=3)
    result = run_job(job, str(out), RunOptions(progress=False))
    assert result.ok and result.stats["samples"] == 6 and result.stats["errors"] == 0
    assert verify_dataset(str(out)).ok
    samples = samples_of(out)
    assert sorted(samples) == [f"ocr-{lang}-s11-{i:09d}" for i in range(6)]
    sample = samples[f"ocr-{lang}-s11-000000004"]
    record = json.loads(sample["json"])
    image = Image.open(io.BytesIO(sample["jpg"]))
    assert record["family"] == "ocr" and record["lang"] == lang
    assert (record["image"]["width"], record["image"]["height"]) == image.size
    assert 720 <= min(image.size) <= 1024
    assert record["words"] and record["lines"]
    assert sample["txt"].decode().split() == " ".join(line["text"] for line in record["lines"]).split()
    assert record["provenance"]["seed"] == page_seed(11, 4)
    again = render_page(read_corpus([str(CORPORA / f"{lang}.txt")]), default_fonts(lang), page_seed(11, 4),
                        PageConfig(lang=lang))
    assert again.jpeg == sample["jpg"] and again.words == record["words"]
    assert "data:image/jpeg;base64," in (out / "report.html").read_text()


def test_corpus_errors_are_clear(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    with pytest.raises(CorpusError, match="empty.txt: empty"):
        read_corpus([str(empty)])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café crème".encode("latin-1"))
    with pytest.raises(CorpusError, match="latin1.txt: not UTF-8"):
        read_corpus([str(latin1)])
    broken = tmp_path / "lines.jsonl"
    broken.write_text('{"text": "fine"}\n{"title": "no text"}\n')
    with pytest.raises(CorpusError, match="lines.jsonl:2: expected a JSON object with a 'text' field"):
        read_corpus([str(broken)])
    with pytest.raises(CorpusError, match="nowhere.txt: no such file"):
        read_corpus([str(tmp_path / "nowhere.txt")])
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "first"}\n\n{"text": "second"}\n')
    assert read_corpus([str(good)]) == "first\n\nsecond"


def test_a_corpus_with_a_few_words_no_font_draws_is_accepted_and_one_no_font_draws_is_refused(tmp_path):
    # Like a Wikipedia dump: English with a place name in its own script near the start.
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("Tokyo (東京) is the capital of Japan. " + read_corpus([str(CORPORA / "en.txt")]))
    assert OcrJob("en", 3, [str(mixed)], default_fonts("en")).plan().tasks
    with pytest.raises(ValueError, match="DejaVuSans.ttf lacks"):
        OcrJob("zh", 3, [str(CORPORA / "zh.txt")], [DEJAVU]).plan()


def docforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_cli_refuses_an_empty_corpus_a_missing_font_and_fonts_without_the_glyphs(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = docforge("build", "ocr", "--count", "2", "--corpus", str(empty), "--output", str(tmp_path / "a"))
    assert result.returncode == 2 and "empty.txt: empty" in result.stderr
    result = docforge("build", "ocr", "--count", "2", "--fonts", str(tmp_path / "missing.ttf"),
                      "--output", str(tmp_path / "b"))
    assert result.returncode == 2 and "missing.ttf" in result.stderr
    result = docforge("build", "ocr", "--lang", "zh", "--count", "2", "--fonts", DEJAVU, "--output", str(tmp_path / "c"))
    assert result.returncode == 2 and "DejaVuSans.ttf" in result.stderr.replace("\n", "")
