"""Run jobs on AWS Batch: the whole pending graph goes up front, wired with ``dependsOn``.

So the workflow carries on when the laptop closes. Batch allows 20 dependencies per job; a job
with more upstream jobs still in flight is held here and submitted as soon as no more than 20
remain unfinished (finished ones need no ``dependsOn``), which keeps the fan-in correct at the
cost of this process staying attached until then; ``s3rules run`` again re-attaches.
"""
from __future__ import annotations

import contextlib
import re
import time
from collections import Counter

from ..batchjobs import MAX_DEPENDS_ON, JobSpec, submit_request
from ..errors import AwsSetupError, PlanError
from ..model import Job, is_url
from ..submission import Backoff, Submitter
from .base import Executor, Outcome

_STRICT_SHELLS = ("bash", "zsh", "ksh")


def job_spec(job: Job) -> JobSpec:
    """The Batch job for one planned job; rules must name a queue and a job definition."""
    rule, s = job.rule, job.rule.settings
    missing = [k for k in ("queue", "job_definition") if not getattr(s, k)]
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
        label=label, queue=s.queue, job_definition=s.job_definition,
        command=(shell, "-c", preamble + job.command()), outputs=job.outputs,
        vcpus=s.vcpus, memory=s.memory, gpus=s.gpus,
        environment=tuple(sorted(job.environment().items())), retries=s.retries, timeout=s.timeout,
        tags=(("s3rules:rule", rule.name),) + tuple(s.tags), share=s.share, priority=s.priority)


class _Handle:
    __slots__ = ("job", "spec", "job_id", "status", "upstream")

    def __init__(self, job: Job, spec: JobSpec, upstream: list["_Handle"]):
        self.job, self.spec, self.upstream = job, spec, upstream
        self.job_id: str | None = None
        self.status = "WAITING"   # held here until its upstream allows dependsOn


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
        self.active: dict[str, _Handle] = {}
        self.waiting: list[_Handle] = []
        self.finished: list[tuple[Job, Outcome]] = []
        self.on_states = None   # callback: per-rule counts per Batch state

    def check(self, jobs) -> None:
        """Before anything is submitted: every queue and job definition exists and is usable."""
        specs = {(j.rule.settings.queue, j.rule.settings.job_definition) for j in jobs}
        for job in jobs:
            spec = job_spec(job)  # local outputs, missing settings
            try:   # too big for SubmitJob: say so now, not after half the graph went up
                submit_request(spec, ["0" * 36] * min(len(job.deps), MAX_DEPENDS_ON))
            except ValueError as exc:
                raise PlanError(f"rule '{job.rule.name}': {exc}") from None
        for queue, definition in sorted(specs):
            self.submitter.service.check_queue(queue)
            self.submitter.service.check_job_definition(definition)
        for job in jobs:
            if job.rule.settings.share is not None:
                queue = self.submitter.service.check_queue(job.rule.settings.queue)
                if not queue.get("schedulingPolicyArn"):
                    raise AwsSetupError(f"rule '{job.rule.name}' sets share: but queue "
                                        f"{job.rule.settings.queue!r} has no scheduling policy; remove share:")

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
        """Under each queue's lease: drop what finished meanwhile, announce, submit in order.

        ``ready`` picks the handles that may go now (default: all); the others wait again.
        """
        def is_ready(h: _Handle) -> bool:
            return ready is None or ready(h)
        with self._lease(handles):
            self._skip_done_meanwhile([h for h in handles if is_ready(h)])
            self.submitter.expect([h.spec for h in handles if h.status == "WAITING" and is_ready(h)])
            for handle in handles:
                if handle.status == "WAITING":
                    self._try_submit(handle)

    @contextlib.contextmanager
    def _lease(self, handles: list[_Handle]):
        """Hold each queue's lease while listing what is in flight and submitting."""
        from ..lease import Lease
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
        """Drop held-back jobs; stop submitted ones (Batch fails most of them by itself)."""
        doomed = set(jobs)
        for h in [h for h in self.waiting + self.buffer if h.job in doomed]:
            h.status = "FAILED"
            self.finished.append((h.job, Outcome(False, reason="a job it depends on failed",
                                                 upstream_failed=True)))
        self.waiting = [h for h in self.waiting if h.job not in doomed]
        self.buffer = [h for h in self.buffer if h.job not in doomed]
        for job_id, h in list(self.active.items()):
            if h.job in doomed:
                self.submitter.service.terminate(job_id, "s3rules: a job it depends on failed")

    def _try_submit(self, handle: _Handle) -> bool:
        if any(u.status == "FAILED" for u in handle.upstream):
            handle.status = "FAILED"
            self.finished.append((handle.job, Outcome(False, reason="a job it depends on failed",
                                                      upstream_failed=True)))
            return True
        if any(u.job_id is None and u.status != "SUCCEEDED" for u in handle.upstream):
            self._wait(handle)
            return False
        open_ids = list(dict.fromkeys(u.job_id for u in handle.upstream if u.status != "SUCCEEDED"))
        if len(open_ids) > MAX_DEPENDS_ON:
            self._wait(handle)
            return False
        job_id, reused = self.submitter.submit(handle.spec, open_ids)
        handle.job_id, handle.status = job_id, "SUBMITTED"
        self.active[job_id] = handle
        return True

    @staticmethod
    def _may_submit(handle: _Handle) -> bool:
        """Submittable now: an upstream failed (to report), or dependsOn fits in 20."""
        if any(u.status == "FAILED" for u in handle.upstream):
            return True
        if any(u.job_id is None and u.status != "SUCCEEDED" for u in handle.upstream):
            return False
        return len({u.job_id for u in handle.upstream if u.status != "SUCCEEDED"}) <= MAX_DEPENDS_ON

    def _wait(self, handle: _Handle) -> None:
        if handle not in self.waiting:
            self.waiting.append(handle)

    @property
    def waiting_count(self) -> int:
        return len(self.waiting)

    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        if not self.finished and not self.backoff.due():
            time.sleep(min(timeout, self.backoff.wait_time()))
        if self.backoff.due() and self.active:
            changed = self.submitter.refresh(list(self.active))
            # every status first: DescribeJobs may list a job before the upstream job whose
            # failure failed it, and _outcome must see that upstream as FAILED
            for job_id, tracked in changed.items():
                if job_id in self.active:
                    self.active[job_id].status = tracked.status
            for job_id, tracked in changed.items():
                handle = self.active.get(job_id)
                if handle is None:
                    continue
                if tracked.status in ("SUCCEEDED", "FAILED"):
                    del self.active[job_id]
                    self.finished.append((handle.job, self._outcome(handle, tracked.description)))
            self.backoff.polled(bool(changed))
            if self.on_states:
                self.on_states(self.state_counts())
        self.flush()
        if self.waiting and any(self._may_submit(h) for h in self.waiting):
            held, self.waiting = self.waiting, []
            self._submit_all(held, self._may_submit)
        out, self.finished = self.finished, []
        return out

    def _outcome(self, handle: _Handle, desc: dict) -> Outcome:
        container = desc.get("container") or {}
        if handle.status == "SUCCEEDED":
            return Outcome(True, container.get("exitCode", 0), external_id=handle.job_id)
        upstream_failed = any(u.status == "FAILED" for u in handle.upstream)
        code = container.get("exitCode")
        reason = desc.get("statusReason") or container.get("reason") or "failed"
        if code is not None:
            reason = f"exit code {code} ({reason})" if reason != "failed" else f"exit code {code}"
        tail = [] if upstream_failed else self.submitter.service.log_lines(desc, last=15)
        return Outcome(False, code, reason, tail, external_id=handle.job_id, upstream_failed=upstream_failed)

    def state_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter] = {}
        for handle in list(self.active.values()) + self.waiting:
            counts.setdefault(handle.job.rule.name, Counter())[handle.status] += 1
        return {rule: dict(c) for rule, c in counts.items()}

    def cancel(self) -> list[tuple[Job, Outcome]]:
        return []   # Ctrl-C detaches: submitted jobs keep running on Batch
