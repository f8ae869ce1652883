"""synth.fonts: which face of a collection is used, and which characters a font really draws."""

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib.tables._c_m_a_p import cmap_format_4

from synth.fonts import font_face, is_symbol_font, missing_chars, sized_font, usable_fonts, visible_chars
from synth.errors import SynthError
from synth.text_page import render_page

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
SYMBOL = "/usr/share/fonts/opentype/urw-base35/StandardSymbolsPS.otf"  # its "a" is an alpha, its "T" a tau


def test_a_collection_uses_its_simplified_chinese_face():
    assert font_face(NOTO_CJK).name == "Noto Sans CJK SC Regular"
    assert font_face(WQY).index == 0


def test_tofu_is_detected_per_character():
    assert missing_chars(DEJAVU, visible_chars("abc 中文")) == ["中", "文"]
    assert missing_chars(NOTO_CJK, visible_chars("abc 中文，。")) == []


def test_usable_fonts_keeps_the_given_order_and_ignores_whitespace_and_control_characters():
    assert usable_fonts([WQY, DEJAVU, NOTO_CJK], "中文\n\t\u200b") == [WQY, NOTO_CJK]
    assert usable_fonts([DEJAVU, NOTO_CJK], "") == [DEJAVU, NOTO_CJK]


def test_pens_match_pil_lengths():
    font = sized_font(DEJAVU, 23)
    for text in ["AVATar WAVE", "office ffi", "Type 1 y."]:
        assert font.pens(text)[-1] == font.font.getlength(text)


def test_missing_font_file_names_it():
    with pytest.raises(SynthError, match="no-such-font.ttf"):
        usable_fonts(["/tmp/no-such-font.ttf"], "a")


def _pictogram_font(path) -> str:
    """A TrueType font like Wingdings: boxes for the letters (its .notdef a thinner one), reached only
    through a symbol-encoded (3, 0) character map (U+F061.. for "a"..), which FreeType also uses for the
    plain letters: rendering sees real glyphs, not tofu."""
    def box(width: int, height: int):
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, height))
        pen.lineTo((100 + width, height))
        pen.lineTo((100 + width, 0))
        pen.closePath()
        return pen.glyph()

    names = [".notdef"] + [f"pictogram{i}" for i in range(26)]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({})
    builder.setupGlyf({name: box(400, 600) if name != ".notdef" else box(100, 700) for name in names})
    builder.setupHorizontalMetrics({name: (600, 100) for name in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Pictograms", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    table = cmap_format_4(4)
    table.platformID, table.platEncID, table.language = 3, 0, 0
    table.cmap = {0xF061 + i: f"pictogram{i}" for i in range(26)}
    builder.font["cmap"].tables = [table]
    builder.save(str(path))
    return str(path)


def test_symbol_fonts_are_never_used_for_text(tmp_path):
    pictograms = _pictogram_font(tmp_path / "pictograms.ttf")
    text = "The quick brown fox, 42."
    for path in (SYMBOL, pictograms):
        assert is_symbol_font(font_face(path))
        assert missing_chars(path, visible_chars(text)) == sorted(visible_chars(text))
    assert usable_fonts([SYMBOL, pictograms, DEJAVU], text) == [DEJAVU]
    for seed in range(3):
        assert render_page(text, [SYMBOL, pictograms, DEJAVU], seed).meta["font"]["file"] == "DejaVuSans.ttf"
    for path in (DEJAVU, NOTO_CJK, WQY, "/usr/share/fonts/truetype/noto/NotoSansMath-Regular.ttf"):
        assert not is_symbol_font(font_face(path))


def test_right_to_left_and_shaped_scripts_are_missing_from_every_font():
    # DejaVu Sans has Arabic and Hebrew glyphs, but PIL's basic layout would set them unjoined and
    # left to right; Devanagari needs its vowel signs reordered. No font may draw them.
    assert DEJAVU in usable_fonts([DEJAVU], "Москва Ελλάδα café")
    for word in ("القاهرة", "שלום", "मुंबई"):
        assert missing_chars(DEJAVU, visible_chars(word)) == sorted(visible_chars(word))
    assert missing_chars(NOTO_CJK, visible_chars("한국어 中文 カタカナ")) == []
