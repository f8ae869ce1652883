"""Layout ingest (DocLayNet COCO, CDLA labelme) on the bundled format samples, with damaged copies:
boxes land in pixel corners on the drawn blocks, bad annotations and images are error-log lines."""

import base64
import io
import json
import re
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from mixtures.tasks import render_conversation
from pipelines.ingest.cdla import CdlaIngest
from pipelines.ingest.doclaynet import DOCLAYNET_CLASSES, DoclaynetIngest
from pipelines.ingest.targets import coco_box
from pipelines.job import InputError
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "datasets"
OPTIONS = RunOptions(progress=False)


def test_coco_xywh_becomes_pixel_corners():
    assert coco_box([10, 20, 30.5, 40], "page", "annotation 1") == [10, 20, 40.5, 60]
    assert coco_box([0.125, 7, 0, 3], "page", "a") == [0.12, 7, 0.12, 10]
    with pytest.raises(InputError, match="annotation 2: COCO bbox .* negative size"):
        coco_box([5, 5, -1, 4], "page", "annotation 2")
    with pytest.raises(InputError, match=r"4 numbers \[x, y, w, h\]"):
        coco_box([5, 5, 4], "page", "annotation 3")


def ink_inside(image: Image.Image, box: list[float]) -> bool:
    """Whether the region `box` of the page holds dark pixels (the block drawn there)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    return image.convert("L").crop((x1, y1, x2, y2)).getextrema()[0] < 128


def test_doclaynet_pages_become_layout_blocks_and_bad_annotations_are_logged(ray_local, tmp_path):
    root = tmp_path / "doclaynet"
    shutil.copytree(SAMPLES / "doclaynet", root)
    coco = json.loads((root / "COCO" / "train.json").read_text())
    original = json.loads(json.dumps(coco))
    coco["annotations"].append({"id": 90, "image_id": 1, "category_id": 42, "bbox": [1, 1, 5, 5]})  # unknown class
    coco["annotations"].append({"id": 91, "image_id": 2, "category_id": 10, "bbox": [400, 500, 50, 90]})  # leaves the page
    coco["images"].append({"id": 3, "file_name": "missing.png", "width": 420, "height": 560})
    coco["annotations"].append({"id": 92, "image_id": 3, "category_id": 10, "bbox": [1, 1, 5, 5]})
    (root / "COCO" / "train.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    job = DoclaynetIngest([str(root / "COCO" / "train.json")], str(root / "PNG"), "doclaynet")
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["doclaynet-report-p0003"]
    sample = samples["doclaynet-report-p0003"]
    record = json.loads(sample["json"])
    page_annotations = [a for a in original["annotations"] if a["image_id"] == 1]
    names = {c["id"]: c["name"] for c in original["categories"]}
    assert record["layout"] == [{"label": names[a["category_id"]],
                                 "bbox": [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]}
                                for a in page_annotations]
    assert record["family"] == "layout" and {b["label"] for b in record["layout"]} <= set(DOCLAYNET_CLASSES)
    assert record["meta"]["page_no"] == 3
    image = Image.open(io.BytesIO(sample["png"]))
    assert all(ink_inside(image, block["bbox"]) for block in record["layout"])
    turns = render_conversation("layout", sample, random.Random(0))
    assert len(turns[1]["content"].splitlines()) == len(record["layout"])
    thumbnail = re.search(r'src="data:image/jpeg;base64,([^"]+)"', (out / "report.html").read_text()).group(1)
    drawn = Image.open(io.BytesIO(base64.b64decode(thumbnail))).convert("RGB")
    red = sum(1 for r, g, b in drawn.get_flattened_data() if r - g > 40 and r - b > 40 and abs(g - b) < 40)
    assert red > 1000  # the report outlines the layout blocks in red (the page itself has no red)
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("train.json#annotations[16]", "check coco"), ("train.json#report-p0004", "check box"),
                      ("train.json#missing", "read image")}
    assert verify_dataset(str(out)).ok


def test_cdla_labelme_pages_map_to_doclaynet_classes(ray_local, tmp_path):
    root = tmp_path / "cdla"
    shutil.copytree(SAMPLES / "cdla", root)
    page = json.loads((root / "train" / "train_0001.json").read_text())
    page["shapes"].append({"label": "Seal", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"})
    (root / "train" / "train_0001.json").write_text(json.dumps(page))
    (root / "train" / "train_0002.json").write_text("{broken")
    out = tmp_path / "out"
    assert run_job(CdlaIngest([str(root / "train")], None, "cdla"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["cdla-train_0000"]
    record = json.loads(samples["cdla-train_0000"]["json"])
    labelme = json.loads((SAMPLES / "cdla" / "train" / "train_0000.json").read_text())
    assert record["lang"] == "zh"
    assert [b["source_label"] for b in record["layout"]] == [s["label"] for s in labelme["shapes"]]
    assert [b["label"] for b in record["layout"]][:4] == ["Page-header", "Section-header", "Section-header", "Text"]
    first = labelme["shapes"][0]["points"]
    assert record["layout"][0]["bbox"] == [first[0][0], first[0][1], first[2][0], first[2][1]]
    errors = sorted((e["input"].rsplit("/", 1)[-1], e["step"], e["message"]) for e in read_errors(out))
    assert [e[:2] for e in errors] == [("train_0001.json#train_0001", "check labelme"),
                                       ("train_0002.json", "parse labelme json")]
    assert "'Seal' is not a CDLA class" in errors[0][2]


def test_cdla_page_photographed_turned_is_stored_upright_as_labelme_annotated_it(ray_local, tmp_path):
    """labelme turns a JPEG upright by its EXIF orientation before it is annotated: the size and boxes are upright."""
    root = tmp_path / "cdla"
    root.mkdir()
    upright = Image.open(SAMPLES / "cdla" / "train" / "train_0000.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter to the left: a viewer turns it back clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "train_0000.jpg", "JPEG", quality=95, exif=exif.tobytes())
    shutil.copy(SAMPLES / "cdla" / "train" / "train_0000.json", root / "train_0000.json")
    out = tmp_path / "out"
    assert run_job(CdlaIngest([str(root)], None, "cdla"), str(out), OPTIONS).ok
    assert read_errors(out) == []
    samples = read_dataset(out)
    assert sorted(samples) == ["cdla-train_0000"]
    record = json.loads(samples["cdla-train_0000"]["json"])
    assert record["image"] == {"width": 420, "height": 560, "format": "jpg", "source_format": "JPEG",
                               "exif_transposed": True}
    stored = Image.open(io.BytesIO(samples["cdla-train_0000"]["jpg"]))
    assert stored.size == upright.size and stored.getexif().get(0x0112) is None
    assert max(ImageStat.Stat(ImageChops.difference(stored.convert("RGB"), upright)).mean) < 3
    assert all(ink_inside(stored, block["bbox"]) for block in record["layout"])
