"""`docforge submit`: run a command (a `docforge build ...`, a training launch) as a Ray job on a cluster.

Goes through the Ray Jobs SDK (`JobSubmissionClient`) at the head's dashboard address: uploads the
working dir if one is given, sets the runtime env, streams the job's logs here while it runs, and
returns the entrypoint's own exit code (so scripts and CI see a failed build as a failure).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

STOPPED_EXIT = 130  # a job stopped by `ray job stop` (or Ctrl-C in its own driver) exits as if interrupted


class SubmitError(RuntimeError):
    """The job could not be submitted, or it ended without running its entrypoint."""


@dataclass
class Submission:
    command: list[str]
    address: str | None = None  # the dashboard, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS / RAY_ADDRESS)
    working_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    pip: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    submission_id: str | None = None
    entrypoint_num_cpus: float | None = None

    def entrypoint(self) -> str:
        if not self.command:
            raise SubmitError("nothing to run: give the command after `--`, e.g. `-- docforge build ocr ...`")
        return shlex.join(self.command)

    def runtime_env(self) -> dict[str, Any]:
        runtime_env: dict[str, Any] = {}
        if self.working_dir:
            if not os.path.isdir(self.working_dir):
                raise SubmitError(f"--working-dir {self.working_dir}: no such folder")
            runtime_env["working_dir"] = self.working_dir
            if self.excludes:
                runtime_env["excludes"] = self.excludes
        if self.env:
            runtime_env["env_vars"] = dict(self.env)
        if self.pip:
            runtime_env["pip"] = list(self.pip)
        return runtime_env


def dashboard_address(address: str | None) -> str:
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not address:
        raise SubmitError("no cluster given: pass --address http://HEAD:8265 or set RAY_API_SERVER_ADDRESS")
    return address


def exit_code_of(info: Any) -> int:
    """The job's exit status: its driver's own code when it ran, 130 when stopped, 1 when it never started."""
    from ray.job_submission import JobStatus

    if info.status == JobStatus.SUCCEEDED:
        return 0
    if info.status == JobStatus.STOPPED:
        return STOPPED_EXIT
    if info.driver_exit_code is not None:
        return int(info.driver_exit_code)
    raise SubmitError(f"job {info.submission_id} {info.status.value} before its entrypoint ran: {info.message}")


async def stream_logs(client: Any, submission_id: str, out: TextIO) -> None:
    async for chunk in client.tail_job_logs(submission_id):
        out.write(chunk)
        out.flush()


def submit(submission: Submission, follow: bool = True, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Submit the job; with `follow`, stream its logs to `out` and return its exit code (else 0 once accepted)."""
    from ray.job_submission import JobSubmissionClient

    entrypoint, runtime_env = submission.entrypoint(), submission.runtime_env()
    address = dashboard_address(submission.address)
    try:
        client = JobSubmissionClient(address)
        submission_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env,
                                          submission_id=submission.submission_id,
                                          entrypoint_num_cpus=submission.entrypoint_num_cpus)
    except (ConnectionError, RuntimeError, ValueError) as exn:
        raise SubmitError(f"{address}: {exn}") from exn
    err.write(f"submitted {submission_id} to {address}: {entrypoint}\n")
    if not follow:
        return 0
    try:
        asyncio.run(stream_logs(client, submission_id, out))
    except KeyboardInterrupt:
        err.write(f"stopped following; job {submission_id} keeps running "
                  f"(`ray job stop {submission_id} --address {address}` stops it)\n")
        return STOPPED_EXIT
    info = client.get_job_info(submission_id)
    deadline = time.monotonic() + 30
    while not info.status.is_terminal() and time.monotonic() < deadline:  # the log stream can close first
        time.sleep(0.2)
        info = client.get_job_info(submission_id)
    code = exit_code_of(info)
    err.write(f"job {submission_id}: {info.status.value} (exit status {code})\n")
    return code
