"""doc2md on acmart papers: the first page's CCS concepts, keywords, ACM reference format and rights footnote
(`acm_front_matter`, through docforge's acmart LaTeXML binding) match what real acmart prints, so the first page
is kept; the options and commands that turn them off are honoured. Real pdflatex + acmart, real LaTeXML."""

import pytest

from pipelines.doc2md.acm_front_matter import AcmFacts, ccs_concepts, permission_block
from tests.doc2md_papers import first_pages

# This TeX Live has no Type 1 Libertine (texlive-fonts-extra), and microtype cannot expand bitmap fonts.
PREAMBLE = r"""\PassOptionsToPackage{expansion=false}{microtype}
\documentclass[CLASS_OPTIONS]{acmart}
RIGHTS
\copyrightyear{2025}
\acmYear{2025}
\acmDOI{10.1145/3711896.3736001}
VENUE
"""
CONFERENCE = (r"\acmConference[KDD '25]{Proceedings of the 31st ACM SIGKDD Conference on Knowledge Discovery and Data "
              r"Mining}{August 3--7, 2025}{Toronto, ON, Canada}" "\n" r"\acmISBN{979-8-4007-1454-2/2025/08}")
JOURNAL = r"\acmJournal{TOG}\acmVolume{44}\acmNumber{4}\acmArticle{101}\acmMonth{8}"
BODY = r"""\begin{document}
\title{Streaming Deduplication of Web Text}
\titlenote{An extended version is available online.}
\author{Farah Haddad}
\authornote{Both authors contributed equally.}
\affiliation{\institution{Cedar Labs}\city{Beirut}\country{Lebanon}}
\email{farah@cedarlabs.ai}
\author{Gustavo Ribeiro}
\affiliation{\institution{Universidade de S\~ao Paulo}\city{S\~ao Paulo}\country{Brazil}}
\author{Mei Lin}
\affiliation{\institution{Tsinghua University}\city{Beijing}\country{China}}
\begin{abstract}
Training corpora for language models contain many near-duplicate documents. We present a streaming deduplicator
that processes documents in a single pass with bounded memory.
\end{abstract}
\begin{CCSXML}
<ccs2012><concept><concept_id>10002951.10003227.10003351</concept_id>
<concept_desc>Information systems~Data mining</concept_desc><concept_significance>500</concept_significance></concept>
</ccs2012>
\end{CCSXML}
\ccsdesc[500]{Information systems~Data mining}
\ccsdesc[300]{Information systems~Near-duplicate and plagiarism detection}
\ccsdesc[100]{Theory of computation~Sketching and sampling}
\keywords{deduplication, MinHash, streaming algorithms}
\maketitle
\section{Introduction}
Web crawls repeat the same text many times: boilerplate, mirrors and syndicated news. Removing these repeats
improves model quality and reduces training cost. Our system streams documents and keeps only a bounded sketch.
\section{Method}
Each document is shingled into word five-grams and hashed with independent functions. The signatures are
inserted into banded hash tables, and a collision in any band marks a candidate pair for verification.
\end{document}
"""
PAPERS = {
    "sigconf": ("sigconf", r"\setcopyright{acmlicensed}", CONFERENCE),
    # how arXiv preprints usually drop the boilerplate
    "preprint": ("sigconf", "\\setcopyright{none}\n\\settopmatter{printacmref=false}\n"
                 "\\renewcommand\\footnotetextcopyrightpermission[1]{}", CONFERENCE),
    "journal": ("acmsmall", r"\setcopyright{acmlicensed}", JOURNAL),
}
CCS_LINE = ("• **Information systems** → **Data mining**; _Near-duplicate and plagiarism detection_; "
            "• **Theory of computation** → Sketching and sampling.")


@pytest.fixture(scope="module", name="first_pages")
def first_pages_fixture(tmp_path_factory):
    return first_pages(tmp_path_factory, {
        name: PREAMBLE.replace("CLASS_OPTIONS", options).replace("RIGHTS", rights).replace("VENUE", venue) + BODY
        for name, (options, rights, venue) in PAPERS.items()})


def test_a_conference_papers_first_page_has_acmarts_front_matter_and_is_kept(first_pages):
    markdown, page = first_pages["sigconf"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.97, page.reason
    assert "Farah Haddad\nCedar Labs, Beirut, Lebanon\nfarah@cedarlabs.ai" in blocks  # a name over its contacts
    assert ["###### CCS Concepts", CCS_LINE, "###### Keywords", "deduplication, MinHash, streaming algorithms"] == \
        blocks[blocks.index("###### CCS Concepts"):blocks.index("###### CCS Concepts") + 4]
    assert ("**ACM Reference Format:**\nFarah Haddad, Gustavo Ribeiro, and Mei Lin. 2025. Streaming Deduplication of "
            "Web Text. In _Proceedings of Proceedings of the 31st ACM SIGKDD Conference on Knowledge Discovery and Data "
            "Mining (KDD ’25)_. ACM, New York, NY, USA, 1 page. https://doi.org/10.1145/3711896.3736001") in blocks
    rights = next(block for block in blocks if block.startswith("Footnote: Permission to make digital"))
    assert rights.split("\n")[1:] == ["_KDD ’25, August 3–7, 2025, Toronto, ON, Canada_",
                                      "© 2025 Copyright held by the owner/author(s). Publication rights licensed to ACM.",
                                      "ACM ISBN 979-8-4007-1454-2/2025/08...$15.00",
                                      "https://doi.org/10.1145/3711896.3736001"]
    for note in ("Footnote: An extended version is available online.", "Footnote: Both authors contributed equally."):
        assert note in blocks
    assert "(2025)" not in markdown and "printed" not in markdown  # the binding's facts are not text


def test_a_preprint_that_turns_the_reference_and_rights_off_gets_neither(first_pages):
    markdown, page = first_pages["preprint"]
    assert page.kept and page.score >= 0.95, page.reason
    assert CCS_LINE in markdown
    for absent in ("ACM Reference Format", "Permission to make", "ACM ISBN", "KDD ’25"):
        assert absent not in markdown


def test_a_journal_format_names_the_journal_and_lists_the_authors_addresses(first_pages):
    markdown, page = first_pages["journal"]
    blocks = markdown.split("\n\n")
    assert page.kept and page.score >= 0.95, page.reason
    assert "Farah Haddad, Cedar Labs, Lebanon" in blocks and "###### Abstract." not in blocks
    assert f"CCS Concepts: {CCS_LINE}" in blocks
    assert "Additional Key Words and Phrases: deduplication, MinHash, streaming algorithms" in blocks
    assert any(block.endswith("Web Text. _ACM Trans. Graph._ 44, 4, Article 101 (August 2025), 1 page. "
                              "https://doi.org/10.1145/3711896.3736001") for block in blocks)
    assert ("Footnote: Authors' addresses: Farah Haddad, Cedar Labs, Beirut, Lebanon, farah@cedarlabs.ai; Gustavo "
            "Ribeiro, Universidade de São Paulo, São Paulo, Brazil; Mei Lin, Tsinghua University, Beijing, China.") in blocks
    assert "0730-0301/2025/8-ART101 $15.00" in markdown


def facts(options: dict[str, str], **notes: str) -> AcmFacts:
    return AcmFacts(options, {role: [text] for role, text in notes.items()})


def test_the_rights_block_follows_setcopyright_and_nonacm():
    conference = {"acm_permission": "printed", "acm_conference_name": "SIGIR", "journalyear": "2024"}
    assert permission_block(facts({"sigconf": ""}, **conference, copyright="none")).split("\n") == [
        "Footnote: _SIGIR_", "2024.", "ACM ISBN 978-x-xxxx-xxxx-x/YY/MM...$15.00", "https://doi.org/10.1145/nnnnnnn.nnnnnnn"]
    retained = permission_block(facts({"sigconf": ""}, **conference, copyright="rightsretained", isbn="979-8-4007"))
    assert "contact the owner/author(s)." in retained and "ACM ISBN 979-8-4007." in retained  # no price
    assert "Creative Commons Attribution-NonCommercial 4.0 International" in permission_block(
        facts({"nonacm": "true"}, **conference, copyright="cc", acm_cctype="by-nc 4.0"))
    assert permission_block(facts({"sigconf": "", "nonacm": ""}, **conference)) == ""
    assert permission_block(facts({"sigconf": ""}, copyright="acmlicensed")) == ""  # the paper emptied the command


def test_topmatter_settings_read_as_acmart_does_the_last_one_wins():
    settings = AcmFacts({}, {"acm_topmatter": ["printacmref=false, printccs", "printacmref=true"]})
    assert settings.topmatter("printacmref", False) and settings.topmatter("printccs", False)
    assert not AcmFacts({}, {"acm_topmatter": ["printfolios=false"]}).topmatter("printfolios", True)
    assert ccs_concepts(AcmFacts({}, ccs=[(100, "Networks", "")])) == "• **Networks**."
