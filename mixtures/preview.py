"""`docforge mix preview`: the first N conversations the trainer would see from a manifest, with their
images, in one self-contained HTML page (read through the same `MixtureStream` the trainer uses)."""

from __future__ import annotations

import html
import json

from mixtures.manifest import Mixture
from mixtures.stream import MixtureStream, Slot
from pipelines.report import STYLE, thumbnail_data_uri


def render_turn(turn: dict[str, str]) -> str:
    return f"<div><b>{html.escape(turn['role'])}</b><pre>{html.escape(turn['content'])}</pre></div>"


def render_preview(mixture: Mixture, samples: list[dict], delivered: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{d['samples']}</td><td>{d['share']:.1%}</td>"
                   f"<td>{d['target_share']:.1%}</td></tr>" for name, d in delivered.items())
    body = [f"<h1>mixture {html.escape(mixture.name)} (stage {mixture.stage})</h1>",
            f"<p>{html.escape(mixture.path)} · seed {mixture.seed} · {len(samples)} samples</p>",
            f"<table><tr><th>source</th><th>samples</th><th>share</th><th>target</th></tr>{rows}</table>"]
    for sample in samples:
        uri = thumbnail_data_uri(sample["image"]) if sample["image"] is not None else None
        picture = f'<img src="{uri}" alt="{sample["image_format"]}">' if uri else "<p>(no image)</p>"
        head = f'{html.escape(sample["key"])} · {html.escape(sample["source"])} · task {html.escape(sample["task"])}'
        record = html.escape(json.dumps(sample["record"], ensure_ascii=False, indent=1)[:1500])
        body.append(f'<div class="sample"><div><div class="key">{head}</div>{picture}</div><div>'
                    f'{"".join(render_turn(t) for t in sample["conversation"])}'
                    f'<details><summary>record</summary><pre>{record}</pre></details></div></div>')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>mix preview {html.escape(mixture.name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def preview_mixture(mixture: Mixture, count: int) -> tuple[str, list[dict]]:
    stream = MixtureStream(mixture, Slot())
    samples = []
    while len(samples) < count and (sample := stream.next()) is not None:
        samples.append(sample)
    return render_preview(mixture, samples, stream.delivered()), samples
