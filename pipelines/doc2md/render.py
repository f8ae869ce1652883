"""doc2md step 6: render a kept PDF page to an image and read its word and line boxes in image pixels.

Default size: the longest side 1344 px (the model's ceiling) — or a fixed dpi. Word boxes come from
PyMuPDF (`get_text("words")`), grouped into lines by (block, line), in the shape the positional tasks read
(`words: [{text, box, line}]`, `lines: [{text, box, words}]`).
"""

from __future__ import annotations

from typing import Any

LONGEST_SIDE = 1344


def page_scale(page, longest_side: int | None = LONGEST_SIDE, dpi: float | None = None) -> float:
    if dpi:
        return dpi / 72.0
    return (longest_side or LONGEST_SIDE) / max(page.rect.width, page.rect.height)


def render_page_image(page, scale: float, image_format: str = "png") -> tuple[bytes, int, int]:
    """The page as PNG or JPEG bytes at `scale` pixels per point, with its width and height."""
    import pymupdf

    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
    data = pixmap.tobytes("jpeg" if image_format == "jpg" else image_format)
    return data, pixmap.width, pixmap.height


def page_words(page, scale: float, width: int, height: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page's words and lines with pixel boxes (clamped to the image), in PyMuPDF's reading order."""
    words: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    line_of: dict[tuple[int, int], int] = {}
    for x0, y0, x1, y1, text, block, line, _ in page.get_text("words"):
        box = [round(max(0.0, x0 * scale), 1), round(max(0.0, y0 * scale), 1),
               round(min(float(width), x1 * scale), 1), round(min(float(height), y1 * scale), 1)]
        if not text.strip() or box[2] <= box[0] or box[3] <= box[1]:
            continue
        key = (block, line)
        if key not in line_of:
            line_of[key] = len(lines)
            lines.append({"words": [], "box": list(box)})
        number = line_of[key]
        entry = lines[number]
        entry["words"].append(len(words))
        entry["box"] = [min(entry["box"][0], box[0]), min(entry["box"][1], box[1]),
                        max(entry["box"][2], box[2]), max(entry["box"][3], box[3])]
        words.append({"text": text, "box": box, "line": number})
    for entry in lines:
        entry["text"] = " ".join(words[i]["text"] for i in entry["words"])
    return words, lines
