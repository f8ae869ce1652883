"""synth.fonts: which face of a collection is used, and which characters a font really draws."""

import pytest

from synth.fonts import font_face, missing_chars, sized_font, usable_fonts, visible_chars
from synth.errors import SynthError

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


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
