"""Run jobs as local processes: bash with ``set -euo pipefail``, in the Batchfile's directory.

Each job's stdout and stderr go to one log file under ``.s3rules/logs/``; the job runs in its own
process group so cancelling stops everything it started. The directories of the job's own ``log:``
files are made before it starts, as those of its outputs are.
"""
from __future__ import annotations

import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque

from ..errors import PlanError
from ..model import Job, is_url
from .base import APPLICATION, TERMINATED, Executor, Handle, Outcome, RunOptions, usage
from .stager import runnable, write_plan


def log_path_for(log_dir: str, job: Job) -> str:
    """One log per job: readable from its wildcards, and distinct even when they are not."""
    raw = "_".join(f"{k}={v}" for k, v in job.wildcards.items()) or "job"
    label = re.sub(r"[^A-Za-z0-9._=+-]", "_", raw)[:180]
    if label != raw:   # characters were replaced or cut: two jobs could meet here
        label += "-" + hashlib.sha256(raw.encode()).hexdigest()[:10]
    return os.path.join(log_dir, job.rule.name, label + ".log")


def tail(path: str, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


def _ended(pid: str) -> bool:
    """A zombie (ended, not yet reaped by whoever adopted it) runs nothing any more."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _make_log_dirs(job: Job) -> str | None:
    """Make the directories of the job's local ``log:`` files; what stood in the way, if anything."""
    for path in job.logs:
        if is_url(path):   # object stores need no directories (file:// ones the runner makes)
            continue
        parent = os.path.dirname(path)
        try:
            if parent:
                os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            return f"could not start: cannot create the directory of its log {path}: {exc.strerror or exc}"
    return None


def _reap(proc: subprocess.Popen) -> tuple[int, dict] | None:
    """(exit status, what it used) of a job's process that ended, else None. ``wait4`` gives the
    CPU time and peak memory of the job's shell and every command it waited for (the largest
    one's resident set: Linux counts ``ru_maxrss`` in KiB)."""
    if proc.returncode is not None:
        return proc.returncode, {}
    try:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:   # reaped elsewhere: its status is all there is
        code = proc.poll()
        return None if code is None else (code, {})
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = _bytes(rusage.ru_maxrss)
    # Linux keeps a process's memory high-water mark across exec, so a job counts the pages of
    # the s3rules that started it: a peak no higher than s3rules' own tells only "at most that"
    floor = _own_peak()
    return proc.returncode, {"cpu": rusage.ru_utime + rusage.ru_stime,
                             **({"max_rss": peak} if peak > floor else {"max_rss_at_most": floor})}


def _own_peak() -> int:
    """This process's peak resident memory in bytes, as its own pages count it (``VmHWM``: not
    the high-water mark it inherited from whatever started it, which ``getrusage`` includes)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _bytes(maxrss: int) -> int:
    """``ru_maxrss`` in bytes: macOS counts it in bytes, Linux and the others in KiB."""
    return maxrss * (1 if sys.platform == "darwin" else 1024)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, base_dir: str, log_dir: str, jobs: int | None = None):
        self.base_dir = base_dir
        self.log_dir = log_dir
        self._notes: list[str] = []
        try:   # .s3rules/ is only a cache: when something is in the way, logs go elsewhere
            os.makedirs(log_dir, exist_ok=True)
        except OSError as exc:
            self.log_dir = tempfile.mkdtemp(prefix="s3rules-logs-")
            self._notes.append(f"cannot use {log_dir} for job logs ({exc.strerror}); this run's logs go to "
                              f"{self.log_dir}")
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.running: dict[int, tuple[Job, subprocess.Popen, str, float]] = {}
        self.finished: deque[tuple[Job, Outcome]] = deque()

    @classmethod
    def create(cls, options: RunOptions, storage) -> "LocalExecutor":
        return cls(options.base_dir, os.path.join(options.state_dir, "logs"), options.jobs)

    @classmethod
    def settle(cls, placed: dict[Job, str]) -> dict[Job, str]:
        """A job whose process still runs (its s3rules was killed) is RUNNING: every job here leads
        its own session, so a live pid that leads no session is another process now."""
        running = {}
        for job, pid in placed.items():
            try:
                if pid.isdigit() and os.getsid(int(pid)) == int(pid) and not _ended(pid):
                    running[job] = "RUNNING"
            except OSError:
                pass
        return running

    @property
    def notes(self) -> list[str]:
        return self._notes

    def check(self, jobs: list[Job]) -> None:
        for job in jobs:   # a URL a staged job cannot name locally is refused before anything runs
            if job.staging() is not None and job.settings.scratch and not os.path.isdir(job.settings.scratch):
                raise PlanError(f"rule '{job.rule.name}' stages its files in scratch: {job.settings.scratch}, "
                                "which is not a directory here; make it, or set scratch: to one that is")

    def capacity(self) -> int:
        return self.jobs - len(self.running)

    def submit(self, job: Job, upstream: list[Handle]) -> Handle:
        log_path = log_path_for(self.log_dir, job)
        env = dict(os.environ)
        env.update(job.environment())
        started = time.time()
        problem = _make_log_dirs(job)
        if problem:
            self.finished.append((job, Outcome(False, None, problem, started_at=started)))
            return Handle(job)
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            log = open(log_path, "wb")
        except OSError:   # something in the way of this one log: write it elsewhere
            fd, log_path = tempfile.mkstemp(prefix=f"s3rules-{job.rule.name}-", suffix=".log")
            log = os.fdopen(fd, "wb")
        with log:
            try:
                proc = subprocess.Popen(self._argv(job, log_path), cwd=self.base_dir, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            except (OSError, ValueError) as exc:
                self.finished.append((job, Outcome(False, None, f"could not start: {exc}", log_path=log_path,
                                                   started_at=started)))
                return Handle(job)
        self.running[proc.pid] = (job, proc, log_path, started)
        return Handle(job, str(proc.pid))

    def _argv(self, job: Job, log_path: str) -> list[str]:
        """The job's command; a staged job's runs inside the stager, which moves its files."""
        staging = job.staging()
        if staging is None:
            return runnable(job.argv(self.base_dir), log_path + ".sh")
        plan = log_path + ".stage.json"
        write_plan(plan, job.argv(), staging, job.settings.scratch)
        # -P (Python 3.11+): a json.py beside the Batchfile must not stand in for the library's
        return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", "s3rules.executors.stager", plan]

    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        deadline = time.monotonic() + timeout
        while True:
            for pid, (job, proc, log_path, started) in list(self.running.items()):
                ended = _reap(proc)
                if ended is None:
                    continue
                code, used = ended
                del self.running[pid]
                used = usage(started, started, time.time(), **used)
                if code == 0:
                    outcome = Outcome(True, 0, log_path=log_path, started_at=started, usage=used)
                else:
                    why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                    cause = APPLICATION if code > 0 else TERMINATED if code == -signal.SIGTERM else why
                    outcome = Outcome(False, code, why, tail(log_path), log_path, started_at=started, usage=used,
                                      cause=cause)
                self.finished.append((job, outcome))
            if self.finished or not self.running or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        out = list(self.finished)
        self.finished.clear()
        return out

    def cancel(self) -> list[tuple[Job, Outcome]]:
        stopped = []
        for job, proc, log_path, started in self.running.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            stopped.append((job, Outcome(False, None, "cancelled", log_path=log_path, started_at=started)))
        for job, proc, _, _ in self.running.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        self.running.clear()
        return stopped
