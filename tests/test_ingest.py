"""`docforge build ingest` on real inputs with real damage: every bad input is an error-log line, the rest lands."""

import io
import json
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image, ImageChops, ImageOps

from pipelines.ingest.img2dataset import Img2datasetIngest
from pipelines.ingest.llava import LlavaIngest
from pipelines.runner import JobConfigMismatch, RunOptions, run_job
from pipelines.verify import verify_dataset

OPTIONS = RunOptions(progress=False, shard_max_count=3)


def jpeg(seed: int, size=(48, 32)) -> bytes:
    image = Image.new("RGB", size, (seed * 30 % 256, 90, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def read_dataset(out: Path) -> dict[str, dict]:
    index = json.loads((out / "index.json").read_text())
    return {s["__key__"]: s for s in wds.WebDataset([str(out / e["name"]) for e in index["shards"]], shardshuffle=False)}


def read_errors(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]


def make_img2dataset_folder(root: Path) -> None:
    shard = root / "00000"
    shard.mkdir(parents=True)
    for i in range(6):
        (shard / f"00000000{i}.jpg").write_bytes(jpeg(i))
        (shard / f"00000000{i}.txt").write_text(f"a blue square number {i}")
        (shard / f"00000000{i}.json").write_text(json.dumps({"url": f"https://example.com/{i}.jpg", "status": "success"}))
    (shard / "000000001.jpg").write_bytes(jpeg(1)[:300])  # truncated JPEG
    (shard / "000000002.txt").write_bytes("légende".encode("latin-1"))  # not UTF-8
    (shard / "000000003.jpg").unlink()  # caption without its image
    (shard / "000000004.json").write_text("{not json")
    (root / "00000_stats.json").write_text(json.dumps({"count": 6}))


def test_img2dataset_folder_keeps_good_samples_and_logs_each_bad_one(ray_local, tmp_path):
    make_img2dataset_folder(tmp_path / "in")
    out = tmp_path / "out"
    result = run_job(Img2datasetIngest(str(tmp_path / "in"), "cc3m", items_per_task=2), str(out), OPTIONS)
    assert result.ok
    samples = read_dataset(out)
    assert sorted(samples) == ["cc3m-00000_000000000", "cc3m-00000_000000005"]
    good = samples["cc3m-00000_000000005"]
    assert good["txt"] == b"a blue square number 5"
    assert Image.open(io.BytesIO(good["jpg"])).size == (48, 32)
    record = json.loads(good["json"])
    assert record["family"] == "caption" and record["source"] == "cc3m" and record["lang"] == "en"
    assert record["meta"]["url"] == "https://example.com/5.jpg"
    assert record["image"] == {"width": 48, "height": 32, "format": "jpg", "source_format": "JPEG"}
    errors = {(Path(e["input"]).name, e["step"]) for e in read_errors(out)}
    assert errors == {("000000001.jpg", "decode image"), ("000000002.txt", "read caption"),
                      ("000000003", "read image"), ("000000004.json", "read metadata")}
    assert verify_dataset(str(out)).ok
    report = (out / "report.html").read_text()
    assert "data:image/jpeg;base64," in report and "a blue square number 5" in report and "decode image" in report


def test_img2dataset_tars_with_a_bad_member_and_a_truncated_tar(ray_local, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("00000", "00001"):
        with wds.TarWriter(str(src / f"{name}.tar")) as tar:
            for i in range(4):
                member = {"__key__": f"{name}{i:04d}", "jpg": jpeg(i), "txt": f"caption {name} {i}",
                          "json": json.dumps({"key": f"{name}{i:04d}"}).encode()}
                if name == "00000" and i == 2:
                    del member["txt"]
                tar.write(member)
    with tarfile.open(src / "00001.tar") as tar:
        second_sample = [m for m in tar.getmembers() if m.name.startswith("000010001.")][0]
    data = (src / "00001.tar").read_bytes()
    (src / "00001.tar").write_bytes(data[:second_sample.offset_data + 100])  # cut inside the second sample
    out = tmp_path / "out"
    assert run_job(Img2datasetIngest(str(src), "laion"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    # 00001.tar is cut inside its second sample: that one and the sample before the cut are dropped
    assert sorted(samples) == ["laion-00000_000000000", "laion-00000_000000001", "laion-00000_000000003"]
    errors = sorted((e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out))
    assert errors == [("00000.tar:000000002", "read caption"), ("00001.tar", "read tar")]
    assert verify_dataset(str(out)).ok


def write_llava_inputs(root: Path) -> None:
    images = root / "images" / "coco"
    images.mkdir(parents=True)
    (images / "a.jpg").write_bytes(jpeg(1, (64, 64)))
    gif = io.BytesIO()
    Image.new("P", (40, 20), 3).save(gif, "GIF")
    (images / "b.jpg").write_bytes(gif.getvalue())  # a GIF named .jpg, as in LLaVA-665k's ocr_vqa images
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    human = {"from": "human", "value": "<image>\nWhat colour is the square?"}
    gpt = {"from": "gpt", "value": "Blue."}
    records = [
        {"id": "1", "image": "coco/a.jpg", "conversations": [human, gpt]},
        {"id": "2", "image": "coco/b.jpg", "conversations": [human, gpt, {"from": "human", "value": "Sure?"},
                                                             {"from": "gpt", "value": "Yes."}], "model": "gpt-4v"},
        {"id": "3", "conversations": [{"from": "user", "value": "Say hi."}, {"from": "assistant", "value": "Hi."}]},
        {"id": "4", "image": "coco/missing.jpg", "conversations": [human, gpt]},
        {"id": "5", "image": "coco/broken.jpg", "conversations": [human, gpt]},
        {"id": "6", "image": "coco/a.jpg", "conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "?"}]},
        "not a record",
    ]
    (root / "mix.json").write_text(json.dumps(records))
    (root / "not-a-list.json").write_text(json.dumps({"id": "x", "conversations": []}))


def test_llava_conversations_keep_good_records_and_log_bad_files_and_records(ray_local, tmp_path):
    write_llava_inputs(tmp_path)
    out = tmp_path / "out"
    job = LlavaIngest([str(tmp_path / "mix.json"), str(tmp_path / "not-a-list.json")], str(tmp_path / "images"),
                      "llava665k", items_per_task=3)
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["llava665k-mix-000000000", "llava665k-mix-000000001", "llava665k-mix-000000002"]
    first = json.loads(samples["llava665k-mix-000000000"]["json"])
    assert first["family"] == "conversation" and first["id"] == "1"
    assert first["conversations"][0] == {"from": "human", "value": "<image>\nWhat colour is the square?"}
    second = samples["llava665k-mix-000000001"]
    assert "png" in second and "jpg" not in second  # the content decides, not the name: GIF re-encoded to PNG
    assert Image.open(io.BytesIO(second["png"])).size == (40, 20)
    assert json.loads(second["json"])["image"]["source_format"] == "GIF"
    assert json.loads(second["json"])["meta"] == {"model": "gpt-4v"}
    text_only = samples["llava665k-mix-000000002"]
    assert set(text_only) - {"__key__", "__url__", "__local_path__"} == {"json"}
    assert [t["from"] for t in json.loads(text_only["json"])["conversations"]] == ["human", "gpt"]
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("not-a-list.json", "parse json"), ("mix.json#3", "read image"),
                      ("mix.json#4", "decode image"), ("mix.json#5", "check record"), ("mix.json#6", "check record")}
    assert verify_dataset(str(out)).ok


def test_ingest_rerun_after_new_bad_input_is_refused_not_mixed(ray_local, tmp_path):
    """Changing the inputs under an existing output would mix two datasets: the runner refuses."""
    write_llava_inputs(tmp_path)
    out = tmp_path / "out"
    job = LlavaIngest([str(tmp_path / "mix.json")], str(tmp_path / "images"), "llava")
    run_job(job, str(out), OPTIONS)
    records = json.loads((tmp_path / "mix.json").read_text())
    (tmp_path / "mix.json").write_text(json.dumps(records[:2]))
    with pytest.raises(JobConfigMismatch, match="different plan"):
        run_job(job, str(out), OPTIONS)


def test_llava_jsonl_lines_end_only_at_newline_and_a_bad_line_costs_only_its_record(ray_local, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(jpeg(1, (64, 64)))
    human = {"from": "human", "value": "<image>\nQuote the page."}
    records = [{"id": "web-1", "image": "a.jpg",
                "conversations": [human, {"from": "gpt", "value": "first\u2028second\u2029third\x85fourth\x1cend"}]},
               {"id": "web-3", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}]
    lines = [json.dumps(records[0], ensure_ascii=False), '{"id": "web-2", "conversations": [', json.dumps(records[1])]
    (tmp_path / "sharegpt.jsonl").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    out = tmp_path / "out"
    job = LlavaIngest([str(tmp_path / "sharegpt.jsonl")], str(tmp_path / "images"), "web")
    assert run_job(job, str(out), OPTIONS).ok
    errors = [(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)]
    assert errors == [("sharegpt.jsonl:2", "parse json")]
    samples = read_dataset(out)
    assert sorted(samples) == ["web-000000000", "web-000000002"]  # the other records keep their index
    first = json.loads(samples["web-000000000"]["json"])
    assert first["conversations"][1]["value"] == "first\u2028second\u2029third\x85fourth\x1cend"
    assert json.loads(samples["web-000000002"]["json"])["id"] == "web-3"
    assert verify_dataset(str(out)).ok


def exif_image(fmt: str, orientation: int | None, size=(40, 20)) -> bytes:
    """A `size` image stored as `fmt`, its left quarter red, with an EXIF orientation tag if one is given."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 4, size[1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def test_exif_rotated_images_are_stored_upright_in_their_format_and_others_untouched(ray_local, tmp_path):
    shard = tmp_path / "in" / "00000"
    shard.mkdir(parents=True)
    inputs = {"000000000.jpg": exif_image("JPEG", 6), "000000001.png": exif_image("PNG", 8),
              "000000002.jpg": exif_image("JPEG", 1), "000000003.png": exif_image("PNG", None)}
    for name, data in inputs.items():
        (shard / name).write_bytes(data)
        (shard / name).with_suffix(".txt").write_text(f"a page {name}")
    out = tmp_path / "out"
    assert run_job(Img2datasetIngest(str(tmp_path / "in"), "photos"), str(out), OPTIONS).ok
    samples = read_dataset(out)
    # orientation 6 turns the stored image's red left side to the top, 8 to the bottom
    for stem, ext, red_at in (("000000000", "jpg", (10, 3)), ("000000001", "png", (10, 36))):
        sample = samples[f"photos-00000_{stem}"]
        stored = Image.open(io.BytesIO(sample[ext]))
        assert stored.format == {"jpg": "JPEG", "png": "PNG"}[ext] and stored.getexif().get(0x0112) is None
        upright = ImageOps.exif_transpose(Image.open(shard / f"{stem}.{ext}")).convert("RGB")
        assert stored.size == upright.size == (20, 40)  # as trainer.generate.open_image shows the file
        assert json.loads(sample["json"])["image"] == {"width": 20, "height": 40, "format": ext,
                                                      "source_format": stored.format, "exif_transposed": True}
        assert max(high for _, high in ImageChops.difference(stored.convert("RGB"), upright).getextrema()) < 24
        red, green, blue = stored.convert("RGB").getpixel(red_at)
        assert red > 200 and green < 60 and blue < 60
    for name in ("000000002.jpg", "000000003.png"):
        stem, ext = name.split(".")
        assert samples[f"photos-00000_{stem}"][ext] == inputs[name]  # no orientation to undo: the bytes as given
        assert "exif_transposed" not in json.loads(samples[f"photos-00000_{stem}"]["json"])["image"]
    assert verify_dataset(str(out)).ok
