"""The `docforge` command line as a user runs it: help with examples, exit codes, a real build of the samples."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCFORGE = [sys.executable, "-m", "pipelines.cli"]


def docforge(*args: str) -> subprocess.CompletedProcess:
    # wide: rich folds a word longer than the line (a deep tmp path) at the 80-column default
    return subprocess.run([*DOCFORGE, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400"})


@pytest.mark.parametrize("command", [[], ["build"], ["build", "ingest"], ["build", "ocr"], ["build", "positional"],
                                     ["shards"], ["shards", "verify"], ["shards", "show"], ["mix"], ["mix", "check"],
                                     ["mix", "preview"]])
def test_every_command_has_help_with_examples(command, capsys):
    from pipelines.cli import main  # in this process: the console script itself is the next test's

    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "examples:" in printed and "docforge" in printed


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "docforge"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "build" in result.stdout


def test_build_samples_then_verify_and_show(tmp_path):
    out = tmp_path / "conversations"
    build = docforge("build", "ingest", "--format", "llava", "--input", "samples/llava/conversations.json",
                     "--images", "samples/llava/images", "--output", str(out), "--source", "demo-llava",
                     "--num-cpus", "1")
    assert build.returncode == 0, build.stderr
    assert "complete" in build.stderr and "report" in build.stderr
    stats = json.loads((out / "stats.json").read_text())
    records = json.loads((REPO / "samples/llava/conversations.json").read_text())
    assert stats["samples"] == len(records) and stats["errors"] == 0
    verify = docforge("shards", "verify", str(out))
    assert verify.returncode == 0 and "OK" in verify.stdout
    several = docforge("shards", "verify", str(tmp_path / "missing"), str(out))  # each is checked
    printed = " ".join(several.stdout.split())
    assert several.returncode == 1 and f"{out}: 1 shards, {len(records)} samples" in printed and "OK" in printed
    assert f"bad index: {tmp_path / 'missing' / 'index.json'}" in printed and "1 of 2 datasets failed" in printed
    show = docforge("shards", "show", str(out), "-n", "1")
    assert show.returncode == 0 and "demo-llava-000000000" in show.stdout and "conversation" in show.stdout

    shard = out / json.loads((out / "index.json").read_text())["shards"][0]["name"]
    shard.write_bytes(shard.read_bytes()[:-20000])
    broken = docforge("shards", "verify", str(out))
    assert broken.returncode == 1 and "truncated shard" in broken.stdout


def test_build_with_missing_input_says_which_and_exits_2(tmp_path):
    result = docforge("build", "ingest", "--format", "img2dataset", "--input", str(tmp_path / "nope"),
                      "--output", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 2 and "nope" in result.stderr
