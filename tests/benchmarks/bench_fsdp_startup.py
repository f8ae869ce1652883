"""Benchmark: host memory and time for FSDP ranks to hold their shards (`trainer.distributed.shard_from_rank0`).

Why
    Before, every FSDP rank built or loaded the whole model in float32 on the host and then sharded it: a
    7B LLM is ~30 GB a rank, ~240 GB on an 8-GPU node, before the first step. Now only rank 0 holds the
    whole model; the other ranks shard a meta-device skeleton and receive their weights from rank 0.

What it measures
    `--ranks` CPU processes (gloo) under torchrun, each building the same DocVLM (a tiny CLIP tower and a
    Qwen2-class LLM of `--hidden` width, `--layers` layers, `--vocab` tokens, random weights, seeded) and
    sharding it with FSDP2, in one of two ways:
      every-rank   each rank builds the whole model, then `shard` (the trainer's way before)
      from-rank0   rank 0 builds it, the others build the skeleton, then `shard_from_rank0` (now)
    Per rank: the peak resident memory of the process (ru_maxrss) over the start, the build and the
    sharding, the resident memory once sharded, and the seconds from build to sharded; then (after those
    readings) a check that the two ways' sharded weights agree (the sum of every parameter's gathered
    full tensor). Runs the two ways in turn,
    `--rounds` times each, alternating; prints medians.

    python tests/benchmarks/bench_fsdp_startup.py                       # ~0.9 B parameters, 2 ranks
    python tests/benchmarks/bench_fsdp_startup.py --hidden 1536 --layers 28 --vocab 151936
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKER = r'''
import json, os, resource, sys, time
import torch, torch.distributed as dist
from trainer.distributed import shard, shard_from_rank0, start_runtime
from trainer.model import ModelConfig, build_model

way, hidden, layers, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

class Tokens:  # a tokenizer's size and image token: all build_model reads
    def __len__(self):
        return vocab
    def convert_tokens_to_ids(self, token):
        return vocab - 1

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

runtime = start_runtime("cpu")
config = ModelConfig({"config": {"model_type": "clip_vision_model", "image_size": 336, "patch_size": 14,
                                 "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                 "num_attention_heads": 2}},
                     {"config": {"model_type": "qwen2", "hidden_size": hidden, "intermediate_size": hidden * 4,
                                 "num_hidden_layers": layers, "num_attention_heads": 16, "num_key_value_heads": 4,
                                 "tie_word_embeddings": False}})
dist.barrier()
started = time.perf_counter()
skeleton = way == "from-rank0" and not runtime.is_main
with torch.device("meta") if skeleton else torch.device("cpu"):
    torch.manual_seed(0)
    model = build_model(config, Tokens(), "<image>", weights=not skeleton)
if way == "from-rank0":
    shard_from_rank0(model, runtime, bf16=False)
else:
    shard(model, runtime, bf16=False)
dist.barrier()
seconds = time.perf_counter() - started
peak, after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_mib()
checksum = sum(float(p.full_tensor().sum(dtype=torch.float64)) for p in model.parameters())  # after the peak
with open(os.path.join(sys.argv[5], f"rank-{runtime.rank}.json"), "w") as out:
    json.dump({"rank": runtime.rank, "peak_mib": peak, "after_mib": after, "seconds": seconds, "checksum": checksum,
               "parameters": sum(p.numel() for p in model.parameters())}, out)
dist.destroy_process_group()
'''


def run(way: str, args, script: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={args.ranks}", str(script), way, str(args.hidden), str(args.layers),
                               str(args.vocab), out], cwd=REPO, capture_output=True, text=True,
                              env=os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
        if done.returncode:
            raise SystemExit(f"{way}: torchrun failed\n{done.stderr[-3000:]}")
        return [json.loads((Path(out) / f"rank-{rank}.json").read_text()) for rank in range(args.ranks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[list[dict]]] = {"every-rank": [], "from-rank0": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        for round_ in range(args.rounds):
            for way in (("every-rank", "from-rank0") if round_ % 2 == 0 else ("from-rank0", "every-rank")):
                results[way].append(run(way, args, script))
    parameters = results["every-rank"][0][0]["parameters"]
    print(f"{parameters / 1e9:.2f} B parameters ({parameters * 4 / 2 ** 30:.2f} GiB in float32), "
          f"{args.ranks} gloo ranks, medians of {args.rounds} rounds")
    print(f"{'way':<12} {'rank':>4} {'peak RSS MiB':>13} {'RSS sharded MiB':>16} {'seconds':>8}")
    checksums = set()
    for way, rounds in results.items():
        for rank in range(args.ranks):
            rows = [r[rank] for r in rounds]
            med = {k: statistics.median(row[k] for row in rows) for k in ("peak_mib", "after_mib", "seconds")}
            print(f"{way:<12} {rank:>4} {med['peak_mib']:>13.0f} {med['after_mib']:>16.0f} {med['seconds']:>8.2f}")
        checksums.update(round(r[0]["checksum"], 3) for r in rounds)
    print("the two ways' sharded weights agree" if len(checksums) == 1 else f"WEIGHTS DIFFER: {sorted(checksums)}")


if __name__ == "__main__":
    main()
