"""Syntax tree + ``--config`` + sample sheet -> a checked ``Workflow``.

The semantic pass: every name a string uses must mean something (a wildcard, a sheet column, a
variable, ``input``/``output``), every key must be known (with a did-you-mean), every value must
have the right type, and sheet values that fill path segments must stay inside their segment.
Each complaint points at file:line:col of the Batchfile or file:row:column of the sheet.
"""
from __future__ import annotations

import os
import re
from typing import Mapping

from ..errors import BatchfileError
from ..model import (InputSpec, Pattern, Rule, Template, TemplateSyntaxError, Workflow,
                    escape_braces, resolve_path, segment_problem)
from ..settings import KEYS, Choice, Number, Settings, Table, Text, with_values
from .parser import Assign, Document, RuleNode, Setting, Source, Value, parse
from .samples import SampleSheet, load_sheet

TOP_LEVEL_KEYS = ("samples", "default")
RULE_KEYS = ("input", "output", "shell")
SETTING_KEYS = tuple(KEYS)
SHELL_NAMES = ("input", "output", "vcpus", "memory", "gpus")
_VARIABLE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_workflow(path: str, config: Mapping[str, str] | None = None) -> Workflow:
    """Read, parse and check the Batchfile at ``path``."""
    try:
        with open(path, encoding="utf-8-sig") as fh:   # a byte-order mark is not part of the text
            text = fh.read()
    except FileNotFoundError:
        raise BatchfileError("no such Batchfile (give its path: s3rules run path/to/Batchfile)", path) from None
    except IsADirectoryError:
        raise BatchfileError("this is a directory, not a Batchfile", path) from None
    except UnicodeDecodeError:
        raise BatchfileError("the Batchfile is not UTF-8 text", path) from None
    return build_workflow(parse(text, path), config or {})


def _hint(name: str, choices) -> str:
    import difflib   # only for errors: not worth its import on every run
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Loader:
    def __init__(self, document: Document, config: Mapping[str, str]):
        self.doc = document
        self.source: Source = document.source
        self.config = dict(config)
        self.base_dir = os.path.dirname(os.path.abspath(self.source.path))
        self.variables: dict[str, str] = {}

    # -- errors -------------------------------------------------------------------------------
    def error(self, message: str, node) -> BatchfileError:
        return self.source.error(message, node.line, node.column)

    def error_in_string(self, message: str, value: Value, needle: str) -> BatchfileError:
        offset = value.raw.find(needle)
        line, column = value.offset_position(offset) if offset >= 0 else (value.line, value.column)
        return self.source.error(message, line, column)

    # -- values -------------------------------------------------------------------------------
    def substitute(self, value: Value) -> str:
        """Replace ``{variable}`` in a string; other braces are left for templates."""
        text = value.value

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name is not None and name in self.variables:
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

    # -- whole file ---------------------------------------------------------------------------
    def build(self) -> Workflow:
        items = self.doc.items
        self.collect_variables([i for i in items if isinstance(i, Assign)])
        sheet_setting, default_setting = None, None
        for item in items:
            if isinstance(item, Setting):
                if item.name == "samples":
                    sheet_setting = item
                elif item.name == "default":
                    default_setting = item
                else:
                    raise self.error(f"unknown top-level key '{item.name}'"
                                     + _hint(item.name, TOP_LEVEL_KEYS + ("rule",))
                                     + " (top level holds samples:, default:, `name = value` and rules)", item)
        self.sheet = self.load_sheet(sheet_setting) if sheet_setting else None
        defaults = self.settings(default_setting.children, Settings(), "default") if default_setting else Settings()
        if default_setting and default_setting.values:
            raise self.error("'default' takes an indented block of settings", default_setting.values[0])
        rules: dict[str, Rule] = {}
        for item in items:
            if isinstance(item, RuleNode):
                if item.name in rules:
                    raise self.error(f"rule '{item.name}' is defined twice (first on line {rules[item.name].line})",
                                     item)
                rules[item.name] = self.rule(item, len(rules), defaults)
        if not rules:
            raise self.source.error("the Batchfile defines no rule", None, None)
        self.check_sheet_segments(rules)
        return Workflow(self.source.path, self.base_dir, rules, self.sheet, dict(self.variables),
                        next(iter(rules)), defaults)

    def collect_variables(self, assigns: list[Assign]) -> None:
        seen: dict[str, Assign] = {}
        for a in assigns:
            if a.name in seen:
                raise self.error(f"variable '{a.name}' is set twice (first on line {seen[a.name].line})", a)
            seen[a.name] = a
            if a.name in self.config:
                self.variables[a.name] = self.config[a.name]
            elif a.value.kind == "string":
                self.variables[a.name] = self.substitute(a.value)
            elif a.value.kind in ("number", "word"):
                self.variables[a.name] = a.value.raw
            else:
                raise self.error("a variable takes a string or a number", a.value)
        unknown = [k for k in self.config if k not in seen]
        if unknown:
            name = unknown[0]
            known = ", ".join(seen) or "none"
            raise BatchfileError(f"--config {name}=...: the Batchfile has no variable '{name}'"
                                 f"{_hint(name, seen)} (its variables: {known})", self.source.path)

    def load_sheet(self, setting: Setting) -> SampleSheet:
        value = self.one(setting)
        location = resolve_path(self.substitute(value), self.base_dir)
        display = os.path.relpath(location) if "://" not in location else location
        return load_sheet(location, display)

    # -- settings -----------------------------------------------------------------------------
    def settings(self, nodes, base: Settings, where: str) -> Settings:
        changes: dict[str, object] = {}
        for s in nodes:
            name = s.name
            if name in RULE_KEYS and where != "default":
                continue
            if name not in SETTING_KEYS:
                allowed = SETTING_KEYS + (RULE_KEYS if where != "default" else ())
                raise self.error(f"unknown key '{name}' in {where}" + _hint(name, allowed)
                                 + f" (known keys: {', '.join(allowed)})", s)
            changes[name] = self.setting_value(s)
        return with_values(base, changes)

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
        v = self.text(s)
        if isinstance(kind, Choice) and v not in kind.options:
            raise self.error(f"{s.name} must be one of {', '.join(kind.options)}, not {v!r}", s.values[0])
        if isinstance(kind, Text) and kind.needs and kind.needs not in v:
            raise self.error(f"{s.name} must contain {kind.needs}, {kind.example}", s.values[0])
        return v

    def template(self, value: Value, cls=Template, **kwargs) -> Template:
        text = self.substitute(value)
        try:
            return cls(text, **kwargs)
        except TemplateSyntaxError as exc:
            snippet = text[exc.offset: exc.offset + 12]
            raise self.error_in_string(str(exc), value, snippet or "{") from None

    # -- rules --------------------------------------------------------------------------------
    def rule(self, node: RuleNode, index: int, defaults: Settings) -> Rule:
        by_key: dict[str, Setting] = {}
        for s in node.settings:
            if s.name in by_key:
                raise self.error(f"'{s.name}' is given twice in rule '{node.name}'", s)
            by_key[s.name] = s
        settings = self.settings(node.settings, defaults, f"rule '{node.name}'")
        inputs, input_values = self.inputs(by_key.get("input"))
        outputs, output_values = self.outputs(by_key.get("output"))
        shell_value = self.one(by_key["shell"]) if "shell" in by_key else None
        shell = None
        if shell_value is not None:
            shell = self.template(shell_value)
            shell = Template(_dedent_command(shell.text))
        if outputs and shell is None:
            raise self.error(f"rule '{node.name}' has outputs but no shell: command to make them", node)
        if shell is not None and not outputs:
            raise self.error(f"rule '{node.name}' has a shell: command but no output: s3rules runs a job "
                             "to make its outputs, and skips it when they exist", node)
        if not outputs and not inputs:
            raise self.error(f"rule '{node.name}' has neither input nor output", node)
        wildcards = outputs[0].names if outputs else ()
        for pattern, value in zip(outputs, output_values):
            if set(pattern.names) != set(wildcards):
                raise self.error(f"every output of rule '{node.name}' must use the same wildcards: "
                                 f"{{{'}, {'.join(wildcards)}}} vs {{{'}, {'.join(pattern.names)}}}", value)
        rule = Rule(node.name, index, node.line, tuple(inputs), tuple(outputs), shell, settings, wildcards)
        self.bind(rule, node, input_values, output_values, shell_value, by_key)
        return rule

    def values_of(self, setting: Setting | None) -> list[Value]:
        if setting is None:
            return []
        if setting.children:
            raise self.error(f"'{setting.name}' takes a list of values, not a block of settings",
                             setting.children[0])
        return list(setting.values)

    def inputs(self, setting):
        specs, values = [], []
        for v in self.values_of(setting):
            expand = False
            if v.kind == "call":
                if v.value != "expand":
                    raise self.error(f"unknown function '{v.value}'" + _hint(v.value, ["expand"])
                                     + " (inputs may use expand(\"pattern\"))", v)
                if len(v.args) != 1 or v.args[0].kind != "string":
                    raise self.error("expand takes one string: expand(\"{root}/{sample}.txt\")", v)
                if self.sheet is None:
                    raise self.error("expand(...) needs a sample sheet: add `samples: \"samples.csv\"`", v)
                expand, v = True, v.args[0]
            elif v.kind != "string":
                raise self.error(f"an input is a quoted path or expand(...), not {v.raw!r}", v)
            specs.append(InputSpec(self.template(v, Pattern, base_dir=self.base_dir), expand))
            values.append(v)
        return specs, values

    def outputs(self, setting):
        patterns, values = [], []
        for v in self.values_of(setting):
            if v.kind != "string":
                raise self.error(f"an output is a quoted path, not {v.raw!r}", v)
            pattern = self.template(v, Pattern, base_dir=self.base_dir)
            if pattern.whole:
                raise self.error("an output needs literal text around its wildcard, like "
                                 "\"out/{sample}.txt\"", v)
            if pattern.text in {p.text for p in patterns}:
                raise self.error("this output is listed twice", v)
            patterns.append(pattern)
            values.append(v)
        return patterns, values

    def bind(self, rule: Rule, node, input_values, output_values, shell_value, by_key) -> None:
        """Check every name the rule uses, and record how its jobs see the sample sheet."""
        sheet = self.sheet
        columns = sheet.columns if sheet else ()
        wildcards = set(rule.wildcards)
        rule.uses_row = bool(sheet) and sheet.key in wildcards
        # A job's values are its wildcards, then (when a wildcard is the sheet's key) its whole row.
        rule.namespace = rule.wildcards + (tuple(columns) if rule.uses_row else ())
        rule.expand_filter = tuple(w for w in rule.wildcards if w in columns)
        visible = set(rule.namespace)

        def unknown(name: str, value: Value, needle: str, where: str, extra=()):
            if name in columns and not rule.uses_row:
                why = (f"'{name}' is a sample-sheet column, but this rule's outputs have no "
                       f"{{{sheet.key}}} wildcard to pick the row")
            else:
                import difflib
                choices = sorted(visible | set(extra) | set(self.variables))
                close = difflib.get_close_matches(name, choices, n=1)
                why = (f"unknown name {{{name}}} in the {where} of rule '{rule.name}'"
                       + (f" (did you mean {{{close[0]}}}?)" if close else "")
                       + f". Known here: {', '.join(choices) or 'nothing'}; "
                       "write {{ and }} for literal braces")
            raise self.error_in_string(why, value, needle)

        for spec, value in zip(rule.inputs, input_values):
            allowed = (set(columns) | wildcards) if spec.expand else visible
            for p in spec.pattern.placeholders:
                if p.name not in allowed:
                    unknown(p.name, value, "{" + p.name, "input")
        for name, template in rule.settings.environment if rule.shell is not None else ():
            for p in template.placeholders:
                if p.name not in visible:
                    setting = next(c for c in by_key["environment"].children if c.name == name) \
                        if "environment" in by_key else node
                    raise self.error(f"unknown name {{{p.name}}} in environment {name} of rule '{rule.name}'"
                                     + _hint(p.name, visible) + " (a value in default: must make sense for "
                                     "every rule; set it in the rules that have this wildcard)", setting)
        if rule.shell is not None:
            counts = {"input": None if any(s.expand for s in rule.inputs) else len(rule.inputs),
                      "output": len(rule.outputs)}
            for p in rule.shell.placeholders:
                if p.name not in visible and p.name not in SHELL_NAMES:
                    unknown(p.name, shell_value, "{" + p.field, "shell", SHELL_NAMES)
                if p.field != p.name:
                    m = re.fullmatch(r"(input|output)\[(\d+)\]", p.field)
                    if not m:
                        raise self.error_in_string(
                            f"{{{p.field}}}: only input and output take an index, like {{input[0]}}",
                            shell_value, "{" + p.field)
                    n = counts[m.group(1)]
                    if n is not None and int(m.group(2)) >= n:
                        raise self.error_in_string(
                            f"{{{p.field}}}: rule '{rule.name}' has {n} {m.group(1)}"
                            f"{'s' if n != 1 else ''} (indexes start at 0)", shell_value, "{" + p.field)

    def check_sheet_segments(self, rules: dict[str, Rule]) -> None:
        """A sheet value that fills part of a path must be a clean path segment."""
        sheet = self.sheet
        if sheet is None:
            return
        used: set[str] = set()
        for rule in rules.values():
            for spec in rule.inputs:
                if not spec.pattern.whole:
                    used.update(spec.pattern.names)
            for p in rule.outputs:
                used.update(p.names)
        for column in sheet.columns:
            if column not in used:
                continue
            ci = sheet.column_index[column]
            for r, row in enumerate(sheet.rows):
                problem = segment_problem(row[ci])
                if problem:
                    raise sheet.error(f"value {row[ci]!r} {problem}, but column '{column}' fills part of a "
                                      "path, where a value must stay inside one path segment", r, column)


def _dedent_command(text: str) -> str:
    """Triple-quoted commands are indented like the Batchfile; strip that margin."""
    import textwrap
    if "\n" not in text:
        return text
    return textwrap.dedent(text.lstrip("\n")).strip("\n") + "\n" if text.strip() else ""


def build_workflow(document: Document, config: Mapping[str, str]) -> Workflow:
    return _Loader(document, config).build()
