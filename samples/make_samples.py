"""Generates the bundled demo inputs; run once, outputs are committed.

    .venv/bin/python samples/make_samples.py

Draws every sample image with PIL (seeded, so a rerun gives the same pictures) and writes:
  samples/img2dataset/00000/KEY.{jpg,txt,json} + 00000_stats.json  (img2dataset folder layout)
  samples/llava/images/...                                           (images for conversations.json)
The captions below and the conversations in samples/llava/conversations.json are written by hand
to describe exactly what is drawn here; change a drawing and update its text with it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"sans": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "sans-bold": "DejaVuSans-Bold.ttf", "serif": "DejaVuSerif.ttf",
              "serif-bold": "DejaVuSerif-Bold.ttf", "mono": "DejaVuSansMono.ttf", "mono-bold": "DejaVuSansMono-Bold.ttf",
              "hand": "DejaVuSerif-Italic.ttf"}
rng = random.Random(20240601)


def font(size: int, style: str = "sans") -> ImageFont.FreeTypeFont:
    path = FONT_DIR / FONT_FILES[style]
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


def canvas(width: int, height: int, color="white") -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width, height), color)
    return image, ImageDraw.Draw(image)


def paragraph(draw: ImageDraw.ImageDraw, x: int, y: int, text: str, fnt, width: int, gap: int = 6) -> int:
    """Draw `text` word-wrapped to `width` pixels from (x, y); return the y below it."""
    line = ""
    for word in text.split() + [None]:
        if word is not None and draw.textlength(f"{line} {word}".strip(), font=fnt) <= width:
            line = f"{line} {word}".strip()
            continue
        draw.text((x, y), line, fill=(30, 30, 30), font=fnt)
        y += fnt.size + gap
        line = word or ""
    return y


def vertical_text(image: Image.Image, center: tuple[int, int], text: str, fnt) -> None:
    label = Image.new("RGBA", (int(fnt.getlength(text)) + 4, fnt.size + 6), (0, 0, 0, 0))
    ImageDraw.Draw(label).text((2, 0), text, fill=(40, 40, 40), font=fnt)
    label = label.rotate(90, expand=True)
    image.paste(label, (center[0] - label.width // 2, center[1] - label.height // 2), label)


def bar_chart(size, title, labels, values, xlabel, ylabel, ymax, step, color) -> Image.Image:
    image, draw = canvas(*size)
    w, h = size
    left, right, top, bottom = 90, w - 30, 70, h - 70
    draw.text((w // 2, 30), title, fill="black", font=font(22, "bold"), anchor="mm")
    for tick in range(0, ymax + 1, step):
        y = bottom - (bottom - top) * tick / ymax
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.text((left - 8, y), str(tick), fill=(60, 60, 60), font=font(14), anchor="rm")
    slot = (right - left) / len(values)
    for i, (label, value) in enumerate(zip(labels, values)):
        x0, x1 = left + slot * (i + 0.2), left + slot * (i + 0.8)
        y0 = bottom - (bottom - top) * value / ymax
        draw.rectangle((x0, y0, x1, bottom), fill=color)
        draw.text(((x0 + x1) / 2, y0 - 6), str(value), fill="black", font=font(15, "bold"), anchor="mb")
        draw.text(((x0 + x1) / 2, bottom + 8), label, fill="black", font=font(15), anchor="mt")
    draw.line((left, top, left, bottom, right, bottom), fill="black", width=2)
    draw.text(((left + right) / 2, h - 18), xlabel, fill=(40, 40, 40), font=font(16), anchor="mm")
    vertical_text(image, (28, (top + bottom) // 2), ylabel, font(16))
    return image


def line_chart(size, title, labels, values, ylabel, ymin, ymax, step, color) -> Image.Image:
    image, draw = canvas(*size)
    w, h = size
    left, right, top, bottom = 90, w - 40, 70, h - 60
    draw.text((w // 2, 30), title, fill="black", font=font(22, "bold"), anchor="mm")
    for tick in range(ymin, ymax + 1, step):
        y = bottom - (bottom - top) * (tick - ymin) / (ymax - ymin)
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.text((left - 8, y), str(tick), fill=(60, 60, 60), font=font(14), anchor="rm")
    points = []
    for i, (label, value) in enumerate(zip(labels, values)):
        x = left + (right - left) * (i + 0.5) / len(values)
        points.append((x, bottom - (bottom - top) * (value - ymin) / (ymax - ymin)))
        draw.text((x, bottom + 8), label, fill="black", font=font(15), anchor="mt")
    draw.line(points, fill=color, width=4, joint="curve")
    for (x, y), value in zip(points, values):
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill="white", outline=color, width=3)
        draw.text((x, y - 12), str(value), fill="black", font=font(14, "bold"), anchor="mb")
    draw.line((left, top, left, bottom, right, bottom), fill="black", width=2)
    vertical_text(image, (28, (top + bottom) // 2), ylabel, font(16))
    return image


def table(size, title, header, rows) -> Image.Image:
    image, draw = canvas(*size)
    w, h = size
    draw.text((w // 2, 32), title, fill="black", font=font(22, "bold"), anchor="mm")
    left, top, right = 30, 65, w - 30
    row_h = (h - top - 25) // (len(rows) + 1)
    col_w = (right - left) / len(header)
    draw.rectangle((left, top, right, top + row_h), fill=(205, 212, 222))
    for r, row in enumerate([header] + rows):
        y = top + r * row_h + row_h / 2
        for c, cell in enumerate(row):
            style = "bold" if r == 0 or c == 0 else "sans"
            x, anchor = (left + c * col_w + 12, "lm") if c == 0 else (left + (c + 1) * col_w - 12, "rm")
            draw.text((x, y), str(cell), fill="black", font=font(17, style), anchor=anchor)
    for r in range(len(rows) + 2):
        draw.line((left, top + r * row_h, right, top + r * row_h), fill=(90, 90, 90), width=1)
    for c in range(len(header) + 1):
        draw.line((left + c * col_w, top, left + c * col_w, top + (len(rows) + 1) * row_h), fill=(90, 90, 90))
    return image


def receipt(size, shop, address, items, tax_rate, footer) -> Image.Image:
    w, h = size
    image, draw = canvas(w, h, (236, 232, 222))
    draw.rectangle((14, 10, w - 14, h - 10), fill=(253, 252, 247))
    mono, bold = font(15, "mono"), font(15, "mono-bold")
    draw.text((w // 2, 40), shop, fill="black", font=font(22, "mono-bold"), anchor="mm")
    draw.text((w // 2, 68), address, fill=(60, 60, 60), font=mono, anchor="mm")
    y = 100
    dashes = lambda: draw.text((w // 2, y), "-" * ((w - 50) // 9), fill=(90, 90, 90), font=mono, anchor="mm")
    dashes()
    y += 26
    subtotal = 0.0
    for name, price in items:
        draw.text((30, y), name, fill="black", font=mono, anchor="lm")
        draw.text((w - 30, y), f"{price:.2f}", fill="black", font=mono, anchor="rm")
        subtotal += price
        y += 26
    dashes()
    tax = round(subtotal * tax_rate, 2)
    for label, amount, fnt in (("Subtotal", subtotal, mono), (f"Tax {tax_rate:.0%}", tax, mono),
                               ("TOTAL", subtotal + tax, bold)):
        y += 26
        draw.text((30, y), label, fill="black", font=fnt, anchor="lm")
        draw.text((w - 30, y), f"{amount:.2f}", fill="black", font=fnt, anchor="rm")
    y += 50
    draw.text((w // 2, y), footer, fill=(60, 60, 60), font=mono, anchor="mm")
    for i in range(12):  # a barcode-like strip
        x = 60 + i * (w - 120) / 12
        draw.rectangle((x, y + 30, x + rng.choice((2, 3, 5)), y + 70), fill="black")
    return image


def document(size, title, byline, sections, style="serif") -> Image.Image:
    w, h = size
    image, draw = canvas(w, h, (250, 250, 246))
    margin = 60
    y = paragraph(draw, margin, 55, title, font(28, f"{style}-bold"), w - 2 * margin, 8)
    draw.text((margin, y + 4), byline, fill=(90, 90, 90), font=font(15, "sans"))
    y += 40
    draw.line((margin, y, w - margin, y), fill=(120, 120, 120), width=2)
    y += 20
    for heading, paragraphs in sections:
        if heading:
            draw.text((margin, y), heading, fill="black", font=font(19, f"{style}-bold"))
            y += 32
        for text in paragraphs:
            y = paragraph(draw, margin, y, text, font(15, style), w - 2 * margin) + 12
    draw.text((w // 2, h - 30), "1", fill=(90, 90, 90), font=font(13), anchor="mm")
    return image


# --- img2dataset captions: (drawing, caption) ------------------------------------------------------------

def shapes() -> Image.Image:
    image, draw = canvas(480, 360, (218, 218, 218))
    draw.ellipse((40, 90, 170, 220), fill=(210, 40, 40))
    draw.rectangle((190, 150, 310, 270), fill=(40, 80, 200))
    draw.polygon([(400, 70), (460, 190), (340, 190)], fill=(240, 200, 30))
    return image


def handwritten_formula() -> Image.Image:
    image, draw = canvas(640, 240, (252, 250, 238))
    for y in range(40, 240, 36):
        draw.line((0, y, 640, y), fill=(170, 200, 230), width=1)
    draw.line((70, 0, 70, 240), fill=(230, 150, 150), width=2)
    x = 120
    for char in "a² + b² = c²":
        fnt = font(64 if char != "²" else 44, "hand")
        glyph = Image.new("RGBA", (90, 110), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((10, 10), char, fill=(25, 45, 140), font=fnt)
        glyph = glyph.rotate(rng.uniform(-8, 8), resample=Image.BICUBIC)
        lift = 18 if char == "²" else 0
        image.paste(glyph, (int(x), int(80 - lift + rng.uniform(-4, 4))), glyph)
        x += fnt.getlength(char) + rng.uniform(0, 6)
    return image


def sunset_house() -> Image.Image:
    w, h = 800, 600
    image, draw = canvas(w, h)
    top, bottom = (250, 140, 50), (90, 40, 120)
    for y in range(440):
        t = y / 440
        draw.line((0, 439 - y, w, 439 - y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    draw.ellipse((480, 330, 700, 550), fill=(255, 210, 90))
    draw.rectangle((0, 440, w, h), fill=(40, 55, 35))
    draw.rectangle((170, 330, 390, 470), fill=(205, 185, 150))
    draw.polygon([(150, 335), (280, 230), (410, 335)], fill=(170, 35, 30))
    draw.rectangle((200, 370, 260, 420), fill=(255, 225, 90))
    draw.line((230, 370, 230, 420), fill=(90, 60, 40), width=3)
    draw.rectangle((300, 390, 350, 470), fill=(90, 60, 40))
    return image


def pie_chart() -> Image.Image:
    image, draw = canvas(400, 400)
    draw.text((200, 30), "Energy mix", fill="black", font=font(22, "bold"), anchor="mm")
    start = -90.0
    for label, share, color in (("Solar", 40, (245, 180, 30)), ("Wind", 35, (60, 130, 210)),
                                ("Hydro", 25, (50, 170, 110))):
        end = start + 360 * share / 100
        draw.pieslice((70, 75, 330, 335), start, end, fill=color, outline="white", width=3)
        draw.rectangle((70 + (start + 90) * 0.75, 355, 85 + (start + 90) * 0.75, 370), fill=color)
        draw.text((90 + (start + 90) * 0.75, 362), f"{label} {share}%", fill="black", font=font(14), anchor="lm")
        start = end
    return image


def night_sky() -> Image.Image:
    w, h = 800, 1000
    image, draw = canvas(w, h)
    for y in range(h):
        t = y / h
        draw.line((0, y, w, y), fill=(int(8 + 20 * t), int(12 + 30 * t), int(40 + 60 * t)))
    for _ in range(260):
        x, y, r = rng.uniform(0, w), rng.uniform(0, 700), rng.choice((1, 1, 1, 2, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, rng.randint(210, 255)))
    crescent = Image.new("L", (w, h), 0)
    ImageDraw.Draw(crescent).ellipse((520, 140, 660, 280), fill=255)
    ImageDraw.Draw(crescent).ellipse((555, 120, 690, 255), fill=0)  # bites the crescent out of the full moon
    image.paste((250, 245, 210), (0, 0), crescent)
    draw.polygon([(0, 1000), (0, 720), (160, 560), (300, 700), (470, 500), (650, 690), (800, 600), (800, 1000)],
                 fill=(22, 38, 80))
    draw.polygon([(0, 1000), (0, 850), (220, 740), (420, 860), (600, 760), (800, 880), (800, 1000)],
                 fill=(12, 22, 48))
    return image


CAPTIONS = [
    (lambda: bar_chart((640, 480), "Quarterly revenue 2023", ["Q1", "Q2", "Q3", "Q4"], [12, 18, 15, 24],
                       "Quarter", "Revenue (million USD)", 30, 5, (50, 110, 200)),
     'A blue bar chart titled "Quarterly revenue 2023" with bars for Q1 to Q4, the tallest being Q4 at 24 million USD.'),
    (lambda: document((600, 800), "Field Notes on Urban Beekeeping", "City Garden Society - Spring newsletter", [
        (None, ["Rooftop hives have become a familiar sight in many cities. This page collects what our members "
                "learned during their first season with two colonies on the library roof."]),
        ("Choosing a site", ["A hive needs morning sun, shelter from strong wind and a source of water within a "
                             "few hundred metres. Flat roofs work well if the load is checked first.",
                             "Keep the entrance facing away from walkways so that flight paths rise above "
                             "people rather than across them."]),
        ("First harvest", ["By late August each colony had filled two supers. We extracted eleven kilograms of "
                           "light honey with a floral taste, most of it from lime trees along the river."])]),
     'A printed document page titled "Field Notes on Urban Beekeeping" with two section headings and several paragraphs of text.'),
    (lambda: table((560, 360), "Monthly rainfall (mm)", ["City", "Jan", "Feb", "Mar"],
                   [["Oslo", 49, 36, 47], ["Lima", 1, 1, 1], ["Pune", 2, 1, 3], ["Perth", 15, 14, 19]]),
     "A table with a grey header row comparing monthly rainfall in millimetres for Oslo, Lima, Pune and Perth from January to March."),
    (lambda: receipt((320, 560), "CORNER CAFE", "12 Elm Street", [("Espresso", 2.50), ("Croissant", 3.20),
                                                                  ("Orange juice", 4.00)], 0.08, "Thank you!"),
     "A narrow till receipt from Corner Cafe for an espresso, a croissant and an orange juice, with a total of 10.48."),
    (shapes, "A red circle, a blue square and a yellow triangle drawn side by side on a light grey background."),
    (handwritten_formula, "The Pythagorean formula a² + b² = c² handwritten in blue ink on lined notebook paper."),
    (sunset_house, "An orange-to-purple sunset sky with a setting sun behind a small house with a red roof and a lit yellow window."),
    (lambda: line_chart((720, 420), "Daily high temperature", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                        [18, 21, 19, 24, 27, 25, 22], "Temperature (°C)", 10, 30, 5, (220, 80, 40)),
     "A line chart of daily high temperatures from Monday to Sunday, peaking at 27 °C on Friday."),
    (pie_chart, 'A pie chart titled "Energy mix" divided into solar 40%, wind 35% and hydro 25%.'),
    (night_sky, "A starry night sky with a pale crescent moon above two ranges of dark blue mountains."),
]

# --- LLaVA images: path under samples/llava/images -> drawing (conversations.json asks about them) ----------

LLAVA_IMAGES = {
    "docs/page_0.jpg": lambda: document((640, 860), "Quarterly Operations Memo",
                                        "To: All site managers   From: Dana Okafor   Date: 14 March 2024", [
        (None, ["This memo summarises the first quarter at our three warehouses and sets out what each site should "
                "finish before the end of June."]),
        ("Results", ["Orders shipped rose to 48,200, up 9% on the previous quarter. The Riverside site reached "
                     "an on-time rate of 97%, the best of the three, while Hillcrest fell to 88% during the "
                     "February storms."]),
        ("Action items", ["1. Replace the conveyor belts at Hillcrest by 30 April.",
                          "2. Train two new forklift operators at every site.",
                          "3. Send weekly safety reports to the operations office."])], style="sans"),
    "charts/units_by_region.jpg": lambda: bar_chart((640, 480), "Units sold by region", ["North", "South", "East", "West"],
                                                    [120, 85, 150, 95], "Region", "Units sold", 160, 20, (40, 150, 110)),
    "charts/visitors.jpg": lambda: line_chart((700, 420), "Website visitors (thousands)",
                                              ["Jan", "Feb", "Mar", "Apr", "May", "Jun"], [12, 15, 14, 20, 26, 31],
                                              "Visitors (thousands)", 0, 35, 5, (120, 60, 180)),
    "tables/harbor_line.jpg": lambda: table((600, 320), "Harbor Line timetable", ["Station", "Train 101", "Train 103", "Train 105"],
                                            [["Central", "07:15", "08:15", "09:15"], ["Market St", "07:22", "08:22", "09:24"],
                                             ["University", "07:31", "08:31", "09:33"], ["Harbor", "07:40", "08:42", "09:44"]]),
    "receipts/green_market.jpg": lambda: receipt((360, 600), "GREEN MARKET", "3 Station Road",
                                                 [("Apples 3 x 0.80", 2.40), ("Sourdough bread", 2.75), ("Milk 1 l", 1.20),
                                                  ("Coffee beans", 8.90)], 0.05, "Card payment - approved"),
    "shapes/scene.jpg": shapes,
}


def save_jpeg(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=85, optimize=True)


def main() -> None:
    shard = HERE / "img2dataset" / "00000"
    for i, (draw_image, caption) in enumerate(CAPTIONS):
        key = f"{i:09d}"
        image = draw_image()
        save_jpeg(image, shard / f"{key}.jpg")
        (shard / f"{key}.txt").write_text(caption + "\n", encoding="utf-8")
        meta = {"url": f"https://example.com/docforge-demo/{key}.jpg", "key": key, "status": "success",
                "error_message": None, "width": image.width, "height": image.height,
                "original_width": image.width, "original_height": image.height, "caption": caption}
        (shard / f"{key}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    stats = {"count": len(CAPTIONS), "successes": len(CAPTIONS), "failed_to_download": 0, "failed_to_resize": 0,
             "duration": 1.5, "start_time": 1717200000.0, "end_time": 1717200001.5, "status_dict": {"success": len(CAPTIONS)}}
    (shard.parent / "00000_stats.json").write_text(json.dumps(stats, indent=4) + "\n", encoding="utf-8")
    for rel, draw_image in LLAVA_IMAGES.items():
        save_jpeg(draw_image(), HERE / "llava" / "images" / rel)
    print(f"wrote {len(CAPTIONS)} captioned images and {len(LLAVA_IMAGES)} LLaVA images under {HERE}")


if __name__ == "__main__":
    main()
