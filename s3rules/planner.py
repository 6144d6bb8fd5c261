"""What to run and why: targets -> job graph -> pending jobs with a reason each.

A job exists once per (rule, wildcard values). Each input path is matched against the rules'
output patterns to find its producer; no producer means a source file. For sample-sheet
workflows the same (consumer input, producer output) pair recurs once per row, so the match is
worked out once per rule pair and reused (``_Shortcut``), which keeps planning linear and fast.
Jobs are made and linked a rule's worth at a time, then put in depth-first order; should that
meet an error, the plain job-by-job walk runs instead, so the error reported is always the one
it meets first. Pure except for batched ``Storage`` calls.
"""
from __future__ import annotations

import gc
import os
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, compress, repeat, starmap
from operator import add, attrgetter, itemgetter, not_
from typing import Iterable, Sequence

from .errors import PlanError
from .model import Job, Pattern, Rule, Workflow, is_url, resolve_path

MISSING, INCOMPLETE, FORCED, STALE, UPSTREAM = "missing", "incomplete", "forced", "stale", "upstream"
REASONS = (MISSING, INCOMPLETE, FORCED, STALE, UPSTREAM)
_rule_of, _values_of, _row_of = attrgetter("rule"), attrgetter("values"), attrgetter("row")
_inputs_of, _outputs_of = attrgetter("inputs"), attrgetter("outputs")


@dataclass
class Plan:
    """The job graph below the requested targets and what of it must run."""

    workflow: Workflow
    jobs: list[Job]                      # every job in the graph, dependencies first
    pending: dict[Job, str]              # job -> reason, dependencies first
    targets: list[Job]                   # the jobs that were asked for
    # mtimes of the pending jobs' existing outputs (of every path with --rerun-stale): a run
    # compares them with what it finds afterwards to tell what a job wrote
    mtimes: dict[str, float] = field(repr=False, default_factory=dict)

    def done(self, job: Job) -> bool:
        return job not in self.pending

    def summary(self) -> dict[str, dict[str, int]]:
        """Per rule: pending / done / total (target lists such as ``all`` are not jobs)."""
        totals = Counter(map(_rule_of, self.jobs))
        pending = Counter(map(_rule_of, self.pending))
        return {rule.name: {"pending": pending[rule], "done": n - pending[rule], "total": n}
                for rule, n in totals.items() if not rule.is_target_list}


class _Shortcut:
    """How paths of one consumer input map onto one producer output, worked out once.

    Valid when both patterns have the same literal text with placeholders in the same places,
    placeholders are separated by ``/`` (so a path splits one way only), and no other output
    pattern of the workflow could match a path of this shape. ``rule is None`` means no output
    pattern can match at all: every such path is a source file.
    """

    __slots__ = ("rule", "positions", "values_of")

    def __init__(self, rule: Rule | None, positions: tuple[int, ...] = ()):
        self.rule, self.positions = rule, positions
        start = positions[0] if positions else 0
        if positions == tuple(range(start, start + len(positions))):
            # a run of the consumer's values (often all of them): a slice, always a tuple
            self.values_of = itemgetter(slice(start, start + len(positions)))
        else:   # two or more positions: itemgetter gives a tuple
            self.values_of = itemgetter(*positions)


def _shortcut(consumer: Pattern, consumer_names: Sequence[str], outputs: list[tuple[Rule, Pattern]]):
    if consumer.whole:
        return None
    matches = [(r, o) for r, o in outputs if _may_overlap(consumer, o)]
    if not matches:
        return _Shortcut(None)
    if len(matches) != 1:
        return None
    rule, out = matches[0]
    if out.literals != consumer.literals or len(out.placeholders) != len(consumer.placeholders):
        return None
    if any("/" not in lit for lit in consumer.literals[1:len(consumer.placeholders)]):
        return None
    mapping: dict[str, str] = {}
    for pc, po in zip(consumer.placeholders, out.placeholders):
        if mapping.setdefault(po.name, pc.name) != pc.name:
            return None
    if len(set(mapping.values())) != len(mapping):
        return None  # two producer wildcards from one consumer value: only the regex can say
    index = {name: i for i, name in enumerate(consumer_names)}
    return _Shortcut(rule, tuple(index[mapping[w]] for w in rule.wildcards))


def _may_overlap(a: Pattern, b: Pattern) -> bool:
    """False only when no path can fit both patterns (their fixed start or end disagree)."""
    pa, pb = a.literals[0], b.literals[0]
    if not (pa.startswith(pb) or pb.startswith(pa)):
        return False
    if len(a.literals) > len(a.placeholders) and len(b.literals) > len(b.placeholders):
        sa, sb = a.literals[-1], b.literals[-1]
        if a.placeholders and b.placeholders and not (sa.endswith(sb) or sb.endswith(sa)):
            return False
    return True


class _Recipe:
    """A rule's jobs, compiled once: formats over the job's values, row lookup, input shortcuts.

    ``jobs`` holds the rule's jobs by wildcard values. ``links`` is set when every input is a
    plain path whose producer is known per rule pair: then a job's dependencies are a slice of
    its values and a dict lookup each, with no path matching.
    """

    def __init__(self, planner: "Planner", rule: Rule):
        sheet = planner.sheet
        self.rule = rule
        self.jobs: dict[tuple[str, ...], Job] = {}
        self.out_fmts = rule.output_formats()
        self.key_pos = rule.wildcards.index(sheet.key) if rule.uses_row else None
        self.row_checks = tuple((i, sheet.column_index[w]) for i, w in enumerate(rule.wildcards)
                                if rule.uses_row and w in sheet.column_index and w != sheet.key)
        self.filter_pos = tuple(rule.wildcards.index(w) for w in rule.expand_filter)
        self.expand_names = (sheet.columns + rule.wildcards) if sheet else ()
        columns = set(sheet.columns) if sheet else set()
        self.free_in_expand = {s.pattern.text: any(n not in columns for n in s.pattern.names)
                               for s in rule.inputs if s.expand}
        self.has_expand = any(spec.expand for spec in rule.inputs)
        self.inputs = []  # (kind, format or pattern, shortcut)
        for spec in rule.inputs:
            p = spec.pattern
            if spec.expand:
                self.inputs.append(("expand", p, _shortcut(p, self.expand_names, planner.outputs)))
            elif p.whole:
                self.inputs.append(("whole", p.positional(rule.namespace), None))
            else:
                self.inputs.append(("path", p.positional(rule.namespace),
                                    _shortcut(p, rule.namespace, planner.outputs)))
        plain = all(kind == "path" for kind, _, _ in self.inputs)
        self.in_fmts = tuple(fmt for _, fmt, _ in self.inputs) if plain else None
        self.links: tuple | None = None

    def link(self, recipes: dict[int, "_Recipe"]) -> None:
        """Set ``links``: per input, (producer recipe or None for a source, values getter)."""
        if self.in_fmts is None or any(sc is None for _, _, sc in self.inputs):
            return
        self.links = tuple((None if sc.rule is None else recipes[sc.rule.index], sc.values_of)
                           for _, _, sc in self.inputs)


class Planner:
    def __init__(self, workflow: Workflow):
        self.wf = workflow
        self.sheet = workflow.sheet
        self.outputs = [(r, p) for r in workflow.rules.values() for p in r.outputs]
        self._producer: dict[str, Job | None] = {}
        self._recipes = {r.index: _Recipe(self, r) for r in workflow.rules.values()}
        for recipe in self._recipes.values():
            recipe.link(self._recipes)
        self._expanded: dict[tuple, tuple[tuple[str, ...], list | None]] = {}
        self.needed_by: dict[str, Job] = {}   # source path -> a job that needs it

    # -- jobs ---------------------------------------------------------------------------------
    def job(self, rule: Rule, values: tuple[str, ...], wanted: str | None = None) -> Job:
        """The job of ``rule`` for these wildcard values (``wanted``: the path that asked, for errors)."""
        recipe = self._recipes[rule.index]
        job = recipe.jobs.get(values)
        if job is None:
            job = recipe.jobs[values] = self._make_job(recipe, values, wanted)
        return job

    def _make_job(self, recipe: _Recipe, values: tuple[str, ...], wanted: str | None) -> Job:
        row = None
        ns = values
        if recipe.key_pos is not None:
            row = self.sheet.row_of.get(values[recipe.key_pos])
            if row is None or recipe.row_checks:
                self._check_row(recipe, values, row, wanted)
            ns = values + row
        fmts = recipe.out_fmts
        outputs = (fmts[0].format(*ns),) if len(fmts) == 1 else tuple([f.format(*ns) for f in fmts])
        fmts = recipe.in_fmts
        if fmts is None:
            inputs = self._inputs(recipe, values, ns)
        elif len(fmts) == 1:
            inputs = (fmts[0].format(*ns),)
        else:
            inputs = tuple([f.format(*ns) for f in fmts])
            if len(set(inputs)) != len(inputs):
                inputs = tuple(dict.fromkeys(inputs))
        return Job(recipe.rule, values, row, inputs, outputs)

    def _check_row(self, recipe: _Recipe, values: tuple[str, ...], row, wanted: str | None) -> None:
        rule, sheet = recipe.rule, self.sheet
        key = values[recipe.key_pos]
        if row is None:
            raise PlanError(f"{self._asker(wanted, rule)}: rule '{rule.name}' needs the sample-sheet row "
                            f"{sheet.key}={key!r}, and {sheet.path} has no such row")
        for wi, ci in recipe.row_checks:
            if row[ci] != values[wi]:
                name = rule.wildcards[wi]
                raise PlanError(f"{self._asker(wanted, rule)}: wildcard {name}={values[wi]!r} disagrees "
                                f"with the sample sheet, whose row {sheet.key}={key!r} has "
                                f"{name}={row[ci]!r}")

    def _inputs(self, recipe: _Recipe, values: tuple[str, ...], ns: tuple[str, ...]) -> tuple[str, ...]:
        rule = recipe.rule
        inputs: list[str] = []
        for kind, fmt, _ in recipe.inputs:
            if kind == "path":
                inputs.append(fmt.format(*ns))
            elif kind == "expand":
                inputs.extend(self._expand(recipe, fmt, values)[0])
            else:
                value = fmt.format(*ns)
                if not value:
                    raise PlanError(f"rule '{rule.name}' ({_describe(rule, values)}): its input "
                                    f"{rule.inputs[len(inputs)].pattern.text} is empty in the sample sheet")
                inputs.append(resolve_path(value, self.wf.base_dir))
        if len(inputs) > 1:
            inputs = list(dict.fromkeys(inputs))
        return tuple(inputs)

    def _create(self, recipe: _Recipe, new_values: list[tuple[str, ...]], asked: Iterable) -> None:
        """Make and register the jobs of ``recipe`` for these values, none of which has one yet.

        The same jobs as ``_make_job`` one by one, with each format run over the whole list.
        A missing or disagreeing sheet row goes one by one, to fail at the first such job as
        asked for by the first path in ``asked`` ((values, path) pairs).
        """
        rows = None
        nss = new_values
        if recipe.key_pos is not None:
            rows = list(map(self.sheet.row_of.get, map(itemgetter(recipe.key_pos), new_values)))
            if recipe.row_checks or None in rows:
                wanted: dict[tuple[str, ...], str] = {}
                for values, path in asked:
                    wanted.setdefault(values, path)
                for values in new_values:
                    recipe.jobs[values] = self._make_job(recipe, values, wanted[values])
                return
            nss = list(map(add, new_values, rows))
        fmts = recipe.out_fmts
        outputs = zip(*[starmap(f.format, nss) for f in fmts]) if fmts else repeat(())
        fmts = recipe.in_fmts
        if fmts is None:
            inputs = [self._inputs(recipe, v, ns) for v, ns in zip(new_values, nss)]
        elif not fmts:
            inputs = repeat(())
        else:
            inputs = zip(*[starmap(f.format, nss) for f in fmts])
            if len(fmts) > 1:
                inputs = [t if len(set(t)) == len(t) else tuple(dict.fromkeys(t)) for t in inputs]
        recipe.jobs.update(zip(new_values, map(Job, repeat(recipe.rule), new_values,
                                                  repeat(None) if rows is None else rows, inputs, outputs)))

    def _asker(self, wanted: str | None, rule: Rule) -> str:
        return self.display(wanted) if wanted else f"rule '{rule.name}'"

    def _expand(self, recipe: _Recipe, pattern: Pattern, values: tuple[str, ...]):
        """(paths, value tuples aligned with the paths or None when paths repeated) for one expand."""
        # The paths depend on the filtering wildcards, and on any other wildcard the pattern names.
        if recipe.free_in_expand.get(pattern.text):
            key = (pattern.text, recipe.rule.wildcards, values)
        else:
            key = (pattern.text, recipe.rule.wildcards, tuple(values[i] for i in recipe.filter_pos))
        filter_values = tuple(values[i] for i in recipe.filter_pos)
        cached = self._expanded.get(key)
        if cached is not None:
            return cached
        sheet = self.sheet
        fmt = pattern.positional(recipe.expand_names)
        if recipe.filter_pos:
            rows = [sheet.rows[i] for i in sheet.rows_where(recipe.rule.expand_filter, filter_values)]
        else:
            rows = sheet.rows
        nss = [row + values for row in rows] if values else rows
        paths = [fmt.format(*ns) for ns in nss]
        if pattern.whole:   # each value is a whole path or URL, read like `input: "{reads}"`
            if not all(paths):
                raise PlanError(f"rule '{recipe.rule.name}': a value of expand({pattern.text}) "
                                "is empty in the sample sheet")
            base = self.wf.base_dir
            paths = [resolve_path(p, base) for p in paths]
        unique = tuple(dict.fromkeys(paths))
        result = self._expanded[key] = (unique, nss if len(unique) == len(paths) else None)
        return result

    def jobs_of_rule(self, rule: Rule) -> list[Job]:
        """Every job of a rule named on the command line: one per sheet row (or row group)."""
        if not rule.wildcards:
            return [self.job(rule, ())]
        sheet = self.sheet
        if sheet is None or any(w not in sheet.column_index for w in rule.wildcards):
            free = [w for w in rule.wildcards if sheet is None or w not in sheet.column_index]
            raise PlanError(f"rule '{rule.name}' has wildcards ({', '.join('{' + w + '}' for w in free)}) "
                            "that are not sample-sheet columns, so its jobs cannot be listed; "
                            "ask for one of its output paths instead")
        idx = [sheet.column_index[w] for w in rule.wildcards]
        combos = dict.fromkeys(tuple(row[i] for i in idx) for row in sheet.rows)
        return [self.job(rule, values) for values in combos]

    # -- producers ----------------------------------------------------------------------------
    def producer(self, path: str) -> Job | None:
        """The job whose outputs include ``path``, or None for a source file."""
        if path in self._producer:
            return self._producer[path]
        found: list[tuple[Rule, dict[str, str]]] = []
        for rule, pattern in self.outputs:
            values = pattern.match(path)
            if values is not None and all(r is not rule for r, _ in found):
                found.append((rule, values))
        if len(found) > 1:
            names = ", ".join(f"'{r.name}'" for r, _ in found)
            raise PlanError(f"{self.display(path)} can be made by several rules ({names}); "
                            "make their output patterns distinct")
        job = None
        if found:
            rule, values = found[0]
            job = self.job(rule, tuple(values[w] for w in rule.wildcards), path)
        self._producer[path] = job
        return job

    def dependencies(self, job: Job) -> list[tuple[str, Job | None]]:
        """(input path, producing job or None) for each input, using rule-pair shortcuts."""
        recipe = self._recipes[job.rule.index]
        links = recipe.links
        row = job.row
        ns_job = job.values + row if row is not None else job.values
        if links is not None and len(job.inputs) == len(links):   # the common per-sample case
            out = []
            for path, (producer, values_of) in zip(job.inputs, links):
                if producer is None:
                    out.append((path, None))
                    continue
                values = values_of(ns_job)
                dep = producer.jobs.get(values)
                if dep is None:
                    dep = producer.jobs[values] = self._make_job(producer, values, path)
                out.append((path, dep))
            return out
        if not recipe.has_expand and len(job.inputs) == len(recipe.inputs):
            via = self._via
            return [(path, via(shortcut, path, ns_job))
                    for path, (_, _, shortcut) in zip(job.inputs, recipe.inputs)]
        parts = []
        for kind, fmt, shortcut in recipe.inputs:
            if kind == "expand":
                paths, nss = self._expand(recipe, fmt, job.values)
                parts.append((paths, nss, shortcut))
            else:
                parts.append((None, None, shortcut))
        total = sum(1 if paths is None else len(paths) for paths, _, _ in parts)
        if total != len(job.inputs):  # the same path came from two inputs: match each plainly
            return [(path, self.producer(path)) for path in job.inputs]
        out: list[tuple[str, Job | None]] = []
        position = 0
        for paths, nss, shortcut in parts:
            if paths is None:
                path = job.inputs[position]
                position += 1
                out.append((path, self._via(shortcut, path, ns_job)))
            elif shortcut is not None and (shortcut.rule is None or nss is not None):
                if shortcut.rule is None:
                    out.extend((path, None) for path in paths)
                else:
                    producer = self._recipes[shortcut.rule.index]
                    out.extend(zip(paths, self._producers(producer, shortcut.values_of, nss, paths)))
                position += len(paths)
            else:
                out.extend((path, self.producer(path)) for path in paths)
                position += len(paths)
        return out

    def _producers(self, producer: _Recipe, values_of, nss: list, paths: Iterable[str]) -> list[Job]:
        """The jobs of ``producer`` for a list of consumer values (``paths``: what asked, in order;
        read only to report a job that cannot be made)."""
        values = list(map(values_of, nss))
        table = producer.jobs
        deps = list(map(table.get, values))
        if None in deps:
            new = list(dict.fromkeys(compress(values, map(not_, deps))))
            self._create(producer, new, zip(values, paths))
            deps = list(map(table.__getitem__, values))
        return deps

    def _via(self, shortcut: _Shortcut | None, path: str, ns: tuple[str, ...]) -> Job | None:
        if shortcut is None:
            return self.producer(path)
        rule = shortcut.rule
        if rule is None:
            return None
        return self.job(rule, shortcut.values_of(ns), path)

    # -- targets ------------------------------------------------------------------------------
    def display(self, path: str) -> str:
        if is_url(path):
            return path
        rel = os.path.relpath(path)
        return path if rel.startswith("../..") else rel

    def resolve_targets(self, names: Iterable[str]) -> list[Job | str]:
        """Rule names become their jobs; paths (relative to the Batchfile) their producing job."""
        out: list[Job | str] = []
        for name in names:
            rule = self.wf.rules.get(name)
            if rule is not None:
                out.extend(self.jobs_of_rule(rule))
                continue
            path = resolve_path(name, self.wf.base_dir)
            job = self.producer(path)
            if job is None:
                if "/" not in name and "." not in name and not is_url(name):
                    import difflib
                    hint = difflib.get_close_matches(name, list(self.wf.rules), n=1)
                    raise PlanError(f"{name!r} is neither a rule nor an output of any rule"
                                    + (f"; did you mean rule '{hint[0]}'?" if hint else
                                       f" (rules: {', '.join(self.wf.rules)})"))
                out.append(path)
            else:
                out.append(job)
        return out

    # -- the graph ----------------------------------------------------------------------------
    def graph(self, roots: list[Job]) -> list[Job]:
        """Every job below ``roots``, dependencies first; cycles are an error naming them."""
        # The graph is many small objects and no garbage: the cyclic collector would only walk
        # it again and again as it grows (a fifth of the time for 300,000 jobs).
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                self._link(roots)
                return self._order(roots)
            except (PlanError, _Cycle):
                # Report the error a depth-first walk meets first, as it always has.
                self.needed_by.clear()
                return self._walk(roots)
        finally:
            if collecting:
                gc.enable()

    def _link(self, roots: list[Job]) -> None:
        """Set ``deps`` of every job below ``roots``, and note the sources they need.

        Wave by wave, a rule's new jobs at a time: for a rule whose inputs all have a rule-pair
        shortcut, each input is one ``map`` over the batch and the producers are made in bulk.
        """
        done: set[Job] = set()
        needed_by = self.needed_by
        wave: list[tuple[int | None, Sequence[Job]]] = [(None, roots)]   # None: of any rules
        while wave:
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
                recipe = self._recipes[index]
                if recipe.links is not None:
                    n = len(recipe.links)
                    odd = [job for job in jobs if len(job.inputs) != n]
                    if odd:   # some inputs rendered alike and were merged: one by one
                        jobs = [job for job in jobs if len(job.inputs) == n]
                    wave += self._link_batch(recipe, jobs)
                else:
                    odd = jobs
                for job in odd:
                    pairs = self.dependencies(job)
                    deps = [dep for _, dep in pairs if dep is not None]
                    if len(deps) < len(pairs):
                        for path, dep in pairs:
                            if dep is None:
                                needed_by.setdefault(path, job)
                    job.deps = tuple(dict.fromkeys(deps)) if len(deps) > 1 else tuple(deps)
                    wave.append((None, job.deps))

    def _link_batch(self, recipe: _Recipe, jobs: list[Job]) -> list[tuple[int, list[Job]]]:
        """``_link`` for jobs of a rule whose inputs all have shortcuts: (rule index, deps) per input."""
        nss = list(map(_values_of, jobs))
        if recipe.key_pos is not None:
            nss = list(map(add, nss, map(_row_of, jobs)))
        out = []
        for i, (producer, values_of) in enumerate(recipe.links):
            paths = map(itemgetter(i), map(_inputs_of, jobs))
            if producer is None:
                self.needed_by.update(zip(paths, jobs))
            else:
                out.append((producer.rule.index, self._producers(producer, values_of, nss, paths)))
        if len(out) == 1:
            for job, dep in zip(jobs, out[0][1]):
                job.deps = (dep,)
        elif out:
            for job, *deps in zip(jobs, *[deps for _, deps in out]):
                job.deps = tuple(dict.fromkeys(deps))
        return out

    @staticmethod
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

    def _walk(self, roots: list[Job]) -> list[Job]:
        """The graph job by job, depth first: slower, and its first error is the one to report."""
        order: list[Job] = []
        state: dict[Job, int] = {}   # 1 = on the stack, 2 = done
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(self.dependencies(root)), [])]
            while stack:
                job, deps_iter, deps = stack[-1]
                for path, dep in deps_iter:
                    if dep is None:
                        self.needed_by.setdefault(path, job)
                        continue
                    deps.append(dep)
                    s = state.get(dep)
                    if s == 1:
                        cycle = [j for j, _, _ in stack]
                        cycle = cycle[cycle.index(dep):] + [dep]
                        raise PlanError("the rules form a cycle: " + " -> ".join(j.describe() for j in cycle)
                                        + f" (via {self.display(path)})")
                    if s is None:
                        state[dep] = 1
                        stack.append((dep, iter(self.dependencies(dep)), []))
                        break
                else:
                    stack.pop()
                    job.deps = tuple(dict.fromkeys(deps)) if len(deps) > 1 else tuple(deps)
                    state[job] = 2
                    order.append(job)
        return order


class _Cycle(Exception):
    """The batched graph has a cycle; the job-by-job walk describes it."""


def plan(workflow: Workflow, storage, targets: Sequence[str] = (), *, force: Sequence[str] = (),
         forcerun: Sequence[str] = (), forceall: bool = False, until: Sequence[str] = (),
         rerun_stale: bool = False, check_sources: bool = True) -> Plan:
    """Work out the job graph for ``targets`` (default: the first rule) and what is pending.

    ``check_sources=False`` tolerates missing source files (for status, logs and cancel,
    which look at a workflow without running it).
    """
    planner = Planner(workflow)
    for name in list(forcerun):
        if name not in workflow.rules:
            raise PlanError(f"--forcerun {name}: no such rule" + _rule_hint(name, workflow))
    requested = planner.resolve_targets(targets or [workflow.default_rule])
    forced_jobs: set[Job] = set()
    for name in force:
        for item in planner.resolve_targets([name]):
            if isinstance(item, str):
                raise PlanError(f"--force {name}: no rule makes {planner.display(item)}, so there is "
                                "nothing to rerun")
            forced_jobs.add(item)
            if item not in requested:
                requested.append(item)
    roots = [t for t in requested if isinstance(t, Job)]
    order = planner.graph(roots)
    source_targets = [t for t in requested if isinstance(t, str)]

    paths = list(chain(chain.from_iterable(map(_outputs_of, order)), planner.needed_by, source_targets))
    # Existence decides what is pending; only --rerun-stale compares mtimes here.
    mtimes: dict[str, float] = {}
    if rerun_stale:
        mtimes = storage.stat_many(paths)
        exists = mtimes.keys()
    else:
        exists = storage.exists_many(paths)

    rules = workflow.rules.values()
    target_lists = {rule for rule in rules if rule.is_target_list}
    forced_rules = {rule for rule in rules if forceall or rule.name in forcerun}
    pending: dict[Job, str] = {}
    is_pending = pending.keys()
    for job in order:
        rule = job.rule
        if rule in target_lists:
            continue
        outputs = job.outputs
        if rule in forced_rules or job in forced_jobs:
            pending[job] = FORCED
        elif exists.isdisjoint(outputs):
            pending[job] = MISSING
        elif len(outputs) > 1 and not all(o in exists for o in outputs):
            pending[job] = INCOMPLETE
        elif not is_pending.isdisjoint(job.deps):
            pending[job] = UPSTREAM
        elif rerun_stale and job.inputs:
            newest_input = max((mtimes.get(p, 0.0) for p in job.inputs), default=0.0)
            if newest_input > min(mtimes[o] for o in job.outputs):
                pending[job] = STALE
    if until:
        limit = planner.resolve_targets(until)
        keep = _ancestors([j for j in limit if isinstance(j, Job)])
        pending = {j: r for j, r in pending.items() if j in keep}
        roots = [j for j in limit if isinstance(j, Job)]

    if check_sources:
        _check_sources(planner, pending, exists, source_targets)
    if not rerun_stale:   # a run tells what a job wrote by these mtimes
        mtimes = storage.stat_many([o for job in pending for o in job.outputs if o in exists])
    return Plan(workflow, order, pending, roots, mtimes)


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


def _check_sources(planner: Planner, pending: dict[Job, str], exists, source_targets: list[str]) -> None:
    """A missing source file is an error only where a job that must run needs it."""
    missing = [t for t in source_targets if t not in exists]
    if missing:
        raise PlanError(f"{planner.display(missing[0])} does not exist and no rule makes it")
    needs = {}
    for path, job in planner.needed_by.items():
        if path not in exists:
            needs[path] = job
    if not needs:
        return
    blocking = []
    for job in pending:
        for path in job.inputs:
            if path in needs:
                blocking.append((path, job))
    if blocking:
        path, job = blocking[0]
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise PlanError(f"missing input {planner.display(path)}{more}: job {job.describe()} needs it, "
                        "no rule makes it, and it does not exist")


def _describe(rule: Rule, values: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(rule.wildcards, values)) or rule.name


def _rule_hint(name: str, workflow: Workflow) -> str:
    import difflib
    hint = difflib.get_close_matches(name, list(workflow.rules), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else f" (rules: {', '.join(workflow.rules)})"
