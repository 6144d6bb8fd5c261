"""The job ledger: what s3rules started and finished, kept beside the outputs.

Existence alone cannot tell a finished output from one a killed job left half-written, nor an
output from one an older command made. So every job gets a record when it starts and another
when it finishes (or fails), where its first output lives: local outputs in the workspace's
``.s3rules/ledger/`` (:mod:`.journal`), URL outputs under their bucket's ``.s3rules/ledger/``
(:mod:`.objects`). A plan then reads them: a job whose last record is not "finished" is
incomplete, and one whose recorded identity (:mod:`.identity`) differs from today's has changed.
A job with no record at all (outputs made by hand, before the ledger, or a deleted ledger)
counts as done when its outputs exist: losing the ledger loses change detection, nothing more.
"""
from __future__ import annotations

import os
import time
from operator import attrgetter
from typing import Iterable

from ..model import Job
from .identity import ALL_TRIGGERS, DEFAULT_TRIGGERS, TRIGGERS, Identity, changed, explain
from .history import History
from .journal import Journal
from .objects import Objects
from .records import FAILED, FINISHED, STARTED, UNRECORDED, Record, parse

#: what a run's history keeps of how each job ran (``runner.Runner._details``)
HISTORY_DETAILS = ("exit", "reason", "cause", "usage", "log", "log_tail", "upstream_failed")

__all__ = ["Ledger", "Record", "TRIGGERS", "ALL_TRIGGERS", "DEFAULT_TRIGGERS", "STARTED", "FINISHED",
           "FAILED", "changed"]


class Ledger:
    """Reads and writes the records of jobs, each in the place its first output decides."""

    def __init__(self, storage, base_dir: str, state_dir: str):
        self.storage = storage
        self.identity = Identity(base_dir)
        self.journal = Journal(os.path.join(state_dir, "ledger"), base_dir)
        self.objects = Objects(storage)
        self.notes: list[str] = []   # what the person running s3rules should know (said once)
        self.history: History | None = None   # set by a run: how each job ran, for reports

    def _is_local(self, job: Job) -> bool:
        return self.storage.is_local(job.outputs[0])

    @staticmethod
    def _key(job: Job) -> str:
        return job.outputs[0]   # one rule makes each output: the first one names the job

    def lookup(self, jobs: Iterable[Job]) -> dict[Job, Record]:
        """The last record of each job that has one."""
        local, remote = [], []
        for job in jobs:
            (local if self._is_local(job) else remote).append(job)
        found: dict[Job, Record] = {}
        if local:
            summaries = self.journal.summaries()
            if summaries:
                key = self.journal.lookup_key
                for job in local:
                    summary = summaries.get(key(job.outputs[0]))
                    if summary is not None:
                        found[job] = parse(summary)
        if remote:
            found.update(self.objects.read(remote))
        return {job: rec for job, rec in found.items() if rec.state != UNRECORDED}

    def verdicts(self, jobs: list[Job], triggers: tuple[str, ...]) -> dict[Job, str]:
        """Job -> "incomplete" (its last record is not "finished") or the first of ``triggers``
        whose hash differs from its record; jobs with no record or an unchanged one are left out.

        Every plan asks this of every job, so a rule is first judged whole by the journal's
        index: when all its lines say "finished" with the hashes all its jobs have today, none
        of its jobs is looked at. The others are looked up one by one.
        """
        rules = set(map(attrgetter("rule"), jobs))
        clean = self._clean_rules(rules, triggers) | {rule for rule in rules if not rule.outputs}
        if clean >= rules:
            return {}
        return self._verdicts([job for job in jobs if job.rule not in clean], triggers)

    def left_open(self, jobs: list[Job]) -> list[Job]:
        """The jobs whose last record says they started and never finished (or failed). Rules
        whose journal lines all say "finished" are passed over whole, as in :meth:`verdicts`."""
        rules = set(map(attrgetter("rule"), jobs))
        index = self.journal.prefixes()
        settled = set()
        if set(index) <= {rule.name for rule in rules}:
            for rule in rules:
                pattern = rule.outputs[0] if rule.outputs else None
                seen = index.get(rule.name, set())
                if pattern is None or (not pattern.whole and "://" not in pattern.text and seen is not None
                                       and all(p[:2] in (FINISHED + " ", UNRECORDED + " ") for p in seen)):
                    settled.add(rule)
        if settled >= rules:
            return []
        todo = [job for job in jobs if job.rule not in settled]
        return [job for job, rec in self.lookup(todo).items() if rec.open]

    def _clean_rules(self, rules, triggers: tuple[str, ...]) -> set:
        """The rules whose local jobs all have an unchanged "finished" record or none."""
        index = self.journal.prefixes()
        names = {rule.name for rule in rules}
        if not set(index) <= names:   # records of rules this workflow does not have: look closely
            return set()
        clean = set()
        for rule in rules:
            pattern = rule.outputs[0] if rule.outputs else None
            if pattern is None or pattern.whole or "://" in pattern.text:
                continue
            seen = index.get(rule.name, set())
            if not seen:   # no line at all: nothing recorded, nothing to compare
                if seen is not None:
                    clean.add(rule)
                continue
            same = self.identity.same(rule) if triggers else None
            if triggers and same is None:
                continue
            fine = {FINISHED + " " + " ".join(same)} if same else set()
            if all(p in fine or p.startswith(UNRECORDED + " ") or (not triggers and p.startswith(FINISHED + " "))
                   for p in seen):
                clean.add(rule)
        return clean

    def _verdicts(self, jobs: list[Job], triggers: tuple[str, ...]) -> dict[Job, str]:
        out: dict[Job, str] = {}
        hashes = self.identity.hashes
        for job, rec in self.lookup(jobs).items():
            verdict = _verdict(rec, hashes(job) if triggers else (), triggers)
            if verdict:
                out[job] = verdict
        return out

    def describe(self, job: Job) -> dict:
        return self.identity.describe(job)

    def body(self, job: Job) -> dict | None:
        """The whole last record of ``job`` (how it ran, why it failed), if it was written and kept."""
        return self.journal.body(self._key(job)) if self._is_local(job) else self.objects.body(job)

    def explain(self, job: Job) -> list[str]:
        """What changed in ``job`` since its record: a short diff, or why it cannot be shown."""
        old = self.body(job)
        if old is None:
            return ["(the recorded details are gone; only their hashes are left)"]
        return explain(old, self.describe(job))

    # -- writing ------------------------------------------------------------------------------

    def record(self, jobs: list[tuple[Job, str, dict]], state: str) -> None:
        """Write one record per (job, where, details) in ``state``; details go into the body."""
        now = time.time()
        local, remote = [], []
        for job, where, details in jobs:
            rec = Record(now, state, self.identity.hashes(job), where)
            if self._is_local(job):
                local.append((self._key(job), rec, job.rule.name))
                if state != STARTED and not self.notes:
                    try:
                        self.journal.write_body(self._key(job), {**self.describe(job), **details, "state": state,
                                                                 "where": where, "time": now})
                    except OSError:
                        pass   # only --explain misses it; the journal line below says the rest
            else:
                remote.append((job, rec, {**self.describe(job), **details, "state": state, "where": where,
                                          "time": now}))
        if self.history is not None and state != STARTED:
            self.history.jobs([self._history_line(job, state, where, details, now) for job, where, details in jobs])
        if local and not self.notes:
            try:
                self.journal.append(local)
            except OSError as exc:   # .s3rules/ is in the way: say so once, run on unrecorded
                self.notes.append(f"cannot keep the job ledger in {self.journal.directory} ({exc.strerror or exc}); "
                                  "this run's local jobs are not recorded, so a crash could leave a half-written "
                                  "output that counts as done. Move what is in the way.")
        self.objects.write(remote)

    def history_key(self, job: Job) -> str:
        """How a run's history names ``job``: its first output, relative to the workspace."""
        return self.identity.relative(job.outputs[0]) if job.outputs else job.rule.name

    def _history_line(self, job: Job, state: str, where: str, details: dict, now: float) -> dict:
        """What the run's history keeps of a job that ended: the facts a report needs, not what the
        job is (its command, inputs), which the ledger record keeps."""
        s = job.settings
        line = {"key": self.history_key(job),
                "rule": job.rule.name, "wildcards": job.wildcards, "state": state, "time": round(now, 3),
                "where": where, "vcpus": s.vcpus, "memory": s.memory}
        line.update((k, details[k]) for k in HISTORY_DETAILS if details.get(k) not in (None, "", [], {}))
        return line

    def started(self, jobs: Iterable[Job], where: dict[Job, str] | None = None) -> None:
        where = where or {}
        self.record([(job, where.get(job, ""), {}) for job in jobs], STARTED)

    def finished(self, jobs: list[Job], outputs: dict[str, float], details: dict[Job, dict] | None = None) -> None:
        """Jobs whose outputs are complete; ``outputs`` maps each output to its mtime."""
        details = details or {}
        self.record([(job, details.get(job, {}).get("where", ""),
                      {**details.get(job, {}), "outputs": {self.identity.relative(o): self._written(o, outputs)
                                                           for o in job.outputs}})
                     for job in jobs], FINISHED)

    def _written(self, path: str, mtimes: dict[str, float]) -> dict:
        """What a record keeps of an output: its mtime, and its size where that costs no request."""
        facts: dict = {"mtime": mtimes.get(path)}
        if self.storage.is_local(path):
            try:
                facts["size"] = os.path.getsize(path)
            except OSError:
                pass
        return facts

    def where(self, jobs: Iterable[Job]) -> dict[Job, str]:
        """Where each job's last record says it ran ("local:<pid>", "batch:<job id>"), if known."""
        return {job: rec.where for job, rec in self.lookup(jobs).items() if rec.where}

    def failed(self, jobs: list[tuple[Job, dict]]) -> None:
        self.record([(job, d.get("where", ""), d) for job, d in jobs], FAILED)

    def restore(self, job: Job, previous: Record | None, details: dict | None = None) -> None:
        """A failed rerun left the previous outputs as they were: so is their record again (or
        none, for outputs that had none). The run's history still says it failed (``details``)."""
        now = time.time()
        if self.history is not None:
            d = details or {}
            self.history.jobs([{**self._history_line(job, FAILED, d.get("where", ""), d, now), "restored": True}])
        rec = (previous._replace(time=now, name="") if previous is not None
               else Record(now, UNRECORDED, self.identity.hashes(job)))
        if self._is_local(job):
            if not self.notes:
                try:
                    self.journal.append([(self._key(job), rec, job.rule.name)])
                except OSError:
                    pass
        else:   # the whole old record again (what --explain compares with), not only its hashes
            old = self.objects.record_body(previous) if previous is not None else None
            self.objects.write([(job, rec, {**(old or {}), "state": rec.state, "restored": True, "time": now})])

    def close(self) -> None:
        """Delete superseded records and keep the journal short; best effort."""
        self.objects.flush()
        try:
            self.journal.compact()
        except OSError:
            pass


def _verdict(rec: Record, now: tuple[str, ...], triggers: tuple[str, ...]) -> str | None:
    if rec.state == UNRECORDED:
        return None
    if rec.open:
        return "incomplete"
    name = changed(rec.hashes, now, triggers) if triggers else None
    return f"changed: {name}" if name else None

