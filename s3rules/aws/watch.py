"""Watching this run's Batch jobs: DescribeJobs and ListJobs answers -> outcomes.

One DescribeJobs per 100 single jobs and array parents per poll. An array's ``statusSummary``
says when children finished; only then are its children listed (ListJobs by final state), and
a listing that lags behind the summary is simply asked again next poll. The members of a pack
(``group: N``) are watched as ``<pack>#<k>``: they end with their pack, each as the exit code
the pack's log gives it (``packs.exit_codes``).
"""
from __future__ import annotations

from collections import Counter

from ..executors.base import Outcome
from .arrays import child_index
from .failures import APPLICATION, DEPENDENCY, attempt_causes, cause
from .grouping import BatchHandle
from .jobspec import ACTIVE_STATES, FINAL_STATES
from .naming import batch_id, pack_place
from .packs import exit_codes
from .service import BatchService, usage_of

PACK_LOG_LINES = 50   # the tail of a failed pack's log: its members' exit codes are its last line


class Watch:
    """The jobs of this run in flight on Batch, and what each poll says of them."""

    def __init__(self, service: BatchService):
        self.service = service
        self.active: dict[str, BatchHandle] = {}               # single jobs (and packed ones) by id
        self.arrays: dict[str, dict[int, list[BatchHandle]]] = {}   # array parent -> child index -> its job(s)
        self.summaries: dict[str, dict[str, int]] = {}         # array parent -> children per state
        self.listed: dict[str, dict[str, int]] = {}            # array parent -> children listed per final state
        self.failed_units: set[str] = set()                    # jobs and arrays with a failure
        self._pack_logs: dict[str, list[str]] = {}             # a failed pack's id -> its log's tail

    def __bool__(self) -> bool:
        return bool(self.active or self.arrays)

    def track(self, handle: BatchHandle, job_id: str) -> None:
        handle.job_id, handle.status = job_id, "SUBMITTED"
        parent, index = child_index(job_id)
        if index is None:
            self.active[job_id] = handle
        else:
            self.arrays.setdefault(parent, {}).setdefault(index, []).append(handle)

    def untrack(self, handle: BatchHandle) -> None:
        parent, index = child_index(handle.job_id)
        if index is None:
            self.active.pop(handle.job_id, None)
            return
        children = self.arrays.get(parent, {})
        packed = children.get(index, [])
        if handle in packed:
            packed.remove(handle)
        if not packed:
            children.pop(index, None)
        if not children:
            self.arrays.pop(parent, None)
            self.summaries.pop(parent, None)
            self.listed.pop(parent, None)

    def submitted(self) -> list[BatchHandle]:
        return list(self.active.values()) + [h for children in self.arrays.values()
                                             for packed in children.values() for h in packed]

    def siblings(self, handles: list[BatchHandle]) -> list[BatchHandle]:
        """The other jobs packed with these (one Batch job runs them all: stopping one stops them)."""
        packs = {batch_id(h.job_id) for h in handles if pack_place(h.job_id) is not None}
        if not packs:
            return []
        chosen = set(handles)
        return [h for h in self.submitted() if h not in chosen and batch_id(h.job_id) in packs]

    def poll(self) -> tuple[bool, list[tuple[BatchHandle, Outcome]]]:
        """(news, the jobs that ended with their outcomes), untracked."""
        described = self.service.describe({batch_id(i) for i in self.active} | set(self.arrays))
        news, ended = self._singles(described)
        array_news, children, failed_children = self._children(described)
        ended += children
        if failed_children:   # their reason, exit code and log stream
            more = self.service.describe([h.job_id for h in failed_children])
            ended += [(h, more.get(h.job_id, {})) for h in failed_children]
        for handle, desc in ended:   # a failed pack's members that succeeded did so
            if handle.status == "FAILED" and self._member_code(handle, desc) == 0:
                handle.status = "SUCCEEDED"
        # every status first: a job may be listed before the upstream job whose failure failed
        # it, and outcome() must see that upstream as FAILED
        for handle, _ in ended:
            if handle.status == "FAILED":
                self.failed_units.add(handle.unit)
        outcomes = []
        packs = Counter(batch_id(h.job_id) for h, _ in ended if pack_place(h.job_id) is not None)
        for handle, desc in ended:
            self.untrack(handle)
            outcome = self.outcome(handle, desc)
            if pack_place(handle.job_id) is not None and outcome.usage:   # its members end together
                outcome.usage["packed"] = packs[batch_id(handle.job_id)]
            outcomes.append((handle, outcome))
        return news or array_news or bool(ended), outcomes

    def _singles(self, described: dict[str, dict]) -> tuple[bool, list[tuple[BatchHandle, dict]]]:
        news, ended = False, []
        for job_id, handle in list(self.active.items()):
            desc = described.get(batch_id(job_id))
            if desc and desc.get("status") != handle.status:
                news = True
                handle.status = desc["status"]
                if handle.status in FINAL_STATES:
                    ended.append((handle, desc))
        return news, ended

    def _children(self, described: dict[str, dict]):
        """(news, children that succeeded with their summaries, children that failed)."""
        news, ended, failed = False, [], []
        for parent, children in list(self.arrays.items()):
            desc = described.get(parent) or {}
            counts = (desc.get("arrayProperties") or {}).get("statusSummary") or {}
            news = news or counts != self.summaries.get(parent, {})
            self.summaries[parent] = counts
            # list a final state while it counts more children than its last listing showed
            listed = self.listed.setdefault(parent, {})
            finals = [s for s in FINAL_STATES if counts.get(s, 0) > listed.get(s, 0)]
            if desc.get("status") in FINAL_STATES and not counts:
                finals = list(FINAL_STATES)
            if not finals:
                continue
            children_listed = self.service.list_jobs(None, finals, array_job_id=parent)
            for state in finals:
                listed[state] = sum(1 for c in children_listed if c.get("status") == state)
            for summary in children_listed:
                for handle in children.get(child_index(summary["jobId"])[1], []):
                    if handle.status in FINAL_STATES:
                        continue
                    handle.status = summary["status"]
                    if handle.status == "FAILED":
                        failed.append(handle)
                    else:
                        ended.append((handle, summary))
        return news, ended, failed

    def doomed(self) -> list[BatchHandle]:
        """Submitted jobs that wait for a whole job or array with a failure, or for a job held to
        go again (an N_TO_N child too): Batch will never run them (though some need none of what
        failed: another child of an array they wait for)."""
        doomed = [h for h in self.submitted() if self.failed_units.intersection(h.waits_on)
                  or any(u.status == "WAITING" for u in h.upstream)]
        return doomed + self.siblings(doomed)

    def _member_code(self, handle: BatchHandle, desc: dict) -> int | None:
        """A packed job's exit code, from its failed pack's log; None when the log does not say."""
        k = pack_place(handle.job_id)
        if k is None:
            return None
        pack = batch_id(handle.job_id)
        if pack not in self._pack_logs:
            self._pack_logs[pack] = self.service.log_lines(desc, last=PACK_LOG_LINES)
        codes = exit_codes(self._pack_logs[pack])
        return codes[k] if codes is not None and k < len(codes) else None

    def outcome(self, handle: BatchHandle, desc: dict) -> Outcome:
        """How a finished job ended; a failure says its cause first (``failures.cause``), and
        the causes of earlier attempts Batch retried."""
        container = desc.get("container") or {}
        used = usage_of(desc)
        if handle.status == "SUCCEEDED":   # a packed job that succeeded in a failed pack: exit 0
            code = 0 if pack_place(handle.job_id) is not None else container.get("exitCode", 0)
            return Outcome(True, code, external_id=handle.job_id, usage=used)
        upstream_failed = handle.upstream_failed() or bool(self.failed_units.intersection(handle.waits_on))
        member = None if upstream_failed else self._member_code(handle, desc)
        if member is not None:   # the pack ran it: its own exit code, and the pack's log
            return Outcome(False, member, f"{APPLICATION}: exit code {member} (packed in job {batch_id(handle.job_id)})",
                           self._pack_logs.get(batch_id(handle.job_id), [])[-15:], external_id=handle.job_id,
                           cause=APPLICATION, usage=used)
        code = container.get("exitCode")
        why = DEPENDENCY if upstream_failed else cause(desc)
        reason = desc.get("statusReason") or container.get("reason") or ""
        detail = f"exit code {code}" + (f" ({reason})" if reason else "") if code is not None else reason
        text = f"{why}: {detail}" if detail else why
        earlier = attempt_causes(desc)[:-1]
        if earlier:
            text += f" (after {len(earlier)} retried: {', '.join(earlier)})"
        tail = [] if upstream_failed else self.service.log_lines(desc, last=15)
        return Outcome(False, code, text, tail, external_id=handle.job_id, upstream_failed=upstream_failed,
                       cause=why, usage=used)

    def state_counts(self, waiting) -> dict[str, dict[str, int]]:
        """Per rule, jobs per Batch state; an array's children as its statusSummary counts them."""
        counts: dict[str, Counter] = {}
        for handle in [*self.active.values(), *waiting]:
            counts.setdefault(handle.job.rule.name, Counter())[handle.status] += 1
        for parent, children in self.arrays.items():
            rule = next(iter(children.values()))[0].job.rule.name
            summary = self.summaries.get(parent)
            active = {s: summary.get(s, 0) for s in ACTIVE_STATES} if summary else {}
            packed = max(len(p) for p in children.values())
            if sum(active.values()) != len(children) or packed > 1:   # not known yet, shared, or packed
                active = Counter(h.status for p in children.values() for h in p)
            counts.setdefault(rule, Counter()).update(active)
        return {rule: {k: v for k, v in c.items() if v} for rule, c in counts.items()}
