"""Task templates: turn one shard sample into the conversation the trainer tokenizes.

Shards carry targets, never prompts. The mixture stream picks a sample and a task for it and calls
`render_conversation(task, sample, rng)`: the template picks a prompt variant with the stream's seeded
rng, reads the task's target from the sample and returns chat turns `[{"role", "content"}]`, with one
`<image>` placeholder in a user turn when the sample has an image. The trainer applies the chat template.

A sample is a raw webdataset sample: `__key__` plus members `jpg`|`png`|`webp` (the image), `txt`,
`md`, `html`, `tex`, `json` (the record), as undecoded UTF-8 bytes (already decoded str, and a dict
for `json`, are accepted too). The record is a JSON object with `family` and usually `lang`.

Record contract per task (what a data job writes so that a task can read its samples):

- `caption` (family `caption`, or a record with no `family`: raw img2dataset tars, whose `.json` is
  img2dataset's own metadata, are caption data): `KEY.txt` = the caption. Answer: the caption.
- `ocr` (family `ocr` only): `KEY.txt` = all the text of the image in reading order, lines joined by
  "\\n". Answer: that text. (Both read `.txt`, so the family tells a caption from OCR text.)
- `doc2md`: `KEY.md` = the page as Markdown. Answer: the Markdown.
- `table`: `KEY.html` = the table as HTML. Answer: the HTML.
- `formula`: `KEY.tex` = the formula as LaTeX. Answer: the LaTeX.
- `conversation`: `record["conversations"]` = `[{"from": "human"|"gpt"|"system", "value": str}, ...]`
  as LLaVA writes them (roles become user/assistant/system), with at least one human and one gpt turn
  and at most one `<image>` in all, in a human turn, only if the sample has an image. It stays where
  the data put it; an image sample without one gets it before its first human turn.
- `positional`: `record["positional"]` = one structured item or a non-empty list of them (one
  user/assistant pair each, in order), coordinates integers 0-1000 (x by width, y by height), as
  `synth.positional` makes them (`docforge build positional`):
  `{"kind": "region_to_text", "region": [x1, y1, x2, y2], "text"}` (asks for the text inside the region:
  the words whose boxes lie in it, in reading order, lines joined by "\\n"),
  `{"kind": "text_to_region", "text", "region"}` (asks where the text is; answer `[x1,y1,x2,y2]`),
  `{"kind": "point_to_text", "point": [x, y], "text"}` (asks for the line at the point),
  `{"kind": "colour_to_text", "colour": "red"|"green"|"blue", "text", "region"}` (asks for the text
  inside the rectangle of that colour drawn on the sample's image). The question is a variant from
  `POSITIONAL_PROMPTS[kind]`; the answer is `text`, or the region for `text_to_region`. A record with no
  `positional` but with `words` (+ `lines`) and `image` `{"width", "height"}` in pixels (OCR and
  doc2md pages) gets one region/text/point item made on the fly with the rng.
- `layout`: `record["layout"]` = non-empty `[{"label": str, "bbox": [x1, y1, x2, y2]}, ...]` in
  reading order, labels DocLayNet class names (Caption, Footnote, Formula, List-item, Page-footer,
  Page-header, Picture, Section-header, Table, Text, Title), bbox in pixels; `record["image"]` =
  `{"width", "height"}` in pixels (as the shard writer records it). Answer: one block per line,
  `label [x1,y1,x2,y2]`, x scaled by 1000/width and y by 1000/height, rounded to the nearest integer
  (Python `round`: halves to even), clamped to 0-1000.
- `kie`: `record["fields"]` = non-empty `{name: str | [str, ...]}`. Answer:
  `json.dumps(fields, ensure_ascii=False, sort_keys=True)`; the prompt names the fields (sorted) when
  there are at most 12.
- `vqa`: `record["qa"]` = non-empty `[{"question": str, "answers": [str, ...]}, ...]` (several
  annotator answers, as in DocVQA/TextVQA); optional `record["qa_multi_turn"]` (bool). One pair is
  picked with the rng, or all of them in order when multi-turn; the answer is the most frequent of
  `answers` (ties: the one given first).

Prompts: the language is `lang`, else the record's `lang`, else "en"; `zh` (and `zh-CN`, `zh_Hant`, ...)
picks the Chinese variants, any other language the English ones. An override replaces the variants:
a list (any language) or a dict `{"en"|"zh": [...]}` (a language it omits keeps the built-in variants).
`conversation` and `vqa` take their questions from the data and `positional` from its per-kind
variants; all three ignore overrides.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.images import KEPT_FORMATS
from synth.positional import UNDRAWN_KINDS, PositionalError, make_positional_sample, read_page

IMAGE_PLACEHOLDER = "<image>"
IMAGE_MEMBERS = tuple(KEPT_FORMATS.values())  # the image extensions a shard sample can hold
PROMPT_LANGS = ("en", "zh")
LLAVA_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
MAX_NAMED_FIELDS = 12
FIELD_HINTS = {"en": (" Fields: {}.", ", "), "zh": ("字段：{}。", "、")}  # KIE prompt suffix, name separator

Turn = dict[str, str]


class TaskError(ValueError):
    """A sample cannot be rendered as the task asks. Names the sample key, the task and what is wrong."""

    def __init__(self, key: str, task: str, message: str):
        super().__init__(f"sample {key}: task {task}: {message}")
        self.key = key
        self.task = task
        self.message = message

    def __reduce__(self):
        return (TaskError, (self.key, self.task, self.message))


@dataclass
class TaskInput:
    """One sample as a template sees it: its members, its record, and the prompt variants to pick from."""

    task: str
    key: str
    sample: dict[str, Any]
    record: dict[str, Any]
    lang: str  # the prompt language: "en" or "zh"
    prompts: Sequence[str]
    rng: random.Random

    def error(self, message: str) -> TaskError:
        return TaskError(self.key, self.task, message)

    def prompt(self) -> str:
        return self.rng.choice(self.prompts)

    def text(self, ext: str, what: str) -> str:
        """Member `ext` as stripped, non-empty text."""
        if ext not in self.sample:
            raise self.error(f"no .{ext} member ({what})")
        value = self.sample[ext]
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exn:
                raise self.error(f".{ext} is not UTF-8 ({exn.reason} at byte {exn.start})") from exn
        text = value.strip()
        if not text:
            raise self.error(f".{ext} is empty ({what})")
        return text

    def field(self, name: str, what: str) -> Any:
        if self.record.get(name) is None:
            raise self.error(f"no '{name}' in the record ({what})")
        return self.record[name]

    def items(self, value: Any, name: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
            raise self.error(f"record '{name}' must be a non-empty list of objects, got {str(value)[:120]}")
        return value

    def string(self, item: dict[str, Any], name: str, where: str) -> str:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{where} needs a non-empty text '{name}', got {str(item)[:120]}")
        return value


@dataclass(frozen=True)
class TaskTemplate:
    """A task: the record families it reads (empty: any), its prompt variants per language (empty: the
    data holds the questions) and the function that builds the turns."""

    name: str
    families: frozenset[str]
    prompts: dict[str, tuple[str, ...]]
    build: Callable[[TaskInput], list[Turn]]
    reads_unlabelled: bool = False  # also reads records that carry no "family" at all


def user(content: str) -> Turn:
    return {"role": "user", "content": content}


def assistant(content: str) -> Turn:
    return {"role": "assistant", "content": content}


def member_target(ext: str, what: str) -> Callable[[TaskInput], list[Turn]]:
    """A build that asks a prompt and answers with member `ext`."""

    def build(task: TaskInput) -> list[Turn]:
        return [user(task.prompt()), assistant(task.text(ext, what))]

    return build


def build_conversation(task: TaskInput) -> list[Turn]:
    turns = task.items(task.field("conversations", "LLaVA turns"), "conversations")
    rendered = []
    for i, turn in enumerate(turns):
        role = LLAVA_ROLES.get(turn.get("from"))
        if role is None or not isinstance(turn.get("value"), str):
            raise task.error(f"conversations[{i}] must be {{'from': human|gpt|system, 'value': text}}, "
                             f"got {str(turn)[:120]}")
        rendered.append({"role": role, "content": turn["value"]})
    missing = {"user", "assistant"} - {turn["role"] for turn in rendered}
    if missing:
        raise task.error(f"the conversation has no {' or '.join(sorted(missing))} turn")
    return rendered


def integers(task: TaskInput, item: dict[str, Any], name: str, count: int, where: str) -> list[int]:
    """`item[name]`: `count` integers 0-1000 (a box's x2 >= x1 and y2 >= y1)."""
    value = item.get(name)
    if not (isinstance(value, list) and len(value) == count
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000 for v in value)
            and (count != 4 or (value[0] <= value[2] and value[1] <= value[3]))):
        shape = "[x1, y1, x2, y2]" if count == 4 else "[x, y]"
        raise task.error(f"{where} '{name}' must be {shape}, integers 0-1000, got {value!r}")
    return value


def positional_turns(task: TaskInput, item: dict[str, Any], where: str) -> list[Turn]:
    """One positional item as a question (a variant for its kind and language) and its answer."""
    kind = item.get("kind")
    if kind not in POSITIONAL_PROMPTS:
        raise task.error(f"{where} 'kind' must be one of {', '.join(POSITIONAL_PROMPTS)}, got {kind!r}")
    text = task.string(item, "text", where)
    fields: dict[str, str] = {"text": text}
    if kind == "point_to_text":
        fields["point"] = "({},{})".format(*integers(task, item, "point", 2, where))
    else:
        fields["region"] = "[{},{},{},{}]".format(*integers(task, item, "region", 4, where))
    if kind == "colour_to_text":
        names = COLOUR_NAMES[task.lang]
        if item.get("colour") not in names:
            raise task.error(f"{where} 'colour' must be one of {', '.join(names)}, got {item.get('colour')!r}")
        fields["colour"] = names[item["colour"]]
    question = task.rng.choice(POSITIONAL_PROMPTS[kind][task.lang]).format(**fields)
    return [user(question), assistant(fields["region"] if kind == "text_to_region" else text)]


def page_positional_item(task: TaskInput) -> dict[str, Any]:
    """A region/text/point item made with the rng from a page record's words, lines and image size."""
    if task.record.get("words") is None:
        raise task.error("no 'positional' in the record (positional items), nor 'words' to make one from")
    size = task.record.get("image")
    width, height = (size.get("width"), size.get("height")) if isinstance(size, dict) else (None, None)
    try:
        page = read_page(width, height, task.record["words"], task.record.get("lines"))
    except PositionalError as exn:
        raise task.error(f"cannot make a positional item from the page's words: {exn}") from exn
    sample = make_positional_sample(None, page, task.rng, UNDRAWN_KINDS)
    if sample is None:
        raise task.error("the page's words give no unambiguous positional item")
    return sample.items[0]


def build_positional(task: TaskInput) -> list[Turn]:
    value = task.record.get("positional")
    items = [page_positional_item(task)] if value is None else task.items(
        [value] if isinstance(value, dict) else value, "positional")
    return [turn for i, item in enumerate(items) for turn in positional_turns(task, item, f"positional[{i}]")]


def normalised(pixels: float, size: float) -> int:
    """A pixel coordinate along an axis `size` pixels long, as an integer 0-1000."""
    return min(1000, max(0, round(pixels * 1000 / size)))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def build_layout(task: TaskInput) -> list[Turn]:
    blocks = task.items(task.field("layout", "layout blocks"), "layout")
    size = task.field("image", "the image width and height")
    width, height = (size.get("width"), size.get("height")) if isinstance(size, dict) else (None, None)
    if not (is_number(width) and is_number(height) and width > 0 and height > 0):
        raise task.error(f"record 'image' must hold a positive 'width' and 'height', got {str(size)[:120]}")
    lines = []
    for i, block in enumerate(blocks):
        label = task.string(block, "label", f"layout[{i}]")
        bbox = block.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            raise task.error(f"layout[{i}] 'bbox' must be [x1, y1, x2, y2] in pixels, got {bbox!r}")
        x1, y1, x2, y2 = bbox
        box = (normalised(x1, width), normalised(y1, height), normalised(x2, width), normalised(y2, height))
        lines.append(f"{label} [{','.join(map(str, box))}]")
    return [user(task.prompt()), assistant("\n".join(lines))]


def is_field_value(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def build_kie(task: TaskInput) -> list[Turn]:
    fields = task.field("fields", "key-value fields")
    if not isinstance(fields, dict) or not fields or not all(map(is_field_value, fields.values())):
        raise task.error(f"record 'fields' must be a non-empty {{name: text or [text, ...]}}, got {str(fields)[:120]}")
    prompt = task.prompt()
    if len(fields) <= MAX_NAMED_FIELDS:
        hint, separator = FIELD_HINTS[task.lang]
        prompt += hint.format(separator.join(sorted(fields)))
    return [user(prompt), assistant(json.dumps(fields, ensure_ascii=False, sort_keys=True))]


def majority_answer(answers: list[str]) -> str:
    """The most frequent answer; on a tie, the one given first (Counter keeps first-seen order)."""
    return Counter(answers).most_common(1)[0][0]


def build_vqa(task: TaskInput) -> list[Turn]:
    pairs = []
    for i, item in enumerate(task.items(task.field("qa", "question-answer pairs"), "qa")):
        answers = item.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise task.error(f"qa[{i}] needs 'answers', a non-empty list of texts, got {str(item)[:120]}")
        pairs.append([user(task.string(item, "question", f"qa[{i}]")), assistant(majority_answer(answers))])
    if task.record.get("qa_multi_turn"):
        return [turn for pair in pairs for turn in pair]
    return task.rng.choice(pairs)


COLOUR_NAMES = {"en": {"red": "red", "green": "green", "blue": "blue"},
                "zh": {"red": "红色", "green": "绿色", "blue": "蓝色"}}
POSITIONAL_PROMPTS: dict[str, dict[str, tuple[str, ...]]] = {  # per kind and language; str.format fields
    "region_to_text": {
        "en": ("What is the text inside {region}?",
               "Read the text in the region {region}.",
               "Which words lie within the box {region}? Coordinates are on a 0-1000 scale.",
               "Transcribe the text located in {region}."),
        "zh": ("区域 {region} 内的文字是什么？",
               "请读出方框 {region} 中的文字。",
               "识别坐标 {region} 范围内的文本（坐标范围 0-1000）。",
               "写出位于 {region} 的文字内容。"),
    },
    "text_to_region": {
        "en": ('Where is "{text}" in the image? Answer with a box [x1,y1,x2,y2].',
               'Give the bounding box of the text "{text}".',
               'Locate "{text}" in the image and answer with its box [x1,y1,x2,y2] on a 0-1000 scale.',
               'Find the text "{text}" and output its coordinates as [x1,y1,x2,y2].'),
        "zh": ("文字“{text}”在图中的什么位置？请用边界框 [x1,y1,x2,y2] 回答。",
               "请给出文本“{text}”的边界框。",
               "在图中定位“{text}”，以 0-1000 坐标的 [x1,y1,x2,y2] 形式回答。",
               "找到文字“{text}”，输出它的坐标 [x1,y1,x2,y2]。"),
    },
    "point_to_text": {
        "en": ("What does the line at point {point} say?",
               "Read the line of text that passes through {point}.",
               "Which line of text is at {point}? Coordinates are on a 0-1000 scale.",
               "Transcribe the text line under the point {point}."),
        "zh": ("点 {point} 处的那一行文字是什么？",
               "请读出经过点 {point} 的文本行。",
               "坐标 {point} 所在的文字行写的是什么？（坐标范围 0-1000）",
               "写出点 {point} 下方那一行的文字。"),
    },
    "colour_to_text": {
        "en": ("What text is inside the {colour} box?",
               "Read the text enclosed by the {colour} rectangle.",
               "Transcribe the words inside the {colour} frame.",
               "What is written in the area marked with the {colour} box?"),
        "zh": ("{colour}框内的文字是什么？",
               "请读出{colour}矩形框中的文字。",
               "识别被{colour}方框圈出的文本。",
               "{colour}框标出的区域里写了什么？"),
    },
}


TASKS: dict[str, TaskTemplate] = {template.name: template for template in (
    TaskTemplate("caption", frozenset({"caption"}), {
        "en": ("Describe this image briefly.",
               "Write a short caption for this image.",
               "What does this image show? Answer in one sentence.",
               "Give a brief description of the picture."),
        "zh": ("简要描述这张图片。",
               "请为这张图片写一句简短的说明。",
               "这张图片展示了什么？请用一句话回答。",
               "请简单描述一下图中的内容。"),
    }, member_target("txt", "the caption"), reads_unlabelled=True),
    TaskTemplate("conversation", frozenset(), {}, build_conversation),
    TaskTemplate("doc2md", frozenset(), {
        "en": ("Please convert the document to markdown.",
               "Convert this document page into Markdown.",
               "Transcribe this page as Markdown, keeping its headings, lists, tables and formulas.",
               "Write the content of this document in Markdown format."),
        "zh": ("请将文档转换为 Markdown 格式。",
               "把这页文档转写成 Markdown。",
               "请用 Markdown 格式输出这页文档的内容，保留标题、列表、表格和公式。",
               "将图中的文档内容转换为 Markdown。"),
    }, member_target("md", "the page markdown")),
    TaskTemplate("ocr", frozenset({"ocr"}), {
        "en": ("Read all the text in the image.",
               "What text appears in this image? Write it out in reading order.",
               "Transcribe all the text in this image.",
               "Extract the text from this image."),
        "zh": ("识别图中的所有文字。",
               "请按阅读顺序写出图片中的全部文字。",
               "图片里写了什么？请完整转录。",
               "提取这张图片中的文字。"),
    }, member_target("txt", "the text in reading order")),
    TaskTemplate("table", frozenset(), {
        "en": ("Please convert the table into html format.",
               "Convert this table to HTML.",
               "Write this table as HTML markup.",
               "Transcribe the table in the image into HTML."),
        "zh": ("请将表格转换为 HTML 格式。",
               "把这张表格转写成 HTML。",
               "请用 HTML 代码表示图中的表格。",
               "将图片中的表格识别为 HTML。"),
    }, member_target("html", "the table HTML")),
    TaskTemplate("formula", frozenset(), {
        "en": ("Please convert the formula into latex format.",
               "Convert this formula to LaTeX.",
               "Write the LaTeX code for the formula in the image.",
               "Transcribe this mathematical expression into LaTeX."),
        "zh": ("请将公式转换为 LaTeX 格式。",
               "把这个公式转写成 LaTeX。",
               "写出图中公式的 LaTeX 代码。",
               "请识别图片中的数学公式并输出 LaTeX。"),
    }, member_target("tex", "the formula LaTeX")),
    TaskTemplate("positional", frozenset(), {}, build_positional),
    TaskTemplate("layout", frozenset(), {
        "en": ("Analyze the layout of this document. List each block on its own line as: category [x1,y1,x2,y2].",
               "Detect the layout blocks on this page and give each one's category and bounding box.",
               "List the layout elements of this page in reading order, with their categories and bounding boxes."),
        "zh": ("分析这页文档的版面布局，按“类别 [x1,y1,x2,y2]”的格式逐行列出每个区块。",
               "检测页面中的版面区块，给出每个区块的类别和边界框。",
               "按阅读顺序列出本页的版面元素及其类别和边界框。"),
    }, build_layout),
    TaskTemplate("kie", frozenset(), {
        "en": ("Extract the key information from this document as JSON.",
               "Return the key-value information in this image as a JSON object.",
               "What are the key fields in this document? Answer in JSON."),
        "zh": ("提取这份文档中的关键信息，以 JSON 格式输出。",
               "请将图中的关键信息整理成 JSON 对象。",
               "这份文档有哪些关键字段？请用 JSON 回答。"),
    }, build_kie),
    TaskTemplate("vqa", frozenset(), {}, build_vqa),
)}


def task_names() -> list[str]:
    return sorted(TASKS)


def prompt_language(lang: Any) -> str:
    """"zh" for any Chinese language tag (zh, zh-CN, zh_Hant), else "en"."""
    return "zh" if str(lang).lower().replace("_", "-").split("-")[0] == "zh" else "en"


def read_record(sample: dict[str, Any], key: str, task: str) -> dict[str, Any]:
    value = sample.get("json")
    if value is None:
        return {}
    if not isinstance(value, dict):
        try:
            value = json.loads(value)
        except ValueError as exn:  # UnicodeDecodeError is a ValueError too
            raise TaskError(key, task, f".json is not a JSON record ({exn})") from exn
    if not isinstance(value, dict):
        raise TaskError(key, task, f".json must be a JSON object, got {type(value).__name__}")
    return value


def prompt_variants(template: TaskTemplate, lang: str, override: dict[str, list[str]] | list[str] | None,
                    key: str) -> tuple[str, ...]:
    """The prompt variants of `template` in `lang`, or those of the override."""
    if override is None or not template.prompts:
        return template.prompts.get(lang, ())
    if isinstance(override, dict):
        unknown = sorted(set(override) - set(PROMPT_LANGS))
        if unknown:
            raise TaskError(key, template.name,
                            f"prompt override languages {unknown} are not among {list(PROMPT_LANGS)}")
        override = override.get(lang, template.prompts[lang])
    if isinstance(override, str) or not override or not all(isinstance(p, str) and p.strip() for p in override):
        raise TaskError(key, template.name, f"a prompt override is a non-empty list of texts, got {override!r}")
    return tuple(override)


def place_image(turns: list[Turn], has_image: bool, key: str, task: str) -> list[Turn]:
    """Check the image placeholder: exactly one, in a user turn, for an image sample (prepended to the
    first user turn when the turns hold none); none for a text-only sample."""
    count = sum(turn["content"].count(IMAGE_PLACEHOLDER) for turn in turns)
    if not has_image:
        if count:
            raise TaskError(key, task, f"the turns hold {IMAGE_PLACEHOLDER} but the sample has no image member")
        return turns
    if count > 1:
        raise TaskError(key, task, f"the turns hold {count} {IMAGE_PLACEHOLDER} placeholders; a sample has one image")
    if count == 1:
        index, holder = next((i, turn) for i, turn in enumerate(turns) if IMAGE_PLACEHOLDER in turn["content"])
        if holder["role"] != "user":
            raise TaskError(key, task,
                            f"{IMAGE_PLACEHOLDER} stands in turn {index} ({holder['role']}); it belongs in a user turn")
        return turns
    first_user = next(i for i, turn in enumerate(turns) if turn["role"] == "user")
    turns[first_user] = user(f"{IMAGE_PLACEHOLDER}\n{turns[first_user]['content']}")
    return turns


def render_conversation(task: str, sample: dict[str, Any], rng: random.Random, lang: str | None = None,
                        prompts: dict[str, list[str]] | list[str] | None = None) -> list[Turn]:
    """The conversation for `sample` under `task`; the same rng state gives the same conversation.

    Raises `TaskError` for an unknown task, a record of another family, a missing or malformed target,
    an image placeholder that does not fit the sample, or a malformed prompt override.
    """
    key = str(sample.get("__key__", "<no key>"))
    template = TASKS.get(task)
    if template is None:
        raise TaskError(key, task, f"unknown task; known tasks: {', '.join(task_names())}")
    record = read_record(sample, key, task)
    family = record.get("family")
    if template.families and family not in template.families and not (family is None and template.reads_unlabelled):
        raise TaskError(key, task, f"record family {family!r} is not one this task reads "
                                   f"({', '.join(sorted(template.families))})")
    prompt_lang = prompt_language(lang or record.get("lang") or "en")
    variants = prompt_variants(template, prompt_lang, prompts, key)
    turns = template.build(TaskInput(task, key, sample, record, prompt_lang, variants, rng))
    return place_image(turns, any(ext in sample for ext in IMAGE_MEMBERS), key, task)
