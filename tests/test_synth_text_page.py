"""synth.text_page: seeded SynthDoG-style pages whose word and line boxes are where the ink is."""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from synth import fonts as font_cache
from synth.text_page import (GENERATOR, GENERATOR_VERSION, PageConfig, SynthError, render_page, render_word_ink,
                             usable_fonts)

# Fonts from the Debian packages `make install` puts in place (fonts-dejavu-core, fonts-noto-core,
# fonts-noto-cjk, fonts-wqy-microhei).
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LATIN = [DEJAVU, "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
         "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/noto/NotoSerif-Italic.ttf",
         "/usr/share/fonts/truetype/noto/NotoSans-BoldItalic.ttf"]
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CJK = [NOTO_CJK, "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"]

EN = """Every page in this corpus was written for the tests of a document renderer. It talks about paper,
ink and light, because those are the things a scanner sees before any model does.

A page begins as a blank sheet. The renderer picks a size between 720 and 1024 pixels on the short side,
chooses one font, and fills one to three columns with text taken from a random place in the corpus.
Lines break only between words; a paragraph ends at a blank line, and the next one may start with an indent.

Then the sheet is photographed, in a manner of speaking: it may lie on a wooden table, turn a few degrees,
lean back in perspective, or ripple slightly as if the paper were not quite flat. A shadow can fall across
it. The lens may blur the strokes; the sensor adds grain; the exposure is a little too bright or too dark.

None of that is allowed to move a box away from its word. Every corner is carried through the same map
that moves the pixels, so a model trained on these pages learns where text really is (and not where it
was before the warp). Numbers such as 3.14, 42 and 1,000,000 are words like any other.

The same seed always gives the same page: the same bytes of JPEG, the same words, the same boxes. That is
what lets a data job regenerate any single sample on its own, years later, for a bug report."""

ZH = """文档理解模型需要大量带有文字位置的图像来学习如何阅读。真实的扫描件往往缺少精确的标注，而人工标注既昂贵又缓慢，因此我们用程序合成页面：每一页都由语料中的一段文字、一种字体和一个随机种子决定。

合成的页面追求多样。纸张的颜色、阴影的方向、文字的大小和栏数都在一定范围内随机变化；有时整页铺满画面，有时文档放在桌面上，略微倾斜并带有透视。

中文按字断行，但英文单词如 Python、SynthDoG、OCR 或者 3.11 这样的数字不能被拆开。我们在 GPU 集群上训练 INF-MLLM2 模型，每个阶段使用不同的数据配比。

速度同样重要。一个训练阶段可能需要数百万页图像，因此渲染器逐行绘制文字，效果在整页上一次完成。所有的随机性都来自同一个种子，任何一页都可以单独重新生成。"""

FLAT = dict(full_page=1.0, elastic=0.0)  # effects on, but the document is the page: no resampling
WARPED = dict(full_page=0.0, tilt=1.0, elastic=1.0, font_size=(0.05, 0.08))  # perspective + elastic, big glyphs


def _ink_bounds(ink: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(ink > threshold)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _targets(page) -> str:
    return json.dumps({"text": page.text, "words": page.words, "lines": page.lines, "meta": page.meta}, sort_keys=True)


def test_fonts_used_by_these_tests_are_installed():
    missing = [path for path in LATIN + CJK if not os.path.exists(path)]
    assert not missing, f"run `make install` (Debian font packages): {missing}"


@pytest.mark.parametrize("lang, corpus, fonts", [("en", EN, LATIN), ("zh", ZH, CJK)])
def test_same_seed_gives_the_same_jpeg_bytes_and_targets_even_with_cold_caches(lang, corpus, fonts):
    first = render_page(corpus, fonts, 7, PageConfig(lang=lang))
    font_cache.sized_font.cache_clear()  # glyph measures are remade from scratch
    font_cache.font_face.cache_clear()
    again = render_page(corpus, fonts, 7, PageConfig(lang=lang))
    assert first.jpeg == again.jpeg
    assert _targets(first) == _targets(again)
    assert first.image.tobytes() == again.image.tobytes()


def test_different_seeds_give_different_pages():
    pages = [render_page(EN, LATIN, seed) for seed in (1, 2, 3)]
    assert len({page.jpeg for page in pages}) == 3
    assert len({page.text for page in pages}) == 3


def test_page_image_jpeg_and_meta_agree():
    page = render_page(EN, LATIN, 11)
    decoded = Image.open(__import__("io").BytesIO(page.jpeg))
    assert decoded.format == "JPEG" and decoded.size == page.image.size == tuple(page.meta["size"])
    assert page.image.mode == "RGB"
    assert min(page.image.size) in range(720, 1025) and 1.0 <= max(page.image.size) / min(page.image.size) <= 1.6 + 1e-2
    meta = json.loads(json.dumps(page.meta))  # plain JSON
    assert (meta["generator"], meta["version"], meta["seed"], meta["lang"]) == (GENERATOR, GENERATOR_VERSION, 11, "en")
    assert meta["font"]["file"] in {os.path.basename(path) for path in LATIN}
    assert 50 <= meta["jpeg_quality"] <= 95
    assert meta["font"]["size_px"] == round(meta["font"]["size_px"])


@pytest.mark.parametrize("lang, corpus, fonts", [("en", EN, LATIN), ("zh", ZH, CJK)])
def test_word_boxes_are_exactly_the_ink_bounds_on_flat_pages(lang, corpus, fonts):
    justified = 0
    for seed, font in enumerate(fonts):  # every font: kerned ones place glyphs at fractional pens
        page = render_page(corpus, [font], seed, PageConfig(lang=lang, **FLAT))
        assert page.meta["document"]["geometry"]["kind"] == "translation"
        justified += sum(len(line.runs) > 1 for line in page.trace.lines)
        for index, word in enumerate(page.words):
            ink = np.asarray(render_word_ink(page, index))
            assert tuple(word["box"]) == _ink_bounds(ink, 0), (seed, word)
            x0, y0, x1, y1 = word["box"]
            assert word["quad"] == [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    if lang == "en":
        assert justified, "no justified line was drawn: pick seeds that cover word-by-word runs"


@pytest.mark.parametrize("lang, corpus, fonts, seed", [("en", EN, LATIN, 3), ("zh", ZH, CJK, 5), ("en", EN, LATIN, 8)])
def test_word_boxes_follow_the_ink_through_perspective_and_elastic_warps(lang, corpus, fonts, seed):
    page = render_page(corpus, fonts, seed, PageConfig(lang=lang, **WARPED))
    assert {"perspective", "elastic"} <= page.meta["effects"].keys()
    ious = []
    for index, word in enumerate(page.words):
        ink = np.asarray(render_word_ink(page, index))
        box = word["box"]
        visible = _ink_bounds(ink, 32)
        assert box[0] <= visible[0] and box[1] <= visible[1] and box[2] >= visible[2] and box[3] >= visible[3], word
        # Resampling blurs edges by up to a pixel: each side is within 1 px of the ink's.
        bounds = _ink_bounds(ink, 0.5)
        assert max(abs(a - b) for a, b in zip(box, bounds)) <= 1, (word, bounds)
        ious.append(_iou(box, bounds))
        if min(box[2] - box[0], box[3] - box[1]) >= 40:
            assert ious[-1] >= 0.95, (word, bounds)
        quad = np.array(word["quad"])
        # The box lies in the quad's hull, give or take the rounding out to whole pixels and the bow of the
        # warped box's edges (elastic waves) away from the quad's straight edges: a fraction of a pixel.
        assert quad[:, 0].min() - 1.25 <= box[0] and box[2] <= quad[:, 0].max() + 1.25
        assert quad[:, 1].min() - 1.25 <= box[1] and box[3] <= quad[:, 1].max() + 1.25
    assert np.mean(ious) >= 0.97


def test_line_boxes_enclose_their_words():
    page = render_page(EN, LATIN, 4, PageConfig(**WARPED))
    for line in page.lines:
        boxes = np.array([page.words[i]["box"] for i in line["words"]])
        assert line["box"] == [*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]
        assert line["text"].split() == [page.words[i]["text"] for i in line["words"]]


def _corpus_text(corpus: str, spans, joiner: str) -> str:
    return joiner.join(joiner.join(corpus[start:end].split()) for start, end in spans)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_text_reads_the_corpus_in_order_column_by_column(seed):
    page = render_page(EN, LATIN, seed)
    assert page.text == "\n".join(line["text"] for line in page.lines)
    assert " ".join(word["text"] for word in page.words) == _corpus_text(EN, page.meta["corpus_spans"], " ")
    columns = [line["column"] for line in page.lines]
    assert columns == sorted(columns)
    paragraphs = [line["paragraph"] for line in page.lines]
    assert paragraphs == sorted(paragraphs) and paragraphs[0] == 0
    flat = render_page(EN, LATIN, seed, PageConfig(**FLAT))
    for before, after in zip(flat.lines, flat.lines[1:]):
        if before["column"] == after["column"]:
            assert before["box"][1] < after["box"][1]  # top to bottom inside a column


def test_chinese_breaks_lines_per_character_and_never_inside_latin_words():
    latin = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9.\-]*", ZH))
    config = PageConfig(lang="zh", columns=(3, 3), font_size=(0.03, 0.04))
    line_breaks_next_to_latin = 0
    for seed in range(6):
        page = render_page(ZH, CJK, seed, config)
        assert "".join(word["text"] for word in page.words) == _corpus_text(ZH, page.meta["corpus_spans"], "")
        for word in page.words:
            text = word["text"]
            assert (len(text) == 1 and ord(text) > 0x2E80) or text in latin, f"{text!r}: not one ideograph or Latin token"
        for line in page.lines:
            first, last = page.words[line["words"][0]]["text"], page.words[line["words"][-1]]["text"]
            assert first not in "，。、；：？！）」』”’》", line["text"]  # kinsoku: no closing mark starts a line
            line_breaks_next_to_latin += first in latin or last in latin
    assert line_breaks_next_to_latin  # lines did end or start at Latin words, whole


def test_effects_off_gives_a_flat_clean_page():
    page = render_page(EN, LATIN, 5, PageConfig(effects=False))
    assert page.meta["effects"] == {}
    assert page.meta["document"]["placed"] is False
    assert page.meta["document"]["geometry"] == {"kind": "translation", "offset": [0, 0]}


def test_backgrounds_given_by_the_user_show_around_placed_documents():
    stripes = Image.new("RGB", (400, 300), (200, 30, 30))
    for seed in range(20):
        page = render_page(EN, LATIN, seed, PageConfig(full_page=0.0), backgrounds=[stripes])
        if (page.meta["document"]["backdrop"] or {}).get("kind") == "image":
            corner = np.asarray(page.image)[:4, :4].reshape(-1, 3).mean(axis=0)
            assert corner[0] > corner[1] + 60  # the red background, not paper
            return
    pytest.fail("no page used the given background image in 20 seeds")


def test_a_font_without_the_glyphs_is_skipped():
    assert usable_fonts([DEJAVU, *CJK], ZH) == CJK
    assert usable_fonts([DEJAVU], "plain ASCII text, and café") == [DEJAVU]
    for seed in range(3):
        page = render_page(ZH, [DEJAVU, NOTO_CJK], seed, PageConfig(lang="zh"))
        assert page.meta["font"]["file"] == "NotoSansCJK-Regular.ttc"


# EN with a word no Latin font draws after every paragraph: real corpora (Wikipedia dumps) carry
# place names in their own scripts, symbols and emoji.
FOREIGN = ("(東京)", "🙂", "(दिल्ली)")
MIXED = "\n\n".join(f"{paragraph} {FOREIGN[k % 3]} and more" for k, paragraph in enumerate(EN.split("\n\n")))


def test_words_no_font_draws_are_left_out_of_the_page_and_counted():
    skipped = 0
    for seed in range(6):
        page = render_page(MIXED, LATIN, seed)
        layout = page.meta["layout"]
        words = " ".join(word["text"] for word in page.words)
        assert not set("東京🙂दिल्ली") & set(page.text)
        shown = _corpus_text(MIXED, page.meta["corpus_spans"], " ").split(" ")
        left_out = [word for word in shown if word in FOREIGN]
        assert words == " ".join(word for word in shown if word not in FOREIGN)  # the rest in corpus order
        assert layout["skipped_words"] == len(left_out)
        assert set(layout["skipped_chars"]) == set("".join(left_out)) - set("()")
        skipped += len(left_out)
    assert skipped >= 6


def test_a_font_that_draws_every_word_is_preferred_to_leaving_words_out():
    corpus = MIXED.replace("🙂", "東京").replace("(दिल्ली)", "東京")  # all Noto CJK draws, DejaVu not
    for seed in range(4):
        page = render_page(corpus, [DEJAVU, NOTO_CJK], seed)
        assert page.meta["font"]["file"] == "NotoSansCJK-Regular.ttc"
        assert page.meta["layout"]["skipped_words"] == 0


def test_only_fonts_without_the_glyphs_is_a_clear_error():
    with pytest.raises(SynthError, match=r"no font can draw this text: DejaVuSans\.ttf lacks '.'"):
        render_page(ZH, [DEJAVU], 0, PageConfig(lang="zh"))


def test_missing_or_unreadable_font_file_is_a_clear_error(tmp_path):
    with pytest.raises(SynthError, match="does-not-exist.ttf.*does not exist"):
        render_page(EN, [str(tmp_path / "does-not-exist.ttf"), DEJAVU], 0)
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(SynthError, match="bogus.ttf.*cannot be read as a font"):
        usable_fonts([str(bogus)], "abc")


@pytest.mark.parametrize("corpus", ["", "   \n\t  ", "\u200b\u200b \u00ad"])
def test_empty_corpus_is_a_clear_error(corpus):
    with pytest.raises(SynthError, match="corpus"):
        render_page(corpus, LATIN, 0)


def test_bad_config_is_a_clear_error():
    with pytest.raises(SynthError, match="lang 'fr'"):
        render_page(EN, LATIN, 0, PageConfig(lang="fr"))
    with pytest.raises(SynthError, match="font_size"):
        render_page(EN, LATIN, 0, PageConfig(font_size=(0.05, 0.01)))
