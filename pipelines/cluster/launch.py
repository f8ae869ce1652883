"""`docforge launch`: run one training command on N workers of a Ray cluster with torch.distributed set up.

The launcher is Ray Train's `TorchTrainer`, not torchrun under a Ray job: a Ray job's entrypoint runs on
the head only, so torchrun would need a process per node placed by hand, a rendezvous host and port
chosen by hand, and a restart loop of our own. `TorchTrainer` gang-schedules the N workers (GPUs
included) as one placement group, sets the torchrun variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`MASTER_ADDR`, `MASTER_PORT`), initialises the process group (gloo on CPUs, nccl on GPUs) and restarts
the whole group after a worker or node dies (`--max-failures`; the trainer resumes from its last
checkpoint on shared storage). Each worker runs the command in its own process, so a command written
for torchrun (`docforge train RECIPE`, `python script.py`, `python -m module`) runs unchanged: it must
only skip `init_process_group` when `torch.distributed.is_initialized()`.

With `--workers MIN-MAX` the group is elastic (Ray Train's elastic training): it starts with as many
workers as the cluster has room for, at least MIN; after a node is lost it restarts with those left, and
when room for more frees up it restarts larger, up to MAX. A new group size is a new world size, so a
`docforge train` command must continue its checkpoint with `--resume --reshard` (trainer.checkpoint):
the launcher refuses it otherwise, before reaching the cluster.
"""

from __future__ import annotations

import inspect
import os
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYTHON_NAMES = ("python", "python3")


class LaunchError(RuntimeError):
    """A command the launcher cannot run, or a training run that failed."""


def check_command(command: list[str]) -> None:
    """Only commands that can run inside the worker process (where the process group lives) are accepted."""
    if not command:
        raise LaunchError("nothing to launch: give the command after `--`, e.g. `-- docforge train recipe.yaml`")
    program, args = Path(command[0]).name, command[1:]
    if program == "docforge":
        return
    if program in PYTHON_NAMES or program == Path(sys.executable).name:
        if args[:1] == ["-m"] and len(args) >= 2 or args and not args[0].startswith("-"):
            return
        raise LaunchError(f"`{' '.join(command)}`: give `python SCRIPT ...` or `python -m MODULE ...`")
    raise LaunchError(f"`{command[0]}`: the launcher runs `docforge ...`, `python SCRIPT ...` or "
                      "`python -m MODULE ...` inside each worker, not other programs")


def exit_status(exn: SystemExit) -> int:
    if exn.code is None:
        return 0
    if isinstance(exn.code, int):
        return exn.code
    print(exn.code, file=sys.stderr)
    return 1


def run_in_process(command: list[str]) -> int:
    """Run `command` in this process (as its `__main__`) and return its exit status."""
    program, args = Path(command[0]).name, command[1:]
    try:
        if program == "docforge":
            from pipelines.cli import main  # the CLI composes every layer, the trainer's `train` included

            sys.argv = ["docforge", *args]
            return main(args) or 0
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exn:
        return exit_status(exn)
    return 0


def run_command_on_worker(config: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: the process group is up and RANK/WORLD_SIZE/... are set; run the command."""
    status = run_in_process(config["command"])
    if status != 0:
        raise LaunchError(f"rank {os.environ.get('RANK')}: `{' '.join(config['command'])}` exited with status {status}")


def parse_workers(text: str) -> int | tuple[int, int]:
    """`N`, or `MIN-MAX` for an elastic group."""
    low, dash, high = text.partition("-")
    try:
        workers = (int(low), int(high)) if dash else int(low)
    except ValueError:
        raise LaunchError(f"--workers {text}: give a number of workers, N, or a range, MIN-MAX") from None
    check_workers(workers)
    return workers


def check_workers(workers: int | tuple[int, int]) -> None:
    low, high = workers if isinstance(workers, tuple) else (workers, workers)
    if not 1 <= low <= high:
        raise LaunchError(f"--workers {describe(workers)}: "
                          + ("MIN-MAX needs 1 <= MIN <= MAX" if isinstance(workers, tuple) else "at least 1"))


def check_elastic(command: list[str], workers: int | tuple[int, int]) -> None:
    """An elastic group changes the world size between attempts: a training run must reshard its checkpoint."""
    if not isinstance(workers, tuple) or Path(command[0]).name != "docforge" or "train" not in command[1:2]:
        return
    missing = [flag for flag in ("--resume", "--reshard") if flag not in command]
    if missing:
        raise LaunchError(f"--workers {workers[0]}-{workers[1]} restarts the group with another number of ranks "
                          f"when nodes come or go: the training command needs {' '.join(missing)} to continue "
                          "its checkpoint on the new number")


def describe(workers: int | tuple[int, int]) -> str:
    return f"{workers[0]}-{workers[1]}" if isinstance(workers, tuple) else str(workers)


@dataclass
class LaunchOptions:
    workers: int | tuple[int, int] = 2  # a tuple: (MIN, MAX), an elastic group
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # used only with use_gpu
    storage: str | None = None  # Ray Train's run folder; must be shared storage on a multi-node cluster
    name: str | None = None
    max_failures: int = 0
    address: str | None = None  # default: RAY_ADDRESS, else an embedded local Ray
    resize_every: float = 60.0  # elastic: seconds between Ray Train's looks for room to grow the group


def launch(command: list[str], options: LaunchOptions) -> Any:
    """Run `command` on `options.workers` Ray Train workers; returns Ray Train's `Result`, raises `LaunchError`."""
    check_command(command)
    workers = options.workers
    check_workers(workers)
    check_elastic(command, workers)
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    elastic = {}
    if isinstance(workers, tuple):
        if "elastic_resize_monitor_interval_s" not in inspect.signature(ScalingConfig).parameters:
            raise LaunchError(f"--workers {describe(workers)}: Ray {ray.__version__}'s Train has no elastic groups; "
                              "install a Ray whose ScalingConfig takes num_workers=(MIN, MAX)")
        elastic["elastic_resize_monitor_interval_s"] = options.resize_every

    from pipelines.runner import RunOptions, ensure_ray

    ensure_ray(RunOptions(address=options.address, progress=False))
    # Workers stay in the job's working folder (Ray Train would move them into its run folder), so relative
    # paths in the command mean what they mean under torchrun started from the same folder.
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    resources = {"CPU": options.cpus_per_worker}
    if options.use_gpu:
        resources["GPU"] = options.gpus_per_worker
    trainer = TorchTrainer(
        run_command_on_worker,
        train_loop_config={"command": list(command)},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=options.use_gpu, resources_per_worker=resources,
                                     **elastic),
        run_config=RunConfig(name=options.name, storage_path=options.storage,
                             failure_config=FailureConfig(max_failures=options.max_failures)),
    )
    try:
        return trainer.fit()
    except TrainingFailedError as exn:
        raise LaunchError(f"`{' '.join(command)}` on {describe(workers)} workers failed: {exn}") from exn
