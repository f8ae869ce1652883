"""Batch preparation ahead of the training loop (trainer.data.Prefetcher) over real shards and a real
mixture: the worker process gives exactly the batches, in order and with the resume states, that the
thread gives and that PackedBatches gives alone; a worker killed from outside is a clear error, not a
hang; a used-up mixture stays used up."""

import copy
import os
import shutil
import signal
import textwrap

import pytest

from mixtures.manifest import load_manifest
from mixtures.stream import MixtureStream, Slot
from tests.trainer_runs import page, write_dataset
from trainer.data import NothingUsable, PackedBatches, Prefetcher, SampleEncoder
from trainer.stop_request import StopRequest
from trainer.tiling import TilingConfig
from trainer.tokenizer import train_bpe_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(["synth/corpora/en.txt"], 400)


@pytest.fixture()
def manifest(tmp_path):
    samples = [{"__key__": f"p{i:02d}", "png": page(i), "txt": f"page {i} " * (3 + i % 7),
                "json": {"family": "ocr", "lang": "en", "image": {"width": 420, "height": 300}}} for i in range(24)]
    write_dataset(tmp_path, "pages", samples)
    path = tmp_path / "mix.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: prefetch
        stage: 2
        seed: 3
        sources:
          - name: pages
            shards: {tmp_path / 'pages'}
            weight: 1
            task: ocr
        """))
    return path


def packed_batches(manifest, tokenizer, window: int = 4, seq_len: int = 160) -> PackedBatches:
    stream = MixtureStream(load_manifest(str(manifest)), Slot(), buffer_size=8)
    encoder = SampleEncoder(tokenizer, lambda rows, cols, has_global: (rows * cols + int(has_global)) * 4,
                            TilingConfig(tile_size=56, max_tiles=4), seq_len)
    return PackedBatches(stream, encoder, 2, tokenizer.pad_token_id, window=window)


def summary(batch):
    return batch.keys, batch.lengths, batch.input_ids.tolist(), batch.pixels.sum().item(), batch.state


@pytest.mark.parametrize("process", [True, False])
def test_prefetched_batches_are_the_batches_in_order_with_their_states(manifest, tokenizer, process):
    alone = packed_batches(manifest, tokenizer)
    expected = [summary(alone.next_batch()) for _ in range(8)]
    batches = packed_batches(manifest, tokenizer)
    batches.load_state_dict(packed_batches(manifest, tokenizer).state_dict())
    prefetch = Prefetcher(batches, depth=3, process=process)
    try:
        got = [summary(prefetch.next()) for _ in range(8)]
    finally:
        prefetch.close()
    assert got == expected
    assert not prefetch.worker.is_alive()


def test_resuming_from_a_prefetched_batch_state_continues_exactly(manifest, tokenizer):
    prefetch = Prefetcher(packed_batches(manifest, tokenizer), depth=4, process=True)
    try:
        seen = [prefetch.next() for _ in range(6)]
    finally:
        prefetch.close()
    resumed = packed_batches(manifest, tokenizer)
    resumed.load_state_dict(seen[2].state)
    assert [resumed.next_batch().keys for _ in range(3)] == [b.keys for b in seen[3:]]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_worker_process_is_an_error_not_a_hang(manifest, tokenizer, signum):
    """Also SIGTERM, which the training process catches (trainer.stop_request) while the worker, forked
    from it, must still die of it: its parent's `terminate()` sends it."""
    with StopRequest() as stop:
        prefetch = Prefetcher(packed_batches(manifest, tokenizer), depth=1, process=True)
        try:
            prefetch.next()
            os.kill(prefetch.worker.pid, signum)
            prefetch.worker.join(timeout=10)
            with pytest.raises(RuntimeError, match=f"data worker stopped .*exit code -{int(signum)}"):
                for _ in range(4):  # the batch already queued may still come first
                    prefetch.next()
        finally:
            prefetch.close()
    assert not stop.requested


@pytest.mark.parametrize("process", [True, False])
def test_a_mixture_whose_shards_all_vanish_is_used_up_and_stays_so(manifest, tokenizer, process):
    batches = packed_batches(manifest, tokenizer)
    shutil.rmtree(manifest.parent / "pages")
    prefetch = Prefetcher(batches, depth=2, process=process)
    try:
        assert prefetch.next() is None
        assert prefetch.next() is None
    finally:
        prefetch.close()


def test_a_tokenizer_that_spoils_every_sample_stops_the_run_with_the_reason(manifest, tokenizer):
    """A chat template that renders no assistant turn (written for LLaVA's human/gpt roles) makes every
    sample unusable. The mixture repeats for ever, so skipping them one by one would never end; the run
    stops with the reason instead."""
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = "{% for m in messages %}{% if m.role in ('human', 'user') %}{{ m.content }}{% endif %}{% endfor %}"
    batches = packed_batches(manifest, broken)
    with pytest.raises(NothingUsable, match=r"last 512 samples drawn were all skipped \(pages: chat template ×512\)"):
        batches.next_batch()
    assert batches.skipped == {"pages: chat template": 512}
