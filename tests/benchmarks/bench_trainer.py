"""Benchmark: the streaming trainer end to end (mixture ▶ tiles ▶ tokens ▶ packing ▶ forward/backward ▶ AdamW).

What it measures
    Setup (untimed): in a temp dir, one docforge dataset of `--pages` synthetic document pages (default
    48), written by the real `ShardWriter`: `--page-px` square PNG pages (default 1400 px: a 4×4 grid,
    16 tiles + the global view at 336 px) with seeded lines of text drawn in black, the same text (a
    seeded 500-4000 character slice of synth/corpora/en.txt) as the `.txt` OCR target, family `ocr`.
    A manifest reads it with the `ocr` task; a one-stage recipe (all modules trained, warmup 1 step)
    trains on it through `trainer.train.run_recipe`, the code `docforge train` runs.

    Presets
      tiny      the model of trainer/recipes/tiny.yaml (CLIP-class tower width 32, Qwen2-class LLM width 64),
                seq 1024, max 4 tiles, CPU float32.
      1.5b      real sizes, random weights: CLIP ViT-L/14-336 (24 layers, width 1024) + Qwen2-1.5B (28
                layers, width 1536, vocabulary 151936), pixel shuffle 2×2 (144 tokens a tile), 16 tiles,
                seq 8192, bf16 autocast, fused AdamW, one GPU.

    Reported from the run's log.jsonl, over the steps after `--skip` warm-up steps: median tokens/s
    (non-padding tokens), samples/s, data-wait share (time the step waited for its micro-batches over
    step time, summed), MFU (GPU only: model FLOPs from trainer.metrics over bf16 peak), peak GPU
    memory; plus CPU seconds per 1k tokens (`time.process_time` of the whole process, all threads).

    python tests/benchmarks/bench_trainer.py --preset tiny --steps 12
    python tests/benchmarks/bench_trainer.py --preset 1.5b --steps 14 --skip 4      # on a GPU
    python tests/benchmarks/bench_trainer.py --preset 1.5b --steps 16 --skip 6 --compile --attention sdpa
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from pipelines.shards import ShardWriter, build_index, write_index  # noqa: E402
from pipelines.storage import Folder  # noqa: E402

PRESETS = {
    "tiny": {
        "vision": {"model_type": "clip_vision_model", "image_size": 336, "patch_size": 14, "hidden_size": 32,
                   "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
        "llm": {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048},
        "seq_len": 1024, "max_tiles": 4, "micro_batch": 1, "grad_accum": 2, "device": "cpu",
        "activation_checkpointing": False,
    },
    "1.5b": {
        "vision": {"model_type": "clip_vision_model", "image_size": 336, "patch_size": 14, "hidden_size": 1024,
                   "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                   "hidden_act": "quick_gelu", "projection_dim": 768},
        "llm": {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                "max_position_embeddings": 32768, "tie_word_embeddings": True},
        "seq_len": 8192, "max_tiles": 16, "micro_batch": 1, "grad_accum": 1, "device": "cuda",
        "activation_checkpointing": False,
    },
}


def make_pages(root: Path, count: int, size: int) -> None:
    corpus = (REPO / "synth" / "corpora" / "en.txt").read_text().split()
    font = ImageFont.load_default(size=22)
    folder = Folder(str(root / "pages"))
    with ShardWriter(folder, 0, max_count=16) as writer:
        for i in range(count):
            rng = random.Random(i)
            start = rng.randrange(len(corpus))
            words = (corpus * 8)[start:start + rng.randrange(80, 640)]
            lines = textwrap.wrap(" ".join(words), 100)
            image = Image.new("RGB", (size, size), "white")
            draw = ImageDraw.Draw(image)
            for n, line in enumerate(lines):
                draw.text((40, 40 + 28 * n), line, fill="black", font=font)
            path = root / "page.png"
            image.save(path)
            writer.write({"__key__": f"page-{i:05d}", "png": path.read_bytes(), "txt": "\n".join(lines),
                          "json": {"family": "ocr", "lang": "en", "image": {"width": size, "height": size}}})
    write_index(folder, build_index([s.to_dict() for s in writer.shards], {"job": "bench"},
                                    {"complete": True, "missing_tasks": []}))


def write_recipe(root: Path, preset: dict, steps: int) -> Path:
    (root / "mix.yaml").write_text(textwrap.dedent(f"""\
        name: bench-pages
        stage: 2
        seed: 0
        sources:
          - name: pages
            shards: {root / 'pages'}
            weight: 1
            task: ocr
        """))
    recipe = {
        "name": "bench", "output": str(root / "out"), "seed": 0,
        "tokenizer": {"train": {"files": [str(REPO / "synth" / "corpora" / "en.txt")], "vocab_size": 1024}},
        "model": {"vision": {"config": preset["vision"]}, "llm": {"config": preset["llm"]},
                  "attention": preset["attention"]},
        "runtime": {"device": preset["device"], "prefetch": 4, "shuffle_buffer": 16, "log_every": 1,
                    "activation_checkpointing": preset["activation_checkpointing"], "compile": preset["compile"],
                    "data_worker": preset["data_worker"], "pad_to_multiple_of": preset["pad_to_multiple_of"],
                    "bf16_weights": preset["bf16_weights"], "fused_weight_grads": preset["fused_weight_grads"],
                    "profile_steps": preset["profile_steps"],
                    "packing_window": preset["packing_window"]},
        "stages": [{"stage": 2, "mixture": str(root / "mix.yaml"), "trainable": ["vision", "projector", "llm"],
                    "lr": {"vision": 2e-5, "projector": 1e-4, "llm": 2e-5}, "warmup_steps": 1, "steps": steps,
                    "micro_batch": preset["micro_batch"], "grad_accum": preset["grad_accum"],
                    "seq_len": preset["seq_len"], "max_tiles": preset["max_tiles"]}],
    }
    path = root / "recipe.yaml"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--skip", type=int, default=2, help="warm-up steps left out of the figures")
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--page-px", type=int, default=1400)
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--attention", choices=["varlen", "sdpa_per_sample", "sdpa", "flash_attention_2"],
                        default="varlen",
                        help="the LLM's attention over packed rows (default: %(default)s)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer block and the loss")
    parser.add_argument("--grad-accum", type=int, help="micro-batches a step (default: the preset's)")
    parser.add_argument("--data-worker", choices=["thread", "process"], default="thread",
                        help="where micro-batches are prepared (default: %(default)s)")
    parser.add_argument("--pad-to-multiple-of", type=int, default=64,
                        help="micro-batch width: the longest row rounded up to this; 0: always seq_len (default: "
                             "%(default)s)")
    parser.add_argument("--packing-window", type=int, default=16,
                        help="drawn samples rows are packed from (runtime.packing_window; 1: stream order, as in "
                             "every run measured before the option; default: %(default)s)")
    parser.add_argument("--bf16-weights", action="store_true",
                        help="the passes on bf16 copies of the weights, fp32 masters (runtime.bf16_weights)")
    parser.add_argument("--fused-weight-grads", action="store_true",
                        help="with --bf16-weights: Linear weight gradients added into the fp32 sums by their own "
                             "backward product (runtime.fused_weight_grads)")
    parser.add_argument("--profile", help="profile the timed steps (runtime.profile_steps: torch.profiler, CUDA "
                                          "kernels on a GPU, CPU ops elsewhere) and copy the profile folder here")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    preset = dict(PRESETS[args.preset])
    preset["activation_checkpointing"] = args.activation_checkpointing or preset["activation_checkpointing"]
    preset["attention"], preset["compile"] = args.attention, args.compile
    preset["grad_accum"] = args.grad_accum or preset["grad_accum"]
    preset["data_worker"] = args.data_worker
    preset["pad_to_multiple_of"] = args.pad_to_multiple_of or None
    preset["bf16_weights"] = args.bf16_weights
    preset["fused_weight_grads"] = args.fused_weight_grads
    preset["packing_window"] = args.packing_window
    preset["profile_steps"] = [args.skip + 1, args.steps] if args.profile else None

    from transformers.utils import logging as transformers_logging

    from trainer.train import run_recipe

    transformers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_pages(root, args.pages, args.page_px)
        recipe = write_recipe(root, preset, args.steps)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        run_recipe(str(recipe), "all")
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
        if args.profile:
            shutil.copytree(root / "out" / "stage2" / "profile", args.profile, dirs_exist_ok=True)
        steps = [json.loads(line) for line in (root / "out" / "stage2" / "log.jsonl").read_text().splitlines()]
    timed = steps[args.skip:]
    tokens = sum(s["tokens"] for s in steps)
    figures = {
        "preset": args.preset, "attention": args.attention, "compile": args.compile,
        "grad_accum": preset["grad_accum"], "data_worker": args.data_worker, "bf16_weights": args.bf16_weights,
        "fused_weight_grads": args.fused_weight_grads,
        "pad_to_multiple_of": preset["pad_to_multiple_of"], "packing_window": args.packing_window,
        "steps_timed": len(timed),
        "tokens_per_s": statistics.median(s["tokens_per_s"] for s in timed),
        "samples_per_s": statistics.median(s["samples_per_s"] for s in timed),
        "data_wait_share": sum(s["data_wait"] for s in timed) / sum(s["step_time"] for s in timed),
        "step_time_s": statistics.median(s["step_time"] for s in timed),
        "mfu": statistics.median(s["mfu"] for s in timed) if timed[0].get("mfu") is not None else None,
        "peak_memory_gib": max((s.get("peak_memory_gib", 0) for s in steps), default=None) or None,
        "tokens_per_row": statistics.mean(s["tokens"] for s in timed) / (preset["micro_batch"] * preset["grad_accum"]),
        "cpu_s_per_1k_tokens": 1000 * cpu / tokens, "wall_s_total": wall,
        "losses": " ".join(f"{s['loss']:.4f}" for s in steps),  # same data and seed: runs compare step by step
    }
    import torch

    if torch.cuda.is_available():
        figures["device"] = torch.cuda.get_device_name(0)
    report(figures, args.json)
    return 0


def report(figures: dict, json_path: str | None) -> None:
    """One figure a line on stdout, and all of them to `json_path` when given."""
    for name, value in figures.items():
        print(f"{name:22s} {value:.4g}" if isinstance(value, float) else f"{name:22s} {value}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
