"""doc2md step 4, the writer: `MarkdownWriter` walks LaTeXML's HTML5 and writes Nougat's markdown.

Headings `#` (title) to `######` with section numbers kept as text, paragraphs split by blank lines, math
in `\\( … \\)` / `\\[ … \\]` (`markdown_math`), `**bold**`, `_italic_`, lists (`*`, `1.`, two spaces per
level), footnotes as `Footnote N: …` paragraphs after the paragraph that cites them, numeric citations as
printed (`[1, 2]`, `CitationForm`), references as a `* [1] …` list, algorithms and verbatim in fenced blocks,
figures as their caption text, tables as LaTeX `tabular` (`markdown_tables`; `tables="html"` for HTML), the
authors and their contacts under the title. LaTeXML's error nodes are dropped; a reference or citation LaTeXML
could not resolve becomes `[??]`. Classes that print their front matter otherwise extend it (`class_writers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dataclasses import dataclass

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from pipelines.doc2md.markdown_math import display_math, inline_math, is_math
from pipelines.doc2md.markdown_tables import TABLE_START, is_tabular, tabular_html, tabular_latex

UNRESOLVED = "[??]"
FOOTNOTE_START = r"Footnote\b"
HEADING_LEVELS = {"ltx_title_document": 1, "ltx_title_section": 2, "ltx_title_bibliography": 2,
                  "ltx_title_appendix": 2, "ltx_title_subsection": 3, "ltx_title_subsubsection": 4,
                  "ltx_title_paragraph": 5, "ltx_title_subparagraph": 6, "ltx_title_abstract": 6}
RUN_IN_TITLES = {"ltx_title_theorem", "ltx_title_proof", "ltx_title_definition"}
DROPPED = {"ltx_ERROR", "ltx_page_footer", "ltx_page_header", "ltx_pagination", "ltx_page_logo", "ltx_rule",
           "ltx_bib_cited"}
BOLD = {"ltx_font_bold"}
ITALIC = {"ltx_font_italic", "ltx_font_slanted"}
SUPERSCRIPTS = str.maketrans("0123456789abcdefghijklmnoprstuvwxyz", "⁰¹²³⁴⁵⁶⁷⁸⁹ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ")
# the publisher classes' author contacts, printed under the names (an ORCID, a homepage are not written)
CONTACT_ROLES = {"ltx_role_affiliation", "ltx_role_address", "ltx_role_email", "ltx_role_institute"}
AUTHOR_MARKS = re.compile(r"[\d,\s]*")  # llncs's \inst marks, which LaTeXML leaves in the notes as bare digits: "1122"
LINE_BREAK = "\u2028"  # a contact's <br> while its text is read: the source's own line ends are spaces
# class metadata LaTeXML keeps as front-matter notes; the PDF prints it in margins, footers or not at all
METADATA_NOTES = {"ltx_role_" + role for role in (
    "copyright", "copyrightholder", "journal", "journalyear", "journalvolume", "journalnumber", "volume", "issue",
    "pubyear", "pagerange", "price", "doi", "isbn", "conference", "booktitle", "proceeding", "ccs", "article",
    "articleseq", "articletype", "submissionid", "publicationid", "publicationmonth", "microfiche")}
ACM_NOTE_PREFIX = "ltx_role_acm_"  # the facts docforge's acmart binding keeps (`acm_front_matter`)
FRONT_NOTES = {"ltx_role_thanks", "ltx_role_institutetext"}  # notes of the authors that LaTeXML may put before them
CONTACT_NOTES = {"ltx_role_institutetext", "ltx_role_email"}  # llncs's \institute{… \email{…}} lines
NOTE_LABELS = {"ltx_note_mark", "ltx_tag_note", "ltx_note_type"}  # a note's mark, number, "thanks: "
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{CJK}])[ \t\n]+(?=[{CJK}])")
WHITESPACE = re.compile(r"\s+")
PRINTED_LABEL = re.compile(r"^(?:\[[^\]]*\]|\(?\d+[.)]?)$")  # "[1]", "[Hay02]", "1.": labels the PDF prints
TABLE_FORMATS = ("latex", "html")
EXPLICIT_LABEL = re.compile(r"\.ix\d+$")  # the id LaTeXML gives an item whose label the source gives (`\item[…]`)
NUMERIC_CITATION = re.compile(r"^\[(\d+(?:,\s*\d+)*)\]$")


@dataclass(frozen=True)
class CitationForm:
    """How the paper's LaTeX prints a numeric citation of several works (`pipelines.doc2md.compile.
    citation_form`): sorted, and with runs of three or more consecutive numbers as a range (`cite`, natbib's
    `sort&compress`: [1–4, 7]). LaTeXML writes every number, in the order cited."""

    sort: bool = False
    compress: bool = False

    def __call__(self, text: str) -> str:
        found = NUMERIC_CITATION.match(text)
        if not found or not (self.sort or self.compress):
            return text
        numbers = [int(n) for n in found.group(1).split(",")]
        if self.sort:
            numbers = sorted(dict.fromkeys(numbers))
        runs: list[list[int]] = []
        for number in numbers:
            if self.compress and runs and number == runs[-1][-1] + 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        parts = [f"{run[0]}–{run[-1]}" if len(run) >= 3 else ", ".join(map(str, run)) for run in runs]
        return "[" + ", ".join(parts) + "]"


def classes(node: Tag) -> set[str]:
    return set(node.get("class") or [])


def squeeze(text: str) -> str:
    """One line of text: whitespace runs become one space, none between two CJK characters."""
    return WHITESPACE.sub(" ", SPACE_BETWEEN_CJK.sub("", text.replace("\xa0", " "))).strip()


def wrap(text: str, marker: str) -> str:
    """`**x**`/`_x_` around the text, keeping its surrounding spaces outside the markers (as Nougat does)."""
    stripped = text.strip()
    if not stripped:
        return text
    lead = text[:len(text) - len(text.lstrip())]
    tail = text[len(text.rstrip()):]
    return f"{lead}{marker}{stripped}{marker}{tail}"


def is_metadata(names: set[str]) -> bool:
    """Whether a front-matter note's classes make it class metadata (LaTeXML's, or docforge's acmart facts)."""
    return bool(names & METADATA_NOTES) or any(name.startswith(ACM_NOTE_PREFIX) for name in names)


def document_root(soup: BeautifulSoup) -> Tag:
    return soup.find("article", class_="ltx_document") or soup.body or soup


class MarkdownWriter:
    """Walks one LaTeXML document; `blocks` are the markdown paragraphs in reading order."""

    def __init__(self, tables: str, citations: CitationForm = CitationForm()):
        if tables not in TABLE_FORMATS:
            raise ValueError(f"tables must be one of {', '.join(TABLE_FORMATS)}, not {tables!r}")
        self.tables = tables
        self.citations = citations
        self.blocks: list[str] = []
        self.pending: list[str] = []
        self.in_code = False

    # -- blocks ---------------------------------------------------------------------------------------

    def emit(self, block: str) -> None:
        """Add a block, then the footnotes and inline tables its text collected."""
        if block.strip():
            self.blocks.append(block.strip("\n"))
        self.blocks.extend(self.pending)
        self.pending = []

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                if child.strip():
                    self.emit(squeeze(str(child)))
                continue
            if isinstance(child, Tag):
                self.block(child)

    def block(self, node: Tag) -> None:
        names = classes(node)
        if names & DROPPED:
            return
        if node.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.heading(node)
        elif node.name == "p":
            self.emit(squeeze(self.inline(node)))
        elif "ltx_authors" in names:
            self.authors(node)
        elif "ltx_dates" in names:
            self.emit(self.dates(node))
        elif "ltx_TOC" in names:
            self.table_of_contents(node)
        elif node.name in ("ul", "ol") and "ltx_biblist" not in names:
            self.emit(self.list_text(node, 0))
        elif node.name == "dl":
            self.emit(self.description_text(node, 0))
        elif "ltx_biblist" in names:
            self.emit(self.references_text(node))
        elif node.name == "table" and names & {"ltx_equation", "ltx_equationgroup"}:
            self.emit(display_math(node))
        elif is_tabular(node):
            self.emit(self.table_text(node))
        elif node.name == "figure" and "ltx_table" in names:
            self.table_float(node)
        elif node.name == "figure" and "ltx_figure" in names:  # its caption and its panels' "(a) …": one block, a line each
            self.emit("\n".join(text for caption in node.find_all("figcaption") if (text := squeeze(self.inline(caption)))))
        elif "ltx_listing" in names or node.name == "pre":
            self.emit(self.fenced(node))
        elif node.name == "figcaption":
            self.emit(squeeze(self.inline(node)))
        elif names & {"ltx_theorem", "ltx_proof"}:
            self.run_in(node)
        elif node.name in ("span", "a", "b", "i", "em", "strong", "cite", "sup", "sub") or "ltx_Math" in names:
            self.emit(squeeze(self.inline(node)))
        else:
            self.walk(node)

    def dates(self, node: Tag) -> str:
        """The title block's date as the classes print it: LaTeXML's HTML wraps it in parentheses ("(March 3, 2021)",
        "(Accepted XXX. Received YYY)") that article's, report's and MNRAS's `\\maketitle` do not print."""
        text = squeeze(self.inline(node))
        return text[1:-1].strip() if text.startswith("(") and text.endswith(")") else text

    def table_of_contents(self, node: Tag) -> None:
        """`\\tableofcontents` (printed on page 1 by jheppub): its heading, then a line per entry ("2.1 The soft-wall
        background"), nested entries in order; the PDF's page numbers are not in the HTML (nor counted as words)."""
        for title in node.find_all(class_="ltx_title", recursive=False):
            self.block(title)
        entries = [squeeze(self.inline(ref)) for entry in node.find_all("li", class_="ltx_tocentry")
                   if (ref := entry.find("a", class_="ltx_ref", recursive=False)) is not None]
        self.emit("\n".join(entry for entry in entries if entry))

    def table_float(self, node: Tag) -> None:
        """A table float's blocks; the notes under its last tabular (threeparttable's `tablenotes`, a "Source: …"
        line) join that tabular's block, a line each, so they move with it to the page the PDF prints it on."""
        start = len(self.blocks)
        self.walk(node)
        tables = [index for index in range(start, len(self.blocks)) if re.match(TABLE_START, self.blocks[index])]
        if not tables:
            return
        captions = {squeeze(self.inline(caption)) for caption in node.find_all("figcaption")}
        after = self.blocks[tables[-1] + 1:]
        notes = [block for block in after if block not in captions and not re.match(FOOTNOTE_START, block)]
        if notes:
            self.blocks[tables[-1] + 1:] = [block for block in after if block not in notes]
            self.blocks[tables[-1]] += "\n" + "\n".join(notes)

    def heading(self, node: Tag) -> None:
        names = classes(node)
        level = next((HEADING_LEVELS[name] for name in names if name in HEADING_LEVELS), int(node.name[1]))
        text = squeeze(self.inline(node))
        if text:
            self.emit("#" * level + " " + text)

    def authors(self, node: Tag) -> None:
        """The authors' names on one line. Under it, as the publisher classes print them, a paragraph per author
        of their affiliations, addresses and e-mails, one a line (each once: revtex lists a shared affiliation
        once), then llncs's `\\institute` lines (LaTeXML leaves them before the title). Then each `\\thanks`
        as a `Footnote: …` paragraph. ORCIDs and llncs's `\\inst` marks are not written."""
        self.emit(self.author_names(node))
        written: set[str] = set()
        footnotes = []
        for notes in node.find_all(class_="ltx_author_notes"):
            lines, thanks = [], []
            for child in notes.children:
                roles = classes(child) if isinstance(child, Tag) else set()
                line = self.contact_line(child, roles)
                if line is not None:
                    if line and line not in written:
                        written.add(line)
                        lines.append(line)
                elif "ltx_contact" not in roles or "ltx_role_thanks" in roles:
                    thanks.append(self.inline(child))
            self.author_contacts(lines, notes)
            text = squeeze("".join(thanks))
            if not AUTHOR_MARKS.fullmatch(text):
                footnotes.append(f"Footnote: {text}")
        for note in reversed(node.find_all_previous(class_=lambda name: name in FRONT_NOTES)):
            content = note.find(class_="ltx_note_content")
            if content is not None and note.find_parent(class_="ltx_note") is None:
                self.front_note(note, content)
        self.emit("")
        self.blocks.extend(footnotes)

    def author_names(self, node: Tag) -> str:
        """The authors' names on one line; authors given with their affiliations in `\\author{Name \\\\ Place}`
        (NeurIPS, ICLR, ACL) as the PDF sets them: a block per author, a line each."""
        persons = [self.person_lines(person) for person in node.find_all(class_="ltx_personname")]
        if any(len(lines) > 1 for lines in persons):
            return "\n\n".join("\n".join(lines) for lines in persons if lines)
        return ", ".join(lines[0] for lines in persons if lines)

    def names(self, node: Tag) -> list[str]:
        return [next(iter(self.person_lines(person)), "") for person in node.find_all(class_="ltx_personname")]

    def person_lines(self, person: Tag) -> list[str]:
        """An author's lines, as `\\\\` breaks them: the name, then what the paper puts under it."""
        lines: list[list[str]] = [[]]
        for child in person.children:
            if isinstance(child, Tag) and child.name == "br":
                lines.append([])
            else:
                lines[-1].append(self.inline(child))
        return [text for parts in lines if (text := squeeze("".join(parts)))]

    def contact_line(self, node: Tag | NavigableString, roles: set[str]) -> str | None:
        """A child of an author's notes as a contact line, or None when it is not a contact."""
        return self.contact_text(node) if roles & CONTACT_ROLES else None

    def creator_name(self, notes: Tag) -> str:
        """The name of the author whose contacts `notes` are."""
        creator = notes.find_parent(class_="ltx_creator")
        person = creator.find(class_="ltx_personname") if creator is not None else None
        return squeeze(self.inline(person)) if person is not None else ""

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        """One author's contact lines (from their `notes`), under the names."""
        self.emit("\n".join(lines))

    def finish(self) -> None:
        """Called after the document: what a class prints after everything (none here)."""

    def contact_text(self, node: Tag) -> str:
        """An author's contact as the PDF prints it: its lines (LaTeXML's `<br>`s), or an address given in
        parts (acmart's `\\institution`, `\\city`, `\\country`) joined by ", "."""
        parts = node.find_all(class_=lambda name: bool(name) and name.startswith("ltx_affiliation_"))
        if parts:
            return ", ".join(text for part in parts if (text := squeeze(self.inline(part))))
        copy = next(BeautifulSoup(str(node), "html.parser").children)
        for label in copy.find_all(class_=lambda name: name in NOTE_LABELS, recursive=False):
            label.decompose()
        for br in copy.find_all("br"):
            br.replace_with(LINE_BREAK)
        lines = "".join(self.inline(child) for child in copy.children).split(LINE_BREAK)  # not the source's line ends
        return "\n".join(line for line in map(squeeze, lines) if line)

    def item_text(self, item: Tag, level: int) -> str:
        """An item's own paragraphs on one line, then its nested lists on the lines below."""
        words: list[str] = []
        nested: list[str] = []
        for node in self.item_parts(item):
            if node.name in ("ul", "ol"):
                nested.append(self.list_text(node, level + 1))
            elif node.name == "dl":
                nested.append(self.description_text(node, level + 1))
            elif node.name == "table" and classes(node) & {"ltx_equation", "ltx_equationgroup"}:
                words.append(display_math(node))
            elif is_tabular(node):
                self.pending.append(self.table_text(node))
            else:
                words.append(self.inline(node))
        line = squeeze(" ".join(words))
        return "\n".join([line] + nested)

    def item_parts(self, item: Tag) -> Iterator[Tag]:
        """The blocks of a list item, paragraphs' containers opened, the item's own label skipped."""
        for child in item.children:
            if not isinstance(child, Tag) or "ltx_tag_item" in classes(child) or classes(child) & DROPPED:
                continue
            if "ltx_para" in classes(child) or child.name == "div":
                yield from (part for part in child.children if isinstance(part, Tag))
            else:
                yield child

    def list_text(self, node: Tag, level: int) -> str:
        indent = "  " * level
        ordered = node.name == "ol"
        lines = []
        for number, item in enumerate(node.find_all("li", recursive=False), 1):
            label = item.find(class_="ltx_tag_item", recursive=False)
            label_text = squeeze(label.get_text()) if label is not None else ""
            text = self.item_text(item, level)
            if ordered:  # `\item[]` (LaTeXML's "ix" items) prints no label
                bullet = label_text or ("*" if EXPLICIT_LABEL.search(item.get("id", "")) else f"{number}.")
            else:  # an itemize's own label (`\item[a]`, `\item[(i)]`) is printed; its bullet symbols are not words
                bullet = "*"
                if any(char.isalnum() for char in label_text):
                    text = f"{label_text} {text}"
            lines.append(f"{indent}{bullet} {text}")
        return "\n".join(lines)

    def description_text(self, node: Tag, level: int) -> str:
        indent = "  " * level
        lines = []
        for term in node.find_all("dt", recursive=False):
            definition = term.find_next_sibling("dd")
            label = squeeze(term.get_text())
            text = self.item_text(definition, level) if definition is not None else ""
            lines.append(f"{indent}* **{label}** {text}".rstrip())
        return "\n".join(lines)

    def references_text(self, node: Tag) -> str:
        lines = []
        for item in node.find_all("li", recursive=False):
            tag = item.find(class_="ltx_tag_bibitem")
            label = squeeze(tag.get_text()) if tag else ""
            label = label if PRINTED_LABEL.match(label) else ""  # author-year lists print no "Lee [2021]"
            blocks = [squeeze(self.inline(block)) for block in item.find_all(class_="ltx_bibblock")]
            text = " ".join(part for part in [label] + blocks if part)
            lines.append(f"* {text}")
        return "\n".join(lines)

    def table_text(self, table: Tag) -> str:
        if self.tables == "html":
            return tabular_html(table, self.cell_text)
        return tabular_latex(table, self.cell_text)

    def cell_text(self, cell: Tag) -> str:
        return squeeze(self.inline(cell))

    def fenced(self, node: Tag) -> str:
        """A listing or verbatim block in a ``` fence, one source line per line, indentation kept, no
        bold/italic markers (keywords typeset in bold stay plain, as Nougat writes algorithms)."""
        lines = node.find_all(class_="ltx_listingline")
        self.in_code = True
        if lines:
            text = "\n".join(self.inline(line).replace("\xa0", " ").strip("\n").rstrip() for line in lines)
        else:
            text = node.get_text().strip("\n")
        self.in_code = False
        return f"```\n{text}\n```" if text.strip() else ""

    def run_in(self, node: Tag) -> None:
        """A theorem or proof: its bold/italic title run into its first paragraph."""
        title = node.find(class_=lambda name: name in RUN_IN_TITLES, recursive=False)
        start = len(self.blocks)
        for child in node.children:
            if isinstance(child, Tag) and child is not title:
                self.block(child)
        if title is not None:
            marker = "_" if "ltx_title_proof" in classes(title) else "**"
            heading = wrap(squeeze(title.get_text()), marker)
            if len(self.blocks) > start:
                self.blocks[start] = f"{heading} {self.blocks[start]}"
            else:
                self.blocks.append(heading)

    # -- inline ---------------------------------------------------------------------------------------

    def inline(self, node: Tag | NavigableString) -> str:
        if isinstance(node, Comment):
            return ""
        if isinstance(node, NavigableString):
            return str(node)
        names = classes(node)
        if names & DROPPED:
            return ""
        if is_math(node):
            return inline_math(node)
        if "ltx_note" in names:
            return self.note(node)
        if "ltx_missing_label" in names or "ltx_missing_citation" in names:
            return UNRESOLVED
        if node.name == "cite" and node.find(class_="ltx_missing_citation"):
            return UNRESOLVED
        if node.name == "br":
            return " "
        if is_tabular(node):
            self.pending.append(self.table_text(node))
            return " "
        if node.name == "table" and names & {"ltx_equation", "ltx_equationgroup"}:
            return " " + display_math(node) + " "
        text = "".join(self.inline(child) for child in node.children)
        if self.in_code:
            return text
        if node.name in ("b", "strong") or names & BOLD:
            return wrap(text, "**")
        if node.name in ("i", "em") or names & ITALIC:
            return wrap(text, "_")
        if node.name == "sup" and text.strip().isdigit():
            return text.strip().translate(SUPERSCRIPTS)
        if node.name == "sub" and text.strip().isdigit():
            return text.strip().translate(SUBSCRIPTS)
        if node.name == "cite":
            return self.citations(text)
        return text

    def note(self, node: Tag) -> str:
        """A footnote: its mark stays in the text, its content becomes a `Footnote N: …` paragraph. A footnote
        in a tabular keeps only its mark, as LaTeX loses its text there, unless it is in a minipage, whose
        footnotes LaTeX prints with a letter per minipage (a, b, …). A `\\thanks` or another front-matter note
        becomes `Footnote: …` with no mark and no type label, an llncs institute (and its e-mail) plain lines;
        class metadata (copyright, DOI, ISBN, conference, CCS, …) is dropped. Notes of the authors that LaTeXML
        puts before them are written by `authors`, under the names."""
        names = classes(node)
        content = node.find(class_="ltx_note_content")
        if content is None or ("ltx_note_frontmatter" in names and is_metadata(names)):
            return ""
        if (names & FRONT_NOTES and node.find_parent(class_="ltx_authors") is None
                and node.find_next(class_="ltx_authors") is not None):
            return ""
        if names & (FRONT_NOTES | CONTACT_NOTES) or "ltx_note_frontmatter" in names:
            return self.front_note(node, content)
        mark = node.find(class_="ltx_note_mark")
        mark_text = squeeze(mark.get_text()) if mark is not None else ""
        if "ltx_role_footnotemark" in names:  # `\footnotemark[1]`: a mark only (the title block's marks are not words)
            return "" if node.find_parent(class_="ltx_authors") is not None else mark_text.translate(SUPERSCRIPTS)
        minipage = node.find_parent(class_="ltx_minipage")
        if minipage is not None:
            number = minipage.find_all(class_="ltx_role_footnote").index(node)
            mark_text = chr(ord("a") + number % 26)
        elif node.find_parent(is_tabular) is not None:
            return mark_text.translate(SUPERSCRIPTS)
        label = f"Footnote {mark_text}: " if mark_text else "Footnote: "
        self.pending.append(label + self.note_text(content))
        return mark_text.translate(SUPERSCRIPTS)

    def note_text(self, content: Tag) -> str:
        """A note's text on one line, without its mark, number or type label."""
        return squeeze(self.note_inline(content))

    def note_inline(self, content: Tag) -> str:
        """A note's text as written (its no-break spaces kept), without its mark, number or type label."""
        parts = [child for child in content.children if not (isinstance(child, Tag) and classes(child) & NOTE_LABELS)]
        return "".join(self.inline(part) for part in parts)

    def front_note(self, node: Tag, content: Tag) -> str:
        """A note of the front matter: an llncs institute as its lines (an e-mail in it on a line of its own),
        anything else (`\\thanks`) as `Footnote: …`; no mark is left in the text."""
        if classes(node) & CONTACT_NOTES:
            if node.find_parent(class_="ltx_note_content") is not None:
                return "\n" + self.contact_text(content) + "\n"
            self.pending.append(self.contact_text(content))
        else:
            self.pending.append(f"Footnote: {squeeze(self.contact_text(content))}")
        return ""
