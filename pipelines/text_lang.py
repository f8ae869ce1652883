"""The language a text is in, as the records' `lang` says it: `zh` or `en` (doc2md pages, and per sample
where an ingested set mixes both, as AnyWord-3M does)."""

from __future__ import annotations

import re

CJK = "\u2e80-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af\U00020000-\U0002fa1f"  # CJK, kana, hangul
CJK_CHAR = re.compile(f"[{CJK}]")


def detect_lang(text: str) -> str:
    """`zh` when CJK characters are at least a fifth of the letters, else `en`."""
    letters = sum(ch.isalpha() for ch in text)
    return "zh" if letters and len(CJK_CHAR.findall(text)) >= letters / 5 else "en"
