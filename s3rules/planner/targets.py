"""Targets typed on the command line: rule names and paths -> jobs, and why a path has no maker.

A mixin of ``Planner`` (``jobs``): the part of it that reads what a user asked for, and the
error details that tell them what was meant.
"""
from __future__ import annotations

import os
from itertools import product
from typing import Iterable

from ..errors import PlanError, SampleSheetError
from ..model import Job, Pattern, Rule, Workflow, is_url, resolve_path


class Targets:
    """``Planner``'s methods for targets; the planner supplies ``wf``, ``job``, ``producer``,
    ``holds``, ``outputs``, ``excluded`` and ``deferred``."""

    def jobs_of_rule(self, rule: Rule) -> list[Job]:
        """Every job of a rule named on the command line: one per combination its wildcards can
        take (rows of the first sheet holding its column wildcards, times its list wildcards)
        whose ``when:`` holds."""
        if not rule.wildcards:
            combos = [()]
        else:
            lists = self.wf.lists
            columns = [w for w in rule.wildcards if w not in lists]
            view = next((v for v in self.wf.sheets if all(c in v.column_index for c in columns)), None) \
                if columns else None
            if columns and view is None:
                free = [w for w in columns if not any(w in v.column_index for v in self.wf.sheets)] or columns
                raise PlanError(f"rule '{rule.name}' has wildcards ({', '.join('{' + w + '}' for w in free)}) "
                                "that are neither sample-sheet columns nor list variables, so its jobs cannot "
                                "be listed; ask for one of its output paths instead")
            idx = [view.column_index[c] for c in columns] if view is not None else []
            rows = dict.fromkeys(tuple(row[i] for i in idx) for row in view.rows) if view is not None else [()]
            if any("" in values for values in rows):
                _empty_wildcard(rule, view, columns, idx)
            unread = [lists[w].file for w in rule.wildcards if w in lists and not lists[w].ready]
            if unread:   # its jobs are known once the checkpoint file is made
                self.deferred.setdefault(unread[0], []).append(rule.name)
                return []
            dims = [lists[w].values for w in rule.wildcards if w in lists]
            combos = []
            for row in rows:
                for picks in product(*dims):
                    given = dict(zip(columns, row))
                    given.update(zip([w for w in rule.wildcards if w in lists], picks))
                    combos.append(tuple(given[w] for w in rule.wildcards))
        return [self.job(rule, values) for values in combos if self.holds(rule, values)]

    def why_not_made(self, path: str) -> str:
        """Why no rule makes ``path`` although one nearly does, for errors: "" when none does."""
        rule = self.excluded.get(path)
        if rule is not None:
            return f" (rule '{rule.name}' makes it only when {rule.when.text})"
        for rule, pattern in self.outputs:
            if not pattern.allowed:
                continue
            values = Pattern(pattern.text).match(path)
            if values is None:
                continue
            for name, allowed in pattern.allowed.items():
                if values[name] not in allowed:
                    kind = "list" if name in self.wf.lists else "column"
                    return (f" (rule '{rule.name}' makes paths like it, but {values[name]!r} is not a value "
                            f"of the {kind} {name})")
        return ""

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


def _empty_wildcard(rule: Rule, view, columns: list[str], idx: list[int]):
    """A job's wildcard would take an empty cell: an empty path segment, refused at the cell."""
    for r, row in enumerate(view.rows):
        for column, i in zip(columns, idx):
            if row[i] == "":
                raise SampleSheetError(f"this value is empty, and rule '{rule.name}' takes {{{column}}} from it "
                                       "for a path", view.path, view.lines[r], column)
