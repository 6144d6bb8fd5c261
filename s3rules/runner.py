"""The submit-and-watch loop: run a plan's pending jobs on an executor, in dependency order.

The runner never prints: it tells a reporter what happens. It trusts no executor's word alone: a
job counts as succeeded only when every declared output exists afterwards (checked for all the
jobs of one poll with one batched listing). A failed job's dependents are not run; with
``keep_going`` every independent branch still finishes. On an executor that takes the whole
graph (Batch), what was submitted keeps running if this process stops: Ctrl-C detaches.

With a ledger (``s3rules.ledger``), every job is recorded as started before the executor may
start it (again with its pid or Batch job id once known), and as finished only once its outputs
are confirmed; a crash in between leaves it "started", so the next plan calls it incomplete.

Output kinds: a ``directory()`` output counts once it holds a file; a ``temp()`` output goes once
every job of this run that reads it has succeeded (not with ``keep_temp``, and never after a
reader failed or did not run); ``log:`` files are the job's own: never set aside, checked nor
removed.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from .errors import StorageError
from .executors.base import DEPENDENCY, UPSTREAM_FAILED, Executor, Handle, Outcome
from .model import Job, directories_of
from .planner import INCOMPLETE, Plan
from .planner.temp import asked_for


@dataclass
class RunResult:
    succeeded: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, Outcome]] = field(default_factory=list)
    not_run: list[Job] = field(default_factory=list)
    blocked: list[Job] = field(default_factory=list)   # of not_run: those that need a failed job
    interrupted: bool = False
    detached: bool = False
    removed: list[str] = field(default_factory=list)   # outputs of failed jobs that were removed
    restored: list[str] = field(default_factory=list)  # previous outputs put back after a failed rerun
    temp_removed: list[str] = field(default_factory=list)   # temp() outputs removed once all readers succeeded

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run and not self.interrupted and not self.detached


class Schedule:
    """Which pending jobs may be submitted now, and what a failure rules out.

    With ``whole_graph`` every job is ready at once (the executor wires the dependencies);
    otherwise a job becomes ready when the last pending job it needs has succeeded.
    """

    def __init__(self, pending: dict[Job, str], whole_graph: bool):
        self.whole_graph = whole_graph
        self.waiting_on = {job: sum(1 for d in job.deps if d in pending) for job in pending}
        self.dependents: dict[Job, list[Job]] = {}
        for job in pending:
            for d in job.deps:
                if d in pending:
                    self.dependents.setdefault(d, []).append(job)
        self.ready = deque(pending if whole_graph else (j for j in pending if self.waiting_on[j] == 0))
        self.blocked: set[Job] = set()

    def next(self) -> Job | None:
        """The next ready job that nothing failed for, or None."""
        while self.ready:
            job = self.ready.popleft()
            if job not in self.blocked:
                return job
        return None

    def succeeded(self, job: Job) -> None:
        for child in self.dependents.get(job, ()):
            self.waiting_on[child] -= 1
            if self.waiting_on[child] == 0 and not self.whole_graph:
                self.ready.append(child)

    def block_below(self, job: Job) -> list[Job]:
        """Mark everything that needs ``job`` as never to run; return the jobs newly blocked."""
        stack = list(self.dependents.get(job, ()))
        newly = []
        while stack:
            child = stack.pop()
            if child not in self.blocked:
                self.blocked.add(child)
                newly.append(child)
                stack.extend(self.dependents.get(child, ()))
        return newly


class TempFiles:
    """The temp() outputs this run's pending jobs read, and which of those readers are still to
    succeed: a temp output is done with once none is left. One that no pending job reads goes as
    soon as its job has made it, unless a target names it (``asked``): as in Snakemake, a
    temp file nothing needs is not kept."""

    def __init__(self, pending: Iterable[Job], asked: set[str] = frozenset()):
        self.readers: dict[str, set[Job]] = {}
        self.directories: set[str] = set()
        self.asked = asked   # paths the targets name: never removed
        for job in pending:
            inputs: set[str] | None = None   # made once per job, for an aggregate reading thousands
            for dep in job.deps:
                if not dep.rule.temp:
                    continue
                inputs = set(job.inputs) if inputs is None else inputs
                for path in dep.temp_outputs():
                    if path in inputs:
                        self.readers.setdefault(path, set()).add(job)
                        if path in dep.directory_outputs():
                            self.directories.add(path)
        self.read = set(self.readers)   # every temp output some pending job reads

    def unread(self, job: Job) -> list[str]:
        """``job`` succeeded: its temp outputs that no pending job reads and no target names."""
        if not job.rule.temp:
            return []
        out = [p for p in job.temp_outputs() if p not in self.read and p not in self.asked]
        self.directories.update(p for p in out if p in job.directory_outputs())
        return out

    def read_by(self, job: Job) -> list[str]:
        """``job`` succeeded: the temp outputs it was the last reader of."""
        done = []
        for path in job.inputs:
            readers = self.readers.get(path)
            if readers is not None:
                readers.discard(job)
                if not readers:
                    del self.readers[path]
                    done.append(path)
        return done


class Runner:
    def __init__(self, plan: Plan, executor: Executor, storage, reporter, keep_going: bool = False,
                 poll_interval: float = 0.2, detach: bool = False, ledger=None,
                 attached: dict[Job, str] | None = None, keep_temp: bool = False):
        self.plan, self.executor, self.storage, self.reporter = plan, executor, storage, reporter
        # jobs already submitted with their dependencies keep going anyway: watch them finish
        self.keep_going = keep_going or executor.submits_graph
        self.poll_interval = poll_interval
        self.detach = detach and executor.submits_graph
        self.schedule = Schedule(plan.pending, executor.submits_graph)
        self.handles: dict[Job, Handle] = {}
        self.aside: dict[Job, list[tuple[str, str]]] = {}   # outputs kept safe while their job reruns
        self.active: set[Job] = set()
        self.result = RunResult()
        self.ledger = ledger
        self.attached = attached or {}   # job -> the id of the job an earlier run left in flight
        # the records the pending jobs had, put back when a failed rerun leaves their outputs as they were
        self.previous = ledger.lookup(plan.pending) if ledger is not None else {}
        self.unplaced: list[Job] = []    # submitted, their pid or job id not yet recorded
        self._recorded: set[Job] = set()  # recorded as started
        self._ended: set[Job] = set()     # recorded as finished or failed (or given back their old record)
        self.where: dict[Job, str] = {}   # "local:<pid>", "batch:<job id>"
        uses_temp = not keep_temp and any(rule.temp for rule in plan.workflow.rules.values())
        # readers held back by a checkpoint read their temp inputs in a later round: keep them
        readers = [*plan.pending, *(job for jobs in plan.waiting.values() for job in jobs)]
        self.temp = TempFiles(readers, asked_for(plan.targets)) if uses_temp else None

    def run(self) -> RunResult:
        self.reporter.start(self.plan)
        try:
            self._loop()
            self._close_blocked()
        except KeyboardInterrupt:
            self.result.interrupted = True
            self.result.detached = self.executor.submits_graph
            if self.ledger is not None:   # the ids answered before Ctrl-C: the next run finds those jobs
                self._take_resubmitted()
                self._record_placed()
            self._cancel(report=True)
        except BaseException:
            self._cancel(report=False)   # never leave local jobs running unwatched
            raise
        finally:
            self.executor.close()
            if self.ledger is not None:
                self.ledger.close()
        settled = set(self.result.succeeded) | {j for j, _ in self.result.failed}
        self.result.not_run = [j for j in self.plan.pending if j not in settled]
        self.result.blocked = [j for j in self.result.not_run if j in self.schedule.blocked]
        self.reporter.close(self.result)
        return self.result

    def _close_blocked(self) -> None:
        """Jobs recorded as started that never ran because a job they need failed, and whose end
        the executor never reported (held to go again when that job failed): their record says
        so, or they would look interrupted. A detached run's jobs run on: their records stay."""
        if self.ledger is None or self.result.detached:
            return
        left = [job for job in self._recorded - self._ended if job in self.schedule.blocked]
        if left:
            self.ledger.failed([(job, {"where": self.where.get(job, ""), "reason": UPSTREAM_FAILED,
                                       "cause": DEPENDENCY, "upstream_failed": True}) for job in left])
            self._ended.update(left)

    def _loop(self) -> None:
        stopping = False
        while self.schedule.ready or self.active:
            while not stopping and self.executor.capacity() > 0:
                job = self.schedule.next()
                if job is None:
                    break
                self._submit(job)
            self._record_started()
            self.executor.flush()
            self._record_placed()
            if self.detach:
                self.result.detached = True
                return
            if stopping and not self.active:
                return
            if not self.active:
                continue
            finished = self.executor.poll(self.poll_interval)
            self._take_resubmitted()
            self._record_placed()
            for job, outcome in self.settle(finished):
                if outcome.ok:
                    self.schedule.succeeded(job)
                elif not self.keep_going and not outcome.upstream_failed:
                    stopping = True
            states = self.executor.states()
            if states:
                self.reporter.states(states)

    def _submit(self, job: Job) -> None:
        """Start ``job``; an output it is about to rewrite is set aside until the new one is complete."""
        for out in job.outputs:
            self.storage.make_parent_dirs(out)
            aside = self.storage.set_aside(out)
            if aside:
                self.aside.setdefault(job, []).append((out, aside))
        for log in job.logs:   # the job's own: made room for, never set aside
            self.storage.make_parent_dirs(log)
        for path in job.directory_outputs():   # made empty, as Snakemake does: {output}/x works
            self.storage.make_parent_dirs(path, itself=True)
        upstream = [self.handles[d] for d in job.deps if d in self.handles]
        job_id = self.attached.get(job)
        handle = self.executor.attach(job, job_id, upstream) if job_id else None
        if handle is not None:   # already recorded as started there
            self.where[job] = f"{self.executor.name}:{job_id}"
        else:
            if self.ledger is not None:
                self.unplaced.append(job)
                if not self.executor.submits_graph:   # it starts now: recorded first
                    self._record_started()
            handle = self.executor.submit(job, upstream)
        self.handles[job] = handle
        self.active.add(job)
        self.reporter.submitted(job)
        if not self.executor.submits_graph:
            self._record_placed()

    def _take_resubmitted(self) -> None:
        """Jobs the executor sent again: their new id is recorded once they have one."""
        again = self.executor.resubmitted()
        if again and self.ledger is not None:
            known = set(self.unplaced)
            self.unplaced += [j for j in again if j not in known]

    def _record_started(self) -> None:
        """Jobs about to start are recorded as started, all of them in one write."""
        fresh = [j for j in self.unplaced if j not in self._recorded]
        if fresh:
            self.ledger.started(fresh)
            self._recorded.update(fresh)

    def _record_placed(self) -> None:
        """Jobs that got a pid or a Batch job id: recorded again with it (status, cancel and the
        next run look them up there)."""
        if not self.unplaced:
            return
        placed, waiting = {}, []
        for job in self.unplaced:
            handle = self.handles.get(job)
            if handle is not None and handle.job_id:
                placed[job] = f"{self.executor.name}:{handle.job_id}"
            else:
                waiting.append(job)
        self.unplaced = waiting
        if placed:
            self.where.update(placed)
            self.ledger.started(list(placed), placed)

    def _cancel(self, report: bool) -> None:
        """Ctrl-C or an error: the executor stops what it may stop (Batch: nothing); what they
        were rewriting gets its previous outputs back."""
        for job, outcome in self.executor.cancel():
            self.active.discard(job)
            self.result.removed += self.discard_partial_outputs(job)
            self._record_failed(job, outcome)
            if report:
                self.result.failed.append((job, outcome))
                self.reporter.failed(job, outcome)

    def settle(self, finished: list[tuple[Job, Outcome]]) -> list[tuple[Job, Outcome]]:
        """Record finished jobs; confirm the successful ones' outputs with one batched check."""
        ok = [job for job, outcome in finished if outcome.ok]
        claimed = [o for job in ok for o in job.outputs]
        present: dict[str, float] = {}
        if claimed:
            self.storage.invalidate(claimed)
            present = self.storage.stat_many(claimed, directories=directories_of(ok))
        done: list[tuple[Job, Outcome]] = []
        for job, outcome in finished:
            self.active.discard(job)
            if job in self.schedule.blocked:
                # something it needs failed (maybe after Batch had started it): it never counts as
                # done nor as a failure of its own; whatever it wrote is not trusted
                self.result.removed += self.discard_partial_outputs(job)
                self._record_failed(job, outcome)
                continue
            if outcome.ok:
                self._check_outputs(job, outcome, present)
            if outcome.ok:
                done.append((job, outcome))
            elif outcome.upstream_failed:
                self.block(job)
            else:
                self.fail(job, outcome)
        if done and self.ledger is not None:   # recorded before the old outputs go
            self.ledger.finished([j for j, _ in done], present, {j: self._details(j, o) for j, o in done})
            self._ended.update(j for j, _ in done)
        for job, outcome in done:
            dirs = directories_of([job])
            for out, aside in self.aside.pop(job, ()):   # replaced: the previous outputs go
                self.storage.remove(aside, directory=out in dirs)
            self.result.succeeded.append(job)
            self.reporter.finished(job, outcome)
            self._remove_temp(job)
        return finished

    @staticmethod
    def _check_outputs(job: Job, outcome: Outcome, present) -> None:
        """A job that says it succeeded but left an output missing has failed."""
        missing = [o for o in job.outputs if o not in present]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            empty = " (a directory() output counts once it holds a file)" if directories_of([job]) & set(missing) \
                else ""
            outcome.ok = False
            outcome.reason = f"finished without writing its output{'s' if len(missing) > 1 else ''} {shown}{empty}"

    def _remove_temp(self, job: Job) -> None:
        """The temp() outputs ``job`` was the last reader of go; one that cannot is only reported
        (every job that needed it has what it needed)."""
        if self.temp is None:
            return
        for path in self.temp.read_by(job) + self.temp.unread(job):
            try:
                self.storage.remove(path, directory=path in self.temp.directories)
            except StorageError as exc:
                self.reporter.message(f"s3rules: note: temp output not removed: {exc}")
                continue
            self.result.temp_removed.append(path)

    def _details(self, job: Job, outcome: Outcome) -> dict:
        """What a record says of how a job ran, beside its identity."""
        where = self.where.get(job) or (f"{self.executor.name}:{outcome.external_id}" if outcome.external_id else "")
        return {"where": where, "exit": outcome.exit_code, "reason": outcome.reason, "cause": outcome.cause,
                "started": outcome.started_at, "usage": outcome.usage,
                "log": outcome.log_path, **({"upstream_failed": True} if outcome.upstream_failed else {}),
                **({"log_tail": outcome.log_tail[-15:]} if not outcome.ok and outcome.log_tail else {})}

    def _record_failed(self, job: Job, outcome: Outcome) -> None:
        """A failed job's record says so; but when every output is back as it was before the run
        (put back, or never touched) and was trusted then (the job ran because it was forced or
        changed, not because it was incomplete), so is the record those outputs had."""
        if self.ledger is None:
            return
        self._ended.add(job)
        previous = self.previous.get(job)
        if self.plan.pending.get(job) != INCOMPLETE and (previous is None or not previous.open):
            before, restored = self.plan.mtimes, set(self.result.restored)
            now = self.storage.stat_many(job.outputs, directories=directories_of([job]))
            if len(now) == len(job.outputs) and all(before.get(o) == t or o in restored for o, t in now.items()):
                self.ledger.restore(job, previous, self._details(job, outcome))
                return
        self.ledger.failed([(job, self._details(job, outcome))])

    def fail(self, job: Job, outcome: Outcome) -> None:
        self.result.removed += self.discard_partial_outputs(job)
        self._record_failed(job, outcome)
        self.result.failed.append((job, outcome))
        self.reporter.failed(job, outcome)
        self.block(job)

    def block(self, job: Job) -> None:
        """Nothing below a failed job runs: the executor drops or stops what it already has."""
        submitted = [j for j in self.schedule.block_below(job) if j in self.active]
        if submitted:
            self.executor.abandon(submitted)

    def discard_partial_outputs(self, job: Job) -> list[str]:
        """A failed job must never look done: if it wrote every output, remove what it wrote
        (a directory with everything in it; its logs stay).

        "Wrote" means the mtime differs from the one the plan saw before the run, so an older
        good copy the job never touched stays. If some output is missing, the job is already
        pending as incomplete, so nothing is removed. Outputs set aside before the job ran are
        put back first, over whatever the job left there.
        """
        restored = set()
        for out, aside in self.aside.pop(job, ()):
            self.storage.put_back(out, aside)
            restored.add(out)
            self.result.restored.append(out)
        self.storage.invalidate(job.outputs)
        dirs = directories_of([job])
        mtimes = self.storage.stat_many(job.outputs, directories=dirs)
        if len(mtimes) < len(job.outputs):
            return []
        before = self.plan.mtimes
        written = [o for o in job.outputs if mtimes[o] != before.get(o) and o not in restored]
        for path in written:
            self.storage.remove(path, directory=path in dirs)
        self.storage.invalidate(written)
        return written
