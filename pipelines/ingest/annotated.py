"""The shape every stage-3 ingest format shares: annotation files + images -> one sample per image.

A format module (doclaynet, cdla, funsd, sroie, wildreceipt, vqa, pubtabnet, im2latex, crohme) says how
to read its annotation files into per-image items (`read_items`, while planning) and how one item
becomes targets (`targets`). This base plans the tasks, loads and checks each image, checks every box
of the targets against the image (`pipelines.ingest.targets`) and writes `KEY.<image>` + `KEY.json`
(+ `KEY.html` / `KEY.tex` where the format has them). Any bad record, image or box is an `InputError`.
"""

from __future__ import annotations

import json
import posixpath
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.images import CheckedImage, check_image
from pipelines.ingest.targets import check_boxes
from pipelines.job import InputError, Job, Plan, chunk_into_tasks, code_version, safe_key
from pipelines.storage import Folder, absolute_url, join_url, open_url


@dataclass
class Targets:
    """What one annotated image becomes: where its image is (a path relative to the image folder, or
    the bytes of an image rendered from the annotation), the record's targets and extra members."""

    image: str | bytes
    record: dict[str, Any]
    members: dict[str, str] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (width, height) the annotation claims, checked against the image
    lang: str | None = None  # the annotation's own language, over the job's
    provenance: dict[str, Any] = field(default_factory=dict)  # added to the record's provenance


def read_bytes(url: str, what: str) -> bytes:
    """The bytes of an input file; a missing or unreadable file is an `InputError` naming it."""
    try:
        with open_url(url, "rb") as f:
            return f.read()
    except FileNotFoundError as exn:
        raise InputError(url, f"read {what}", f"missing {what} file {url}", exception="FileNotFoundError") from exn
    except OSError as exn:
        raise InputError(url, f"read {what}", str(exn), exception=type(exn).__name__) from exn


def read_text(url: str, what: str) -> str:
    data = read_bytes(url, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exn:
        raise InputError(url, f"read {what}", f"not UTF-8 ({exn.reason} at byte {exn.start})",
                         exception="UnicodeDecodeError") from exn


def read_text_any_encoding(url: str, what: str) -> tuple[str, str]:
    """The text of a file that may predate UTF-8, and the encoding it was read with: UTF-8 (a BOM
    dropped), else Windows-1252, else Latin-1 (which reads any byte)."""
    data = read_bytes(url, what)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def text_lines(text: str) -> list[str]:
    """The lines of a text file: only "\\n" ends a line (a trailing "\\r" is dropped). `str.splitlines()`
    would also cut at U+0085, U+2028 and the other separators that JSON strings and Latin-1 text may hold."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_json(url: str, what: str) -> Any:
    text = read_text(url, what)
    try:
        return json.loads(text)
    except ValueError as exn:
        raise InputError(url, f"parse {what}", str(exn), exception="JSONDecodeError") from exn


def find_input_files(inputs: list[str], suffixes: tuple[str, ...],
                     keep: Callable[[str], bool] = lambda rel: True) -> list[str]:
    """Each input file as given, and below each input folder the files ending in `suffixes` (hidden files
    skipped) that `keep` accepts; an input that does not exist is a `FileNotFoundError`."""
    files = []
    for url in inputs:
        folder = Folder(url)
        if folder.fs.isdir(folder.root):
            files += [folder.url_of(rel) for rel in folder.find()
                      if rel.endswith(suffixes) and not posixpath.basename(rel).startswith(".") and keep(rel)]
        elif folder.fs.exists(folder.root):
            files.append(url)
        else:
            raise FileNotFoundError(f"{url}: no such file or folder")
    return files


def expect(condition: bool, name: str, step: str, message: str) -> None:
    if not condition:
        raise InputError(name, step, message)


def read_image(url: str, name: str) -> CheckedImage:
    """The image file at `url`, decoded and checked; an `InputError` naming the record `name` and the file when it
    is missing or not a whole image."""
    try:
        with open_url(url, "rb") as f:
            data = f.read()
    except FileNotFoundError as exn:
        raise InputError(name, "read image", f"missing image file {url}", exception="FileNotFoundError") from exn
    try:
        return check_image(data, url)
    except InputError as exn:
        raise InputError(name, exn.step, f"{url}: {exn.message}", exn.exception) from exn


class AnnotatedIngest(Job):
    """Base of the annotation + image folder formats. Subclasses set `format`, `family`, `suffixes`."""

    format: str = ""
    family: str = ""
    suffixes: tuple[str, ...] = (".json",)  # annotation files picked from an --input folder
    default_lang: str = "en"

    def __init__(self, inputs: list[str], images_url: str | None, source: str, lang: str | None = None,
                 items_per_task: int = 1000):
        self.inputs = [absolute_url(u) for u in inputs]
        self.images_url = absolute_url(images_url) if images_url else None
        self.source = source
        self.lang = lang
        self.items_per_task = items_per_task
        self.name = f"ingest-{self.format}"

    def config(self) -> dict[str, Any]:
        return {"format": self.format, "inputs": self.inputs, "images": self.images_url, "source": self.source,
                "lang": self.lang, "items_per_task": self.items_per_task}

    def is_annotation(self, rel: str) -> bool:
        """Whether a file found in an --input folder is an annotation file (not, e.g., a class list)."""
        return True

    @abstractmethod
    def read_items(self, url: str) -> tuple[list[dict[str, Any]], list[InputError]]:
        """The per-image items of one annotation file (JSON-able dicts with an `id` unique in the file) and
        the errors of records that could not be grouped. Raise `InputError` when the whole file is bad."""

    @abstractmethod
    def targets(self, item: dict[str, Any], name: str) -> Targets:
        """The image location and targets of one item; raise `InputError` for a malformed annotation."""

    def plan(self) -> Plan:
        files = find_input_files(self.inputs, self.suffixes, self.is_annotation)
        if not files:
            raise FileNotFoundError(f"{' '.join(self.inputs)}: no {'/'.join(self.suffixes)} annotation files")
        items, errors = [], []
        seen: dict[str, str] = {}
        by_key: dict[str, dict[str, Any]] = {}
        for url in files:
            try:
                found, bad = self.read_items(url)
            except InputError as exn:
                errors.append(exn)
                continue
            errors += bad
            for item in found:
                key = f"{safe_key(self.source)}-{safe_key(str(item['id']))}"
                name = f"{url}#{item['id']}"
                if key in seen:
                    if not self.merge(by_key[key], {"file": url, **item}):
                        errors.append(InputError(name, "plan", f"sample key {key} repeats {seen[key]}"))
                    continue
                seen[key] = name
                by_key[key] = {"file": url, "key": key, **item}
                items.append(by_key[key])
        return Plan(chunk_into_tasks(items, self.items_per_task), errors)

    def merge(self, kept: dict[str, Any], again: dict[str, Any]) -> bool:
        """Fold `again`, an item of a later file with `kept`'s key, into `kept` when the format allows (the
        same image annotated in two files); False makes it a repeated-key error."""
        return False

    def describe(self, item: dict[str, Any]) -> str:
        return f"{item['file']}#{item['id']}"

    def image_url(self, item: dict[str, Any], rel: str) -> str:
        """Image paths are relative to --images, else to the annotation file's folder."""
        return join_url(self.images_url or posixpath.dirname(item["file"]), rel)

    def load_image(self, item: dict[str, Any], image: str | bytes, name: str) -> tuple[CheckedImage, str | None]:
        if isinstance(image, bytes):
            return check_image(image, name), None
        url = self.image_url(item, image)
        return read_image(url, name), url

    def fit_to_image(self, record: dict[str, Any], width: int, height: int) -> None:
        """Adjust the record's boxes to the loaded image before they are checked (a format whose annotators
        click past the image's edge clips them); none by default."""

    def process(self, item: dict[str, Any], task_index: int) -> Iterator[dict[str, Any]]:
        name = self.describe(item)
        targets = self.targets(item, name)
        image, image_url = self.load_image(item, targets.image, name)
        if targets.size is not None and targets.size != (image.width, image.height):
            raise InputError(name, "check image", f"the annotation says {targets.size[0]}x{targets.size[1]} pixels, "
                                                  f"the image {image_url} is {image.width}x{image.height}")
        self.fit_to_image(targets.record, image.width, image.height)
        check_boxes(targets.record, image.width, image.height, name)
        record = {
            "family": self.family,
            "lang": targets.lang or self.lang or self.default_lang,
            "source": self.source,
            "provenance": {"input": item["file"], "id": str(item["id"]), "image_file": image_url,
                           "format": self.format, "generator": f"docforge.ingest.{self.format}",
                           "version": code_version(), **targets.provenance},
            "image": image.record(),
            **targets.record,
        }
        yield {"__key__": item["key"], image.ext: image.data, "json": record, **targets.members}
