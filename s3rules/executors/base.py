"""The executor contract: check, submit, report what finished, cancel.

Small on purpose: the runner owns ordering, failure handling and reporting. An executor that
``submits_graph`` accepts jobs before their dependencies finish, given the upstream handles
(as AWS Batch does with ``dependsOn``), and its jobs keep running when s3rules stops, so
Ctrl-C detaches from it; otherwise the runner submits a job only once everything it needs has
succeeded, and Ctrl-C stops the jobs. ``registry`` names the executors.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from ..model import Job


#: causes of failure every executor may name (Batch names more: ``aws.failures``)
APPLICATION, TERMINATED, DEPENDENCY = "application error", "terminated", "dependency failed"
UPSTREAM_FAILED = "a job it depends on failed"   # the reason given for (and to Batch of) a job never run


@dataclass
class Outcome:
    """How a job ended. ``ok`` is the executor's word; the runner still checks the outputs."""

    ok: bool
    exit_code: int | None = None
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)
    log_path: str | None = None
    external_id: str | None = None
    started_at: float | None = None
    upstream_failed: bool = False   # never ran because a job it needs failed
    cause: str = ""                 # why it failed, in a few words ("out of memory", "spot or host reclaimed")
    usage: dict = field(default_factory=dict)   # what it took: see ``usage``


def usage(queued: float | None = None, started: float | None = None, ended: float | None = None,
          cpu: float | None = None, max_rss: int | None = None, attempts: int | None = None,
          max_rss_at_most: int | None = None) -> dict:
    """How long a job waited and ran and what it used, as far as its executor knows: epoch
    seconds ``queued`` (submitted), ``started`` and ``ended``; ``cpu`` seconds (user + system);
    ``max_rss`` bytes (or only ``max_rss_at_most``); Batch ``attempts`` (and ``packed``: how many
    jobs shared one Batch job, see ``group:``). Unknown values are left out. The ledger keeps
    it, so a report shows each rule's runtimes and memory without a ``benchmark:`` line."""
    found = {"queued": queued, "started": started, "ended": ended, "cpu": cpu, "max_rss": max_rss,
             "max_rss_at_most": max_rss_at_most, "attempts": attempts}
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in found.items() if v is not None}


class Handle:
    """What ``submit`` returns: the job and, once known, the executor's id for it."""

    __slots__ = ("job", "job_id")

    def __init__(self, job: Job, job_id: str | None = None):
        self.job, self.job_id = job, job_id


@dataclass(frozen=True)
class RunOptions:
    """What the command line tells an executor about this run."""

    base_dir: str                    # the Batchfile's directory
    state_dir: str                   # <base_dir>/.s3rules: logs and other local state
    jobs: int | None = None          # parallel local jobs (None: one per core)
    poll_interval: float = 2.0       # first interval between status checks of remote jobs
    planned_mtimes: dict = field(default_factory=dict)   # outputs' mtimes when planned
    say: Callable[[str], None] = lambda text: None      # a line for the person watching


class Executor(ABC):
    name = "executor"
    submits_graph = False

    @classmethod
    @abstractmethod
    def create(cls, options: RunOptions, storage) -> "Executor":
        """The executor for one run (the registry calls this)."""

    @classmethod
    def settle(cls, placed: dict[Job, str]) -> dict[Job, str]:
        """What became of jobs an earlier run started here and never saw end (``placed``: job ->
        the id it had here): "SUCCEEDED", "FAILED" or "RUNNING"; a job left out is unknown."""
        return {}

    @classmethod
    def find(cls, jobs: list[Job]) -> dict[Job, str]:
        """The ids of jobs an earlier run started here without learning their id (it stopped
        while the submission was under way): job -> id, for those this executor can find."""
        return {}

    def check(self, jobs: list[Job]) -> None:
        """Before anything is submitted: refuse, with a user error, what cannot run here."""

    @abstractmethod
    def capacity(self) -> int:
        """How many more jobs may be submitted now."""

    @abstractmethod
    def submit(self, job: Job, upstream: list[Handle]) -> Handle:
        """Start ``job``; the runner passes the handles of the jobs it needs back as ``upstream``."""

    def flush(self) -> None:
        """Send what ``submit`` collected (executors that submit in bulk do it here)."""

    def attach(self, job: Job, job_id: str, upstream: list[Handle]) -> Handle | None:
        """Watch ``job`` as the job ``job_id`` an earlier run started here and left running,
        instead of submitting it again; None where that cannot be done (then it is submitted)."""
        return None

    @abstractmethod
    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        """Jobs that finished since the last call; may wait up to ``timeout`` seconds for one."""

    def resubmitted(self) -> list[Job]:
        """Jobs the executor sent again since the last call (a new id to record once they have it)."""
        return []

    def states(self) -> dict[str, dict[str, int]] | None:
        """Per rule, jobs per state, when the executor knows finer states than running/done and
        they changed since the last call; None otherwise."""
        return None

    def abandon(self, jobs: list[Job]) -> None:
        """These submitted jobs must not run (something they need failed): drop or stop them.

        Each must still come back from ``poll``; the default lets them finish on their own.
        """

    @abstractmethod
    def cancel(self) -> list[tuple[Job, Outcome]]:
        """Ctrl-C: stop what this executor may stop; return those jobs with how they ended."""

    @property
    def notes(self) -> list[str]:
        """Things the person running s3rules should know (said once, before the run)."""
        return []

    def detached(self, batchfile: str, interrupted: bool) -> list[str]:
        """What to tell the person when s3rules leaves jobs running without it."""
        return []

    def close(self) -> None:
        pass
