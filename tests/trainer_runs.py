"""What the trainer's tests share: small real datasets written by the real ShardWriter, the demo mixtures'
datasets (`demo_out`) and an environment pointing the recipes at them (`env`), tiny.yaml variants, runs
started, signalled and compared by their logs."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from pipelines.shards import ShardWriter, build_index, write_index
from pipelines.storage import Folder

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "trainer" / "recipes" / "tiny.yaml"


def page(i: int, size=(420, 300)) -> bytes:
    image = Image.new("RGB", size, (255, 255 - 20 * (i % 5), 240))
    ImageDraw.Draw(image).text((20, 20), f"page {i}", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write_dataset(root: Path, name: str, samples: list[dict], max_count: int = 4) -> None:
    folder = Folder(str(root / name))
    with ShardWriter(folder, 0, max_count=max_count) as writer:
        for s in samples:
            writer.write(s)
    write_index(folder, build_index([s.to_dict() for s in writer.shards], {"job": "test"},
                                    {"complete": True, "missing_tasks": []}))


def demo_sample(folder: str, tasks: set[str], i: int) -> dict:
    """A sample every task template of `tasks` can read (caption and ocr need their own family)."""
    family = "caption" if "caption" in tasks else "ocr" if "ocr" in tasks else sorted(tasks)[0]
    lang = "zh" if folder.endswith("-zh") else "en"
    record = {"family": family, "lang": lang,
              "positional": [{"kind": "region_to_text", "region": [0, 0, 500, 500], "text": f"page {i}"}],
              "conversations": [{"from": "human", "value": "<image>\nWhich page is this?"},
                                {"from": "gpt", "value": f"Page {i}."},
                                {"from": "human", "value": "Is it blank?"}, {"from": "gpt", "value": "No."}]}
    record |= {"image": {"width": 420, "height": 300}, "layout": [{"label": "Title", "bbox": [10, 10, 200, 40]}],
               "fields": {"total": str(i)}, "qa": [{"question": "Which page?", "answers": [str(i)]}]}
    return {"__key__": f"{folder.replace('/', '-')}-{i}", "png": page(i, [(420, 300), (300, 500), (600, 300)][i % 3]),
            "txt": f"page {i} text" if lang == "en" else f"第{i}页", "md": f"# Page {i}\n\nBody.",
            "html": f"<table><tr><td>{i}</td></tr></table>", "tex": f"x^{i}", "json": record}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """Every dataset the demo mixtures read, small (6 samples), written by the real ShardWriter."""
    root = tmp_path_factory.mktemp("demo-out")
    tasks: dict[str, set[str]] = {}
    for manifest in sorted((REPO / "mixtures" / "demo").glob("stage*.yaml")):
        for source in yaml.safe_load(manifest.read_text())["sources"]:
            task = source["task"]
            names = {task} if isinstance(task, str) else {t["name"] for t in task}
            shards = source["shards"] if isinstance(source["shards"], list) else [source["shards"]]
            for spec in shards:
                tasks.setdefault(spec.split("}/", 1)[1].rstrip("/"), set()).update(names)
    for folder, names in tasks.items():
        write_dataset(root, folder, [demo_sample(folder, names, i) for i in range(6)])
    return root


@pytest.fixture
def env(demo_out, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCFORGE_DEMO_OUT", str(demo_out))
    monkeypatch.setenv("DOCFORGE_TRAIN_OUT", str(tmp_path / "train-out"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def tiny_variant(tmp_path: Path, name: str, steps: int, stages=(1, 2, 3), **runtime) -> Path:
    """tiny.yaml with fewer steps (and runtime overrides), written beside a copy of the repository layout."""
    recipe = yaml.safe_load(TINY.read_text())
    recipe["output"] = str(tmp_path / name)
    recipe["tokenizer"]["train"]["files"] = [str(REPO / "synth" / "corpora" / f) for f in ("en.txt", "zh.txt")]
    recipe["runtime"].update(runtime)
    recipe["stages"] = [s | {"steps": steps, "mixture": str(REPO / "mixtures" / "demo" / f"stage{s['stage']}.yaml")}
                        for s in recipe["stages"] if s["stage"] in stages]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def steps_of(stage_dir: Path) -> dict[int, dict]:
    """The log's last record of each step (a resumed run logs the steps after its checkpoint again)."""
    records = [json.loads(line) for line in (stage_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in records}


def start_training(recipe: Path, *launcher: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *launcher, "-m", "pipelines.cli", "train", str(recipe), "--stage", "2"],
                            cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def signal_after_steps(process: subprocess.Popen, log: Path, steps: int, send) -> None:
    """`send()` once the run has logged `steps` steps; fails if the run ended first."""
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= steps:
            send()
            return
        time.sleep(0.05)
    raise AssertionError(f"the run ended (or took too long) before step {steps}: {process.poll()}")


def assert_same_steps(resumed: dict, expected: dict) -> None:
    assert sorted(resumed) == sorted(expected) == [1, 2, 3, 4, 5]
    for step in expected:
        assert resumed[step]["batch_digest"] == expected[step]["batch_digest"], step
        assert resumed[step]["loss"] == expected[step]["loss"], step
        assert resumed[step]["grad_norm"] == expected[step]["grad_norm"], step


def train_two_ranks(recipe: Path, stage: str, *flags: str) -> None:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "pipelines.cli", "train", str(recipe), "--stage", stage, *flags],
                          cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)
