"""The Batch and CloudWatch Logs calls s3rules makes, as a thin wrapper over boto3.

Pagination is botocore's paginators; retries and pacing are ``policy``'s. What this adds:
DescribeJobs in groups of 100, in-flight listing per status, lookups by name, set-up checks
that say what to fix, and SubmitJob sent exactly once per call (see ``Submitter``).
"""
from __future__ import annotations

from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                 NoRegionError, PartialCredentialsError)

from ..errors import AwsSetupError
from ..executors.base import usage
from .client import SubmitRefused, SubmitUnknown, aws_errors, session as default_session
from .jobspec import ACTIVE_STATES, DESCRIBE_BATCH, chunks
from .naming import batch_id
from .policy import RETRY_CONFIG, SUBMIT_CONFIG, THROTTLING_CODES, pace

DEFAULT_LOG_GROUP = "/aws/batch/job"


def usage_of(desc: dict) -> dict:
    """A DescribeJobs (or ListJobs) answer's times, as ``executors.base.usage`` keeps them:
    Batch gives milliseconds since the epoch; CPU time and memory used it does not know."""
    def seconds(key: str) -> float | None:
        value = desc.get(key)
        return value / 1000 if isinstance(value, (int, float)) and value > 0 else None
    attempts = desc.get("attempts") if isinstance(desc.get("attempts"), list) else []
    used = usage(seconds("createdAt"), seconds("startedAt"), seconds("stoppedAt"), attempts=len(attempts) or None)
    if len(attempts) > 1:   # every attempt ran on capacity that was paid for
        used["billed"] = round(sum(max(0, a["stoppedAt"] - a["startedAt"]) for a in attempts
                                   if a.get("startedAt") and a.get("stoppedAt")) / 1000, 3)
    return used


class BatchService:
    """Batch and Logs calls s3rules makes; clients may be injected (tests, custom sessions)."""

    def __init__(self, batch_client=None, logs_client=None, session=None):
        # boto3's default session when the program set one up (its event hooks then see our calls)
        session = session or default_session()
        with aws_errors("connecting to AWS Batch"):
            self.batch = batch_client or session.client("batch", config=RETRY_CONFIG)
            self.logs = logs_client or session.client("logs", config=RETRY_CONFIG)
            self.submitter_client = batch_client or session.client("batch", config=SUBMIT_CONFIG)
        for client in {id(c): c for c in (self.batch, self.submitter_client)}.values():
            pace(client)
        self._checked: dict[tuple[str, str], dict] = {}
        self.registered: list[str] = []   # job definitions this process registered

    # -- set-up checks --------------------------------------------------------------------
    def check_queue(self, name: str) -> dict:
        key = ("queue", name)
        if key not in self._checked:
            with aws_errors(f"checking job queue {name!r}"):
                queues = self.batch.describe_job_queues(jobQueues=[name])["jobQueues"]
            if not queues:
                raise AwsSetupError(f"job queue {name!r} does not exist in this account and region. Create it "
                                    "(README.md: setting up AWS Batch) or fix `queue:` in the Batchfile.")
            q = queues[0]
            if q.get("state") != "ENABLED" or q.get("status") not in ("VALID", "UPDATING", "CREATING"):
                raise AwsSetupError(f"job queue {name!r} is {q.get('state')} / {q.get('status')}: "
                                    f"{q.get('statusReason', '')}. Enable it or pick another queue.")
            self._checked[key] = q
        return self._checked[key]

    def capacity_types(self, queue: str) -> set[str]:
        """How the compute environments behind ``queue`` buy capacity (EC2, SPOT, FARGATE,
        FARGATE_SPOT): reports note Spot, which costs less than the list prices they show."""
        key = ("capacity", queue)
        if key not in self._checked:
            order = self.check_queue(queue).get("computeEnvironmentOrder") or []
            names = [e["computeEnvironment"] for e in order if e.get("computeEnvironment")]
            with aws_errors(f"describing the compute environments of job queue {queue!r}"):
                found = self.batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"] \
                    if names else []
            self._checked[key] = {(ce.get("computeResources") or {}).get("type", "") for ce in found} - {""}
        return self._checked[key]

    def check_job_definition(self, name: str) -> dict:
        """``name`` or ``name:revision`` must exist and be ACTIVE."""
        key = ("definition", name)
        if key not in self._checked:
            base, _, revision = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
            with aws_errors(f"checking job definition {name!r}"):
                if revision:
                    found = self.batch.describe_job_definitions(jobDefinitions=[name])["jobDefinitions"]
                    if not found:   # some servers look "name:revision" up as a name: list the name
                        found = [d for d in self._definitions_named(base.rsplit("/", 1)[-1])
                                 if str(d.get("revision")) == revision]
                else:
                    found = self._definitions_named(name, status="ACTIVE")
            active = [d for d in found if d.get("status") == "ACTIVE"]
            if not active:
                state = (f"is {found[0].get('status')}" if found else "does not exist" if revision
                         else "does not exist or has no ACTIVE revision (all were deregistered)")
                raise AwsSetupError(f"job definition {name!r} {state}. Register it (README.md: setting up "
                                    "AWS Batch) or fix `job_definition:` in the Batchfile.")
            self._checked[key] = max(active, key=lambda d: d.get("revision", 0))
        return self._checked[key]

    def ensure_job_definition(self, definition) -> dict:
        """The ACTIVE job definition named ``definition.name``, registered if there is none yet
        (a ``definitions.Definition``: its name says all it holds)."""
        key = ("definition", definition.name)
        if key not in self._checked:
            with aws_errors(f"looking up job definition {definition.name!r}"):
                active = self._definitions_named(definition.name, status="ACTIVE")
            if not active:
                with aws_errors(f"registering a job definition for image {definition.image!r}"):
                    answer = self.batch.register_job_definition(**definition.request)
                active = [{"jobDefinitionName": answer["jobDefinitionName"], "revision": answer["revision"],
                           "jobDefinitionArn": answer["jobDefinitionArn"], "status": "ACTIVE"}]
                self.registered.append(definition.name)
            self._checked[key] = max(active, key=lambda d: d.get("revision", 0))
        return self._checked[key]

    def _definitions_named(self, name: str, **where) -> list[dict]:
        pages = self.batch.get_paginator("describe_job_definitions").paginate(jobDefinitionName=name, **where)
        return [d for page in pages for d in page["jobDefinitions"]]

    # -- jobs -----------------------------------------------------------------------------
    def submit(self, request: dict, retry: bool = True) -> str:
        """SubmitJob. With ``retry=False`` nothing is resent: ``SubmitRefused`` / ``SubmitUnknown``
        tell the caller whether a job may have been created."""
        if retry:
            with aws_errors(f"submitting {request.get('jobName')}"):
                return self.batch.submit_job(**request)["jobId"]
        try:
            return self.submitter_client.submit_job(**request)["jobId"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in THROTTLING_CODES or status == 429:
                raise SubmitRefused(code) from None
            if status >= 500:
                raise SubmitUnknown(code) from None
            with aws_errors(f"submitting {request.get('jobName')}"):
                raise
        except EndpointConnectionError:
            raise SubmitRefused("no connection") from None   # never reached Batch: nothing created
        except (NoCredentialsError, PartialCredentialsError, NoRegionError):
            with aws_errors(f"submitting {request.get('jobName')}"):
                raise
        except (BotoCoreError, OSError) as exc:   # dropped connection, read timeout: answer lost
            raise SubmitUnknown(type(exc).__name__) from None

    def describe(self, job_ids) -> dict[str, dict]:
        """Descriptions by job id, in DescribeJobs calls of at most 100 ids; a packed job's id
        (``<pack>#<k>``) gets its pack's description."""
        asked: dict[str, list[str]] = {}
        for job_id in job_ids:
            asked.setdefault(batch_id(job_id), []).append(job_id)
        out: dict[str, dict] = {}
        with aws_errors("describing Batch jobs"):
            for group in chunks(list(asked), DESCRIBE_BATCH):
                for job in self.batch.describe_jobs(jobs=group)["jobs"]:
                    for given in asked.get(job["jobId"], [job["jobId"]]):
                        out[given] = job
        return out

    def list_jobs(self, queue: str | None, statuses=ACTIVE_STATES, array_job_id: str | None = None) -> list[dict]:
        """Job summaries on ``queue`` (or an array's children) in these states, 1,000 per page."""
        out: list[dict] = []
        paginator = self.batch.get_paginator("list_jobs")
        where = {"arrayJobId": array_job_id} if array_job_id else {"jobQueue": queue}
        with aws_errors(f"listing jobs {'of array ' + array_job_id if array_job_id else f'on queue {queue!r}'}"):
            for status in statuses:
                for page in paginator.paginate(**where, jobStatus=status, PaginationConfig={"PageSize": 1000}):
                    out.extend(page["jobSummaryList"])
        return out

    def jobs_named(self, queue: str, name: str, prefix: bool = False) -> list[dict]:
        """Every job on ``queue`` with this name (or name prefix), any status, newest first.

        Array children, which carry their parent's name, are left out.
        """
        paginator = self.batch.get_paginator("list_jobs")
        with aws_errors(f"listing jobs named {name!r}"):
            pages = paginator.paginate(jobQueue=queue,
                                       filters=[{"name": "JOB_NAME", "values": [name + "*" if prefix else name]}],
                                       PaginationConfig={"PageSize": 100})
            found = [j for page in pages for j in page["jobSummaryList"] if ":" not in j["jobId"]
                     and (j.get("jobName", "").startswith(name) if prefix else j.get("jobName") == name)]
        return sorted(found, key=lambda j: j.get("createdAt", 0), reverse=True)

    def terminate(self, job_id: str, reason: str) -> None:
        with aws_errors(f"terminating job {job_id}"):
            self.batch.terminate_job(jobId=batch_id(job_id), reason=reason)

    # -- logs -----------------------------------------------------------------------------
    @staticmethod
    def log_location(description: dict) -> tuple[str, str] | None:
        container = description.get("container") or {}
        stream = container.get("logStreamName")
        if not stream:
            attempts = description.get("attempts") or []
            stream = (attempts[-1].get("container") or {}).get("logStreamName") if attempts else None
        if not stream:
            return None
        options = (container.get("logConfiguration") or {}).get("options") or {}
        return options.get("awslogs-group", DEFAULT_LOG_GROUP), stream

    def log_lines(self, description: dict, last: int | None = None) -> list[str]:
        """The job's CloudWatch log lines (all of them, or the ``last`` few)."""
        where = self.log_location(description)
        if where is None:
            return []
        group, stream = where
        lines: list[str] = []
        try:
            with aws_errors(f"reading log stream {stream}"):
                if last:
                    events = self.logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                      limit=last, startFromHead=False)["events"]
                    return [e["message"] for e in events]
                token = None
                while True:
                    kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
                    if token:
                        kwargs["nextToken"] = token
                    page = self.logs.get_log_events(**kwargs)
                    lines.extend(e["message"] for e in page["events"])
                    if not page["events"] or page.get("nextForwardToken") == token:
                        break
                    token = page.get("nextForwardToken")
        except AwsSetupError:
            if last:
                return []   # a missing log must not hide the failure it would explain
            raise
        return lines
