"""Synthetic KIE documents (`synth.kie_documents`, `docforge build kie`): every field value is drawn and
boxed where its ink is, documents regenerate alone from their seed, and the job writes verified shards."""

import io
import json
import random

import pytest
from PIL import Image

from mixtures.tasks import render_conversation
from pipelines.kie import KieJob
from pipelines.ocr import default_fonts, page_seed
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from synth.kie_documents import render_kie_document
from tests.test_ingest import read_dataset


@pytest.mark.parametrize("kind", ["receipt", "form"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_field_value_is_drawn_inside_its_box(kind, lang):
    fonts = default_fonts(lang) if lang == "en" else [f for f in default_fonts(lang) if "Noto" in f]
    for seed in range(3):
        document = render_kie_document(kind, lang, fonts, seed)
        image = Image.open(io.BytesIO(document.jpeg)).convert("L")
        assert image.size == (document.width, document.height)
        texts = [entity["text"] for entity in document.entities]
        for value in document.fields.values():
            for one in value if isinstance(value, list) else [value]:
                assert one in texts, (one, texts)
        for entity in document.entities:
            x1, y1, x2, y2 = entity["bbox"]
            assert 0 <= x1 < x2 <= document.width and 0 <= y1 < y2 <= document.height
            assert image.crop((x1, y1, x2, y2)).getextrema()[0] < 110, entity  # ink inside the box
        by_id = {entity["id"]: entity for entity in document.entities}
        assert document.links and all(by_id[q]["label"] == "question" and by_id[a]["label"] == "answer"
                                      for q, a in document.links)
        assert render_kie_document(kind, lang, fonts, seed).jpeg == document.jpeg
    assert render_kie_document(kind, lang, fonts, 7).fields != render_kie_document(kind, lang, fonts, 8).fields


def test_kie_job_writes_regenerable_receipts_and_forms(ray_local, tmp_path):
    fonts = default_fonts("en")
    out = tmp_path / "kie"
    result = run_job(KieJob("en", 4, fonts, seed=5, docs_per_task=4), str(out), RunOptions(progress=False))
    assert result.ok and result.stats["samples"] == 4 and result.stats["errors"] == 0
    assert verify_dataset(str(out)).ok
    samples = read_dataset(out)
    assert sorted(samples) == [f"kie-en-s5-{i:09d}" for i in range(4)]
    sample = samples["kie-en-s5-000000003"]
    record = json.loads(sample["json"])
    assert record["family"] == "kie" and record["kind"] == "form" and record["provenance"]["seed"] == page_seed(5, 3)
    assert render_kie_document("form", "en", fonts, page_seed(5, 3)).jpeg == sample["jpg"]
    answer = render_conversation("kie", sample, random.Random(0))[1]["content"]
    assert json.loads(answer) == record["fields"]


def test_kie_job_refuses_fonts_without_the_glyphs():
    with pytest.raises(ValueError, match="templates"):
        KieJob("zh", 2, default_fonts("en")).plan()
