"""Mixture manifests and the resumable weighted stream, over real shards read with webdataset."""

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from mixtures.manifest import ManifestError, load_manifest
from mixtures.stream import MixtureStream, Slot
from pipelines.shards import ShardWriter, build_index, read_index, write_index
from pipelines.storage import Folder

REPO = Path(__file__).resolve().parents[1]
PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8"
                        "cfc000000301010018dd8db00000000049454e44ae426082")


def make_dataset(root: Path, name: str, shards: int, per_shard: int, first: int = 0) -> list[str]:
    """A docforge dataset of caption samples (written by the real ShardWriter, with index.json); with `first`,
    `shards` more shards (tasks first, first + 1, ...) added to the dataset's."""
    folder = Folder(str(root / name))
    entries, keys = (read_index(folder)["shards"] if first else []), []
    for task in range(first, first + shards):
        with ShardWriter(folder, task, max_count=per_shard) as writer:
            for i in range(per_shard):
                key = f"{name}-{task:03d}-{i:03d}"
                writer.write({"__key__": key, "png": PNG_1x1, "txt": f"caption of {key}",
                              "json": {"family": "caption", "lang": "en"}})
                keys.append(key)
        entries += [s.to_dict() for s in writer.shards]
    write_index(folder, build_index(entries, {"job": "test"}, {"complete": True, "missing_tasks": []}))
    return keys


@pytest.fixture
def data(tmp_path):
    keys = {"alpha": make_dataset(tmp_path, "alpha", 8, 25),   # more shards than slots: whole shards
            "beta": make_dataset(tmp_path, "beta", 3, 40),     # fewer shards than 4 slots: sample slicing
            "gamma": make_dataset(tmp_path, "gamma", 5, 10)}
    return tmp_path, keys


def write_manifest(root: Path, body: str, name: str = "mix.yaml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(body))
    return path


MIX = """\
name: test-mix
stage: 2
seed: 7
sources:
  - name: alpha
    shards: alpha
    weight: 5
    task: caption
    repeat: {repeat}
  - name: beta
    shards: beta
    weight: 3
    task: [{{name: caption, weight: 1}}]
    repeat: {repeat}
  - name: gamma
    shards: gamma/shard-{{000000..000004}}-00.tar
    weight: 2
    task: caption
    repeat: {repeat}
"""


def test_two_ranks_two_workers_see_disjoint_samples_covering_the_whole_set(data):
    root, keys = data
    mixture = load_manifest(str(write_manifest(root, MIX.format(repeat="false"))))
    seen = {}
    for rank in range(2):
        for worker in range(2):
            stream = MixtureStream(mixture, Slot(rank, 2, worker, 2), buffer_size=16)
            seen[(rank, worker)] = [s["key"] for s in stream]
    assert all(seen.values()), "a slot got no samples"
    everything = [k for slot_keys in seen.values() for k in slot_keys]
    assert len(everything) == len(set(everything))
    assert sorted(everything) == sorted(k for ks in keys.values() for k in ks)


def test_realised_mix_is_within_two_percent_of_the_weights(data):
    root, _ = data
    stream = MixtureStream(load_manifest(str(write_manifest(root, MIX.format(repeat="true")))), Slot(), buffer_size=8,
                           token_counter=lambda turns: sum(len(t["content"].split()) for t in turns))
    drawn = Counter(stream.next()["source"] for _ in range(10_000))
    assert abs(drawn["alpha"] / 10_000 - 0.5) < 0.02
    assert abs(drawn["beta"] / 10_000 - 0.3) < 0.02
    assert abs(drawn["gamma"] / 10_000 - 0.2) < 0.02
    report = stream.delivered()
    assert report["alpha"]["samples"] == drawn["alpha"] and report["alpha"]["target_share"] == 0.5
    assert report["gamma"]["epoch"] > 5  # 50 samples per pass, cycled
    assert report["beta"]["tokens"] > 3 * report["beta"]["samples"]  # prompt + "caption of KEY" words


def test_samples_carry_a_conversation_from_the_task_template(data):
    root, _ = data
    stream = MixtureStream(load_manifest(str(write_manifest(root, MIX.format(repeat="true")))), Slot(),
                           decode_images=True)
    sample = stream.next()
    roles = [turn["role"] for turn in sample["conversation"]]
    assert roles[-1] == "assistant" and sample["conversation"][-1]["content"] == f"caption of {sample['key']}"
    assert "<image>" in sample["conversation"][0]["content"] or "<image>" in sample["conversation"][1]["content"]
    assert sample["image"].size == (1, 1) and sample["task"] == "caption"


RESUME = """
import json, sys
from mixtures.manifest import load_manifest
from mixtures.stream import MixtureStream, Slot
stream = MixtureStream(load_manifest(sys.argv[1]), Slot(1, 2, 0, 2), buffer_size=32)
mode, state_file, out_file = sys.argv[2], sys.argv[3], sys.argv[4]
if mode == "save":
    for _ in range(537):
        stream.next()
    json.dump(stream.state_dict(), open(state_file, "w"))
else:
    stream.load_state_dict(json.load(open(state_file)))
rows = []
for _ in range(1000):
    s = stream.next()
    rows.append([s["key"], s["source"], s["epoch"], s["conversation"]])
json.dump(rows, open(out_file, "w"))
"""


def test_state_saved_at_sample_k_restores_the_next_thousand_samples_in_a_fresh_process(data):
    root, _ = data
    manifest = write_manifest(root, MIX.format(repeat="true"))
    state, before, after = root / "state.json", root / "before.json", root / "after.json"
    for mode, out in (("save", before), ("load", after)):
        subprocess.run([sys.executable, "-c", RESUME, str(manifest), mode, str(state), str(out)], check=True,
                       cwd=REPO, timeout=120)
    expected, restored = json.loads(before.read_text()), json.loads(after.read_text())
    assert len(restored) == 1000 and restored == expected
    assert len({row[2] for row in expected}) > 1  # the window crosses epochs


def test_truncated_shard_is_skipped_and_counted_not_hung(data):
    root, keys = data
    shard = root / "gamma" / "shard-000002-00.tar"
    shard.write_bytes(shard.read_bytes()[:1500])
    mixture = load_manifest(str(write_manifest(root, MIX.format(repeat="false"))))
    stream = MixtureStream(mixture, Slot(), buffer_size=4)
    got = Counter(s["source"] for s in stream)
    assert got["alpha"] == 200 and got["beta"] == 120 and 40 <= got["gamma"] < 50
    assert stream.delivered()["gamma"]["shard_errors"] == 1


def test_shard_deleted_after_loading_is_skipped(data):
    root, _ = data
    mixture = load_manifest(str(write_manifest(root, MIX.format(repeat="false"))))
    (root / "alpha" / "shard-000003-00.tar").unlink()
    stream = MixtureStream(mixture, Slot(), buffer_size=4)
    assert Counter(s["source"] for s in stream)["alpha"] == 175
    assert stream.delivered()["alpha"]["shard_errors"] == 1


def test_max_samples_and_passes(data):
    root, _ = data
    body = MIX.format(repeat="2").replace("    repeat: 2\n  - name: beta", "    repeat: 2\n    max_samples: 30\n"
                                                                          "  - name: beta")
    stream = MixtureStream(load_manifest(str(write_manifest(root, body))), Slot(), buffer_size=4)
    got = Counter(s["source"] for s in stream)
    assert got == {"alpha": 60, "beta": 240, "gamma": 100}


def test_environment_variables_are_interpolated(data, monkeypatch):
    root, _ = data
    monkeypatch.setenv("MIX_DATA", str(root))
    body = MIX.format(repeat="true").replace("shards: alpha", "shards: ${MIX_DATA}/alpha") \
                                    .replace("shards: beta", "shards: ${UNSET_MIX_VAR:-beta}")
    mixture = load_manifest(str(write_manifest(root, body)))
    assert mixture.sources[0].shards[0].url == f"{root}/alpha/shard-000000-00.tar"
    assert mixture.sources[0].known_samples == 200


@pytest.mark.parametrize("edit,line,message", [
    (("    weight: 3\n", "    weight: 3\n    wieght: 1\n"), 13, "sources[1].wieght: unknown key"),
    (("    weight: 5\n", "    weight: 0\n"), 7, "sources[0].weight: Input should be greater than 0"),
    (("shards: alpha", "shards: nowhere"), 6, "sources[0].shards: missing shards"),
    (("shards: gamma/shard-{000000..000004}", "shards: gamma/shard-{000000..000009}"), 16,
     "sources[2].shards: missing shards"),
    (("    task: caption\n    repeat: false\n  - name: beta", "    task: captioning\n    repeat: false\n  - name: beta"),
     8, "sources[0].task: task 'captioning' has no template"),
    (("{name: caption, weight: 1}", "{name: tables, weight: 1}"), 13, "sources[1].task[0].name: task 'tables'"),
    (("name: gamma", "name: alpha"), 15, "sources[2].name: duplicate source name 'alpha'"),
    (("shards: gamma/shard-{000000..000004}-00.tar", "shards: [gamma, alpha/shard-000001-00.tar]"), 16,
     "sources[2].shards: "),
    (("shards: beta", "shards: ${NOT_SET_ANYWHERE}/beta"), 11, "sources[1].shards: environment variable NOT_SET_ANYWHERE"),
    (("stage: 2", "stage: 4"), 2, "stage: Input should be less than or equal to 3"),
])
def test_bad_manifests_fail_naming_file_line_and_field(data, edit, line, message):
    root, _ = data
    body = MIX.format(repeat="false")
    assert edit[0] in body
    path = write_manifest(root, body.replace(edit[0], edit[1], 1), "bad.yaml")
    with pytest.raises(ManifestError) as caught:
        load_manifest(str(path))
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)
    if "alpha/shard-000001" in edit[1]:
        assert "also reached by source 'alpha'" in str(caught.value)


def shard_of(key: str) -> str:
    return key.rsplit("-", 1)[0]  # "alpha-003-017" -> "alpha-003": its source and shard


@pytest.mark.parametrize("old, new", [((2, 1), (3, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 1))])
def test_a_pass_resharded_to_another_world_size_skips_no_sample_and_repeats_none(data, old, new):
    """`load_resharded`: the states of every old slot, cut at different points (partway through shards,
    samples still in their shuffle buffers), continue on another number of slots. Over the one pass the
    mixture makes, every sample comes out once: none skipped, none twice, but for a source with fewer
    shards than old slots, whose pass starts over. A resharded stream's own state then resumes exactly,
    and a second reshard of the resharded slots still loses and repeats none."""
    root, keys = data
    mixture = load_manifest(str(write_manifest(root, MIX.format(repeat="false"))))
    old_slots = [Slot(rank, old[0], worker, old[1]) for rank in range(old[0]) for worker in range(old[1])]
    before, states = [], []
    for i, slot in enumerate(old_slots):
        stream = MixtureStream(mixture, slot, buffer_size=16)
        before += [stream.next()["key"] for _ in range(23 + 17 * i)]
        states.append(stream.state_dict())
    middle, middle_states = [], []
    for rank in range(new[0]):
        stream = MixtureStream(mixture, Slot(rank, new[0], 0, new[1]), buffer_size=16)
        stream.load_resharded(states)
        if rank == 0:  # a resharded stream's state resumes it exactly
            head = [stream.next()["key"] for _ in range(40)]
            saved = stream.state_dict()
            tail = [stream.next()["key"] for _ in range(30)]
            again = MixtureStream(mixture, Slot(rank, new[0], 0, new[1]), buffer_size=16)
            again.load_state_dict(saved)
            assert [again.next()["key"] for _ in range(30)] == tail
            middle += head + tail
        else:
            middle += [stream.next()["key"] for _ in range(31 + 9 * rank)]
        middle_states.append(stream.state_dict())
    after = []
    for slot in old_slots:  # and back to the old slots
        stream = MixtureStream(mixture, slot, buffer_size=16)
        stream.load_resharded(middle_states)
        after += [s["key"] for s in stream]
    everything = {k for ks in keys.values() for k in ks}
    assert set(before) | set(middle) | set(after) == everything  # nothing skipped
    repeated = {k for k, n in Counter(before + middle + after).items() if n > 1}
    sliced = {"beta"} if len(keys["beta"]) // 40 < max(len(old_slots), new[0] * new[1]) else set()
    assert all(k.split("-")[0] in sliced for k in repeated), sorted(repeated)[:10]


def test_a_resharded_pass_keeps_its_max_samples(data):
    """A source capped at max_samples a pass: the old slots' delivered samples count against the pass's cap,
    so the passes deliver their caps in all, as without the reshard."""
    root, _ = data
    body = MIX.format(repeat="2").replace("    repeat: 2\n  - name: beta", "    repeat: 2\n    max_samples: 30\n"
                                                                          "  - name: beta")
    mixture = load_manifest(str(write_manifest(root, body)))
    before, states = [], []
    for rank in range(2):
        stream = MixtureStream(mixture, Slot(rank, 2, 0, 1), buffer_size=4)
        before += [stream.next()["source"] for _ in range(20 + 11 * rank)]
        states.append(stream.state_dict())
    after = []
    for rank in range(3):
        stream = MixtureStream(mixture, Slot(rank, 3, 0, 1), buffer_size=4)
        stream.load_resharded(states)
        after += [s["source"] for s in stream]
    assert 0 < Counter(before)["alpha"] < 30
    assert Counter(before + after)["alpha"] == 60


ALPHA_ONLY = """\
name: alpha-only
stage: 2
seed: 7
sources:
  - name: alpha
    shards: {folder}
    weight: 1
    task: caption
    repeat: 2
"""


def keyed(samples) -> list[tuple[str, int]]:
    return [(s["key"], s["epoch"]) for s in samples]


@pytest.mark.parametrize("change", ["grown", "moved", "cut"])
def test_a_state_resumes_its_pass_over_the_shards_it_began_with_after_the_source_changed(data, change, caplog):
    """A saved stream restored after its source's shards changed: a dataset that grew two shards, moved whole
    to another folder, or lost the shard being read (and with it samples of the saved shuffle buffer). The
    pass under way goes on over the shards it began with, as it would have (less the lost shard's samples),
    and the next pass reads the source as it is now."""
    root, keys = data
    mixture = load_manifest(str(write_manifest(root, ALPHA_ONLY.format(folder="alpha"))))
    stream = MixtureStream(mixture, Slot(), buffer_size=8)
    before = keyed(stream.next() for _ in range(70))
    state = stream.state_dict()
    rest = [key for key, epoch in keyed(stream) if epoch == 0]  # the pass's remainder, nothing changed
    folder = "alpha"
    lost: set[str] = set()
    if change == "grown":
        added = make_dataset(root, "alpha", 2, 25, first=8)
        now = keys["alpha"] + added
    elif change == "moved":
        (root / "alpha").rename(root / "elsewhere")
        folder, now = "elsewhere", keys["alpha"]
    else:
        cut = shard_of(before[-1][0])
        lost = {key for key in keys["alpha"] if shard_of(key) == cut}
        name = f"shard-{int(cut[-3:]):06d}-00.tar"  # "alpha-005" -> shard-000005-00.tar
        index = read_index(Folder(str(root / "alpha")))
        index["shards"] = [entry for entry in index["shards"] if entry["name"] != name]
        write_index(Folder(str(root / "alpha")), index)
        (root / "alpha" / name).unlink()
        now = [key for key in keys["alpha"] if key not in lost]
        assert lost & set(rest), "the cut shard has samples still to come"
    changed = load_manifest(str(write_manifest(root, ALPHA_ONLY.format(folder=folder))))
    resumed = MixtureStream(changed, Slot(), buffer_size=8)
    resumed.load_state_dict(state)
    after = keyed(resumed)
    first_pass = [key for key, epoch in after if epoch == 0]
    if change == "cut":
        assert set(first_pass) == set(rest) - lost and len(first_pass) == len(set(first_pass))
        assert resumed.delivered()["alpha"]["shard_errors"] >= 1
        assert "samples of the saved shuffle buffer are no longer in it" in caplog.text
    else:
        assert first_pass == rest
    second_pass = [key for key, epoch in after if epoch == 1]
    assert sorted(second_pass) == sorted(now)
    assert ("shards changed since the state was saved" in caplog.text) == (change != "moved")


def test_a_resharded_pass_goes_on_over_its_shards_after_the_source_grew(data):
    """Two slots' states continued by one slot after two shards were added to the source: the pass under
    way still delivers each of its 200 samples once, and the next pass has the 250 the source has now."""
    root, keys = data
    mixture = load_manifest(str(write_manifest(root, ALPHA_ONLY.format(folder="alpha"))))
    before, states = [], []
    for rank in range(2):
        stream = MixtureStream(mixture, Slot(rank, 2, 0, 1), buffer_size=8)
        before += keyed(stream.next() for _ in range(30 + 11 * rank))
        states.append(stream.state_dict())
    added = make_dataset(root, "alpha", 2, 25, first=8)
    resumed = MixtureStream(load_manifest(str(write_manifest(root, ALPHA_ONLY.format(folder="alpha")))), Slot(),
                            buffer_size=8)
    resumed.load_resharded(states)
    after = keyed(resumed)
    assert sorted(key for key, epoch in before + after if epoch == 0) == sorted(keys["alpha"])
    assert sorted(key for key, epoch in after if epoch == 1) == sorted(keys["alpha"] + added)
