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

    link_roles = LINK_ROLES  # the contacts printed in the footnotes, by role

    def __init__(self, tables: str, citations: CitationForm = CitationForm()):
        super().__init__(tables, citations)
        self.links: dict[str, list[str]] = {role: [] for role in self.link_roles}

    def contact_line(self, node: Tag | NavigableString, roles: set[str]) -> str | None:
        if roles & self.link_roles.keys():
            return ""  # a contact, printed in the footnote
        return super().contact_line(node, roles)

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        name = self.link_name(notes)
        for role, links in self.links.items():
            links += [f"{self.contact_text(link)} ({name})" for link in notes.find_all(class_=role)]
        super().author_contacts(lines, notes)

    def link_name(self, notes: Tag) -> str:
        """How a footnote names the author whose contacts `notes` holds."""
        return self.creator_name(notes)

    def authors(self, node: Tag) -> None:
        super().authors(node)
        for role, links in self.links.items():
            if footnote := self.link_footnote(role, links):
                self.emit(footnote)

    def link_footnote(self, role: str, links: list[str]) -> str:
        if not links:
            return ""
        label = LINK_ROLES[role] + ("es" if role == "ltx_role_email" and len(links) > 1 else "")
        return f"Footnote: _{label}:_ " + ", ".join(links)


CAS_CLASSES = {"cas-sc", "cas-dc"}
CAS_LINKS = {"ltx_role_email": "", "ltx_role_homepage": "", "ltx_role_orcid": "ORCID(s): "}  # footnotes' labels


class CasMarkdownWriter(ElsarticleMarkdownWriter):
    """Elsevier's CAS classes (cas-sc, cas-dc) print the graphical abstract and the highlights on pages of their
    own before the title page (under their name, the title and the authors), the authors as "A, B and C", the
    keywords one a line under "ARTICLE INFO" before the abstract (under "ABSTRACT"), and the e-mails, URLs and
    ORCIDs as first-page footnotes naming their authors by initials ("a@x (J. Smith); b@y (K. Lee)")."""

    link_roles = CAS_LINKS

    def __init__(self, tables: str, citations: CitationForm, root: Tag):
        super().__init__(tables, citations)
        self.root = root

    def block(self, node: Tag) -> None:
        names = classes(node)
        if names & {"ltx_cas_prelims", "ltx_classification"}:  # written before the title and the abstract
            return
        if "ltx_title_document" in names:
            for prelims in self.root.find_all(class_="ltx_cas_prelims"):
                self.prelims(prelims, node)
        if "ltx_abstract" in names:
            self.article_info()
            self.emit("ABSTRACT")
            for child in node.children:
                if isinstance(child, Tag) and "ltx_title" not in classes(child):
                    self.block(child)
            return
        super().block(node)

    def prelims(self, prelims: Tag, title: Tag) -> None:
        """A page before the title page: its name, the title in bold, the names joined by ",", its content."""
        name = prelims.find(class_="ltx_title", recursive=False)
        authors = self.root.find(class_="ltx_authors")
        self.emit(squeeze(self.inline(name)) if name is not None else "")
        self.emit(f"**{squeeze(self.inline(title))}**")
        self.emit(",".join(name for name in self.names(authors) if name) if authors is not None else "")
        for child in prelims.children:
            if isinstance(child, Tag) and child is not name:
                self.block(child)

    def article_info(self) -> None:
        """The keywords (`\\sep` breaks them into lines) and the other classifications, under "ARTICLE INFO"."""
        blocks = []
        for node in self.root.find_all(class_="ltx_classification"):
            title = node.find(class_="ltx_title")
            lines = [[f"_{squeeze(title.get_text()).rstrip(': ').capitalize()}:_"], []] if title else [[]]
            for child in node.children:
                if isinstance(child, Tag) and child.name == "br":
                    lines.append([])
                elif child is not title:
                    lines[-1].append(self.inline(child))
            blocks.append("\n".join(text for parts in lines if (text := squeeze("".join(parts)))))
        if blocks:
            self.emit("ARTICLE INFO\n" + "\n".join(blocks))

    def author_names(self, node: Tag) -> str:
        names = [name for name in self.names(node) if name]
        return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 2 else ", ".join(names)

    def link_name(self, notes: Tag) -> str:
        """"M. Rossi": the given names' initials and the family name."""
        *given, family = self.creator_name(notes).split() or [""]
        return " ".join(part for part in ["".join(p if "." in p else p[0] + "." for p in given), family] if part)

    def link_footnote(self, role: str, links: list[str]) -> str:
        if links or role == "ltx_role_orcid":  # the class prints the ORCID footnote even when it lists none
            return f"Footnote: {CAS_LINKS[role]}" + "; ".join(links)
        return ""


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

    def dates(self, node: Tag) -> str:
        """REVTeX prints "(Dated: March 3, 2025)" in parentheses."""
        return squeeze(self.inline(node))

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


QUANTUM_LINKS = ("ltx_role_email", "ltx_role_homepage")  # the footnote's first parts, in its order


class QuantumMarkdownWriter(MarkdownWriter):
    """quantumarticle (the Quantum journal) prints the authors as "A¹, B², and C¹", each affiliation once under
    them with its number (numbers only when there are several), and each author's e-mails, home pages and
    `\\thanks` as a first-page footnote "Name: e-mail, home page, note". An `\\affiliation` belongs to every author
    since the previous one (LaTeXML gives it to the last of them only)."""

    def __init__(self, tables: str, citations: CitationForm = CitationForm()):
        super().__init__(tables, citations)
        self.extras: list[str] = []

    def author_names(self, node: Tag) -> str:
        affiliations: list[str] = []
        authors: list[tuple[str, list[int]]] = []
        waiting = 0
        for creator in node.find_all(class_="ltx_creator"):
            person = creator.find(class_="ltx_personname")
            authors.append((squeeze(self.inline(person)) if person is not None else "", []))
            waiting += 1
            places = [self.contact_text(contact) for contact in creator.find_all(class_="ltx_contact")
                      if classes(contact) & CONTACT_ROLES - {"ltx_role_email"}]
            for place in places:
                affiliations += [] if place in affiliations else [place]
            if places:
                numbers = sorted({affiliations.index(place) + 1 for place in places})
                for _, marks in authors[-waiting:]:
                    marks.extend(numbers)
                waiting = 0
        numbered = len(affiliations) > 1
        names = [name + (f"\\({{}}^{{{','.join(map(str, marks))}}}\\)" if numbered and marks else "")
                 for name, marks in authors if name]
        places = [(f"\\({{}}^{{{number}}}\\)" if numbered else "") + place
                  for number, place in enumerate(affiliations, 1)]
        return "\n\n".join(part for part in (andify(names), "\n".join(places)) if part)

    def contact_line(self, node: Tag | NavigableString, roles: set[str]) -> str | None:
        """Nothing under the names: the affiliations are in the list above, the rest in the footnote (a `\\thanks`
        is the notes' bare text: LaTeXML's HTML writes a `thanks` contact unwrapped)."""
        if isinstance(node, NavigableString) or roles & (CONTACT_ROLES | set(QUANTUM_LINKS)):
            return ""
        return None

    def author_contacts(self, lines: list[str], notes: Tag) -> None:
        parts = [" ".join(self.contact_text(link) for link in notes.find_all(class_=role)) for role in QUANTUM_LINKS]
        parts.append(squeeze(" ".join(str(child) for child in notes.children
                                      if isinstance(child, NavigableString) and not isinstance(child, Comment))))
        if any(parts):
            self.extras.append(f"Footnote: {self.creator_name(notes)}: " + ", ".join(part for part in parts if part))

    def authors(self, node: Tag) -> None:
        super().authors(node)
        for extra in self.extras:
            self.emit(extra)


class SnJnlMarkdownWriter(MarkdownWriter):
    """Springer Nature's sn-jnl prints the authors as "A¹, B² and C¹" (its `\\au@and`: "and" before the last,
    no comma); docforge's binding (`sn-jnl.cls.ltxml`) writes the rest of its title block as the class does."""

    def author_names(self, node: Tag) -> str:
        return andify([name for name in self.names(node) if name], serial_comma=False)


class AaMarkdownWriter(MarkdownWriter):
    """Astronomy & Astrophysics' aa.cls joins the authors as "A and B", "A, B, and C" (its `\\andtwoname`,
    `\\andname` and `\\andlastname`); docforge's binding (`aa.cls.ltxml`) writes the rest of its title block."""

    def author_names(self, node: Tag) -> str:
        return andify([name for name in self.names(node) if name])


def writer_for(document_class: str, class_options: str, tables: str, citations: CitationForm, root: Tag,
               page_count: int | None) -> MarkdownWriter:
    """The writer for a paper of `document_class` (with `class_options`): the class's own, else the plain one."""
    if document_class == "acmart":
        return AcmMarkdownWriter(tables, citations, root, class_options, page_count)
    if document_class == "elsarticle":
        return ElsarticleMarkdownWriter(tables, citations)
    if document_class in CAS_CLASSES:
        return CasMarkdownWriter(tables, citations, root)
    if document_class.startswith("revtex"):
        return RevtexMarkdownWriter(tables, citations, class_options)
    if document_class in AMS_CLASSES:
        return AmsMarkdownWriter(tables, citations)
    if document_class == "quantumarticle":
        return QuantumMarkdownWriter(tables, citations)
    if document_class == "sn-jnl":
        return SnJnlMarkdownWriter(tables, citations)
    if document_class == "aa":
        return AaMarkdownWriter(tables, citations)
    return MarkdownWriter(tables, citations)
