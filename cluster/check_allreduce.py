"""Checks that every rank of a distributed launch reaches the others before a long training run.

Each rank all-reduces (rank + 1); the sum must be world * (world + 1) / 2. Runs under `docforge launch`
(Ray Train has set up the process group) and under torchrun (it initialises one from the environment):

    docforge submit --working-dir cluster -- docforge launch --workers 2 -- python check_allreduce.py --world-size 2
    docforge submit --working-dir cluster -- docforge launch --workers 8 --use-gpu -- python check_allreduce.py
    torchrun --nproc_per_node=8 cluster/check_allreduce.py --world-size 8 --out /shared/allreduce

With --out (an fsspec URL) each rank also writes `rank-R.json` there: rank, world, backend, host, pid, sum.
Exit status 1 when the sum or the world size is wrong.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import torch
import torch.distributed as dist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world-size", type=int, help="the world size this launch must have")
    parser.add_argument("--out", metavar="URL", help="folder (fsspec URL) for one rank-R.json per rank")
    args = parser.parse_args(argv)

    joined_here = not dist.is_initialized()  # under torchrun; Ray Train has joined it already
    if joined_here:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank, world, backend = dist.get_rank(), dist.get_world_size(), dist.get_backend()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if backend == "nccl" else torch.device("cpu")
    total = torch.tensor([rank + 1.0], device=device)
    dist.all_reduce(total)
    expected = world * (world + 1) / 2
    result = {"rank": rank, "world": world, "backend": backend, "host": socket.gethostname(), "pid": os.getpid(),
              "sum": total.item(), "expected": expected}
    print(f"rank {rank} of {world} ({backend}, {result['host']} pid {result['pid']}): "
          f"all-reduce sum {total.item():g}, expected {expected:g}", flush=True)
    if args.out:
        from pipelines.storage import Folder

        Folder(args.out).write_json(f"rank-{rank}.json", result)
    ok = total.item() == expected and (args.world_size is None or world == args.world_size)
    if not ok:
        print(f"rank {rank}: wrong all-reduce sum or world size (wanted {args.world_size})", file=sys.stderr)
    if joined_here:
        dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
