"""The one submission layer behind ``s3rules run`` on Batch and ``AWSBatchHelper``.

Never pay twice: before the first submission to a queue, the jobs in flight there are listed
once (per active state, 1,000 per page) and indexed by the identity carried in their names;
a spec whose identity is already in flight gets that job's id back instead of a new job.
The caller holds the queue's lease (``s3rules.lease``) meanwhile, so no other run lists and
submits at the same time, and the jobs the previous holder submitted moments ago count too.

SubmitJob has no idempotency token, so it is never retried blindly: a throttled call was
refused and is retried after a pause; after an answer that was lost (a dropped connection, a
5xx), s3rules first asks Batch for a job of that name made in the meantime, and only submits
again when there is none.
An array's children are in flight under their parent's id (``parent:index``); the JSON
manifest written before the array is submitted says which identity each index is. A packed
job (``group: N``) is in flight as ``<pack>#<k>``, its pack's manifest naming it in place k.
``refresh`` (for the Python API) describes jobs in groups of 100.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from ..errors import AwsSetupError
from .arrays import ArrayJob, array_request, child_index
from .client import SubmitRefused, SubmitUnknown
from .jobspec import ACTIVE_STATES, JobSpec, submit_request
from .manifests import ManifestStore
from .naming import (ARRAY_PREFIX, MANIFEST_TAG, PACK_PREFIX, array_name_prefix, batch_id, identity_of_name,
                     jobs_home, lease_url, pack_name_prefix, short)
from .policy import LEASE_TTL, LISTING_LAG, SUBMIT_PAUSES
from .service import BatchService


@dataclass
class Tracked:
    job_id: str
    spec: JobSpec | None
    status: str = "SUBMITTED"
    reused: bool = False
    description: dict = field(default_factory=dict)


class Submitter:
    retry_delays = SUBMIT_PAUSES   # between SubmitJob attempts (policy.py)
    listing_lag = LISTING_LAG      # how long lookups by name wait for ListJobs to show a job
    #: names written to the lease as "about to be submitted" in one go
    intent_chunk = 100

    def __init__(self, service: BatchService, manifests: ManifestStore | None = None):
        self.service = service
        self._in_flight: dict[str, dict[str, dict]] = {}   # queue -> identity prefix -> summary
        self.tracked: dict[str, Tracked] = {}
        self.leases: dict[str, object] = {}                # queue -> Lease held while submitting
        self.homes: dict[str, str] = {}                    # queue -> where manifests and scripts go
        self.upcoming: list[JobSpec] = []                  # what the caller is about to submit
        self._intended: set[str] = set()
        self._position: dict[str, int] = {}
        self.manifests = manifests or ManifestStore()
        self.sizes: dict[str, int] = {}                    # array parent -> number of children
        self.submitted = 0
        self.reused = 0
        self.stopped: set[str] = set()                     # jobs and arrays this run terminated or gave up

    @contextlib.contextmanager
    def leased(self, buckets: dict[str, set[str]], ttl: float = LEASE_TTL, say=None):
        """Hold each queue's lease while listing what is in flight and submitting.

        ``buckets``: queue -> the buckets its jobs write to; the lease and the queue's home
        (for manifests and staged scripts) go in the first. A queue whose jobs write to no
        bucket gets neither. Every queue is listed afresh once its lease is held.
        """
        from .lease import Lease
        held = []
        try:
            for queue in sorted(buckets):
                if buckets[queue]:
                    bucket = min(buckets[queue])
                    lease = Lease(lease_url(bucket, queue), ttl=ttl, on_wait=say)
                    lease.acquire()
                    held.append(lease)
                    self.leases[queue] = lease
                    self.homes[queue] = jobs_home(bucket)
                self._in_flight.pop(queue, None)
            yield
        finally:
            for lease in held:
                lease.release()
            self.leases.clear()

    def in_flight(self, queue: str) -> dict[str, dict]:
        """Jobs s3rules made that are still in flight on ``queue``, by identity (listed once).

        An array's children are found through its manifest: ``jobId`` is then ``parent:index``.
        """
        known = self._in_flight.get(queue)
        if known is None:
            known = {}
            arrays = []
            for summary in self.service.list_jobs(queue, ACTIVE_STATES):
                name = summary.get("jobName", "")
                if ":" in summary["jobId"]:
                    continue   # an array child, listed through its parent below
                if name.startswith((ARRAY_PREFIX, PACK_PREFIX)):   # told apart by their manifests
                    arrays.append(summary["jobId"])
                elif identity_of_name(name):
                    known.setdefault(identity_of_name(name), summary)
            self._add_children(self.service.describe(arrays), known)
            self._merge_recent(queue, known)
            self._in_flight[queue] = known
        return known

    def _add_children(self, parents: dict[str, dict], known: dict[str, dict]) -> None:
        """Index the children of in-flight arrays (and the members of packs) by the identities
        their manifests name."""
        for parent, desc in parents.items():
            if desc.get("status") not in ACTIVE_STATES:
                continue
            children = self._children(desc)
            if not children:
                continue   # no manifest, no way to tell its children apart: never reused
            if desc.get("jobName", "").startswith(PACK_PREFIX):   # a pack: its members in order
                for k, identity in enumerate(children):
                    known.setdefault(short(identity), {"jobId": f"{parent}#{k}", "jobName": desc.get("jobName"),
                                                       "status": desc.get("status")})
                continue
            self.sizes[parent] = len(children)
            counts = (desc.get("arrayProperties") or {}).get("statusSummary") or {}
            states = [s for s in ACTIVE_STATES if counts.get(s)] if counts else list(ACTIVE_STATES)
            for summary in self.service.list_jobs(None, states, array_job_id=parent):
                index = child_index(summary["jobId"])[1]
                if index is not None and index < len(children):
                    child = children[index]   # an identity, or a pack's members' identities
                    for k, identity in enumerate(child) if isinstance(child, list) else [(None, child)]:
                        known.setdefault(short(identity), {
                            "jobId": summary["jobId"] + ("" if k is None else f"#{k}"), "jobName": desc.get("jobName"),
                            "status": summary.get("status")})

    def _merge_recent(self, queue: str, known: dict[str, dict]) -> None:
        """Add what previous lease holders submitted moments ago (ListJobs may not show it yet)."""
        lease = self.leases.get(queue)
        recent = [r for r in getattr(lease, "recent", ())
                  if identity_of_name(r.get("name", "")) and identity_of_name(r["name"]) not in known]
        with_ids = [r["jobId"] for r in recent if r.get("jobId")]
        described = self.service.describe(with_ids)
        for job_id, desc in described.items():
            if desc.get("status") in ACTIVE_STATES and not desc.get("jobName", "").startswith((ARRAY_PREFIX,
                                                                                                 PACK_PREFIX)):
                known.setdefault(identity_of_name(desc.get("jobName", "")) or "", {
                    "jobId": job_id, "jobName": desc.get("jobName"), "status": desc["status"]})
        self._add_children(described, known)
        # names a run was about to submit when it died: the job may exist without anyone knowing
        unconfirmed = [r for r in recent if not r.get("jobId")]
        if unconfirmed:
            time.sleep(max(0.0, max(r["at"] for r in unconfirmed) + self.listing_lag - time.time()))
            arrays = []
            for r in unconfirmed:
                for summary in self.service.jobs_named(queue, r["name"]):
                    if summary.get("status") in ACTIVE_STATES:
                        if r["name"].startswith((ARRAY_PREFIX, PACK_PREFIX)):
                            arrays.append(summary["jobId"])
                        else:
                            known.setdefault(identity_of_name(r["name"]), summary)
                        break
            self._add_children(self.service.describe(arrays), known)

    def _children(self, desc: dict) -> list[str] | None:
        """An array's children's identities, by index, from the manifest its tag names."""
        url = (desc.get("tags") or {}).get(MANIFEST_TAG)
        return self.manifests.children(url) if url else None

    def expect(self, units) -> None:
        """The jobs and arrays about to be submitted, in order (their names go to the lease in chunks)."""
        self.upcoming = list(units)
        self._position = {u.name: i for i, u in enumerate(self.upcoming)}
        self._intended.clear()

    def _announce(self, unit, lease) -> None:
        if unit.name in self._intended:
            return
        names = [unit.name]
        start = self._position.get(unit.name)
        if start is not None:
            names = [u.name for u in self.upcoming[start:start + self.intent_chunk] if u.queue == unit.queue]
        self._intended.update(names)
        lease.intend(names)

    def latest(self, spec: JobSpec, rule: str) -> str | None:
        """The newest job made for ``spec``, in flight or finished: alone, or as an array child."""
        made = self.service.jobs_named(spec.queue, spec.name)[:1]
        groups = [*self.service.jobs_named(spec.queue, array_name_prefix(rule), prefix=True),
                  *self.service.jobs_named(spec.queue, pack_name_prefix(rule), prefix=True)]
        for group in sorted(groups, key=lambda j: j.get("createdAt", 0), reverse=True):
            if made and made[0].get("createdAt", 0) >= group.get("createdAt", 0):
                continue
            children = self._children(self.service.describe([group["jobId"]]).get(group["jobId"], {})) or []
            place = _place(children, spec.identity)
            if place is not None:
                i, k = place
                made = [{"jobId": f"{group['jobId']}#{i}" if group.get("jobName", "").startswith(PACK_PREFIX)
                         else f"{group['jobId']}:{i}" + ("" if k is None else f"#{k}")}]
                break
        return made[0]["jobId"] if made else None

    def in_flight_summary(self, spec: JobSpec) -> dict | None:
        """ListJobs' summary of the job in flight for ``spec`` (or of the array child), if any; a
        job this run stopped may still be listed as it dies, and is never it."""
        summary = self.in_flight(spec.queue).get(short(spec.identity))
        return None if summary is not None and self._was_stopped(summary["jobId"]) else summary

    def _was_stopped(self, job_id: str) -> bool:
        job_id = batch_id(job_id)
        return job_id in self.stopped or job_id.split(":", 1)[0] in self.stopped

    def find(self, spec: JobSpec) -> str | None:
        summary = self.in_flight_summary(spec)
        return summary["jobId"] if summary else None

    def reuse(self, spec: JobSpec) -> str | None:
        """The id of the job in flight for ``spec``, counted as reused; None when there is none."""
        job_id = self.find(spec)
        if job_id is not None:
            self.reused += 1
        return job_id

    def submit(self, spec: JobSpec, depends_on=(), command=None, files=None, reuse=True) -> tuple[str, bool]:
        """(job id, reused): an identical in-flight job is reused, never submitted twice.

        ``command`` and ``files``: the script staged on S3 (written first) and what fetches it.
        ``reuse=False``: a job sent again by this run, whose earlier job it stopped.
        """
        existing = self.reuse(spec) if reuse else None
        if existing is not None:
            self.tracked.setdefault(existing, Tracked(existing, spec, reused=True))
            return existing, True
        job_id = self._send(spec, submit_request(spec, list(depends_on), command=command), files or {},
                            len(spec.members) or 1)
        known = self.in_flight(spec.queue)
        known[short(spec.identity)] = {"jobId": job_id, "jobName": spec.name, "status": "SUBMITTED"}
        for k, member in enumerate(spec.members):
            known[short(member)] = {"jobId": f"{job_id}#{k}", "jobName": spec.name, "status": "SUBMITTED"}
        self.tracked[job_id] = Tracked(job_id, spec)
        return job_id, False

    def submit_array(self, array: ArrayJob, depends_on: list[dict]) -> str:
        """Submit ``array`` (children in flight elsewhere were left out by the caller).

        Its manifests are written first, so a run that finds the array later, even after this
        one died mid-call, can tell its children apart.
        """
        parent = self._send(array, array_request(array, depends_on), array.files,
                            sum(len(c.members) or 1 for c in array.children))
        self.sizes[parent] = len(array.children)
        known = self.in_flight(array.queue)
        for i, child in enumerate(array.children):
            known[short(child.identity)] = {"jobId": f"{parent}:{i}", "jobName": array.name, "status": "SUBMITTED"}
            for k, member in enumerate(child.members):
                known[short(member)] = {"jobId": f"{parent}:{i}#{k}", "jobName": array.name, "status": "SUBMITTED"}
        return parent

    def _send(self, unit, request: dict, files: dict[str, str], jobs: int) -> str:
        """Announce ``unit`` (a JobSpec or an ArrayJob) on the lease, write its files, submit it
        once, and remember its id on the lease."""
        lease = self.leases.get(unit.queue)
        if lease is not None:
            self._announce(unit, lease)
            lease.renew_if_due()
        if files:
            self.manifests.write(files)
        self.submitted += jobs   # counted when sent: a Ctrl-C during the call may still have made it
        try:
            job_id = self._submit_once(unit, request)
        except Exception:
            self.submitted -= jobs
            raise
        if lease is not None:
            lease.remember(unit.name, job_id)
        return job_id

    def _submit_once(self, spec, request: dict) -> str:
        """Submit, and make sure a lost answer never turns into a second job."""
        started = time.time()
        for delay in self.retry_delays + (None,):
            try:
                return self.service.submit(request, retry=False)
            except SubmitRefused:
                pass                                  # throttled: nothing was created
            except SubmitUnknown:
                made = self._look_for(spec, started)
                if made:                              # it did land: that is our job
                    return made
            if delay is None:
                break
            time.sleep(delay)
        raise AwsSetupError(f"submitting {spec.name} to {spec.queue!r} kept failing (throttled or no answer) "
                            f"for {int(time.time() - started)} s; what was submitted stays, and running "
                            "s3rules again submits the rest, nothing twice")

    def _look_for(self, spec, since: float) -> str | None:
        """The job a lost SubmitJob may have made, asked for until ListJobs must show it."""
        deadline = time.monotonic() + self.listing_lag
        pause = 0.5
        while True:
            for j in self.service.jobs_named(spec.queue, spec.name):
                # made since our first attempt (30 s of clock skew allowed), or in flight anyway
                if self._was_stopped(j["jobId"]):
                    continue
                if j.get("createdAt", 0) >= (since - 30) * 1000 or j.get("status") in ACTIVE_STATES:
                    return j["jobId"]
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause *= 2

    def track(self, job_id: str, spec: JobSpec | None = None) -> Tracked:
        return self.tracked.setdefault(job_id, Tracked(job_id, spec))

    def refresh(self, job_ids) -> dict[str, Tracked]:
        """Describe these jobs (100 per call) and return the ones that changed state."""
        changed = {}
        descriptions = self.service.describe(job_ids)
        for job_id, desc in descriptions.items():
            tracked = self.track(job_id)
            tracked.description = desc
            if desc.get("status") != tracked.status:
                tracked.status = desc.get("status", tracked.status)
                changed[job_id] = tracked
        return changed


def _place(children: list, identity: str) -> tuple[int, int | None] | None:
    """Where ``identity`` is in a manifest's children: (index, None), or (index, k) for place k
    of an array child that is a pack."""
    for i, child in enumerate(children):
        if child == identity:
            return i, None
        if isinstance(child, list) and identity in child:
            return i, child.index(identity)
    return None
