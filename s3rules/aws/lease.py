"""A lease on S3: one s3rules run at a time submits to a queue.

Listing the jobs in flight and then submitting is not atomic: two runs started at the same
moment (two machines, one queue) would both see nothing in flight and both submit. The
holder of the lease is the only run that lists-then-submits. The lease is one S3 object:

* created with ``If-None-Match: *``, so exactly one of several creators wins;
* renewed with ``If-Match`` on its ETag while the holder works, so a holder that lost it
  (it expired while the process was stopped) finds out instead of overwriting;
* released by marking it expired, again with ``If-Match``, so it never ends another's lease.

A holder that dies stops renewing, and its lease expires after ``ttl`` seconds. A lease
held by a process that no longer exists on this same machine is taken over at once.
The lease also carries ``recent``: the jobs submitted under it lately. The next holder
reads them, which covers the seconds during which Batch's ListJobs may not yet show a
job that was just submitted.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Callable

from .client import aws_errors, s3_client as new_s3_client
from ..errors import AwsSetupError
from .policy import LEASE_RECENT, LEASE_TTL, LEASE_WAIT



def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def split_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://"):].partition("/")
    return bucket, key


class Lease:
    def __init__(self, url: str, s3_client=None, ttl: float = LEASE_TTL, wait: float = LEASE_WAIT,
                 on_wait: Callable[[str], None] | None = None):
        if not url.startswith("s3://"):
            raise ValueError(f"a lease lives on S3, not at {url}")
        self.url = url
        self.bucket, self.key = split_s3_url(url)
        if s3_client is None:
            s3_client = new_s3_client()
        self.s3 = s3_client
        self.ttl, self.wait = ttl, wait
        self.on_wait = on_wait
        self.owner = uuid.uuid4().hex
        self.etag: str | None = None
        self.renewed_at = 0.0
        self.recent: list[dict] = []

    # -- the lease object -----------------------------------------------------------------
    def _body(self) -> bytes:
        now = time.time()
        self.recent = [r for r in self.recent if now - r.get("at", 0) < LEASE_RECENT]
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "boot": _boot_id(),
                           "pid": os.getpid(), "expires": now + self.ttl, "recent": self.recent}).encode()

    def _put(self, **condition) -> bool:
        """One conditional write; False when the condition failed (someone else holds it)."""
        from botocore.exceptions import ClientError
        with aws_errors(f"writing the submission lease {self.url}"):
            try:
                reply = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                           ContentType="application/json", **condition)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status in (409, 412):   # PreconditionFailed, or a concurrent conditional write
                    return False
                raise
        self.etag = reply["ETag"]
        self.renewed_at = time.monotonic()
        return True

    def _read(self) -> tuple[dict, str] | None:
        from botocore.exceptions import ClientError
        with aws_errors(f"reading the submission lease {self.url}"):
            try:
                reply = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            raw = reply["Body"].read()
        try:
            return json.loads(raw), reply["ETag"]
        except ValueError:
            return {"expires": 0}, reply["ETag"]   # unreadable: treat as expired

    @staticmethod
    def _stale(holder: dict) -> bool:
        if holder.get("expires", 0) < time.time():
            return True
        same_machine = holder.get("host") == socket.gethostname() and holder.get("boot") == _boot_id()
        return same_machine and isinstance(holder.get("pid"), int) and not _alive(holder["pid"])

    # -- public ---------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self.etag is not None

    def acquire(self) -> None:
        """Block until this run holds the lease (or ``wait`` seconds pass: an error)."""
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            if self._put(IfNoneMatch="*"):
                return
            current = self._read()
            if current is None:
                continue   # released in between: try to create it again
            holder, etag = current
            if holder.get("owner") == self.owner:   # our create landed; its answer was lost
                self._adopt(etag)
                return
            self.recent = holder.get("recent", [])
            if self._stale(holder) and self._put(IfMatch=etag):
                return
            if time.monotonic() > deadline:
                raise AwsSetupError(
                    f"another s3rules run ({holder.get('host')}, pid {holder.get('pid')}) has been submitting to "
                    f"this queue for over {int(self.wait)} s and holds {self.url}; if that run is gone, delete "
                    "the object and run again")
            if not told and self.on_wait:
                self.on_wait(f"waiting for another s3rules run ({holder.get('host')}, pid {holder.get('pid')}) "
                             "that is submitting to the same queue")
                told = True
            time.sleep(min(2.0, max(0.2, self.ttl / 10)))

    def renew_if_due(self) -> None:
        """Keep the lease while working; losing it (expired and taken) stops the run cleanly."""
        if self.etag is None or time.monotonic() - self.renewed_at < self.ttl / 3:
            return
        self.write()

    def write(self) -> None:
        """Renew now (and save ``recent``); an error if another run has taken the lease."""
        if self.etag is None:
            return
        if not self._put(IfMatch=self.etag):
            current = self._read()
            if current is not None and current[0].get("owner") == self.owner:
                self._adopt(current[1])   # our write landed; its answer was lost
                return
            self.etag = None
            raise AwsSetupError(f"lost the submission lease {self.url} (this run was paused for longer than "
                                f"{int(self.ttl)} s and another run took over); run s3rules again: it "
                                "submits nothing twice")

    def _adopt(self, etag: str) -> None:
        self.etag = etag
        self.renewed_at = time.monotonic()

    def intend(self, names: list[str]) -> None:
        """Record names about to be submitted, before submitting them: if this run dies between
        SubmitJob and its answer, the next holder still knows to look for these jobs."""
        now = time.time()
        self.recent.extend({"name": n, "at": now} for n in names)
        self.write()

    def remember(self, name: str, job_id: str) -> None:
        for entry in self.recent:
            if entry.get("name") == name and "jobId" not in entry:
                entry["jobId"], entry["at"] = job_id, time.time()
                return
        self.recent.append({"name": name, "jobId": job_id, "at": time.time()})

    def release(self) -> None:
        """Give the lease up, keeping ``recent`` for the next holder in a last write."""
        from botocore.exceptions import ClientError
        if self.etag is None:
            return
        etag, self.etag = self.etag, None
        try:
            with aws_errors(f"releasing the submission lease {self.url}"):
                # the next holder reads what was just submitted: an expired lease with `recent`
                reply = self.s3.put_object(Bucket=self.bucket, Key=self.key, IfMatch=etag,
                                           Body=json.dumps({"expires": 0, "recent": self.recent}).encode())
        except (AwsSetupError, ClientError):
            return   # it expired and was taken: nothing of ours to release
        del reply

    def __enter__(self) -> "Lease":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
