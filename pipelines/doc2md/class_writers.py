"""doc2md step 4, the publisher classes: `MarkdownWriter`s for the classes whose first page LaTeXML's HTML does
not show as the PDF prints it (the AMS classes, acmart, elsarticle, REVTeX), and `writer_for`, which picks one by
the paper's `\\documentclass`. What docforge's LaTeXML bindings of these classes keep (`latexml_bindings/`) is
written here where the class prints it.
"""

from __future__ import annotations

import re

from bs4 import Comment, NavigableString, Tag

from pipelines.doc2md.acm_front_matter import (JOURNAL_FORMATS, AcmFacts, andify, ccs_concepts, permission_block,
                                               reference_format, special_section)
from pipelines.doc2md.markdown_writer import CONTACT_ROLES, CitationForm, MarkdownWriter, classes, squeeze


AMS_CLASSES = {"amsart", "amsproc", "amsbook"}
AMS_FOOTNOTES = {"ltx_dates", "ltx_classification", "ltx_keywords"}  # printed as the first page's footnotes
URL_START = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)


class AmsMarkdownWriter(MarkdownWriter):
    """The AMS classes (amsart, amsproc, amsbook) print the date, the subject classification and the keywords
    as unnumbered footnotes of the first page ("Date: …", "2020 Mathematics Subject Classification. …",
    "Key words and phrases. …": `Footnote: …` blocks here, which the page split places where the PDF has
    them), and each author's address, current address, e-mail and URL after the references (amsart's
    `\\enddoc`), not under the names where LaTeXML keeps them."""

    def __init__(self, tables: str, citations: CitationForm = CitationForm()):
        super().__init__(tables, citations)
        self.addresses: list[str] = []

    def author_names(self, node: Tag) -> str:
        """"A and B", "A, B, and C", as amsart's `\\andify` joins them."""
        return andify([name for name in self.names(node) if name])

    def block(self, node: Tag) -> None:
        if classes(node) & AMS_FOOTNOTES:
            self.emit(self.admin_footnote(node))
        else:
            super().block(node)

    def admin_footnote(self, node: Tag) -> str:
        """`Footnote: _Date_: January 5, 2026.`, `Footnote: _Key words and phrases._ …` as amsart sets them."""
        title = node.find(class_="ltx_title")
        label = squeeze(title.get_text()).rstrip(": ") if title is not None else ""
        text = squeeze("".join(self.inline(child) for child in node.children if child is not title))
        if not label:  # LaTeXML's dates: "(Date: January 5, 2026)"
            label, _, text = text.strip("()").partition(":")
            label, text = label.strip(), text.strip()
        if not text:
            return ""
        text += "" if text.endswith((".", "!", "?")) else "."
        return f"Footnote: _{label}_: {text}" if label == "Date" else f"Footnote: _{label}._ {text}"

    def contact_line(self, node: Tag | NavigableString, roles: set[str]) -> str | None:
        """An address on one line (its `\\\\` breaks print as ", "), an e-mail after amsart's label; LaTeXML writes
        `\\curraddr` and `\\urladdr` as bare text in the notes: labelled "URL" when it is one, else "Current
        address"."""
        if isinstance(node, NavigableString) and not isinstance(node, Comment):
            text = squeeze(str(node))
            if not text:
                return None
            if URL_START.match(text):  # the `~` of a home page is the no-break space LaTeXML reads it as
                return "_URL_: " + squeeze(str(node).replace("\xa0", "~"))
            return f"_Current address_: {text}"
        if not roles & CONTACT_ROLES:
            return None
        text = ", ".join(self.contact_text(node).split("\n"))
        return f"_Email address_: {text}" if "ltx_role_email" in roles and text else text

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        if lines:
            self.addresses.append("\n".join(lines))

    def finish(self) -> None:
        for address in self.addresses:
            self.emit(address)


LINK_ROLES = {"ltx_role_email": "Email address", "ltx_role_homepage": "URL"}  # elsarticle's footnotes' labels


class ElsarticleMarkdownWriter(MarkdownWriter):
    """elsarticle prints the authors' e-mails and home pages as first-page footnotes naming their authors
    ("_Email addresses:_ a@x (A), b@y (B)", "_URL:_ …"), not under the names where LaTeXML keeps them."""

    def __init__(self, tables: str, citations: CitationForm = CitationForm()):
        super().__init__(tables, citations)
        self.links: dict[str, list[str]] = {role: [] for role in LINK_ROLES}

    def contact_line(self, node: Tag | NavigableString, roles: set[str]) -> str | None:
        if roles & LINK_ROLES.keys():
            return ""  # a contact, printed in the footnote
        return super().contact_line(node, roles)

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        for role, links in self.links.items():
            links += [f"{self.contact_text(link)} ({self.creator_name(notes)})" for link in notes.find_all(class_=role)]
        super().author_contacts(lines, notes)

    def authors(self, node: Tag) -> None:
        super().authors(node)
        for role, links in self.links.items():
            if links:
                label = LINK_ROLES[role] + ("es" if role == "ltx_role_email" and len(links) > 1 else "")
                self.emit(f"Footnote: _{label}:_ " + ", ".join(links))


class RevtexMarkdownWriter(MarkdownWriter):
    """REVTeX joins the authors as "A, B, and C"; without `superscriptaddress` it prints them in groups: the
    authors an `\\affiliation` follows share it (LaTeXML gives it to the last of them only), so each group's names
    stand over its affiliations, and consecutive authors with the same affiliations are one group."""

    def __init__(self, tables: str, citations: CitationForm, class_options: str):
        super().__init__(tables, citations)
        self.grouped = "superscriptaddress" not in {option.strip() for option in class_options.split(",")}

    def author_names(self, node: Tag) -> str:
        if not self.grouped:
            return andify([name for name in self.names(node) if name])
        groups: list[tuple[list[str], list[str]]] = []
        waiting: list[str] = []
        for creator in node.find_all(class_="ltx_creator"):
            person = creator.find(class_="ltx_personname")
            waiting += self.person_lines(person)[:1] if person is not None else []
            places = [self.contact_text(contact) for contact in creator.find_all(class_="ltx_contact")
                      if classes(contact) & CONTACT_ROLES - {"ltx_role_email"}]
            if places and groups and groups[-1][1] == places and len(waiting) == 1:
                groups[-1][0].extend(waiting)
            elif places:
                groups.append((waiting, places))
            else:
                continue
            waiting = []
        if waiting:
            groups.append((waiting, []))
        return "\n\n".join("\n".join([andify(names)] + places) for names, places in groups)

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        if not self.grouped:
            super().author_contacts(lines, notes)


BODY_START = {"ltx_section", "ltx_para", "ltx_appendix", "ltx_bibliography", "ltx_acknowledgements", "ltx_chapter"}


class AcmMarkdownWriter(MarkdownWriter):
    """acmart prints each author's name over their affiliations and e-mail (a journal format: "Name,
    Institution, Country" a line, the full addresses in an "Authors' addresses" footnote, no "Abstract"
    heading); after the abstract the CCS concepts, the keywords under their name and the "ACM Reference
    Format", and the rights as a first-page footnote (`acm_front_matter`, from the facts docforge's binding
    keeps). The copyright year LaTeXML shows under the authors is not printed there; an anonymous paper's
    authors are "Anonymous Author(s)"."""

    def __init__(self, tables: str, citations: CitationForm, root: Tag, class_options: str, page_count: int | None):
        super().__init__(tables, citations)
        self.facts = AcmFacts.read(root, class_options, self.note_inline)
        self.journal = self.facts.format in JOURNAL_FORMATS
        self.root = root
        self.page_count = page_count
        self.addresses: list[str] = []
        self.front_matter_written = False

    def block(self, node: Tag) -> None:
        names = classes(node)
        if "ltx_dates" in names or (self.journal and "ltx_title_abstract" in names):
            return
        if "ltx_keywords" in names:
            self.front_matter(node)
            return
        if names & BODY_START and not self.front_matter_written:
            self.front_matter(None)
        super().block(node)

    def authors(self, node: Tag) -> None:
        if not self.facts.flag("anonymous"):
            super().authors(node)
            return
        submission = self.facts.last("acm_submission", "")
        self.emit("Anonymous Author(s)" + (f"\nSubmission Id: {submission}" if submission else ""))

    def author_names(self, node: Tag) -> str:
        """Only the names of authors with no contacts: the others head their own contact blocks."""
        return ", ".join(squeeze(self.inline(creator.find(class_="ltx_personname")))
                         for creator in node.find_all(class_="ltx_creator")
                         if creator.find(class_="ltx_author_notes") is None and creator.find(class_="ltx_personname"))

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        name = self.creator_name(notes)
        if not self.journal:
            self.emit("\n".join(line for line in [name] + lines if line))
            return
        short = [squeeze(self.inline(part)) for part in notes.find_all(
            class_=lambda found: found in ("ltx_affiliation_institution", "ltx_affiliation_country"))]
        self.emit(", ".join(part for part in [name] + short if part))
        self.addresses.append(", ".join(part for part in [name] + [line.replace("\n", ", ") for line in lines] if part))

    def front_matter(self, keywords: Tag | None) -> None:
        """The CCS concepts, the keywords, the reference format and the rights footnote, once."""
        if self.front_matter_written:
            return
        self.front_matter_written = True
        facts = self.facts
        if facts.topmatter("printccs", True) and facts.ccs:
            self.emit(special_section(facts, "CCS Concepts", ccs_concepts(facts)))
        if keywords is not None and facts.format != "acmcp" and (text := squeeze(self.inline(keywords))):
            name = "Additional Key Words and Phrases" if facts.format in JOURNAL_FORMATS else "Keywords"
            self.emit(special_section(facts, name, text))
        if facts.topmatter("printacmref", not facts.flag("nonacm") and facts.format != "acmcp"):
            title, subtitle = (self.root.find(class_=name) for name in ("ltx_title_document", "ltx_subtitle"))
            authors = self.root.find(class_="ltx_authors")
            self.emit(reference_format(facts, self.names(authors) if authors is not None else [],
                                       squeeze(self.inline(title)) if title is not None else "",
                                       squeeze(self.inline(subtitle)) if subtitle is not None else "", self.page_count))
        self.emit(permission_block(facts))
        if facts.journal_bibstrip and facts.format != "acmcp" and not facts.flag("anonymous"):
            given = facts.last("acm_authorsaddresses")
            text = given if given is not None else "Authors' addresses: " + "; ".join(self.addresses) + "."
            if self.addresses or given:
                self.emit(f"Footnote: {text}" if text else "")

    def finish(self) -> None:
        self.front_matter(None)


def writer_for(document_class: str, class_options: str, tables: str, citations: CitationForm, root: Tag,
               page_count: int | None) -> MarkdownWriter:
    """The writer for a paper of `document_class` (with `class_options`): the class's own, else the plain one."""
    if document_class == "acmart":
        return AcmMarkdownWriter(tables, citations, root, class_options, page_count)
    if document_class == "elsarticle":
        return ElsarticleMarkdownWriter(tables, citations)
    if document_class.startswith("revtex"):
        return RevtexMarkdownWriter(tables, citations, class_options)
    if document_class in AMS_CLASSES:
        return AmsMarkdownWriter(tables, citations)
    return MarkdownWriter(tables, citations)
