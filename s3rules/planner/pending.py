"""What must run: targets and --force resolved, the graph built, a reason for each pending job.

Existence decides what is pending, then the job ledger (``s3rules.ledger``, when given): a job
whose last record is not "finished" was interrupted, and one whose recorded identity differs
from today's, in one of the ``triggers``, has changed. Only the "mtime" trigger (--rerun-stale)
compares mtimes. Storage is asked in batches (``exists_many`` / ``stat_many``), once for the
whole graph, and the ledger once per place it keeps records.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Sequence

from ..errors import PlanError
from ..model import Job, Workflow, directories_of
from .checkpoints import checkpoint_files, makers, waiting_jobs
from .graph import job_graph
from .jobs import Planner
from .targets import closest_rule
from .resources import check_resources
from .temp import asked_for, only_temp_missing, settle_tentative

MISSING, INCOMPLETE, FORCED, STALE, UPSTREAM = "missing", "incomplete", "forced", "stale", "upstream"
CHANGED = {name: f"changed: {name}" for name in ("command", "params", "input", "resources")}
REASONS = (MISSING, INCOMPLETE, FORCED, *CHANGED.values(), STALE, UPSTREAM)
_rule_of, _outputs_of = attrgetter("rule"), attrgetter("outputs")


@dataclass
class Plan:
    """The job graph below the requested targets and what of it must run.

    Nothing changes its jobs once ``plan()`` returns: ``deps`` is written only while the graph
    is built (``graph._set_deps``), and everything after that reads them.
    """

    workflow: Workflow
    jobs: list[Job]                      # every job in the graph, dependencies first
    pending: dict[Job, str]              # job -> reason, dependencies first
    targets: list[Job]                   # the jobs that were asked for
    # mtimes of the pending jobs' existing outputs (of every path with --rerun-stale): a run
    # compares them with what it finds afterwards to tell what a job wrote
    mtimes: dict[str, float] = field(repr=False, default_factory=dict)
    # jobs whose last record says they started and never finished (a killed or failed run)
    interrupted: list[Job] = field(default_factory=list)
    # checkpoint file -> the jobs that cannot be known until it is made (``planner.checkpoints``),
    # and the rules asked for by name whose jobs cannot be listed until then
    waiting: dict[str, list[Job]] = field(default_factory=dict)
    waiting_rules: dict[str, list[str]] = field(default_factory=dict)

    def done(self, job: Job) -> bool:
        return job not in self.pending

    def summary(self) -> dict[str, dict[str, int]]:
        """Per rule: pending / done / total (target lists such as ``all`` are not jobs); a job
        waiting for a checkpoint file is pending, though it cannot run yet."""
        totals = Counter(map(_rule_of, self.jobs))
        pending = Counter(map(_rule_of, chain(self.pending, *self.waiting.values())))
        return {rule.name: {"pending": pending[rule], "done": n - pending[rule], "total": n}
                for rule, n in totals.items() if not rule.is_target_list}


def plan(workflow: Workflow, storage, targets: Sequence[str] = (), *, force: Sequence[str] = (),
         forcerun: Sequence[str] = (), forceall: bool = False, until: Sequence[str] = (),
         rerun_stale: bool = False, check_sources: bool = True, ledger=None,
         triggers: Sequence[str] = (), already_ran: frozenset = frozenset()) -> Plan:
    """Work out the job graph for ``targets`` (default: the first rule) and what is pending.

    ``check_sources=False`` tolerates missing source files (for status, logs and cancel,
    which look at a workflow without running it). ``ledger`` (an ``s3rules.ledger.Ledger``)
    adds "incomplete" for interrupted jobs and "changed: ..." for the ``triggers`` named.
    ``already_ran``: outputs this invocation has made (before a checkpoint): --force and its
    kin do not make those jobs run again.
    """
    planner = Planner(workflow)
    for name in list(forcerun):
        if name not in workflow.rules:
            raise PlanError(f"--forcerun {name}: no such rule" + _rule_hint(name, workflow))
    requested, forced_jobs = _requested(planner, targets or [workflow.default_rule], force)
    roots = [t for t in requested if isinstance(t, Job)]
    source_targets = [t for t in requested if isinstance(t, str)]
    order = job_graph(planner, roots)
    files = checkpoint_files(workflow, order, planner.deferred)
    if files and (more := makers(planner, files, order)):   # the checkpoint files' makers join the graph
        order = job_graph(planner, roots + more)
    directories = directories_of(order)
    mtimes, exists = _existing(storage, planner, order, source_targets, directories, rerun_stale)
    forced_rules = {rule for rule in workflow.rules.values() if forceall or rule.name in forcerun}
    verdicts = _verdicts(ledger, order, tuple(t for t in triggers if t in CHANGED))
    tentative: set[Job] = set()
    pending = _reasons(workflow, order, exists, mtimes if rerun_stale else None, forced_rules, forced_jobs, verdicts,
                       tentative, already_ran)
    pending = settle_tentative(order, pending, tentative, asked_for(roots), MISSING)
    interrupted = [job for job, why in pending.items() if why == INCOMPLETE and verdicts.get(job) == INCOMPLETE]
    waiting = waiting_jobs(planner, workflow, files, order, pending) if files else {}
    if waiting:
        held = {job for jobs in waiting.values() for job in jobs}
        pending = {job: why for job, why in pending.items() if job not in held}
    if until:
        pending, roots = _until(planner, until, pending)
    if check_sources:
        _check_sources(planner, pending, exists, source_targets, until)
    check_resources(pending, workflow.sheets)
    if not rerun_stale:   # a run tells what a job wrote by these mtimes
        mtimes, _ = _look(storage, [o for job in pending for o in job.outputs if o in exists], directories, True)
    return Plan(workflow, order, pending, roots, mtimes, interrupted, waiting, dict(planner.deferred))


def _existing(storage, planner: Planner, order: list[Job], source_targets: list[str], directories: set[str],
              rerun_stale: bool):
    """(mtimes with --rerun-stale else {}, the paths that exist) for every output and source
    below the targets, in one batched look; a missing source is looked at again as a directory."""
    paths = list(chain(chain.from_iterable(map(_outputs_of, order)), planner.needed_by, source_targets))
    mtimes, exists = _look(storage, paths, directories, rerun_stale)
    missing_sources = [p for p in chain(planner.needed_by, source_targets) if p not in exists]
    if missing_sources:
        found_mtimes, found = _look(storage, missing_sources, set(missing_sources), rerun_stale)
        exists = set(exists) | set(found)
        mtimes.update(found_mtimes)
    return mtimes, exists


def _look(storage, paths: list[str], directories: set[str], with_mtimes: bool):
    """(mtimes or {}, the paths that exist), directories counted as such."""
    extra = {"directories": directories} if directories else {}
    if with_mtimes:
        mtimes = storage.stat_many(paths, **extra)
        return mtimes, mtimes.keys()
    return {}, storage.exists_many(paths, **extra)


def _verdicts(ledger, order: list[Job], triggers: tuple[str, ...]) -> dict[Job, str]:
    """What the ledger says of the jobs: "incomplete" or "changed: ..." (the others, unchanged
    or unrecorded, are left out); the plan asks it only of jobs existence alone calls done."""
    if ledger is None:
        return {}
    return ledger.verdicts(order, triggers)


def _requested(planner: Planner, targets: Sequence[str], force: Sequence[str]) -> tuple[list, set[Job]]:
    """The targets' jobs (or source paths), then the --force jobs not already among them."""
    requested = planner.resolve_targets(targets)
    forced_jobs: set[Job] = set()
    for name in force:
        for item in planner.resolve_targets([name]):
            if isinstance(item, str):
                raise PlanError(f"--force {name}: no rule makes {planner.display(item)}, so there is "
                                "nothing to rerun")
            forced_jobs.add(item)
            if item not in requested:
                requested.append(item)
    return requested, forced_jobs


def _reasons(workflow: Workflow, order: list[Job], exists, mtimes: dict[str, float] | None,
             forced_rules: set, forced_jobs: set[Job], verdicts: dict[Job, str], tentative: set[Job],
             already_ran: frozenset = frozenset()) -> dict[Job, str]:
    """Job -> why it must run, dependencies first (``mtimes`` only with --rerun-stale).

    A job that lacks only temp() outputs, with nothing it needs pending, goes to ``tentative``
    instead (``planner.temp`` decides it once its consumers are known).
    """
    target_lists = {rule for rule in workflow.rules.values() if rule.is_target_list}
    pending: dict[Job, str] = {}
    is_pending = pending.keys()
    for job in order:
        rule = job.rule
        if rule in target_lists:
            continue
        outputs = job.outputs
        if (rule in forced_rules or job in forced_jobs) and not (already_ran and already_ran.issuperset(outputs)):
            pending[job] = FORCED
        elif rule.temp and only_temp_missing(job, exists) and is_pending.isdisjoint(job.deps):
            tentative.add(job)
        elif exists.isdisjoint(outputs):
            pending[job] = MISSING
        elif len(outputs) > 1 and not all(o in exists for o in outputs):
            pending[job] = INCOMPLETE
        elif (said := verdicts.get(job)) == INCOMPLETE:
            pending[job] = said
        elif not is_pending.isdisjoint(job.deps):
            pending[job] = UPSTREAM
        elif said:
            pending[job] = said
        elif mtimes is not None and job.inputs:
            newest_input = max((mtimes.get(p, 0.0) for p in job.inputs), default=0.0)
            if newest_input > min(mtimes[o] for o in job.outputs):
                pending[job] = STALE
    return pending


def _until(planner: Planner, until: Sequence[str],
           pending: dict[Job, str]) -> tuple[dict[Job, str], list[Job]]:
    """--until: only what the named jobs need, and those jobs become the targets."""
    limit = [j for j in planner.resolve_targets(until) if isinstance(j, Job)]
    keep = _ancestors(limit)
    return {j: r for j, r in pending.items() if j in keep}, limit


def _ancestors(jobs: list[Job]) -> set[Job]:
    seen: set[Job] = set()
    stack = list(jobs)
    while stack:
        job = stack.pop()
        if job in seen:
            continue
        seen.add(job)
        stack.extend(job.deps)
    return seen


def _check_sources(planner: Planner, pending: dict[Job, str], exists, source_targets: list[str],
                   until: Sequence[str] = ()) -> None:
    """A missing source file is an error only where a job that must run needs it."""
    missing = [t for t in source_targets if t not in exists]
    if missing:
        raise PlanError(f"{planner.display(missing[0])} does not exist and no rule makes it"
                        + planner.why_not_made(missing[0]))
    needs = {}
    for path, job in planner.needed_by.items():
        if path not in exists:
            needs[path] = job
    if not needs:
        return
    blocking = []
    # a target list (`rule all:`) asks for its sources too: a missing one is never "done"
    lists = [] if until else [job for recipe in planner.recipes.values() if recipe.rule.is_target_list
                               for job in recipe.jobs.values()]
    for job in chain(pending, lists):
        for path in job.inputs:
            if path in needs:
                blocking.append((path, job))
    if blocking:
        path, job = blocking[0]
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise PlanError(f"missing input {planner.display(path)}{more}: job {job.describe()} needs it, "
                        "no rule makes it, and it does not exist" + planner.why_not_made(path))


def _rule_hint(name: str, workflow: Workflow) -> str:
    hint = closest_rule(name, workflow)
    return f"; did you mean '{hint}'?" if hint else f" (rules: {', '.join(workflow.rules)})"
