"""Why a Batch job failed, attempt by attempt, and which failures Batch itself retries.

Batch says why in three places of a job description (and of each of its ``attempts``):
``statusReason`` (the job's, e.g. ``Host EC2 (instance i-0abc) terminated.`` when a Spot
instance is reclaimed), ``container.reason`` (e.g. ``OutOfMemoryError: Container killed due to
memory usage``, ``CannotPullContainerError: ...``) and ``container.exitCode``. ``cause`` reads
them into one word a person can act on; ``retry_strategy`` builds the ``evaluateOnExit`` rules
that let Batch retry what the infrastructure did (up to ``retries_infra``) while an
application error uses ``retries``.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from ..executors.base import APPLICATION, DEPENDENCY, TERMINATED, UPSTREAM_FAILED

RECLAIMED, OUT_OF_MEMORY, TIMEOUT, IMAGE, UNKNOWN = (
    "spot or host reclaimed", "out of memory", "timeout", "image pull", "unknown")
MAX_ATTEMPTS = 10            # retryStrategy.attempts: 1 to 10
MAX_RULES = 5                # evaluateOnExit: at most 5 conditions

# (where, pattern, cause): the first match names the cause; patterns as Batch matches them
# ("*" only at the end), like the evaluateOnExit rules of ``retry_strategy``
_SIGNS = (
    ("statusReason", "Host EC2*", RECLAIMED),
    ("reason", "OutOfMemoryError*", OUT_OF_MEMORY),
    ("reason", "CannotPullContainerError*", IMAGE),
    ("reason", "CannotInspectContainerError*", IMAGE),
    ("statusReason", "Job attempt duration exceeded timeout*", TIMEOUT),
    ("statusReason", "Dependent Job failed*", DEPENDENCY),
    ("statusReason", UPSTREAM_FAILED + "*", DEPENDENCY),   # s3rules stopped it: a job it needs failed
)


def _fields(part: dict) -> dict:
    container = part.get("container") or {}
    return {"statusReason": part.get("statusReason") or "", "reason": container.get("reason") or "",
            "exitCode": container.get("exitCode")}


def cause(description: dict) -> str:
    """The cause of a failed job's last attempt (or of the job, when it never started one)."""
    attempts = description.get("attempts") or []
    last = {**_fields(description), **{k: v for k, v in _fields(attempts[-1]).items() if v not in ("", None)}} \
        if attempts else _fields(description)
    for where, pattern, name in _SIGNS:
        if fnmatchcase(last[where], pattern):
            return name
    if last["exitCode"] == 137 and "memory" in last["reason"].lower():
        return OUT_OF_MEMORY
    if last["exitCode"] not in (None, 0):
        return APPLICATION
    if last["statusReason"]:
        return TERMINATED
    return UNKNOWN


def attempt_causes(description: dict) -> list[str]:
    """The cause of each failed attempt, oldest first."""
    return [cause({**description, "attempts": [a]}) for a in description.get("attempts") or []
            if (a.get("container") or {}).get("exitCode") != 0]


def retry_strategy(retries: int, retries_infra: int, memory_retry: bool) -> dict | None:
    """SubmitJob's ``retryStrategy``: Batch retries a reclaimed host up to ``retries_infra``
    times and an application error (or a timeout) up to ``retries`` times, sharing one count of
    attempts (Batch has no other); an image that cannot be pulled fails at once, and so does an
    out-of-memory kill when s3rules resubmits it with more memory (``memory_retry``).
    None: nothing to retry, Batch's default single attempt."""
    if not retries and not retries_infra:
        return None
    rules = []
    if retries_infra:
        rules.append({"onStatusReason": "Host EC2*", "action": "RETRY"})
    rules.append({"onReason": "CannotPullContainerError*", "action": "EXIT"})
    if memory_retry:
        rules.append({"onReason": "OutOfMemoryError*", "action": "EXIT"})
    rules.append({"onReason": "*", "action": "RETRY" if retries else "EXIT"})
    assert len(rules) <= MAX_RULES
    return {"attempts": min(MAX_ATTEMPTS, 1 + retries + retries_infra), "evaluateOnExit": rules}


def more_memory(memory: int, memory_retry: str, memory_max: int) -> int | None:
    """The memory (MiB) to resubmit an out-of-memory job with: grown by ``memory_retry``
    ("2x", "+4096"), at most ``memory_max``; None once it had that much."""
    if memory >= memory_max:
        return None
    grown = int(memory * float(memory_retry[:-1])) if memory_retry.endswith("x") else memory + int(memory_retry)
    return min(grown, memory_max) if grown > memory else None
