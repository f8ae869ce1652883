"""doc2md step 4, acmart papers: the first-page front matter that acmart prints and LaTeXML keeps only as metadata.

docforge's acmart binding (`latexml_bindings/acmart.cls.ltxml`) records the facts as front-matter notes
(`AcmFacts.read`); this module writes, as acmart v1.88 sets them, the CCS concepts, the keywords' heading, the
"ACM Reference Format" and the permission block (a first-page footnote: the rights text of `\\setcopyright`,
the conference, the copyright line, the ISBN or the journal's code, the DOI), for `AcmMarkdownWriter` in
`class_writers`. The class options, `\\settopmatter` and a paper's own emptied
`\\footnotetextcopyrightpermission` decide what is printed, as in acmart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import Tag

FORMATS = ("manuscript", "acmsmall", "acmlarge", "acmtog", "sigconf", "siggraph", "sigplan", "sigchi", "sigchi-a",
           "acmengage", "acmcp")
JOURNAL_FORMATS = {"manuscript", "acmsmall", "acmlarge", "acmtog", "acmcp"}
OBSOLETE_FORMATS = {"siggraph": "sigconf", "sigchi": "sigconf"}  # acmart switches them to sigconf
SECTION_HEADED_FORMATS = {"sigconf", "sigchi-a", "acmengage", "acmcp"}  # \@specialsection is a \section*
DEFAULT_CONFERENCE = ("Conference'17", "ACM Conference", "July 2017", "Washington, DC, USA")  # without \acmConference
DEFAULT_ISBN = "978-x-xxxx-xxxx-x/YY/MM"
DEFAULT_DOI = "10.1145/nnnnnnn.nnnnnnn"
DEFAULT_PERMISSION_CODE = "XXXX-XXXX"  # acmart's \@permissionCodeOne when \acmJournal names no journal it knows
DEFAULT_PRICE = "15.00"
NO_PRICE_MODES = {"rightsretained", "usgov", "iw3c2w3", "iw3c2w3g", "cc"}  # \setcopyright clears \acmPrice
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
NOTE_ROLE = re.compile(r"^ltx_role_(.+)$")
CCS_ROLE = re.compile(r"^acm_ccs_(\d*)$")
TRUE_WORDS = {"", "true"}
PERMISSION_REQUEST = "Request permissions from permissions@acm.org."
COPY_NOTICE = ("Permission to make digital or hard copies of all or part of this work for personal or classroom use is "
               "granted without fee provided that copies are not made or distributed for profit or commercial "
               "advantage and that copies bear this notice and the full citation on the first page. ")
GOVERNMENT_RIGHTS = ("retains a nonexclusive, royalty-free right to publish or reproduce this article, or to allow "
                     "others to do so, for {} purposes only.")
CANADA_NOTICE = ("This article was authored by employees of the Government of Canada. As such, the Canadian government "
                 "retains all interest in the copyright to this work and grants to ACM a nonexclusive, royalty-free right "
                 "to publish or reproduce this article, or to allow others to do so, provided that clear attribution is "
                 "given both to the authors and the Canadian government agency employing them. Permission to make "
                 "digital or hard copies for personal or classroom use is granted. Copies must bear this notice and the "
                 "full citation on the first page. Copyrights for components of this work owned by others than the "
                 "Canadian Government must be honored. To copy otherwise, distribute, republish, or post, requires "
                 "prior specific permission and/or a fee. " + PERMISSION_REQUEST)
IW3C2_NOTICE = ("This paper is published under the Creative Commons {} International ({}) license. Authors reserve "
                "their rights to disseminate the work on their personal and corporate Web sites with the appropriate "
                "attribution.")
# \setcopyright's modes: (the permission text, the copyright owner), as acmart's \@copyrightpermission and
# \@copyrightowner print them
RIGHTS = {
    "none": ("", ""),
    "acmcopyright": (COPY_NOTICE + "Copyrights for components of this work owned by others than ACM must be honored. "
                     "Abstracting with credit is permitted. To copy otherwise, or republish, to post on servers or to "
                     "redistribute to lists, requires prior specific permission and/or a fee. " + PERMISSION_REQUEST,
                     "Association for Computing Machinery."),
    "acmlicensed": (COPY_NOTICE + "Copyrights for components of this work owned by others than the author(s) must be "
                    "honored. Abstracting with credit is permitted. To copy otherwise, or republish, to post on servers "
                    "or to redistribute to lists, requires prior specific permission and/or a fee. " + PERMISSION_REQUEST,
                    "Copyright held by the owner/author(s). Publication rights licensed to ACM."),
    "rightsretained": ("Permission to make digital or hard copies of part or all of this work for personal or classroom "
                       "use is granted without fee provided that copies are not made or distributed for profit or "
                       "commercial advantage and that copies bear this notice and the full citation on the first page. "
                       "Copyrights for third-party components of this work must be honored. For all other uses, "
                       "contact the owner/author(s).", "Copyright held by the owner/author(s)."),
    "usgov": ("This paper is authored by an employee(s) of the United States Government and is in the public domain. "
              "Non-exclusive copying or redistribution is allowed, provided that the article citation is given and the "
              "authors and agency are clearly identified as its source.", ""),
    "usgovmixed": ("ACM acknowledges that this contribution was authored or co-authored by an employee, contractor, or "
                   "affiliate of the United States government. As such, the United States government "
                   + GOVERNMENT_RIGHTS.format("government"), "Association for Computing Machinery."),
    "cagov": (CANADA_NOTICE, "Crown in Right of Canada."),
    "cagovmixed": ("ACM acknowledges that this contribution was co-authored by an affiliate of the national government "
                   "of Canada. As such, the Crown in Right of Canada retains an equal interest in the copyright. Reprints "
                   "must include clear attribution to ACM and the author's government agency affiliation. Permission to "
                   "make digital or hard copies for personal or classroom use is granted. Copies must bear this notice "
                   "and the full citation on the first page. Copyrights for components of this work owned by others "
                   "than ACM must be honored. To copy otherwise, distribute, republish, or post, requires prior "
                   "specific permission and/or a fee. " + PERMISSION_REQUEST, "Association for Computing Machinery."),
    "licensedusgovmixed": ("Publication rights licensed to ACM. ACM acknowledges that this contribution was authored or "
                           "co-authored by an employee, contractor or affiliate of the United States government. As "
                           "such, the Government " + GOVERNMENT_RIGHTS.format("Government"),
                           "Copyright held by the owner/author(s). Publication rights licensed to ACM."),
    "licensedcagov": (CANADA_NOTICE, "Crown in Right of Canada. Publication rights licensed to ACM."),
    "licensedcagovmixed": ("Publication rights licensed to ACM. ACM acknowledges that this contribution was authored or "
                           "co-authored by an employee, contractor or affiliate of the national government of Canada. As "
                           "such, the Government " + GOVERNMENT_RIGHTS.format("Government"),
                           "Copyright held by the owner/author(s). Publication rights licensed to ACM."),
    "othergov": ("ACM acknowledges that this contribution was authored or co-authored by an employee, contractor or "
                 "affiliate of a national government. As such, the Government " + GOVERNMENT_RIGHTS.format("Government"),
                 "Association for Computing Machinery."),
    "licensedothergov": ("Publication rights licensed to ACM. ACM acknowledges that this contribution was authored or "
                         "co-authored by an employee, contractor or affiliate of a national government. As such, the "
                         "Government " + GOVERNMENT_RIGHTS.format("Government"),
                         "Copyright held by the owner/author(s). Publication rights licensed to ACM."),
    "iw3c2w3": (IW3C2_NOTICE.format("Attribution 4.0", "CC-BY 4.0"),
                "IW3C2 (International World Wide Web Conference Committee), published under Creative Commons CC-BY 4.0 "
                "License."),
    "iw3c2w3g": (IW3C2_NOTICE.format("Attribution-NonCommercial-NoDerivs 4.0", "CC-BY-NC-ND 4.0"),
                 "IW3C2 (International World Wide Web Conference Committee), published under Creative Commons "
                 "CC-BY-NC-ND 4.0 License."),
    "cc": ("This work is licensed under a Creative Commons Attribution 4.0 International License.",
           "Copyright held by the owner/author(s)."),
}
CC_TYPES = {"by": "Attribution", "by-sa": "Attribution-ShareAlike", "by-nd": "Attribution-NoDerivatives",
            "by-nc": "Attribution-NonCommercial", "by-nc-sa": "Attribution-NonCommercial-ShareAlike",
            "by-nc-nd": "Attribution-NonCommercial-NoDerivatives"}


@dataclass
class AcmFacts:
    """What acmart's first page depends on: the class options, and LaTeXML's front-matter notes by role
    (`\\setcopyright` → "copyright", `\\acmConference` → "acm_conference_*", …), each role's texts in order."""

    options: dict[str, str]
    notes: dict[str, list[str]] = field(default_factory=dict)
    ccs: list[tuple[int, str, str]] = field(default_factory=list)  # (weight, general, specific)

    @classmethod
    def read(cls, root: Tag, class_options: str, note_text) -> AcmFacts:
        """The facts of a LaTeXML document; `note_text(content)` is a note's text without its labels, its
        no-break spaces kept (a `\\ccsdesc` concept's `~`)."""
        options = {}
        for option in class_options.split(","):
            key, _, value = option.partition("=")
            if key.strip():
                options[key.strip()] = value.strip()
        facts = cls(options)
        for note in root.find_all(class_="ltx_note_frontmatter"):
            content = note.find(class_="ltx_note_content")
            role = next((found.group(1) for name in note.get("class") or [] if (found := NOTE_ROLE.match(name))), "")
            if content is None or not role:
                continue
            text = note_text(content)
            weight = CCS_ROLE.match(role)
            if weight:
                general, _, specific = text.partition("\xa0")
                facts.ccs.append((int(weight.group(1) or 100), " ".join(general.split()),
                                  " ".join(specific.split("\xa0")[0].split())))
            else:
                facts.notes.setdefault(role, []).append(" ".join(text.split()))
        return facts

    def last(self, role: str, default: str | None = None) -> str | None:
        return self.notes[role][-1] if self.notes.get(role) else default

    def flag(self, name: str) -> bool:
        return name in self.options and self.options[name].lower() in TRUE_WORDS

    @property
    def format(self) -> str:
        chosen = self.options.get("format", "manuscript")
        for option in self.options:
            if option in FORMATS:
                chosen = option
        return OBSOLETE_FORMATS.get(chosen, chosen)

    def topmatter(self, key: str, default: bool) -> bool:
        """A `\\settopmatter{key=…}` setting, the last one given; `default` without one."""
        value = default
        for text in self.notes.get("acm_topmatter", []):
            for setting in text.split(","):
                name, _, given = setting.partition("=")
                if name.strip() == key:
                    value = given.strip().lower() in TRUE_WORDS
        return value

    @property
    def conference(self) -> tuple[str, str, str, str] | None:
        """(short name, name, date, venue) of `\\acmConference`, or acmart's placeholder for a conference format."""
        if "acm_conference_name" in self.notes:
            name = self.last("acm_conference_name")
            return (self.last("acm_conference_short") or name, name, self.last("acm_conference_date"),
                    self.last("acm_conference_venue"))
        return None if self.format in JOURNAL_FORMATS else DEFAULT_CONFERENCE

    @property
    def journal_bibstrip(self) -> bool:
        """Whether the paper is set as a journal article (its reference and rights give the journal, not a
        conference): a journal format without `\\acmConference`."""
        return self.conference is None

    @property
    def year(self) -> str:
        return self.last("journalyear", "")

    @property
    def rights(self) -> str:
        mode = self.last("copyright", "acmcopyright")
        return mode if mode in RIGHTS else "acmcopyright"

    @property
    def booktitle(self) -> str:
        if "booktitle" in self.notes:
            return self.last("booktitle")
        short, name, _, _ = self.conference or DEFAULT_CONFERENCE
        return f"Proceedings of {name}" + ("" if short == name else f" ({short})")

    @property
    def journal(self) -> tuple[str, str]:
        """The journal's short name and its permission code (ISSN), from `\\acmJournal`'s code."""
        return ACM_JOURNALS.get(self.last("journal", ""), ("", DEFAULT_PERMISSION_CODE))


def special_section(facts: AcmFacts, name: str, text: str) -> str:
    """A front-matter list ("CCS Concepts", "Keywords") as the format sets it: a `\\section*` heading, or the
    name run into the text."""
    if facts.format in SECTION_HEADED_FORMATS:
        return f"###### {name}\n\n{text}"
    return f"{name}: {text}"


def ccs_concepts(facts: AcmFacts) -> str:
    """`\\ccsdesc`'s concepts as acmart lists them: "• **General** → **Specific**; _Other_." with each general
    term once (its specifics in order), a specific of weight ≥ 500 in bold and ≥ 300 in italic."""
    groups: dict[str, list[str]] = {}
    for weight, general, specific in facts.ccs:
        items = groups.setdefault(general, [])
        if specific:
            items.append(f"**{specific}**" if weight > 499 else f"_{specific}_" if weight > 299 else specific)
    parts = [f"• **{general}**" + (" → " + "; ".join(items) if items else "") for general, items in groups.items()]
    return "; ".join(parts) + "." if parts else ""


def reference_format(facts: AcmFacts, authors: list[str], title: str, subtitle: str, page_count: int | None) -> str:
    """The "ACM Reference Format:" paragraph: authors, year, title, then the proceedings or the journal issue,
    the page count (when known) and the DOI."""
    names = ["Anonymous Author(s)"] if facts.flag("anonymous") else [name for name in authors if name]
    citation = f"{andify(names)}. " + (f"{facts.year}. " if facts.year else "") + title
    citation += f": {subtitle}. " if subtitle else ". "
    pages = "" if page_count is None else f"{page_count} page" + ("" if page_count == 1 else "s")
    article = facts.last("article", "")
    if facts.journal_bibstrip:
        month = facts.last("publicationmonth", "")
        date = " ".join(part for part in (MONTHS[int(month) - 1] if month.isdigit() and 1 <= int(month) <= 12 else "",
                                          facts.year) if part)
        article_part = f", Article {article} " if article else " "
        citation += (f"_{facts.journal[0]}_ {facts.last('journalvolume', '1')}, {facts.last('journalnumber', '1')}"
                     f"{article_part}({date})" + (f", {pages}." if pages else "."))
    else:
        citation += f"In _{facts.booktitle}_. ACM, New York, NY, USA" + (f", Article {article}" if article else "")
        citation += f", {pages}." if pages else "."
    doi = facts.last("doi", DEFAULT_DOI)
    if doi:
        citation += f" https://doi.org/{doi}"
    return f"**ACM Reference Format:**\n{citation}"


def permission_block(facts: AcmFacts) -> str:
    """The first page's rights footnote as `\\footnotetextcopyrightpermission` sets it (none with `nonacm` or when
    the paper empties that command): the `\\setcopyright` text, the conference line, the copyright line, the
    ISBN and price (a conference) or the journal's code, and the DOI."""
    mode = facts.rights
    if "acm_permission" not in facts.notes or facts.format == "acmcp" or (facts.flag("nonacm") and mode != "cc"):
        return ""
    permission, owner = RIGHTS[mode]
    if mode == "cc":
        permission = cc_notice(facts)
    if facts.flag("nonacm"):
        return f"Footnote: {permission}"
    lines = []
    if facts.flag("authordraft"):
        lines.append("Unpublished working draft. Not for distribution.")
    if permission and not facts.flag("authorversion"):
        lines.append(permission)
    manuscript = facts.format == "manuscript"
    if not manuscript and not facts.journal_bibstrip:
        if facts.format == "acmengage":
            lines.append(f"_{facts.booktitle}, {facts.year}._")
        else:
            short, _, date, venue = facts.conference
            lines.append("_" + ", ".join(part for part in (short, date, venue) if part) + "_")
    copyright_year = facts.last("acm_copyright_year", facts.year)
    lines.append(f"© {copyright_year} {owner}".strip() if mode not in ("none", "usgov") else f"{copyright_year}.")
    doi = facts.last("doi", DEFAULT_DOI)
    doi_url = f"https://doi.org/{doi}" if doi else ""
    if manuscript:
        lines.append("Manuscript submitted to ACM")
    elif facts.flag("authorversion"):
        source = facts.journal[0] if facts.journal_bibstrip else facts.booktitle
        lines.append("This is the author's version of the work. It is posted here for your personal use. Not for "
                     f"redistribution. The definitive Version of Record was published in _{source}_"
                     + (f", {doi_url}." if doi_url else "."))
    else:
        price = "" if mode in NO_PRICE_MODES else facts.last("price", DEFAULT_PRICE)
        if facts.journal_bibstrip:
            month = facts.last("publicationmonth", "")
            code = f"{facts.journal[1]}/{facts.year}/{month}-ART{facts.last('article', '')}"
            lines.append(code + (f" ${price}" if price else ""))
        else:
            isbn = facts.last("isbn", DEFAULT_ISBN)
            if isbn:
                lines.append(f"ACM ISBN {isbn}" + (f"...${price}" if price else "."))
        if doi_url:
            lines.append(doi_url)
    return "Footnote: " + "\n".join(line for line in lines if line)


def cc_notice(facts: AcmFacts) -> str:
    """The Creative Commons line of `\\setcopyright{cc}` with `\\setcctype[version]{type}`."""
    kind, _, version = facts.last("acm_cctype", "by 4.0").partition(" ")
    version = version or "4.0"
    if kind == "zero":
        return "This work is licensed under a Creative Commons CC0 1.0 Universal License."
    edition = "4.0 International" if version == "4.0" else "3.0 Unported"
    return f"This work is licensed under a Creative Commons {CC_TYPES.get(kind, 'Attribution')} {edition} License."


def andify(names: list[str], serial_comma: bool = True) -> str:
    """"A and B", "A, B, and C", as the AMS classes' and acmart's `\\andify` join the authors ("A, B and C"
    without the serial comma)."""
    if len(names) < 3:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ("," if serial_comma else "") + " and " + names[-1]


# \acmJournal's codes: (short name, permission code), as acmart v1.88 defines them
ACM_JOURNALS = {
    "ACMJCSS": ("ACM J. Comput. Sustain. Soc.", "2834-5533"),
    "CIE": ("ACM Comput. Entertain.", "1544-3574"),
    "CSUR": ("ACM Comput. Surv.", "0360-0300"),
    "DGOV": ("Digit. Gov. Res. Pract.", "2639-0175"),
    "DLT": ("Distrib. Ledger Technol.", "2769-6472"),
    "DTRAP": ("Digit. Threat. Res. Pract.", "2576-5337"),
    "FAC": ("Form. Asp. Comput.", "0934-5043"),
    "GAMES": ("ACM Games", "2832-5516"),
    "HEALTH": ("ACM Trans. Comput. Healthcare", "2637-8051"),
    "IMWUT": ("Proc. ACM Interact. Mob. Wearable Ubiquitous Technol.", "2474-9567"),
    "JACM": ("J. ACM", "0004-5411"),
    "JATS": ("ACM J. Auton. Transport. Syst.", "2833-0528"),
    "JDIQ": ("ACM J. Data Inform. Quality", "1936-1955"),
    "JDS": ("ACM/IMS J. Data Sci.", "2831-3194"),
    "JEA": ("ACM J. Exp. Algor.", "1084-6654"),
    "JERIC": ("ACM J. Edu. Resources in Comput.", "1073-0516"),
    "JETC": ("ACM J. Emerg. Technol. Comput. Syst.", "1550-4832"),
    "JOCCH": ("ACM J. Comput. Cult. Herit.", "1556-4673"),
    "JRC": ("ACM J. Responsib. Comput.", "2832-0565"),
    "PACMCGIT": ("Proc. ACM Comput. Graph. Interact. Tech.", "2577-6193"),
    "PACMHCI": ("Proc. ACM Hum.-Comput. Interact.", "2573-0142"),
    "PACMNET": ("Proc. ACM Netw.", "2834-5509"),
    "PACMPL": ("Proc. ACM Program. Lang.", "2475-1421"),
    "POMACS": ("Proc. ACM Meas. Anal. Comput. Syst.", "2476-1249"),
    "TAAS": ("ACM Trans. Autonom. Adapt. Syst.", "1556-4665"),
    "TACCESS": ("ACM Trans. Access. Comput.", "1936-7228"),
    "TACO": ("ACM Trans. Arch. Code Optim.", "1544-3566"),
    "TALG": ("ACM Trans. Algor.", "1549-6325"),
    "TALLIP": ("ACM Trans. Asian Low-Resour. Lang. Inf. Process.", "2375-4699"),
    "TAP": ("ACM Trans. Appl. Percept.", "1544-3558"),
    "TCPS": ("ACM Trans. Cyber-Phys. Syst.", "2378-962X"),
    "TDS": ("ACM/IMS Trans. Data Sci.", "2577-3224"),
    "TEAC": ("ACM Trans. Econ. Comput.", "2167-8375"),
    "TECS": ("ACM Trans. Embedd. Comput. Syst.", "1539-9087"),
    "TELO": ("ACM Trans. Evol. Learn.", "2688-3007"),
    "THRI": ("ACM Trans. Hum.-Robot Interact.", "2573-9522"),
    "TIIS": ("ACM Trans. Interact. Intell. Syst.", "2160-6455"),
    "TIOT": ("ACM Trans. Internet Things", "2577-6207"),
    "TISSEC": ("ACM Trans. Info. Syst. Sec.", "1094-9224"),
    "TIST": ("ACM Trans. Intell. Syst. Technol.", "2157-6904"),
    "TKDD": ("ACM Trans. Knowl. Discov. Data.", "1556-4681"),
    "TMIS": ("ACM Trans. Manag. Inform. Syst.", "2158-656X"),
    "TOCE": ("ACM Trans. Comput. Educ.", "1946-6226"),
    "TOCHI": ("ACM Trans. Comput.-Hum. Interact.", "1073-0516"),
    "TOCL": ("ACM Trans. Comput. Logic", "1529-3785"),
    "TOCS": ("ACM Trans. Comput. Syst.", "0734-2071"),
    "TOCT": ("ACM Trans. Comput. Theory", "1942-3454"),
    "TODAES": ("ACM Trans. Des. Autom. Electron. Syst.", "1084-4309"),
    "TODS": ("ACM Trans. Datab. Syst.", "0362-5915"),
    "TOG": ("ACM Trans. Graph.", "0730-0301"),
    "TOIS": ("ACM Trans. Inf. Syst.", "1046-8188"),
    "TOIT": ("ACM Trans. Internet Technol.", "1533-5399"),
    "TOMACS": ("ACM Trans. Model. Comput. Simul.", "1049-3301"),
    "TOMM": ("ACM Trans. Multimedia Comput. Commun. Appl.", "1551-6857"),
    "TOMPECS": ("ACM Trans. Model. Perform. Eval. Comput. Syst.", "2376-3639"),
    "TOMS": ("ACM Trans. Math. Softw.", "0098-3500"),
    "TOPC": ("ACM Trans. Parallel Comput.", "2329-4949"),
    "TOPS": ("ACM Trans. Priv. Sec.", "2471-2566"),
    "TOPLAS": ("ACM Trans. Program. Lang. Syst.", "0164-0925"),
    "TORS": ("ACM Trans. Recomm. Syst.", "2770-6699"),
    "TOS": ("ACM Trans. Storage", "1553-3077"),
    "TOSEM": ("ACM Trans. Softw. Eng. Methodol.", "1049-331X"),
    "TOSN": ("ACM Trans. Sensor Netw.", "1550-4859"),
    "TQC": ("ACM Trans. Quantum Comput.", "2643-6817"),
    "TRETS": ("ACM Trans. Reconfig. Technol. Syst.", "1936-7406"),
    "TSAS": ("ACM Trans. Spatial Algorithms Syst.", "2374-0353"),
    "TSC": ("ACM Trans. Soc. Comput.", "2469-7818"),
    "TSLP": ("ACM Trans. Speech Lang. Process.", "1550-4875"),
    "TWEB": ("ACM Trans. Web", "1559-1131"),
}
