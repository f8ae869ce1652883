"""A Ray cluster of several nodes on one machine: `docforge cluster up/down/status/env`.

`up` starts a head and N worker nodes, each a `ray start --block` process of its own (own CPUs, own
`--temp-dir`, own ports from a free block above Ray's default worker ports, so it never meets another
local Ray), with a token of its own for Ray's token authentication. Every process it starts carries
`DOCFORGE_CLUSTER_ID` in its environment, so `down` stops exactly those processes (and the Ray workers
they spawned) and nothing else. `up` on a running cluster restarts its stopped worker nodes; `status`
reports each node's processes and what the GCS says of it. The state (address, dashboard, token, nodes
and their pids) is a JSON file in the state folder; tests and laptops use it the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
CLUSTER_ID_ENV = "DOCFORGE_CLUSTER_ID"
READY_LINE = "Ray runtime started"
PORT_FLOOR = 20000  # Ray's own worker ports are 10002-19999 by default
PORT_CEILING = 32768  # Linux hands out ephemeral ports from here up
PORTS_PER_NODE = 200  # 0-9: fixed ports of the node, 100-199: its Ray worker processes
MAX_SOCKET_DIR = 44  # a Unix socket path is at most 107 bytes; Ray adds ~62 under --temp-dir
# Local-cluster tuning: the GCS declares a node dead after 4 missed 1 s health checks (Ray's default:
# 5 x 3 s), and a node told to stop drains for at most 1 s (Ray's default: 30 s, for Serve replicas).
NODE_TUNING_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "4",
                   "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "1"}


class ClusterError(RuntimeError):
    """A local cluster that cannot be started, found or reached."""


def default_state_dir() -> Path:
    return Path(os.environ.get("DOCFORGE_CLUSTER_DIR") or f"/tmp/docforge-cluster-{os.getuid()}")


@dataclass
class NodeSpec:
    name: str
    num_cpus: int
    num_gpus: int
    port_base: int  # this node's block of PORTS_PER_NODE ports

    @property
    def head(self) -> bool:
        return self.name == "head"


@dataclass
class Node:
    """A started node: its `ray start --block` process (pid + start time, to never mistake a reused pid)."""

    name: str
    num_cpus: int
    num_gpus: int
    port_base: int
    pid: int
    started: float
    temp_dir: str
    log: str
    raylet_pid: int | None = None
    node_id: str | None = None  # Ray's id of the node, from its raylet's command line

    def process(self) -> psutil.Process | None:
        return same_process(self.pid, self.started)

    def raylet(self) -> psutil.Process | None:
        block = self.process()
        if block is None:
            return None
        return next((p for p in block.children() if p.name() == "raylet"), None)


@dataclass
class ClusterState:
    cluster_id: str
    state_dir: str
    address: str
    dashboard: str
    token_path: str
    object_store_mb: int
    nodes: list[Node] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What a driver, `docforge submit` or `ray` CLI needs to reach this cluster."""
        return {"RAY_ADDRESS": self.address, "RAY_API_SERVER_ADDRESS": self.dashboard,
                "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"{self.state_dir}: no node named {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def save(self) -> None:
        path = Path(self.state_dir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: str | Path) -> ClusterState:
        path = Path(state_dir) / STATE_FILE
        if not path.exists():
            raise ClusterError(f"{path}: no local cluster here (start one with `docforge cluster up`)")
        try:
            raw = json.loads(path.read_text())
            raw["nodes"] = [Node(**n) for n in raw["nodes"]]
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as exn:
            raise ClusterError(f"{path}: not a docforge cluster state file ({exn})") from exn


def same_process(pid: int, started: float) -> psutil.Process | None:
    """The running process `pid` if it is the one that started at `started` (not a reused pid)."""
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:  # gone (or not ours to inspect): not running
        return None
    return None


def ports_free(start: int, count: int) -> bool:
    for port in range(start, start + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is free
            try:
                probe.bind(("", port))
            except OSError:
                return False
    return True


def find_port_base(nodes: int) -> int:
    """The first block of `nodes` x PORTS_PER_NODE free ports between PORT_FLOOR and PORT_CEILING."""
    size = nodes * PORTS_PER_NODE
    for base in range(PORT_FLOOR, PORT_CEILING - size, size):
        if ports_free(base, size):
            return base
    raise ClusterError(f"no block of {size} free ports between {PORT_FLOOR} and {PORT_CEILING} for {nodes} nodes")


def node_command(spec: NodeSpec, head_port: int, temp_dir: Path, object_store_mb: int) -> list[str]:
    """The `ray start --block` command line of one node; every port it opens is set explicitly."""
    base = spec.port_base
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
               "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir),
               "--num-cpus", str(spec.num_cpus), "--num-gpus", str(spec.num_gpus),
               "--object-store-memory", str(object_store_mb << 20),
               "--node-manager-port", str(base + 3), "--object-manager-port", str(base + 4),
               "--dashboard-agent-listen-port", str(base + 5), "--dashboard-agent-grpc-port", str(base + 6),
               "--runtime-env-agent-port", str(base + 7), "--metrics-export-port", str(base + 8),
               "--min-worker-port", str(base + 100), "--max-worker-port", str(base + PORTS_PER_NODE - 1)]
    if spec.head:
        command += ["--head", "--port", str(head_port), "--include-dashboard", "true",
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(base + 1),
                    "--ray-client-server-port", str(base + 2)]
    else:
        command += ["--address", f"127.0.0.1:{head_port}"]
    return command


def node_env(cluster_id: str, token_path: Path) -> dict[str, str]:
    """The environment of every `ray start`: the cluster's own token, this venv first on PATH (so job
    entrypoints like `docforge build ...` and `python` resolve to it), and the id that `down` looks for."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(NODE_TUNING_ENV)
    env.update({CLUSTER_ID_ENV: cluster_id, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path),
                "RAY_USAGE_STATS_ENABLED": "0",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])})
    return env


def start_node(spec: NodeSpec, head_port: int, state_dir: Path, env: dict[str, str], object_store_mb: int) -> Node:
    temp_dir = state_dir / "ray" / spec.name
    temp_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "logs" / f"{spec.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(node_command(spec, head_port, temp_dir, object_store_mb), env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Node(spec.name, spec.num_cpus, spec.num_gpus, spec.port_base, process.pid,
                psutil.Process(process.pid).create_time(), str(temp_dir), str(log))


def wait_until_ready(nodes: list[Node], timeout_s: float) -> None:
    """Wait until each node's `ray start` says it is up; a node that exits first is an error with its log."""
    deadline = time.monotonic() + timeout_s
    waiting = list(nodes)
    while waiting:
        for node in list(waiting):
            text = Path(node.log).read_text(errors="replace")
            raylet = node.raylet()
            if READY_LINE in text and raylet is not None:
                node.raylet_pid = raylet.pid
                node.node_id = next((a.split("=", 1)[1] for a in raylet.cmdline() if a.startswith("--node_id=")), None)
                waiting.remove(node)
            elif node.process() is None:
                raise ClusterError(f"node {node.name} exited while starting; {node.log} ends with:\n{text[-2000:]}")
        if waiting and time.monotonic() > deadline:
            names = ", ".join(n.name for n in waiting)
            raise ClusterError(f"node(s) {names} not up after {timeout_s:.0f} s; see {Path(waiting[0].log).parent}")
        if waiting:
            time.sleep(0.2)


def wait_for_gcs(head: Node, port: int, timeout_s: float) -> None:
    """Wait until the head's GCS accepts connections: worker nodes can join while its dashboard starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if head.process() is None:
                text = Path(head.log).read_text(errors="replace")
                raise ClusterError(f"the head exited while starting; {head.log} ends with:\n{text[-2000:]}") from None
            if time.monotonic() > deadline:
                raise ClusterError(f"the head's GCS is not up on port {port} after {timeout_s:.0f} s; see {head.log}")
            time.sleep(0.2)


def up(workers: int, state_dir: str | Path | None = None, cpus_per_worker: int = 1, head_cpus: int = 0,
       gpus_per_worker: int = 0, object_store_mb: int = 256, port_base: int | None = None,
       timeout_s: float = 120.0) -> ClusterState:
    """Start a head and `workers` worker nodes on this machine and record them in STATE_DIR/cluster.json.
    If that cluster already runs with `workers` worker nodes, restart those of them that stopped."""
    if workers < 0:
        raise ClusterError("--workers must be 0 or more")
    state_path = Path(state_dir or default_state_dir()).resolve()
    if (state_path / STATE_FILE).exists():
        existing = ClusterState.load(state_path)
        if existing.nodes[0].process() and len(existing.nodes) == workers + 1:
            restart_workers(existing, timeout_s)
            return existing
        if any(n.process() for n in existing.nodes):
            raise ClusterError(f"{state_path}: a local cluster with {len(existing.nodes) - 1} worker node(s) is "
                               f"running at {existing.address} (`docforge cluster down` first, or use another "
                               "--state-dir)")
    if len(str(state_path / "ray" / f"worker-{workers}")) > MAX_SOCKET_DIR:
        raise ClusterError(f"--state-dir {state_path}: too long for Ray's Unix sockets (keep it under "
                           f"{MAX_SOCKET_DIR - 14} characters, e.g. /tmp/dfc)")
    state_path.mkdir(parents=True, exist_ok=True)
    token_path = state_path / TOKEN_FILE
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    base = port_base if port_base is not None else find_port_base(workers + 1)
    specs = [NodeSpec("head", head_cpus, 0, base)] + [
        NodeSpec(f"worker-{i}", cpus_per_worker, gpus_per_worker, base + i * PORTS_PER_NODE)
        for i in range(1, workers + 1)]
    state = ClusterState(secrets.token_hex(8), str(state_path), f"127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}",
                         str(token_path), object_store_mb)
    env = node_env(state.cluster_id, token_path)
    try:
        state.nodes.append(start_node(specs[0], base, state_path, env, object_store_mb))
        state.save()
        wait_for_gcs(state.nodes[0], base, timeout_s)
        state.nodes += [start_node(spec, base, state_path, env, object_store_mb) for spec in specs[1:]]
        state.save()
        wait_until_ready(state.nodes, timeout_s)
    except BaseException:
        down(state_path)
        raise
    state.save()
    return state


def restart_workers(state: ClusterState, timeout_s: float = 120.0) -> list[str]:
    """Start again, on their own ports, the worker nodes of a running cluster that stopped (a killed raylet
    takes its node down); returns their names."""
    head_port = int(state.address.rsplit(":", 1)[1])
    env = node_env(state.cluster_id, Path(state.token_path))
    restarted = []
    for position, node in enumerate(state.nodes):
        if node.name != "head" and node.process() is None:
            spec = NodeSpec(node.name, node.num_cpus, node.num_gpus, node.port_base)
            state.nodes[position] = start_node(spec, head_port, Path(state.state_dir), env, state.object_store_mb)
            restarted.append(state.nodes[position])
    state.save()
    wait_until_ready(restarted, timeout_s)
    state.save()
    return [n.name for n in restarted]


def cluster_processes(cluster_id: str) -> list[psutil.Process]:
    """Every live process of this user that carries this cluster's id (nodes, their agents, Ray workers)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.uids().real == os.getuid() and process.environ().get(CLUSTER_ID_ENV) == cluster_id:
                found.append(process)
        except psutil.Error:
            continue
    return found


def down(state_dir: str | Path | None = None, grace_s: float = 15.0) -> list[int]:
    """Stop the cluster's processes: SIGTERM to each node's `ray start` (workers first, so it shuts its
    children down), then SIGKILL to whatever of this cluster is left after `grace_s`. Returns the pids stopped."""
    state = ClusterState.load(state_dir or default_state_dir())
    stopped = {p.pid: p for p in cluster_processes(state.cluster_id)}
    for node in reversed(state.nodes):
        block = node.process()
        if block is not None:
            stopped.setdefault(block.pid, block)
            block.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(stopped.values()), timeout=grace_s)
    for process in alive + [p for p in cluster_processes(state.cluster_id) if p.pid not in stopped]:
        stopped.setdefault(process.pid, process)
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(list(stopped.values()), timeout=grace_s)
    (Path(state.state_dir) / STATE_FILE).unlink(missing_ok=True)
    return sorted(stopped)


def gcs_node_states(state: ClusterState) -> dict[str, str]:
    """What the cluster itself says of its nodes (ALIVE/DEAD), by node id, from the dashboard; empty when
    the dashboard does not answer."""
    token = Path(state.token_path).read_text().strip()
    request = urllib.request.Request(f"{state.dashboard}/nodes?view=summary",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            summary = json.load(response)["data"]["summary"]
    except (OSError, ValueError, KeyError):
        return {}
    return {node["raylet"].get("nodeId"): node["raylet"].get("state") for node in summary}


def node_status(node: Node, gcs_states: dict[str, str]) -> dict[str, Any]:
    block = node.process()
    raylet = node.raylet()
    state = "running" if block and raylet else "raylet down" if block else "stopped"
    return {"name": node.name, "cpus": node.num_cpus, "gpus": node.num_gpus, "state": state,
            "gcs": gcs_states.get(node.node_id, "?"), "pid": node.pid,
            "raylet_pid": raylet.pid if raylet else None, "log": node.log}


def status(state_dir: str | Path | None = None) -> dict[str, Any]:
    """Each node's processes (`state`) and what the GCS says of it (`gcs`: ALIVE, DEAD, or ? when unknown)."""
    state = ClusterState.load(state_dir or default_state_dir())
    gcs_states = gcs_node_states(state)
    return {"address": state.address, "dashboard": state.dashboard, "state_dir": state.state_dir,
            "nodes": [node_status(n, gcs_states) for n in state.nodes]}
