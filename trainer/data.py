"""The trainer's input side: mixture samples (`mixtures.stream.MixtureStream`) ▶ tiles ▶ tokens ▶ packed
micro-batches. The only way the trainer sees data.

Text: the conversation goes through the tokenizer's chat template (`trainer.chat_labels`), so labels cover
only what the assistant says (its content and end-of-turn token, added where a template leaves it out of
a last turn); system and user turns and the assistant header are masked. The single `<image>` token
becomes exactly as many image tokens as the model makes visual embeddings for that image.

Truncation rule: a sample longer than the sequence length is cut at the sequence length if all of its
image tokens and at least one labelled token lie before the cut; otherwise it is skipped (logged and
counted by reason).

Packing: whole samples fill rows of at most seq_len tokens, chosen from a window of drawn samples so that
rows come out full (`PackedBatches`; a window of 1 is stream order: a sample that does not fit starts the
next row). A micro-batch is as wide as its longest row rounded up to `pad_to_multiple_of`
(seq_len when that is None), so a row of 6,000 tokens does not pay for 8,192; the rest of a row is
padding (its own position run, no labels). `position_ids` restart at 0 for every sample, which keeps
attention inside each sample (see `trainer.model.DocVLM.forward`). The batch also carries, computed here
on the host, what the model would otherwise read back from the device in every forward (a sync that
stalls the GPU's queue): the runs' cumulative lengths for varlen attention, the flat positions of the
image tokens and those of the positions that predict a label.

Resume: a batch carries the state after it (the stream's positions plus the samples drawn but not yet
packed), so a checkpoint taken after batch k restarts at batch k+1 exactly, even with prefetching.
"""

from __future__ import annotations

import io
import logging
import pickle
import queue
import signal
import threading
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from mixtures.stream import MixtureStream
from mixtures.tasks import IMAGE_PLACEHOLDER
from trainer.attention import PackedRuns, packed_runs
from trainer.chat_labels import ChatLabels, ConversationError
from trainer.batch_slots import STATE_ROOM, BatchSlots, SlotMessage, batch_bytes_bound
from trainer.model import IGNORE_INDEX, ImageGrid, label_positions
from trainer.tiling import TiledImage, TilingConfig, tile_image

log = logging.getLogger("docforge.trainer")
# this many samples skipped one after another stop the run: the tokenizer, seq_len or mixture is wrong for
# the data as a whole, and an endless mixture would otherwise be read for ever without a batch
MAX_SKIPPED_IN_A_ROW = 512


class NothingUsable(RuntimeError):
    """Every sample of a long run was skipped: a setting is wrong for the data, not a sample."""


class SkippedSample(ValueError):
    """A mixture sample the trainer cannot use; `reason` is a short label for the skip counters."""

    def __init__(self, key: str, reason: str, detail: str):
        super().__init__(f"sample {key}: {reason}: {detail}")
        self.reason = reason


@dataclass
class EncodedSample:
    key: str
    source: str
    input_ids: list[int]
    labels: list[int]
    image: TiledImage | None
    image_tokens: tuple[int, int] = (0, 0)  # [start, end) of the image's tokens in input_ids

    def __len__(self) -> int:
        return len(self.input_ids)


class SampleEncoder:
    """Mixture sample -> token ids, labels and tiles, for one model (its visual token count) and stage."""

    def __init__(self, tokenizer, visual_token_count: Callable[[int, int, bool], int], tiling: TilingConfig,
                 seq_len: int):
        self.tokenizer = tokenizer
        self.visual_token_count = visual_token_count
        self.tiling = tiling
        self.seq_len = seq_len
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
        self.chat_labels = ChatLabels(tokenizer)

    def tile(self, sample: dict[str, Any]) -> TiledImage | None:
        data = sample["image"]
        if data is None:
            return None
        try:
            image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
            return tile_image(image, self.tiling)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exn:
            raise SkippedSample(sample["key"], "bad image", f"{type(exn).__name__}: {exn}") from exn

    def encode(self, sample: dict[str, Any]) -> EncodedSample:
        key = sample["key"]
        try:  # before the tiling, which costs far more
            segments = self.chat_labels.pieces(sample["conversation"])
        except ConversationError as exn:
            raise SkippedSample(key, exn.reason, exn.detail) from exn
        image = self.tile(sample)
        input_ids: list[int] = []
        labels: list[int] = []
        for text, labelled in segments:
            ids = self.tokenizer(text, add_special_tokens=False).input_ids
            input_ids += ids
            labels += ids if labelled else [IGNORE_INDEX] * len(ids)
        holders = [i for i, token in enumerate(input_ids) if token == self.image_token_id]
        if len(holders) != (1 if image else 0):
            raise SkippedSample(key, "placeholders", f"{len(holders)} image tokens in the text for "
                                                     f"{'one image' if image else 'no image'}")
        image_end = count = 0
        if image is not None:
            count = self.visual_token_count(image.rows, image.cols, image.has_global)
            at = holders[0]
            input_ids[at:at + 1] = [self.image_token_id] * count
            labels[at:at + 1] = [IGNORE_INDEX] * count
            image_end = at + count
        if len(input_ids) > self.seq_len:
            if image_end > self.seq_len:
                raise SkippedSample(key, "too long", f"its image tokens end at {image_end} > seq_len {self.seq_len}")
            input_ids, labels = input_ids[:self.seq_len], labels[:self.seq_len]
        if all(label == IGNORE_INDEX for label in labels[1:]):
            raise SkippedSample(key, "no labels", f"no assistant token within seq_len {self.seq_len}")
        return EncodedSample(key, sample["source"], input_ids, labels, image, (image_end - count, image_end))


@dataclass
class MicroBatch:
    """Packed rows: (rows, width) tensors, the image grids in the order their tokens appear with all their
    views stacked in `pixels` (uint8), the runs and labelled positions the model needs (`model_inputs`), and
    the data state after this batch."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    grids: list[ImageGrid]
    pixels: torch.Tensor | None
    keys: list[str]
    sources: Counter
    lengths: list[int]  # each packed sample's length, row by row (padding runs left out)
    cu_lengths: torch.Tensor  # int32: where each run (sample or padding) ends, over the flattened rows
    longest: int  # the longest run
    image_index: torch.Tensor  # int64: flat positions (row·width + p) of the image tokens, images in order
    label_index: torch.Tensor  # int64: flat positions whose next token is a label
    host_cu_lengths: torch.Tensor  # cu_lengths left on the host, where `to` does not move it
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def real_tokens(self) -> int:
        """Tokens that are not padding."""
        return sum(self.lengths)

    @property
    def label_tokens(self) -> int:
        return self.label_index.numel()

    def model_inputs(self) -> dict[str, Any]:
        """The keyword arguments of `DocVLM.forward` for this batch, labels included."""
        return {"input_ids": self.input_ids, "position_ids": self.position_ids, "grids": self.grids,
                "pixels": self.pixels, "labels": self.labels,
                "runs": PackedRuns(self.cu_lengths, self.longest, self.host_cu_lengths),
                "image_index": self.image_index, "label_index": self.label_index}

    def pinned(self) -> MicroBatch:
        """The same batch in page-locked memory, so `to(cuda)` copies asynchronously."""
        return self.map_tensors(lambda t: t.pin_memory())

    def to(self, device: torch.device) -> MicroBatch:
        return self.map_tensors(lambda t: t.to(device, non_blocking=True))

    def map_tensors(self, f: Callable[[torch.Tensor], torch.Tensor]) -> MicroBatch:
        """The same batch with `f` applied to each of its tensors."""
        return replace(self, input_ids=f(self.input_ids), labels=f(self.labels), position_ids=f(self.position_ids),
                       pixels=f(self.pixels) if self.pixels is not None else None, cu_lengths=f(self.cu_lengths),
                       image_index=f(self.image_index), label_index=f(self.label_index))


def batch_width(rows: list[list[EncodedSample]], seq_len: int, pad_to_multiple_of: int | None) -> int:
    """seq_len, or the longest row rounded up to the multiple (never past seq_len)."""
    if pad_to_multiple_of is None:
        return seq_len
    longest = max(sum(len(sample) for sample in samples) for samples in rows)
    return min(seq_len, -(-longest // pad_to_multiple_of) * pad_to_multiple_of)


def pack_rows(rows: list[list[EncodedSample]], seq_len: int, pad_id: int,
              pad_to_multiple_of: int | None = None) -> MicroBatch:
    """Rows of whole samples -> one micro-batch; each row padded to the batch's width (`batch_width`)."""
    width = batch_width(rows, seq_len, pad_to_multiple_of)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    images, keys, sources, lengths, image_index = [], [], Counter(), [], []
    for r, samples in enumerate(rows):
        at = 0
        for sample in samples:
            n = len(sample)
            start, end = sample.image_tokens
            image_index.append(torch.arange(r * width + at + start, r * width + at + end))
            input_ids[r, at:at + n] = torch.tensor(sample.input_ids)
            labels[r, at:at + n] = torch.tensor(sample.labels)
            position_ids[r, at:at + n] = torch.arange(n)
            at += n
            lengths.append(n)
            keys.append(sample.key)
            sources[sample.source] += 1
            if sample.image is not None:
                images.append(sample.image)
        position_ids[r, at:] = torch.arange(width - at)
    pixels = torch.cat([image.pixels for image in images]) if images else None
    runs = packed_runs(position_ids)  # here, on the host: on a GPU, reading the runs back would sync
    return MicroBatch(input_ids, labels, position_ids, [image.grid for image in images], pixels, keys, sources,
                      lengths, runs.cu_lengths, runs.longest, torch.cat(image_index), label_positions(labels),
                      runs.cu_lengths)


def fullest_fit(lengths: list[int], room: int) -> list[int]:
    """The indices (ascending) of the subset of `lengths` whose sum comes closest to `room` without passing
    it, the earlier items preferred among subsets of equal sum: an exact subset sum, the reachable sums kept
    as the bits of one integer per prefix of `lengths`."""
    within = (1 << (room + 1)) - 1
    reachable = [1]  # reachable[i]: bit s is set when some subset of lengths[:i] sums to s
    for length in lengths:
        reachable.append((reachable[-1] | reachable[-1] << length) & within)
    total = reachable[-1].bit_length() - 1
    chosen = []
    for i in range(len(lengths) - 1, -1, -1):
        if not reachable[i] >> total & 1:  # the sum needs item i
            chosen.append(i)
            total -= lengths[i]
    return chosen[::-1]


class PackedBatches:
    """Micro-batches of `rows` packed rows drawn from a mixture stream (`pack_rows`); `state_dict` /
    `load_state_dict`.

    Rows are filled from a window of `window` drawn samples: a row starts with the oldest sample held, then
    takes the held samples whose lengths fill the room left most closely (`fullest_fit`), the window topped
    up from the stream after each such pick, until none fits. Each sample is thus packed within `window`
    rows of being drawn, and a window of 1 packs in stream order (a sample that does not fit starts the
    next row)."""

    def __init__(self, stream: MixtureStream, encoder: SampleEncoder, rows: int, pad_id: int,
                 pad_to_multiple_of: int | None = None, window: int = 1):
        if window < 1:
            raise ValueError(f"the packing window holds at least one sample, got {window}")
        self.stream = stream
        self.encoder = encoder
        self.rows = rows
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.window = window
        self.held: list[tuple[dict, EncodedSample]] = []  # drawn, not packed yet, in draw order
        self.skipped: Counter = Counter()
        self.skipped_in_a_row: Counter = Counter()  # reasons of the skips since the last usable sample

    def max_batch_bytes(self) -> int:
        """A bound on one micro-batch's tensor bytes (`trainer.batch_slots.batch_bytes_bound`)."""
        encoder = self.encoder
        return batch_bytes_bound(self.rows, encoder.seq_len, encoder.tiling.tile_size,
                                 encoder.visual_token_count(1, 1, False))

    def draw(self) -> tuple[dict, EncodedSample] | None:
        """The stream's next usable sample, raw and encoded (skipped ones are counted and logged); None at the
        end of a finite mixture."""
        while (raw := self.stream.next()) is not None:
            try:
                encoded = self.encoder.encode(raw)
            except SkippedSample as exn:
                reason = f"{raw['source']}: {exn.reason}"
                self.skipped[reason] += 1
                self.skipped_in_a_row[reason] += 1
                log.warning("source %s: skipped %s", raw["source"], exn)
                if self.skipped_in_a_row.total() >= MAX_SKIPPED_IN_A_ROW:
                    reasons = ", ".join(f"{why} ×{n}" for why, n in self.skipped_in_a_row.most_common())
                    raise NothingUsable(f"the last {MAX_SKIPPED_IN_A_ROW} samples drawn were all skipped "
                                        f"({reasons}); the last: {exn}. Check the tokenizer's chat template, "
                                        "seq_len and max_tiles against the mixture") from exn
                continue
            self.skipped_in_a_row.clear()
            return raw, encoded
        return None

    def fill_window(self) -> None:
        while len(self.held) < self.window and (drawn := self.draw()) is not None:
            self.held.append(drawn)

    def next_row(self) -> list[EncodedSample]:
        self.fill_window()
        if not self.held:
            return []
        row = [self.held.pop(0)[1]]  # every encoded sample fits an empty row (`SampleEncoder.encode`)
        room = self.encoder.seq_len - len(row[0])
        while True:
            self.fill_window()
            chosen = fullest_fit([len(sample) for _, sample in self.held], room)
            if not chosen:
                return row
            picked = [self.held[i][1] for i in chosen]
            row.extend(picked)
            room -= sum(map(len, picked))
            taken = set(chosen)
            self.held = [held for i, held in enumerate(self.held) if i not in taken]

    def next_batch(self) -> MicroBatch | None:
        """The next micro-batch (fewer rows at the end of a finite mixture), or None when it is used up."""
        rows = []
        while len(rows) < self.rows and (row := self.next_row()):
            rows.append(row)
        if not rows:
            return None
        batch = pack_rows(rows, self.encoder.seq_len, self.pad_id, self.pad_to_multiple_of)
        batch.state = self.state_dict()
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The stream's position and the samples drawn but not packed yet (raw, as the stream gave them)."""
        return {"stream": self.stream.state_dict(), "held": [raw for raw, _ in self.held],
                "skipped": dict(self.skipped)}

    def load_resharded(self, states: list[dict[str, Any]]) -> None:
        """Continue from every rank's state of a run with another world size (`--reshard`): the stream from
        where all its old slots were (`MixtureStream.load_resharded`); the samples the old ranks held drawn
        but not packed are dealt out among the new ones; the skip counters go to the first, summed."""
        self.stream.load_resharded([state["stream"] for state in states])
        slot = self.stream.slot
        held = [raw for state in states for raw in held_samples(state)][slot.index::slot.count]
        self.held = [(raw, self.encoder.encode(raw)) for raw in held]
        self.skipped = Counter()
        if slot.index == 0:
            for state in states:
                self.skipped.update(state["skipped"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state["stream"])
        self.held = [(raw, self.encoder.encode(raw)) for raw in held_samples(state)]
        self.skipped = Counter(state["skipped"])


def held_samples(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw samples a saved `PackedBatches` state holds drawn but unpacked (checkpoints from before the
    packing window held at most one, as "pending")."""
    return state["held"] if "held" in state else [state["pending"]] if state.get("pending") else []


class Prefetcher:
    """Builds micro-batches `depth` ahead so the step rarely waits for data: in a background thread (with
    `pin`, the thread also pins them for a CUDA device) or in a worker process (forked, so it starts from
    the batches' current state; it never touches CUDA). A process shares no interpreter lock with the
    training loop, so the two cannot slow each other down; its batches come through shared slots
    (`trainer.batch_slots`, page-locked with `pin`), each one valid until `keep` more batches have been
    taken: then its slot is handed back to the worker (the training loop takes a step's micro-batches at
    once and is done with them when it takes the next step's, so it keeps `grad_accum`)."""

    def __init__(self, batches: PackedBatches, depth: int, pin: bool = False, process: bool = False,
                 keep: int = 1):
        self.batches = batches
        self.pin = pin and not process  # the worker process never touches CUDA: the slots are pinned here
        self.slots: BatchSlots | None = None
        self.keep = max(1, keep)
        self.taken: deque[int | None] = deque()  # the slot of each batch taken and not yet handed back
        if process:
            context = torch.multiprocessing.get_context("fork")
            self.slots = BatchSlots(depth + self.keep + 1, batches.max_batch_bytes() + STATE_ROOM)
            self.unused = list(range(len(self.slots.buffers)))  # the worker's, after the fork
            self.freed = context.Queue()  # slots handed back by the training loop
            self.queue = context.Queue(maxsize=max(1, depth))
            self.stop = context.Event()
            self.worker = context.Process(target=self.work_in_child, name="docforge-data", daemon=True)
        else:
            self.queue = queue.Queue(maxsize=max(1, depth))
            self.stop = threading.Event()
            self.worker = threading.Thread(target=self.fill, name="docforge-prefetch", daemon=True)
        self.process = process
        self.worker.start()
        if self.slots is not None and pin:
            self.slots.pin()

    def work_in_child(self) -> None:
        # the training process's SIGTERM handler (trainer.stop_request) came with the fork: this worker is
        # stopped by its parent, and `terminate()` must end it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        torch.set_num_threads(1)
        self.fill()
        if self.stop.is_set():
            self.queue.cancel_join_thread()  # closing: exit without flushing batches nobody will read

    def fill(self) -> None:
        try:
            while not self.stop.is_set():
                batch = self.batches.next_batch()
                self.put(self.ready(batch) if batch is not None else None)
                if batch is None:
                    return
        except BaseException as exn:  # handed to the training loop, which raises it
            self.put(exn if not self.process or picklable(exn) else
                     RuntimeError(f"data worker: {type(exn).__name__}: {exn}\n{traceback.format_exc()}"))

    def ready(self, batch: MicroBatch) -> MicroBatch | SlotMessage | None:
        """What goes on the queue for `batch`: pinned (thread), in a free slot (process), or itself when it
        does not fit a slot; None if closing while waiting for a slot."""
        if self.slots is None:
            return batch.pinned() if self.pin else batch
        while not self.unused:
            try:
                self.unused.append(self.freed.get(timeout=0.1))
            except queue.Empty:
                if self.stop.is_set():
                    return None
        index = self.unused.pop()
        message = self.slots.write(index, batch)
        if message is None:
            self.unused.append(index)
            return batch
        return message

    def put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> MicroBatch | None:
        while True:
            try:
                item = self.queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.worker.is_alive():
                    raise self.stopped() from None
            except (OSError, EOFError) as exn:  # a batch whose tensors died with the worker that shared them
                self.worker.join(timeout=5)
                if self.worker.is_alive():
                    raise
                raise self.stopped() from exn
        if isinstance(item, BaseException):
            raise item
        if item is None:
            self.queue.put(None)  # stays exhausted
            return None
        if self.slots is not None:
            self.taken.append(item.index if isinstance(item, SlotMessage) else None)
            while len(self.taken) > self.keep:
                if (index := self.taken.popleft()) is not None:
                    self.freed.put(index)
        return self.slots.read(item) if isinstance(item, SlotMessage) else item

    def stopped(self) -> RuntimeError:
        code = f" (exit code {self.worker.exitcode})" if self.process else ""
        return RuntimeError(f"the data worker stopped without a batch or an error{code}")

    def close(self) -> None:
        self.stop.set()
        self.worker.join(timeout=10)
        if self.process and self.worker.is_alive():
            self.worker.terminate()
            self.worker.join(timeout=10)
        if self.slots is not None:
            self.slots.unpin()


def picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False
