"""Run jobs on AWS Batch: the whole pending graph goes up front, wired with ``dependsOn``.

So the workflow carries on when the laptop closes. The verbs are here; the pieces are in
``s3rules.aws``: ``grouping`` decides what goes now and as which arrays, the ``Submitter``
reuses what is in flight and submits the rest once, under each queue's lease, and ``Watch``
turns Batch's answers into outcomes. A job still waiting on more than 20 unfinished jobs or
arrays is held here and submitted as soon as no more than 20 remain unfinished (finished ones
need no ``dependsOn``), at the cost of this process staying attached until then; ``s3rules
run`` again re-attaches.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import replace

from ..aws.definitions import definition_for
from ..aws.arrays import OVERRIDES_LIMIT, ArrayJob, child_index, dependency, fits_inline, stage
from ..aws.failures import DEPENDENCY, OUT_OF_MEMORY, more_memory
from ..aws.grouping import BatchHandle, PackHandle, hold, may_submit, next_wave, pack, units
from ..aws.jobspec import MAX_DEPENDS_ON, job_spec
from ..aws.naming import batch_id
from ..aws.policy import LEASE_TTL, POLL_LIMIT, Backoff
from ..aws.submitter import Submitter
from ..aws.watch import Watch
from ..errors import AwsSetupError, PlanError
from ..model import Job, directories_of
from .base import UPSTREAM_FAILED, Executor, Handle, Outcome, RunOptions


def _same_queue(described: str, queue: str | None) -> bool:
    """DescribeJobs names a job's queue by its ARN; the Batchfile, by its ARN or its name."""
    return bool(queue) and (described == queue or described.endswith(f":job-queue/{queue}"))


class BatchExecutor(Executor):
    submits_graph = True
    name = "batch"

    def __init__(self, submitter: Submitter, poll_start: float = 2.0, poll_limit: float = POLL_LIMIT,
                 storage=None, lease_ttl: float = LEASE_TTL, say=None, planned_mtimes: dict | None = None):
        self.submitter = submitter
        self.service = submitter.service
        self.storage = storage
        self.planned_mtimes = planned_mtimes or {}   # what planning saw, to tell "written since"
        self.lease_ttl = lease_ttl
        self.say = say or (lambda text: None)
        self.backoff = Backoff(poll_start, poll_limit)
        self.watch = Watch(self.service)
        self.buffer: list[BatchHandle] = []
        self.waiting: dict[BatchHandle, None] = {}    # held back, in order (a set that keeps it)
        self.finished: list[tuple[Job, Outcome]] = []
        self._again: list[Job] = []                   # held to go again since ``resubmitted``
        self._news = False

    @classmethod
    def create(cls, options: RunOptions, storage) -> "BatchExecutor":
        from ..aws.service import BatchService
        return cls(Submitter(BatchService()), poll_start=options.poll_interval,
                   poll_limit=max(POLL_LIMIT, options.poll_interval), storage=storage, say=options.say,
                   planned_mtimes=options.planned_mtimes)

    @classmethod
    def settle(cls, placed: dict[Job, str]) -> dict[Job, str]:
        """Batch's word on jobs a detached or killed run left (DescribeJobs, 100 ids a call;
        an array child is described by its ``parent:index`` id)."""
        from ..aws.service import BatchService
        found = BatchService().describe(set(placed.values()))
        states = {}
        for job, job_id in placed.items():
            desc = found.get(job_id, {})
            status, queue = desc.get("status"), str(desc.get("jobQueue", ""))
            if status in ("SUCCEEDED", "FAILED"):
                states[job] = status
            elif status and _same_queue(queue, job.settings.batch.queue):   # in flight elsewhere: not
                states[job] = "RUNNING"                                          # the same job (README)
        return states

    @classmethod
    def find(cls, jobs: list[Job]) -> dict[Job, str]:
        """Jobs by their identity name, newest first (ListJobs, any status): a job submitted just
        before its run stopped, and finished since, is found so and never paid for twice."""
        import os.path
        from ..aws.service import BatchService
        service = BatchService()
        groups: dict[tuple[str, str], dict[str, Job]] = {}   # (queue, rule) -> name -> job
        for job in jobs:
            spec = job_spec(job)
            groups.setdefault((spec.queue, job.rule.name), {})[spec.name] = job
        found = {}
        for (queue, _), named in groups.items():   # one listing per rule, by the names' common start
            prefix = os.path.commonprefix(list(named))
            for summary in service.jobs_named(queue, prefix, prefix=True):   # newest first
                job = named.get(summary.get("jobName", ""))
                if job is not None and job not in found:
                    found[job] = summary["jobId"]
        return found

    def check(self, jobs: list[Job]) -> None:
        """Before anything is submitted: every queue and job definition exists and is usable."""
        specs, images = set(), {}
        for job in jobs:
            spec = job_spec(job)  # local outputs, missing settings
            registered = definition_for(job.settings.batch, job.settings.gpus)
            if registered is None:
                specs.add((spec.queue, spec.job_definition))
            else:
                specs.add((spec.queue, None))
                images[registered.name] = registered
            if not any(o.startswith("s3://") for o in spec.outputs) and not fits_inline(spec):
                # too big for SubmitJob, and no bucket to stage it in: say so now, not after
                # half the graph went up
                raise PlanError(f"rule '{job.rule.name}': the command of {spec.label} is too long for "
                                f"SubmitJob ({OVERRIDES_LIMIT} characters of command and environment) and the "
                                "job writes nothing to S3 where s3rules could stage it; shorten the command")
        for queue, definition in sorted(specs, key=lambda pair: (pair[0], pair[1] or "")):
            self.service.check_queue(queue)
            if definition is not None:
                self.service.check_job_definition(definition)
        for registered in images.values():   # after the checks: a bad queue registers nothing
            self.service.ensure_job_definition(registered)
        for job in jobs:
            b = job.settings.batch
            if b.share is not None and not self.service.check_queue(b.queue).get("schedulingPolicyArn"):
                raise AwsSetupError(f"rule '{job.rule.name}' sets share: but queue {b.queue!r} has no "
                                    "scheduling policy; remove share:")

    def capacity(self) -> int:
        return 1 << 30

    def submit(self, job: Job, upstream: list[Handle]) -> Handle:
        """Collect; ``flush`` submits everything collected under one lease per queue."""
        handle = BatchHandle(job, job_spec(job), [h for h in upstream if isinstance(h, BatchHandle)])
        self.buffer.append(handle)
        return handle

    def attach(self, job: Job, job_id: str, upstream: list[Handle]) -> Handle:
        """A job a detached or killed run left in flight: watched by its id, never submitted again."""
        handle = BatchHandle(job, job_spec(job), [h for h in upstream if isinstance(h, BatchHandle)])
        self.watch.track(handle, job_id)
        return handle

    def flush(self) -> None:
        if self.buffer:
            handles, self.buffer = self.buffer, []
            self._submit_all(handles)

    def _submit_all(self, handles: list[BatchHandle], ready=None) -> None:
        """Under each queue's lease: drop what finished meanwhile, reuse what is in flight, then
        submit in waves (a job goes once everything it waits on has a job id), each wave's jobs
        of one rule and one set of upstream arrays together as array jobs.

        ``ready`` picks the handles that may go now (default: all); the others wait again.
        """
        buckets: dict[str, set[str]] = {}
        for h in handles:
            buckets.setdefault(h.spec.queue, set()).update(
                o.split("/", 3)[2] for o in h.spec.outputs if o.startswith("s3://"))
        with self.submitter.leased(buckets, ttl=self.lease_ttl, say=self.say):
            todo = [h for h in handles if ready is None or ready(h)]
            if ready is not None and len(todo) < len(handles):   # the others wait again
                going = set(todo)
                self.waiting.update((h, None) for h in handles if h not in going)
            # In flight first, then finished: a job that ends between the two looks is found by
            # one of them. The other order left a window where it was in neither (paid twice).
            for h in todo:   # (a job held to go again may still be listed as it dies: never reused)
                found = self.submitter.reuse(h.spec) if h.status == "WAITING" and not h.again else None
                if found is not None:
                    self.watch.track(h, found)
            self._skip_done_meanwhile([h for h in todo if h.status == "WAITING" and not h.again])
            todo = [h for h in todo if h.status == "WAITING"]
            while todo:
                wave = next_wave(todo)
                if not wave:
                    break
                self._submit_wave(wave)
                done = set(wave)
                todo = [h for h in todo if h not in done]
            for h in todo:
                self.waiting[h] = None

    def _submit_wave(self, wave: list[BatchHandle]) -> None:
        groups = units(pack(wave, self.submitter.homes), self.submitter.homes)
        self.submitter.expect([array or group[0].spec for group, array in groups])
        for group, array in groups:
            if array is None:
                self._submit_one(group[0])
            else:
                self._submit_array(group, array)

    def _not_run(self, handle: BatchHandle, why: str = UPSTREAM_FAILED) -> None:
        """Report ``handle`` failed for a job it needs (it never runs, or is stopped before it does)."""
        handle.status = "FAILED"
        self.finished.append((handle.job, Outcome(False, reason=why, external_id=handle.job_id, upstream_failed=True,
                                                  cause=DEPENDENCY)))

    def _submit_one(self, handle: BatchHandle) -> None:
        if handle.upstream_failed():
            self._not_run(handle)
        elif not may_submit(handle, self.watch.failed_units):
            self._wait(handle)
        else:
            open_ids = list(dict.fromkeys(u.unit for u in handle.open_upstream()))
            settings = handle.job.settings
            home = self.submitter.homes.get(handle.spec.queue)
            command, files = stage(handle.spec, home, settings.batch.fetch_command,
                                   handle.spec.shell) if home else (None, {})
            if isinstance(handle, PackHandle):
                files = {**handle.files, **files}
            job_id, _ = self.submitter.submit(handle.spec, open_ids, command=command, files=files,
                                              reuse=not handle.again)
            self._track(handle, job_id, tuple(open_ids))

    def _track(self, handle: BatchHandle, job_id: str, waits_on: tuple[str, ...]) -> None:
        """Watch a submitted job; a pack's members each as ``<job id>#<k>``."""
        for k, h in enumerate(handle.members if isinstance(handle, PackHandle) else [handle]):
            h.waits_on = waits_on
            self.watch.track(h, f"{job_id}#{k}" if isinstance(handle, PackHandle) else job_id)

    def _wait(self, handle: BatchHandle) -> None:
        """Held back for now (a pack's members, to be packed again when they go)."""
        for h in handle.members if isinstance(handle, PackHandle) else [handle]:
            self.waiting[h] = None

    def _submit_array(self, group: list[BatchHandle], array: ArrayJob) -> None:
        upstream = [[child_index(u.job_id) for u in h.open_upstream()] for h in group]
        depends_on = dependency(upstream, self.submitter.sizes)
        if len(depends_on) > MAX_DEPENDS_ON:
            for h in group:
                self._wait(h)
            return
        parent = self.submitter.submit_array(array, depends_on)
        whole = tuple(d["jobId"] for d in depends_on if d.get("type") != "N_TO_N")
        for i, h in enumerate(group):
            self._track(h, f"{parent}:{i}", whole)

    def _skip_done_meanwhile(self, handles: list[BatchHandle]) -> None:
        """A job that finished between planning and this listing is done: never submit it again.

        Done means every output exists now and some output appeared or changed since planning
        (a forced job's untouched outputs do not count).
        """
        if self.storage is None:
            return
        unknown = [h for h in handles if self.submitter.find(h.spec) is None]
        outputs = [o for h in unknown for o in h.spec.outputs]
        if not outputs:
            return
        self.storage.invalidate(outputs)
        present = self.storage.stat_many(outputs, directories=directories_of([h.job for h in unknown]))
        before = self.planned_mtimes
        for h in unknown:
            if all(o in present for o in h.spec.outputs) and \
                    any(present[o] != before.get(o) for o in h.spec.outputs):
                h.status = "SUCCEEDED"
                self.finished.append((h.job, Outcome(True, reason="finished meanwhile")))

    def abandon(self, jobs: list[Job]) -> None:
        """Drop jobs whose upstream failed: held-back ones are never submitted, submitted ones
        are stopped (Batch fails most of them by itself) and reported at once."""
        doomed = set(jobs)
        for h in [h for h in [*self.waiting, *self.buffer] if h.job in doomed]:
            self._not_run(h)
        self.waiting = {h: None for h in self.waiting if h.job not in doomed}
        self.buffer = [h for h in self.buffer if h.job not in doomed]
        stopping = [h for h in self.watch.submitted() if h.job in doomed]
        spare = self.watch.siblings(stopping)   # packed with them: stopped with them, then sent again
        self._stop(stopping)
        self._terminate(spare, "submitted again, without a job packed with it that cannot run")
        for h in spare:
            self._hold(h)

    def _stop(self, handles: list[BatchHandle], why: str = UPSTREAM_FAILED) -> None:
        """Terminate and report these submitted jobs."""
        self._terminate(handles, why)
        for h in handles:
            self._not_run(h, why)

    def _terminate(self, handles: list[BatchHandle], why: str) -> None:
        """TerminateJob for each (a whole array in one call), untracked; their jobs and arrays
        count as failed, so nothing is wired to them again."""
        by_unit: dict[str, list[BatchHandle]] = {}
        for h in handles:
            by_unit.setdefault(h.unit, []).append(h)
        for unit, group in by_unit.items():
            children = self.watch.arrays.get(unit)
            jobs = sorted({batch_id(h.job_id) for h in group})   # a pack's members: one Batch job
            targets = jobs if children is not None and len(jobs) < len(children) else [unit]
            for job_id in targets:
                self.submitter.stopped.add(job_id)
                with contextlib.suppress(AwsSetupError):   # already finished: nothing to stop
                    self.service.terminate(job_id, f"s3rules: {why}")
            for h in group:
                self.watch.untrack(h)
            self.watch.failed_units.add(unit)

    def _settle_ended(self, ended: list[tuple[BatchHandle, Outcome]]) -> list[tuple[Job, Outcome]]:
        """What to report of the jobs that ended: an out-of-memory job with ``memory_retry`` goes
        again with more memory instead, and a job Batch failed for a failure it does not need
        (another child of an array it waited for whole; a job going again) is held to go again."""
        again = {h for h, outcome in ended if not outcome.ok and self._grow(h, outcome)}
        changed = True
        while changed:   # a job held frees its dependents that ended with it
            changed = False
            for h, outcome in ended:
                if h not in again and outcome.upstream_failed and not h.upstream_failed():
                    self._hold(h)
                    again.add(h)
                    changed = True
        return [(h.job, outcome) for h, outcome in ended if h not in again]

    def _stop_or_hold(self, doomed: list[BatchHandle]) -> None:
        """Jobs Batch will never run (they wait on a failed job or array): those that need what
        failed are stopped and reported; the others are stopped quietly and held, to go again
        once what they need has ended or has a job id, wired to it alone."""
        while doomed:
            self._stop([h for h in doomed if h.upstream_failed()])
            spare = [h for h in doomed if not h.upstream_failed()]
            self._terminate(spare, "submitted again, without a failed job it does not need")
            for h in spare:
                self._hold(h)
            doomed = self.watch.doomed()   # the dependents of those held

    def _grow(self, handle: BatchHandle, outcome: Outcome) -> bool:
        spec = handle.spec
        if outcome.cause != OUT_OF_MEMORY or spec.memory_retry is None or spec.memory is None:
            return False
        memory = more_memory(spec.memory, spec.memory_retry, spec.memory_max or spec.memory)
        if memory is None:
            return False
        self.say(f"s3rules: {spec.label} ran out of memory with {spec.memory} MiB (job {outcome.external_id}); "
                 f"submitting it again with {memory} MiB")
        if outcome.external_id:   # failed, not in flight: but never the job to reuse for the bigger one
            self.submitter.stopped.add(outcome.external_id)
        handle.spec = replace(spec, memory=memory, same_as=spec.identity)
        self._hold(handle)
        return True

    def _hold(self, handle: BatchHandle) -> None:
        hold(handle)
        self.waiting[handle] = None
        self._again.append(handle.job)

    def resubmitted(self) -> list[Job]:
        out, self._again = self._again, []
        return out

    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        if not self.finished and not self.backoff.due():
            time.sleep(min(timeout, self.backoff.wait_time()))
        if self.backoff.due() and self.watch:
            news, ended = self.watch.poll()
            self.finished += self._settle_ended(ended)
            self._stop_or_hold(self.watch.doomed())
            self.backoff.polled(news)
            self._news = True
        self.flush()
        ready = self._ready
        if self.waiting and any(ready(h) for h in self.waiting):
            held, self.waiting = list(self.waiting), {}
            self._submit_all(held, ready)
        out, self.finished = self.finished, []
        return out

    def _ready(self, handle: BatchHandle) -> bool:
        return may_submit(handle, self.watch.failed_units)

    def states(self) -> dict[str, dict[str, int]] | None:
        if not self._news:
            return None
        self._news = False
        return self.watch.state_counts(self.waiting)

    def cancel(self) -> list[tuple[Job, Outcome]]:
        return []   # Ctrl-C detaches: submitted jobs keep running on Batch

    def detached(self, batchfile: str, interrupted: bool) -> list[str]:
        sub = self.submitter
        lines = [f"s3rules: detached: {sub.submitted} job{'s' if sub.submitted != 1 else ''} submitted, "
                 f"{sub.reused} already in flight reused; they run on AWS Batch without s3rules."]
        if interrupted:
            lines.append("  (the last submission was cut short by Ctrl-C: if it did not land, running s3rules "
                         "again submits it; if it did, it is reused)")
        n = len(self.waiting)
        if n:
            lines.append(f"  {n} job{' waits' if n == 1 else 's wait'} for more than 20 unfinished upstream jobs, "
                         "or for a job going again or still running in an array with a failed child, "
                         "and {} not submitted yet: s3rules submits {} when it runs again."
                         .format(*(("is", "it") if n == 1 else ("are", "them"))))
        lines.append(f"  watch:     s3rules status {batchfile} --watch")
        lines.append(f"  re-attach: s3rules run {batchfile}   (submits nothing twice)")
        lines.append(f"  cancel:    s3rules cancel {batchfile}")
        return lines
