"""Micro-batches through shared slots from a worker process (trainer.batch_slots, Prefetcher in process mode),
over real shards and a real mixture: a batch read from a slot is bitwise the batch written, as views of the
slot; each stays intact until `keep` more are taken; a batch too large for a slot still arrives, sent
whole; the bound on a batch's bytes holds on real batches; on CUDA the slots are page-locked."""

import dataclasses
import pickle
import time

import pytest
import torch

import trainer.data

from tests.test_trainer_prefetch import manifest, packed_batches, summary, tokenizer  # noqa: F401 (fixtures)
from trainer.batch_slots import BatchSlots, tensor_fields
from trainer.data import PackedBatches, Prefetcher


def same_batch(a, b) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def test_a_batch_read_from_a_slot_is_the_batch_written_as_views_of_the_slot(manifest, tokenizer):
    batches = packed_batches(manifest, tokenizer)
    slots = BatchSlots(2, batches.max_batch_bytes())
    for _ in range(3):
        batch = batches.next_batch()
        message = slots.write(1, batch)
        assert message.rest is None and message.rest_span is not None  # all of it in the slot
        read = slots.read(message)
        assert same_batch(read, batch)
        start = slots.buffers[1].data_ptr()
        for tensor in tensor_fields(read).values():
            assert start <= tensor.data_ptr() < start + slots.nbytes


def test_the_bound_on_a_batch_holds_and_a_batch_over_it_is_refused(manifest, tokenizer):
    batches = packed_batches(manifest, tokenizer)
    bound = batches.max_batch_bytes()
    for _ in range(12):
        batch = batches.next_batch()
        assert sum(t.numel() * t.element_size() for t in tensor_fields(batch).values()) <= bound
    assert BatchSlots(1, 4096).write(0, batch) is None


def test_a_rest_too_large_for_the_slot_travels_beside_the_message(manifest, tokenizer):
    batch = packed_batches(manifest, tokenizer).next_batch()
    tensors = sum(-(-t.numel() * t.element_size() // 64) * 64 for t in tensor_fields(batch).values())
    slots = BatchSlots(1, tensors)  # room for the tensors (rounded up to a page), not for the state
    assert len(pickle.dumps(batch.state)) > slots.nbytes - tensors
    message = slots.write(0, batch)
    assert message.rest_span is None and message.rest.state == batch.state
    assert same_batch(slots.read(message), batch)


def test_a_worker_process_batch_stays_intact_until_keep_more_are_taken(manifest, tokenizer):
    alone = packed_batches(manifest, tokenizer)
    expected = [summary(alone.next_batch()) for _ in range(14)]
    prefetch = Prefetcher(packed_batches(manifest, tokenizer), depth=2, process=True, keep=3)
    try:
        taken = []
        for i in range(14):
            taken.append(prefetch.next())
            time.sleep(0.05)  # the worker fills every slot handed back meanwhile
            assert [summary(b) for b in taken[-3:]] == expected[max(0, i - 2):i + 1]
        buffers = {b.data_ptr() for b in prefetch.slots.buffers}
        used = {b.input_ids.untyped_storage().data_ptr() for b in taken}
        assert used == buffers  # 14 batches through the 2 + 3 + 1 slots
    finally:
        prefetch.close()


def test_a_batch_too_large_for_a_slot_is_sent_whole(manifest, tokenizer, monkeypatch):
    alone = packed_batches(manifest, tokenizer)
    expected = [summary(alone.next_batch()) for _ in range(5)]
    monkeypatch.setattr(PackedBatches, "max_batch_bytes", lambda self: 4096)
    monkeypatch.setattr(trainer.data, "STATE_ROOM", 0)
    prefetch = Prefetcher(packed_batches(manifest, tokenizer), depth=2, process=True)
    try:
        got = [prefetch.next() for _ in range(5)]
    finally:
        prefetch.close()
    assert [summary(b) for b in got] == expected
    assert all(b.input_ids.untyped_storage().data_ptr() not in {s.data_ptr() for s in prefetch.slots.buffers}
               for b in got)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locking needs a CUDA device")
def test_on_cuda_slot_batches_are_page_locked_and_copy_asynchronously(manifest, tokenizer):
    expected = packed_batches(manifest, tokenizer).next_batch()
    prefetch = Prefetcher(packed_batches(manifest, tokenizer), depth=2, pin=True, process=True)
    try:
        batch = prefetch.next()
        assert batch.input_ids.is_pinned() and batch.pixels.is_pinned()
        on_gpu = batch.to(torch.device("cuda"))
        torch.cuda.synchronize()
        assert torch.equal(on_gpu.pixels.cpu(), expected.pixels)
    finally:
        prefetch.close()
    assert not prefetch.slots.pinned
