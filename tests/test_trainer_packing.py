"""Packing rows from a window of drawn samples (trainer.data.PackedBatches) over real shards and a real
mixture: a window of 1 is stream order; a wider one fills rows fuller, packs every sample once and within
the window's number of rows, and resumes exactly from any batch's state."""

import itertools
import random

import pytest

from trainer.data import fullest_fit

from tests.test_trainer_prefetch import manifest, packed_batches, tokenizer  # noqa: F401 (fixtures)

SEQ_LEN = 300  # rows of two or three of these samples


def one_pass(manifest_path):
    """The prefetch tests' mixture, read once (24 samples), so every drawn sample must come out."""
    text = manifest_path.read_text().replace("task: ocr", "task: ocr\n    repeat: false")
    manifest_path.write_text(text)
    return manifest_path


def rows_of(batches):
    return [[sample.key for sample in row] for row in iter(batches.next_row, [])]


def drawn_order(manifest_path, tokenizer):
    """The usable samples' keys and lengths in the order the stream gives them."""
    batches = packed_batches(manifest_path, tokenizer, window=1, seq_len=SEQ_LEN)
    return [(encoded.key, len(encoded)) for _, encoded in iter(batches.draw, None)]


def test_the_fullest_fit_is_the_subset_sum_closest_to_the_room():
    assert fullest_fit([5, 3, 4, 2], 9) == [0, 2]  # 5+4 and 3+4+2 both fill it: the earlier items
    assert fullest_fit([7, 8], 6) == [] and fullest_fit([], 10) == []
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randrange(1, 40) for _ in range(rng.randrange(1, 9))]
        room = rng.randrange(0, 120)
        best = max(sum(c) for r in range(len(lengths) + 1) for c in itertools.combinations(lengths, r)
                   if sum(c) <= room)
        chosen = fullest_fit(lengths, room)
        assert chosen == sorted(set(chosen)) and sum(lengths[i] for i in chosen) == best


def test_a_window_of_one_packs_in_stream_order(manifest, tokenizer):
    order = drawn_order(one_pass(manifest), tokenizer)
    rows = rows_of(packed_batches(manifest, tokenizer, window=1, seq_len=SEQ_LEN))
    assert [key for row in rows for key in row] == [key for key, _ in order]
    lengths = dict(order)
    flat = [key for key, _ in order]
    for row, following in zip(rows, rows[1:]):  # a row ends only where the next sample does not fit
        assert sum(lengths[k] for k in row) + lengths[following[0]] > SEQ_LEN
        assert flat.index(following[0]) == flat.index(row[-1]) + 1


def test_a_wider_window_fills_rows_fuller_and_packs_every_sample_once_within_the_window(manifest, tokenizer):
    order = drawn_order(one_pass(manifest), tokenizer)
    lengths, position = dict(order), {key: i for i, (key, _) in enumerate(order)}
    in_order = rows_of(packed_batches(manifest, tokenizer, window=1, seq_len=SEQ_LEN))
    window = 4
    windowed = rows_of(packed_batches(manifest, tokenizer, window=window, seq_len=SEQ_LEN))
    assert sorted(k for row in windowed for k in row) == sorted(lengths)  # nothing lost, nothing twice
    assert all(sum(lengths[k] for k in row) <= SEQ_LEN for row in windowed)
    assert len(windowed) < len(in_order)  # the same tokens in fewer rows
    for number, row in enumerate(windowed):
        # a row starts with the oldest sample held: the earliest drawn of those not packed yet
        assert position[row[0]] == min(position[k] for r in windowed[number:] for k in r)
        # and no sample waits more than the window's number of rows after it is the next one drawn
        packed_before = sum(len(r) for r in windowed[:number])
        assert all(position[k] < packed_before + window + len(row) for k in row)


@pytest.mark.parametrize("window", [1, 5])
def test_resuming_from_any_batch_state_packs_the_same_rows(manifest, tokenizer, window):
    batches = packed_batches(manifest, tokenizer, window=window, seq_len=SEQ_LEN)
    seen = [batches.next_batch() for _ in range(6)]
    for k in (0, 2, 4):
        resumed = packed_batches(manifest, tokenizer, window=window, seq_len=SEQ_LEN)
        resumed.load_state_dict(seen[k].state)
        for expected in seen[k + 1:]:
            got = resumed.next_batch()
            assert got.keys == expected.keys and got.input_ids.equal(expected.input_ids)
            assert got.pixels.equal(expected.pixels) and got.state == expected.state


def test_a_state_from_before_the_window_resumes(manifest, tokenizer):
    """Checkpoints written when rows took samples in stream order kept the one held sample as "pending"."""
    batches = packed_batches(manifest, tokenizer, window=1)
    seen = [batches.next_batch() for _ in range(3)]
    state = dict(seen[0].state)
    held = state.pop("held")
    state["pending"] = held[0] if held else None
    resumed = packed_batches(manifest, tokenizer, window=1)
    resumed.load_state_dict(state)
    assert [resumed.next_batch().keys for _ in range(2)] == [b.keys for b in seen[1:]]


def test_a_window_must_hold_a_sample(manifest, tokenizer):
    with pytest.raises(ValueError, match="at least one sample"):
        packed_batches(manifest, tokenizer, window=0)
