"""Synthetic key-information documents: receipts and forms drawn from templates, with every field value
known and every key and value boxed, in English and Chinese (issue 9's synthetic KIE).

Pure and seeded: `render_kie_document(kind, lang, fonts, seed)` draws one document with PIL and returns
its JPEG, its fields (`{name: value or [values]}`, as the `kie` task reads them) and its entities in
FUNSD's taxonomy (header / question / answer / other, pixel boxes) with question -> answer links.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

GENERATOR = "docforge.synth.kie_documents"
GENERATOR_VERSION = "1"
KINDS = ("receipt", "form")

VOCABULARY = {
    "en": {
        "stores": ["Corner Cafe", "Green Market", "Hilltop Bakery", "Riverside Deli", "Blue Door Books",
                   "Maple Hardware", "Sunrise Pharmacy", "Harbor Fish Co."],
        "streets": ["Elm Street", "Station Road", "Market Square", "River Lane", "King Avenue", "Mill Road"],
        "cities": ["Springfield", "Riverton", "Lakeside", "Fairview", "Oakham"],
        "items": ["Espresso", "Croissant", "Rye loaf", "Apples 1kg", "Olive oil", "Notebook", "Batteries AA",
                  "Green tea", "Soup of the day", "Paint brush", "Cough drops", "Salmon fillet"],
        "people": ["Helen Park", "Ravi Osei", "Maria Lopez", "Tom Becker", "Aiko Tanaka", "Sam Okafor"],
        "departments": ["Finance", "Research", "Sales", "Logistics", "Human Resources"],
        "form_titles": ["EXPENSE CLAIM", "VISITOR REGISTRATION", "PURCHASE REQUEST", "LEAVE APPLICATION"],
        "keys": {"store": "Store", "address": "Address", "date": "Date:", "time": "Time:", "total": "TOTAL",
                 "subtotal": "Subtotal", "tax": "Tax", "name": "Name:", "department": "Department:",
                 "phone": "Phone:", "amount": "Amount:", "reference": "Reference No.:", "signature": "Signature"},
        "currency": "{:.2f}",
    },
    "zh": {
        "stores": ["街角咖啡", "绿色超市", "山顶面包坊", "河畔熟食店", "蓝门书店", "枫叶五金", "朝阳药房"],
        "streets": ["中山路", "人民大道", "解放街", "建设路", "滨江路", "长安街"],
        "cities": ["上海市", "杭州市", "南京市", "成都市", "武汉市"],
        "items": ["拿铁咖啡", "牛角包", "全麦面包", "苹果一公斤", "橄榄油", "笔记本", "五号电池", "绿茶",
                  "番茄汤", "油漆刷", "润喉糖", "三文鱼"],
        "people": ["王小明", "李华", "张伟", "刘洋", "陈静", "赵磊"],
        "departments": ["财务部", "研发部", "销售部", "物流部", "人事部"],
        "form_titles": ["费用报销单", "访客登记表", "采购申请单", "请假申请表"],
        "keys": {"store": "店名", "address": "地址", "date": "日期：", "time": "时间：", "total": "合计",
                 "subtotal": "小计", "tax": "税额", "name": "姓名：", "department": "部门：", "phone": "电话：",
                 "amount": "金额：", "reference": "编号：", "signature": "签字"},
        "currency": "¥{:.2f}",
    },
}


@dataclass
class KieDocument:
    kind: str
    lang: str
    jpeg: bytes
    width: int
    height: int
    fields: dict[str, Any]
    entities: list[dict[str, Any]] = field(default_factory=list)
    links: list[list[int]] = field(default_factory=list)


class Canvas:
    """A page that records every text run drawn on it as an entity."""

    def __init__(self, width: int, height: int, paper: tuple[int, int, int]):
        self.image = Image.new("RGB", (width, height), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.entities: list[dict[str, Any]] = []
        self.links: list[list[int]] = []

    def text(self, xy: tuple[float, float], text: str, font: ImageFont.FreeTypeFont, label: str,
             anchor: str = "la", ink: tuple[int, int, int] = (25, 25, 30)) -> dict[str, Any]:
        self.draw.text(xy, text, font=font, fill=ink, anchor=anchor)
        box = [round(v) for v in self.draw.textbbox(xy, text, font=font, anchor=anchor)]
        entity = {"id": len(self.entities), "label": label, "text": text, "bbox": box}
        self.entities.append(entity)
        return entity

    def pair(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        self.links.append([key["id"], value["id"]])

    def jpeg(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, "JPEG", quality=88)
        return out.getvalue()


def money(lang: str, value: float) -> str:
    return VOCABULARY[lang]["currency"].format(value)


def some_date(rng: random.Random, lang: str) -> str:
    year, month, day = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    if lang == "zh":
        return f"{year}年{month}月{day}日"
    return rng.choice([f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}"])


def draw_receipt(rng: random.Random, lang: str, font_path: str) -> tuple[Canvas, dict[str, Any]]:
    words = VOCABULARY[lang]
    keys = words["keys"]
    items = rng.sample(words["items"], rng.randint(2, 5))
    prices = [round(rng.uniform(0.5, 40), 2) for _ in items]
    subtotal = round(sum(prices), 2)
    tax = round(subtotal * rng.choice([0.0, 0.05, 0.06, 0.1]), 2)
    store = rng.choice(words["stores"])
    address = (f"{rng.randint(1, 300)} {rng.choice(words['streets'])}, {rng.choice(words['cities'])}" if lang == "en"
               else f"{rng.choice(words['cities'])}{rng.choice(words['streets'])}{rng.randint(1, 300)}号")
    date, time = some_date(rng, lang), f"{rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}"
    size = rng.randint(15, 19)
    body, big = ImageFont.truetype(font_path, size), ImageFont.truetype(font_path, size + 7)
    width = rng.randint(380, 460)
    line = size + rng.randint(8, 12)
    height = 40 + line * (len(items) + 9) + 40
    shade = rng.randint(236, 252)
    canvas = Canvas(width, height, (shade, shade, shade - rng.randint(0, 12)))
    left, right, y = 24, width - 24, 22
    canvas.text((width / 2, y), store, big, "header", anchor="ma")
    y += line + 10
    canvas.text((width / 2, y), address, body, "other", anchor="ma")
    y += line + 6
    for key_name, value in (("date", date), ("time", time)):
        key = canvas.text((left, y), keys[key_name], body, "question")
        canvas.pair(key, canvas.text((key["bbox"][2] + 10, y), value, body, "answer"))
        y += line
    canvas.draw.line((left, y + 2, right, y + 2), fill=(120, 120, 120), width=1)
    y += 12
    for item, price in zip(items, prices):
        canvas.text((left, y), item, body, "other")
        canvas.text((right, y), money(lang, price), body, "other", anchor="ra")
        y += line
    canvas.draw.line((left, y + 2, right, y + 2), fill=(120, 120, 120), width=1)
    y += 12
    for key_name, value, fnt in (("subtotal", subtotal, body), ("tax", tax, body), ("total", subtotal + tax, big)):
        key = canvas.text((left, y), keys[key_name], fnt, "question")
        canvas.pair(key, canvas.text((right, y), money(lang, value), fnt, "answer", anchor="ra"))
        y += line + (6 if fnt is big else 0)
    fields = {"store": store, "address": address, "date": date, "time": time, "items": items,
              "total": money(lang, subtotal + tax)}
    return canvas, fields


def draw_form(rng: random.Random, lang: str, font_path: str) -> tuple[Canvas, dict[str, Any]]:
    words = VOCABULARY[lang]
    keys = words["keys"]
    values = {"name": rng.choice(words["people"]), "department": rng.choice(words["departments"]),
              "date": some_date(rng, lang), "phone": f"{rng.randint(130, 189)}{rng.randint(10000000, 99999999)}",
              "amount": money(lang, round(rng.uniform(10, 5000), 2)), "reference": f"{rng.randint(100000, 999999)}"}
    chosen = rng.sample(list(values), rng.randint(3, len(values)))
    size = rng.randint(16, 20)
    body, title = ImageFont.truetype(font_path, size), ImageFont.truetype(font_path, size + 8)
    width, line = rng.randint(520, 640), size + rng.randint(22, 30)
    height = 110 + line * (len(chosen) + 2)
    canvas = Canvas(width, height, (255, 255, 255))
    canvas.text((width / 2, 24), rng.choice(words["form_titles"]), title, "header", anchor="ma")
    y, value_x = 90, rng.randint(190, 230)
    for name in chosen:
        key = canvas.text((30, y), keys[name], body, "question")
        value = canvas.text((value_x, y), values[name], body, "answer", ink=(20, 40, 120))
        canvas.draw.line((value_x - 4, value["bbox"][3] + 4, width - 30, value["bbox"][3] + 4), fill=(150, 150, 150))
        canvas.pair(key, value)
        y += line
    canvas.text((30, y + 10), keys["signature"], body, "other")
    return canvas, {name: values[name] for name in chosen}


def template_text(lang: str) -> str:
    """Every character the `lang` templates can draw (for checking that fonts have the glyphs)."""
    words = VOCABULARY[lang]
    texts = [t for key in ("stores", "streets", "cities", "items", "people", "departments", "form_titles")
             for t in words[key]]
    texts += list(words["keys"].values()) + [money(lang, 0.0), "0123456789:-/", some_date(random.Random(0), lang)]
    return " ".join(texts + (["号"] if lang == "zh" else []))


def render_kie_document(kind: str, lang: str, fonts: list[str], seed: int) -> KieDocument:
    """One receipt or form: the seed picks the font, the template's values and the layout."""
    if kind not in KINDS:
        raise ValueError(f"unknown KIE document kind {kind!r}; known: {', '.join(KINDS)}")
    if lang not in VOCABULARY:
        raise ValueError(f"no KIE templates for language {lang!r}; known: {', '.join(VOCABULARY)}")
    if not fonts:
        raise ValueError("no fonts to draw the document with")
    rng = random.Random(seed)
    font_path = rng.choice(sorted(fonts))
    canvas, fields = (draw_receipt if kind == "receipt" else draw_form)(rng, lang, font_path)
    return KieDocument(kind, lang, canvas.jpeg(), canvas.image.width, canvas.image.height, fields, canvas.entities,
                       canvas.links)
