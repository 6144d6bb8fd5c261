"""A rule node -> a checked ``Rule``.

A rule's keys, inputs, outputs and command; the wildcards its outputs define; how its jobs see
the sample sheet, worked out before the ``Rule`` is built (a ``Rule`` never changes once made);
and every name it uses, an unknown one pointed at inside its string, with a did-you-mean.
"""
from __future__ import annotations

import re

from ..model import InputSpec, Pattern, Rule, Template
from ..settings import Settings
from .parser import RuleNode, Setting, Source, Value
from .samples import SHELL_NAMES, SampleSheet
from .values import Reader, closest, hint

_INDEXED = re.compile(r"(input|output)\[(\d+)\]")


class RuleReader(Reader):
    """Builds the rules of one Batchfile, against its variables and sample sheet."""

    def __init__(self, source: Source, base_dir: str, variables: dict[str, str], sheet: SampleSheet | None):
        super().__init__(source, base_dir, variables)
        self.sheet = sheet
        self.columns = sheet.columns if sheet else ()

    def rule(self, node: RuleNode, index: int, defaults: Settings) -> Rule:
        """Each step needs the ones before it; the binding comes before the (frozen) ``Rule``."""
        by_key = self.keys(node)
        settings = self.settings(node.settings, defaults, f"rule '{node.name}'")
        inputs, input_values = self.inputs(by_key.get("input"))
        outputs, output_values = self.outputs(by_key.get("output"))
        shell_value = self.one(by_key["shell"]) if "shell" in by_key else None
        shell = self.shell(shell_value)
        self.check_parts(node, inputs, outputs, shell)
        wildcards = self.wildcards(node, outputs, output_values)
        namespace, uses_row, expand_filter = self.binding(wildcards)
        rule = Rule(node.name, index, node.line, tuple(inputs), tuple(outputs), shell, settings, wildcards,
                    namespace=namespace, uses_row=uses_row, expand_filter=expand_filter)
        self.check_names(rule, node, input_values, shell_value, by_key)
        return rule

    # -- the parts ----------------------------------------------------------------------------
    def keys(self, node: RuleNode) -> dict[str, Setting]:
        by_key: dict[str, Setting] = {}
        for s in node.settings:
            if s.name in by_key:
                raise self.error(f"'{s.name}' is given twice in rule '{node.name}'", s)
            by_key[s.name] = s
        return by_key

    def inputs(self, setting: Setting | None) -> tuple[list[InputSpec], list[Value]]:
        """The input patterns, and the strings they came from (to point into them later)."""
        specs, values = [], []
        for v in self.values_of(setting):
            expand = False
            if v.kind == "call":
                if v.value != "expand":
                    raise self.error(f"unknown function '{v.value}'" + hint(v.value, ["expand"])
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

    def outputs(self, setting: Setting | None) -> tuple[list[Pattern], list[Value]]:
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

    def shell(self, value: Value | None) -> Template | None:
        """The command: checked as written (so errors point into the file), then dedented."""
        if value is None:
            return None
        return Template(_dedent_command(self.template(value).text))

    def check_parts(self, node: RuleNode, inputs, outputs, shell) -> None:
        """A rule either lists targets (inputs only) or makes outputs with a command."""
        if outputs and shell is None:
            raise self.error(f"rule '{node.name}' has outputs but no shell: command to make them", node)
        if shell is not None and not outputs:
            raise self.error(f"rule '{node.name}' has a shell: command but no output: s3rules runs a job "
                             "to make its outputs, and skips it when they exist", node)
        if not outputs and not inputs:
            raise self.error(f"rule '{node.name}' has neither input nor output", node)

    def wildcards(self, node: RuleNode, outputs: list[Pattern], output_values: list[Value]) -> tuple[str, ...]:
        """The first output's wildcards; a job makes all its outputs, so each must use the same."""
        wildcards = outputs[0].names if outputs else ()
        for pattern, value in zip(outputs, output_values):
            if set(pattern.names) != set(wildcards):
                raise self.error(f"every output of rule '{node.name}' must use the same wildcards: "
                                 f"{{{'}, {'.join(wildcards)}}} vs {{{'}, {'.join(pattern.names)}}}", value)
        return wildcards

    def binding(self, wildcards: tuple[str, ...]) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
        """How the rule's jobs see the sheet: ``(namespace, uses_row, expand_filter)``.

        A job's values are its wildcards, then (when a wildcard is the sheet's key) its whole row.
        """
        sheet = self.sheet
        uses_row = bool(sheet) and sheet.key in wildcards
        namespace = wildcards + (tuple(self.columns) if uses_row else ())
        expand_filter = tuple(w for w in wildcards if w in self.columns)
        return namespace, uses_row, expand_filter

    # -- names --------------------------------------------------------------------------------
    def check_names(self, rule: Rule, node: RuleNode, input_values, shell_value, by_key) -> None:
        """Every name in the rule's strings must be one its jobs have a value for."""
        visible = set(rule.namespace)
        self.check_input_names(rule, input_values, visible)
        if rule.shell is not None:
            self.check_environment_names(rule, node, by_key, visible)
            self.check_shell_names(rule, shell_value, visible)

    def check_input_names(self, rule: Rule, input_values, visible: set[str]) -> None:
        for spec, value in zip(rule.inputs, input_values):
            # expand(...) fills its pattern from each row, so any column will do there
            allowed = (set(self.columns) | set(rule.wildcards)) if spec.expand else visible
            for p in spec.pattern.placeholders:
                if p.name not in allowed:
                    raise self.unknown_name(rule, p.name, value, "{" + p.name, "input", visible)

    def check_environment_names(self, rule: Rule, node: RuleNode, by_key, visible: set[str]) -> None:
        """Environment values may come from ``default:``, so the error says where to set them instead."""
        for name, template in rule.settings.environment:
            for p in template.placeholders:
                if p.name not in visible:
                    setting = next(c for c in by_key["environment"].children if c.name == name) \
                        if "environment" in by_key else node
                    raise self.error(f"unknown name {{{p.name}}} in environment {name} of rule '{rule.name}'"
                                     + hint(p.name, visible) + " (a value in default: must make sense for "
                                     "every rule; set it in the rules that have this wildcard)", setting)

    def check_shell_names(self, rule: Rule, shell_value: Value, visible: set[str]) -> None:
        # with expand(...) the number of inputs depends on the sheet: any index may be right
        counts = {"input": None if any(s.expand for s in rule.inputs) else len(rule.inputs),
                  "output": len(rule.outputs)}
        for p in rule.shell.placeholders:
            if p.name not in visible and p.name not in SHELL_NAMES:
                raise self.unknown_name(rule, p.name, shell_value, "{" + p.field, "shell", visible, SHELL_NAMES)
            if p.field != p.name:
                self.check_index(rule, p.field, shell_value, counts)

    def check_index(self, rule: Rule, field: str, shell_value: Value, counts) -> None:
        m = _INDEXED.fullmatch(field)
        if not m:
            raise self.error_in_string(f"{{{field}}}: only input and output take an index, like {{input[0]}}",
                                       shell_value, "{" + field)
        n = counts[m.group(1)]
        if n is not None and int(m.group(2)) >= n:
            raise self.error_in_string(
                f"{{{field}}}: rule '{rule.name}' has {n} {m.group(1)}"
                f"{'s' if n != 1 else ''} (indexes start at 0)", shell_value, "{" + field)

    def unknown_name(self, rule: Rule, name: str, value: Value, needle: str, where: str,
                     visible: set[str], extra=()):
        """The error for ``{name}``: a column the rule cannot reach, or a likely typo."""
        if name in self.columns and not rule.uses_row:
            why = (f"'{name}' is a sample-sheet column, but this rule's outputs have no "
                   f"{{{self.sheet.key}}} wildcard to pick the row")
        else:
            choices = sorted(visible | set(extra) | set(self.variables))
            close = closest(name, choices)
            why = (f"unknown name {{{name}}} in the {where} of rule '{rule.name}'"
                   + (f" (did you mean {{{close}}}?)" if close else "")
                   + f". Known here: {', '.join(choices) or 'nothing'}; "
                   "write {{ and }} for literal braces")
        return self.error_in_string(why, value, needle)


def _dedent_command(text: str) -> str:
    """Triple-quoted commands are indented like the Batchfile; strip that margin."""
    import textwrap
    if "\n" not in text:
        return text
    return textwrap.dedent(text.lstrip("\n")).strip("\n") + "\n" if text.strip() else ""
