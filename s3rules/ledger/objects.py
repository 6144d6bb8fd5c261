"""Records of jobs whose outputs are URLs (S3, or any fsspec store), under the bucket's ``.s3rules/ledger/``.

Each event is one object whose *name* is the summary a plan needs:
``<bucket>/.s3rules/ledger/<rule>-<pattern hash>/<job hash>.<ms>.<state>.<command>.<params>.<input>.<resources>.<where>``
and whose body is the full record. One listing of a rule's folder (1,000 names per ListObjectsV2
on S3) gives every record of that rule's jobs, so reading N records costs about N/1000 requests
and no GET. Superseded objects are deleted in bulk (DeleteObjects takes 1,000 keys).
"""
from __future__ import annotations

import hashlib
import json
import re

from ..errors import StorageError
from ..model import Job
from .identity import short_hash
from .records import Record

_WHERE = re.compile(r"[^A-Za-z0-9:#_-]")   # "batch:<array>:<i>#<k>" for a packed job


def root_of(url: str) -> str:
    """``s3://bucket/a/b`` -> ``s3://bucket``: where that bucket's s3rules state lives."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def job_hash(job: Job) -> str:
    return hashlib.blake2b("\x1f".join(job.outputs).encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()


class Objects:
    """The ledger of URL outputs, read once per rule folder and written in bulk."""

    def __init__(self, storage):
        self.storage = storage
        self._folders: dict[str, dict[str, Record]] = {}   # folder -> job hash -> latest record
        self.stale: list[str] = []                          # superseded records, deleted by flush()
        self.requests = 0                                   # listings made (for the bench)

    @staticmethod
    def folder(job: Job) -> str:
        rule = job.rule
        return (f"{root_of(job.outputs[0])}/.s3rules/ledger/"
                f"{rule.name}-{short_hash(rule.outputs[0].text)}")

    def _listing(self, folder: str) -> dict[str, Record]:
        known = self._folders.get(folder)
        if known is not None:
            return known
        fs = self.storage.filesystem(folder)
        try:
            fs.invalidate_cache(folder)
            names = fs.ls(folder, detail=False)
        except FileNotFoundError:
            names = []
        except Exception as exc:   # noqa: BLE001 - reported as a storage error with the place
            raise StorageError(f"cannot read the job ledger at {folder}: {exc}. Check that your "
                               "credentials may list that bucket.") from None
        self.requests += 1 + len(names) // 1000
        known = self._folders[folder] = {}
        for name in names:
            parts = name.rsplit("/", 1)[-1].split(".", 7)
            if len(parts) != 8:
                continue
            rec = Record(int(parts[1]) / 1000, parts[2], tuple(parts[3:7]), parts[7], f"{folder}/{name.rsplit('/', 1)[-1]}")
            old = known.get(parts[0])
            if old is None or old.time <= rec.time:
                if old is not None:
                    self.stale.append(old.name)
                known[parts[0]] = rec
            else:
                self.stale.append(rec.name)
        return known

    def read(self, jobs) -> dict[Job, Record]:
        found = {}
        for job in jobs:
            rec = self._listing(self.folder(job)).get(job_hash(job))
            if rec is not None:
                found[job] = rec
        return found

    def write(self, entries: list[tuple[Job, Record, dict]]) -> None:
        """Store records (each replaces its job's earlier one) in one concurrent batch."""
        if not entries:
            return
        by_fs: dict[int, tuple[object, dict[str, bytes]]] = {}
        for job, rec, body in entries:
            folder, key = self.folder(job), job_hash(job)
            where = _WHERE.sub("_", rec.where)
            path = f"{folder}/{key}.{int(rec.time * 1000)}.{rec.state}.{'.'.join(rec.hashes)}.{where}"
            known = self._listing(folder)
            old = known.get(key)
            if old is not None and old.name != path:
                self.stale.append(old.name)
            known[key] = rec._replace(name=path)
            fs = self.storage.filesystem(path)
            by_fs.setdefault(id(fs), (fs, {}))[1][path] = json.dumps(body).encode()
        for fs, group in by_fs.values():
            try:
                fs.pipe(group)
            except Exception as exc:   # noqa: BLE001
                raise StorageError(f"cannot write the job ledger under {next(iter(group)).rsplit('/', 1)[0]}: "
                                   f"{exc}. Check that your credentials may write there.") from None

    def flush(self) -> None:
        """Delete superseded records (a failure only leaves them to be deleted next time)."""
        stale, self.stale = self.stale, []
        by_fs: dict[int, tuple[object, list[str]]] = {}
        for path in stale:
            fs = self.storage.filesystem(path)
            by_fs.setdefault(id(fs), (fs, []))[1].append(path)
        for fs, paths in by_fs.values():
            try:
                fs.rm(paths)
            except Exception:   # noqa: BLE001 - stale records cost a little listing, nothing else
                self.stale.extend(paths)

    def body(self, job: Job) -> dict | None:
        rec = self._listing(self.folder(job)).get(job_hash(job))
        return None if rec is None else self.record_body(rec)

    def record_body(self, rec: Record) -> dict | None:
        """The body of one record object (a superseded one stays until ``flush``)."""
        if not rec.name:
            return None
        try:
            return json.loads(self.storage.filesystem(rec.name).cat(rec.name))
        except Exception:   # noqa: BLE001 - --explain shows less, nothing else
            return None
