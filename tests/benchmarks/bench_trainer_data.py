"""Benchmark: the trainer's input side alone (mixture ▶ tiles ▶ tokens ▶ packed micro-batch), as the data
worker runs it beside the GPU, for the 1.5B bench's data: what one micro-batch costs to prepare.

What it measures
    Setup (untimed): the pages of `bench_trainer.py` (`--pages` synthetic 1400 px PNG pages with their
    text, one shard set, an `ocr` mixture) and a BPE tokenizer trained on the shipped corpus.
    Timed: `PackedBatches.next_batch()` of the 1.5B preset (16 tiles of 336 px + global view, pixel
    shuffle: 144 tokens a view, seq 8192, one row a micro-batch), `--batches` micro-batches after
    `--skip` warm-up ones, one process, one thread, as the data worker makes them. Per micro-batch: wall
    ms (median), bytes of its tensors (what the queue, pinning and the host-to-device copy move), its
    width and its real tokens, whose share of seq_len is how full packing fills the rows
    (`--packing-window`).

    With `--repo DIR` the code under test is that checkout's (e.g. a `git worktree` of an older commit),
    so two versions are measured by the same script on the same pages, side by side:

    python tests/benchmarks/bench_trainer_data.py
    python tests/benchmarks/bench_trainer_data.py --packing-window 1
    git worktree add /tmp/old 6c2f0e1 && python tests/benchmarks/bench_trainer_data.py --repo /tmp/old
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def packed_batches_1p5b(root: Path, pages: int, packing_window: int):
    """The 1.5B bench's input side over `pages` fresh pages under `root`: a function that makes a fresh
    PackedBatches over them, the preset, and the options this checkout's PackedBatches takes (older
    checkouts lack some)."""
    import bench_trainer  # puts this checkout first on sys.path, for its page writer
    from mixtures.manifest import load_manifest
    from mixtures.stream import MixtureStream
    from trainer.data import PackedBatches, SampleEncoder
    from trainer.tiling import TilingConfig
    from trainer.tokenizer import train_bpe_tokenizer

    preset = dict(bench_trainer.PRESETS["1.5b"], attention="varlen", compile=False, data_worker="thread",
                  pad_to_multiple_of=64, bf16_weights=False, fused_weight_grads=False, profile_steps=None,
                  packing_window=packing_window)
    views_tokens = 144  # 336 px views of 14 px patches, merged 2×2
    bench_trainer.make_pages(root, pages, 1400)
    bench_trainer.write_recipe(root, preset, 1)
    tokenizer = train_bpe_tokenizer([str(bench_trainer.REPO / "synth" / "corpora" / "en.txt")], 1024)
    tiling = TilingConfig(tile_size=336, max_tiles=preset["max_tiles"], global_view=True)
    encoder = SampleEncoder(tokenizer, lambda rows, cols, glob: (rows * cols + glob) * views_tokens + rows - 1,
                            tiling, preset["seq_len"])
    options = {}
    if "pad_to_multiple_of" in inspect.signature(PackedBatches).parameters:
        options["pad_to_multiple_of"] = 64
    if "window" in inspect.signature(PackedBatches).parameters:
        options["window"] = packing_window

    def fresh() -> PackedBatches:
        stream = MixtureStream(load_manifest(str(root / "mix.yaml")), buffer_size=16)
        return PackedBatches(stream, encoder, preset["micro_batch"], tokenizer.pad_token_id, **options)

    return fresh, preset, options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=str(HERE.parents[2]), help="the checkout whose trainer is measured")
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--skip", type=int, default=4)
    parser.add_argument("--packing-window", type=int, default=16,
                        help="drawn samples rows are packed from (PackedBatches' window; 1: stream order)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    import torch

    import bench_trainer  # puts this checkout first on sys.path, for its page writer

    sys.path.insert(0, args.repo)  # and the measured checkout before it, for everything imported below
    stale = [name for name in sys.modules if name.split(".")[0] in ("trainer", "mixtures")]
    assert not stale, f"imported before the measured checkout was on the path: {stale}"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        make, preset, options = packed_batches_1p5b(Path(tmp), args.pages, args.packing_window)
        batches = make()
        times, sizes, widths, tokens = [], [], [], []
        for i in range(args.skip + args.batches):
            started = time.perf_counter()
            batch = batches.next_batch()
            elapsed = time.perf_counter() - started
            if i < args.skip:
                continue
            times.append(elapsed)
            tensors = [t for t in vars(batch).values() if isinstance(t, torch.Tensor)]
            sizes.append(sum(t.numel() * t.element_size() for t in tensors))
            widths.append(batch.input_ids.shape[1])
            tokens.append(batch.real_tokens)
    figures = {
        "repo": args.repo, "packing_window": options.get("window", 1), "batches": len(times),
        "ms_per_micro_batch": 1000 * statistics.median(times),
        "mb_per_micro_batch": statistics.median(sizes) / 2 ** 20,
        "width_mean": statistics.mean(widths), "real_tokens_mean": statistics.mean(tokens),
        "real_share_of_width": sum(tokens) / sum(widths),
        "real_share_of_seq_len": sum(tokens) / (len(tokens) * preset["micro_batch"] * preset["seq_len"]),
    }
    bench_trainer.report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
