"""The workflow model: templates, path patterns, rules, jobs.

Everything here is plain data plus the string work that planning does millions of times, so
patterns are compiled once into a regex (to match paths) and into a positional format string
(to render paths from a tuple of values with one C-level ``str.format`` call).
"""
from __future__ import annotations

import os
import re
import shlex
import string
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .settings import Settings

_FORMATTER = string.Formatter()
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
STRICT_SHELLS = ("bash", "zsh", "ksh")   # shells that take `set -o pipefail`


class TemplateSyntaxError(ValueError):
    """Raised while compiling a template; ``offset`` points into the template text."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Placeholder:
    name: str          # "input"
    field: str         # "input[0]" as written
    offset: int        # position of the '{' in the template text


class Template:
    """A string with ``{name}`` / ``{name[i]}`` placeholders; ``{{`` and ``}}`` are literal braces."""

    __slots__ = ("text", "placeholders", "literals")

    def __init__(self, text: str):
        self.text = text
        placeholders, literals, offset = [], [], 0
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateSyntaxError(f"{exc} (write {{{{ and }}}} for literal braces)",
                                      _first_brace_problem(text)) from None
        for literal, field_name, spec, conversion in parsed:
            offset = _advance(text, offset, literal)
            literals.append(literal)
            if field_name is None:
                continue
            name = re.split(r"[\[.]", field_name, maxsplit=1)[0]
            if not _NAME.match(name) or spec or conversion or "." in field_name:
                raise TemplateSyntaxError(
                    f"{{{field_name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a placeholder: placeholders are "
                    "{name} or {name[index]}; write {{ and }} for literal braces", offset)
            placeholders.append(Placeholder(name, field_name, offset))
            offset = text.index("}", offset) + 1
        self.placeholders = tuple(placeholders)
        self.literals = tuple(literals)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.name for p in self.placeholders))

    def render(self, values: Mapping[str, object]) -> str:
        return self.text.format_map(values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _advance(text: str, offset: int, literal: str) -> int:
    """Move past ``literal`` in ``text``, where braces appear doubled."""
    remaining = len(literal)
    while remaining:
        offset += 2 if text[offset] in "{}" else 1
        remaining -= 1
    return offset


def _first_brace_problem(text: str) -> int:
    depth, i = 0, 0
    while i < len(text):
        c = text[i]
        if text.startswith("{{", i) and depth == 0 or text.startswith("}}", i) and depth == 0:
            i += 2
            continue
        if c == "{":
            if depth:
                return i
            depth, start = 1, i
        elif c == "}":
            if not depth:
                return i
            depth = 0
        i += 1
    return start if depth else 0


def escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def is_url(path: str) -> bool:
    return "://" in path


def resolve_path(path: str, base_dir: str) -> str:
    """Local relative paths are relative to the Batchfile's directory; URLs are left alone."""
    if is_url(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


class Pattern(Template):
    """A path with ``{wildcard}`` segments: rendered from values, or matched against a path.

    Wildcard values stay inside one path segment (no ``/``, never ``.``/``..``, never empty), so a
    value from a sample sheet can never point a job at another directory. The one exception is a
    pattern that is a single placeholder (``"{reads_url}"``): that value is a whole path by design.
    """

    __slots__ = ("base_dir", "regex", "prefix", "whole", "_positional", "_names")

    def __init__(self, text: str, base_dir: str = ""):
        super().__init__(text)
        for p in self.placeholders:
            if p.field != p.name:
                raise TemplateSyntaxError(f"{{{p.field}}}: a path takes plain {{wildcards}}, not indexes",
                                          p.offset)
        self.whole = len(self.placeholders) == 1 and self.literals in ((), ("",), ("", ""))
        if base_dir and not self.whole and not is_url(self.text):
            literal_start = self.literals[0] if self.literals else ""
            if not literal_start.startswith("/"):
                self.text = escape_braces(os.path.normpath(base_dir)) + "/" + self.text
            # normpath keeps braces and does not touch segments that are placeholders
            head = os.path.normpath(self.text)
            if self.text.endswith("/"):
                head += "/"
            self.text = head
            Template.__init__(self, self.text)
        self.base_dir = base_dir
        self._names = self.names
        self.prefix = self.literals[0] if self.literals else ""
        self.regex = self._compile()
        self._positional: dict[tuple[str, ...], str] = {}

    def _compile(self) -> re.Pattern:
        parts, seen = [], set()
        for literal, placeholder in zip(self.literals, self.placeholders + (None,)):
            parts.append(re.escape(literal))
            if placeholder is None:
                continue
            if placeholder.name in seen:
                parts.append(f"(?P={placeholder.name})")
            else:
                seen.add(placeholder.name)
                parts.append(f"(?P<{placeholder.name}>[^/]+)")
        if len(self.literals) > len(self.placeholders):
            pass
        return re.compile("".join(parts) + r"\Z", re.DOTALL)

    def match(self, path: str) -> dict[str, str] | None:
        """Wildcard values if ``path`` fits this pattern (and every value is a clean segment)."""
        if not path.startswith(self.prefix):
            return None
        m = self.regex.match(path)
        if m is None:
            return None
        values = m.groupdict()
        for value in values.values():
            if value in (".", ".."):
                return None
        return values

    def positional(self, names: Sequence[str]) -> str:
        """This pattern as a format string over a tuple of values ordered like ``names``."""
        key = tuple(names)
        fmt = self._positional.get(key)
        if fmt is None:
            index = {name: i for i, name in enumerate(key)}
            pieces = []
            for literal, placeholder in zip(self.literals, self.placeholders + (None,)):
                pieces.append(escape_braces(literal))
                if placeholder is not None:
                    pieces.append("{%d}" % index[placeholder.name])
            fmt = self._positional[key] = "".join(pieces)
        return fmt


def segment_problem(value: str) -> str | None:
    """Why ``value`` cannot fill one path segment, or None when it can."""
    if value == "":
        return "is empty"
    if "/" in value:
        return "contains '/'"
    if value in (".", ".."):
        return f"is {value!r}"
    if "\0" in value:
        return "contains a NUL byte"
    return None


class ShellList(list):
    """``{input}`` in a command: every path, each shell-quoted, space-separated."""

    def __format__(self, spec: str) -> str:
        return " ".join(self)


def shell_quote(value: object) -> str:
    return shlex.quote(str(value))


@dataclass(frozen=True)
class InputSpec:
    pattern: Pattern
    expand: bool = False


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of a Batchfile. ``wildcards`` come from the outputs, in order of appearance.

    Frozen, so the planner can trust a rule not to change under it; ``eq=False`` keeps identity
    hashing, because the planner keys its tables by rule.
    """

    name: str
    index: int
    line: int
    inputs: tuple[InputSpec, ...]
    outputs: tuple[Pattern, ...]
    shell: Template | None
    settings: Settings
    wildcards: tuple[str, ...] = ()
    # Sample-sheet binding, worked out by the loader: names visible to this rule's jobs, in order
    # (wildcards first, then the sheet's columns when the wildcards include the sheet's key).
    namespace: tuple[str, ...] = ()
    uses_row: bool = False
    expand_filter: tuple[str, ...] = ()   # wildcards that are sheet columns: expand keeps matching rows
    _formats: dict = field(default_factory=dict, repr=False, compare=False)   # output_formats' cache

    @property
    def is_target_list(self) -> bool:
        """``rule all:``: inputs only, nothing to run."""
        return not self.outputs and self.shell is None

    def output_formats(self) -> tuple[str, ...]:
        fmts = self._formats.get("out")
        if fmts is None:
            fmts = self._formats["out"] = tuple(p.positional(self.namespace) for p in self.outputs)
        return fmts


class Job:
    """One rule applied to one set of wildcard values. Identity is ``(rule, values)``."""

    __slots__ = ("rule", "values", "row", "inputs", "outputs", "deps", "__weakref__")

    def __init__(self, rule: Rule, values: tuple[str, ...], row: tuple[str, ...] | None,
                 inputs: tuple[str, ...], outputs: tuple[str, ...]):
        self.rule = rule
        self.values = values
        self.row = row
        self.inputs = inputs
        self.outputs = outputs
        self.deps: tuple[Job, ...] = ()

    @property
    def wildcards(self) -> dict[str, str]:
        return dict(zip(self.rule.wildcards, self.values))

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.rule.name, self.values

    def describe(self) -> str:
        wc = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule.name}[{wc}]" if wc else self.rule.name

    def namespace(self) -> dict[str, str]:
        names = self.rule.namespace
        values = self.values + (self.row or ())
        return dict(zip(names, values))

    def command(self, relative_to: str | None = None) -> str:
        """The rendered shell command: every substituted value shell-quoted.

        With ``relative_to`` (the directory local commands run in), local paths below it are
        written relative to it, which keeps commands and logs readable.
        """
        rule = self.rule
        if rule.shell is None:
            return ""
        def path(p: str) -> str:
            if relative_to and not is_url(p) and p.startswith(relative_to.rstrip("/") + "/"):
                p = p[len(relative_to.rstrip("/")) + 1:]
            return shell_quote(p)
        mapping: dict[str, object] = {k: shell_quote(v) for k, v in self.namespace().items()}
        mapping["input"] = ShellList(path(p) for p in self.inputs)
        mapping["output"] = ShellList(path(p) for p in self.outputs)
        s = rule.settings
        mapping.update(vcpus=shell_quote(format_number(s.vcpus)), memory=shell_quote(s.memory), gpus=shell_quote(s.gpus))
        return rule.shell.render(mapping)

    def argv(self, relative_to: str | None = None) -> list[str]:
        """How an executor runs the command: ``[shell, "-c", script]``, strict where the shell allows."""
        shell = self.rule.settings.shell_executable
        strict = os.path.basename(shell) in STRICT_SHELLS
        return [shell, "-c", ("set -euo pipefail\n" if strict else "set -eu\n") + self.command(relative_to)]

    def environment(self) -> dict[str, str]:
        ns = self.namespace()
        return {k: t.render(ns) for k, t in self.rule.settings.environment}

    def __repr__(self) -> str:
        return f"Job({self.describe()})"


def format_number(value: float) -> str:
    """2.0 -> "2", 0.5 -> "0.5": how a resource is written in commands and requests."""
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class Workflow:
    path: str
    base_dir: str
    rules: dict[str, Rule]
    sheet: "object | None"
    variables: dict[str, str]
    default_rule: str | None
    settings: Settings = field(default_factory=Settings)
