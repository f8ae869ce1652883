"""The drawing helpers of the bundled dataset samples (`make_datasets.py`, `make_recipe_sets.py`): fonts, a page
that records the box of everything drawn on it, and writers for the images and JSON files.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LATIN = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LATIN_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def font(size: int, path: str = LATIN) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def write_json(path: Path, data, indent: int | None = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".jpg", ".jpeg"):
        image.save(path, "JPEG", quality=80)
    else:
        image.save(path, "PNG", optimize=True)


class Page:
    """A white page that records the box of everything drawn on it."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy, text: str, fnt, fill=(20, 20, 20)) -> list[int]:
        self.draw.text(xy, text, font=fnt, fill=fill)
        return list(self.draw.textbbox(xy, text, font=fnt))

    def words(self, xy, text: str, fnt) -> tuple[list[int], list[dict]]:
        """Draw space-separated words on one line; the line's box and each word's {text, box}."""
        x, y = xy
        words = []
        for word in text.split(" "):
            box = self.text((x, y), word, fnt)
            words.append({"text": word, "box": box})
            x = box[2] + round(fnt.getlength(" "))
        return [words[0]["box"][0], min(w["box"][1] for w in words), words[-1]["box"][2],
                max(w["box"][3] for w in words)], words

    def paragraph(self, x: int, y: int, lines: list[str], fnt, gap: int = 4) -> list[int]:
        boxes = []
        for line in lines:
            boxes.append(self.text((x, y), line, fnt))
            y += fnt.size + gap
        return [min(b[0] for b in boxes), boxes[0][1], max(b[2] for b in boxes), boxes[-1][3]]

    def picture(self, box: list[int]) -> list[int]:
        self.draw.rectangle(box, fill=(210, 225, 240), outline=(60, 90, 140))
        self.draw.ellipse((box[0] + 10, box[1] + 10, box[0] + 40, box[1] + 40), fill=(240, 180, 60))
        self.draw.polygon([(box[0] + 5, box[3] - 5), ((box[0] + box[2]) // 2, box[1] + 30), (box[2] - 5, box[3] - 5)],
                          fill=(80, 140, 90))
        return box

    def grid(self, x: int, y: int, rows: list[list[str]], widths: list[int], fnt, height: int = 22) -> list[int]:
        for r, row in enumerate(rows):
            cx = x
            for c, cell in enumerate(row):
                self.draw.rectangle((cx, y + r * height, cx + widths[c], y + (r + 1) * height), outline=(90, 90, 90))
                self.draw.text((cx + 4, y + r * height + 4), cell, font=fnt, fill=(20, 20, 20))
                cx += widths[c]
        return [x, y, x + sum(widths) + 1, y + len(rows) * height + 1]
