"""A thin wrapper over boto3's Batch and CloudWatch Logs clients.

Retries and throttling are botocore's (adaptive mode); pagination is botocore's paginators.
What this adds: DescribeJobs in groups of 100, in-flight listing per status, and AWS errors
turned into an ``AwsSetupError`` that says what to do. Credentials never appear in messages.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                 NoRegionError, PartialCredentialsError)

from .jobspec import ACTIVE_STATES, DESCRIBE_BATCH, chunks
from ..errors import AwsSetupError

# Ten attempts ride out throttling; AWS_MAX_ATTEMPTS still wins, as botocore users expect.
# (botocore reads "max_attempts" as retries after the first call; "total_max_attempts" counts all)
RETRY_CONFIG = Config(retries={"mode": "adaptive",
                               "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", 10))},
                      user_agent_extra="s3rules")
# SubmitJob is not idempotent: botocore must send it exactly once (the Submitter decides what
# a failure means). Adaptive mode still paces requests on the client after throttling.
SUBMIT_CONFIG = Config(retries={"mode": "adaptive", "total_max_attempts": 1}, user_agent_extra="s3rules")
THROTTLING_CODES = ("TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded",
                    "SlowDown")


# Batch throttles an account above about 50 requests per second; s3rules keeps its own share
# below that by construction (botocore's adaptive mode only slows down after being throttled).
MAX_REQUESTS_PER_SECOND = float(os.environ.get("S3RULES_BATCH_RPS", 40))


class RateLimit:
    """A token bucket shared by this process's Batch clients: at most ``rate`` requests per
    second on average, bursts of at most ``burst``. Hooked on ``before-send``, so retries count."""

    def __init__(self, rate: float = MAX_REQUESTS_PER_SECOND, burst: float = 5, clock=None, sleep=None):
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock or time.monotonic, sleep or time.sleep
        self.tokens, self.at = burst, self.clock()
        self.lock = threading.Lock()

    def wait(self, **_) -> None:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.tokens -= 1
            pause = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if pause:
            self.sleep(pause)


PACE = RateLimit()


class SubmitRefused(Exception):
    """SubmitJob was throttled: Batch created nothing, so trying again is safe."""


class SubmitUnknown(Exception):
    """SubmitJob's answer was lost (connection dropped, 5xx): the job may or may not exist."""
DEFAULT_LOG_GROUP = "/aws/batch/job"

_PERMISSION_HINT = {
    "SubmitJob": "batch:SubmitJob", "ListJobs": "batch:ListJobs", "DescribeJobs": "batch:DescribeJobs",
    "DescribeJobQueues": "batch:DescribeJobQueues", "DescribeJobDefinitions": "batch:DescribeJobDefinitions",
    "TerminateJob": "batch:TerminateJob", "TagResource": "batch:TagResource",
    "GetLogEvents": "logs:GetLogEvents",
}


@contextlib.contextmanager
def aws_errors(action: str):
    """Turn boto errors into one-paragraph ``AwsSetupError``s naming the fix."""
    try:
        yield
    except NoCredentialsError:
        raise AwsSetupError(f"{action}: no AWS credentials found. Set AWS_PROFILE (see `aws configure`), "
                            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance "
                            "or task role provides them.") from None
    except PartialCredentialsError as exc:
        raise AwsSetupError(f"{action}: incomplete AWS credentials ({exc.kwargs.get('cred_var', 'a value')} "
                            "is missing). Set it too, or unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                            "and use AWS_PROFILE (see `aws configure`) or an instance or task role.") from None
    except NoRegionError:
        raise AwsSetupError(f"{action}: no AWS region set. Set AWS_DEFAULT_REGION (e.g. us-east-1) or "
                            "`region` in your AWS profile.") from None
    except EndpointConnectionError as exc:
        raise AwsSetupError(f"{action}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}. "
                            "Check your network, region and any AWS_ENDPOINT_URL setting.") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        op = exc.operation_name
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                    "ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch"):
            need = _PERMISSION_HINT.get(op, op)
            raise AwsSetupError(f"{action}: AWS refused {op} ({code}: {message}). Check that your credentials "
                                f"are valid and allow {need}; README.md lists the permissions s3rules needs."
                                ) from None
        raise AwsSetupError(f"{action}: {op} failed ({code}: {message}).") from None
    except BotoCoreError as exc:
        raise AwsSetupError(f"{action}: {exc}") from None


class BatchService:
    """Batch and Logs calls s3rules makes; clients may be injected (tests, custom sessions)."""

    def __init__(self, batch_client=None, logs_client=None, session=None):
        # boto3's default session when the program set one up (its event hooks then see our calls)
        session = session or boto3.DEFAULT_SESSION or boto3.session.Session()
        with aws_errors("connecting to AWS Batch"):
            self.batch = batch_client or session.client("batch", config=RETRY_CONFIG)
            self.logs = logs_client or session.client("logs", config=RETRY_CONFIG)
            self.submitter_client = batch_client or session.client("batch", config=SUBMIT_CONFIG)
        for client in {id(c): c for c in (self.batch, self.submitter_client)}.values():
            client.meta.events.register("before-send.batch", PACE.wait)
        self._checked: dict[tuple[str, str], dict] = {}

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

    def check_job_definition(self, name: str) -> dict:
        """``name`` or ``name:revision`` must exist and be ACTIVE."""
        key = ("definition", name)
        if key not in self._checked:
            with aws_errors(f"checking job definition {name!r}"):
                if ":" in name.rsplit("/", 1)[-1]:
                    found = self.batch.describe_job_definitions(jobDefinitions=[name])["jobDefinitions"]
                else:
                    pages = self.batch.get_paginator("describe_job_definitions").paginate(
                        jobDefinitionName=name, status="ACTIVE")
                    found = [d for page in pages for d in page["jobDefinitions"]]
            active = [d for d in found if d.get("status") == "ACTIVE"]
            if not active:
                state = f"is {found[0].get('status')}" if found else "does not exist"
                raise AwsSetupError(f"job definition {name!r} {state}. Register it (README.md: setting up "
                                    "AWS Batch) or fix `job_definition:` in the Batchfile.")
            self._checked[key] = max(active, key=lambda d: d.get("revision", 0))
        return self._checked[key]

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
        """Descriptions by job id, in DescribeJobs calls of at most 100 ids."""
        out: dict[str, dict] = {}
        with aws_errors("describing Batch jobs"):
            for group in chunks(list(job_ids), DESCRIBE_BATCH):
                for job in self.batch.describe_jobs(jobs=group)["jobs"]:
                    out[job["jobId"]] = job
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
            self.batch.terminate_job(jobId=job_id, reason=reason)

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
