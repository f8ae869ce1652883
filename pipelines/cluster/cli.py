"""The cluster commands of the `docforge` CLI: `cluster up/down/status/env`, `submit`, `launch`.

Wiring only: flags to `pipelines.cluster.local`, `.submit` and `.launch`, errors to exit status 2
(bad usage, no cluster) or the job's own status.
"""

from __future__ import annotations

import argparse
import shlex

from rich.console import Console
from rich.table import Table

from pipelines.cluster import local
from pipelines.cluster.launch import LaunchError, LaunchOptions, launch, parse_workers
from pipelines.cluster.submit import Submission, SubmitError, submit

CLUSTER_EXAMPLES = """examples:
  docforge cluster up --workers 2                 # head + 2 worker nodes on this machine
  eval "$(docforge cluster env)"                  # RAY_ADDRESS, token: builds and submit now target it
  docforge build ocr --count 200 --output /tmp/ocr --address "$RAY_ADDRESS"
  docforge cluster status                         # exit status 1 when a node is down
  docforge cluster up --workers 2                 # again: restarts the worker nodes that stopped
  docforge cluster down                           # stops only the processes `up` started

The state (address, dashboard, token, pids, logs) lives in --state-dir (default: $DOCFORGE_CLUSTER_DIR,
else /tmp/docforge-cluster-UID). Ports come from a free block between 20000 and 32767.
"""

SUBMIT_EXAMPLES = """examples:
  docforge submit --address http://HEAD:8265 -- docforge build ocr --count 100000 --output s3://b/ocr
  docforge submit --working-dir ./corpora -- docforge build ocr --corpus zh.txt --lang zh --count 500 \\
      --output /shared/ocr-zh
  docforge submit -- docforge launch --workers 8 --use-gpu --storage s3://b/ray -- docforge train recipe.yaml

The job runs on the head with --working-dir (if given) uploaded as its current folder; its logs stream
here and `docforge submit` exits with the job's exit status. Address: --address, else
RAY_API_SERVER_ADDRESS, else RAY_ADDRESS (an http:// dashboard address). Token auth: RAY_AUTH_MODE=token
and the cluster's token (RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).
"""

LAUNCH_EXAMPLES = """examples:
  docforge submit --working-dir cluster -- docforge launch --workers 2 -- python check_allreduce.py --world-size 2
  docforge launch --workers 8 --use-gpu --storage s3://bucket/ray-train -- docforge train recipes/stage2.yaml
  docforge launch --workers 8-16 --use-gpu --max-failures 5 --storage s3://bucket/ray-train \
      -- docforge train recipes/stage2.yaml --resume --reshard     # elastic: 8 to 16 GPUs as nodes come and go

Ray Train's TorchTrainer starts the workers (one per GPU with --use-gpu), sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT, initialises torch.distributed (gloo on CPU, nccl on GPU) and runs
the command in each worker. On a cluster, run it through `docforge submit` (or pass --address).
"""


def add_cluster_commands(commands: argparse._SubParsersAction, formatter: type) -> None:
    cluster = commands.add_parser("cluster", help="a local multi-node Ray cluster: up, down, status, env",
                                  epilog=CLUSTER_EXAMPLES, formatter_class=formatter)
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start a head and N worker nodes on this machine", epilog=CLUSTER_EXAMPLES,
                            formatter_class=formatter)
    up.add_argument("--workers", type=int, default=2, help="worker nodes (default: 2)")
    up.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs each worker node offers (default: 1)")
    up.add_argument("--head-cpus", type=int, default=0, help="CPUs the head offers to tasks (default: 0)")
    up.add_argument("--gpus-per-worker", type=int, default=0, help="GPUs each worker node offers (default: 0)")
    up.add_argument("--object-store-mb", type=int, default=256, help="object store per node (default: 256 MiB)")
    up.add_argument("--port-base", type=int, help="first port of the cluster's block (default: the first free one)")
    up.set_defaults(func=cmd_cluster_up)
    for name, help_text, func in (("down", "stop the processes `up` started", cmd_cluster_down),
                                  ("status", "the nodes, their pids and whether they run", cmd_cluster_status),
                                  ("env", "shell exports that point builds, submit and ray at the cluster",
                                   cmd_cluster_env)):
        action = actions.add_parser(name, help=help_text, epilog=CLUSTER_EXAMPLES, formatter_class=formatter)
        action.set_defaults(func=func)
    for action in (up, *[actions.choices[n] for n in ("down", "status", "env")]):
        action.add_argument("--state-dir", help="the cluster's state folder (default: /tmp/docforge-cluster-UID)")

    submit_parser = commands.add_parser("submit", help="run a command as a Ray job on a cluster, logs streamed",
                                        epilog=SUBMIT_EXAMPLES, formatter_class=formatter)
    submit_parser.add_argument("--address", help="the head's dashboard, http://HEAD:8265 (default: "
                               "RAY_API_SERVER_ADDRESS, else RAY_ADDRESS)")
    submit_parser.add_argument("--working-dir", help="local folder uploaded as the job's working folder")
    submit_parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                               help="gitignore-style pattern left out of the working dir upload (repeatable)")
    submit_parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                               help="environment variable of the job (repeatable)")
    submit_parser.add_argument("--pip", action="append", default=[], metavar="PACKAGE",
                               help="extra pip package installed for the job (repeatable)")
    submit_parser.add_argument("--submission-id", help="the job's id (default: generated)")
    submit_parser.add_argument("--entrypoint-num-cpus", type=float, help="CPUs reserved for the entrypoint")
    submit_parser.add_argument("--no-wait", action="store_true", help="return once submitted, do not stream logs")
    submit_parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    submit_parser.set_defaults(func=cmd_submit)

    launch_parser = commands.add_parser("launch", help="run a training command on N Ray Train workers "
                                        "(torch.distributed set up)", epilog=LAUNCH_EXAMPLES, formatter_class=formatter)
    launch_parser.add_argument("--workers", default="2", metavar="N|MIN-MAX",
                               help="training processes (default: 2); MIN-MAX: an elastic group, restarted "
                                    "smaller when nodes are lost and larger when room frees up (a training "
                                    "command then needs --resume --reshard)")
    launch_parser.add_argument("--resize-every", type=float, default=60.0, metavar="SECONDS",
                               help="with MIN-MAX: how often Ray Train looks for room to grow the group (default: 60)")
    launch_parser.add_argument("--use-gpu", action="store_true", help="one GPU per worker, nccl")
    launch_parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per worker (default: 1)")
    launch_parser.add_argument("--gpus-per-worker", type=float, default=1.0, help="GPUs per worker with --use-gpu")
    launch_parser.add_argument("--storage", metavar="URL", help="Ray Train's run folder (shared storage on a cluster)")
    launch_parser.add_argument("--name", help="the run's name (default: generated)")
    launch_parser.add_argument("--max-failures", type=int, default=0,
                               help="restarts of the worker group after a worker or node dies (default: 0)")
    launch_parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded Ray)")
    launch_parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    launch_parser.set_defaults(func=cmd_launch)


def remainder(command: list[str]) -> list[str]:
    return command[1:] if command[:1] == ["--"] else command


def error(message: str) -> int:
    Console(stderr=True).print(f"[red]{message}", highlight=False)
    return 2


def cmd_cluster_up(args: argparse.Namespace, console: Console) -> int:
    try:
        state = local.up(args.workers, args.state_dir, cpus_per_worker=args.cpus_per_worker, head_cpus=args.head_cpus,
                         gpus_per_worker=args.gpus_per_worker, object_store_mb=args.object_store_mb,
                         port_base=args.port_base)
    except local.ClusterError as exn:
        return error(f"docforge cluster up: {exn}")
    console.print(f"address:   {state.address}\ndashboard: {state.dashboard}\nnodes:     head + {args.workers} "
                  f"worker(s), {args.cpus_per_worker} CPU(s) each\nstate:     {state.state_dir}", highlight=False)
    state_flag = f" --state-dir {shlex.quote(state.state_dir)}" if args.state_dir else ""
    print(f'point builds and submit at it:  eval "$(docforge cluster env{state_flag})"')
    return 0


def cmd_cluster_down(args: argparse.Namespace, console: Console) -> int:
    try:
        stopped = local.down(args.state_dir)
    except local.ClusterError as exn:
        return error(f"docforge cluster down: {exn}")
    console.print(f"stopped {len(stopped)} process(es)", highlight=False)
    return 0


def cmd_cluster_status(args: argparse.Namespace, console: Console) -> int:
    try:
        report = local.status(args.state_dir)
    except local.ClusterError as exn:
        return error(f"docforge cluster status: {exn}")
    console.print(f"address {report['address']}, dashboard {report['dashboard']}\n"
                  f"state and logs in {report['state_dir']}", highlight=False)
    table = Table("node", "CPUs", "GPUs", "processes", "GCS says", "pid", "raylet pid")
    for node in report["nodes"]:
        table.add_row(node["name"], str(node["cpus"]), str(node["gpus"]), node["state"], node["gcs"], str(node["pid"]),
                      str(node["raylet_pid"] or "-"))
    console.print(table)
    return 0 if all(n["state"] == "running" and n["gcs"] == "ALIVE" for n in report["nodes"]) else 1


def cmd_cluster_env(args: argparse.Namespace, console: Console) -> int:
    try:
        state = local.ClusterState.load(args.state_dir or local.default_state_dir())
    except local.ClusterError as exn:
        return error(f"docforge cluster env: {exn}")
    for key, value in state.env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--env {pair}: expected KEY=VALUE")
        env[key] = value
    return env


def cmd_submit(args: argparse.Namespace, console: Console) -> int:
    try:
        submission = Submission(remainder(args.command), args.address, args.working_dir, parse_env(args.env),
                                args.pip, args.exclude, args.submission_id, args.entrypoint_num_cpus)
        return submit(submission, follow=not args.no_wait)
    except SubmitError as exn:
        return error(f"docforge submit: {exn}")


def cmd_launch(args: argparse.Namespace, console: Console) -> int:
    try:
        options = LaunchOptions(parse_workers(args.workers), args.use_gpu, args.cpus_per_worker, args.gpus_per_worker,
                                args.storage, args.name, args.max_failures, args.address, args.resize_every)
        launch(remainder(args.command), options)
    except LaunchError as exn:
        Console(stderr=True).print(f"[red]docforge launch: {exn}", highlight=False)
        return 1 if exn.__cause__ is not None else 2
    return 0
