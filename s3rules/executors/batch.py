"""Run jobs on AWS Batch: the whole pending graph goes up front, wired with ``dependsOn``.

So the workflow carries on when the laptop closes. The jobs of one rule that wait on the same
upstream jobs go up as array jobs (``s3rules.arrays``): a downstream array waits N_TO_N when
its children line up with an upstream array's, and an aggregate waits for array parents, so
20 dependencies go a long way. A job still waiting on more than 20 unfinished jobs or arrays
is held here and submitted as soon as no more than 20 remain unfinished (finished ones need
no ``dependsOn``), at the cost of this process staying attached until then; ``s3rules run``
again re-attaches.
"""
from __future__ import annotations

import contextlib
import re
import time
from collections import Counter

from ..aws.arrays import (MIN_ARRAY, OVERRIDES_LIMIT, ArrayJob, build_array, child_index, child_script, dependency,
                      fits_inline, staged_command)
from ..aws.jobspec import ACTIVE_STATES, FINAL_STATES, MAX_DEPENDS_ON, JobSpec, chunks
from ..errors import AwsSetupError, PlanError
from ..model import Job, is_url
from ..aws.submitter import Backoff, Submitter
from .base import Executor, Outcome

_STRICT_SHELLS = ("bash", "zsh", "ksh")


def job_spec(job: Job) -> JobSpec:
    """The Batch job for one planned job; rules must name a queue and a job definition."""
    rule, s = job.rule, job.rule.settings
    b = s.batch
    missing = [k for k in ("queue", "job_definition") if not getattr(b, k)]
    if missing:
        raise PlanError(f"rule '{rule.name}' runs on AWS Batch but has no {' or '.join(missing)}: set it in "
                        "the rule or in the default: block")
    local = [p for p in job.outputs if not is_url(p)]
    if local:
        raise PlanError(f"rule '{rule.name}' runs on AWS Batch but writes the local path {local[0]}; a Batch "
                        "job's outputs must be S3 URLs (or run this rule with executor: local)")
    shell = s.shell_executable
    preamble = "set -euo pipefail\n" if shell.rsplit("/", 1)[-1] in _STRICT_SHELLS else "set -eu\n"
    label = "-".join([rule.name, *job.values])
    return JobSpec(
        label=label, queue=b.queue, job_definition=b.job_definition,
        command=(shell, "-c", preamble + job.command()), outputs=job.outputs,
        vcpus=s.vcpus, memory=s.memory, gpus=s.gpus,
        environment=tuple(sorted(job.environment().items())), retries=b.retries, timeout=b.timeout,
        tags=(("s3rules:rule", rule.name),) + tuple(b.tags), share=b.share, priority=b.priority)


class _Handle:
    __slots__ = ("job", "spec", "job_id", "status", "upstream", "waits_on")

    def __init__(self, job: Job, spec: JobSpec, upstream: list["_Handle"]):
        self.job, self.spec, self.upstream = job, spec, upstream
        self.job_id: str | None = None     # a single job's id, or an array child's "parent:index"
        self.status = "WAITING"   # held here until its upstream allows dependsOn
        self.waits_on: tuple[str, ...] = ()   # jobs its SubmitJob waits for whole

    @property
    def unit(self) -> str | None:
        """What a dependent waits for: the job, or the whole array it is a child of."""
        return child_index(self.job_id)[0] if self.job_id else None

    def open_upstream(self) -> list["_Handle"]:
        return [u for u in self.upstream if u.status != "SUCCEEDED"]


class BatchExecutor(Executor):
    submits_graph = True
    name = "batch"

    def __init__(self, submitter: Submitter, poll_start: float = 2.0, poll_limit: float = 30.0,
                 storage=None, lease_ttl: float = 60.0, say=None, planned_mtimes: dict | None = None):
        self.submitter = submitter
        self.storage = storage
        self.planned_mtimes = planned_mtimes or {}   # what planning saw, to tell "written since"
        self.lease_ttl = lease_ttl
        self.say = say or (lambda text: None)
        self.backoff = Backoff(poll_start, poll_limit)
        self.buffer: list[_Handle] = []
        self.active: dict[str, _Handle] = {}                 # single jobs by id
        self.arrays: dict[str, dict[int, _Handle]] = {}      # array parent -> child index -> handle
        self.summaries: dict[str, dict[str, int]] = {}       # array parent -> children per state
        self.listed: dict[str, dict[str, int]] = {}          # array parent -> children listed per final state
        self.failed_units: set[str] = set()                  # jobs and arrays with a failure
        self.homes: dict[str, str] = {}                      # queue -> where array manifests go
        self.waiting: dict[_Handle, None] = {}                # held back, in order (a set that keeps it)
        self.finished: list[tuple[Job, Outcome]] = []
        self.on_states = None   # callback: per-rule counts per Batch state

    def check(self, jobs) -> None:
        """Before anything is submitted: every queue and job definition exists and is usable."""
        specs = {(j.rule.settings.batch.queue, j.rule.settings.batch.job_definition) for j in jobs}
        for job in jobs:
            spec = job_spec(job)  # local outputs, missing settings
            if not any(o.startswith("s3://") for o in spec.outputs) and not fits_inline(spec):
                # too big for SubmitJob, and no bucket to stage it in: say so now, not after
                # half the graph went up
                raise PlanError(f"rule '{job.rule.name}': the command of {spec.label} is too long for "
                                f"SubmitJob ({OVERRIDES_LIMIT} characters of command and environment) and the "
                                "job writes nothing to S3 where s3rules could stage it; shorten the command")
        for queue, definition in sorted(specs):
            self.submitter.service.check_queue(queue)
            self.submitter.service.check_job_definition(definition)
        for job in jobs:
            if job.rule.settings.batch.share is not None:
                queue = self.submitter.service.check_queue(job.rule.settings.batch.queue)
                if not queue.get("schedulingPolicyArn"):
                    raise AwsSetupError(f"rule '{job.rule.name}' sets share: but queue "
                                        f"{job.rule.settings.batch.queue!r} has no scheduling policy; remove share:")

    def capacity(self) -> int:
        return 1 << 30

    def submit(self, job: Job, upstream: list[object]) -> object:
        """Collect; ``flush`` submits everything collected under one lease per queue."""
        handle = _Handle(job, job_spec(job), [h for h in upstream if isinstance(h, _Handle)])
        self.buffer.append(handle)
        return handle

    def flush(self) -> None:
        if not self.buffer:
            return
        handles, self.buffer = self.buffer, []
        self._submit_all(handles)

    def _submit_all(self, handles: list[_Handle], ready=None) -> None:
        """Under each queue's lease: drop what finished meanwhile, reuse what is in flight, then
        submit in waves (a job goes once everything it waits on has a job id), each wave's jobs
        of one rule and one set of upstream arrays together as array jobs.

        ``ready`` picks the handles that may go now (default: all); the others wait again.
        """
        with self._lease(handles):
            todo = [h for h in handles if ready is None or ready(h)]
            self._skip_done_meanwhile(todo)
            todo = [h for h in todo if h.status == "WAITING"]
            for h in todo:
                found = self.submitter.find(h.spec)
                if found is not None:
                    self.submitter.reused += 1
                    self._track(h, found)
            todo = [h for h in todo if h.status == "WAITING"]
            while todo:
                wave = [h for h in todo if all(u.job_id or u.status in FINAL_STATES for u in h.upstream)]
                if not wave:
                    break
                units = self._units(wave)
                self.submitter.expect([array or group[0].spec for group, array in units])
                for group, array in units:
                    if array is None:
                        self._try_submit(group[0])
                    else:
                        self._submit_array(group, array)
                done = set(wave)
                todo = [h for h in todo if h not in done]
            for h in todo:
                self._wait(h)

    def _units(self, wave: list[_Handle]) -> list[tuple[list[_Handle], ArrayJob | None]]:
        """Split a wave into arrays (one rule, the same upstream jobs) and single jobs."""
        groups: dict[tuple, list[_Handle]] = {}
        units: list[tuple[list[_Handle], ArrayJob | None]] = []
        for h in wave:
            s = h.job.rule.settings.batch
            if s.array_size < 2 or h.spec.queue not in self.homes or \
                    any(u.status == "FAILED" for u in h.upstream):
                units.append(([h], None))
                continue
            signature = tuple(sorted({u.unit for u in h.open_upstream()}))
            groups.setdefault((h.job.rule.name, signature), []).append(h)
        for (rule, _), group in groups.items():
            # children in the order of their upstream children, so that N_TO_N can line up
            group.sort(key=lambda h: sorted(child_index(u.job_id)[1] or 0 for u in h.open_upstream()))
            s = group[0].job.rule.settings.batch
            for chunk in chunks(group, s.array_size):
                if len(chunk) < MIN_ARRAY:
                    units.append((chunk, None))
                    continue
                home = self.homes[chunk[0].spec.queue]
                units.append((chunk, build_array(rule, [h.spec for h in chunk], home, s.fetch_command,
                                                 group[0].job.rule.settings.shell_executable)))
        return units

    def _submit_array(self, group: list[_Handle], array: ArrayJob) -> None:
        upstream = [[child_index(u.job_id) for u in h.open_upstream()] for h in group]
        depends_on = dependency(upstream, self.submitter.sizes)
        if len(depends_on) > MAX_DEPENDS_ON:
            for h in group:
                self._wait(h)
            return
        parent = self.submitter.submit_array(array, depends_on)
        whole = tuple(d["jobId"] for d in depends_on if d.get("type") != "N_TO_N")
        for i, h in enumerate(group):
            h.waits_on = whole
            self._track(h, f"{parent}:{i}")

    def _track(self, handle: _Handle, job_id: str) -> None:
        handle.job_id, handle.status = job_id, "SUBMITTED"
        parent, index = child_index(job_id)
        if index is None:
            self.active[job_id] = handle
        else:
            self.arrays.setdefault(parent, {})[index] = handle

    @contextlib.contextmanager
    def _lease(self, handles: list[_Handle]):
        """Hold each queue's lease while listing what is in flight and submitting."""
        from ..aws.lease import Lease
        buckets: dict[str, set[str]] = {}
        for h in handles:
            buckets.setdefault(h.spec.queue, set()).update(
                o.split("/", 3)[2] for o in h.spec.outputs if o.startswith("s3://"))
        leases = []
        try:
            for queue in sorted(buckets):
                if buckets[queue]:
                    key = re.sub(r"[^A-Za-z0-9._-]+", "_", queue)
                    lease = Lease(f"s3://{min(buckets[queue])}/.s3rules/leases/{key}.json", ttl=self.lease_ttl,
                                  on_wait=self.say)
                    lease.acquire()
                    leases.append(lease)
                    self.submitter.leases[queue] = lease
                    self.homes[queue] = f"s3://{min(buckets[queue])}/.s3rules/jobs"
                self.submitter.forget(queue)   # list afresh, now that no other run submits here
            yield
        finally:
            for lease in leases:
                lease.release()
            self.submitter.leases.clear()

    def _skip_done_meanwhile(self, handles: list[_Handle]) -> None:
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
        present = self.storage.stat_many(outputs)
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
            h.status = "FAILED"
            self.finished.append((h.job, Outcome(False, reason="a job it depends on failed",
                                                 upstream_failed=True)))
        self.waiting = {h: None for h in self.waiting if h.job not in doomed}
        self.buffer = [h for h in self.buffer if h.job not in doomed]
        self._stop([h for h in self._submitted() if h.job in doomed])

    def _submitted(self) -> list[_Handle]:
        return list(self.active.values()) + [h for children in self.arrays.values() for h in children.values()]

    def _stop(self, handles: list[_Handle], why: str = "a job it depends on failed") -> None:
        """Terminate and report these submitted jobs; a whole array goes in one call."""
        by_unit: dict[str, list[_Handle]] = {}
        for h in handles:
            by_unit.setdefault(h.unit, []).append(h)
        for unit, group in by_unit.items():
            children = self.arrays.get(unit)
            if children is not None and len(group) < len(children):
                targets = [h.job_id for h in group]
            else:
                targets = [unit]
            for job_id in targets:
                with contextlib.suppress(AwsSetupError):   # already finished: nothing to stop
                    self.submitter.service.terminate(job_id, f"s3rules: {why}")
            for h in group:
                self._untrack(h)
                h.status = "FAILED"
                self.finished.append((h.job, Outcome(False, reason=why, external_id=h.job_id,
                                                     upstream_failed=True)))
            self.failed_units.add(unit)

    def _untrack(self, handle: _Handle) -> None:
        parent, index = child_index(handle.job_id)
        if index is None:
            self.active.pop(handle.job_id, None)
            return
        children = self.arrays.get(parent, {})
        children.pop(index, None)
        if not children:
            self.arrays.pop(parent, None)
            self.summaries.pop(parent, None)
            self.listed.pop(parent, None)

    def _try_submit(self, handle: _Handle) -> bool:
        if any(u.status == "FAILED" for u in handle.upstream):
            handle.status = "FAILED"
            self.finished.append((handle.job, Outcome(False, reason="a job it depends on failed",
                                                      upstream_failed=True)))
            return True
        if not self._may_submit(handle):
            self._wait(handle)
            return False
        open_ids = list(dict.fromkeys(u.unit for u in handle.open_upstream()))
        command, files = self._staged(handle.spec, handle.job.rule.settings)
        job_id, reused = self.submitter.submit(handle.spec, open_ids, command=command, files=files)
        handle.waits_on = tuple(open_ids)
        self._track(handle, job_id)
        return True

    def _staged(self, spec: JobSpec, settings) -> tuple[list[str] | None, dict[str, str]]:
        """A script too long for SubmitJob goes to S3; the job's command fetches it."""
        if fits_inline(spec) or spec.queue not in self.homes:
            return None, {}
        url = f"{self.homes[spec.queue]}/{spec.identity}.sh"
        return staged_command(url, settings.batch.fetch_command, settings.shell_executable), {url: child_script(spec)}

    @staticmethod
    def _may_submit(handle: _Handle) -> bool:
        """Submittable now: an upstream failed (to report), or dependsOn fits in 20."""
        if any(u.status == "FAILED" for u in handle.upstream):
            return True
        if any(u.job_id is None and u.status != "SUCCEEDED" for u in handle.upstream):
            return False
        return len({u.unit for u in handle.open_upstream()}) <= MAX_DEPENDS_ON

    def _wait(self, handle: _Handle) -> None:
        self.waiting[handle] = None

    @property
    def waiting_count(self) -> int:
        return len(self.waiting)

    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        if not self.finished and not self.backoff.due():
            time.sleep(min(timeout, self.backoff.wait_time()))
        if self.backoff.due() and (self.active or self.arrays):
            news = self._poll_batch()
            self.backoff.polled(news)
            if self.on_states:
                self.on_states(self.state_counts())
        self.flush()
        if self.waiting and any(self._may_submit(h) for h in self.waiting):
            held, self.waiting = list(self.waiting), {}
            self._submit_all(held, self._may_submit)
        out, self.finished = self.finished, []
        return out

    def _poll_batch(self) -> bool:
        """One DescribeJobs per 100 single jobs and array parents; an array whose children
        finished (its statusSummary says so) is asked which ones with ListJobs by status."""
        service = self.submitter.service
        described = service.describe(list(self.active) + list(self.arrays))
        news = False
        ended: list[tuple[_Handle, dict]] = []
        for job_id, handle in list(self.active.items()):
            desc = described.get(job_id)
            if desc and desc.get("status") != handle.status:
                news = True
                handle.status = desc["status"]
                if handle.status in FINAL_STATES:
                    ended.append((handle, desc))
        failed_children: list[_Handle] = []
        for parent, children in list(self.arrays.items()):
            desc = described.get(parent) or {}
            counts = (desc.get("arrayProperties") or {}).get("statusSummary") or {}
            news = news or counts != self.summaries.get(parent, {})
            self.summaries[parent] = counts
            # list a final state while it counts more children than its last listing showed
            # (a listing that lags behind the summary is simply asked again next poll)
            listed = self.listed.setdefault(parent, {})
            finals = [s for s in FINAL_STATES if counts.get(s, 0) > listed.get(s, 0)]
            if desc.get("status") in FINAL_STATES and not counts:
                finals = list(FINAL_STATES)
            if not finals:
                continue
            children_listed = service.list_jobs(None, finals, array_job_id=parent)
            for state in finals:
                listed[state] = sum(1 for c in children_listed if c.get("status") == state)
            for summary in children_listed:
                handle = children.get(child_index(summary["jobId"])[1])
                if handle is None or handle.status in FINAL_STATES:
                    continue
                handle.status = summary["status"]
                if handle.status == "FAILED":
                    failed_children.append(handle)
                else:
                    ended.append((handle, summary))
        if failed_children:   # their reason, exit code and log stream
            more = service.describe([h.job_id for h in failed_children])
            ended += [(h, more.get(h.job_id, {})) for h in failed_children]
        # every status first: a job may be listed before the upstream job whose failure failed
        # it, and _outcome must see that upstream as FAILED
        for handle, _ in ended:
            if handle.status == "FAILED":
                self.failed_units.add(handle.unit)
        for handle, desc in ended:
            self._untrack(handle)
            self.finished.append((handle.job, self._outcome(handle, desc)))
        # jobs that wait for a whole job or array with a failure will never run
        doomed = [h for h in self._submitted() if self.failed_units.intersection(h.waits_on)]
        if doomed:
            self._stop(doomed)
        return news or bool(ended)

    def _outcome(self, handle: _Handle, desc: dict) -> Outcome:
        container = desc.get("container") or {}
        if handle.status == "SUCCEEDED":
            return Outcome(True, container.get("exitCode", 0), external_id=handle.job_id)
        upstream_failed = any(u.status == "FAILED" for u in handle.upstream) or \
            bool(self.failed_units.intersection(handle.waits_on))
        code = container.get("exitCode")
        reason = desc.get("statusReason") or container.get("reason") or "failed"
        if code is not None:
            reason = f"exit code {code} ({reason})" if reason != "failed" else f"exit code {code}"
        tail = [] if upstream_failed else self.submitter.service.log_lines(desc, last=15)
        return Outcome(False, code, reason, tail, external_id=handle.job_id, upstream_failed=upstream_failed)

    def state_counts(self) -> dict[str, dict[str, int]]:
        """Per rule, jobs per Batch state; an array's children as its statusSummary counts them."""
        counts: dict[str, Counter] = {}
        for handle in [*self.active.values(), *self.waiting]:
            counts.setdefault(handle.job.rule.name, Counter())[handle.status] += 1
        for parent, children in self.arrays.items():
            rule = next(iter(children.values())).job.rule.name
            summary = self.summaries.get(parent)
            active = {s: summary.get(s, 0) for s in ACTIVE_STATES} if summary else {}
            if sum(active.values()) != len(children):   # not known yet, or shared with other runs
                active = Counter(h.status for h in children.values())
            counts.setdefault(rule, Counter()).update(active)
        return {rule: {k: v for k, v in c.items() if v} for rule, c in counts.items()}

    def cancel(self) -> list[tuple[Job, Outcome]]:
        return []   # Ctrl-C detaches: submitted jobs keep running on Batch
