"""doc2md step 5's help from the source: the running heads a paper declares (`\\markboth`, llncs's `\\titlerunning`,
jmlr's `\\ShortHeadings`, `\\title[short]{…}`, …), as plain text. The page split (`pages.read_pdf_pages`) removes
running heads that recur at the pages' edges; a short paper whose class alternates its heads (the short title on
odd pages, the authors on even ones) prints each only once or twice, so the split also removes an edge line of a
later page that reads as one of these.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.doc2md.unpack import document_class, strip_comments

# the commands whose arguments are running heads, and how many arguments each has
HEAD_COMMANDS = {"markboth": 2, "markright": 1, "titlerunning": 1, "authorrunning": 1, "ShortHeadings": 2,
                 "shorttitle": 1, "shortauthors": 1, "runningtitle": 1, "runningauthor": 1, "icmltitlerunning": 1,
                 "lefthead": 1, "righthead": 1}
HEAD_COMMAND = re.compile(r"\\(" + "|".join(HEAD_COMMANDS) + r")(?![A-Za-z@])\s*")
# `\renewcommand{\shortauthors}{…}` (acmart's way), and the short forms `\title[…]{…}` and `\author[…]{…}` give
SHORT_FORM = re.compile(r"\\(?:renewcommand\s*\{?\s*\\short(?:authors|title)\s*\}?|(?:title|author)\s*(?=\[))\s*")
COMMAND = re.compile(r"\\[A-Za-z@]+\*?|\\.")


def braced(text: str, start: int, opening: str = "{", closing: str = "}") -> tuple[str, int] | None:
    """The balanced group that opens at `text[start]` (after spaces): its content and the index after it; an
    escaped character (`\\{`, `\\\\`) counts for nothing."""
    while start < len(text) and text[start].isspace():
        start += 1
    if start >= len(text) or text[start] != opening:
        return None
    depth, index = 0, start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        depth += (text[index] == opening) - (text[index] == closing)
        if depth == 0:
            return text[start + 1:index], index + 1
        index += 1
    return None


def plain(tex: str) -> str:
    """A head's text as the PDF prints its words: commands dropped, their arguments kept."""
    return " ".join(COMMAND.sub(" ", tex).replace("~", " ").replace("{", " ").replace("}", " ").split())


def first_argument(text: str, command: str) -> str | None:
    """The plain text of `\\command{…}`'s first (braced) argument in `text`, None when it has none."""
    found = re.search(r"\\" + command + r"(?![A-Za-z@])\s*(?:\[[^\]]*\]\s*)?(?=\{)", text)
    group = braced(text, found.end()) if found else None
    return group[0] if group else None


def aa_heads(text: str, main: Path) -> list[str]:
    """A&A's (aa.cls) heads: "Authors: Title" on odd pages (`\\authorrunning`, else the authors as "A and B" or
    "A et al."; `\\titlerunning`, else the title) and "A&A proofs: manuscript no. <job name>" on even ones."""
    authors = first_argument(text, "authorrunning")
    if authors is None and (given := first_argument(text, "author")) is not None:
        names = [plain(re.sub(r"\\inst\s*\{[^{}]*\}|\\(?:thanks|fnmsep)\b(?:\s*\{[^{}]*\})?", "", name))
                 for name in re.split(r"\\and\b", given)]
        names = [name for name in names if name]
        authors = " and ".join(names) if len(names) <= 2 else f"{names[0]} et al." if names else None
    title = first_argument(text, "titlerunning") or first_argument(text, "title")
    heads = [f"A&A proofs: manuscript no. {main.stem}"]
    return heads + ([f"{plain(authors)}: {plain(title)}"] if authors and title else [])


def declared_running_heads(main: Path) -> list[str]:
    """The running heads `main` declares, as plain text, in the order given (and those its class composes)."""
    text = strip_comments(main.read_text("utf-8", errors="replace"))
    heads = aa_heads(text, main) if (document_class(text) or ("", ""))[1] == "aa" else []
    for match in HEAD_COMMAND.finditer(text):
        at = match.end()
        for _ in range(HEAD_COMMANDS[match.group(1)]):
            if (group := braced(text, at)) is None:
                break
            heads.append(plain(group[0]))
            at = group[1]
    for match in SHORT_FORM.finditer(text):
        opening = "[" if text[match.end():match.end() + 1] == "[" else "{"
        if group := braced(text, match.end(), opening, "]" if opening == "[" else "}"):
            heads.append(plain(group[0]))
    return [head for head in heads if head]
