"""Positional items are true of the page they ask about, and `docforge build positional` writes them as shards.

Pages are drawn here with PIL (words at known positions, boxes from the font's own bounds), then asked
about by `synth.positional`; every answer is checked against the boxes independently of how it was made.
"""

import argparse
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image, ImageDraw, ImageFont

from mixtures.tasks import IMAGE_PLACEHOLDER, render_conversation
from pipelines.positional import PositionalJob, add_positional_arguments, make_positional_job, page_seed
from pipelines.runner import RunOptions, run_job
from pipelines.shards import ShardWriter, build_index, write_index
from pipelines.storage import Folder
from pipelines.verify import verify_dataset
from synth.positional import COLOURS, KINDS, PositionalError, make_positional_samples, read_page

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil cedar dune ember fern "
         "grove heath iris jade kelp lotus moss nectar").split()
PAPER = (246, 244, 236)


def english_page(width: int = 900, height: int = 700, columns: int = 2, rows: int = 9, per_line: int = 4,
                 repeat: str = "total due") -> tuple[Image.Image, list[dict], list[dict]]:
    """A page of `columns` columns of lines, words drawn with PIL's font; `repeat` is written at the end
    of the first line of every column (a phrase that occurs more than once)."""
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=20)
    words, lines = [], []
    counter = 0
    column_width = width // columns
    for column in range(columns):
        y = 30
        for row in range(rows):
            texts = [f"{WORDS[(counter + i) % len(WORDS)]}{counter + i}" for i in range(per_line)]
            counter += per_line
            if row == 0:
                texts = texts[:2] + repeat.split()
            x = column * column_width + 25
            members = []
            for text in texts:
                box = draw.textbbox((x, y), text, font=font)
                draw.text((x, y), text, font=font, fill=(20, 20, 20))
                members.append(len(words))
                words.append({"text": text, "box": list(box), "line": len(lines),
                              "quad": [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]})
                x = box[2] + 9
            boxes = [words[m]["box"] for m in members]
            line_box = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
            lines.append({"text": " ".join(texts), "words": members, "box": line_box, "column": column, "paragraph": 0})
            y += 36 if row % 3 != 2 else 60
    return image, words, lines


def chinese_page(width: int = 640, height: int = 480) -> tuple[Image.Image, list[dict], list[dict]]:
    """A page of Chinese lines, one word per character (no spaces in the line text); each character's
    ink is a dark block inside its box."""
    text = "春眠不觉晓处处闻啼鸟夜来风雨声花落知多少床前明月光疑是地上霜举头望明月低头思故乡白日依山尽黄河入海流"
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    words, lines = [], []
    for row in range(8):
        chars = text[row * 6:(row + 1) * 6]
        members = []
        for i, char in enumerate(chars):
            box = [40 + i * 34, 40 + row * 50, 40 + i * 34 + 28, 40 + row * 50 + 30]
            draw.rectangle([box[0] + 4, box[1] + 4, box[2] - 4, box[3] - 4], fill=(30, 30, 30))
            members.append(len(words))
            words.append({"text": char, "box": box, "line": row})
        lines.append({"text": chars, "words": members})
    return image, words, lines


def normalised(box, width, height):
    x1, y1, x2, y2 = box
    return (x1 * 1000 / width, y1 * 1000 / height, x2 * 1000 / width, y2 * 1000 / height)


def inside(box, region) -> bool:
    return region[0] <= box[0] and region[1] <= box[1] and box[2] <= region[2] and box[3] <= region[3]


def overlaps(box, region) -> bool:
    return box[0] <= region[2] and region[0] <= box[2] and box[1] <= region[3] and region[1] <= box[3]


def expected_region_text(image, words, lines, region, joiner: str) -> str:
    """The words whose boxes fall inside `region`, line by line in reading order (checked independently)."""
    texts = []
    for line in lines:
        picked = [words[i]["text"] for i in line["words"]
                  if inside(normalised(words[i]["box"], *image.size), region)]
        if picked:
            texts.append(joiner.join(picked))
    return "\n".join(texts)


def items_of(image, words, lines, kinds, seed=0, count=40, questions=3):
    samples = make_positional_samples(image, words, lines, random.Random(seed), count, kinds, questions)
    return [s for s in samples if s is not None]


@pytest.mark.parametrize("page, joiner", [(english_page, " "), (chinese_page, "")], ids=["en", "zh"])
def test_region_text_is_exactly_the_words_whose_boxes_fall_inside_the_region(page, joiner):
    image, words, lines = page()
    items = [item for s in items_of(image, words, lines, ["region_to_text"]) for item in s.items]
    assert len(items) >= 60
    for item in items:
        region = item["region"]
        assert all(isinstance(v, int) and 0 <= v <= 1000 for v in region)
        boxes = [normalised(w["box"], *image.size) for w in words]
        assert not any(overlaps(b, region) and not inside(b, region) for b in boxes), "a word straddles the region"
        assert item["text"] == expected_region_text(image, words, lines, region, joiner)
    assert any("\n" in item["text"] for item in items), "no multi-line region was asked"
    assert any(item["text"] not in {line["text"] for line in lines} and "\n" not in item["text"] for item in items)


def phrase_words(words, lines, phrase: str, joiner: str = " ") -> list[dict]:
    for line in lines:
        members = [words[i] for i in line["words"]]
        for start in range(len(members)):
            for end in range(start + 1, len(members) + 1):
                if joiner.join(w["text"] for w in members[start:end]) == phrase:
                    return members[start:end]
    raise AssertionError(f"{phrase!r} is not a run of words on the page")


def test_text_to_region_box_holds_the_phrase_words_and_the_phrase_occurs_once():
    image, words, lines = english_page()
    items = [item for s in items_of(image, words, lines, ["text_to_region"]) for item in s.items]
    assert len(items) >= 60
    page_text = "\n".join(line["text"] for line in lines).casefold()
    for item in items:
        assert page_text.count(item["text"].casefold()) == 1
        boxes = [normalised(w["box"], *image.size) for w in phrase_words(words, lines, item["text"])]
        tight = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        region = item["region"]
        assert inside(tight, region)
        assert all(abs(r - t) <= 1 for r, t in zip(region, tight)), (region, tight)
    asked = {item["text"] for item in items}
    assert not asked & {"total", "due", "total due"}, "a phrase that occurs twice was asked"
    assert any("total" in text for text in asked), "the phrase was never asked with a word that makes it unique"


def test_point_lies_inside_its_line_box_and_no_other():
    image, words, lines = english_page()
    items = [item for s in items_of(image, words, lines, ["point_to_text"]) for item in s.items]
    assert len(items) >= 60
    for item in items:
        x, y = item["point"]
        holding = [line["text"] for line in lines
                   if inside((x, y, x, y), normalised(line["box"], *image.size))]
        assert holding == [item["text"]]


def test_colour_rectangles_change_only_their_outline_pixels_to_their_colour():
    image, words, lines = english_page()
    original = np.asarray(image).copy()
    samples = items_of(image, words, lines, ["colour_to_text"], count=20, questions=3)
    assert len(samples) == 20 and any(len(s.drawn) == 3 for s in samples)
    for sample in samples:
        drawn = np.asarray(sample.image)
        assert sample.image.size == image.size and np.array_equal(np.asarray(image), original)
        changed = (drawn != original).any(axis=2)
        outlines = np.zeros_like(changed)
        for box in sample.drawn:
            mask = changed & (drawn == COLOURS[box["colour"]]).all(axis=2)
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
            thickness = int(mask[(y1 + y2) // 2, x1:].argmin())
            assert thickness >= 2
            ring = np.zeros_like(mask)
            ring[y1:y2 + 1, x1:x2 + 1] = True
            ring[y1 + thickness:y2 + 1 - thickness, x1 + thickness:x2 + 1 - thickness] = False
            assert np.array_equal(mask, ring), f"the {box['colour']} outline is not a rectangle ring"
            width, height = image.size
            region = [box["region"][0] * width / 1000, box["region"][1] * height / 1000,
                      box["region"][2] * width / 1000, box["region"][3] * height / 1000]
            assert all(abs(e - r) <= 1 for e, r in zip((x1, y1, x2, y2), region)), ((x1, y1, x2, y2), region)
            outlines |= ring
        assert np.array_equal(changed, outlines), "pixels off the outlines changed"
        for word in words:
            x1, y1, x2, y2 = (int(v) for v in word["box"])
            assert not outlines[y1:y2, x1:x2].any(), f"an outline covers {word['text']!r}"
        for item in sample.items:
            assert {"colour": item["colour"], "region": item["region"]} in sample.drawn
            assert item["text"] == expected_region_text(image, words, lines, item["region"], " ")


def test_same_rng_state_gives_the_same_items_and_pixels_and_seeds_differ():
    image, words, lines = english_page()

    def run(seed):
        samples = make_positional_samples(image, words, lines, random.Random(seed), 12, KINDS, 2)
        return [(s.kind, s.items, s.drawn, s.image.tobytes() if s.image else None) for s in samples]

    assert run(5) == run(5)
    assert run(5) != run(6)
    assert {kind for kind, *_ in run(5) + run(6) + run(7)} == set(KINDS)


@pytest.mark.parametrize("words, lines, message", [
    ([], None, "'words' must be a non-empty list"),
    ([{"text": "a"}], [{"words": [0]}], "words[0] needs a 'box'"),
    ([{"text": "", "box": [0, 0, 5, 5]}], [{"words": [0]}], "words[0] needs a non-empty 'text'"),
    ([{"text": "a", "box": [5, 0, 1, 5]}], [{"words": [0]}], "x2 < x1"),
    ([{"text": "a", "box": [500, 500, 600, 600]}], [{"words": [0]}], "lies outside the 100x80 image"),
    ([{"text": "a", "box": [0, 0, 5, 5]}], [{"words": [1]}], "lines[0] needs 'words'"),
    ([{"text": "a", "box": [0, 0, 5, 5]}, {"text": "b", "box": [9, 0, 15, 5]}], [{"words": [0]}], "words [1] belong to no line"),
    ([{"text": "a", "box": [0, 0, 5, 5]}], [{"words": [0]}, {"words": [0]}], "words[0] belongs to lines[0] and lines[1]"),
    ([{"text": "a", "box": [0, 0, 5, 5]}], None, "words[0] has no 'line' index"),
])
def test_malformed_words_and_lines_are_named(words, lines, message):
    with pytest.raises(PositionalError) as info:
        read_page(100, 80, words, lines)
    assert message in str(info.value)


def test_lines_are_grouped_from_word_line_indices_when_the_record_has_none():
    words = [{"text": "b", "box": [30, 0, 40, 9], "line": 1}, {"text": "a", "box": [0, 0, 9, 9], "line": 0},
             {"text": "c", "box": [50, 0, 60, 9], "line": 1}]
    page = read_page(100, 80, words)
    assert [(line.text, line.words) for line in page.lines] == [("a", (1,)), ("b c", (0, 2))]


# --- the job, end to end on real shards and real Ray ---------------------------------------------------------


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def ocr_sample(key: str, image: Image.Image, words, lines, lang: str = "en") -> dict:
    return {"__key__": key, "jpg": jpeg(image), "txt": "\n".join(line["text"] for line in lines),
            "json": {"family": "ocr", "lang": lang, "source": "synthdog-test",
                     "image": {"width": image.width, "height": image.height}, "words": words, "lines": lines}}


def make_input_dataset(root: Path) -> Path:
    """Two shards of OCR pages: shard 0 holds two good pages, a page without words, one with a broken word
    box, one without a record and one without an image; shard 1 is cut short inside its third page."""
    en, zh = english_page(), chinese_page()
    folder = Folder(str(root))
    entries = []
    with ShardWriter(folder, 0) as writer:
        writer.write(ocr_sample("ocr-en-000", *en))
        writer.write(ocr_sample("ocr-zh-001", *zh, lang="zh"))
        writer.write({**ocr_sample("ocr-en-002", *en), "json": {"family": "ocr", "lang": "en", "words": []}})
        broken = [dict(w) for w in en[1]]
        del broken[3]["box"], broken[3]["quad"]
        writer.write(ocr_sample("ocr-en-003", en[0], broken, en[2]))
        writer.write({"__key__": "ocr-en-004", "jpg": jpeg(en[0]), "txt": "a page without a record"})
        writer.write({"__key__": "ocr-en-005", "txt": "words but no image", "json": ocr_sample("x", *en)["json"]})
    entries += [s.to_dict() for s in writer.shards]
    with ShardWriter(folder, 1) as writer:
        for i in range(3):
            writer.write(ocr_sample(f"ocr-en-1{i:02d}", *en))
    entries += [s.to_dict() for s in writer.shards]
    write_index(folder, build_index(entries, {"job": "test"}, {"complete": True, "missing_tasks": []}))
    shard = root / entries[1]["name"]
    shard.write_bytes(shard.read_bytes()[:int(shard.stat().st_size * 0.8)])
    return root


def read_dataset(out: Path) -> dict[str, dict]:
    index = json.loads((out / "index.json").read_text())
    return {s["__key__"]: s for s in wds.WebDataset([str(out / e["name"]) for e in index["shards"]],
                                                    shardshuffle=False, empty_check=False)}


def test_job_writes_positional_samples_for_pages_with_words_and_logs_bad_ones(ray_local, tmp_path):
    source = make_input_dataset(tmp_path / "ocr")
    options = RunOptions(progress=False, shard_max_count=4)
    out = tmp_path / "positional"
    job = PositionalJob([str(source)], per_page=3, questions=2, seed=11)
    result = run_job(job, str(out), options)
    assert result.ok and result.stats["tasks"]["total"] == 2
    samples = read_dataset(out)
    pages = sorted({s.rsplit("-", 1)[0] for s in samples})
    # shard 1 is cut inside its third page: that one and the page before the cut are dropped
    assert pages == ["positional-ocr-en-000", "positional-ocr-en-100", "positional-ocr-zh-001"]
    assert len(samples) == 9
    errors = sorted((e["input"].rsplit("/", 1)[-1], e["step"]) for e in
                    map(json.loads, (out / "errors.jsonl").read_text().splitlines()))
    assert errors == [("shard-000000-00.tar:ocr-en-003", "read words"), ("shard-000000-00.tar:ocr-en-004", "read record"),
                      ("shard-000000-00.tar:ocr-en-005", "read image"), ("shard-000001-00.tar", "read tar")]
    assert verify_dataset(str(out)).ok

    originals = {"ocr-en-000": english_page(), "ocr-zh-001": chinese_page()}
    kinds = set()
    for key, sample in samples.items():
        record = json.loads(sample["json"])
        input_key = record["provenance"]["key"]
        assert key.startswith(f"positional-{input_key}-")
        assert record["family"] == "positional" and record["source"] == "positional"
        assert record["lang"] == ("zh" if "zh" in input_key else "en")
        assert record["provenance"]["seed"] == 11 and record["provenance"]["input"].endswith(".tar")
        kind = record["positional"][0]["kind"]
        kinds.add(kind)
        assert all(item["kind"] == kind for item in record["positional"])
        image = Image.open(io.BytesIO(sample["jpg"]))
        assert image.size == (record["image"]["width"], record["image"]["height"])
        if kind == "colour_to_text":
            for box in record["drawn"]:  # the middle of the rectangle's left edge, through JPEG, is its colour
                x1, y1, _, y2 = (v * s // 1000 for v, s in zip(box["region"], image.size * 2))
                pixel = image.convert("RGB").getpixel((x1 + 1, (y1 + y2) // 2))
                assert int(np.argmax(pixel)) == int(np.argmax(COLOURS[box["colour"]])), (box, pixel)
        else:
            assert "drawn" not in record
        page = originals.get(input_key, originals["ocr-en-000"])
        for item in record["positional"]:
            if kind in ("region_to_text", "colour_to_text"):
                assert item["text"] == expected_region_text(*page, item["region"], "" if "zh" in input_key else " ")
        turns = render_conversation("positional", sample, random.Random(0))
        assert [t["role"] for t in turns] == ["user", "assistant"] * len(record["positional"])
        assert turns[0]["content"].startswith(IMAGE_PLACEHOLDER + "\n")
        for (question, answer), item in zip(zip(turns[::2], turns[1::2]), record["positional"]):
            if kind == "text_to_region":
                assert answer["content"] == "[{},{},{},{}]".format(*item["region"]) and item["text"] in question["content"]
            else:
                assert answer["content"] == item["text"]
    assert len(kinds) >= 2

    again = tmp_path / "positional-again"
    run_job(job, str(again), options)
    index, index_again = (json.loads((d / "index.json").read_text()) for d in (out, again))
    assert [s["sha256"] for s in index["shards"]] == [s["sha256"] for s in index_again["shards"]]


def test_page_seed_depends_on_the_job_seed_and_the_input_key():
    assert page_seed(0, "ocr-en-000") == page_seed(0, "ocr-en-000")
    assert len({page_seed(0, "ocr-en-000"), page_seed(1, "ocr-en-000"), page_seed(0, "ocr-en-001")}) == 3


def test_job_rejects_unknown_kinds_and_missing_inputs(tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        PositionalJob([str(tmp_path)], kinds=["colour"])
    with pytest.raises(FileNotFoundError, match="no index.json"):
        PositionalJob([str(tmp_path / "nowhere")]).plan()


def test_cli_arguments_make_the_job_the_flags_describe(tmp_path):
    parser = argparse.ArgumentParser()
    add_positional_arguments(parser)
    args = parser.parse_args(["--input", str(tmp_path / "a"), str(tmp_path / "b"), "--kinds", "point_to_text",
                              "text_to_region", "--per-page", "1", "--questions", "3", "--seed", "4"])
    assert make_positional_job(args).config() == {
        "inputs": [str(tmp_path / "a"), str(tmp_path / "b")], "source": "positional", "per_page": 1,
        "kinds": ["text_to_region", "point_to_text"], "questions": 3, "seed": 4}
    with pytest.raises(SystemExit):
        parser.parse_args(["--input", "x", "--kinds", "colour"])
