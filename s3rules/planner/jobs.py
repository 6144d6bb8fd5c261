"""Jobs and their producers: each (rule, wildcard values) made once, each input's maker found.

Jobs live in their rule's ``_Recipe.jobs``. An input path's producer comes from the rule-pair
``_Shortcut`` when there is one, else from matching the path against every output pattern.
"""
from __future__ import annotations

import os
from itertools import compress, repeat, starmap
from operator import add, itemgetter, not_
from typing import Iterable

from ..errors import PlanError
from ..model import Job, Pattern, Rule, Workflow, is_url, resolve_path
from .recipes import _Recipe, _Shortcut


class Planner:
    """The jobs of one workflow, made on demand; the graph and ``plan()`` are built on it."""

    def __init__(self, workflow: Workflow):
        self.wf = workflow
        self.sheet = workflow.sheet
        self.outputs = [(r, p) for r in workflow.rules.values() for p in r.outputs]
        self._producer: dict[str, Job | None] = {}
        self.recipes = {r.index: _Recipe(r, self.sheet, self.outputs) for r in workflow.rules.values()}
        for recipe in self.recipes.values():
            recipe.link(self.recipes)
        self._expanded: dict[tuple, tuple[tuple[str, ...], list | None]] = {}
        self.needed_by: dict[str, Job] = {}   # source path -> a job that needs it (set by the graph)

    # -- making jobs --------------------------------------------------------------------------
    def job(self, rule: Rule, values: tuple[str, ...], wanted: str | None = None) -> Job:
        """The job of ``rule`` for these wildcard values (``wanted``: the path that asked, for errors)."""
        recipe = self.recipes[rule.index]
        job = recipe.jobs.get(values)
        if job is None:
            job = recipe.jobs[values] = self._make_job(recipe, values, wanted)
        return job

    def _make_job(self, recipe: _Recipe, values: tuple[str, ...], wanted: str | None) -> Job:
        """One new job. Kept beside the batched ``_make_jobs``: for one job it is three times faster."""
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

    def _make_jobs(self, recipe: _Recipe, new_values: list[tuple[str, ...]], asked: Iterable) -> None:
        """Make and register the jobs of ``recipe`` for these values, none of which has one yet.

        The same jobs as ``_make_job`` one by one, with each format run over the whole list: a
        fifth less time per job, measured, which is why both exist. A missing or disagreeing
        sheet row goes one by one, to fail at the first such job as asked for by the first path
        in ``asked`` ((values, path) pairs).
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

    def _asker(self, wanted: str | None, rule: Rule) -> str:
        return self.display(wanted) if wanted else f"rule '{rule.name}'"

    def _inputs(self, recipe: _Recipe, values: tuple[str, ...], ns: tuple[str, ...]) -> tuple[str, ...]:
        """A job's input paths when some input is an expand or a whole-path value."""
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

    def _expand(self, recipe: _Recipe, pattern: Pattern, values: tuple[str, ...]):
        """(paths, value tuples aligned with the paths or None when paths repeated) for one expand."""
        # The paths depend on the filtering wildcards, and on any other wildcard the pattern names.
        filter_values = tuple(values[i] for i in recipe.filter_pos)
        key = (pattern.text, recipe.rule.wildcards,
               values if recipe.free_in_expand.get(pattern.text) else filter_values)
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
        recipe = self.recipes[job.rule.index]
        links = recipe.links
        row = job.row
        ns_job = job.values + row if row is not None else job.values
        if links is not None and len(job.inputs) == len(links):
            # What the next branch does, inlined. Only the job-by-job walk comes here (``_link``
            # batches such jobs), and it takes a quarter less time this way.
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
        return self._expand_dependencies(recipe, job, ns_job)

    def _expand_dependencies(self, recipe: _Recipe, job: Job, ns_job: tuple[str, ...]):
        """``dependencies`` for a job with an expand input (or inputs that rendered alike)."""
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
                    producer = self.recipes[shortcut.rule.index]
                    out.extend(zip(paths, self.producers(producer, shortcut.values_of, nss, paths)))
                position += len(paths)
            else:
                out.extend((path, self.producer(path)) for path in paths)
                position += len(paths)
        return out

    def producers(self, producer: _Recipe, values_of, nss: list, paths: Iterable[str]) -> list[Job]:
        """The jobs of ``producer`` for a list of consumer values, the missing ones made in bulk
        (``paths``: what asked, in order; read only to report a job that cannot be made)."""
        values = list(map(values_of, nss))
        table = producer.jobs
        deps = list(map(table.get, values))
        if None in deps:
            new = list(dict.fromkeys(compress(values, map(not_, deps))))
            self._make_jobs(producer, new, zip(values, paths))
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
        """Rule names become their jobs; paths their producing job, or stay a source path.

        A local path is read relative to the current directory first (that is how s3rules
        prints paths), then relative to the Batchfile's directory (see ``target_path``).
        """
        out: list[Job | str] = []
        for name in names:
            rule = self.wf.rules.get(name)
            if rule is not None:
                out.extend(self.jobs_of_rule(rule))
                continue
            path, job = self.target_path(name)
            if job is None:
                if "/" not in name and "." not in name and not is_url(name):
                    hint = closest_rule(name, self.wf)
                    raise PlanError(f"{name!r} is neither a rule nor an output of any rule"
                                    + (f"; did you mean rule '{hint}'?" if hint else
                                       f" (rules: {', '.join(self.wf.rules)})"))
                out.append(path)
            else:
                out.append(job)
        return out

    def target_path(self, name: str) -> tuple[str, Job | None]:
        """(path, producing job or None) for a target path typed on the command line.

        The path relative to the current directory wins when a rule makes it; else the path
        relative to the Batchfile's directory when a rule makes that. A path no rule makes is
        a source: the current-directory one if that file exists, else the Batchfile one.
        """
        if is_url(name):
            return name, self.producer(name)
        here = os.path.abspath(name)
        job = self.producer(here)
        if job is not None:
            return here, job
        there = resolve_path(name, self.wf.base_dir)
        if there == here:
            return here, None
        job = self.producer(there)
        if job is not None:
            return there, job
        return (here if os.path.lexists(here) else there), None

def closest_rule(name: str, workflow: Workflow) -> str | None:
    """The rule name most like a mistyped ``name``, for error hints."""
    import difflib   # only on the way to an error
    hint = difflib.get_close_matches(name, list(workflow.rules), n=1)
    return hint[0] if hint else None


def _describe(rule: Rule, values: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(rule.wildcards, values)) or rule.name
