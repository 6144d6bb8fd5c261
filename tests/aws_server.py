"""A local AWS (S3 + Batch + CloudWatch Logs) for tests: moto's server, with
Batch jobs that really run.

``AwsServer`` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (port 0,
so the kernel picks a free port; no bind-then-close race) *inside this
process*, and replaces the Docker client that moto's Batch backend uses with
``SubprocessDockerClient``: every job's command runs on this machine as a
subprocess.  No Docker engine, no internet and no credentials are needed.
Start-up takes about 0.8 s, nearly all of it importing ``moto.batch.models``
(which pulls in moto's EC2 models; needed to patch it); the server thread
itself is up in milliseconds.  The first call to each other service pays its
lazy backend import once (S3 bucket ~0.3 s, IAM+Batch set-up ~0.3 s).

Routing clients with environment variables only
-----------------------------------------------
``AwsServer.env()`` gives the variables; remove ``UNSET_VARS`` as well.

* boto3 / botocore (>= 1.31) read ``AWS_ENDPOINT_URL`` for every service, and
  the service-specific ``AWS_ENDPOINT_URL_<SERVICE ID>`` first
  (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_BATCH``, and for the ``logs``
  client ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``, not ``..._LOGS``).  Setting
  ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` would switch this off, so it is
  unset.
* s3fs (``fsspec`` "s3://") creates its client through aiobotocore's
  ``AioSession.create_client("s3")`` without an ``endpoint_url`` unless one is
  passed, so the same botocore lookup applies: ``AWS_ENDPOINT_URL`` alone is
  enough (checked by tests/test_aws_server.py), ``AWS_ENDPOINT_URL_S3`` too.
  Gotcha: fsspec caches ``S3FileSystem`` instances (``clear_instance_cache()``)
  and s3fs caches listings (``fs.invalidate_cache()``): an instance made
  before the variables changed keeps its old endpoint.
* An IP-address endpoint makes botocore use path-style S3 addressing, which
  moto's server serves; nothing to configure.
* ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` point at an empty
  file so a developer's ~/.aws cannot leak in.

Batch on moto, as this harness runs it (moto 5.2.x, "Docker mode")
--------------------------------------------------------------------
moto's Batch backend runs one thread per job (``moto.batch.models.Job``).  It
walks SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING ->
SUCCEEDED/FAILED, waits for every ``dependsOn`` jobId to be SUCCEEDED before
it starts, then calls ``docker_client.containers.run(detach=True, image,
command, environment, name, mounts, privileged, log_config, extra_hosts)``,
polls ``container.reload()`` / ``container.status`` every 0.5 s, calls
``container.kill()`` if the job was terminated, reads
``container.logs(stdout/stderr, timestamps=True)``, writes them to CloudWatch
Logs group ``/aws/batch/job`` stream ``<jobDefinitionName>/default/<jobId>``,
takes the exit code from ``container.wait()["StatusCode"]`` and finally calls
``container.remove()``.  No image pull, no network calls for single-node jobs.
The stand-in implements exactly these calls.

What moto does (and does not do) - see also the report in the tests:

* dependsOn: only ``jobId`` is used (``type`` N_TO_N/SEQUENTIAL ignored).  If
  a dependency FAILS, the dependent job goes straight to FAILED without
  running (no attempts, no statusReason, no exit code).  A jobId that does not
  exist makes the dependent wait forever.
* Array jobs (``arrayProperties.size``): moto starts one child thread per
  index with jobId ``<parent>:<i>``; each runs its command.  moto does NOT
  set ``AWS_BATCH_JOB_ARRAY_INDEX``: the stand-in adds it (and sets
  ``AWS_BATCH_JOB_ID`` to the child's id, which moto may get wrong because it
  appends to the shared containerOverrides environment list).  The parent
  never runs; its status stays SUBMITTED and only turns SUCCEEDED *while
  being described* (DescribeJobs) once every child SUCCEEDED; it never turns
  FAILED.  moto's dependency wait only compares statuses, ignoring N_TO_N.
  The harness patches both to what AWS documents: a dependency on a parent
  waits for all its children (and fails once all finished and one failed);
  N_TO_N makes child i wait for child i; a parent whose children all finished
  with a failure describes as FAILED.
* retryStrategy: moto stores a job definition's and drops SubmitJob's, and
  always runs one attempt.  The harness applies it as AWS documents: up to
  ``attempts`` attempts, the first ``evaluateOnExit`` rule matching the
  attempt's statusReason / container reason / exit code decides RETRY or
  EXIT (none matching: retried); the job stays in flight between attempts
  and each attempt is recorded with its exit code and reasons.
  ``AwsServer.fault`` makes infrastructure failures of chosen attempts: a
  reclaimed Spot host (statusReason ``Host EC2 (instance ...) terminated.``,
  no exit code) or an out-of-memory kill (exit 137, container reason
  ``OutOfMemoryError: Container killed due to memory usage``).
* Timeouts (``timeout.attemptDurationSeconds``, on SubmitJob or the job
  definition): when exceeded the job is marked FAILED, the process killed,
  but no logs are written, and there is no exit code and no statusReason.
* TerminateJob: the process group is killed (SIGKILL, like ``docker kill``),
  logs so far are written, the job is FAILED with exitCode 137 and
  statusReason = the given reason.  CancelJob only acts before STARTING.
* Status transitions are instantaneous (moto's default "manual, times=1"
  state-manager setting); the only waits are moto's fixed 0.5 s / 1 s sleeps,
  which this harness caps at ``poll_interval`` (default 0.05 s) by patching
  ``moto.batch.models.sleep``/``time`` in this process.
* DescribeJobs: moto drops ``container.exitCode`` (ListJobs keeps it); the
  harness patches it back in.  moto also appends to the submitted
  containerOverrides environment on every describe; patched too.  A job
  failed by a failed dependency has ``startedAt`` 0 (AWS omits it).
* ListJobs (tests/test_aws_server.py::test_list_jobs_behaviour): jobStatus
  filters; without jobStatus *all* statuses are listed (AWS: only RUNNING);
  ``filters`` JOB_NAME (exact or trailing ``*``, case-insensitive) works,
  other filter names match everything; jobStatus is ignored when filters are
  given; maxResults/nextToken are ignored (everything, never a nextToken);
  listing a queue includes array children (same jobName as the parent);
  ``arrayJobId`` lists the children.
* Job names must match ``^[A-Za-z0-9][A-Za-z0-9_-]{1,127}$`` in moto: at
  least 2 characters (AWS accepts 1).
* Each job process runs in a fresh empty scratch directory (its "container"
  filesystem), not in the repository.

Gotchas: moto's state is process-global.  Never combine this server with
``moto.mock_aws`` in the same process: entering/leaving ``mock_aws`` resets
all backends (queues, buckets, running jobs of this server vanish), and while
the server runs, Batch jobs submitted under ``mock_aws`` would also run
through the stand-in.  Another ThreadedMotoServer in the same process shares
the same state.  Only one ``AwsServer`` may run per process.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
ACCOUNT_ID = "123456789012"  # moto's default account
LOG_GROUP = "/aws/batch/job"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED"})

#: Variables that must NOT be set for clients to reach the server.
UNSET_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)

TESTS_DIR = Path(__file__).resolve().parent
S3TOOL = TESTS_DIR / "s3tool.py"

_active_lock = threading.Lock()
_active: "AwsServer | None" = None


# ---------------------------------------------------------------------------
# The stand-in Docker client
# ---------------------------------------------------------------------------


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SubprocessContainer:
    """One "container": a subprocess in its own process group.

    Mimics the bits of ``docker.models.containers.Container`` moto uses:
    ``status``, ``attrs``, ``reload()``, ``logs()``, ``wait()``, ``kill()``,
    ``stop()``, ``remove()``.  When the main process exits, the rest of its
    process group is killed, as a container's processes die with PID 1.

    stderr is merged into stdout (one pipe, like ``2>&1``), so the job's log
    lines reach CloudWatch in exactly the order they were written;
    ``logs(stdout=False, stderr=True)`` is therefore empty.  Empty lines are
    dropped from timestamped logs (as the awslogs driver does).
    """

    def __init__(
        self,
        client: "SubprocessDockerClient",
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        job_id: str | None = None,
    ):
        self.client = client
        self.name = name
        self.id = uuid.uuid4().hex
        self.short_id = self.id[:12]
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.job_id = job_id
        self._lines: list[tuple[float, str, str]] = []  # (time, stream, text)
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._returncode: int | None = None
        self._group_killed = False
        self.started_at = time.time()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one pipe: lines keep their order
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:  # like docker: "exec: not found" -> 127
            self._proc = None
            self._returncode = 126 if isinstance(err, PermissionError) else 127
            self._record("stdout", f"stand-in docker: cannot exec {argv!r}: {err}")
        else:
            t = threading.Thread(
                target=self._read, args=("stdout", self._proc.stdout), daemon=True,
                name=f"stand-in-docker-{name}",
            )
            t.start()
            self._readers.append(t)

    # -- output capture ---------------------------------------------------
    def _record(self, stream: str, text: str) -> None:
        with self._lock:
            # never decreasing: moto sorts the lines by timestamp
            ts = max(time.time(), self._lines[-1][0] if self._lines else 0.0)
            self._lines.append((ts, stream, text))

    def _read(self, stream: str, pipe: Any) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                self._record(stream, raw.rstrip(b"\r\n").decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _join_readers(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._readers:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- process state ----------------------------------------------------
    def _poll(self) -> int | None:
        if self._proc is None:
            return self._returncode
        rc = self._proc.poll()
        if rc is not None:
            if not self._group_killed:
                # PID 1 of the "container" exited: the rest of it dies too.
                self._group_killed = True
                self._killpg(signal.SIGKILL)
            self._returncode = rc if rc >= 0 else 128 - rc  # -9 -> 137
        return self._returncode

    def _killpg(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def status(self) -> str:
        return "running" if self._poll() is None else "exited"

    @property
    def attrs(self) -> dict[str, Any]:
        rc = self._poll()
        ip = "127.0.0.1"
        return {
            "Id": self.id,
            "Name": "/" + self.name,
            "State": {
                "Status": self.status,
                "Running": rc is None,
                "ExitCode": rc or 0,
                "Pid": self.pid or 0,
            },
            "NetworkSettings": {
                "IPAddress": ip,
                "Networks": {"bridge": {"IPAddress": ip}},
            },
        }

    def reload(self) -> None:
        self._poll()

    def kill(self, signal: int | str = "SIGKILL") -> None:  # docker's argument name
        sig = _signal_number(signal)
        self._killpg(sig)
        if self._proc is not None and sig == _signal_number("SIGKILL"):
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._poll()

    def stop(self, timeout: float = 10) -> None:
        if self._poll() is not None:
            return
        self._killpg(signal.SIGTERM)
        try:
            assert self._proc is not None
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._poll()

    def wait(self, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        if self._proc is not None:
            self._proc.wait(timeout)
        rc = self._poll()
        self._join_readers()
        return {"StatusCode": rc, "Error": None}

    def logs(
        self,
        stdout: bool = True,
        stderr: bool = True,
        timestamps: bool = False,
        since: int | float | datetime | None = None,
        **_: Any,
    ) -> bytes:
        if self._poll() is not None:
            self._join_readers()
        if isinstance(since, datetime):
            since = since.timestamp()
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        with self._lock:
            lines = list(self._lines)
        out = []
        for ts, stream, text in lines:
            if stream not in wanted or (since and ts < int(since)):
                continue
            if timestamps:
                if not text.strip():
                    continue  # like the awslogs driver: no empty events
                out.append(f"{_rfc3339(ts)} {text}\n")
            else:
                out.append(text + "\n")
        return "".join(out).encode()

    def output(self) -> list[tuple[str, str]]:
        """All captured ``(stream, line)`` pairs, in arrival order."""
        with self._lock:
            return [(s, t) for _, s, t in self._lines]

    def remove(self, force: bool = False, **_: Any) -> None:
        if self._poll() is None:
            self.kill()
        self._join_readers(1.0)
        self.client._forget(self)


def _signal_number(sig: int | str) -> int:
    if isinstance(sig, int):
        return sig
    name = sig if sig.startswith("SIG") else "SIG" + sig
    return int(getattr(signal, name))


class _Containers:
    def __init__(self, client: "SubprocessDockerClient"):
        self._client = client

    def run(
        self,
        image: str,
        command: str | list[str] | None = None,
        detach: bool = False,
        environment: dict[str, str] | list[str] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Any:
        container = self._client._start(image, command, environment, name, kwargs)
        if detach:
            return container
        container.wait()
        data = container.logs()
        container.remove()
        return data

    def get(self, container_id: str) -> SubprocessContainer:
        for c in self._client.running():
            if container_id in (c.id, c.short_id, c.name):
                return c
        raise LookupError(f"No such container: {container_id}")

    def list(self, all: bool = False, **_: Any) -> list[SubprocessContainer]:  # noqa: A002
        return [c for c in self._client.running() if all or c.status == "running"]


class _Image:
    def __init__(self, name: str):
        self.tags = [name]
        self.id = "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex


class _Images:
    def get(self, name: str) -> _Image:
        return _Image(name)

    def pull(self, repository: str, tag: str | None = None, **_: Any) -> _Image:
        return _Image(f"{repository}:{tag}" if tag else repository)


class _Networks:
    def get(self, name: str) -> Any:
        return type("Network", (), {"name": name, "id": name, "attrs": {}})()

    def list(self, *_, **__) -> list[Any]:
        return []


class SubprocessDockerClient:
    """Stand-in for ``docker.DockerClient`` that runs containers as local
    subprocesses.  The image, mounts, network and privileges are ignored.

    ``env_for(job_env, job)`` builds each process's environment; ``job`` is
    the ``moto.batch.models.Job`` whose thread called ``containers.run`` (or
    None).  Each process gets a fresh scratch working directory under
    ``work_root``.
    """

    def __init__(self, env_for: Any, work_root: Path):
        self.env_for = env_for
        self.work_root = Path(work_root)
        self.containers = _Containers(self)
        self.images = _Images()
        self.networks = _Networks()
        self._live: dict[str, SubprocessContainer] = {}
        self._lock = threading.Lock()
        #: every container ever started, by container name (for debugging)
        self.history: dict[str, SubprocessContainer] = {}
        self.draw_fault: Any = None   # job -> "reclaim", "oom" or None (AwsServer.fault)

    def _start(
        self,
        image: str,
        command: str | list[str] | None,
        environment: dict[str, str] | list[str] | None,
        name: str | None,
        kwargs: dict[str, Any],
    ) -> SubprocessContainer:
        if command is None:
            command = ["true"]
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        if isinstance(environment, list):  # docker also accepts ["K=V", ...]
            environment = dict(e.split("=", 1) for e in environment)
        job = _current_batch_job()
        if job is not None and self.draw_fault is not None:
            job.s3rules_fault = self.draw_fault(job)
            if job.s3rules_fault:   # the host goes, or the kernel kills the job, at once
                argv = ["bash", "-c", "kill -9 $$"]
        env = self.env_for(dict(environment or {}), job)
        name = name or f"standin-{uuid.uuid4().hex[:12]}"
        cwd = self.work_root / name.replace("/", "_").replace(":", "-")
        cwd.mkdir(parents=True, exist_ok=True)
        container = SubprocessContainer(
            self, name, argv, env, str(cwd), job_id=getattr(job, "job_id", None)
        )
        with self._lock:
            self._live[container.id] = container
            self.history[name] = container
        return container

    def _forget(self, container: SubprocessContainer) -> None:
        with self._lock:
            self._live.pop(container.id, None)

    def running(self) -> list[SubprocessContainer]:
        with self._lock:
            return list(self._live.values())

    def kill_all(self) -> None:
        for c in self.running():
            c.kill()
            c.remove()

    def close(self) -> None:
        self.kill_all()

    def ping(self) -> bool:
        return True


def _current_batch_job() -> Any:
    try:
        from moto.batch.models import Job
    except ImportError:  # pragma: no cover
        return None
    t = threading.current_thread()
    return t if isinstance(t, Job) else None


class _CappedTime:
    """Drop-in for the ``time`` module inside moto.batch.models, with sleeps
    capped so moto's 0.5 s / 1 s polling loops spin faster."""

    def __init__(self, real: Any, cap: float):
        self._real = real
        self._cap = cap

    def sleep(self, seconds: float) -> None:
        self._real.sleep(min(seconds, self._cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Settings:
    """``moto.settings`` as seen by moto.batch.models, with fixed host/port."""

    def __init__(self, real: Any, host: str, port: str):
        self._real = real
        self._host = host
        self._port = port

    def moto_server_host(self) -> str:
        return self._host

    def moto_server_port(self) -> str:
        return self._port

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _get_container_property(orig: Any) -> Any:
    """moto's ``Job._get_container_property`` without its bug for
    "environment": moto appends the job definition's variables and
    AWS_BATCH_JOB_ID to the *submitted* containerOverrides list, so every
    DescribeJobs grows it and array children (sharing one list) can see a
    sibling's AWS_BATCH_JOB_ID.  Same result, built on a copy."""

    def get(self: Any, p: str, default: Any) -> Any:
        if p != "environment":
            return orig(self, p, default)
        job_env = [dict(e) for e in self.container_overrides.get(p, default)]
        names = {e["name"] for e in job_env}
        for e in self.job_definition.container_properties.get(p, default):
            if e["name"] not in names:
                job_env.append({"name": e["name"], "value": e["value"]})
        job_env.append({"name": "AWS_BATCH_JOB_ID", "value": self.job_id})
        return job_env

    return get


def _container_details(orig: Any) -> Any:
    """moto's DescribeJobs builds ``container`` twice and the second time
    drops ``exitCode`` (ListJobs keeps it).  Put it back, as AWS shows it."""

    def details(self: Any) -> dict[str, Any]:
        result = orig(self)
        if self.job_stopped and self.exit_code is not None:
            result["exitCode"] = self.exit_code
        if self.job_stopped and getattr(self, "s3rules_reason", None):
            result["reason"] = self.s3rules_reason
        return result

    return details


# ---------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------


def _dependency_state(job: Any, dependency: dict) -> str:
    """SUCCEEDED, FAILED or WAIT for one ``dependsOn`` entry, as AWS Batch decides it.

    N_TO_N: child i waits for child i of the dependency. An array parent counts as done when
    every child is done, and as failed once every child finished and one failed.
    """
    jobs = job.all_jobs
    target = jobs.get(dependency["jobId"])
    if target is None:
        return "WAIT"
    index = (job.array_properties or {}).get("index")
    if dependency.get("type") == "N_TO_N" and index is not None and target._child_jobs:
        target = jobs.get(f"{target.job_id}:{index}")
        if target is None:
            return "WAIT"
    if target._child_jobs:
        states = [c.status for c in target._child_jobs]
        if all(s == "SUCCEEDED" for s in states):
            return "SUCCEEDED"
        if all(s in TERMINAL_STATUSES for s in states):
            return "FAILED"
        return "WAIT"
    return target.status if target.status in TERMINAL_STATUSES else "WAIT"


def _wait_for_dependencies(self: Any) -> bool:
    """moto's wait with AWS's semantics for arrays (see ``_dependency_state``)."""
    import moto.batch.models as bm

    while True:
        states = [_dependency_state(self, d) for d in self.depends_on]
        if "FAILED" in states:
            self._mark_stopped(success=False)
            return False
        if all(s == "SUCCEEDED" for s in states):
            return True
        bm.time.sleep(1)
        if self.stop:
            self._mark_stopped(success=False)
            return False


def _describe_array(orig: Any) -> Any:
    """An array parent turns FAILED once every child finished and one failed (as on AWS)."""

    def describe(self: Any) -> dict[str, Any]:
        result = orig(self)
        children = self._child_jobs
        if children and all(c.status in TERMINAL_STATUSES for c in children) and \
                any(c.status == "FAILED" for c in children):
            self.status = result["status"] = "FAILED"
        return result

    return describe


# -- attempts: retryStrategy as AWS runs it, and infrastructure faults -----------------------

RECLAIMED = "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"
_submitting = threading.local()


@dataclass
class Fault:
    """An infrastructure failure the harness makes of the next ``times`` attempts that ``match``:
    ``reclaim`` (the Spot instance goes: statusReason ``Host EC2 (...) terminated.``, no exit
    code) or ``oom`` (exit 137, reason ``OutOfMemoryError: ...``). ``match`` gets the job's
    ``JobFacts``."""

    kind: str
    match: Any
    times: int = 1


@dataclass(frozen=True)
class JobFacts:
    name: str
    job_id: str
    memory: int | None        # MiB, from the SubmitJob overrides or the job definition
    attempt: int              # 1 for the first
    command: str


def _facts(job: Any) -> JobFacts:
    memory = None
    for source in (job.container_overrides.get("resourceRequirements") or [],
                   (job.job_definition.container_properties or {}).get("resourceRequirements") or []):
        found = [int(r["value"]) for r in source if r.get("type") == "MEMORY"]
        if found:
            memory = found[0]
            break
    command = " ".join(job.container_overrides.get("command") or [])
    return JobFacts(job.job_name, job.job_id, memory, len(job.attempts), command)


def _submitjob(orig: Any) -> Any:
    """moto drops SubmitJob's ``retryStrategy``: keep it for the jobs this request makes."""

    def submitjob(self: Any) -> str:
        _submitting.strategy = self._get_param("retryStrategy")
        try:
            return orig(self)
        finally:
            _submitting.strategy = None

    return submitjob


def _job_init(orig: Any) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        self.s3rules_retry = getattr(_submitting, "strategy", None) or self.job_definition.retry_strategy or {}
        self.s3rules_fault = None      # the fault of the attempt under way
        self.s3rules_reason = None     # container.reason of the last attempt
        self.s3rules_again = False     # the attempt failed and Batch retries it

    return init


def _matches(rule: dict, fields: dict) -> bool:
    from fnmatch import fnmatchcase
    return all(fnmatchcase(fields[key], rule[key]) for key in ("onStatusReason", "onReason", "onExitCode")
               if key in rule)


def _retried(job: Any) -> bool:
    """Whether the attempt that just failed is retried, as AWS decides: attempts left, and the
    first ``evaluateOnExit`` rule that matches says RETRY (none matching: retried)."""
    strategy = job.s3rules_retry or {}
    if job.stop or job.latest_attempt is None or len(job.attempts) >= int(strategy.get("attempts") or 1):
        return False
    fields = {"onStatusReason": job.latest_attempt.get("statusReason", ""),
              "onReason": job.latest_attempt["container"].get("reason", ""),
              "onExitCode": str(job.latest_attempt["container"].get("exitCode", ""))}
    for rule in strategy.get("evaluateOnExit") or []:
        if _matches(rule, fields):
            return rule["action"].upper() == "RETRY"
    return True


def _mark_stopped(orig: Any) -> Any:
    """A failed attempt is recorded as AWS records it (exit code, reason, statusReason); when
    the retry strategy retries it the job never shows FAILED and runs again (see ``_run``)."""

    def mark(self: Any, success: bool = True) -> None:
        if self.job_stopped or self.s3rules_again:
            return
        fault, self.s3rules_fault = self.s3rules_fault, None
        if fault == "reclaim":
            self.exit_code, self.job_stopped_reason = None, RECLAIMED
        self.s3rules_reason = OUT_OF_MEMORY if fault == "oom" else None
        attempt = self.latest_attempt
        if attempt is not None:
            attempt["container"]["exitCode"] = self.exit_code
        if attempt is not None and not success:
            if self.s3rules_reason:
                attempt["container"]["reason"] = self.s3rules_reason
            attempt["statusReason"] = self.job_stopped_reason or ""
            if _retried(self):
                attempt["stoppedAt"] = int(time.time() * 1000)
                self.s3rules_again = True
                return
        orig(self, success)

    return mark


def _run(orig: Any) -> Any:
    def run(self: Any) -> None:
        while True:
            orig(self)
            if not self.s3rules_again:
                return
            self.s3rules_again = False
            self.exit_code, self.job_stopped_reason, self.log_stream_name = None, None, None
            self.status, self._tick = "SUBMITTED", 0

    return run


@dataclass(frozen=True)
class BatchEnv:
    """What ``AwsServer.create_batch_env`` made."""

    queue_name: str
    queue_arn: str
    job_definition: str
    job_definition_arn: str
    compute_environment: str
    compute_environment_arn: str
    service_role_arn: str


class FlowBase:
    """One test's workflow directory, bucket, queue and job definition, with moto clients.

    Test files extend it with how they write their Batchfile and what they check.
    """

    def __init__(self, env: "AwsTestEnv", tmp_path):
        self.env, self.dir = env, tmp_path
        self.bucket, self.queue, self.jd = env.bucket, env.queue, env.job_definition
        self.s3 = env.server.client("s3")
        self.batch = env.server.client("batch")
        self.path = tmp_path / "Batchfile"
        self.bf = str(self.path)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())

    def get(self, key: str) -> str | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            return None

    def jobs(self) -> list[dict]:
        """Every job on the queue, in any state (moto's ListJobs without jobStatus lists all)."""
        return self.batch.list_jobs(jobQueue=self.queue)["jobSummaryList"]


@dataclass
class AwsTestEnv:
    """Per-test resources handed out by the ``aws_env`` fixture."""

    server: "AwsServer"
    bucket: str
    batch: BatchEnv
    env: dict[str, str] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        return self.batch.queue_name

    @property
    def job_definition(self) -> str:
        return self.batch.job_definition


class AwsServer:
    """moto's server on 127.0.0.1 with Batch jobs run as local subprocesses.

    Use as ``with AwsServer() as srv: ...`` or ``srv = AwsServer().start()``
    then ``srv.stop()``.

    Job processes get: a sanitized copy of this process's environment at
    ``start()`` (all ``AWS_*`` removed), then the job's environment (job
    definition + containerOverrides, and moto's MOTO_HOST/MOTO_PORT), then
    ``env()`` (wins over the job's own values for those keys), then
    ``AWS_BATCH_JOB_ID``, ``AWS_BATCH_JOB_ARRAY_INDEX`` (array children),
    ``AWS_BATCH_JOB_ATTEMPT=1``, ``AWS_BATCH_JQ_NAME``; ``PATH`` starts with
    ``bin_dir`` (holding the ``s3tool`` wrapper) and the directory of this
    Python interpreter, so ``python``/``s3tool`` in a job use this venv.
    """

    def __init__(self, *, poll_interval: float = 0.05, verbose: bool = False):
        self.poll_interval = poll_interval
        self.verbose = verbose
        self._server: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.docker: SubprocessDockerClient | None = None
        self._patches: list[tuple[Any, str, Any, bool]] = []
        self._base_env: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.faults: list[Fault] = []
        self.faulted: list[tuple[str, JobFacts]] = []   # (kind, the attempt it hit)
        self._faults_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "AwsServer":
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError(
                    "an AwsServer is already running in this process "
                    "(moto's state is process-global)"
                )
            _active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._tmp = tempfile.TemporaryDirectory(prefix="s3rules-aws-")
        root = Path(self._tmp.name)
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir()
        self.work_root = root / "jobs"
        self.work_root.mkdir()
        self.empty_config = root / "aws-config-empty"
        self.empty_config.write_text("")
        wrapper = self.bin_dir / "s3tool"
        wrapper.write_text(
            "#!/bin/sh\nexec "
            f"{shlex.quote(sys.executable)} {shlex.quote(str(S3TOOL))} \"$@\"\n"
        )
        wrapper.chmod(0o755)
        self._base_env = {
            k: v for k, v in os.environ.items() if not k.startswith("AWS_")
        }

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=self.verbose)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()

        self.docker = SubprocessDockerClient(self._job_env, self.work_root)
        self.docker.draw_fault = self._draw_fault
        self._install_patches()

    def stop(self) -> None:
        """Stop the server, kill job processes, undo patches, remove files."""
        global _active
        try:
            if self.docker is not None:
                self._stop_jobs()
                self.docker.kill_all()
            if self._server is not None and self._server._thread is not None:
                self._server.stop()
        finally:
            self._server = None
            self._uninstall_patches()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
            with _active_lock:
                if _active is self:
                    _active = None

    def _stop_jobs(self) -> None:
        try:
            from moto.batch.models import batch_backends
        except ImportError:  # pragma: no cover
            return
        for account in list(batch_backends.keys()):
            for backend in list(batch_backends[account].values()):
                for job in list(backend._jobs.values()):
                    job.stop = True

    def __enter__(self) -> "AwsServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _install_patches(self) -> None:
        import moto.batch.models as bm

        client = self.docker
        self._patch(bm.Job, "docker_client", property(lambda _self: client))
        self._patch(bm, "time", _CappedTime(time, self.poll_interval))
        real_sleep = time.sleep
        cap = self.poll_interval
        self._patch(bm, "sleep", lambda s: real_sleep(min(s, cap)))
        # moto asks settings.moto_server_host() for MOTO_HOST, which inside a
        # container shells out to curl the Docker socket (and warns) per job.
        host, port = self.host, self.port
        self._patch(bm, "settings", _Settings(bm.settings, f"http://{host}", str(port)))
        self._patch(
            bm.Job, "_get_container_property",
            _get_container_property(bm.Job._get_container_property),
        )
        self._patch(bm.Job, "_container_details", _container_details(bm.Job._container_details))
        self._patch(bm.Job, "_wait_for_dependencies", _wait_for_dependencies)
        self._patch(bm.Job, "describe", _describe_array(bm.Job.describe))
        import moto.batch.responses as br
        self._patch(br.BatchResponse, "submitjob", _submitjob(br.BatchResponse.submitjob))
        self._patch(bm.Job, "__init__", _job_init(bm.Job.__init__))
        self._patch(bm.Job, "_mark_stopped", _mark_stopped(bm.Job._mark_stopped))
        self._patch(bm.Job, "run", _run(bm.Job.run))
        logger = logging.getLogger("werkzeug")
        self._werkzeug_level = logger.level
        if not self.verbose:
            logger.setLevel(logging.WARNING)

    def _patch(self, obj: Any, name: str, value: Any) -> None:
        had = name in vars(obj)
        self._patches.append((obj, name, vars(obj).get(name), had))
        setattr(obj, name, value)

    def _uninstall_patches(self) -> None:
        if hasattr(self, "_werkzeug_level"):
            logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
            del self._werkzeug_level
        while self._patches:
            obj, name, old, had = self._patches.pop()
            if had:
                setattr(obj, name, old)
            else:
                delattr(obj, name)

    # -- environment --------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    unset_vars = UNSET_VARS

    def env(self) -> dict[str, str]:
        """Variables that point any boto3/botocore/aiobotocore/s3fs client at
        this server, with no code changes.  Also remove ``UNSET_VARS``."""
        url = self.endpoint_url
        return {
            "AWS_ENDPOINT_URL": url,
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ENDPOINT_URL_BATCH": url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.empty_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.empty_config),
        }

    def apply_env(self, environ: Any = None) -> None:
        """Apply ``env()`` to ``environ`` (default ``os.environ``) in place."""
        environ = os.environ if environ is None else environ
        for key in UNSET_VARS:
            environ.pop(key, None)
        environ.update(self.env())

    def _job_env(self, job_env: dict[str, str], job: Any) -> dict[str, str]:
        env = dict(self._base_env)
        env.update(job_env)
        env["MOTO_HOST"] = f"http://{self.host}"
        env["MOTO_PORT"] = str(self.port)
        env["MOTO_HTTP_ENDPOINT"] = f"{self.host}:{self.port}"
        for key in UNSET_VARS:
            env.pop(key, None)
        env.update(self.env())
        if job is not None:
            env["AWS_BATCH_JOB_ID"] = job.job_id
            env["AWS_BATCH_JOB_ATTEMPT"] = str(max(1, len(job.attempts)))
            env["AWS_BATCH_JQ_NAME"] = job.job_queue.name
            index = (job.array_properties or {}).get("index")
            if index is not None:
                env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        elif ":" in env.get("AWS_BATCH_JOB_ID", ""):
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = env["AWS_BATCH_JOB_ID"].rsplit(":", 1)[1]
        path = env.get("PATH") or os.defpath
        env["PATH"] = os.pathsep.join(
            [str(self.bin_dir), os.path.dirname(sys.executable), path]
        )
        return env

    # -- infrastructure faults -----------------------------------------------
    def fault(self, kind: str, match: Any, times: int = 1) -> None:
        """The next ``times`` job attempts for which ``match(JobFacts)`` holds fail as ``kind``
        ("reclaim": a Spot instance reclaimed; "oom": killed for memory)."""
        assert kind in ("reclaim", "oom"), kind
        with self._faults_lock:
            self.faults.append(Fault(kind, match, times))

    def _draw_fault(self, job: Any) -> str | None:
        facts = _facts(job)
        with self._faults_lock:
            for f in self.faults:
                if f.times > 0 and f.match(facts):
                    f.times -= 1
                    self.faulted.append((f.kind, facts))
                    return f.kind
        return None

    # -- clients and resources ----------------------------------------------
    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` aimed at this server explicitly
        (independent of the process environment).  Cached per service when
        called without kwargs; botocore clients are thread-safe."""
        import boto3

        if kwargs:
            return self._make_client(boto3, service, kwargs)
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(boto3, service, {})
            return self._clients[service]

    def _make_client(self, boto3: Any, service: str, kwargs: dict[str, Any]) -> Any:
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )
        return session.client(service, endpoint_url=self.endpoint_url, **kwargs)

    def create_bucket(self, name: str) -> str:
        self.client("s3").create_bucket(Bucket=name)
        return name

    def create_batch_env(
        self,
        queue_name: str = "q",
        job_definition: str = "jd",
        *,
        image: str = "busybox",
        vcpus: int = 1,
        memory: int = 512,
        command: list[str] | None = None,
        environment: dict[str, str] | None = None,
        timeout_seconds: int | None = None,
        retry_attempts: int | None = None,
    ) -> BatchEnv:
        """Create an IAM service role, an UNMANAGED compute environment (moto
        needs only the role for it: no VPC, subnets or instances), a job
        queue and a container job definition (the default command is
        ``["true"]``; jobs normally give theirs in containerOverrides).
        The role and compute environment are named after ``queue_name``.
        Existing role/compute environment/queue of those names are reused
        (moto's state lives as long as the server); the job definition gets
        a new revision.  Use unique names per test (``make_test_env``) so
        that ListJobs on the queue sees only that test's jobs."""
        iam = self.client("iam")
        batch = self.client("batch")
        role_name = f"{queue_name}-batch-service-role"
        try:
            role_arn = iam.create_role(
                RoleName=role_name,
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "batch.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        ce_name = f"{queue_name}-ce"
        found = batch.describe_compute_environments(computeEnvironments=[ce_name])
        if found["computeEnvironments"]:
            ce_arn = found["computeEnvironments"][0]["computeEnvironmentArn"]
        else:
            ce_arn = batch.create_compute_environment(
                computeEnvironmentName=ce_name,
                type="UNMANAGED",
                state="ENABLED",
                serviceRole=role_arn,
            )["computeEnvironmentArn"]
        found = batch.describe_job_queues(jobQueues=[queue_name])
        if found["jobQueues"]:
            queue_arn = found["jobQueues"][0]["jobQueueArn"]
        else:
            queue_arn = batch.create_job_queue(
                jobQueueName=queue_name,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_arn}],
            )["jobQueueArn"]
        props: dict[str, Any] = {
            "image": image,
            "command": command or ["true"],
            "resourceRequirements": [
                {"type": "VCPU", "value": str(vcpus)},
                {"type": "MEMORY", "value": str(memory)},
            ],
            "environment": [
                {"name": k, "value": v} for k, v in (environment or {}).items()
            ],
        }
        extra: dict[str, Any] = {}
        if timeout_seconds is not None:
            extra["timeout"] = {"attemptDurationSeconds": timeout_seconds}
        if retry_attempts is not None:
            extra["retryStrategy"] = {"attempts": retry_attempts}
        jd_arn = batch.register_job_definition(
            jobDefinitionName=job_definition,
            type="container",
            containerProperties=props,
            **extra,
        )["jobDefinitionArn"]
        return BatchEnv(
            queue_name=queue_name,
            queue_arn=queue_arn,
            job_definition=job_definition,
            job_definition_arn=jd_arn,
            compute_environment=ce_name,
            compute_environment_arn=ce_arn,
            service_role_arn=role_arn,
        )

    def make_test_env(self, prefix: str = "t") -> AwsTestEnv:
        """A fresh bucket + queue + job definition with unique names."""
        uid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        bucket = self.create_bucket(uid.lower())
        batch = self.create_batch_env(queue_name=f"{uid}-q", job_definition=f"{uid}-jd")
        return AwsTestEnv(server=self, bucket=bucket, batch=batch, env=self.env())

    # -- jobs ---------------------------------------------------------------
    def submit(
        self,
        batch_env: BatchEnv,
        name: str,
        command: str | list[str],
        *,
        depends_on: Iterable[str] = (),
        environment: dict[str, str] | None = None,
        array_size: int | None = None,
        **kwargs: Any,
    ) -> str:
        """Submit a job; a str ``command`` runs as ``["bash", "-c", command]``.
        Returns the jobId."""
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        overrides: dict[str, Any] = {"command": argv, **kwargs.pop("containerOverrides", {})}
        if environment:
            overrides["environment"] = [
                {"name": k, "value": v} for k, v in environment.items()
            ]
        if depends_on:
            kwargs["dependsOn"] = [{"jobId": j} for j in depends_on]
        if array_size is not None:
            kwargs["arrayProperties"] = {"size": array_size}
        return self.client("batch").submit_job(
            jobName=name,
            jobQueue=batch_env.queue_name,
            jobDefinition=batch_env.job_definition,
            containerOverrides=overrides,
            **kwargs,
        )["jobId"]

    def describe_jobs(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(job_ids)
        batch = self.client("batch")
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            for job in batch.describe_jobs(jobs=ids[i : i + 100])["jobs"]:
                out[job["jobId"]] = job
        return out

    def wait_for_jobs(
        self, job_ids: Iterable[str], timeout: float = 60.0, interval: float = 0.1
    ) -> dict[str, dict[str, Any]]:
        """Poll DescribeJobs until every job is SUCCEEDED or FAILED; return
        ``{jobId: description}``.  Raises TimeoutError with the last statuses."""
        ids = list(job_ids)
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.describe_jobs(ids)
            if len(jobs) == len(set(ids)) and all(
                j["status"] in TERMINAL_STATUSES for j in jobs.values()
            ):
                return jobs
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "jobs not finished after %.0fs: %s"
                    % (timeout, {k: v["status"] for k, v in jobs.items()})
                )
            time.sleep(interval)

    def job_log_lines(self, job: dict[str, Any] | str) -> list[str]:
        """The CloudWatch Logs messages of a job (description or jobId), read
        with GetLogEvents from the logStreamName DescribeJobs reports."""
        if isinstance(job, str):
            job = self.describe_jobs([job])[job]
        stream = job.get("container", {}).get("logStreamName")
        if not stream:
            return []
        logs = self.client("logs")
        kwargs: dict[str, Any] = {
            "logGroupName": LOG_GROUP,
            "logStreamName": stream,
            "startFromHead": True,
        }
        lines: list[str] = []
        while True:
            resp = logs.get_log_events(**kwargs)
            lines += [e["message"] for e in resp["events"]]
            token = resp.get("nextForwardToken")
            if not resp["events"] or not token or token == kwargs.get("nextToken"):
                return lines
            kwargs["nextToken"] = token

    def terminate_unfinished(self, queue_name: str, reason: str = "test teardown") -> None:
        """TerminateJob every job of ``queue_name`` that has not finished."""
        batch = self.client("batch")
        try:
            jobs = batch.list_jobs(jobQueue=queue_name)["jobSummaryList"]
        except Exception:  # server already gone, queue deleted, ...
            return
        for job in jobs:
            if job["status"] not in TERMINAL_STATUSES:
                batch.terminate_job(jobId=job["jobId"], reason=reason)

    def reset(self) -> None:
        """POST /moto-api/reset: wipe ALL moto state (every test's buckets,
        queues, jobs).  Running jobs are told to stop.  Unsafe while another
        test uses the server; the fixtures do not call it."""
        import urllib.request

        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass
        with self._clients_lock:
            self._clients.clear()


def start_server(**kwargs: Any) -> AwsServer:
    """``AwsServer(**kwargs).start()``."""
    return AwsServer(**kwargs).start()
