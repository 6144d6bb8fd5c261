"""Every name a rule's strings use must be one its jobs have a value for.

Checked once per rule, at load time, so that a typo is an error at file:line:col (with a
did-you-mean) before anything runs; and what the planner needs to know of the names (which
columns may be empty, which list files a rule waits for) is worked out here too.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..model import Rule
from .dimensions import Dimensions
from .parser import RuleNode, Source, Value
from .samples import SHELL_NAMES
from .values import Reader, closest

_FIELD = re.compile(r"(\w+)(?:\.(\w+))?(?:\[(\d+)\])?")
_HINTS = {"wildcards": "write {{{part}}}: wildcards are names of their own",
          "threads": "write {{vcpus}}: the vCPUs the job gets",
          "resources": "write {{memory}}, {{vcpus}} or {{gpus}}",
          "config": "config values are variables: write {{{part}}}"}


class NameChecker(Reader):
    """The name checks of ``RuleReader``."""

    def __init__(self, source: Source, base_dir: str, variables: dict[str, str], dims: Dimensions):
        super().__init__(source, base_dir, variables)
        self.dims = dims

    def check_names(self, rule: Rule, node: RuleNode, input_values, shell_value, by_key, params, per_job,
                    log_values) -> None:
        visible = set(rule.namespace)
        for spec, value in zip(rule.inputs, input_values):
            if not spec.expand:
                self.check_template(rule, spec.pattern, value, "input", visible)
        for pattern, value in zip(rule.logs, log_values):
            self.check_template(rule, pattern, value, "log", visible)
            missing = [w for w in rule.wildcards if w not in pattern.names]
            if missing:
                raise self.error(f"this log of rule '{rule.name}' does not use {{{missing[0]}}}, so several jobs "
                                 "would write it; use every wildcard of the outputs", value)
        for name, template, value in params:
            self.check_template(rule, template, value, f"params.{name}", visible)
        for name, template, value in per_job:
            self.check_template(rule, template, value, name, visible)
        if rule.shell is not None:
            self.check_environment_names(rule, node, by_key, visible)
            self.check_shell_names(rule, shell_value, visible)

    def check_template(self, rule: Rule, template, value: Value, where: str, visible: set[str]) -> None:
        for p in template.placeholders:
            if p.name not in visible:
                raise self.unknown_name(rule, p.name, value, "{" + p.field, where, visible)

    def check_environment_names(self, rule: Rule, node: RuleNode, by_key, visible: set[str]) -> None:
        """Environment values may come from ``default:``, so the error says where to set them instead."""
        for name, template in rule.settings.environment:
            for p in template.placeholders:
                if p.name not in visible:
                    setting = next(c for c in by_key["environment"].children if c.name == name) \
                        if "environment" in by_key else node
                    raise self.error(f"unknown name {{{p.name}}} in environment {name} of rule '{rule.name}'"
                                     + (f" (did you mean {{{closest(p.name, visible)}}}?)"
                                        if closest(p.name, visible) else "")
                                     + " (a value in default: must make sense for every rule; set it in the "
                                       "rules that have this wildcard)", setting)

    def check_shell_names(self, rule: Rule, shell_value: Value, visible: set[str]) -> None:
        groups = {"input": [s.name for s in rule.inputs], "output": list(rule.output_names),
                  "log": list(rule.log_names), "params": [n for n, _ in rule.params]}
        # with expand(...) the number of inputs depends on the sheet: any index may be right
        counts = {"input": None if any(s.expand for s in rule.inputs) else len(rule.inputs),
                  "output": len(rule.outputs), "log": len(rule.logs), "params": len(rule.params)}
        for p in rule.shell.placeholders:
            name, part, index = _FIELD.fullmatch(p.field).groups()
            needle = "{" + p.field
            if name in _HINTS and name not in visible:
                raise self.error_in_string(f"{{{p.field}}}: " + _HINTS[name].format(part=part or "name"),
                                           shell_value, needle)
            if name not in visible and name not in SHELL_NAMES:
                raise self.unknown_name(rule, name, shell_value, needle, "shell", visible, SHELL_NAMES)
            if name in ("log", "params") and name not in visible and not counts[name]:
                raise self.error_in_string(f"{{{p.field}}}: rule '{rule.name}' has no {name}: (add `{name}:` "
                                           "to the rule)", shell_value, needle)
            if part is not None:
                if name not in groups or part not in groups[name]:
                    known = sorted({g for g in groups.get(name, []) if g})
                    raise self.error_in_string(
                        f"{{{p.field}}}: " + (f"rule '{rule.name}' names no {name} '{part}'"
                                              + (f" (its named {name}s: {', '.join(known)})" if known else
                                                 f" (name them: `{name}:` with `{part}: ...` lines below)")
                                              if name in groups else f"{{{name}}} has no parts"),
                        shell_value, needle)
                n = None if name == "input" and counts["input"] is None else groups[name].count(part)
            else:
                n = counts.get(name)
            if index is not None:
                if name not in groups:
                    raise self.error_in_string(f"{{{p.field}}}: only input, output, log and params take an "
                                               "index, like {input[0]}", shell_value, needle)
                if n is not None and int(index) >= n:
                    what = f"{name}.{part}" if part else name
                    raise self.error_in_string(f"{{{p.field}}}: rule '{rule.name}' has {n} {what}"
                                               f"{'s' if n != 1 else ''} (indexes start at 0)", shell_value, needle)

    def unknown_name(self, rule: Rule, name: str, value: Value, needle: str, where: str,
                     visible: set[str], extra=()):
        """The error for ``{name}``: a column the rule cannot reach, a list, or a likely typo."""
        return self.error_in_string(self.why_unknown(rule.name, name, where, visible, extra), value, needle)

    def why_unknown(self, rule_name: str, name: str, where: str, visible, extra=()) -> str:
        owner = self.dims.columns().get(name)
        if name in self.dims.lists:
            return (f"{{{name}}} is a list variable: rule '{rule_name}' can use it as a wildcard of its "
                    "outputs, or in expand(...), not as one value")
        if owner is not None:
            key = ", ".join("{" + c + "}" for c in owner.key_columns)
            return (f"'{name}' is a column of {owner.path}, but the outputs of rule '{rule_name}' have no "
                    f"{key} wildcard{'s' if len(owner.key_columns) > 1 else ''} to pick its row")
        choices = sorted(set(visible) | set(extra) | set(self.variables))
        close = closest(name, choices)
        return (f"unknown name {{{name}}} in the {where} of rule '{rule_name}'"
                + (f" (did you mean {{{close}}}?)" if close else "")
                + f". Known here: {', '.join(choices) or 'nothing'}; write {{{{ and }}}} for literal braces")

    def unknown_in_condition(self, node: RuleNode, name: str, value: Value, namespace) -> Exception:
        if name in self.dims.columns():
            return self.error(self.why_unknown(node.name, name, "when:", namespace), value)
        choices = sorted(set(namespace) | set(self.dims.lists) | set(self.variables))
        close = closest(name, choices)
        return self.error(f"unknown name {name} in the when: of rule '{node.name}'"
                          + (f" (did you mean {close}?)" if close else "")
                          + f"; it may use {', '.join(choices) or 'no names: the rule has no wildcards'}", value)

    def finish(self, rule: Rule, by_key) -> Rule:
        """What the planner needs of the names: columns that may be empty, list files awaited.

        An empty cell is wrong only where it makes a path (a command may well take an empty
        value), so only the columns the rule's paths use are checked per job.
        """
        used = set()
        for spec in rule.inputs:
            if not spec.expand:
                used.update(spec.pattern.names)
        for pattern in rule.outputs + rule.logs:
            used.update(pattern.names)
        empty = set()
        for b in rule.bindings:
            empty |= b.view.empty_columns
        index = {name: i for i, name in enumerate(rule.namespace)}
        may_be_empty = tuple(sorted(index[n] for n in used & empty if n in index))
        pending = self.dims.pending_lines
        waits = [n for spec in rule.inputs for n in spec.lists if n in pending]
        waits += [n for n in self.condition_constants if n in pending]
        waits += [n for n in rule.wildcards if n in pending]
        return replace(rule, may_be_empty=may_be_empty, waits_for=tuple(dict.fromkeys(waits)))
