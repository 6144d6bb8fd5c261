"""temp() outputs: a missing temp file is made again only when a job that must run needs it.

A job whose only missing outputs are temp files, and that nothing it needs must rerun, is
*tentative*: it runs only if it was asked for or one of its consumers is pending. Deciding
that takes the consumers' verdicts, so it is a second pass, consumers first, over the few
tentative jobs only.
"""
from __future__ import annotations

from ..model import Job


def only_temp_missing(job: Job, exists) -> bool:
    """The job lacks some output, and every output it lacks is a temp() output."""
    temp = job.rule.temp
    missing = [i for i, o in enumerate(job.outputs) if o not in exists]
    return bool(missing) and all(i in temp for i in missing)


def asked_for(roots) -> set[str]:
    """The paths the targets name: a target list's (`rule all:`) inputs, a job's outputs."""
    return {path for job in roots for path in (job.inputs if job.rule.is_target_list else job.outputs)}


def settle_tentative(order: list[Job], pending: dict[Job, str], tentative: set[Job], asked: set[str],
                     reason: str) -> dict[Job, str]:
    """``pending`` plus the tentative jobs that a pending consumer needs, or whose outputs were
    asked for (``asked``: paths), in ``order``'s order (dependencies first)."""
    if not tentative:
        return pending
    consumers: dict[Job, list[Job]] = {}
    for job in order:
        for dep in job.deps:
            if dep in tentative:
                consumers.setdefault(dep, []).append(job)
    needed = {}
    for job in reversed(order):
        if job in tentative and (not asked.isdisjoint(job.outputs)
                                 or any(c in pending or c in needed for c in consumers.get(job, ()))):
            needed[job] = reason
    if not needed:
        return pending
    return {job: pending.get(job) or needed[job] for job in order if job in pending or job in needed}
