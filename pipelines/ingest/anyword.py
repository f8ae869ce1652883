"""Ingest AnyText's AnyWord-3M (LAION, Wukong and seven OCR sets' images with their text lines' polygons)
as `ocr` samples, the text images of the INF-MLLM2 recipe's stage 2.

Input: the per-subset annotation files as ModelScope's iic/AnyWord-3M ships them (`ocr_data/Art/data.json`,
`laion/data_v1.1.json`, `wukong_1of5/data_v1.1.json` ..., AnyText2's `data_v1.2b.json` beside them), each
`{"data_root": FOLDER, "data_list": [{"img_name", "caption", "wm_score", "annotations": [{"polygon": [[x, y],
...], "text", "language": "Latin"|"Chinese", "valid": bool, "pos", "color"}]}]}`, with the subset's
unzipped images in `imgs/` beside the file. Images are read from `--images`, else from `data_root` when it
is a folder here (AnyText's README has users set it), else from `imgs/` beside the file (the shipped
`data_root` names the authors' disks). The same image in two files of one folder (AnyText2's re-annotation)
is one sample, annotated by the first file.

One sample per image, family `ocr`: `KEY.txt` = its legible lines in reading order, `record.words` = one per
annotation `{text, quad (its polygon as given: four points, more for curved text), box, line, language}`
and `record.lines` = `{text, words, box}`, the shape OCR pages have, so `docforge build positional` reads
these shards too. Reading order: annotations on one row (each one's vertical centre inside the other's
height, measured against the row's first) form one line, left to right, joined by spaces; rows go top to
bottom by their first annotation's centre. Left out: `valid: false` annotations (AnyText's loaders skip
them), empty polygons (likewise), and illegible text (`###`). Points past the image's edge by up to 5 % of
its side are clipped to it (scene-text annotators click beyond the edge); further out is an error. Without
`--lang`, each sample's `lang` is its text's. An image with no legible line, an annotation without text or
with a bad polygon, and a missing image are error-log lines naming the file and `data_list[N]`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pipelines.ingest.annotated import AnnotatedIngest, Targets, expect, read_json
from pipelines.ingest.targets import pixel, points_box
from pipelines.job import InputError
from pipelines.storage import Folder, join_url
from pipelines.text_lang import detect_lang

IMAGES = "imgs"  # the unzipped images' folder beside each subset's annotation file
ILLEGIBLE = "#"  # ICDAR-style sets (ArT, RCTW, LSVT, MTWI, ReCTS, MLT) mark unreadable text "###"
EDGE_OVERHANG = 0.05  # scene-text polygons reach past the image's edge (annotators click beyond it): clipped up
                      # to this share of the side; more is a wrong annotation, reported by the box check
Box = list[int | float]


def on_one_row(a: Box, b: Box) -> bool:
    """Each box's vertical centre lies within the other's height: words beside each other, whatever their
    sizes, but not a tall vertical sign and a line level with its end."""
    return b[1] <= (a[1] + a[3]) / 2 <= b[3] and a[1] <= (b[1] + b[3]) / 2 <= a[3]


def reading_order(boxes: list[Box]) -> list[list[int]]:
    """The boxes' indices as rows top to bottom, each left to right. A box joins the row being built when
    it is on one row with that row's first box (comparing with the first, not the last, keeps a slope of
    boxes from chaining rows together)."""
    rows: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0])):
        if rows and on_one_row(boxes[rows[-1][0]], boxes[i]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [sorted(row, key=lambda i: (boxes[i][0], boxes[i][1])) for row in rows]


def legible_words(annotations: Any, name: str) -> tuple[list[dict[str, Any]], int]:
    """The annotations that are text to read, as words (in annotation order), and how many were left out."""
    expect(isinstance(annotations, list), name, "read annotations",
           f"'annotations' must be a list, got {type(annotations).__name__}")
    words, left_out = [], 0
    for j, annotation in enumerate(annotations):
        expect(isinstance(annotation, dict), name, "read annotations", f"annotations[{j}] is not an object")
        if annotation.get("valid") is False or annotation.get("polygon") == []:
            left_out += 1
            continue
        text = annotation.get("text")
        expect(isinstance(text, str), name, "read annotations",
               f"annotations[{j}] has no 'text' (got {str(annotation)[:120]})")
        text = " ".join(text.split())
        if not text.strip(ILLEGIBLE):
            left_out += 1
            continue
        polygon = annotation.get("polygon")
        box = points_box(polygon, name, f"annotations[{j}].polygon")
        word = {"text": text, "quad": [[pixel(x), pixel(y)] for x, y in polygon], "box": box}
        if "language" in annotation:
            word["language"] = annotation["language"]
        words.append(word)
    return words, left_out


def page_targets(words: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """The text, words and lines of one image from its words: words in reading order, each with its line."""
    rows = reading_order([word["box"] for word in words])
    ordered, lines = [], []
    for number, row in enumerate(rows):
        members = list(range(len(ordered), len(ordered) + len(row)))
        ordered += [{**words[i], "line": number} for i in row]
        boxes = [words[i]["box"] for i in row]
        lines.append({"text": " ".join(words[i]["text"] for i in row), "words": members,
                      "box": [min(b[0] for b in boxes), min(b[1] for b in boxes),
                              max(b[2] for b in boxes), max(b[3] for b in boxes)]})
    return "\n".join(line["text"] for line in lines), ordered, lines


def existing_folder(path: Any) -> str | None:
    """`path` as a folder URL when it names a folder this machine can open, else None (the shipped files'
    `data_root` names the authors' disks)."""
    if not isinstance(path, str) or not path.strip():
        return None
    try:
        folder = Folder(path)
        return folder.url if folder.fs.isdir(folder.root) else None
    except (OSError, ValueError, ImportError):  # a protocol this machine cannot open
        return None


class AnywordIngest(AnnotatedIngest):
    format = "anyword"
    family = "ocr"

    def images_folder(self, url: str, data_root: Any) -> str:
        """--images, else the file's `data_root` when it is a folder here, else `imgs/` beside the file."""
        return self.images_url or existing_folder(data_root) or join_url(posixpath.dirname(url), IMAGES)

    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        content = read_json(url, "annotations")
        expect(isinstance(content, dict) and isinstance(content.get("data_list"), list), url, "read annotations",
               "expected AnyWord-3M's {'data_root': ..., 'data_list': [...]}")
        images = self.images_folder(url, content.get("data_root"))
        subset = posixpath.basename(posixpath.dirname(url))
        items, errors = [], []
        for index, entry in enumerate(content["data_list"]):
            image = entry.get("img_name") if isinstance(entry, dict) else None
            if not isinstance(image, str) or not image.strip():
                errors.append(InputError(f"{url}#data_list[{index}]", "read annotations",
                                         f"an entry is an object with 'img_name', got {str(entry)[:120]}"))
                continue
            image = image.replace("\\", "/")
            items.append({"id": f"{subset}/{posixpath.splitext(image)[0]}", "index": index, "images": images,
                          "image": image, "entry": entry})
        return items, errors

    def merge(self, kept: dict[str, Any], again: dict[str, Any]) -> bool:
        """AnyText2's data_v1.2b.json annotates data_v1.1.json's images again: one sample, from the first file."""
        return self.image_url(kept, kept["image"]) == self.image_url(again, again["image"])

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}#data_list[{item['index']}]"

    def image_url(self, item: dict[str, Any], rel: str) -> str:
        return join_url(item["images"], rel)

    def fit_to_image(self, record: dict[str, Any], width: int, height: int) -> None:
        """Clip the coordinates that overhang the image by at most `EDGE_OVERHANG` of its side to its edge (a box
        stays the union of its clipped points; a line's, of its words')."""
        def clip(value: float, side: int) -> float:
            return min(max(value, 0), side) if -EDGE_OVERHANG * side <= value <= (1 + EDGE_OVERHANG) * side else value

        for part in record["words"] + record["lines"]:
            x1, y1, x2, y2 = part["box"]
            part["box"] = [clip(x1, width), clip(y1, height), clip(x2, width), clip(y2, height)]
            if "quad" in part:
                part["quad"] = [[clip(x, width), clip(y, height)] for x, y in part["quad"]]

    def targets(self, item: dict[str, Any], name: str) -> Targets:
        entry = item["entry"]
        words, left_out = legible_words(entry.get("annotations", []), name)
        expect(bool(words), name, "read annotations",
               f"no legible text ({left_out} annotations, all invalid, illegible or without a polygon)")
        text, words, lines = page_targets(words)
        meta = {key: value for key, value in entry.items() if key != "annotations"}
        record = {"text": text, "words": words, "lines": lines, "meta": {**meta, "left_out": left_out}}
        return Targets(item["image"], record, members={"txt": text}, lang=None if self.lang else detect_lang(text),
                       provenance={"index": item["index"]})
