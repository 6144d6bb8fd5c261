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
from typing import Iterable

from ..model import Job
from .identity import ALL_TRIGGERS, DEFAULT_TRIGGERS, TRIGGERS, Identity, changed, explain
from .journal import Journal
from .objects import Objects
from .records import FAILED, FINISHED, STARTED, UNRECORDED, Record

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

    def _is_local(self, job: Job) -> bool:
        return self.storage.is_local(job.outputs[0])

    @staticmethod
    def _key(job: Job) -> str:
        outputs = job.outputs
        return outputs[0] if len(outputs) == 1 else "\x1f".join(outputs)

    def lookup(self, jobs: Iterable[Job]) -> dict[Job, Record]:
        """The last record of each job that has one."""
        return {job: rec for job, rec in self._lookup(jobs).items() if rec.state != UNRECORDED}

    def _lookup(self, jobs: Iterable[Job]) -> dict[Job, Record]:
        local, remote = [], []
        for job in jobs:
            (local if self._is_local(job) else remote).append(job)
        found: dict[Job, Record] = {}
        if local:
            latest = self.journal.read()
            if latest:
                key, get = self._key, latest.get
                for job in local:
                    rec = get(key(job))
                    if rec is not None:
                        found[job] = rec
        if remote:
            found.update(self.objects.read(remote))
        return found

    def describe(self, job: Job) -> dict:
        return self.identity.describe(job)

    def explain(self, job: Job) -> list[str]:
        """What changed in ``job`` since its record: a short diff, or why it cannot be shown."""
        old = self.journal.body(self._key(job)) if self._is_local(job) else self.objects.body(job)
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
                local.append((self._key(job), rec))
                if state != STARTED and not self.notes:
                    try:
                        self.journal.write_body(self._key(job), {**self.describe(job), **details, "state": state,
                                                                 "where": where, "time": now})
                    except OSError:
                        pass   # only --explain misses it; the journal line below says the rest
            else:
                remote.append((job, rec, {**self.describe(job), **details, "state": state, "where": where,
                                          "time": now}))
        if local and not self.notes:
            try:
                self.journal.append(local)
            except OSError as exc:   # .s3rules/ is in the way: say so once, run on unrecorded
                self.notes.append(f"cannot keep the job ledger in {self.journal.directory} ({exc.strerror or exc}); "
                                  "this run's local jobs are not recorded, so a crash could leave a half-written "
                                  "output that counts as done. Move what is in the way.")
        self.objects.write(remote)

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

    def restore(self, job: Job, previous: Record | None) -> None:
        """A failed rerun left the previous outputs as they were: so is their record again (or
        none, for outputs that had none)."""
        now = time.time()
        rec = (previous._replace(time=now, name="") if previous is not None
               else Record(now, UNRECORDED, self.identity.hashes(job)))
        if self._is_local(job):
            if not self.notes:
                try:
                    self.journal.append([(self._key(job), rec)])
                except OSError:
                    pass
        else:
            self.objects.write([(job, rec, {"state": rec.state, "restored": True, "time": now})])

    def close(self) -> None:
        """Delete superseded records and keep the journal short; best effort."""
        self.objects.flush()
        try:
            self.journal.compact()
        except OSError:
            pass
