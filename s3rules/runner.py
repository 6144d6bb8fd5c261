"""The submit-and-watch loop: run a plan's pending jobs on an executor, in dependency order.

The runner never prints: it tells a reporter what happens. It trusts no executor's word alone: a
job counts as succeeded only when every declared output exists afterwards (checked for all the
jobs of one poll with one batched listing). A failed job's dependents are not run; with
``keep_going`` every independent branch still finishes. On an executor that takes the whole
graph (Batch), what was submitted keeps running if this process stops: Ctrl-C detaches.
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
    detached: bool = False
    removed: list[str] = field(default_factory=list)   # outputs of failed jobs that were removed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run and not self.interrupted and not self.detached


class Runner:
    def __init__(self, plan: Plan, executor: Executor, storage, reporter, keep_going: bool = False,
                 poll_interval: float = 0.2, detach: bool = False):
        self.plan, self.executor, self.storage, self.reporter = plan, executor, storage, reporter
        self.keep_going = keep_going
        self.poll_interval = poll_interval
        self.detach = detach
        self.result = RunResult()

    def run(self) -> RunResult:
        pending = self.plan.pending
        graph_mode = self.executor.submits_graph
        waiting_on = {job: sum(1 for d in job.deps if d in pending) for job in pending}
        dependents: dict[Job, list[Job]] = {}
        for job in pending:
            for d in job.deps:
                if d in pending:
                    dependents.setdefault(d, []).append(job)
        ready = deque(pending if graph_mode else (j for j in pending if waiting_on[j] == 0))
        handles: dict[Job, object] = {}
        self.active: set[Job] = set()
        self.blocked: set[Job] = set()
        self.dependents = dependents
        stopping = False
        if hasattr(self.executor, "on_states"):
            self.executor.on_states = self.reporter.states
        self.reporter.start(self.plan)
        try:
            while ready or self.active:
                while ready and not stopping and self.executor.capacity() > 0:
                    job = ready.popleft()
                    if job in self.blocked:
                        continue
                    for out in job.outputs:
                        self.storage.make_parent_dirs(out)
                    handles[job] = self.executor.submit(job, [handles[d] for d in job.deps if d in handles])
                    self.active.add(job)
                    self.reporter.submitted(job)
                self.executor.flush()
                if graph_mode and self.detach:
                    self.result.detached = True
                    break
                if stopping and not self.active:
                    break
                if not self.active:
                    continue
                finished = self.executor.poll(self.poll_interval)
                for job, outcome in self.settle(finished):
                    if outcome.ok:
                        for child in dependents.get(job, ()):
                            waiting_on[child] -= 1
                            if waiting_on[child] == 0 and not graph_mode:
                                ready.append(child)
                    elif not self.keep_going and not graph_mode and not outcome.upstream_failed:
                        stopping = True   # on Batch the rest is already submitted: watch it finish
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                if not graph_mode:   # never leave local jobs running unwatched
                    self.executor.cancel()
                raise
            self.result.interrupted = True
            if graph_mode:
                self.result.detached = True
            else:
                for job, outcome in self.executor.cancel():
                    self.active.discard(job)
                    self.result.removed += self.discard_partial_outputs(job)
                    self.result.failed.append((job, outcome))
                    self.reporter.failed(job, outcome)
        finally:
            self.executor.close()
        settled = set(self.result.succeeded) | {j for j, _ in self.result.failed}
        self.result.not_run = [j for j in pending if j not in settled]
        self.reporter.close(self.result)
        return self.result

    def settle(self, finished: list[tuple[Job, Outcome]]) -> list[tuple[Job, Outcome]]:
        """Record finished jobs; confirm the successful ones' outputs with one batched check."""
        claimed = [o for job, outcome in finished if outcome.ok for o in job.outputs]
        present: dict[str, float] = {}
        if claimed:
            self.storage.invalidate(claimed)
            present = self.storage.stat_many(claimed)
        for job, outcome in finished:
            self.active.discard(job)
            if job in self.blocked:
                # something it needs failed (maybe after Batch had started it): it never counts as
                # done nor as a failure of its own; whatever it wrote is not trusted
                self.result.removed += self.discard_partial_outputs(job)
                continue
            if outcome.ok:
                missing = [o for o in job.outputs if o not in present]
                if missing:
                    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                    outcome.ok = False
                    outcome.reason = (f"finished without writing its output{'s' if len(missing) > 1 else ''} "
                                      f"{shown}")
            if outcome.ok:
                self.result.succeeded.append(job)
                self.reporter.finished(job, outcome)
            elif outcome.upstream_failed:
                self.block(job)
            else:
                self.fail(job, outcome)
        return finished

    def fail(self, job: Job, outcome: Outcome) -> None:
        self.result.removed += self.discard_partial_outputs(job)
        self.result.failed.append((job, outcome))
        self.reporter.failed(job, outcome)
        self.block(job)

    def block(self, job: Job) -> None:
        """Nothing below a failed job runs: the executor drops or stops what it already has."""
        stack = list(self.dependents.get(job, ()))
        newly = []
        while stack:
            child = stack.pop()
            if child not in self.blocked:
                self.blocked.add(child)
                newly.append(child)
                stack.extend(self.dependents.get(child, ()))
        submitted = [j for j in newly if j in self.active]
        if submitted:
            self.executor.abandon(submitted)

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
