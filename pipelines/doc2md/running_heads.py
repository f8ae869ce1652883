"""doc2md step 5's help from the source: the running heads a paper declares (`\\markboth`, llncs's `\\titlerunning`,
jmlr's `\\ShortHeadings`, `\\title[short]{…}`, …), as plain text. The page split (`pages.read_pdf_pages`) removes
running heads that recur at the pages' edges; a short paper whose class alternates its heads (the short title on
odd pages, the authors on even ones) prints each only once or twice, so the split also removes an edge line of a
later page that reads as one of these.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.doc2md.unpack import strip_comments

# the commands whose arguments are running heads, and how many arguments each has
HEAD_COMMANDS = {"markboth": 2, "markright": 1, "titlerunning": 1, "authorrunning": 1, "ShortHeadings": 2,
                 "shorttitle": 1, "shortauthors": 1, "runningtitle": 1, "runningauthor": 1, "icmltitlerunning": 1,
                 "lefthead": 1, "righthead": 1}
HEAD_COMMAND = re.compile(r"\\(" + "|".join(HEAD_COMMANDS) + r")(?![A-Za-z@])\s*")
# `\renewcommand{\shortauthors}{…}` (acmart's way), and the short forms `\title[…]{…}` and `\author[…]{…}` give
SHORT_FORM = re.compile(r"\\(?:renewcommand\s*\{?\s*\\short(?:authors|title)\s*\}?|(?:title|author)\s*(?=\[))\s*")
COMMAND = re.compile(r"\\[A-Za-z@]+\*?|\\.")


def braced(text: str, start: int, opening: str = "{", closing: str = "}") -> tuple[str, int] | None:
    """The balanced group that opens at `text[start]` (after spaces): its content and the index after it."""
    while start < len(text) and text[start].isspace():
        start += 1
    if start >= len(text) or text[start] != opening:
        return None
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "\\":
            continue
        if text[index] == opening and (index == start or text[index - 1] != "\\"):
            depth += 1
        elif text[index] == closing and text[index - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1:index], index + 1
    return None


def plain(tex: str) -> str:
    """A head's text as the PDF prints its words: commands dropped, their arguments kept."""
    return " ".join(COMMAND.sub(" ", tex).replace("~", " ").replace("{", " ").replace("}", " ").split())


def declared_running_heads(main: Path) -> list[str]:
    """The running heads `main` declares, as plain text, in the order given."""
    text = strip_comments(main.read_text("utf-8", errors="replace"))
    heads = []
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
