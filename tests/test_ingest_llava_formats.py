"""`--format llava` on the other shapes LLaVA-style sets come in: mPLUG-DocOwl 1.5's "messages" JSONL
(DocStruct4M, DocReason25K, DocDownstream-1.0) and the Hub's Parquet files with the images inside
(LLaVA-ReCap, LLaVA-OneVision-Data). Each becomes LLaVA turns the `conversation` task renders; bad records,
rows, images and files are error-log lines and the rest lands."""

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mixtures.tasks import render_conversation
from pipelines.ingest.llava import LlavaIngest, record_image
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from tests.test_ingest import read_dataset, read_errors

OPTIONS = RunOptions(progress=False)


def image_bytes(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (250, 248, 240)).save(out, fmt)
    return out.getvalue()


def docowl(image: list[str], question: str, answer: str, task_name: str, dataset_name: str) -> dict:
    """A record as DocOwl1.5/README.md shows it and train_docowl.py reads it: `image` a one-path list relative
    to the dataset root, `<|image|>` straight before the question in the first (user) message."""
    return {"image": image, "messages": [{"role": "user", "content": f"<|image|>{question}"},
                                         {"role": "assistant", "content": answer}],
            "task_name": task_name, "dataset_name": dataset_name}


def write_jsonl(path, records: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records),
                    encoding="utf-8")


def make_docstruct4m(root) -> None:
    """DocStruct4M's layout: imgs/ and the two training JSONL files at the root."""
    (root / "imgs" / "CCpdf" / "pages").mkdir(parents=True)
    (root / "imgs" / "TURL").mkdir(parents=True)
    (root / "imgs" / "CCpdf" / "pages" / "1e531ef2_page19.png").write_bytes(image_bytes((90, 120)))
    (root / "imgs" / "TURL" / "col_type_197091.jpg").write_bytes(image_bytes((160, 60), "JPEG"))
    (root / "imgs" / "TURL" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    page, table = "./imgs/CCpdf/pages/1e531ef2_page19.png", "./imgs/TURL/col_type_197091.jpg"
    write_jsonl(root / "struct_aware_parse.jsonl", [
        docowl([page], "Recognize text in the image.", "Annual Report 2019\nRevenue grew 4%.", "doc_parse", "CCpdf"),
        docowl([table], "Convert the picture to Markdown syntax.", "| year | team |\n| --- | --- |\n| 1998 | Ajax |",
               "table_parse", "TURL"),
        docowl([page, table], "Compare the two pages.", "They differ.", "doc_parse", "CCpdf"),  # two images
        '{"image": ["./imgs/TURL/col_type_1.jpg"], "messages": [{"role": "user"',  # a line cut short
        docowl(["./imgs/TURL/col_type_404.jpg"], "Recognize text in the image.", "x", "table_parse", "TURL"),
        docowl(["./imgs/TURL/broken.jpg"], "Recognize text in the image.", "x", "table_parse", "TURL"),
    ])
    system = {"image": [page], "messages": [
        {"role": "system", "content": "You read documents."},
        {"role": "user", "content": "<|image|>Identify the text within the bounding box <bbox>120,80,880,160</bbox>"},
        {"role": "assistant", "content": "<ocr>Annual Report 2019</ocr>"}],
        "task_name": "line_bbox2t_sft", "dataset_name": "CCpdf"}
    write_jsonl(root / "multi_grained_text_localization.jsonl", [
        system,
        docowl([page], "Predict the bounding box of the text <ocr>Revenue grew 4%.</ocr>", "<bbox>100,300,700,360</bbox>",
               "line_t2bbox_sft", "CCpdf"),
        docowl([], "What is written here?", "Nothing.", "qa_sft", "DocVQA"),  # the token, but no image
        {"image": [page], "messages": [{"role": "user", "content": "<|image|>Hi"}, {"role": "bot", "content": "?"}]},
    ])


def test_docowl_messages_jsonl_becomes_llava_turns_with_one_image_each(ray_local, tmp_path):
    make_docstruct4m(tmp_path / "DocStruct4M")
    out = tmp_path / "out"
    root = tmp_path / "DocStruct4M"
    job = LlavaIngest([str(root / "struct_aware_parse.jsonl"), str(root / "multi_grained_text_localization.jsonl")],
                      None, "docstruct4m", items_per_task=3)
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    assert sorted(samples) == ["docstruct4m-multi_grained_text_localization-000000000",
                               "docstruct4m-multi_grained_text_localization-000000001",
                               "docstruct4m-struct_aware_parse-000000000", "docstruct4m-struct_aware_parse-000000001"]
    parse = json.loads(samples["docstruct4m-struct_aware_parse-000000000"]["json"])
    assert parse["conversations"] == [{"from": "human", "value": "<image>\nRecognize text in the image."},
                                      {"from": "gpt", "value": "Annual Report 2019\nRevenue grew 4%."}]
    assert parse["meta"] == {"task_name": "doc_parse", "dataset_name": "CCpdf"}
    assert parse["image"]["width"] == 90 and parse["provenance"]["image_file"].endswith("/imgs/CCpdf/pages/1e531ef2_page19.png")
    table = samples["docstruct4m-struct_aware_parse-000000001"]
    assert Image.open(io.BytesIO(table["jpg"])).size == (160, 60)
    grounding = json.loads(samples["docstruct4m-multi_grained_text_localization-000000000"]["json"])
    assert [t["from"] for t in grounding["conversations"]] == ["system", "human", "gpt"]
    assert grounding["conversations"][2]["value"] == "<ocr>Annual Report 2019</ocr>"  # DocOwl's tags kept as written
    for key, sample in samples.items():
        turns = render_conversation("conversation", sample, random.Random(0))
        user = next(t for t in turns if t["role"] == "user")
        assert user["content"].startswith("<image>\n") and "<|image|>" not in user["content"]
        assert turns[-1]["role"] == "assistant"
    assert render_conversation("conversation", samples["docstruct4m-multi_grained_text_localization-000000001"],
                               random.Random(0))[1]["content"] == "<bbox>100,300,700,360</bbox>"
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]): e["message"] for e in read_errors(out)}
    assert set(errors) == {("struct_aware_parse.jsonl#2", "check record"), ("struct_aware_parse.jsonl:4", "parse json"),
                           ("struct_aware_parse.jsonl#4", "read image"), ("struct_aware_parse.jsonl#5", "decode image"),
                           ("multi_grained_text_localization.jsonl#2", "check record"),
                           ("multi_grained_text_localization.jsonl#3", "check record")}
    assert "2 images" in errors[("struct_aware_parse.jsonl#2", "check record")]
    assert "col_type_404.jpg" in errors[("struct_aware_parse.jsonl#4", "read image")]
    assert "no 'image'" in errors[("multi_grained_text_localization.jsonl#2", "check record")]
    assert "'bot'" in errors[("multi_grained_text_localization.jsonl#3", "check record")]
    assert verify_dataset(str(out)).ok


HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # how `datasets` stores an Image feature
ONEVISION = pa.schema([("id", pa.string()), ("image", HF_IMAGE),
                       ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
                       ("data_source", pa.string())])


def turns(question: str, answer: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def make_hub_parquet_set(root, pages) -> None:
    """LLaVA-OneVision-Data's layout: one folder per subset, each with its `train-0000N-of-0000M.parquet`."""
    for subset in ("chrome_writting", "sroie"):
        (root / subset).mkdir(parents=True)
    rows = [
        {"id": "chrome_writting_0", "image": {"bytes": image_bytes((64, 32)), "path": None},
         "conversations": turns("<image>\nWhat is written in the image?", "lcnheqne"), "data_source": "chrome_writting"},
        {"id": "chrome_writting_1", "image": {"bytes": b"\x89PNG\r\n\x1a\n cut", "path": None},
         "conversations": turns("<image>\nWhat is written?", "x"), "data_source": "chrome_writting"},
        {"id": "chrome_writting_2", "image": {"bytes": None, "path": "receipts/X51005200938.jpg"},
         "conversations": turns("<image>\nWhat is the total?", "9.00"), "data_source": "chrome_writting"},
        {"id": "magpie_0", "image": None, "conversations": turns("Name a prime number.", "7"), "data_source": "magpie"},
        {"id": "chrome_writting_4", "image": {"bytes": image_bytes((20, 20)), "path": "4.png"},
         "conversations": turns("<image>\nRead it. <image>", "x"), "data_source": "chrome_writting"},
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=ONEVISION), root / "chrome_writting" / "train-00000-of-00001.parquet",
                   row_group_size=2)
    # a community export of DocStruct4M: OpenAI-style turns in `conversations`, DocOwl's token, an int id
    docstruct = pa.schema([("id", pa.int64()), ("image", HF_IMAGE),
                           ("conversations", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                           ("dataset_name", pa.string()), ("task_name", pa.string())])
    pq.write_table(pa.Table.from_pylist([{"id": 17, "image": {"bytes": image_bytes((50, 70)), "path": "x.png"},
                                          "conversations": [{"role": "user", "content": "<|image|>Parse the receipt."},
                                                            {"role": "assistant", "content": "TOTAL 9.00"}],
                                          "dataset_name": "SROIE", "task_name": "doc_parse"}], schema=docstruct),
                   root / "sroie" / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"id": ["a"], "caption": ["no conversations column"]}), root / "sroie" / "captions.parquet")
    (root / "sroie" / "train-00001-of-00001.parquet").write_text("version https://git-lfs.github.com/spec/v1\n")
    (pages / "receipts").mkdir(parents=True)
    (pages / "receipts" / "X51005200938.jpg").write_bytes(image_bytes((30, 90), "JPEG"))


def test_hub_parquet_rows_become_samples_with_their_embedded_images(ray_local, tmp_path):
    make_hub_parquet_set(tmp_path / "LLaVA-OneVision-Data", tmp_path / "pages")
    out = tmp_path / "out"
    job = LlavaIngest([str(tmp_path / "LLaVA-OneVision-Data")], str(tmp_path / "pages"), "onevision", items_per_task=2)
    assert run_job(job, str(out), OPTIONS).ok
    samples = read_dataset(out)
    chrome = "onevision-chrome_writting_train-00000-of-00001"
    assert sorted(samples) == [f"{chrome}-000000000", f"{chrome}-000000002", f"{chrome}-000000003",
                               "onevision-sroie_train-00000-of-00001-000000000"]
    first = json.loads(samples[f"{chrome}-000000000"]["json"])
    assert first["id"] == "chrome_writting_0" and first["meta"] == {"data_source": "chrome_writting"}
    assert first["provenance"]["row"] == 0 and first["provenance"]["image_file"] is None
    assert Image.open(io.BytesIO(samples[f"{chrome}-000000000"]["png"])).size == (64, 32)
    from_path = samples[f"{chrome}-000000002"]  # no bytes: the path, below --images
    assert Image.open(io.BytesIO(from_path["jpg"])).size == (30, 90)
    assert json.loads(from_path["json"])["provenance"]["image_file"] == str(tmp_path / "pages/receipts/X51005200938.jpg")
    text_only = samples[f"{chrome}-000000003"]
    assert set(text_only) - {"__key__", "__url__", "__local_path__"} == {"json"}
    assert render_conversation("conversation", text_only, random.Random(0)) == [
        {"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "7"}]
    docstruct = samples["onevision-sroie_train-00000-of-00001-000000000"]
    record = json.loads(docstruct["json"])
    assert record["id"] == "17" and record["meta"] == {"dataset_name": "SROIE", "task_name": "doc_parse"}
    assert render_conversation("conversation", docstruct, random.Random(0)) == [
        {"role": "user", "content": "<image>\nParse the receipt."}, {"role": "assistant", "content": "TOTAL 9.00"}]
    assert render_conversation("conversation", samples[f"{chrome}-000000000"], random.Random(0))[0]["content"] == \
        "<image>\nWhat is written in the image?"
    errors = {(e["input"].rsplit("/", 1)[-1], e["step"]) for e in read_errors(out)}
    assert errors == {("train-00000-of-00001.parquet#row1", "decode image"),
                      ("train-00000-of-00001.parquet#row4", "check record"),
                      ("captions.parquet", "read parquet"), ("train-00001-of-00001.parquet", "read parquet")}
    assert verify_dataset(str(out)).ok


def test_text_only_records_written_by_pandas_have_no_image():
    """Cambrian-7M's text-only records say `"image": "None"` (or "nan"), as its own loader reads them."""
    assert [record_image({"image": value}, "x") for value in ("None", "nan", "", None)] == [None] * 4
    assert record_image({"image": ["docs/None.png"]}, "x") == "docs/None.png"
