"""Jobs and their producers: each (rule, wildcard values) made once, each input's maker found.

Jobs live in their rule's ``_Recipe.jobs``. An input path's producer comes from the rule-pair
``_Shortcut`` when there is one, else from matching the path against every output pattern.
"""
from __future__ import annotations

from itertools import compress, product, repeat, starmap
from operator import add, itemgetter, not_
from typing import Iterable

from ..errors import PlanError, SampleSheetError
from ..model import Job, Rule, Workflow, resolve_path
from ..language.samples import cell_of
from .recipes import _Expand, _Recipe, _Shortcut
from .targets import Targets


class Planner(Targets):
    """The jobs of one workflow, made on demand; the graph and ``plan()`` are built on it."""

    def __init__(self, workflow: Workflow):
        self.wf = workflow
        self.outputs = [(r, p) for r in workflow.rules.values() for p in r.outputs]
        self._producer: dict[str, Job | None] = {}
        self.recipes = {r.index: _Recipe(r, workflow, self.outputs) for r in workflow.rules.values()}
        for recipe in self.recipes.values():
            recipe.link(self.recipes)
        self._expanded: dict[tuple, tuple[tuple[str, ...], list | None]] = {}
        self.needed_by: dict[str, Job] = {}   # source path -> a job that needs it (set by the graph)
        self.excluded: dict[str, Rule] = {}   # path -> the one rule making it, whose when: is false
        self.deferred: dict[str, list[str]] = {}   # checkpoint file -> rules asked for that wait for it

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
        row = self._row(recipe, values, wanted) if recipe.rule.bindings else None
        ns = values + row if row is not None else values
        fmts = recipe.out_fmts
        outputs = (fmts[0].format(*ns),) if len(fmts) == 1 else tuple([f.format(*ns) for f in fmts])
        fmts = recipe.in_fmts
        spans = None
        if fmts is None:
            inputs, spans = self._inputs(recipe, values, ns)
        elif len(fmts) == 1:
            inputs = (fmts[0].format(*ns),)
        else:
            inputs = tuple([f.format(*ns) for f in fmts])
        return Job(recipe.rule, values, row, inputs, outputs, spans)

    def _row(self, recipe: _Recipe, values: tuple[str, ...], wanted: str | None, check: bool = True) -> tuple[str, ...]:
        """The job's row: each bound sheet's row by the key the wildcards give, one after another."""
        if recipe.key_pos is not None:
            row = recipe.row_of.get(values[recipe.key_pos])
            if row is None:
                self._no_row(recipe, recipe.rule.bindings[0], values, wanted)
        else:
            row = ()
            for binding in recipe.rule.bindings:
                pos = binding.key_pos
                part = binding.view.row_of.get(values[pos[0]] if len(pos) == 1 else tuple(values[i] for i in pos))
                if part is None:
                    self._no_row(recipe, binding, values, wanted)
                row += part
        if check and recipe.slow:
            self._check_row(recipe, values, row, wanted)
        return row

    def _make_jobs(self, recipe: _Recipe, new_values: list[tuple[str, ...]], asked: Iterable) -> None:
        """Make and register the jobs of ``recipe`` for these values, none of which has one yet.

        The same jobs as ``_make_job`` one by one, with each format run over the whole list: a
        fifth less time per job, measured, which is why both exist. A missing or disagreeing
        sheet row goes one by one, to fail at the first such job as asked for by the first path
        in ``asked`` ((values, path) pairs).
        """
        rows = None
        nss = new_values
        if recipe.rule.bindings:
            rows = list(map(recipe.row_of.get, map(itemgetter(recipe.key_pos), new_values))) \
                if recipe.key_pos is not None else None
            if rows is None or recipe.slow or None in rows:
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
        spans = repeat(None)
        if fmts is None:
            both = [self._inputs(recipe, v, ns) for v, ns in zip(new_values, nss)]
            inputs, spans = map(itemgetter(0), both), map(itemgetter(1), both)
        elif not fmts:
            inputs = repeat(())
        else:
            inputs = zip(*[starmap(f.format, nss) for f in fmts])
        recipe.jobs.update(zip(new_values, map(Job, repeat(recipe.rule), new_values,
                                                  repeat(None) if rows is None else rows, inputs, outputs, spans)))

    def _no_row(self, recipe: _Recipe, binding, values: tuple[str, ...], wanted: str | None):
        rule, view = recipe.rule, binding.view
        key = ", ".join(f"{c}={values[i]!r}" for c, i in zip(view.key_columns, binding.key_pos))
        raise PlanError(f"{self._asker(wanted, rule)}: rule '{rule.name}' needs the sample-sheet row "
                        f"{key}, and {view.path} has no such row")

    def _check_row(self, recipe: _Recipe, values: tuple[str, ...], row, wanted: str | None) -> None:
        rule = recipe.rule
        for wi, ci in recipe.row_checks:
            if row[ci] != values[wi]:
                name = rule.wildcards[wi]
                raise PlanError(f"{self._asker(wanted, rule)}: wildcard {name}={values[wi]!r} disagrees "
                                f"with the sample sheet, whose row for {_describe(rule, values)} has "
                                f"{name}={row[ci]!r}")
        ns = values + row
        for j in rule.may_be_empty:
            if ns[j] == "":
                column = rule.namespace[j]
                path, line = self._cell(rule, values, column)
                raise SampleSheetError(f"this value is empty, and job {rule.name}[{_describe(rule, values)}] "
                                       f"uses {{{column}}} (asked for by {self._asker(wanted, rule)})",
                                       path, line, column)

    def _cell(self, rule: Rule, values: tuple[str, ...], column: str) -> tuple[str, int | None]:
        """(sheet, line) of the job's empty cell, in the sheet the column belongs to."""
        ns = dict(zip(rule.namespace, values + self._row(self.recipes[rule.index], values, None, check=False)))
        return cell_of(self.wf.sheets, ns, column) or (self.wf.sheets[0].path, None)

    def _asker(self, wanted: str | None, rule: Rule) -> str:
        return self.display(wanted) if wanted else f"rule '{rule.name}'"

    def _inputs(self, recipe: _Recipe, values: tuple[str, ...], ns: tuple[str, ...]):
        """(input paths, paths per input or None) when some input is an expand or a whole-path value.

        Inputs keep their positions, a path given twice included: ``{input[1]}`` is the second.
        """
        rule = recipe.rule
        inputs: list[str] = []
        spans: list[int] = []
        for n, (kind, fmt, _) in enumerate(recipe.inputs):
            if kind == "path":
                inputs.append(fmt.format(*ns))
                spans.append(1)
            elif kind == "expand":
                paths = self._expand(recipe, fmt, values)[0]
                inputs.extend(paths)
                spans.append(len(paths))
            else:
                value = fmt.format(*ns)
                if not value:
                    raise PlanError(f"rule '{rule.name}' ({_describe(rule, values)}): its input "
                                    f"{rule.inputs[n].pattern.text} is empty in the sample sheet")
                inputs.append(resolve_path(value, self.wf.base_dir))   # sheet data: the main Batchfile's
                spans.append(1)
        return tuple(inputs), (tuple(spans) if recipe.has_expand else None)

    def _expand(self, recipe: _Recipe, e: _Expand, values: tuple[str, ...]):
        """(paths, value tuples aligned with the paths or None when paths repeated) for one expand."""
        # The paths depend on the filtering wildcards, and on any other wildcard the pattern names.
        key = (id(e), tuple(values[i] for i in e.key_pos))
        cached = self._expanded.get(key)
        if cached is not None:
            return cached
        view = e.view
        if view is None:
            rows = [()]
        elif e.row_filter[0]:
            cols, pos = e.row_filter
            rows = [view.rows[i] for i in view.rows_where(cols, tuple(values[i] for i in pos))]
        else:
            rows = view.rows
        if e.empty:
            self._check_expand_rows(recipe, e, rows)
        if e.lists:
            combos = list(product(*[(values[v],) if isinstance(v, int) else v for v in e.list_values]))
            nss = [row + c + values for row in rows for c in combos]
        else:
            nss = [row + values for row in rows] if values else rows
        fmt = e.fmt
        paths = [fmt.format(*ns) for ns in nss]
        pattern = e.pattern
        if pattern.whole:   # each value is a whole path or URL, read like `input: "{reads}"`
            base = self.wf.base_dir   # a sheet's paths are relative to the main Batchfile, wherever used
            paths = [resolve_path(p, base) for p in paths]
        unique = tuple(dict.fromkeys(paths))
        result = self._expanded[key] = (unique, nss if len(unique) == len(paths) else None)
        return result

    def _check_expand_rows(self, recipe: _Recipe, e: _Expand, rows) -> None:
        view = e.view
        for name in e.empty:
            i = view.column_index[name]
            for row in rows:
                if row[i] == "":
                    r = view.rows.index(row)
                    raise SampleSheetError(f"this value is empty, and rule '{recipe.rule.name}' uses {{{name}}} "
                                           f"in expand({self.display(e.pattern.text)})", view.path, view.lines[r],
                                           name)

    def holds(self, rule: Rule, values: tuple[str, ...], wanted: str | None = None) -> bool:
        """Whether ``rule`` makes the job of these values: no ``when:``, or a condition true for
        them (tested before the job is made, so that a value only the other rule uses is never checked)."""
        when = rule.when
        if when is None:
            return True
        recipe = self.recipes[rule.index]
        row = self._row(recipe, values, wanted, check=False) if rule.bindings else None
        return bool(when.test(values + row if row is not None else values))

    # -- producers ----------------------------------------------------------------------------
    def producer(self, path: str) -> Job | None:
        """The job whose outputs include ``path``, or None for a source file.

        Several rules may share an output pattern when a ``when:`` condition tells which one
        makes each job: exactly one must hold.
        """
        if path in self._producer:
            return self._producer[path]
        found: list[tuple[Rule, dict[str, str]]] = []
        for rule, pattern in self.outputs:
            values = pattern.match(path)
            if values is not None and all(r is not rule for r, _ in found):
                found.append((rule, values))
        job = None
        if found:
            job = self._choose(path, found)
        self._producer[path] = job
        return job

    def _choose(self, path: str, found: list[tuple[Rule, dict[str, str]]]) -> Job | None:
        if len(found) > 1 and all(r.when is None for r, _ in found):
            names = ", ".join(f"'{r.name}'" for r, _ in found)
            raise PlanError(f"{self.display(path)} can be made by several rules ({names}); "
                            "make their output patterns distinct, or give them when: conditions")
        chosen = []
        for rule, values in found:
            key = tuple(values[w] for w in rule.wildcards)
            if self.holds(rule, key, path):
                chosen.append(self.job(rule, key, path))
        if len(chosen) == 1:
            return chosen[0]
        if chosen:
            names = " and ".join(f"'{j.rule.name}'" for j in chosen)
            raise PlanError(f"{self.display(path)}: the when: conditions of rules {names} all hold for "
                            f"{_describe(chosen[0].rule, chosen[0].values)}; exactly one rule may make a job")
        if len(found) > 1:
            names = " and ".join(f"'{r.name}' (when: {r.when.text})" if r.when else f"'{r.name}'"
                                 for r, _ in found)
            raise PlanError(f"{self.display(path)}: no when: condition of rules {names} holds for "
                            f"{_describe(found[0][0], tuple(found[0][1][w] for w in found[0][0].wildcards))}; "
                            "exactly one rule must make each job")
        self.excluded[path] = found[0][0]
        return None

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

def _describe(rule: Rule, values: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(rule.wildcards, values)) or rule.name
