"""The job graph: every job below the roots, its ``deps`` set, dependencies first.

Two builders, both kept: ``_link`` + ``_order`` link a rule's worth of new jobs at a time (the
fast way), and ``_walk`` goes job by job, depth first. The walk runs only when the fast way meets
an error, so the error reported is always the first one a depth-first walk meets.
"""
from __future__ import annotations

import gc
from itertools import repeat
from operator import add, attrgetter, itemgetter
from typing import Iterable, Sequence

from ..errors import PlanError
from ..model import Job
from .jobs import Planner
from .recipes import _Recipe

_values_of, _row_of, _inputs_of = attrgetter("values"), attrgetter("row"), attrgetter("inputs")


def job_graph(planner: Planner, roots: list[Job]) -> list[Job]:
    """Every job below ``roots``, dependencies first; cycles are an error naming them.

    Also fills ``planner.needed_by`` with the source files the jobs read.
    """
    # The graph is many small objects and no garbage: the cyclic collector would only walk
    # it again and again as it grows (a fifth of the time for 300,000 jobs).
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            _link(planner, roots)
            return _order(roots)
        except _Runaway as exc:
            raise PlanError(str(exc)) from None
        except (PlanError, _Cycle):
            # Report the error a depth-first walk meets first, as it always has.
            planner.needed_by.clear()
            return _walk(planner, roots)
    finally:
        if collecting:
            gc.enable()


def _set_deps(jobs: Iterable[Job], deps: Iterable[tuple[Job, ...]]) -> None:
    """The one place ``Job.deps`` is written: each job's producers in input order, no repeats.

    In bulk, so that the batched path pays no Python call per job.
    """
    for job, d in zip(jobs, deps):
        job.deps = d


def _unique(deps: Sequence[Job]) -> tuple[Job, ...]:
    return tuple(dict.fromkeys(deps)) if len(deps) > 1 else tuple(deps)


def _link(planner: Planner, roots: list[Job]) -> None:
    """Set ``deps`` of every job below ``roots``, and note the sources they need.

    Wave by wave, a rule's new jobs at a time: for a rule whose inputs all have a rule-pair
    shortcut, each input is one ``map`` over the batch and the producers are made in bulk.
    """
    done: set[Job] = set()
    recipes = planner.recipes
    wave: list[tuple[int | None, Sequence[Job]]] = [(None, roots)]   # None: of any rules
    depth = 0
    while wave:
        depth += 1
        if depth > _DEEP:
            _check_runaway(wave)
        groups: dict[int, list[Job]] = {}
        for index, jobs in wave:
            if index is not None:
                groups.setdefault(index, []).extend(jobs)
                continue
            for job in jobs:
                groups.setdefault(job.rule.index, []).append(job)
        wave = []
        for index, jobs in groups.items():
            jobs = [job for job in dict.fromkeys(jobs) if job not in done]
            if not jobs:
                continue
            done.update(jobs)
            recipe = recipes[index]
            if recipe.links is not None:
                n = len(recipe.links)
                odd = [job for job in jobs if len(job.inputs) != n]
                if odd:   # some inputs rendered alike and were merged: one by one
                    jobs = [job for job in jobs if len(job.inputs) == n]
                wave += _link_batch(planner, recipe, jobs)
            else:
                odd = jobs
            if odd:
                deps = [_dependencies_of(planner, job) for job in odd]
                _set_deps(odd, deps)
                wave += zip(repeat(None), deps)


def _dependencies_of(planner: Planner, job: Job) -> tuple[Job, ...]:
    """A job's deps when its inputs need more than the rule-pair shortcuts; notes its sources."""
    pairs = planner.dependencies(job)
    deps = [dep for _, dep in pairs if dep is not None]
    if len(deps) < len(pairs):
        needed_by = planner.needed_by
        for path, dep in pairs:
            if dep is None:
                needed_by.setdefault(path, job)
    return _unique(deps)


def _link_batch(planner: Planner, recipe: _Recipe, jobs: list[Job]) -> list[tuple[int, list[Job]]]:
    """``_link`` for jobs of a rule whose inputs all have shortcuts: (rule index, deps) per input."""
    nss = list(map(_values_of, jobs))
    if recipe.rule.bindings:
        nss = list(map(add, nss, map(_row_of, jobs)))
    out = []
    for i, (producer, values_of) in enumerate(recipe.links):
        paths = map(itemgetter(i), map(_inputs_of, jobs))
        if producer is None:
            planner.needed_by.update(zip(paths, jobs))
        else:
            out.append((producer.rule.index, planner.producers(producer, values_of, nss, paths)))
    if len(out) == 1:   # zip gives each job the 1-tuple of its dependency
        _set_deps(jobs, zip(out[0][1]))
    elif out:
        _set_deps(jobs, map(tuple, map(dict.fromkeys, zip(*[deps for _, deps in out]))))
    return out


def _order(roots: list[Job]) -> list[Job]:
    """Every job below ``roots`` (``deps`` set), dependencies first."""
    order: list[Job] = []
    state: dict[Job, int] = {}   # 1 = on the stack, 2 = done
    append, get = order.append, state.get
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(root.deps))]
        push, pop = stack.append, stack.pop
        while stack:
            job, deps = stack[-1]
            for dep in deps:
                s = get(dep)
                if s is None:
                    if dep.deps:
                        state[dep] = 1
                        push((dep, iter(dep.deps)))
                        break
                    state[dep] = 2   # it needs no other job: done at once
                    append(dep)
                elif s == 1:
                    raise _Cycle
            else:
                pop()
                state[job] = 2
                append(job)
    return order


def _walk(planner: Planner, roots: list[Job]) -> list[Job]:
    """The graph job by job, depth first: slower, and its first error is the one to report."""
    order: list[Job] = []
    deps_in_order: list[tuple[Job, ...]] = []
    state: dict[Job, int] = {}   # 1 = on the stack, 2 = done
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(planner.dependencies(root)), [])]
        while stack:
            job, deps_iter, deps = stack[-1]
            for path, dep in deps_iter:
                if dep is None:
                    planner.needed_by.setdefault(path, job)
                    continue
                deps.append(dep)
                s = state.get(dep)
                if s == 1:
                    cycle = [j for j, _, _ in stack]
                    cycle = cycle[cycle.index(dep):] + [dep]
                    raise PlanError("the rules form a cycle: " + " -> ".join(j.describe() for j in cycle)
                                    + f" (via {planner.display(path)})")
                if s is None:
                    state[dep] = 1
                    stack.append((dep, iter(planner.dependencies(dep)), []))
                    break
            else:
                stack.pop()
                state[job] = 2
                order.append(job)
                deps_in_order.append(_unique(deps))
    _set_deps(order, deps_in_order)
    return order


_DEEP = 500          # waves of jobs below the targets before paths are checked for a runaway chain
_LONGEST = 4096      # no filesystem takes a longer path (PATH_MAX; S3 keys stop at 1,024 bytes)


def _check_runaway(wave) -> None:
    """A rule whose input is its own output made longer (out/{x}.a.txt -> out/{x}.txt) asks
    for ever longer paths: stop at a path no filesystem takes, naming the rule."""
    for _, jobs in wave:
        for job in jobs:
            if any(len(p) > _LONGEST for p in job.outputs):
                shown = job.outputs[0][:80] + "..."
                raise _Runaway(f"rule '{job.rule.name}' asks for ever longer paths ({shown}): one of its inputs is "
                               "one of its own outputs made longer, so the chain never ends; give the rules "
                               "distinct output patterns, or name their wildcards after sheet columns or list "
                               "variables so they only take those values")


class _Runaway(Exception):
    """The graph grows without end; reported as a PlanError, never walked again."""


class _Cycle(Exception):
    """The batched graph has a cycle; the job-by-job walk describes it."""
