"""What makes a job the same job as last time: one short hash per rerun trigger.

A record keeps these hashes (in its name, on S3), so telling a changed job from an unchanged one
needs no record body. What a rule's jobs share (its command and params templates, shell,
resources) is hashed once per rule; per job only the values that vary: the sheet columns its
command and its params use, its input paths, and the resources it reads from its sheet row.
Planning checks every done job, so this is the ledger's hot path. Local paths are hashed
relative to the workspace, so a moved or cloned workspace keeps its records.
"""
from __future__ import annotations

import zlib
from typing import Iterable

from ..model import Job, Rule, format_number, is_url, resource_value

#: the triggers a record can tell; "mtime" compares files instead (Make's rule)
TRIGGERS = ("command", "params", "input", "resources")
ALL_TRIGGERS = TRIGGERS + ("mtime",)
DEFAULT_TRIGGERS = TRIGGERS
_SEP = "\x1f"


def short_hash(text: str) -> str:
    return format(zlib.crc32(text.encode("utf-8", "surrogateescape")), "08x")


class _RulePart:
    """What one rule's jobs share, hashed once.

    ``picks``: the namespace positions of the sheet columns its command or environment uses
    (wildcards are fixed by the job's outputs, which key its record); ``param_picks`` those its
    params use. When there are none, every job of the rule has the same command (params) hash;
    when, besides, every input is a pattern over wildcards alone and no resource is read from
    the job's row, every hash is the same, and ``same`` is the whole tuple.
    """

    __slots__ = ("command", "params", "params_text", "inputs", "resources", "picks", "param_picks", "same")

    def __init__(self, rule: Rule, base_dir: str):
        s = rule.settings
        shell = rule.shell.text if rule.shell is not None else ""
        env = _SEP.join(f"{name}={t.text}" for name, t in s.environment)
        self.command = _SEP.join((shell, s.shell_executable, env, s.batch.runs_in))
        self.params_text = _SEP.join(f"{name}={t.text}" for name, t in rule.params)
        self.resources = _resources_hash(s)
        used = set(rule.shell.names if rule.shell is not None else ())
        for _, template in s.environment:
            used.update(template.names)
        wildcards = set(rule.wildcards)
        self.picks = _picks(rule, used - wildcards)
        self.param_picks = _picks(rule, {n for _, t in rule.params for n in t.names} - wildcards)
        self.params = None if self.param_picks else short_hash(self.params_text)
        fixed = all(not spec.expand and not spec.pattern.whole and set(spec.pattern.names) <= wildcards
                    for spec in rule.inputs)
        self.inputs = short_hash(_SEP.join(spec.pattern.text for spec in rule.inputs).replace(base_dir, "")) \
            if fixed else None
        self.same = (short_hash(self.command), self.params, self.inputs, self.resources) \
            if fixed and not self.picks and self.params is not None and not rule.resources else None


def _picks(rule: Rule, names: set[str]) -> tuple[int, ...]:
    """The namespace positions of ``names``, in namespace order."""
    return tuple(i for i, name in enumerate(rule.namespace) if name in names)


def _resources_hash(s) -> str:
    return short_hash(_SEP.join((format_number(s.vcpus), str(s.memory), str(s.gpus))))


class Identity:
    """Hashes and the full description of jobs, for records and for comparing with them."""

    def __init__(self, base_dir: str):
        self.base_dir = base_dir.rstrip("/") + "/"
        self._rules: dict[Rule, _RulePart] = {}

    def _part(self, rule: Rule) -> _RulePart:
        part = self._rules.get(rule)
        if part is None:
            part = self._rules[rule] = _RulePart(rule, self.base_dir)
        return part

    def same(self, rule: Rule) -> tuple[str, str, str, str] | None:
        """The hashes every job of ``rule`` has, when they do not vary from job to job."""
        return self._part(rule).same

    def hashes(self, job: Job) -> tuple[str, str, str, str]:
        """(command, params, input, resources) of one job, in ``TRIGGERS`` order."""
        part = self._part(job.rule)
        if part.same is not None:
            return part.same
        command, params, resources = part.command, part.params, part.resources
        values = job.ns() if part.picks or params is None else ()
        if part.picks:
            command += _SEP + _SEP.join(values[i] for i in part.picks)
        if params is None:
            params = short_hash(part.params_text + _SEP + _SEP.join(values[i] for i in part.param_picks))
        if job.rule.resources:
            resources = _job_resources(job)
        inputs = part.inputs or short_hash(_SEP.join(job.inputs).replace(self.base_dir, ""))
        return short_hash(command), params, inputs, resources

    def relative(self, path: str) -> str:
        return path[len(self.base_dir):] if not is_url(path) and path.startswith(self.base_dir) else path

    def describe(self, job: Job) -> dict:
        """The full record of what ``job`` is: shown by ``--explain`` when it changed."""
        s = job.settings
        return {
            "rule": job.rule.name,
            "wildcards": job.wildcards,
            "command": job.command(self.base_dir.rstrip("/"), staged=False),
            "shell": s.shell_executable,
            "job_definition": s.batch.runs_in,
            "params": job.params(),
            "inputs": [self.relative(p) for p in job.inputs],
            "resources": {"vcpus": format_number(s.vcpus), "memory": s.memory, "gpus": s.gpus},
        }


def _job_resources(job: Job) -> str:
    """The resources hash of a job that reads some from its row: what ``job.settings`` says,
    without making its ``Settings`` (planning hashes every done job)."""
    s, ns = job.rule.settings, job.namespace()
    try:
        read = {key: resource_value(key, t.render(ns)) for key, t in job.rule.resources}
    except ValueError:   # not a number now: changed, and the plan says where (planner.resources)
        return short_hash(_SEP.join(t.render(ns) for _, t in job.rule.resources))
    return short_hash(_SEP.join((format_number(read.get("vcpus", s.vcpus)), str(read.get("memory", s.memory)),
                                 str(read.get("gpus", s.gpus)))))


def changed(old: tuple[str, ...], new: tuple[str, ...], triggers: Iterable[str]) -> str | None:
    """The first trigger whose hash differs, or None."""
    for name in triggers:
        if name in TRIGGERS:
            i = TRIGGERS.index(name)
            if old[i] != new[i]:
                return name
    return None


def explain(old: dict, new: dict) -> list[str]:
    """A short diff of two job descriptions: what ``--explain`` prints under a changed job."""
    import difflib

    lines = []
    if old.get("command") != new["command"]:
        diff = difflib.unified_diff(str(old.get("command", "")).splitlines(), new["command"].splitlines(),
                                    "recorded command", "command now", lineterm="", n=1)
        lines += [line for line in diff if not line.startswith("@@")]
    for key in ("shell", "job_definition", "params", "resources"):
        if old.get(key) != new[key]:
            lines.append(f"{key}: {old.get(key)!r} -> {new[key]!r}")
    before, after = old.get("inputs", []), new["inputs"]
    if before != after:
        gone = [p for p in before if p not in set(after)]
        added = [p for p in after if p not in set(before)]
        lines += [f"- input {p}" for p in gone[:5]] + [f"+ input {p}" for p in added[:5]]
        if not gone and not added:
            lines.append("inputs: same paths, another order")
    return lines
