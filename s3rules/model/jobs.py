"""A job: one rule applied to one set of wildcard values, and its command as the shell sees it."""
from __future__ import annotations

import os
import shlex
from typing import Sequence

from ..settings import Settings, with_values
from .rules import Rule
from .staging import Staging, local_name, staged_url, staging
from .templates import is_url

STRICT_SHELLS = ("bash", "zsh", "ksh")   # shells that take `set -o pipefail`


class ShellList(list):
    """``{input}`` in a command: every path, each shell-quoted, space-separated; a named group
    is an attribute (``{input.reads}``), itself a ``ShellList``."""

    def __format__(self, spec: str) -> str:
        return " ".join(self)


def shell_quote(value: object) -> str:
    return shlex.quote(str(value))


def grouped(items: Sequence[str], names: Sequence[str | None], spans: Sequence[int] | None = None) -> ShellList:
    """``items`` as a ``ShellList`` with each named group as an attribute.

    ``names`` holds one name (or None) per group; ``spans`` how many items each group has
    (default: one each).
    """
    out = ShellList(items)
    if any(names):
        position = 0
        for i, name in enumerate(names):
            n = spans[i] if spans is not None else 1
            if name is not None:
                group = out.__dict__.get(name)   # not getattr: "index" or "count" would find list's
                if group is None:
                    group = ShellList()
                    setattr(out, name, group)
                group.extend(items[position: position + n])
            position += n
    return out


class Job:
    """One rule applied to one set of wildcard values. Identity is ``(rule, values)``.

    ``spans`` is set only for a rule with ``expand(...)`` inputs: how many paths each input
    of the rule gave, so that named groups find their paths.
    """

    __slots__ = ("rule", "values", "row", "inputs", "outputs", "deps", "spans", "_settings", "__weakref__")

    def __init__(self, rule: Rule, values: tuple[str, ...], row: tuple[str, ...] | None,
                 inputs: tuple[str, ...], outputs: tuple[str, ...], spans: tuple[int, ...] | None = None):
        self.rule = rule
        self.values = values
        self.row = row
        self.inputs = inputs
        self.outputs = outputs
        self.deps: tuple[Job, ...] = ()
        self.spans = spans
        self._settings: Settings | None = None

    @property
    def wildcards(self) -> dict[str, str]:
        return dict(zip(self.rule.wildcards, self.values))

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.rule.name, self.values

    def describe(self) -> str:
        wc = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule.name}[{wc}]" if wc else self.rule.name

    def ns(self) -> tuple[str, ...]:
        """The values of ``rule.namespace``, in its order."""
        return self.values + self.row if self.row else self.values

    def namespace(self) -> dict[str, str]:
        return dict(zip(self.rule.namespace, self.ns()))

    @property
    def settings(self) -> Settings:
        """The rule's settings, with the resources a rule reads from each job's values."""
        rule = self.rule
        if not rule.resources:
            return rule.settings
        if self._settings is None:   # read several times per job by the executors
            ns = self.namespace()
            self._settings = with_values(rule.settings, {k: resource_value(k, t.render(ns)) for k, t in rule.resources})
        return self._settings

    @property
    def logs(self) -> tuple[str, ...]:
        """Log paths: written by the command, kept whatever happens, never needed for "done"."""
        if not self.rule.logs:
            return ()
        ns = self.ns()
        return tuple(p.positional(self.rule.namespace).format(*ns) for p in self.rule.logs)

    def temp_outputs(self) -> tuple[str, ...]:
        return tuple(self.outputs[i] for i in sorted(self.rule.temp))

    def directory_outputs(self) -> tuple[str, ...]:
        return tuple(self.outputs[i] for i in sorted(self.rule.directories))

    def params(self) -> dict[str, str]:
        ns = self.namespace()
        return {name: t.render(ns) for name, t in self.rule.params}

    def staging(self) -> Staging | None:
        """With ``stage: true``, what the job downloads before its command and uploads after."""
        if not self.settings.stage:
            return None
        directories = {d for dep in self.deps for d in dep.directory_outputs()} | set(self.directory_outputs())
        return staging(self.inputs, self.outputs, self.logs, directories)

    def command(self, relative_to: str | None = None, staged: bool | None = None) -> str:
        """The rendered shell command: every substituted value shell-quoted.

        With ``relative_to`` (the directory local commands run in), local paths below it are
        written relative to it, which keeps commands and logs readable. A staged command
        (``staged``, by default the ``stage`` setting) names each URL by its local copy in the
        job's scratch directory, and local paths in full.
        """
        rule = self.rule
        if rule.shell is None:
            return ""
        stage = self.settings.stage if staged is None else staged
        prefix = relative_to.rstrip("/") + "/" if relative_to and not stage else None

        def path(p: str) -> str:
            if stage and staged_url(p):
                p = local_name(p)
            elif prefix and not is_url(p) and p.startswith(prefix):
                p = p[len(prefix):]
            return shell_quote(p)

        mapping: dict[str, object] = {k: shell_quote(v) for k, v in self.namespace().items()}
        mapping["input"] = grouped([path(p) for p in self.inputs], [s.name for s in rule.inputs], self.spans)
        mapping["output"] = grouped([path(p) for p in self.outputs], rule.output_names)
        mapping["log"] = grouped([path(p) for p in self.logs], rule.log_names)
        params = self.params()
        mapping["params"] = grouped([shell_quote(v) for v in params.values()], list(params))
        s = self.settings
        mapping.update(vcpus=shell_quote(format_number(s.vcpus)), memory=shell_quote(s.memory),
                       gpus=shell_quote(s.gpus))
        return rule.shell.render(mapping)

    def argv(self, relative_to: str | None = None) -> list[str]:
        """How an executor runs the command: ``[shell, "-c", script]``, strict where the shell allows."""
        shell = self.settings.shell_executable
        strict = os.path.basename(shell) in STRICT_SHELLS
        return [shell, "-c", ("set -euo pipefail\n" if strict else "set -eu\n") + self.command(relative_to)]

    def environment(self) -> dict[str, str]:
        ns = self.namespace()
        return {k: t.render(ns) for k, t in self.settings.environment}

    def __repr__(self) -> str:
        return f"Job({self.describe()})"


def directories_of(jobs) -> set[str]:
    """The directory() outputs of ``jobs``: what storage must look into rather than at."""
    return {d for job in jobs if job.rule.directories for d in job.directory_outputs()}


def format_number(value: float) -> str:
    """2.0 -> "2", 0.5 -> "0.5": how a resource is written in commands and requests."""
    return str(int(value)) if float(value).is_integer() else str(value)


def resource_value(key: str, text: str) -> float | int:
    """A resource read from a job's values; the planner checks every pending job's first."""
    number = float(text)
    return number if key == "vcpus" else int(number)
