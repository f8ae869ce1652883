"""The resumable weighted stream: what a training rank's data-loader worker reads from a `Mixture`.

Per source, the shards are shuffled per epoch by a seeded RNG and split across (rank, worker) slots:
whole shards when there are at least as many shards as slots, otherwise every slot reads every shard
and keeps every G-th sample, so no slot is empty and none overlap. A small seeded shuffle buffer mixes
samples within a slot; a seeded RNG interleaves the sources by weight; each sample gets its task and
conversation from `mixtures.tasks`, seeded by (seed, source, epoch, key) so any sample's conversation
can be rebuilt alone. `state_dict()` records positions (not data): `load_state_dict()` re-opens the
shards at those positions and refills the shuffle buffer, so the next sample is exactly the one that
would have come. `load_resharded()` continues the states of every slot of a run with another number of
slots: each source's pass goes on without the shards all of them had finished and the samples they had
taken of the others, split among the new slots. A missing or truncated shard is logged, counted and skipped.
A state records the shards its pass runs over: restored after the source's shards changed (a dataset that
grew, lost a shard, or moved whole to another folder or bucket), the pass under way goes on over the
shards it began with, and the new list is read from the next pass.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mixtures.manifest import Mixture, Source
from mixtures.shardlist import ShardRef
from mixtures.tasks import TaskError, render_conversation
from pipelines.shard_reader import IMAGE_EXTENSIONS, iter_tar_samples, tar_truncation
from pipelines.storage import Folder, open_url

log = logging.getLogger("docforge.mixtures")
STATE_VERSION = 1


@dataclass(frozen=True)
class Slot:
    """Which reader this is: the rank in the job and the data-loader worker within the rank."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


@dataclass(frozen=True)
class Taken:
    """The samples of one shard that slots delivered before a reshard, within the pass: every raw offset
    below `upto` (None: the whole shard) except those in `kept` (still in a slot's shuffle buffer then)."""

    upto: int | None
    kept: frozenset[int] = frozenset()

    def __contains__(self, offset: int) -> bool:
        return (self.upto is None or offset < self.upto) and offset not in self.kept

    @property
    def whole(self) -> bool:
        return self.upto is None and not self.kept

    def union(self, other: Taken) -> Taken:
        """What either took: below the lower `upto` what both kept, from there up what the higher one kept."""
        low, high = sorted((self, other), key=lambda taken: float("inf") if taken.upto is None else taken.upto)
        above = frozenset() if low.upto is None else frozenset(o for o in high.kept if o >= low.upto)
        return Taken(high.upto, (low.kept & high.kept) | above)

    def saved(self, shard: int) -> list:
        return [shard, self.upto, sorted(self.kept)]


def taken_map(saved: list) -> dict[int, Taken]:
    return {shard: Taken(upto, frozenset(kept)) for shard, upto, kept in saved}


def current_slot() -> Slot:
    """The slot of the calling process: rank from torchrun's RANK/WORLD_SIZE, worker from torch's DataLoader."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
    except ImportError:
        info = None
    return Slot(rank, world, info.id if info else 0, info.num_workers if info else 1)


def rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: list) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


class SourceReader:
    """One source's samples for one slot, one pass (epoch) after another, with a restorable position."""

    def __init__(self, source: Source, seed: int, slot: Slot, buffer_size: int):
        self.source = source
        self.seed = seed
        self.slot = slot
        self.buffer_size = max(1, buffer_size)
        self.epoch = 0
        self.passes_done = 0
        self.dead = False
        self.errors = 0
        self._start_epoch()

    # -- a pass over the shards -------------------------------------------------------------
    def _start_epoch(self, read_already: frozenset[int] = frozenset(), pass_max: int | None = None,
                     taken: dict[int, Taken] | None = None, shards: tuple[ShardRef, ...] | None = None) -> None:
        """Begin pass `self.epoch` over `shards` (a restored pass's; else the source's): their order, less the
        shards `read_already` and the samples `taken` of others, and its `pass_max` samples over all slots (a
        resharded resume's: what the old slots left of the pass; else the source's max_samples)."""
        self.shards = self.source.shards if shards is None else shards
        self.shard_list = "\n".join(ref.url for ref in self.shards)  # one string: a state is pickled every batch
        self.read_already = read_already
        self.taken = taken or {}
        self.pass_max = self.source.max_samples if pass_max is None else pass_max
        order = [i for i in epoch_order(self.seed, self.source.name, self.epoch, len(self.shards))
                 if i not in read_already]
        count = len(order)
        self.slicing = count < self.slot.count
        self.mine = order if self.slicing else order[self.slot.index::self.slot.count]
        self.quota = None if self.pass_max is None else slot_share(self.pass_max, self.slot.index, self.slot.count)
        self.rng = random.Random(f"{self.seed}:{self.source.name}:{self.epoch}:{self.slot.index}:buffer")
        self.pos = 0  # index into self.mine of the shard being read
        self.offset = 0  # raw samples already read from that shard
        self.raw_index = 0  # raw samples read this epoch (all shards): the slicing filter's counter
        self.admitted = 0  # samples taken into the buffer this epoch
        self.buffer: list[tuple[tuple[int, int], dict]] = []
        self._shard_iter: Iterator[dict] | None = None

    def _shard_url(self, pos: int) -> str:
        return self.shards[self.mine[pos]].url

    def _open(self, pos: int, skip: int) -> Iterator[dict]:
        """Samples of shard `pos` from raw offset `skip`. Damage ends the shard early (logged, counted); a
        tar cut short also loses its last sample read, which may be missing members."""
        ref = self.shards[self.mine[pos]]
        errors: list[Exception] = []
        read = 0
        try:
            damage = tar_truncation(Folder(posixpath.dirname(ref.url)), posixpath.basename(ref.url))
            with open_url(ref.url, "rb") as stream:
                samples = iter_tar_samples(stream, ref.url, errors)
                if damage:
                    samples = all_but_last(samples)
                for sample in samples:
                    read += 1
                    if read > skip:
                        yield sample
        except (OSError, ValueError) as exn:
            damage = f"{type(exn).__name__}: {exn}"
        if errors or damage:
            self.errors += 1
            log.warning("source %s: shard %s: skipped after %d samples: %s", self.source.name, ref.url, read,
                        damage or errors[0])
        elif ref.samples is not None and read != ref.samples:
            self.errors += 1
            log.warning("source %s: shard %s: read %d samples, index.json says %d", self.source.name, ref.url, read,
                        ref.samples)

    def _read_raw(self) -> tuple[tuple[int, int], dict] | None:
        while self.pos < len(self.mine):
            if self._shard_iter is None:
                self._shard_iter = self._open(self.pos, self.offset)
            sample = next(self._shard_iter, None)
            if sample is not None:
                ref = (self.pos, self.offset)
                self.offset += 1
                taken = self.taken.get(self.mine[self.pos])
                if taken is None or ref[1] not in taken:
                    return ref, sample
                continue
            self.pos, self.offset, self._shard_iter = self.pos + 1, 0, None
        return None

    def _fill(self) -> None:
        while len(self.buffer) < self.buffer_size and (self.quota is None or self.admitted < self.quota):
            raw = self._read_raw()
            if raw is None:
                return
            index = self.raw_index
            self.raw_index += 1
            if self.slicing and index % self.slot.count != self.slot.index:
                continue
            self.buffer.append(raw)
            self.admitted += 1

    def next_sample(self) -> tuple[dict, int] | None:
        """The next sample and its epoch; None once the source's passes are done (or it has no data)."""
        while not self.dead:
            self._fill()
            if self.buffer:
                j = self.rng.randrange(len(self.buffer))
                self.buffer[j], self.buffer[-1] = self.buffer[-1], self.buffer[j]
                return self.buffer.pop()[1], self.epoch
            empty_pass = self.admitted == 0
            self.passes_done += 1
            if empty_pass:
                self.dead = True
                log.error("source %s: a whole pass gave no sample for slot %s; source dropped", self.source.name,
                          self.slot)
                break
            if self.source.passes is not None and self.passes_done >= self.source.passes:
                break
            self.epoch += 1
            self._start_epoch()
        return None

    @property
    def finished(self) -> bool:
        return self.dead or (self.source.passes is not None and self.passes_done >= self.source.passes)

    # -- exact resume -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "read_already": sorted(self.read_already), "pass_max": self.pass_max,
                "taken": [taken.saved(shard) for shard, taken in sorted(self.taken.items())],
                "passes_done": self.passes_done, "dead": self.dead, "errors": self.errors,
                "pos": self.pos, "offset": self.offset, "raw_index": self.raw_index, "admitted": self.admitted,
                "buffer": [list(ref) for ref, _ in self.buffer], "rng": rng_state(self.rng),
                "shards": self.shard_list}

    def saved_shards(self, shard_list: str | None) -> tuple[ShardRef, ...]:
        """The shards a saved pass ran over, as refs to this source's shards now (`pass_shards`)."""
        if shard_list is None:  # a state saved before states recorded their shards
            return self.source.shards
        shards, change = pass_shards(shard_list.split("\n"), self.source.shards)
        if change:
            log.warning("source %s: its shards changed since the state was saved (%s): the pass under way goes on "
                        "over the %d shards it began with, the source's %d shards now from the next pass",
                        self.source.name, change, len(shards), len(self.source.shards))
        return shards

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self._start_epoch(frozenset(state.get("read_already", [])), state.get("pass_max"),
                          taken_map(state.get("taken", [])), self.saved_shards(state.get("shards")))
        self.passes_done, self.dead, self.errors = state["passes_done"], state["dead"], state["errors"]
        self.pos, self.offset = state["pos"], state["offset"]
        self.raw_index, self.admitted = state["raw_index"], state["admitted"]
        set_rng_state(self.rng, state["rng"])
        self.buffer = self._reread([tuple(ref) for ref in state["buffer"]])

    def restore_resharded(self, states: list[dict[str, Any]], old_count: int) -> None:
        """Continue from the states of all `old_count` slots of a run with another number of slots: the pass
        the slowest of them was in, without the shards every old slot was done with (read, and none of their
        samples still in a buffer) and without the samples they had delivered of the shards they were
        partway through (`Taken`). A later pass's shards a faster slot had begun are read again whole. In
        slicing mode (fewer shards than old slots) the pass starts over."""
        epoch = min(state["epoch"] for state in states)
        slowest = next(state for state in states if state["epoch"] == epoch)
        # what that pass had left out already (an earlier reshard within it): the same for every slot
        before = set(slowest.get("read_already", []))
        taken = taken_map(slowest.get("taken", []))
        shards = self.saved_shards(slowest.get("shards"))
        order = [i for i in epoch_order(self.seed, self.source.name, epoch, len(shards)) if i not in before]
        read_already = set(before)
        pass_max = slowest.get("pass_max", self.source.max_samples)
        left = None
        if pass_max is not None:  # less what each old slot took of the pass (its whole share once past it)
            left = pass_max - sum(slot_share(pass_max, index, old_count) if state["epoch"] > epoch
                                  else state["admitted"] - len(state["buffer"]) for index, state in enumerate(states))
        slicing = len(order) < old_count  # every old slot read every shard: the pass starts over
        for index, state in enumerate([] if slicing else states):
            mine = order[index::old_count]
            if state["epoch"] > epoch:
                read_already.update(mine)
                continue
            pending: dict[int, set[int]] = {}
            for pos, offset in state["buffer"]:
                pending.setdefault(pos, set()).add(offset)
            for pos in range(min(state["pos"] + 1, len(mine))):
                this = Taken(None if pos < state["pos"] else state["offset"], frozenset(pending.get(pos, ())))
                shard = mine[pos]
                merged = taken[shard].union(this) if shard in taken else this
                if merged.whole:
                    read_already.add(shard)
                    taken.pop(shard, None)
                elif merged.upto != 0:
                    taken[shard] = merged
        self.epoch = epoch
        self.passes_done = min(state["passes_done"] for state in states)
        self.errors = sum(state["errors"] for state in states) if self.slot.index == 0 else 0
        self.dead = False
        if len(read_already) == len(shards) or (left is not None and left <= 0):  # the pass is done
            self.passes_done += 1
            self.epoch += 1
            read_already, left, taken, shards = set(), None, {}, None
        self._start_epoch(frozenset(read_already), None if left is None else max(left, 0), taken, shards)

    def _reread(self, refs: list[tuple[int, int]]) -> list[tuple[tuple[int, int], dict]]:
        """The buffered samples again, read back from their shards, in buffer order; those a shard no longer
        has (gone or cut short since) are left out, logged and counted."""
        wanted: dict[int, set[int]] = {}
        for pos, offset in refs:
            wanted.setdefault(pos, set()).add(offset)
        found: dict[tuple[int, int], dict] = {}
        for pos, offsets in wanted.items():
            errors = self.errors
            for offset, sample in enumerate(self._open(pos, 0)):
                if offset in offsets:
                    found[(pos, offset)] = sample
                if offset >= max(offsets):
                    break
            lost = sum((pos, offset) not in found for offset in offsets)
            if lost:
                self.errors = errors + 1  # once for the shard, whether its read failed or it holds fewer now
                log.warning("source %s: shard %s: %d samples of the saved shuffle buffer are no longer in it; "
                            "left out", self.source.name, self._shard_url(pos), lost)
        return [(ref, found[ref]) for ref in refs if ref in found]


def relative_names(urls: list[str]) -> list[str]:
    """Each URL below the folder all of them share (`a/0.tar` of `s3://b/x/a/0.tar`), so a list matches the
    same shards moved whole to another folder, mount or bucket."""
    parts = [url.split("/") for url in urls]
    common = 0
    deepest = min(len(p) for p in parts) - 1 if parts else 0  # a file's own name is never the shared part
    while common < deepest and all(p[common] == parts[0][common] for p in parts):
        common += 1
    return ["/".join(p[common:]) for p in parts]


def pass_shards(saved: list[str], now: tuple[ShardRef, ...]) -> tuple[tuple[ShardRef, ...], str]:
    """The shards a pass saved as `saved` (URLs, in the source's order then) runs over given the source's
    shards `now`, and what changed ("" when nothing did). Each saved shard is matched by URL or, when none
    matches so (the source moved), by its name below the list's shared folder; one not found keeps its saved
    URL, so its turn in the pass fails as a missing shard would (logged, counted, skipped)."""
    urls = [ref.url for ref in now]
    if saved == urls:
        return now, ""
    moved = not set(saved) & set(urls)
    names, saved_names = (relative_names(urls), relative_names(saved)) if moved else (urls, saved)
    if saved_names == names:
        return now, ""
    found = dict(zip(names, now))
    shards = tuple(found.get(name, ShardRef(url)) for name, url in zip(saved_names, saved))
    gone = sum(name not in found for name in saved_names)
    added = len(set(names) - set(saved_names))
    return shards, f"{added} added, {gone} gone" + (", moved" if moved else "")


def slot_share(total: int, index: int, count: int) -> int:
    """Slot `index`'s share of `total` samples split over `count` slots (the first ones take the remainder)."""
    return total // count + (1 if index < total % count else 0)


def epoch_order(seed: int, source: str, epoch: int, count: int) -> list[int]:
    """The seeded order of a source's `count` shards in pass `epoch`, before they are split among slots."""
    order = list(range(count))
    random.Random(f"{seed}:{source}:{epoch}:order").shuffle(order)
    return order


def all_but_last(items: Iterator[dict]) -> Iterator[dict]:
    previous = None
    for item in items:
        if previous is not None:
            yield previous
        previous = item


def image_member(sample: dict) -> str | None:
    return next((ext for ext in IMAGE_EXTENSIONS if ext in sample), None)


class MixtureStream:
    """Weighted, seeded interleave of a mixture's sources for one slot; iterate it, save it, restore it."""

    def __init__(self, mixture: Mixture, slot: Slot | None = None, buffer_size: int = 256,
                 decode_images: bool = False, token_counter: Callable[[list[dict]], int] | None = None):
        self.mixture = mixture
        self.slot = slot or current_slot()
        self.decode_images = decode_images
        self.token_counter = token_counter
        self.readers = {s.name: SourceReader(s, mixture.seed, self.slot, buffer_size) for s in mixture.sources}
        self.weights = {s.name: s.weight for s in mixture.sources}
        self.rng = random.Random(f"{mixture.seed}:{self.slot.index}:interleave")
        self.samples: Counter = Counter()
        self.tokens: Counter = Counter()
        self.template_errors: Counter = Counter()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (sample := self.next()) is not None:
            yield sample

    def next(self) -> dict[str, Any] | None:
        """The next training sample, or None when every source has finished its passes."""
        while True:
            active = [name for name, reader in self.readers.items() if not reader.finished]
            if not active:
                return None
            name = self.rng.choices(active, weights=[self.weights[n] for n in active])[0]
            drawn = self.readers[name].next_sample()
            if drawn is None:
                continue
            sample = self.make_training_sample(self.readers[name].source, *drawn)
            if sample is not None:
                return sample

    def make_training_sample(self, source: Source, raw: dict, epoch: int) -> dict[str, Any] | None:
        key = raw["__key__"]
        rng = random.Random(f"{self.mixture.seed}:{source.name}:{epoch}:{key}")
        names, weights = zip(*source.tasks)
        task = rng.choices(names, weights=weights)[0]
        try:
            conversation = render_conversation(task, raw, rng, lang=source.lang, prompts=source.prompts)
        except TaskError as exn:
            self.template_errors[source.name] += 1
            log.warning("source %s: %s", source.name, exn)
            return None
        ext = image_member(raw)
        image: Any = raw[ext] if ext else None
        if image is not None and self.decode_images:
            from PIL import Image

            image = Image.open(io.BytesIO(image)).convert("RGB")
        self.samples[source.name] += 1
        if self.token_counter is not None:
            self.tokens[source.name] += self.token_counter(conversation)
        record = json.loads(raw["json"]) if "json" in raw else {}
        return {"key": key, "source": source.name, "task": task, "epoch": epoch,
                "lang": source.lang or record.get("lang", "en"), "conversation": conversation, "image": image,
                "image_format": ext, "record": record}

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Realised vs target mix so far: samples, tokens, share, target share, shard and template errors."""
        total = sum(self.samples.values()) or 1
        targets = self.mixture.weight_shares()
        return {name: {"samples": self.samples[name], "tokens": self.tokens[name],
                       "share": self.samples[name] / total, "target_share": targets[name],
                       "epoch": reader.epoch, "shard_errors": reader.errors,
                       "template_errors": self.template_errors[name]}
                for name, reader in self.readers.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "mixture": self.mixture.name, "seed": self.mixture.seed,
                "slot": [self.slot.rank, self.slot.world_size, self.slot.worker, self.slot.num_workers],
                "rng": rng_state(self.rng), "sources": {n: r.state() for n, r in self.readers.items()},
                "samples": dict(self.samples), "tokens": dict(self.tokens),
                "template_errors": dict(self.template_errors)}

    def load_resharded(self, states: list[dict[str, Any]]) -> None:
        """Continue from the states of every slot of a run that had another number of slots (another world
        size): each source from where all of them were (`SourceReader.restore_resharded`), so no sample
        is skipped or read twice in the pass (but for a source with fewer shards than old slots, whose pass
        starts over). The sample counters go to slot 0, as sums."""
        for state in states:
            self.check_state(state, state["slot"])
        old_count = states[0]["slot"][1] * states[0]["slot"][3]
        if len(states) != old_count:
            raise ValueError(f"resharding needs the states of all {old_count} slots of the saved run, got {len(states)}")
        for name, reader in self.readers.items():
            reader.restore_resharded([state["sources"][name] for state in states], old_count)
        first = self.slot.index == 0
        for counter, key in ((self.samples, "samples"), (self.tokens, "tokens"),
                             (self.template_errors, "template_errors")):
            counter.clear()
            if first:
                for state in states:
                    counter.update(state[key])

    def check_state(self, state: dict[str, Any], slot: list[int]) -> None:
        """A saved state is this mixture's and seed's, and `slot`'s."""
        if state.get("version") != STATE_VERSION or state["mixture"] != self.mixture.name \
                or state["seed"] != self.mixture.seed or state["slot"] != slot:
            raise ValueError(f"stream state is for mixture {state.get('mixture')} seed {state.get('seed')} slot "
                             f"{state.get('slot')}, this stream is {self.mixture.name} seed {self.mixture.seed} "
                             f"slot {slot}")
        if set(state["sources"]) != set(self.readers):
            raise ValueError(f"stream state has sources {sorted(state['sources'])}, the mixture {sorted(self.readers)}")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_state(state, [self.slot.rank, self.slot.world_size, self.slot.worker, self.slot.num_workers])
        set_rng_state(self.rng, state["rng"])
        for name, reader in self.readers.items():
            reader.restore(state["sources"][name])
        self.samples = Counter(state["samples"])
        self.tokens = Counter(state["tokens"])
        self.template_errors = Counter(state["template_errors"])
