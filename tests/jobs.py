"""Small real jobs for the runner tests: numbers in, text samples out, with switchable faults.

Faults are driven by files outside the job's config (so a rerun after removing them matches the
first run's plan): a `crash-once` flag makes one item kill its Ray worker the first time only; a
`poison` file makes one item kill its worker on every attempt, so the task fails for good.
Loaded by Ray workers by value (this module is not installed).
"""

import os
import sys
import time

import ray.cloudpickle

from pipelines.job import InputError, Job, Plan, SideRecord, chunk_into_tasks

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class NumbersJob(Job):
    name = "numbers"
    side_streams = ("squares",)

    def __init__(self, count: int, per_task: int, fault_dir: str, crash_item: int = -1, bad_every: int = 0,
                 delay: float = 0.0):
        self.count = count
        self.per_task = per_task
        self.fault_dir = fault_dir
        self.crash_item = crash_item
        self.bad_every = bad_every
        self.delay = delay

    def config(self):
        return {"count": self.count, "per_task": self.per_task, "bad_every": self.bad_every}

    def plan(self):
        return Plan(chunk_into_tasks(list(range(self.count)), self.per_task))

    def process(self, item, task_index):
        time.sleep(self.delay)
        if item == self.crash_item:
            flag = os.path.join(self.fault_dir, "crash-once")
            if os.path.exists(os.path.join(self.fault_dir, "poison")):
                os._exit(3)
            if not os.path.exists(flag):
                open(flag, "w").close()
                os._exit(3)
        if self.bad_every and item % self.bad_every == 0:
            raise InputError(f"number {item}", "check", "divisible by bad_every")
        yield {"__key__": f"num-{item:06d}", "txt": str(item), "json": {"family": "number", "value": item}}
        yield SideRecord("squares", {"value": item, "square": item * item})
