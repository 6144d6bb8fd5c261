"""``AWSBatchHelper``: the original helper's API (``add_job`` / ``monitor``) on s3rules' submission layer.

``add_job`` returns the jobId, or None when every output already exists; an identical job
already in flight is reused, never submitted twice. ``monitor`` watches until every job has
finished and calls a job SUCCEEDED only when Batch says so *and* all its outputs exist. A dry
run never speaks to Batch, so it needs no AWS region or credentials.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

from tqdm import tqdm

from .aws.jobspec import FINAL_STATES, MAX_DEPENDS_ON, JobSpec
from .aws.policy import Backoff
from .aws.service import BatchService
from .aws.submitter import Submitter
from .errors import S3RulesError, StorageError
from .storage import Storage


class AWSBatchHelper:
    def __init__(self, job_queue: str, dry_run: bool = False, *, poll_interval: float = 5.0,
                 poll_limit: float = 60.0, service: BatchService | None = None, storage: Storage | None = None):
        self.job_queue = job_queue
        self.dry_run = dry_run
        self.poll_interval, self.poll_limit = poll_interval, poll_limit
        self._service = service
        self._submitter: Submitter | None = None
        self.storage = storage or Storage()
        self.jobs: dict[str, JobSpec] = {}     # jobId -> spec, in order added
        self._dry = 0

    @property
    def submitter(self) -> Submitter:
        """Made on first use: a dry run never makes one, so it needs no AWS region or credentials."""
        if self._submitter is None:
            self._submitter = Submitter(self._service or BatchService())
        return self._submitter

    @property
    def service(self) -> BatchService:
        return self.submitter.service

    def add_job(self, job_name: str, job_definition: str, outputs=(), depends_on=(), command=(),
                parameters: dict | None = None, vcpus: float | None = None, memory: int | None = None,
                environment: dict | None = None, retries: int = 0, timeout: int | None = None,
                gpus: int = 0, tags: dict | None = None, retries_infra: int = 5) -> str | None:
        """Submit a job unless its outputs exist (-> None) or an identical one is in flight (-> its id).

        Without ``command`` the job definition's own command runs.
        """
        outputs = tuple(outputs)
        unchecked = ""
        if outputs:
            try:
                present = self.storage.stat_many(outputs)
            except StorageError as exc:
                if not self.dry_run:
                    raise
                present, unchecked = {}, f" (its outputs were not checked: {exc})"
            if len(present) == len(outputs):
                return None
        depends = [d for d in depends_on if d]
        if len(depends) > MAX_DEPENDS_ON:
            raise S3RulesError(f"add_job({job_name!r}): AWS Batch allows at most {MAX_DEPENDS_ON} dependencies, "
                               f"got {len(depends)}; wait for some with monitor() first, or group them")
        spec = JobSpec(label=job_name, queue=self.job_queue, job_definition=job_definition,
                       command=tuple(str(c) for c in command), outputs=outputs, vcpus=vcpus, memory=memory,
                       gpus=gpus, environment=tuple(sorted((environment or {}).items())),
                       parameters=tuple(sorted((k, str(v)) for k, v in (parameters or {}).items())),
                       retries=retries, retries_infra=retries_infra, timeout=timeout,
                       tags=tuple(sorted((tags or {}).items())))
        if self.dry_run:
            self._dry += 1
            job_id = f"dry-run-{self._dry}"
            print(f"[dry run] would submit {spec.name} to {self.job_queue}"
                  + (f" after {', '.join(depends)}" if depends else "") + unchecked, file=sys.stderr)
            self.jobs[job_id] = spec
            return job_id
        if not self.jobs:
            self.service.check_queue(self.job_queue)
        self.service.check_job_definition(job_definition)
        job_id, _ = self.submitter.submit(spec, depends)
        self.jobs[job_id] = spec
        return job_id

    def monitor(self, quiet: bool = False) -> dict[str, str]:
        """Watch every added job until it finishes; {jobId: "SUCCEEDED" | "FAILED"}."""
        if self.dry_run:
            return {job_id: "DRY_RUN" for job_id in self.jobs}
        status: dict[str, str] = {}
        active = [j for j in self.jobs]
        backoff = Backoff(self.poll_interval, self.poll_limit)
        bar = None if quiet else tqdm(total=len(active), unit="job", desc="batch", file=sys.stderr)
        try:
            while active:
                time.sleep(backoff.wait_time())
                changed = self.submitter.refresh(active)
                for job_id in active:
                    status[job_id] = self.submitter.track(job_id).status
                done = [j for j in active if status[j] in FINAL_STATES]
                active = [j for j in active if status[j] not in FINAL_STATES]
                if bar is not None:
                    bar.update(len(done))
                    counts = Counter(status[j] for j in active)
                    bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
                backoff.polled(bool(changed))
        finally:
            if bar is not None:
                bar.close()
        self._confirm_outputs(status)
        return status

    def _confirm_outputs(self, status: dict[str, str]) -> None:
        """SUCCEEDED without every output is a failure (as the original helper reported it)."""
        claimed = [o for j, s in status.items() if s == "SUCCEEDED" for o in self.jobs[j].outputs]
        if not claimed:
            return
        self.storage.invalidate(claimed)
        present = self.storage.stat_many(claimed)
        for job_id, s in status.items():
            if s == "SUCCEEDED" and any(o not in present for o in self.jobs[job_id].outputs):
                status[job_id] = "FAILED"
                print(f"s3rules: job {self.jobs[job_id].name} ({job_id}) SUCCEEDED but did not write all of "
                      "its outputs; counted as FAILED", file=sys.stderr)
