"""temp() outputs: a missing temp file is made again only when a job that must run needs it.

A job whose only missing outputs are temp files, and that nothing it needs must rerun, is
*tentative*: it runs only if it was asked for or one of its consumers is pending. Deciding
that takes the consumers' verdicts, so it is a second pass, consumers first, over the few
tentative jobs only.
"""
from __future__ import annotations

from ..model import Job


def only_temp_missing(job: Job, exists) -> bool:
    """Every output the job lacks is a temp() output (and it has some)."""
    temp = job.rule.temp
    return bool(temp) and all(i in temp for i, o in enumerate(job.outputs) if o not in exists)


def settle_tentative(order: list[Job], pending: dict[Job, str], tentative: set[Job], roots: set[Job],
                     reason: str) -> dict[Job, str]:
    """``pending`` plus the tentative jobs that a pending consumer (or the targets) need, in
    ``order``'s order (dependencies first)."""
    if not tentative:
        return pending
    consumers: dict[Job, list[Job]] = {}
    for job in order:
        for dep in job.deps:
            if dep in tentative:
                consumers.setdefault(dep, []).append(job)
    needed = {}
    for job in reversed(order):
        if job in tentative and (job in roots or any(c in pending or c in needed for c in consumers.get(job, ()))):
            needed[job] = reason
    if not needed:
        return pending
    return {job: pending.get(job) or needed[job] for job in order if job in pending or job in needed}
