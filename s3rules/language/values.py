"""Syntax-tree values -> typed values, each complaint located at file:line:col.

Shared by the whole-file pass (``loader``) and a rule's checks (``rules``), so that a key reads
the same in ``default:`` as in a rule, and every error points into the Batchfile the same way.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..errors import BatchfileError
from ..model import Template, TemplateSyntaxError, escape_braces
from ..settings import KEYS, Choice, Flag, Number, Settings, Table, Text, with_values
from .parser import Setting, Source, Value

RULE_KEYS = ("input", "output", "shell", "log", "params", "when")
SETTING_KEYS = tuple(KEYS)
_VARIABLE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
#: settings a rule may read from each job's values (`memory: "{mem_mb}"`), checked per job
PER_JOB_KEYS = ("vcpus", "memory", "gpus", "timeout", "retries", "priority")
#: keys other tools use, and what to write instead
SNAKEMAKE_KEYS = {
    "threads": "write vcpus: (the vCPUs a job gets; {vcpus} in the command)",
    "resources": "write vcpus:, memory: (MiB) and gpus: directly in the rule",
    "conda": "s3rules does not make conda environments: put the tools in the job's image",
    "run": "s3rules runs shell: commands (call a script from the command)",
    "script": "s3rules runs shell: commands: write shell: \"python script.py {input} {output}\"",
    "wildcard_constraints": "a wildcard named after a sheet column or a list variable only takes its values",
    "message": "the progress bars and -n name each job already",
    "benchmark": "the job ledger keeps each job's start and end times",
}


def closest(name: str, choices) -> str | None:
    """The choice most like ``name``, for a did-you-mean; None when nothing is close."""
    import difflib   # only for errors: not worth its import on every run
    close = difflib.get_close_matches(name, list(choices), n=1)
    return close[0] if close else None


def hint(name: str, choices) -> str:
    close = closest(name, choices)
    return f"; did you mean {close!r}?" if close else ""


class Reader:
    """Reads setting nodes against the variables seen so far."""

    def __init__(self, source: Source, base_dir: str, variables: dict[str, str]):
        self.source = source
        self.base_dir = base_dir
        self.variables = variables   # shared with the loader, which fills it first

    # -- errors -------------------------------------------------------------------------------
    def error(self, message: str, node) -> BatchfileError:
        return self.source.error(message, node.line, node.column)

    def error_in_string(self, message: str, value: Value, needle: str) -> BatchfileError:
        """An error pointing at ``needle`` inside a string, or at the string if it is not there."""
        offset = value.raw.find(needle)
        line, column = value.offset_position(offset) if offset >= 0 else (value.line, value.column)
        return self.source.error(message, line, column)

    # -- values -------------------------------------------------------------------------------
    def substitute(self, value: Value) -> str:
        """Replace ``{variable}`` in a string; other braces are left for templates."""
        text = value.value

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name is not None and name in self.variables:   # list variables are not here
                return escape_braces(self.variables[name])
            return m.group(0)

        return _VARIABLE.sub(sub, text)

    def one(self, setting: Setting, kinds=("string",)) -> Value:
        if setting.children:
            raise self.error(f"'{setting.name}' takes a single value, not a block", setting.children[0])
        if len(setting.values) != 1:
            raise self.error(f"'{setting.name}' takes exactly one value, got {len(setting.values)}", setting)
        value = setting.values[0]
        if value.kind not in kinds:
            wanted = " or ".join("a " + k if k != "word" else "a bare word" for k in kinds)
            raise self.error(f"'{setting.name}' takes {wanted}, not {value.raw!r}", value)
        return value

    def text(self, setting: Setting) -> str:
        value = self.one(setting, ("string", "word"))
        return self.substitute(value) if value.kind == "string" else value.value

    def number(self, setting: Setting, integer: bool, low: float, high: float | None = None):
        value = self.one(setting, ("number",))
        n = value.value
        if integer and not float(n).is_integer():
            raise self.error(f"'{setting.name}' must be a whole number", value)
        if n < low or (high is not None and n > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise self.error(f"'{setting.name}' must be {bound}, not {value.raw}", value)
        return int(n) if integer else n

    def mapping(self, setting: Setting) -> list[tuple[str, Value]]:
        if not setting.is_block or setting.values:
            raise self.error(f"'{setting.name}' takes an indented block of `NAME: \"value\"` lines", setting)
        out = []
        for child in setting.children:
            if child.is_block:
                raise self.error(f"'{setting.name}.{child.name}' takes a single value", child)
            out.append((child.name, self.one(child, ("string", "number", "word"))))
        return out

    def values_of(self, setting: Setting | None) -> list[Value]:
        if setting is None:
            return []
        if setting.children:
            raise self.error(f"'{setting.name}' takes a list of values, not a block of settings",
                             setting.children[0])
        return list(setting.values)

    def template(self, value: Value, cls=Template, **kwargs) -> Template:
        """``value`` compiled as a template (or a ``Pattern``), its syntax errors pointed into the string."""
        text = self.substitute(value)
        try:
            return cls(text, **kwargs)
        except TemplateSyntaxError as exc:
            snippet = text[exc.offset: exc.offset + 12]
            raise self.error_in_string(str(exc), value, snippet or "{") from None

    # -- settings -----------------------------------------------------------------------------
    def settings(self, nodes, base: Settings, where: str, per_job: list | None = None) -> Settings:
        """``base`` changed by the settings among ``nodes``; a rule's own keys are skipped.

        With ``per_job`` (a rule's), a resource given as a string with placeholders is read
        from each job's values: it is appended there as (key, Template), not set.
        """
        changes: dict[str, object] = {}
        for s in nodes:
            name = s.name
            if name in RULE_KEYS and where != "default":
                continue
            if name not in SETTING_KEYS:
                allowed = SETTING_KEYS + (RULE_KEYS if where != "default" else ())
                why = SNAKEMAKE_KEYS.get(name)
                raise self.error(f"unknown key '{name}' in {where}"
                                 + (f": {why}" if why else hint(name, allowed) + f" (known keys: {', '.join(allowed)})"),
                                 s)
            if name in PER_JOB_KEYS and len(s.values) == 1 and s.values[0].kind == "string" and not s.children:
                s = self.per_job_or_number(s, per_job)
                if s is None:
                    continue
            changes[name] = self.setting_value(s)
        return with_values(base, changes)

    def per_job_or_number(self, s: Setting, per_job: list | None) -> Setting | None:
        """A resource written as a string: read per job when a job's name is left in it after the
        variables (appended to ``per_job``, None back), else the number it spells."""
        value = s.values[0]
        text = self.substitute(value)
        if any(m.group(1) for m in _VARIABLE.finditer(text)):
            if per_job is None:
                raise self.error(f"'{s.name}' in default: takes a number; a value read from each job's "
                                 "columns (\"{mem_mb}\") goes in the rules that have them", value)
            per_job.append((s.name, self.template(value), value))
            return None
        try:
            number = float(text)
        except ValueError:
            raise self.error(f"'{s.name}' takes a number, not {value.raw!r}", value) from None
        return replace(s, values=(Value("number", int(number) if number.is_integer() else number, value.line,
                                        value.column, text),))

    def setting_value(self, s: Setting):
        """The value of setting ``s``, read as its row in ``settings.KEYS`` says."""
        kind = KEYS[s.name].kind
        if isinstance(kind, Number):
            return self.number(s, kind.integer, kind.low, kind.high)
        if isinstance(kind, Table):
            if kind.templates:
                return tuple((k, self.template(v) if v.kind == "string" else Template(escape_braces(v.raw)))
                             for k, v in self.mapping(s))
            return tuple((k, self.substitute(v) if v.kind == "string" else v.raw) for k, v in self.mapping(s))
        if isinstance(kind, Flag) and len(s.values) == 1 and s.values[0].kind == "number":
            raise self.error(f"{s.name} is true or false, not {s.values[0].raw}", s.values[0])
        v = self.text(s)
        if isinstance(kind, Flag):
            if v not in ("true", "false"):
                raise self.error(f"{s.name} is true or false, not {v!r}", s.values[0])
            return v == "true"
        if isinstance(kind, Choice) and v not in kind.options:
            raise self.error(f"{s.name} must be one of {', '.join(kind.options)}, not {v!r}", s.values[0])
        if isinstance(kind, Text) and kind.needs and kind.needs not in v:
            raise self.error(f"{s.name} must contain {kind.needs}, {kind.example}", s.values[0])
        if isinstance(kind, Text) and kind.pattern and not re.fullmatch(kind.pattern, v):
            raise self.error(f"{s.name} must be {kind.example}, not {v!r}", s.values[0])
        return v
