"""synth.text_layout: corpus tokens from a seeded offset, and line breaking."""

from synth.text_layout import iter_tokens


def _texts(corpus, offset, lang, count=20):
    return [(t.text, t.space_before, t.new_paragraph) for _, t in zip(range(count), iter_tokens(corpus, offset, lang))]


def test_an_offset_inside_a_word_starts_at_the_next_word():
    corpus = "alpha beta gamma"
    assert [t for t, _, _ in _texts(corpus, 2, "en", 2)] == ["beta", "gamma"]
    assert [t for t, _, _ in _texts(corpus, 6, "en", 1)] == ["beta"]


def test_a_blank_line_starts_a_paragraph_and_a_single_line_break_does_not():
    tokens = _texts("one two\nthree\n\nfour", 0, "en", 4)
    assert [new for _, _, new in tokens] == [True, False, False, True]


def test_the_corpus_wraps_around_into_a_new_paragraph():
    tokens = _texts("one two", 4, "en", 3)
    assert tokens == [("two", False, True), ("one", False, True), ("two", True, False)]


def test_chinese_tokens_are_ideographs_and_whole_latin_runs():
    tokens = _texts("使用Python 3.11训练，\n模型", 0, "zh", 9)
    assert [t for t, _, _ in tokens] == ["使", "用", "Python", "3.11", "训", "练", "，", "模", "型"]
    spaces = dict((t, space) for t, space, _ in tokens)
    assert spaces["3.11"] is True and spaces["Python"] is False
    assert spaces["模"] is False  # a line break next to an ideograph is no space in Chinese


def test_an_offset_inside_a_latin_run_skips_it_and_invisible_characters_are_dropped():
    assert [t for t, _, _ in _texts("中文Python中\u200b文", 4, "zh", 2)] == ["中", "文"]


def test_a_corpus_with_nothing_drawable_yields_nothing():
    assert _texts(" \u200b \n\u00ad ", 1, "en") == []


def test_reading_a_chunk_at_a_time_gives_the_same_tokens_as_reading_all_at_once():
    corpus = ("Lines break only between words;\n\na paragraph ends at a blank line.\u200b Numbers: 3.14, 42 "
              "and 1,000,000. 中文按字断行，但英文单词如 Python 或者 3.11 不能被拆开。\n\n  下一段。") * 3
    for lang in ("en", "zh"):
        for offset in range(0, len(corpus), 7):
            whole = list(zip(range(60), iter_tokens(corpus, offset, lang)))
            for chunk in (24, 33):  # longer than any token, so none is cut
                assert list(zip(range(60), iter_tokens(corpus, offset, lang, chunk=chunk))) == whole
