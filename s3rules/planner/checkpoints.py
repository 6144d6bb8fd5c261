"""Checkpoints: a list variable read with ``lines()`` from a file that a rule makes.

Until that file exists and its maker is done, the jobs of rules that expand over the list
(or test it in ``when:``) cannot be known: they and everything below them *wait*. The plan
keeps them apart (``Plan.waiting``); a run makes the file, then plans again and carries on.
"""
from __future__ import annotations

from ..model import Job, Workflow
from .jobs import Planner


def checkpoint_files(workflow: Workflow, order: list[Job], deferred: dict[str, list[str]]) -> dict[str, str]:
    """list name -> file, for the lists made by a rule that a rule of ``order`` waits for, or
    that a rule asked for by name waits for (``deferred``: file -> rule names)."""
    made = {name: lst.file for name, lst in workflow.lists.items() if lst.made_by_rule}
    if not made:
        return {}
    used = {name for rule in {job.rule for job in order} for name in rule.waits_for if name in made}
    used |= {name for name, path in made.items() if path in deferred}
    return {name: made[name] for name in sorted(used)}


def makers(planner: Planner, files: dict[str, str], order: list[Job]) -> list[Job]:
    """The jobs that make the checkpoint files and are not in the graph yet."""
    have = set(order)
    out = []
    for path in files.values():
        job = planner.producer(path)
        if job is not None and job not in have:
            out.append(job)
    return out


def waiting_jobs(planner: Planner, workflow: Workflow, files: dict[str, str], order: list[Job],
                 pending: dict[Job, str]) -> dict[str, list[Job]]:
    """file -> the jobs that wait for it: of rules that use its list while the list is not read
    yet or its maker must run, and every job below them."""
    blocked = {name: path for name, path in files.items()
               if not workflow.lists[name].ready or planner.producer(path) in pending}
    if not blocked:
        return {}
    out: dict[str, list[Job]] = {path: [] for path in planner.deferred if path in blocked.values()}
    waits: dict[Job, str] = {}
    for job in order:
        hit = next((blocked[n] for n in job.rule.waits_for if n in blocked), None)
        if hit is None:
            hit = next((waits[d] for d in job.deps if d in waits), None)
        if hit is not None:
            waits[job] = hit
    for job, path in waits.items():
        out.setdefault(path, []).append(job)
    return out
