"""ShardWriter and `shards verify`: deterministic tars read back by webdataset, and every kind of damage caught."""

import hashlib
import io
import json
import tarfile

import fsspec
import pytest
import webdataset as wds

from pipelines.shard_reader import iter_tar_samples
from pipelines.shards import ShardError, ShardWriter, build_index, write_index
from pipelines.storage import Folder
from pipelines.verify import verify_dataset


def sample(i: int, family: str = "caption", payload: int = 100) -> dict:
    return {"__key__": f"s-{i:04d}", "txt": f"caption {i}", "jpg": bytes([i % 256]) * payload,
            "json": {"family": family, "i": i}}


def write_dataset(url: str, count: int, per_task: int = 10, max_count: int = 4) -> Folder:
    folder = Folder(url)
    shards = []
    for task in range(0, count, per_task):
        with ShardWriter(folder, task // per_task, max_count=max_count) as writer:
            for i in range(task, min(task + per_task, count)):
                writer.write(sample(i, "caption" if i % 2 else "ocr"))
        shards += [s.to_dict() for s in writer.shards]
    write_index(folder, build_index(shards, {"job": "test"}, {"complete": True, "missing_tasks": []}))
    return folder


def test_writer_rolls_over_by_count_and_webdataset_reads_every_sample(tmp_path):
    folder = write_dataset(str(tmp_path), 10, per_task=10, max_count=4)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [s["name"] for s in index["shards"]] == ["shard-000000-00.tar", "shard-000000-01.tar", "shard-000000-02.tar"]
    assert [s["samples"] for s in index["shards"]] == [4, 4, 2]
    assert index["totals"]["samples"] == 10 and index["families"] == {"caption": 5, "ocr": 5}
    for entry in index["shards"]:
        data = (tmp_path / entry["name"]).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
    read = list(wds.WebDataset([str(tmp_path / s["name"]) for s in index["shards"]], shardshuffle=False))
    assert [r["__key__"] for r in read] == [f"s-{i:04d}" for i in range(10)]
    assert read[3]["txt"] == b"caption 3" and json.loads(read[3]["json"]) == {"family": "caption", "i": 3}
    assert folder.list("_staging") == []  # every temporary shard was renamed


def test_writer_rolls_over_by_bytes(tmp_path):
    with ShardWriter(Folder(str(tmp_path)), 0, max_count=1000, max_bytes=5000) as writer:
        for i in range(10):
            writer.write(sample(i, payload=1500))
    assert len(writer.shards) >= 4
    assert all(s.bytes <= 5000 + 10240 for s in writer.shards)  # one sample may not be split; tar pads to 10 KiB
    assert sum(s.samples for s in writer.shards) == 10


def test_writer_output_is_byte_identical_across_runs(tmp_path):
    digests = []
    for run in ("a", "b"):
        with ShardWriter(Folder(str(tmp_path / run)), 7) as writer:
            for i in range(5):
                writer.write(sample(i))
        digests.append([s.sha256 for s in writer.shards])
    assert digests[0] == digests[1]
    with tarfile.open(tmp_path / "a" / "shard-000007-00.tar") as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {0}
    assert [m.name for m in members[:3]] == ["s-0000.jpg", "s-0000.json", "s-0000.txt"]  # sorted per sample


def test_shard_appears_under_its_final_name_only_when_closed(tmp_path):
    folder = Folder(str(tmp_path))
    writer = ShardWriter(folder, 3)
    writer.write(sample(1))
    assert folder.list() == ["_staging"]
    assert [n.split(".tmp-")[0] for n in folder.list("_staging")] == [".shard-000003-00.tar"]
    writer.close()
    assert folder.list() == ["_staging", "shard-000003-00.tar"] and folder.list("_staging") == []


def test_writer_aborted_by_an_exception_leaves_nothing(tmp_path):
    folder = Folder(str(tmp_path))
    with pytest.raises(RuntimeError):
        with ShardWriter(folder, 0) as writer:
            writer.write(sample(1))
            raise RuntimeError("disk full")
    assert folder.list("_staging") == [] and not [n for n in folder.list() if n.endswith(".tar")]


@pytest.mark.parametrize("bad,match", [
    ({"__key__": "2403.08295", "txt": "x"}, "must match"),
    ({"__key__": "a b", "txt": "x"}, "must match"),
    ({"__key__": "ok"}, "no files"),
    ({"__key__": "ok", "txt": 3}, "expected bytes"),
    ({"__key__": "ok", "json": b"[1, 2]"}, "not a JSON object"),
])
def test_writer_rejects_bad_samples(tmp_path, bad, match):
    with ShardWriter(Folder(str(tmp_path)), 0) as writer:
        with pytest.raises(ShardError, match=match):
            writer.write(bad)


def test_writer_rejects_duplicate_key_before_writing_it(tmp_path):
    with ShardWriter(Folder(str(tmp_path)), 0) as writer:
        writer.write(sample(1))
        with pytest.raises(ShardError, match="duplicate sample key s-0001"):
            writer.write(sample(1))
    assert writer.shards[0].samples == 1


def test_memory_filesystem_dataset_verifies_and_reads_back():
    url = "memory://datasets/mem-test"
    write_dataset(url, 12)
    report = verify_dataset(url)
    assert report.ok and report.samples == 12 and report.shards == 4
    with fsspec.open(f"{url}/shard-000000-00.tar", "rb") as f:
        assert [s["__key__"] for s in iter_tar_samples(f, "mem")] == ["s-0000", "s-0001", "s-0002", "s-0003"]


def problems(url: str) -> list[tuple[str, str]]:
    return [(p.kind, p.where.rsplit("/", 1)[-1]) for p in verify_dataset(url).problems]


def test_verify_passes_an_intact_dataset(tmp_path):
    write_dataset(str(tmp_path), 10)
    report = verify_dataset(str(tmp_path))
    assert report.ok and report.samples == 10


def test_verify_catches_a_truncated_shard(tmp_path):
    write_dataset(str(tmp_path), 10)
    path = tmp_path / "shard-000000-01.tar"
    path.write_bytes(path.read_bytes()[:700])  # cut inside the first member's data
    found = problems(str(tmp_path))
    assert ("corrupt tar", "shard-000000-01.tar") in found
    assert ("truncated shard", "shard-000000-01.tar") in found
    assert ("count mismatch", "shard-000000-01.tar") in found


def test_verify_catches_a_hash_mismatch(tmp_path):
    write_dataset(str(tmp_path), 10)
    path = tmp_path / "shard-000000-02.tar"
    data = bytearray(path.read_bytes())
    offset = data.index(b"caption 9")
    data[offset:offset + 9] = b"caption X"  # same size, still a valid tar
    path.write_bytes(bytes(data))
    assert problems(str(tmp_path)) == [("hash mismatch", "shard-000000-02.tar")]


def test_verify_catches_a_missing_shard_and_an_unindexed_one(tmp_path):
    write_dataset(str(tmp_path), 10)
    (tmp_path / "shard-000000-02.tar").rename(tmp_path / "shard-000009-00.tar")
    found = problems(str(tmp_path))
    assert ("missing shard", "shard-000000-02.tar") in found
    assert ("unindexed shard", "shard-000009-00.tar") in found


def test_verify_catches_duplicate_keys_across_shards(tmp_path):
    folder = Folder(str(tmp_path))
    shards = []
    for task in (0, 1):
        with ShardWriter(folder, task) as writer:
            writer.write(sample(5))
        shards += [s.to_dict() for s in writer.shards]
    write_index(folder, build_index(shards, {"job": "test"}))
    found = verify_dataset(str(tmp_path)).problems
    assert [(p.kind, p.detail) for p in found] == [("duplicate key", "s-0005 (also in shard-000000-00.tar)")]


def test_verify_reports_a_folder_without_index(tmp_path):
    assert problems(str(tmp_path)) == [("bad index", "index.json")]


def test_verify_reads_shards_written_by_plain_webdataset(tmp_path):
    """An index over tars that webdataset's own TarWriter wrote (not ours) verifies the same way."""
    buffer = io.BytesIO()
    with wds.TarWriter(buffer) as tar:
        tar.write({"__key__": "k-1", "txt": b"hello"})
    data = buffer.getvalue()
    (tmp_path / "other.tar").write_bytes(data)
    entry = {"name": "other.tar", "samples": 1, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_index(Folder(str(tmp_path)), build_index([entry], {"job": "external"}))
    assert verify_dataset(str(tmp_path)).ok
