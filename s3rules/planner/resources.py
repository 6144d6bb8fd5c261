"""Settings a rule reads from each job's values (``memory: "{mem_mb}"``), checked per pending job.

The loader checks the names; only a job's own values can say whether ``{mem_mb}`` is a
number in range, so every job that will run is checked here, before anything starts, and a
bad value is reported at the sheet cell it came from when it came from one.
"""
from __future__ import annotations

from ..errors import PlanError, SampleSheetError
from ..language.samples import cell_of
from ..model import Job
from ..settings import KEYS, Number


def check_resources(pending, sheets) -> None:
    """Raise for the first pending job whose per-job setting is not a number in range."""
    for job in pending:
        rule = job.rule
        if not rule.resources:
            continue
        ns = job.namespace()
        for key, template in rule.resources:
            text = template.render(ns)
            problem = _problem(key, text)
            if problem:
                _raise(job, key, template, text, problem, sheets)


def _problem(key: str, text: str) -> str | None:
    kind = KEYS[key].kind
    assert isinstance(kind, Number)
    try:
        number = float(text)
    except ValueError:
        return "is not a number"
    if kind.integer and not number.is_integer():
        return "is not a whole number"
    if number < kind.low or (kind.high is not None and number > kind.high):
        bound = f"from {kind.low:g} to {kind.high:g}" if kind.high is not None else f"at least {kind.low:g}"
        return f"is not {bound}"
    return None


def _raise(job: Job, key: str, template, text: str, problem: str, sheets):
    message = f"{key} of job {job.describe()} is {text!r} (from {template.text}), which {problem}"
    names = template.names
    cell = cell_of(sheets, job.namespace(), names[0]) if len(names) == 1 else None
    if cell is not None:
        raise SampleSheetError(message, cell[0], cell[1], names[0])
    raise PlanError(message)
