"""Task templates render real shard samples (dicts of bytes, as webdataset reads them) into conversations."""

import io
import json
import pickle
import random
import re

import pytest
from PIL import Image

from mixtures.tasks import IMAGE_PLACEHOLDER, POSITIONAL_PROMPTS, TASKS, TaskError, render_conversation, task_names

CJK = re.compile(r"[\u4e00-\u9fff]")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 90, 30)).save(out, "PNG")
    return out.getvalue()


PNG = png()


def make_sample(key: str, record: dict | None, image: bool = True, **texts: str) -> dict:
    sample = {"__key__": key}
    if image:
        sample["png"] = PNG
    if record is not None:
        sample["json"] = json.dumps(record, ensure_ascii=False).encode("utf-8")
    sample.update({ext: text.encode("utf-8") for ext, text in texts.items()})
    return sample


def render(task: str, sample: dict, seed: int = 0, **kwargs) -> list[dict[str, str]]:
    return render_conversation(task, sample, random.Random(seed), **kwargs)


def user_prompt(turns: list[dict[str, str]]) -> str:
    return turns[0]["content"].removeprefix(IMAGE_PLACEHOLDER + "\n")


LLAVA_RECORD = {
    "family": "conversation", "lang": "en", "source": "llava665k", "id": "000000033471",
    "conversations": [
        {"from": "system", "value": "You are a helpful assistant."},
        {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
        {"from": "gpt", "value": "The bus in the image is white and red."},
        {"from": "human", "value": "What feature can be seen on the back of the bus?"},
        {"from": "gpt", "value": "The back of the bus features an advertisement."},
    ],
    "image": {"width": 8, "height": 6, "format": "png", "source_format": "PNG"},
}

LAYOUT_RECORD = {
    "family": "layout", "lang": "en", "image": {"width": 2000, "height": 1000},
    "layout": [
        {"label": "Title", "bbox": [100, 50, 1000, 500]},
        {"label": "Text", "bbox": [306.4, 0, 2000, 999.6]},
        {"label": "Page-footer", "bbox": [-5, 990, 2100, 1010]},
    ],
}


@pytest.mark.parametrize("task, family, ext, target", [
    ("caption", "caption", "txt", "a red bus parked by the road"),
    ("ocr", "ocr", "txt", "INVOICE No. 42\nTotal: 19.99"),
    ("doc2md", "doc2md", "md", "# Introduction\n\nWe study $x^2$."),
    ("table", "table", "html", "<table><tr><td>1</td><td>2</td></tr></table>"),
    ("formula", "formula", "tex", r"\frac{a}{b} = c"),
])
def test_member_tasks_ask_a_prompt_with_the_image_and_answer_the_target(task, family, ext, target):
    turns = render(task, make_sample(f"{task}-0001", {"family": family, "lang": "en"}, **{ext: f"{target}\n"}))
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[0]["content"].startswith(IMAGE_PLACEHOLDER + "\n")
    assert turns[0]["content"].count(IMAGE_PLACEHOLDER) == 1
    assert user_prompt(turns) in TASKS[task].prompts["en"]
    assert turns[1]["content"] == target


def test_text_only_sample_gets_no_placeholder():
    turns = render("doc2md", make_sample("doc2md-text", {"family": "doc2md"}, image=False, md="# Title"))
    assert IMAGE_PLACEHOLDER not in turns[0]["content"]
    assert turns[0]["content"] in TASKS["doc2md"].prompts["en"]


def test_every_prompted_task_has_several_english_and_chinese_prompts():
    assert task_names() == sorted(["caption", "conversation", "doc2md", "ocr", "table", "formula", "positional",
                                   "layout", "kie", "vqa"])
    prompted = [t for t in TASKS.values() if t.prompts]
    assert {t.name for t in prompted} == {"caption", "doc2md", "ocr", "table", "formula", "layout", "kie"}
    for template in prompted:
        assert len(template.prompts["en"]) >= 3 and len(template.prompts["zh"]) >= 3, template.name
        assert not any(CJK.search(p) for p in template.prompts["en"]), template.name
        assert all(CJK.search(p) for p in template.prompts["zh"]), template.name
    assert "Please convert the document to markdown." in TASKS["doc2md"].prompts["en"]
    assert "Please convert the table into html format." in TASKS["table"].prompts["en"]
    assert "Please convert the formula into latex format." in TASKS["formula"].prompts["en"]


def test_language_comes_from_argument_then_record_then_english():
    zh_sample = make_sample("ocr-zh-1", {"family": "ocr", "lang": "zh"}, txt="你好，世界")
    assert user_prompt(render("ocr", zh_sample)) in TASKS["ocr"].prompts["zh"]
    assert user_prompt(render("ocr", zh_sample, lang="en")) in TASKS["ocr"].prompts["en"]
    en_sample = make_sample("ocr-en-1", {"family": "ocr"}, txt="hello")
    assert user_prompt(render("ocr", en_sample)) in TASKS["ocr"].prompts["en"]
    assert user_prompt(render("ocr", en_sample, lang="zh-CN")) in TASKS["ocr"].prompts["zh"]
    assert user_prompt(render("ocr", en_sample, lang="fr")) in TASKS["ocr"].prompts["en"]


def test_prompt_override_list_replaces_the_variants_in_every_language():
    sample = make_sample("cap-1", {"family": "caption", "lang": "zh"}, txt="一辆红色的公交车")
    custom = ["Caption it.", "One line, please."]
    seen = {user_prompt(render("caption", sample, seed, prompts=custom)) for seed in range(30)}
    assert seen == set(custom)


def test_prompt_override_dict_is_per_language_and_keeps_builtins_for_the_others():
    override = {"zh": ["用一句话描述。"]}
    zh = make_sample("cap-zh", {"family": "caption", "lang": "zh"}, txt="公交车")
    en = make_sample("cap-en", {"family": "caption", "lang": "en"}, txt="a bus")
    assert user_prompt(render("caption", zh, prompts=override)) == "用一句话描述。"
    assert user_prompt(render("caption", en, prompts=override)) in TASKS["caption"].prompts["en"]


def test_same_seed_gives_the_same_conversation_and_seeds_vary_the_prompt():
    sample = make_sample("tab-1", {"family": "table"}, html="<table></table>")
    assert render("table", sample, 7) == render("table", sample, 7)
    prompts = {user_prompt(render("table", sample, seed)) for seed in range(50)}
    assert len(prompts) >= 3
    state = random.getstate()
    render("table", sample, 3)
    assert random.getstate() == state


def test_llava_conversation_passes_through_with_roles_mapped_and_placeholder_kept():
    turns = render("conversation", make_sample("llava665k-000000001", LLAVA_RECORD))
    assert turns == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "<image>\nWhat are the colors of the bus in the image?"},
        {"role": "assistant", "content": "The bus in the image is white and red."},
        {"role": "user", "content": "What feature can be seen on the back of the bus?"},
        {"role": "assistant", "content": "The back of the bus features an advertisement."},
    ]


def test_conversation_placeholder_stays_where_the_data_put_it():
    record = {"family": "conversation", "conversations": [
        {"from": "human", "value": "Look first."}, {"from": "gpt", "value": "Ok."},
        {"from": "human", "value": "What is written here?\n<image>"}, {"from": "gpt", "value": "STOP"}]}
    turns = render("conversation", make_sample("llava-late", record))
    assert turns[0]["content"] == "Look first."
    assert turns[2]["content"] == "What is written here?\n<image>"


def test_conversation_image_without_placeholder_gets_it_in_the_first_user_turn():
    record = {**LLAVA_RECORD, "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "What is this?"},
        {"from": "gpt", "value": "A bus."}]}
    turns = render("conversation", make_sample("sharegpt4v-1", record))
    assert turns[0] == {"role": "system", "content": "Be brief."}
    assert turns[1]["content"] == "<image>\nWhat is this?"


def test_text_only_conversation_has_no_placeholder():
    record = {"family": "conversation", "lang": "en", "image": None, "conversations": [
        {"from": "human", "value": "Write a haiku about tables."}, {"from": "gpt", "value": "Rows meet columns..."}]}
    turns = render("conversation", make_sample("llava665k-000000009", record, image=False))
    assert turns == [{"role": "user", "content": "Write a haiku about tables."},
                     {"role": "assistant", "content": "Rows meet columns..."}]


REGION_ITEM = {"kind": "region_to_text", "region": [100, 200, 300, 260], "text": "Total 19.99"}
GROUNDING_ITEM = {"kind": "text_to_region", "text": "Total", "region": [100, 200, 180, 260]}
POINT_ITEM = {"kind": "point_to_text", "point": [120, 230], "text": "Total 19.99"}
COLOUR_ITEM = {"kind": "colour_to_text", "colour": "red", "text": "Total 19.99", "region": [90, 190, 310, 270]}


def positional_sample(key: str, items, lang: str = "en") -> dict:
    return make_sample(key, {"family": "positional", "lang": lang, "positional": items})


def test_positional_single_item_and_multi_turn_list():
    turns = render("positional", positional_sample("pos-1", REGION_ITEM))
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[0]["content"].removeprefix(IMAGE_PLACEHOLDER + "\n") in [
        p.format(region="[100,200,300,260]") for p in POSITIONAL_PROMPTS["region_to_text"]["en"]]
    assert turns[1]["content"] == "Total 19.99"
    turns = render("positional", positional_sample("pos-2", [REGION_ITEM, GROUNDING_ITEM, POINT_ITEM, COLOUR_ITEM]))
    assert [t["role"] for t in turns] == ["user", "assistant"] * 4
    assert [t["content"] for t in turns[1::2]] == ["Total 19.99", "[100,200,180,260]", "Total 19.99", "Total 19.99"]
    assert sum(t["content"].count(IMAGE_PLACEHOLDER) for t in turns) == 1 and turns[0]["content"].startswith(IMAGE_PLACEHOLDER)


def test_positional_kinds_have_several_english_and_chinese_questions():
    assert set(POSITIONAL_PROMPTS) == {"region_to_text", "text_to_region", "point_to_text", "colour_to_text"}
    fields = {"region_to_text": "{region}", "text_to_region": "{text}", "point_to_text": "{point}",
              "colour_to_text": "{colour}"}
    for kind, prompts in POSITIONAL_PROMPTS.items():
        assert len(prompts["en"]) >= 3 and len(prompts["zh"]) >= 3, kind
        assert not any(CJK.search(p) for p in prompts["en"]) and all(CJK.search(p) for p in prompts["zh"]), kind
        assert all(fields[kind] in p for p in prompts["en"] + prompts["zh"]), kind


@pytest.mark.parametrize("item, en, zh", [
    (REGION_ITEM, "[100,200,300,260]", "[100,200,300,260]"),
    (GROUNDING_ITEM, '"Total"', "“Total”"),
    (POINT_ITEM, "(120,230)", "(120,230)"),
    (COLOUR_ITEM, "red", "红色"),
])
def test_positional_questions_name_the_coordinates_text_or_colour_in_the_samples_language(item, en, zh):
    for lang, needle, prompts in (("en", en, POSITIONAL_PROMPTS[item["kind"]]["en"]),
                                  ("zh", zh, POSITIONAL_PROMPTS[item["kind"]]["zh"])):
        questions = {user_prompt(render("positional", positional_sample("pos-l", item, lang), seed))
                     for seed in range(40)}
        assert len(questions) == len(prompts) and all(needle in q for q in questions), questions


OCR_PAGE = {"family": "ocr", "lang": "en", "image": {"width": 400, "height": 200},
            "words": [{"text": "Invoice", "box": [20, 20, 120, 50]}, {"text": "42", "box": [130, 20, 170, 50]},
                      {"text": "Total:", "box": [20, 100, 110, 130]}, {"text": "19.99", "box": [120, 100, 200, 130]}],
            "lines": [{"text": "Invoice 42", "words": [0, 1]}, {"text": "Total: 19.99", "words": [2, 3]}]}


def test_positional_makes_an_item_from_a_page_records_words_when_it_has_none():
    answers = {}
    for seed in range(60):
        turns = render("positional", make_sample("ocr-en-1", OCR_PAGE, txt="Invoice 42\nTotal: 19.99"), seed)
        assert [t["role"] for t in turns] == ["user", "assistant"]
        answers.setdefault(turns[1]["content"], turns[0]["content"])
    assert {"Invoice 42", "Total: 19.99"} <= set(answers)
    boxes = [a for a in answers if a.startswith("[")]
    assert boxes and all(re.fullmatch(r"\[\d+,\d+,\d+,\d+\]", a) for a in boxes)
    assert "[50,100,300,250]" in answers  # "Invoice": x 20..120 of 400, y 20..50 of 200
def test_layout_normalises_pixel_boxes_to_0_1000_in_reading_order():
    turns = render("layout", make_sample("doclaynet-1", LAYOUT_RECORD))
    assert user_prompt(turns) in TASKS["layout"].prompts["en"]
    # x by 1000/2000, y by 1000/1000; 306.4 -> 153.2 -> 153; 999.6 -> 1000; out-of-page clamps to 0..1000
    assert turns[1]["content"] == "Title [50,50,500,500]\nText [153,0,1000,1000]\nPage-footer [0,990,1000,1000]"


def test_kie_answers_sorted_json_and_names_up_to_twelve_fields():
    fields = {"total": "19.99", "company": "东方商店", "items": ["tea", "rice"]}
    turns = render("kie", make_sample("sroie-1", {"family": "kie", "fields": fields}))
    assert turns[1]["content"] == '{"company": "东方商店", "items": ["tea", "rice"], "total": "19.99"}'
    assert turns[0]["content"].endswith(" Fields: company, items, total.")
    zh = render("kie", make_sample("cord-1", {"family": "kie", "lang": "zh", "fields": fields}))
    assert zh[0]["content"].endswith("字段：company、items、total。")
    many = {f"field_{i:02d}": str(i) for i in range(13)}
    turns = render("kie", make_sample("funsd-1", {"family": "kie", "fields": many}))
    assert user_prompt(turns) in TASKS["kie"].prompts["en"]


def test_vqa_answers_with_the_majority_answer_ties_going_to_the_first():
    qa = [{"question": "What is the date?", "answers": ["1/2/99", "Jan 2, 1999", "Jan 2, 1999", "1/2/99", "2 Jan"]}]
    turns = render("vqa", make_sample("docvqa-1", {"family": "vqa", "qa": qa}))
    assert turns == [{"role": "user", "content": "<image>\nWhat is the date?"},
                     {"role": "assistant", "content": "1/2/99"}]
    qa[0]["answers"] = ["stop", "STOP", "STOP"]
    assert render("vqa", make_sample("textvqa-1", {"family": "vqa", "qa": qa}))[1]["content"] == "STOP"


def test_vqa_picks_one_pair_with_the_rng_or_all_when_multi_turn():
    qa = [{"question": f"Q{i}?", "answers": [f"A{i}"]} for i in range(4)]
    sample = make_sample("docvqa-2", {"family": "vqa", "qa": qa})
    picked = {render("vqa", sample, seed)[1]["content"] for seed in range(50)}
    assert picked == {"A0", "A1", "A2", "A3"}
    turns = render("vqa", make_sample("docvqa-3", {"family": "vqa", "qa": qa, "qa_multi_turn": True}))
    assert [t["content"] for t in turns] == ["<image>\nQ0?", "A0", "Q1?", "A1", "Q2?", "A2", "Q3?", "A3"]


def test_prompt_overrides_do_not_apply_to_tasks_whose_questions_are_data():
    sample = positional_sample("pos-3", COLOUR_ITEM)
    assert render("positional", sample, prompts=["ignored"]) == render("positional", sample)


def test_chinese_prompts_render_a_chinese_sample_end_to_end():
    turns = render("doc2md", make_sample("arxiv-zh-p0001", {"family": "doc2md", "lang": "zh"}, md="# 引言"))
    assert CJK.search(user_prompt(turns)) and turns[1]["content"] == "# 引言"


def error_of(task: str, sample: dict, **kwargs) -> str:
    with pytest.raises(TaskError) as info:
        render(task, sample, **kwargs)
    message = str(info.value)
    assert sample["__key__"] in message and task in message
    return message


def conversation_sample(key: str, turns: list[dict], image: bool = True) -> dict:
    return make_sample(key, {"family": "conversation", "conversations": turns}, image=image)


GOOD_TURNS = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]


@pytest.mark.parametrize("task, sample, expected", [
    ("captioning", make_sample("k-1", {"family": "caption"}, txt="x"), "known tasks: caption, conversation, doc2md"),
    ("caption", make_sample("k-2", {"family": "caption"}), "no .txt member (the caption)"),
    ("caption", make_sample("k-3", {"family": "caption"}, txt="  \n"), ".txt is empty"),
    ("ocr", make_sample("k-4", {"family": "caption"}, txt="a dog"), "record family 'caption' is not one this task reads (ocr)"),
    ("ocr", make_sample("k-5", None, txt="a dog"), "record family None"),
    ("caption", {**make_sample("k-6", {"family": "caption"}), "txt": "légende".encode("latin-1")}, ".txt is not UTF-8"),
    ("doc2md", {**make_sample("k-7", None, md="# x"), "json": b"{not json"}, ".json is not a JSON record"),
    ("doc2md", {**make_sample("k-8", None, md="# x"), "json": b"[1, 2]"}, ".json must be a JSON object, got list"),
    ("table", make_sample("k-9", {"family": "table"}), "no .html member"),
    ("formula", make_sample("k-10", {"family": "formula"}), "no .tex member"),
    ("conversation", make_sample("k-11", {"family": "conversation"}), "no 'conversations' in the record"),
    ("conversation", conversation_sample("k-12", [{"from": "bot", "value": "x"}]), "conversations[0] must be"),
    ("conversation", conversation_sample("k-13", [{"from": "human", "value": "Hi"}]), "has no assistant turn"),
    ("conversation", conversation_sample("k-14", [{"from": "human", "value": "<image>\nHi"}, GOOD_TURNS[1]], image=False),
     "the turns hold <image> but the sample has no image member"),
    ("conversation", conversation_sample("k-15", [{"from": "human", "value": "<image>\n<image>"}, GOOD_TURNS[1]]),
     "2 <image> placeholders"),
    ("conversation", conversation_sample("k-16", [GOOD_TURNS[0], {"from": "gpt", "value": "<image>"}]),
     "<image> stands in turn 1 (assistant); it belongs in a user turn"),
    ("positional", make_sample("k-17", {"family": "positional"}), "no 'positional' in the record"),
    ("positional", positional_sample("k-18", {"kind": "colour", "question": "?", "answer": "red"}),
     "positional[0] 'kind' must be one of region_to_text, text_to_region, point_to_text, colour_to_text"),
    ("positional", positional_sample("k-19", []), "must be a non-empty list"),
    ("positional", positional_sample("k-19b", [REGION_ITEM, {**POINT_ITEM, "text": " "}]),
     "positional[1] needs a non-empty text 'text'"),
    ("positional", positional_sample("k-19c", {**REGION_ITEM, "region": [300, 200, 100, 260]}),
     "positional[0] 'region' must be [x1, y1, x2, y2], integers 0-1000"),
    ("positional", positional_sample("k-19d", {**POINT_ITEM, "point": [120.5, 230]}),
     "positional[0] 'point' must be [x, y], integers 0-1000"),
    ("positional", positional_sample("k-19e", {**COLOUR_ITEM, "colour": "purple"}),
     "positional[0] 'colour' must be one of red, green, blue"),
    ("positional", make_sample("k-19f", {**OCR_PAGE, "lines": [{"words": [7]}]}),
     "cannot make a positional item from the page's words: lines[0] needs 'words'"),
    ("layout", make_sample("k-20", {"family": "layout", "layout": LAYOUT_RECORD["layout"]}), "no 'image' in the record"),
    ("layout", make_sample("k-21", {**LAYOUT_RECORD, "image": {"width": 0, "height": 10}}), "positive 'width' and 'height'"),
    ("layout", make_sample("k-22", {**LAYOUT_RECORD, "layout": [{"label": "Text", "bbox": [1, 2, 3]}]}),
     "layout[0] 'bbox' must be [x1, y1, x2, y2]"),
    ("kie", make_sample("k-23", {"family": "kie"}), "no 'fields' in the record"),
    ("kie", make_sample("k-24", {"family": "kie", "fields": {}}), "'fields' must be a non-empty"),
    ("kie", make_sample("k-25", {"family": "kie", "fields": {"total": 3}}), "'fields' must be a non-empty"),
    ("vqa", make_sample("k-26", {"family": "vqa", "qa": [{"question": "Q?", "answers": []}]}), "qa[0] needs 'answers'"),
    ("vqa", make_sample("k-27", {"family": "vqa", "qa": [{"answers": ["a"]}]}), "qa[0] needs a non-empty text 'question'"),
    ("vqa", make_sample("k-28", {"family": "vqa"}), "no 'qa' in the record"),
])
def test_task_errors_name_the_sample_the_task_and_what_is_wrong(task, sample, expected):
    assert expected in error_of(task, sample)


@pytest.mark.parametrize("prompts, expected", [
    ([], "a prompt override is a non-empty list of texts"),
    ("Describe it.", "a prompt override is a non-empty list of texts"),
    ({"de": ["Beschreibe das Bild."]}, "prompt override languages ['de'] are not among ['en', 'zh']"),
    ({"en": [""]}, "a prompt override is a non-empty list of texts"),
])
def test_malformed_prompt_overrides_are_task_errors(prompts, expected):
    sample = make_sample("cap-bad", {"family": "caption", "lang": "en"}, txt="a bus")
    assert expected in error_of("caption", sample, prompts=prompts)


def test_task_error_survives_pickling():
    error = TaskError("cc3m-1", "caption", "no .txt member")
    assert str(pickle.loads(pickle.dumps(error))) == str(error) == "sample cc3m-1: task caption: no .txt member"


def test_caption_reads_raw_img2dataset_samples_whose_record_has_no_family():
    raw = make_sample("000000042", {"url": "https://example.com/x.jpg", "status": "success", "key": "000000042"},
                      txt="a red bicycle")
    turns = render_conversation("caption", raw, random.Random(0))
    assert turns[-1] == {"role": "assistant", "content": "a red bicycle"}
