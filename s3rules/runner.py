"""The submit-and-watch loop: run a plan's pending jobs on an executor, in dependency order.

The runner never prints: it tells a reporter what happens. It trusts no executor's word alone: a
job counts as succeeded only when every declared output exists afterwards. A failed job's
dependents are not run; with ``keep_going`` every independent branch still finishes.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .executors.base import Executor, Outcome
from .model import Job
from .planner import Plan


@dataclass
class RunResult:
    succeeded: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, Outcome]] = field(default_factory=list)
    not_run: list[Job] = field(default_factory=list)
    interrupted: bool = False
    removed: list[str] = field(default_factory=list)   # outputs of failed jobs that were removed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run and not self.interrupted


class Runner:
    def __init__(self, plan: Plan, executor: Executor, storage, reporter, keep_going: bool = False,
                 poll_interval: float = 0.2):
        self.plan, self.executor, self.storage, self.reporter = plan, executor, storage, reporter
        self.keep_going = keep_going
        self.poll_interval = poll_interval
        self.result = RunResult()

    def run(self) -> RunResult:
        pending = self.plan.pending
        waiting_on = {job: sum(1 for d in job.deps if d in pending) for job in pending}
        dependents: dict[Job, list[Job]] = {}
        for job in pending:
            for d in job.deps:
                if d in pending:
                    dependents.setdefault(d, []).append(job)
        graph_mode = self.executor.submits_graph
        ready = deque(pending if graph_mode else (j for j in pending if waiting_on[j] == 0))
        handles: dict[Job, object] = {}
        active: set[Job] = set()
        blocked: set[Job] = set()
        stopping = False
        self.reporter.start(self.plan)
        try:
            while ready or active:
                while ready and not stopping and self.executor.capacity() > 0:
                    job = ready.popleft()
                    if job in blocked:
                        continue
                    for out in job.outputs:
                        self.storage.make_parent_dirs(out)
                    handles[job] = self.executor.submit(job, [handles[d] for d in job.deps if d in handles])
                    active.add(job)
                    self.reporter.submitted(job)
                if stopping and not active:
                    break
                if not active:
                    continue
                for job, outcome in self.executor.poll(self.poll_interval):
                    active.discard(job)
                    if outcome.ok:
                        outcome = self.confirm_outputs(job, outcome)
                    if outcome.ok:
                        self.result.succeeded.append(job)
                        self.reporter.finished(job, outcome)
                        for child in dependents.get(job, ()):
                            waiting_on[child] -= 1
                            if waiting_on[child] == 0 and not graph_mode:
                                ready.append(child)
                        continue
                    self.fail(job, outcome, dependents, blocked)
                    if not self.keep_going:
                        stopping = True
        except KeyboardInterrupt:
            self.result.interrupted = True
            if not graph_mode:
                for job, outcome in self.executor.cancel():
                    active.discard(job)
                    self.result.removed += self.discard_partial_outputs(job)
                    self.result.failed.append((job, outcome))
                    self.reporter.failed(job, outcome)
        finally:
            self.executor.close()
        done = set(self.result.succeeded) | {j for j, _ in self.result.failed}
        self.result.not_run = [j for j in pending if j not in done]
        self.reporter.close(self.result)
        return self.result

    def confirm_outputs(self, job: Job, outcome: Outcome) -> Outcome:
        """A job that exited 0 but left an output unwritten has failed."""
        self.storage.invalidate(job.outputs)
        present = self.storage.stat_many(job.outputs)
        missing = [o for o in job.outputs if o not in present]
        if not missing:
            return outcome
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        outcome.ok = False
        outcome.reason = f"finished without writing its output{'s' if len(missing) > 1 else ''} {shown}"
        return outcome

    def fail(self, job: Job, outcome: Outcome, dependents, blocked: set[Job]) -> None:
        self.result.removed += self.discard_partial_outputs(job)
        self.result.failed.append((job, outcome))
        self.reporter.failed(job, outcome)
        stack = list(dependents.get(job, ()))
        while stack:
            child = stack.pop()
            if child not in blocked:
                blocked.add(child)
                stack.extend(dependents.get(child, ()))

    def discard_partial_outputs(self, job: Job) -> list[str]:
        """A failed job must never look done: if it wrote every output, remove what it wrote.

        "Wrote" means the mtime differs from the one the plan saw before the run, so an older
        good copy the job never touched stays. If some output is missing, the job is already
        pending as incomplete, so nothing is removed.
        """
        self.storage.invalidate(job.outputs)
        mtimes = self.storage.stat_many(job.outputs)
        if len(mtimes) < len(job.outputs):
            return []
        before = self.plan.mtimes
        written = [o for o in job.outputs if mtimes[o] != before.get(o)]
        for path in written:
            self.storage.remove(path)
        self.storage.invalidate(written)
        return written
