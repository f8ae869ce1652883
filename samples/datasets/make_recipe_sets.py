"""Samples of the sets the INF-MLLM2 recipe reads in their own JSON shapes, drawn for `make_datasets.py` (which
writes them with the others): OCR-VQA's dataset.json + images/ (book covers), MMTab-pre's LLaVA-format JSON +
images/table_pretrain_part_1/ (tables with spanning cells), AnyWord-3M's ocr_data/Art/data.json and
wukong_1of5/data_v1.1.json, each beside its imgs/ (scene text, straight, tilted and arched). No random numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from drawing import CJK, LATIN, LATIN_BOLD, Page, font, save, write_json

# --- book covers (OCR-VQA), table images (MMTab), scene text (AnyWord-3M) ---

AMAZON_COVERS = "http://ecx.images-amazon.com/images/I/"
OCRVQA_SPLITS = {"train": 1, "val": 2, "test": 3}  # dataset.json's split codes
OCRVQA_BOOKS = [  # image id (an ASIN or ISBN-10, some with their leading zero lost), Amazon's image name, the
    # title as drawn (lines) and as listed, author, genre, split, cover and ink colours, OCR-VQA-templated QA
    ("812974921", "51Kq8fRZ0wL", ["THE HARBOR", "KITCHEN"], "The Harbor Kitchen: Simple Seafood at Home",
     "Marta Ellison", "Cookbooks, Food & Wine", "train", (196, 70, 52), (250, 240, 220),
     [("Who wrote this book?", "Marta Ellison"),
      ("What is the title of this book?", "The Harbor Kitchen: Simple Seafood at Home"),
      ("What type of book is this?", "Cookbooks, Food & Wine"), ("Is this a religious book?", "No"),
      ("Is this book related to Cookbooks, Food & Wine?", "Yes")]),
    ("1601429371", "41pW2mTq3EL", ["PRAYERS", "FOR EVERY", "MORNING"], "Prayers for Every Morning",
     "Daniel Okafor", "Religion & Spirituality", "train", (40, 60, 110), (235, 215, 140),
     [("Who is the author of this book?", "Daniel Okafor"),
      ("What is the title of this book?", "Prayers for Every Morning"),
      ("What is the genre of this book?", "Religion & Spirituality"), ("Is this a religious book?", "Yes"),
      ("Is this book related to Travel?", "No")]),
    ("B00J4Q7VXK", "51yN0cHs6kL", ["DESERT", "ROADS"], "Desert Roads: A Travel Journal", "Lena Voss", "Travel",
     "val", (222, 160, 70), (60, 40, 30),
     [("Who wrote this book?", "Lena Voss"), ("What is the title of this book?", "Desert Roads: A Travel Journal"),
      ("Is this a travel book?", "Yes"), ("Is this a religious book?", "No")]),
]


def book_cover(title: list[str], author: str, paper: tuple, ink: tuple) -> Image.Image:
    """A cover thumbnail: the title's lines, a picture, the author's name at the foot."""
    page = Page(150, 220)
    page.image.paste(paper, (0, 0, 150, 220))
    y = 16
    for line in title:
        page.text((12, y), line, font(16, LATIN_BOLD), ink)
        y += 22
    page.draw.ellipse((45, y + 14, 105, y + 74), outline=ink, width=3)
    page.draw.line((12, 186, 138, 186), fill=ink, width=1)
    page.text((12, 192), author, font(11), ink)
    return page.image


def make_ocrvqa(root: Path) -> None:
    dataset = {}
    for image_id, amazon, drawn, title, author, genre, split, paper, ink, qa in OCRVQA_BOOKS:
        save(book_cover(drawn, author, paper, ink), root / "images" / f"{image_id}.jpg")
        dataset[image_id] = {"imageURL": f"{AMAZON_COVERS}{amazon}.jpg", "questions": [q for q, _ in qa],
                             "answers": [a for _, a in qa], "title": title, "authorName": author, "genre": genre,
                             "split": OCRVQA_SPLITS[split]}
    write_json(root / "dataset.json", dataset, indent=4)


Cell = tuple[str, int, int]  # (text, colspan, rowspan)


def span_table(rows: list[list[Cell]], header_rows: int,
               widths: list[int]) -> tuple[Image.Image, list[list[str]], str]:
    """A ruled table with spanning cells (the first `header_rows` rows bold): its image, the text of every
    grid slot (a spanning cell's in each slot it covers) and the HTML MMTab answers with."""
    height = 26
    grid: list[list[str | None]] = [[None] * len(widths) for _ in rows]
    page = Page(sum(widths) + 21, height * len(rows) + 21)
    html = []
    for r, row in enumerate(rows):
        tag = "th" if r < header_rows else "td"
        html.append("<tr>")
        c = 0
        for text, colspan, rowspan in row:
            while grid[r][c] is not None:
                c += 1
            for rr in range(r, r + rowspan):
                for cc in range(c, c + colspan):
                    grid[rr][cc] = text
            x, y = 10 + sum(widths[:c]), 10 + r * height
            page.draw.rectangle((x, y, x + sum(widths[c:c + colspan]), y + rowspan * height), outline=(60, 60, 60))
            page.text((x + 6, y + 6), text, font(12, LATIN_BOLD if r < header_rows else LATIN))
            spans = (f' colspan="{colspan}"' if colspan > 1 else "") + (f' rowspan="{rowspan}"' if rowspan > 1 else "")
            html.append(f"<{tag}{spans}>{text}</{tag}>")
            c += colspan
        html.append("</tr>")
    return page.image, grid, "<html><body><table>\n" + "\n".join(html) + "\n</table></body></html>"


def markdown_table(grid: list[list[str]]) -> str:
    """The table as Markdown, which has no spans: a spanning cell's text repeated in each slot."""
    lines = ["| " + " | ".join(row) + " |" for row in grid]
    return "\n".join([lines[0], "| " + " | ".join("---" for _ in grid[0]) + " |", *lines[1:]])


MMTAB_TABLES = {  # image name (the source benchmark's item) -> (rows of (text, colspan, rowspan), header rows, widths)
    "TABMWP_1207": ([[("Books read this month", 2, 1)], [("Name", 1, 1), ("Number of books", 1, 1)],
                     [("Priya", 1, 1), ("6", 1, 1)], [("Tomas", 1, 1), ("3", 1, 1)], [("Keiko", 1, 1), ("8", 1, 1)]],
                    2, [90, 130]),
    "HiTab_318": ([[("Region", 1, 2), ("Employment rate (%)", 2, 1)], [("2019", 1, 1), ("2020", 1, 1)],
                   [("North", 1, 1), ("71.4", 1, 1), ("68.9", 1, 1)],
                   [("Coast", 1, 1), ("66.2", 1, 1), ("63.0", 1, 1)]],
                  2, [80, 80, 80]),
    "WTQ_204-csv_441": ([[("Season", 1, 2), ("Club", 1, 2), ("League", 2, 1)], [("Apps", 1, 1), ("Goals", 1, 1)],
                         [("2015-16", 1, 1), ("Rovers", 1, 1), ("31", 1, 1), ("9", 1, 1)],
                         [("2016-17", 1, 1), ("Rovers", 1, 1), ("28", 1, 1), ("12", 1, 1)]],
                        2, [76, 76, 56, 56]),
}
MMTAB_REQUESTS = [  # (image name, table form asked for, request)
    ("TABMWP_1207", "html", "Recognize the table in this image and write it out in HTML."),
    ("HiTab_318", "html", "Convert the table shown in the picture into HTML code, keeping merged cells."),
    ("TABMWP_1207", "markdown", "Please give the Markdown version of the table in this image."),
    ("WTQ_204-csv_441", "html", "Could you write this table image as an HTML table?"),
]


def make_mmtab(root: Path) -> None:
    answers = {}
    for name, (rows, header_rows, widths) in MMTAB_TABLES.items():
        image, grid, html = span_table(rows, header_rows, widths)
        save(image, root / "images" / "table_pretrain_part_1" / f"{name}.jpg")
        answers[name] = {"html": html, "markdown": markdown_table(grid)}
    records = [{"id": name, "image": f"table_pretrain_part_1/{name}.jpg",
                "conversations": [{"from": "human", "value": f"<image>\n{request}"},
                                  {"from": "gpt", "value": answers[name][form]}]}
               for name, form, request in MMTAB_REQUESTS]
    write_json(root / "MMTab-pre_pretrain_data_llava_format_150K.json", records, indent=2)


def straight_line(page: Page, xy, text: str, fnt, fill) -> list[list[int]]:
    """Text drawn level; its polygon is the ink's box with a 3 px margin."""
    x1, y1, x2, y2 = page.text(xy, text, fnt, fill)
    return [[x1 - 3, y1 - 3], [x2 + 3, y1 - 3], [x2 + 3, y2 + 3], [x1 - 3, y2 + 3]]


def tilted_line(page: Page, xy, text: str, fnt, fill, angle: float) -> list[list[int]]:
    """Text drawn turned `angle` degrees anticlockwise about its centre, its top-left corner near `xy`; its
    polygon is the turned box (4 points, clockwise from the text's top-left)."""
    x1, y1, x2, y2 = fnt.getbbox(text)
    w, h = x2 - x1 + 6, y2 - y1 + 6
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((3 - x1, 3 - y1), text, font=fnt, fill=fill)
    turned = layer.rotate(angle, expand=True, resample=Image.BICUBIC)
    page.image.paste(turned, xy, turned)
    a = math.radians(angle)
    cx, cy = xy[0] + turned.width / 2, xy[1] + turned.height / 2
    return [[round(cx + (px - w / 2) * math.cos(a) + (py - h / 2) * math.sin(a)),
             round(cy - (px - w / 2) * math.sin(a) + (py - h / 2) * math.cos(a))]
            for px, py in ((0, 0), (w, 0), (w, h), (0, h))]


def arched_line(page: Page, x: int, base: int, text: str, fnt, fill, rise: int) -> list[list[int]]:
    """Text set letter by letter along an arch `rise` px high (ArT's curved text); its polygon follows the
    arch: points along the top left to right, then along the bottom right to left."""
    width = fnt.getlength(text)
    _, top, _, bottom = fnt.getbbox("A")

    def lift(u: float) -> float:  # how high the arch is at `u` px along the text
        return rise * (1 - (2 * u / width - 1) ** 2)

    u = 0.0
    for char in text:
        centre = u + fnt.getlength(char) / 2
        page.draw.text((x + u, base - lift(centre) - bottom), char, font=fnt, fill=fill)
        u += fnt.getlength(char)
    steps = [width * k / 6 for k in range(7)]
    upper = [[round(x + s), round(base - lift(s) - bottom + top - 4)] for s in steps]
    lower = [[round(x + s), round(base - lift(s) + 4)] for s in reversed(steps)]
    return upper + lower


def scene(size, sky, ground) -> Page:
    """A street-photo backdrop: sky over the lower third's ground."""
    page = Page(*size)
    page.image.paste(sky, (0, 0, size[0], size[1] * 2 // 3))
    page.image.paste(ground, (0, size[1] * 2 // 3, *size))
    return page


AUTHORS_DATA = "/data/vdb/yuxiang.tyx/AIGC/data"  # where AnyWord-3M's shipped data_root points


def make_anyword(root: Path) -> None:
    bakery = scene((320, 240), (150, 185, 215), (120, 110, 100))
    bakery.draw.rectangle((30, 60, 290, 220), fill=(235, 225, 205))
    bakery.draw.rectangle((110, 150, 210, 220), fill=(90, 60, 40))
    arch = arched_line(bakery, 48, 60, "SUNRISE BAKERY", font(22, LATIN_BOLD), (160, 40, 30), 22)
    bread = straight_line(bakery, (68, 100), "FRESH BREAD DAILY", font(16, LATIN_BOLD), (60, 50, 40))
    bakery.draw.rectangle((226, 160, 282, 196), fill=(250, 250, 250))
    open_sign = tilted_line(bakery, (228, 160), "OPEN", font(16, LATIN_BOLD), (30, 120, 60), 8)
    street = scene((320, 240), (200, 205, 210), (90, 90, 95))
    street.draw.rectangle((150, 40, 156, 240), fill=(70, 70, 70))
    street.draw.rectangle((70, 40, 236, 80), fill=(20, 110, 60))
    maple = straight_line(street, (84, 46), "MAPLE AVE", font(22, LATIN_BOLD), (250, 250, 250))
    street.draw.rectangle((96, 100, 210, 130), fill=(20, 20, 20))
    one_way = straight_line(street, (112, 104), "ONE WAY", font(16, LATIN_BOLD), (250, 250, 250))
    art = root / "ocr_data" / "Art"
    save(bakery.image, art / "imgs" / "gt_1024.jpg")
    save(street.image, art / "imgs" / "gt_2311.jpg")
    write_json(art / "data.json", {"data_root": f"{AUTHORS_DATA}/ocr_data/Art/imgs", "data_list": [
        {"img_name": "gt_1024.jpg", "caption": "a bakery shop front with a sign above the door",
         "annotations": [{"polygon": arch, "text": "SUNRISE BAKERY", "language": "Latin", "valid": True},
                         {"polygon": bread, "text": "FRESH BREAD DAILY", "language": "Latin", "valid": True},
                         {"polygon": open_sign, "text": "OPEN", "language": "Latin", "valid": True}]},
        {"img_name": "gt_2311.jpg", "caption": "a green street sign on a pole",
         "annotations": [{"polygon": maple, "text": "MAPLE AVE", "language": "Latin", "valid": True},
                         {"polygon": one_way, "text": "ONE WAY", "language": "Latin", "valid": True}]}]},
               indent=None)

    noodles = scene((320, 240), (175, 180, 185), (110, 100, 95))
    noodles.draw.rectangle((20, 30, 300, 96), fill=(180, 30, 30))
    name = straight_line(noodles, (70, 38), "老王面馆", font(40, CJK), (250, 220, 120))
    noodles.draw.rectangle((60, 120, 260, 160), fill=(245, 240, 230))
    menu = straight_line(noodles, (76, 124), "手工拉面 牛肉面", font(20, CJK), (40, 40, 40))
    hours = straight_line(noodles, (236, 210), "营业时间", font(9, CJK), (230, 230, 230))
    wukong = root / "wukong_1of5"
    save(noodles.image, wukong / "imgs" / "000731.jpg")
    write_json(wukong / "data_v1.1.json", {"data_root": f"{AUTHORS_DATA}/wukong_word/wukong_1of5/imgs", "data_list": [
        {"img_name": "000731.jpg", "caption": "a red sign over a noodle restaurant", "wm_score": 0.04,
         "annotations": [{"polygon": name, "text": "老王面馆", "language": "Chinese", "valid": True, "pos": 1},
                         {"polygon": menu, "text": "手工拉面 牛肉面", "language": "Chinese", "valid": True, "pos": 4},
                         {"polygon": hours, "text": "营业时间", "language": "Chinese", "valid": False, "pos": 8}]}]},
               indent=None)
