"""Shared-memory slots that carry micro-batches from a forked data worker to the training loop: part of the
input side (… ▶ pack ▶ **slot** ▶ H2D copy ▶ model), used by `trainer.data.Prefetcher` in process mode.

The training thread must launch kernels without pause. A data *thread* in the same process takes the GIL
away from it whenever it runs Python, and CPython hands the GIL back only after its switch interval (5 ms);
a forked worker process does not share the GIL. But handing a batch over through a multiprocessing queue
the usual way pickles each tensor into a fresh shared-memory segment whose descriptor the training thread
must fetch over a socket and map: 16-21 ms of the training thread's time a micro-batch of the 1.5B bench
on the test VM (`tests/benchmarks/bench_launch_stalls.py`). Here the buffers are made once, before the
fork, so both processes map them. The worker copies a batch's tensors, and the rest of the batch pickled
(its resume state holds the packing window's raw samples: ~2 MB on that bench), into a free slot and
sends only the slot's number and the places; the training thread unpickles the rest and makes views of
the tensors (1.2 ms). On a CUDA device the slots are page-locked in the training process
(`cudaHostRegister`), so the views copy to the GPU asynchronously without a pinning copy. A batch too
large for a slot travels the usual way.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from typing import Any

import torch

log = logging.getLogger(__name__)

ALIGN = 64  # byte alignment of each tensor in a slot (any dtype's)
Layout = list[tuple[str, torch.dtype, tuple[int, ...], int]]  # (field, dtype, shape, byte offset)


@dataclasses.dataclass
class SlotMessage:
    """What the worker sends for a batch written to a slot: the slot, its tensors' layout, and where in the
    slot the rest of the batch lies pickled (`rest_span`), or the rest itself when it did not fit there."""

    index: int
    layout: Layout
    rest_span: tuple[int, int] | None = None
    rest: Any = None


def tensor_fields(batch: Any) -> dict[str, torch.Tensor]:
    """The dataclass `batch`'s fields that hold tensors."""
    return {f.name: value for f in dataclasses.fields(batch)
            if isinstance(value := getattr(batch, f.name), torch.Tensor)}


class BatchSlots:
    """`count` shared buffers of `nbytes` each; make them before forking the worker that writes them."""

    def __init__(self, count: int, nbytes: int):
        self.nbytes = -(-nbytes // 4096) * 4096
        self.buffers = [torch.empty(self.nbytes, dtype=torch.uint8).share_memory_() for _ in range(count)]
        self.registered: list[torch.Tensor] = []  # the buffers page-locked by `pin`

    def write(self, index: int, batch: Any) -> SlotMessage | None:
        """Copy `batch` into slot `index`: its tensors, then the rest pickled (sent beside the message when it
        does not fit). None when the tensors do not fit: the caller then sends the batch whole."""
        tensors = tensor_fields(batch)
        layout: Layout = []
        offset = 0
        for name, tensor in tensors.items():
            layout.append((name, tensor.dtype, tuple(tensor.shape), offset))
            offset += -(-tensor.numel() * tensor.element_size() // ALIGN) * ALIGN
        if offset > self.nbytes:
            return None
        buffer = self.buffers[index]
        for (name, dtype, shape, at), tensor in zip(layout, tensors.values()):
            size = tensor.numel() * tensor.element_size()
            buffer[at:at + size].view(dtype).view(shape).copy_(tensor)
        rest = dataclasses.replace(batch, **{name: None for name in tensors})
        pickled = pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL)
        if offset + len(pickled) > self.nbytes:  # a large resume state (held samples' raw records)
            return SlotMessage(index, layout, rest=rest)
        buffer[offset:offset + len(pickled)].copy_(torch.frombuffer(bytearray(pickled), dtype=torch.uint8))
        return SlotMessage(index, layout, rest_span=(offset, len(pickled)))

    def read(self, message: SlotMessage) -> Any:
        """The batch as views of its slot: valid until the slot is written again."""
        buffer = self.buffers[message.index]
        rest = message.rest
        if message.rest_span is not None:
            at, size = message.rest_span
            rest = pickle.loads(buffer[at:at + size].numpy())
        views = {}
        for name, dtype, shape, at in message.layout:
            size = torch.Size(shape).numel() * dtype.itemsize
            views[name] = buffer[at:at + size].view(dtype).view(shape)
        return dataclasses.replace(rest, **views)

    def pin(self) -> bool:
        """Page-lock every slot for CUDA (in the training process, after the fork). If the driver refuses,
        the slots stay pageable, which is slower (each copy to the GPU waits) but right; False then."""
        cudart = torch.cuda.cudart()
        for buffer in self.buffers:
            code = cudart.cudaHostRegister(buffer.data_ptr(), self.nbytes, 0)
            if int(code) != 0:
                log.warning("batch slots stay pageable: cudaHostRegister of %d bytes failed (%s)", self.nbytes, code)
                self.unpin()
                return False
            self.registered.append(buffer)
        return True

    def unpin(self) -> None:
        """Undo `pin`, once no copy from the slots is pending."""
        if self.registered:
            torch.cuda.synchronize()
            cudart = torch.cuda.cudart()
            for buffer in self.registered:
                cudart.cudaHostUnregister(buffer.data_ptr())
            self.registered = []

    @property
    def pinned(self) -> bool:
        return bool(self.registered) and len(self.registered) == len(self.buffers)


STATE_ROOM = 8 * 2 ** 20  # room in a slot for a batch's pickled non-tensor fields, beyond its tensors' bound


def batch_bytes_bound(rows: int, seq_len: int, tile_size: int, tokens_a_view: int) -> int:
    """An upper bound on a packed micro-batch's tensor bytes (`trainer.data.MicroBatch`): five int64 tensors
    of at most rows·seq_len entries (ids, labels, positions, image and label indices), two int32 run bounds
    (a run a sample or padding), and uint8 RGB views, each taking at least `tokens_a_view` of a row."""
    positions = rows * seq_len
    views = positions // max(1, tokens_a_view) + rows
    return positions * 5 * 8 + 2 * (positions + rows + 1) * 4 + views * 3 * tile_size * tile_size + 8 * ALIGN
