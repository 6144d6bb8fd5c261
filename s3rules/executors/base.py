"""The executor contract: submit a job, report the ones that finished, cancel.

Small on purpose (the runner owns ordering, retries of the plan and reporting). An executor
that ``submits_graph`` accepts jobs before their dependencies finish, given the upstream
handles, as AWS Batch does with ``dependsOn``; otherwise the runner submits a job only once
everything it needs has succeeded.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..model import Job


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


class Executor(ABC):
    submits_graph = False
    name = "executor"

    @abstractmethod
    def capacity(self) -> int:
        """How many more jobs may be submitted now."""

    @abstractmethod
    def submit(self, job: Job, upstream: list[object]) -> object:
        """Start ``job``; return a handle (the runner passes handles back as ``upstream``)."""

    @abstractmethod
    def poll(self, timeout: float) -> list[tuple[Job, Outcome]]:
        """Jobs that finished since the last call; may wait up to ``timeout`` seconds for one."""

    @abstractmethod
    def cancel(self) -> list[tuple[Job, Outcome]]:
        """Stop every job still running; return them with how they ended."""

    def flush(self) -> None:
        """Send what ``submit`` collected (executors that submit in bulk do it here)."""

    def abandon(self, jobs: list[Job]) -> None:
        """These submitted jobs must not run (something they need failed): drop or stop them.

        Each must still come back from ``poll``; the default lets them finish on their own.
        """

    def close(self) -> None:
        pass
