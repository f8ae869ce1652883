"""Writes tiny samples of each public stage-3 dataset format that `docforge build ingest` reads; run once,
outputs are committed.

    .venv/bin/python samples/datasets/make_datasets.py

Every image is drawn here with PIL (seeded) and every annotation is written from what was drawn, in the
dataset's own file layout and format (nothing is copied from the datasets): doclaynet/ (COCO JSON +
PNG/), cdla/ (labelme JSON beside JPEGs, Chinese), funsd/ (annotations/ + images/), xfund/ (zh.train.json
+ zh.train/), sroie/ (train/img, box, entities), wildreceipt/ (train.txt JSONL + class_list.txt +
image_files/), docvqa/, infovqa/, chartqa/, textvqa/ (QA JSON + images), pubtabnet/ (JSONL + train/ val/),
im2latex/ (formulas.lst + both split-list forms + formula_images/), crohme/ (InkML strokes), ocrvqa/
(dataset.json + images/, book covers), mmtab/ (MMTab-pre's LLaVA-format JSON + images/table_pretrain_part_1/),
anyword/ (AnyWord-3M's ocr_data/Art/data.json and wukong_1of5/data_v1.1.json, each beside its imgs/).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from PIL import Image

from drawing import CJK, LATIN, LATIN_BOLD, Page, font, save, write_json
from make_recipe_sets import make_anyword, make_mmtab, make_ocrvqa

HERE = Path(__file__).resolve().parent
rng = random.Random(20261126)


# --- layout: DocLayNet (COCO) and CDLA (labelme) ---

DOCLAYNET_CATEGORIES = ["Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header", "Picture",
                        "Section-header", "Table", "Text", "Title"]


def layout_page(title: str, heading: str, body: list[str], caption: str, footer: str, fonts: dict,
                size=(420, 560)) -> tuple[Image.Image, list[tuple[str, list[int]]]]:
    page = Page(*size)
    blocks = [("Page-header", page.text((24, 12), fonts["header_text"], fonts["small"], (110, 110, 110))),
              ("Title", page.text((24, 40), title, fonts["title"])),
              ("Section-header", page.text((24, 84), heading, fonts["heading"])),
              ("Text", page.paragraph(24, 112, body, fonts["body"]))]
    top = blocks[-1][1][3] + 16
    blocks.append(("Picture", page.picture([24, top, 240, top + 130])))
    blocks.append(("Caption", page.text((24, top + 138), caption, fonts["small"])))
    table_top = top + 170
    blocks.append(("Table", page.grid(24, table_top, fonts["table"], [90, 70, 70], fonts["small"])))
    blocks.append(("Page-footer", page.text((size[0] // 2 - 10, size[1] - 26), footer, fonts["small"], (110, 110, 110))))
    return page.image, blocks


def make_doclaynet(root: Path) -> None:
    fonts = {"title": font(20, LATIN_BOLD), "heading": font(15, LATIN_BOLD), "body": font(12), "small": font(10),
             "header_text": "Annual Report 2025",
             "table": [["Region", "Q1", "Q2"], ["North", "1.20", "1.45"], ["South", "0.98", "1.10"]]}
    pages = [
        ("Results of the year", "1 Overview", ["Revenue grew in every region while", "costs stayed flat. The board",
                                                "proposes a higher dividend."], "Figure 1: Sales by month.", "3"),
        ("Notes on the method", "2 Data", ["Figures are unaudited and rounded", "to two decimals. Regions follow",
                                          "the 2024 boundaries."], "Figure 2: The survey area.", "4"),
    ]
    coco = {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": n, "supercategory": n} for i, n in enumerate(DOCLAYNET_CATEGORIES)]}
    for page_no, (title, heading, body, caption, footer) in enumerate(pages):
        image, blocks = layout_page(title, heading, body, caption, footer, fonts)
        file_name = f"report-p{page_no + 3:04d}.png"
        save(image, root / "PNG" / file_name)
        coco["images"].append({"id": page_no + 1, "width": image.width, "height": image.height, "file_name": file_name,
                               "doc_category": "financial_reports", "collection": "demo", "doc_name": "report.pdf",
                               "page_no": page_no + 3})
        for label, (x1, y1, x2, y2) in blocks:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": page_no + 1,
                                        "category_id": DOCLAYNET_CATEGORIES.index(label) + 1,
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                        "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]], "iscrowd": 0,
                                        "precedence": 0})
    write_json(root / "COCO" / "train.json", coco, indent=None)


CDLA_OF = {"Page-header": "Header", "Title": "Title", "Section-header": "Title", "Text": "Text", "Picture": "Figure",
           "Caption": "Figure caption", "Table": "Table", "Page-footer": "Footer"}


def make_cdla(root: Path) -> None:
    fonts = {"title": font(20, CJK), "heading": font(15, CJK), "body": font(13, CJK), "small": font(11, CJK),
             "header_text": "中国科技期刊 第12卷",
             "table": [["地区", "一季度", "二季度"], ["华北", "1.20", "1.45"], ["华南", "0.98", "1.10"]]}
    pages = [("城市交通调查", "一、研究背景", ["近年来城市人口持续增长，", "通勤时间明显增加。本文分析", "三个城市的交通数据。"],
              "图1 早高峰客流分布", "12"),
             ("数据与方法", "二、数据来源", ["数据来自公交刷卡记录与", "问卷调查，时间跨度为两年，", "覆盖主要线路。"],
              "图2 调查区域示意", "13")]
    for i, (title, heading, body, caption, footer) in enumerate(pages):
        image, blocks = layout_page(title, heading, body, caption, footer, fonts)
        name = f"train_{i:04d}"
        save(image, root / "train" / f"{name}.jpg")
        shapes = [{"label": CDLA_OF[label], "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]], "group_id": None,
                   "shape_type": "polygon", "flags": {}} for label, (x1, y1, x2, y2) in blocks]
        write_json(root / "train" / f"{name}.json",
                   {"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": f"{name}.jpg", "imageData": None,
                    "imageHeight": image.height, "imageWidth": image.width})


# --- key information: FUNSD, XFUND, SROIE, WildReceipt ---

def form_page(header: str, pairs: list[tuple[str, str]], fnt, bold, size=(460, 320)) -> tuple[Image.Image, list[dict]]:
    """A form: a header, then question/answer pairs; FUNSD-shaped entities with words and links."""
    page = Page(*size)
    entities = []
    box, words = page.words((20, 16), header, bold)
    entities.append({"box": box, "text": header, "label": "header", "words": words, "linking": [], "id": 0})
    y = 60
    for question, answer in pairs:
        q_box, q_words = page.words((20, y), question, bold)
        q = {"box": q_box, "text": question, "label": "question", "words": q_words, "linking": [], "id": len(entities)}
        entities.append(q)
        if answer:
            a_box, a_words = page.words((200, y), answer, fnt)
            page.draw.line((196, a_box[3] + 3, size[0] - 20, a_box[3] + 3), fill=(150, 150, 150))
            a = {"box": a_box, "text": answer, "label": "answer", "words": a_words, "linking": [], "id": len(entities)}
            entities.append(a)
            q["linking"].append([q["id"], a["id"]])
            a["linking"].append([q["id"], a["id"]])
        y += 44
    other_box, other_words = page.words((20, size[1] - 28), "Form 7-B rev. 3", font(10, LATIN))
    entities.append({"box": other_box, "text": "Form 7-B rev. 3", "label": "other", "words": other_words,
                     "linking": [], "id": len(entities)})
    return page.image, entities


def make_funsd(root: Path) -> None:
    forms = {
        "0000971160": ("FAX TRANSMITTAL", [("TO:", "Dr. Helen Park"), ("FROM:", "R. Osei"), ("DATE:", "March 4, 1998"),
                                           ("PAGES:", "3"), ("SUBJECT:", "")]),
        "0001118259": ("PURCHASE REQUEST", [("Vendor:", "Acme Labs"), ("Item:", "Glass beakers"), ("Quantity:", "24"),
                                            ("Total:", "$118.00")]),
    }
    for name, (header, pairs) in forms.items():
        image, entities = form_page(header, pairs, font(13), font(13, LATIN_BOLD))
        save(image.convert("L"), root / "training_data" / "images" / f"{name}.png")
        write_json(root / "training_data" / "annotations" / f"{name}.json", {"form": entities})


def make_xfund(root: Path) -> None:
    documents = []
    forms = [("报销申请单", [("姓名：", "王小明"), ("部门：", "财务部"), ("金额：", "1280元"), ("日期：", "2025年3月2日")]),
             ("入职登记表", [("姓名：", "李华"), ("职位：", "工程师"), ("电话：", "13800001234")])]
    for i, (header, pairs) in enumerate(forms):
        image, entities = form_page(header, pairs, font(15, CJK), font(15, CJK))
        fname = f"zh_train_{i}.jpg"
        save(image, root / "zh.train" / fname)
        documents.append({"id": f"zh_train_{i}", "uid": f"{rng.getrandbits(64):016x}", "document": entities,
                          "img": {"fname": fname, "width": image.width, "height": image.height}})
    write_json(root / "zh.train.json", {"lang": "zh", "version": "0.1", "split": "train", "documents": documents},
               indent=None)


def receipt_page(rows: list[tuple[str, str | None]], size=(300, 420)) -> tuple[Image.Image, list[tuple[str, str | None, list]]]:
    """A till receipt: each row (text, label) drawn on its own line; returns (text, label, quad) per row."""
    page = Page(*size)
    page.image.paste((250, 248, 240), (0, 0, *size))
    fnt = font(13, "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
    drawn = []
    y = 14
    for text, label in rows:
        x1, y1, x2, y2 = page.text((16, y), text, fnt)
        drawn.append((text, label, [x1, y1, x2, y1, x2, y2, x1, y2]))
        y += 22
    return page.image, drawn


RECEIPTS = [
    [("CORNER CAFE SDN BHD", "company"), ("12 JALAN ELM, 50450 KUALA LUMPUR", "address"), ("DATE: 03/02/2019", "date"),
     ("ESPRESSO        2.50", None), ("CROISSANT       3.20", None), ("TOTAL          5.70", "total")],
    [("GREEN MARKET", "company"), ("3 STATION ROAD, PETALING JAYA", "address"), ("14/05/2018 10:22", "date"),
     ("APPLES 1KG      6.90", None), ("BREAD           4.10", None), ("ROUNDING        0.00", None),
     ("TOTAL RM      11.00", "total")],
]
SROIE_VALUES = [{"company": "CORNER CAFE SDN BHD", "date": "03/02/2019", "address": "12 JALAN ELM, 50450 KUALA LUMPUR",
                 "total": "5.70"},
                {"company": "GREEN MARKET", "date": "14/05/2018", "address": "3 STATION ROAD, PETALING JAYA",
                 "total": "11.00"}]


def make_sroie(root: Path) -> None:
    for i, (rows, values) in enumerate(zip(RECEIPTS, SROIE_VALUES)):
        name = f"X5100000{i:04d}"
        image, drawn = receipt_page(rows)
        save(image, root / "train" / "img" / f"{name}.jpg")
        lines = [",".join(str(v) for v in quad) + "," + text for text, _, quad in drawn]
        (root / "train" / "box").mkdir(parents=True, exist_ok=True)
        (root / "train" / "box" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_json(root / "train" / "entities" / f"{name}.txt", values, indent=4)


WILDRECEIPT_CLASSES = ["Ignore", "Store_name_value", "Store_name_key", "Store_addr_value", "Store_addr_key", "Tel_value",
                       "Tel_key", "Date_value", "Date_key", "Time_value", "Time_key", "Prod_item_value", "Prod_item_key",
                       "Prod_quantity_value", "Prod_quantity_key", "Prod_price_value", "Prod_price_key",
                       "Subtotal_value", "Subtotal_key", "Tax_value", "Tax_key", "Tips_value", "Tips_key",
                       "Total_value", "Total_key", "Others"]


def make_wildreceipt(root: Path) -> None:
    receipts = [
        [("HILLTOP BAKERY", "Store_name_value"), ("Tel: 555-0142", "Others"), ("Date:", "Date_key"),
         ("2021-06-01", "Date_value"), ("Rye loaf", "Prod_item_value"), ("4.20", "Prod_price_value"),
         ("Scone", "Prod_item_value"), ("2.10", "Prod_price_value"), ("Total", "Total_key"), ("6.30", "Total_value")],
        [("RIVERSIDE DELI", "Store_name_value"), ("88 River St", "Store_addr_value"), ("Soup", "Prod_item_value"),
         ("5.00", "Prod_price_value"), ("Tax", "Tax_key"), ("0.40", "Tax_value"), ("Total", "Total_key"),
         ("5.40", "Total_value")],
    ]
    (root / "class_list.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "class_list.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(WILDRECEIPT_CLASSES)))
    lines = []
    for i, rows in enumerate(receipts):
        image, drawn = receipt_page(rows, size=(280, 260))
        file_name = f"image_files/Image_{i}/0/receipt_{i}.jpeg"
        save(image, root / file_name)
        lines.append(json.dumps({"file_name": file_name, "height": image.height, "width": image.width,
                                 "annotations": [{"box": quad, "text": text, "label": WILDRECEIPT_CLASSES.index(label)}
                                                 for text, label, quad in drawn]}))
    (root / "train.txt").write_text("\n".join(lines) + "\n")


# --- QA: DocVQA, InfographicVQA, ChartQA, TextVQA ---

def letter(title: str, lines: list[str]) -> Image.Image:
    page = Page(400, 300)
    page.text((20, 16), title, font(16, LATIN_BOLD))
    page.paragraph(20, 50, lines, font(12), gap=6)
    return page.image


def bar_chart(title: str, labels: list[str], values: list[int]) -> Image.Image:
    page = Page(360, 260)
    page.text((20, 10), title, font(14, LATIN_BOLD))
    for i, (label, value) in enumerate(zip(labels, values)):
        x = 40 + i * 80
        page.draw.rectangle((x, 220 - value * 3, x + 50, 220), fill=(70, 120, 200))
        page.text((x + 12, 225), label, font(11))
        page.text((x + 14, 220 - value * 3 - 16), str(value), font(11))
    return page.image


def make_vqa(root: Path) -> None:
    memo = letter("MEMORANDUM", ["To: All laboratory staff", "From: J. Alvarez, Safety Officer",
                                 "Date: October 12, 1994", "Re: Fire drill on Friday at 10:30 a.m.",
                                 "Please leave by the east stairs."])
    invoice = letter("INVOICE No. 4471", ["Bill to: Harbor Clinic", "Item: 12 boxes of gloves",
                                          "Amount due: $86.40", "Due date: 30 days"])
    save(memo, root / "docvqa" / "documents" / "ffbf0023_4.png")
    save(invoice, root / "docvqa" / "documents" / "gxbj0223_1.png")
    docvqa = [("ffbf0023_4.png", "Who is the memo from?", ["J. Alvarez", "J. Alvarez, Safety Officer"]),
              ("ffbf0023_4.png", "When is the fire drill?", ["Friday at 10:30 a.m.", "Friday at 10:30 a.m."]),
              ("gxbj0223_1.png", "What is the amount due?", ["$86.40"])]
    write_json(root / "docvqa" / "train_v1.0.json", {
        "dataset_name": "docvqa", "dataset_split": "train", "dataset_version": "1.0",
        "data": [{"questionId": 1000 + i, "question": q, "image": f"documents/{img}", "docId": 20 + i,
                  "ucsf_document_id": img.split("_")[0], "ucsf_document_page_no": img.split("_")[1][:-4],
                  "answers": answers, "data_split": "train"} for i, (img, q, answers) in enumerate(docvqa)]})

    poster = Page(300, 420)
    poster.text((20, 14), "WATER USE AT HOME", font(18, LATIN_BOLD))
    for i, (what, share) in enumerate([("Shower", 27), ("Toilet", 24), ("Laundry", 17), ("Kitchen", 12)]):
        poster.draw.rectangle((20, 60 + i * 80, 20 + share * 9, 110 + i * 80), fill=(90, 170, 220))
        poster.text((24, 70 + i * 80), f"{what} {share}%", font(14, LATIN_BOLD), (255, 255, 255))
    save(poster.image, root / "infovqa" / "infographicVQA_train_v1.0_images" / "37313.jpeg")
    write_json(root / "infovqa" / "infographicVQA_train_v1.0.json", {
        "dataset_name": "infographicVQA", "dataset_version": "1.0", "dataset_split": "train",
        "data": [{"questionId": 65000, "question": "What share of home water use goes to the shower?",
                  "image_local_name": "37313.jpeg", "answers": ["27%"], "answer_type": ["single span"]},
                 {"questionId": 65001, "question": "Which use takes 12%?", "image_local_name": "37313.jpeg",
                  "answers": ["kitchen", "Kitchen"], "answer_type": ["single span"]}]})

    save(bar_chart("Visitors (thousands)", ["2021", "2022", "2023", "2024"], [22, 35, 41, 50]),
         root / "chartqa" / "train" / "png" / "two_col_1001.png")
    save(bar_chart("Rainfall (mm)", ["Jan", "Feb", "Mar"], [48, 30, 55]), root / "chartqa" / "train" / "png" / "multi_col_207.png")
    write_json(root / "chartqa" / "train" / "train_human.json", [
        {"imgname": "two_col_1001.png", "query": "How many visitors were there in 2023?", "label": "41"},
        {"imgname": "two_col_1001.png", "query": "In which year were visitors highest?", "label": "2024"},
        {"imgname": "multi_col_207.png", "query": "What is the difference between March and February rainfall?",
         "label": 25}])

    sign = Page(320, 240)
    sign.image.paste((40, 110, 60), (0, 0, 320, 240))
    sign.draw.rounded_rectangle((40, 60, 280, 170), radius=12, fill=(250, 250, 250))
    sign.text((70, 90), "EXIT 14", font(32, LATIN_BOLD), (20, 90, 40))
    save(sign.image, root / "textvqa" / "train_images" / "0054c91397f2fe05.jpg")
    write_json(root / "textvqa" / "TextVQA_0.5.1_train.json", {
        "dataset_type": "train", "dataset_name": "textvqa", "dataset_version": "0.5.1",
        "data": [{"question": "what exit number is on the sign?", "image_id": "0054c91397f2fe05",
                  "image_classes": ["Street sign"], "flickr_original_url": "", "flickr_300k_url": "",
                  "image_width": 320, "image_height": 240, "answers": ["14"] * 8 + ["exit 14"] * 2,
                  "question_tokens": ["what", "exit", "number", "is", "on", "the", "sign"], "question_id": 34602,
                  "set_name": "train"}]})


# --- tables (PubTabNet) and formulas (im2latex, CROHME) ---

def pubtabnet_table(header: list[tuple[str, int]], rows: list[list[str]], bold_header: bool) -> tuple[Image.Image, dict]:
    """A table image and its PubTabNet annotation (structure tokens, cell tokens, cell content boxes)."""
    columns = sum(span for _, span in header)
    width, height, col_w, row_h = 40 + 90 * columns, 30 + 26 * (len(rows) + 1), 90, 26
    page = Page(width, height)
    fnt, bold = font(12), font(12, LATIN_BOLD)
    structure, cells = ["<thead>", "<tr>"], []
    x = 20
    for text, span in header:
        structure += ["<td>", "</td>"] if span == 1 else ["<td", f' colspan="{span}"', ">", "</td>"]
        box = page.text((x + 6, 18), text, bold if bold_header else fnt)
        tokens = list(text)
        cells.append({"tokens": ["<b>", *tokens, "</b>"] if bold_header else tokens, "bbox": box})
        x += col_w * span
    structure += ["</tr>", "</thead>", "<tbody>"]
    page.draw.line((20, 15 + row_h, width - 20, 15 + row_h), fill=(30, 30, 30), width=2)
    for r, row in enumerate(rows):
        structure.append("<tr>")
        for c, text in enumerate(row):
            structure += ["<td>", "</td>"]
            if text:
                cells.append({"tokens": list(text), "bbox": page.text((20 + c * col_w + 6, 18 + (r + 1) * row_h), text, fnt)})
            else:
                cells.append({"tokens": []})
        structure.append("</tr>")
    structure.append("</tbody>")
    return page.image, {"structure": {"tokens": structure}, "cells": cells}


def make_pubtabnet(root: Path) -> None:
    tables = [
        ("train", "PMC2871264_002_00.png", [("Gene", 1), ("Expression", 2)],
         [["", "Tumor", "Normal"], ["TP53", "2.4 ± 0.3", "1.1"], ["BRCA1", "0.8", "<0.5"]], True),
        ("train", "PMC3160368_005_01.png", [("Group", 1), ("n", 1), ("Age (y)", 1)],
         [["Control", "42", "61.2"], ["Treated", "40", "59.8"]], False),
        ("val", "PMC4219599_004_00.png", [("Dose", 1), ("Response", 1)], [["10 mg", "12%"], ["20 mg", "31%"]], True),
    ]
    lines = []
    for imgid, (split, filename, header, rows, bold) in enumerate(tables):
        image, annotation = pubtabnet_table(header, rows, bold)
        save(image, root / split / filename)
        lines.append(json.dumps({"filename": filename, "split": split, "imgid": imgid, "html": annotation},
                                ensure_ascii=False))
    (root / "PubTabNet_2.0.0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


IM2LATEX_FORMULAS = [  # (LaTeX, how the image shows it)
    ("x ^ { 2 } + y ^ { 2 } = r ^ { 2 }", "x² + y² = r²"),
    ("\\alpha _ { i } = \\sum _ { j } \\beta _ { i j }", "αᵢ = Σⱼ βᵢⱼ"),
    ("E = m c ^ { 2 }", "E = mc²"),
    ("\\frac { 1 } { 2 } \\int _ { 0 } ^ { \\pi } \\sin \\theta \\, d \\theta", "½ ∫₀^π sin θ dθ"),
]


def make_im2latex(root: Path) -> None:
    names = []
    for i, (_, shown) in enumerate(IM2LATEX_FORMULAS):
        name = f"{rng.getrandbits(40):010x}"
        page = Page(40 + int(font(22).getlength(shown)), 50)
        page.text((20, 12), shown, font(22))
        save(page.image.convert("L"), root / "formula_images" / f"{name}.png")
        names.append(name)
    (root / "im2latex_formulas.lst").write_text("".join(f"{latex}\n" for latex, _ in IM2LATEX_FORMULAS))
    (root / "im2latex_train.lst").write_text(f"0 {names[0]} basic\n1 {names[1]} basic\n2 {names[2]} basic\n")
    (root / "im2latex_validate_filter.lst").write_text(f"{names[3]}.png 3\n")


# Strokes of a few symbols in a unit box (y down), one list of points per pen stroke.
GLYPHS = {
    "1": [[(0.3, 0.25), (0.55, 0.0), (0.55, 1.0)]],
    "2": [[(0.1, 0.25), (0.3, 0.02), (0.7, 0.02), (0.85, 0.25), (0.7, 0.55), (0.1, 1.0), (0.9, 1.0)]],
    "x": [[(0.1, 0.3), (0.9, 1.0)], [(0.9, 0.3), (0.1, 1.0)]],
    "y": [[(0.1, 0.3), (0.5, 0.75)], [(0.9, 0.3), (0.3, 1.25)]],
    "+": [[(0.1, 0.55), (0.9, 0.55)], [(0.5, 0.15), (0.5, 0.95)]],
    "-": [[(0.1, 0.55), (0.9, 0.55)]],
    "=": [[(0.1, 0.4), (0.9, 0.4)], [(0.1, 0.7), (0.9, 0.7)]],
}


def inkml(symbols: list[tuple[str, float, float, float]], truth: str) -> str:
    """An InkML document: each (symbol, x, y, size) drawn as jittered pen strokes, grouped per symbol."""
    traces, groups = [], []
    for label, x0, y0, size in symbols:
        ids = []
        for stroke in GLYPHS[label]:
            points = []
            for (ax, ay), (bx, by) in zip(stroke, stroke[1:]):
                for t in (k / 6 for k in range(6)):
                    points.append((x0 + (ax + (bx - ax) * t) * size + rng.uniform(-0.6, 0.6),
                                   y0 + (ay + (by - ay) * t) * size + rng.uniform(-0.6, 0.6)))
            points.append((x0 + stroke[-1][0] * size, y0 + stroke[-1][1] * size))
            ids.append(str(len(traces)))
            traces.append(f'<trace id="{ids[-1]}">\n' + ", ".join(f"{x:.1f} {y:.1f}" for x, y in points) + "\n</trace>")
        name = {"+": "+", "-": "-", "=": "="}.get(label, label)
        views = "".join(f'<traceView traceDataRef="{i}"/>' for i in ids)
        groups.append(f'<traceGroup xml:id="{100 + len(groups)}"><annotation type="truth">{name}</annotation>{views}'
                      f'<annotationXML href="{name}_{len(groups)}"/></traceGroup>')
    return ('<ink xmlns="http://www.w3.org/2003/InkML">\n<traceFormat><channel name="X" type="decimal"/>'
            '<channel name="Y" type="decimal"/></traceFormat>\n<annotation type="writer">docforge-sample</annotation>\n'
            f'<annotation type="truth">${truth}$</annotation>\n<annotation type="UI">sample</annotation>\n'
            + "\n".join(traces) + '\n<traceGroup xml:id="99"><annotation type="truth">Segmentation</annotation>\n'
            + "\n".join(groups) + "\n</traceGroup>\n</ink>\n")


def make_crohme(root: Path) -> None:
    expressions = {
        "formulaire001-equation001": ([("x", 0, 0, 40), ("2", 44, -22, 22), ("+", 76, 0, 40), ("1", 124, 0, 40)],
                                      "x^{2}+1"),
        "formulaire001-equation002": ([("y", 0, 0, 40), ("=", 48, 0, 40), ("2", 96, 0, 40), ("x", 140, 0, 40),
                                       ("-", 188, 0, 40), ("1", 236, 0, 40)], "y=2x-1"),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, (symbols, truth) in expressions.items():
        (root / f"{name}.inkml").write_text(inkml(symbols, truth))


def main() -> None:
    makers = {"doclaynet": make_doclaynet, "cdla": make_cdla, "funsd": make_funsd, "xfund": make_xfund,
              "sroie": make_sroie, "wildreceipt": make_wildreceipt, "pubtabnet": make_pubtabnet,
              "im2latex": make_im2latex, "crohme": make_crohme, "ocrvqa": make_ocrvqa, "mmtab": make_mmtab,
              "anyword": make_anyword}
    for name, make in makers.items():
        shutil.rmtree(HERE / name, ignore_errors=True)
        make(HERE / name)
    for name in ("docvqa", "infovqa", "chartqa", "textvqa"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    make_vqa(HERE)


if __name__ == "__main__":
    main()
