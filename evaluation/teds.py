"""TEDS: tree-edit-distance similarity of two HTML tables, as PubTabNet defines it (Zhong et al., 2020).

TEDS = 1 - APTED(pred, gold) / max(nodes), where renaming costs 1 across tags or spans and, between two
cells, the normalised Levenshtein distance of their content tokens (characters and inline tags).
Structure-only TEDS ignores cell content. Parsing is lxml's; the tree edit distance is `apted`'s.
As in PubTabNet's `src/metric.py`, only `<td>` is a cell: a `<th>` is a tag like `<tr>`, whose inline
children are nodes of the tree. Both a bare `<table>` (docforge's `KEY.html`) and an
`<html><body><table>` document (what the official `TEDS.evaluate` reads) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apted import APTED, Config
from lxml import etree, html
from rapidfuzz.distance import Levenshtein


@dataclass
class TableNode:
    tag: str
    colspan: int | None = None
    rowspan: int | None = None
    content: list[str] | None = None
    children: list[TableNode] = field(default_factory=list)


class TableTreeConfig(Config):
    def rename(self, node1: TableNode, node2: TableNode) -> float:
        if node1.tag != node2.tag or node1.colspan != node2.colspan or node1.rowspan != node2.rowspan:
            return 1.0
        if node1.tag == "td" and (node1.content or node2.content):
            return Levenshtein.normalized_distance(node1.content, node2.content)
        return 0.0

    def children(self, node: TableNode) -> list[TableNode]:
        return node.children


def content_tokens(element) -> list[str]:
    """A cell's content as PubTabNet tokenises it: characters, with each inner element as `<tag>`/`</tag>`."""
    tokens = list(element.text or "")
    for child in element:
        tokens.append(f"<{child.tag}>")
        tokens += content_tokens(child)
        tokens.append(f"</{child.tag}>")
        tokens += list(child.tail or "")
    return tokens


def span(element, name: str) -> int:
    try:
        return int(element.get(name, "1"))
    except ValueError:
        return 1


def table_tree(element, structure_only: bool) -> TableNode:
    if element.tag == "td":
        return TableNode("td", span(element, "colspan"), span(element, "rowspan"),
                         [] if structure_only else content_tokens(element))
    return TableNode(element.tag, children=[table_tree(child, structure_only) for child in element
                                            if isinstance(child.tag, str)])


def first_table(markup: str):
    """The first `<table>` element of an HTML string, or None when there is none or it does not parse."""
    if not markup or not markup.strip():
        return None
    try:
        root = html.fromstring(markup, parser=html.HTMLParser(remove_comments=True, encoding="utf-8"))
    except (etree.ParserError, ValueError):
        return None
    return root if root.tag == "table" else next(iter(root.iter("table")), None)


def teds(pred: str, gold: str, structure_only: bool = False) -> float:
    """TEDS of two HTML tables in [0, 1]; 0.0 when either has no table."""
    pred_table, gold_table = first_table(pred), first_table(gold)
    if pred_table is None or gold_table is None:
        return 0.0
    nodes = max(len(pred_table.xpath(".//*")), len(gold_table.xpath(".//*")))  # PubTabNet counts below <table>
    distance = APTED(table_tree(pred_table, structure_only), table_tree(gold_table, structure_only),
                     TableTreeConfig()).compute_edit_distance()
    return 1.0 - float(distance) / nodes
