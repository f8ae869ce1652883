"""`report.html`: a self-contained page a person opens after a build to see what was made.

Totals and error causes from `stats.json`, the first error-log lines, and a few samples read back from
the shards: a thumbnail of each image (with its word or target boxes drawn, when the record has them) beside its
targets (text, markdown, HTML, LaTeX, the JSON record).
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from PIL import Image, ImageDraw

from pipelines.ingest.targets import record_quads
from pipelines.shard_reader import first_samples, image_member
from pipelines.storage import Folder

TEXT_TARGETS = ("txt", "md", "html", "tex")
THUMBNAIL = 320
PREVIEW_CHARS = 1500

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
.sample{display:flex;gap:1.5em;border-top:1px solid #ddd;padding:1em 0}
.sample>div:last-child{flex:1}
.sample img{max-width:640px;border:1px solid #aaa}
pre{white-space:pre-wrap;max-width:70em;background:#f6f6f6;padding:.5em;margin:.3em 0}
.key{font-family:monospace;font-weight:bold}
"""


def thumbnail_data_uri(data: bytes, boxes: list[list[list[float]]] = (), size: int = THUMBNAIL) -> str | None:
    """A JPEG data URI of the image shrunk to `size`, with `boxes` (pixel quadrilaterals) outlined in red."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
            if boxes:
                draw = ImageDraw.Draw(image)
                width = max(1, round(max(image.size) / 400))
                for quad in boxes:
                    draw.polygon([tuple(point) for point in quad], outline=(230, 20, 20), width=width)
            image.thumbnail((size, size))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85)
    except Exception:  # an unreadable image shows as "no preview", the report still renders
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def word_quads(sample: dict[str, Any]) -> list:
    """The boxes a record carries, to draw on the preview: the word quads of OCR pages, else every target
    box (layout blocks of doc2md and layout pages, KIE entities and lines, table cells, formula symbols)."""
    try:
        record = json.loads(sample["json"]) if "json" in sample else {}
        quads = [word["quad"] for word in record.get("words", []) if isinstance(word, dict) and "quad" in word]
        return quads or record_quads(record)  # doc2md pages: their layout blocks
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def preview_text(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " …"


def render_sample(sample: dict[str, Any]) -> str:
    parts = [f'<div class="sample"><div><div class="key">{html.escape(sample["__key__"])}</div>']
    ext = image_member(sample)
    quads = word_quads(sample)
    uri = thumbnail_data_uri(sample[ext], quads, THUMBNAIL * 2 if quads else THUMBNAIL) if ext else None
    parts.append(f'<img src="{uri}" alt="{ext}">' if uri else "<p>(no image)</p>")
    parts.append("</div><div>")
    for target in TEXT_TARGETS:
        if target in sample:
            parts.append(f"<b>.{target}</b><pre>{html.escape(preview_text(sample[target]))}</pre>")
    if "json" in sample:
        try:
            pretty = json.dumps(json.loads(sample["json"]), indent=1, ensure_ascii=False)
        except ValueError:
            pretty = sample["json"].decode("utf-8", errors="replace")
        parts.append(f"<details><summary><b>.json</b></summary><pre>{html.escape(preview_text(pretty.encode('utf-8')))}"
                     "</pre></details>")
    parts.append("</div></div>")
    return "".join(parts)


def render_report(index: dict[str, Any], stats: dict[str, Any], errors: list[dict[str, Any]],
                  samples: list[dict[str, Any]]) -> str:
    rows = [
        ("job", stats["job"]), ("output", stats["output"]),
        ("complete", "yes" if stats["complete"] else f"no, missing tasks {stats['tasks']['missing'][:20]}"),
        ("tasks", json.dumps({k: v for k, v in stats["tasks"].items() if k != "missing"})),
        ("inputs", stats["inputs"]), ("samples", stats["samples"]), ("shards", stats["shards"]),
        ("bytes", stats["bytes"]), ("families", json.dumps(stats["families"], ensure_ascii=False)),
        ("errors", stats["errors"]), ("this run", json.dumps(stats["this_run"])),
        ("code version", index["job"].get("code_version", "?")),
    ]
    body = [f"<h1>docforge build {html.escape(stats['job'])}</h1><table>"]
    body += [f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows]
    body.append("</table>")
    if stats["errors_by_cause"]:
        body.append("<h2>Errors by cause</h2><table><tr><th>cause</th><th>count</th></tr>")
        body += [f"<tr><td>{html.escape(c)}</td><td>{n}</td></tr>" for c, n in stats["errors_by_cause"].items()]
        body.append("</table><h2>First errors</h2><table><tr><th>input</th><th>step</th><th>message</th></tr>")
        body += [f"<tr><td>{html.escape(str(e['input']))}</td><td>{html.escape(e['step'])}</td>"
                 f"<td>{html.escape(e['exception'])}: {html.escape(e['message'][:300])}</td></tr>" for e in errors[:25]]
        body.append("</table>")
    body.append(f"<h2>Samples ({len(samples)} of {stats['samples']})</h2>")
    body += [render_sample(s) for s in samples]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>docforge {html.escape(stats['job'])}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def write_report(folder: Folder, index: dict[str, Any], stats: dict[str, Any], errors: list[dict[str, Any]],
                 sample_count: int) -> None:
    samples = first_samples([folder.url_of(s["name"]) for s in index["shards"]], sample_count)
    folder.write_bytes("report.html", render_report(index, stats, errors, samples).encode("utf-8"))
