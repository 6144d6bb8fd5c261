"""Syntax tree + ``--config`` + sample sheet -> a checked ``Workflow``.

The semantic pass: every name a string uses must mean something (a wildcard, a sheet column, a
variable, ``input``/``output``), every key must be known (with a did-you-mean), every value must
have the right type, and sheet values that fill path segments must stay inside their segment.
Each complaint points at file:line:col of the Batchfile or file:row:column of the sheet.

This module does the whole file (variables and ``--config``, the sheet, ``default:``, the rules
in order); ``rules`` checks each rule, and ``values`` reads typed values for both.
"""
from __future__ import annotations

import os
from typing import Mapping

from ..errors import BatchfileError
from ..model import Rule, Workflow, resolve_path, segment_problem
from ..settings import Settings
from .parser import Assign, Document, RuleNode, Setting, parse
from .rules import RuleReader
from .samples import SampleSheet, load_sheet
from .values import RULE_KEYS, SETTING_KEYS, Reader, hint

__all__ = ["RULE_KEYS", "SETTING_KEYS", "TOP_LEVEL_KEYS", "build_workflow", "load_workflow"]

TOP_LEVEL_KEYS = ("samples", "default")


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


def build_workflow(document: Document, config: Mapping[str, str]) -> Workflow:
    return _Loader(document, config).build()


class _Loader(Reader):
    """One pass over one file, in the order a reader needs: variables before anything uses them."""

    def __init__(self, document: Document, config: Mapping[str, str]):
        source = document.source
        super().__init__(source, os.path.dirname(os.path.abspath(source.path)), {})
        self.doc = document
        self.config = dict(config)
        self.sheet: SampleSheet | None = None

    def build(self) -> Workflow:
        items = self.doc.items
        self.collect_variables([i for i in items if isinstance(i, Assign)])
        sheet_setting, default_setting = self.top_level(items)
        self.sheet = self.load_sheet(sheet_setting) if sheet_setting else None
        defaults = self.defaults(default_setting)
        rules = self.rules(items, defaults)
        self.check_sheet_segments(rules)
        return Workflow(self.source.path, self.base_dir, rules, self.sheet, dict(self.variables),
                        next(iter(rules)), defaults)

    def top_level(self, items) -> tuple[Setting | None, Setting | None]:
        """The ``samples:`` and ``default:`` settings (the last of each); any other key is an error."""
        sheet_setting, default_setting = None, None
        for item in items:
            if isinstance(item, Setting):
                if item.name == "samples":
                    sheet_setting = item
                elif item.name == "default":
                    default_setting = item
                else:
                    raise self.error(f"unknown top-level key '{item.name}'"
                                     + hint(item.name, TOP_LEVEL_KEYS + ("rule",))
                                     + " (top level holds samples:, default:, `name = value` and rules)", item)
        return sheet_setting, default_setting

    def collect_variables(self, assigns: list[Assign]) -> None:
        """``name = value`` lines, in order (a value may use the ones above it); ``--config`` wins."""
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
                                 f"{hint(name, seen)} (its variables: {known})", self.source.path)

    def load_sheet(self, setting: Setting) -> SampleSheet:
        value = self.one(setting)
        location = resolve_path(self.substitute(value), self.base_dir)
        display = os.path.relpath(location) if "://" not in location else location
        return load_sheet(location, display)

    def defaults(self, setting: Setting | None) -> Settings:
        if setting is None:
            return Settings()
        defaults = self.settings(setting.children, Settings(), "default")
        if setting.values:
            raise self.error("'default' takes an indented block of settings", setting.values[0])
        return defaults

    def rules(self, items, defaults: Settings) -> dict[str, Rule]:
        """Every rule, in file order: the first is the default target."""
        reader = RuleReader(self.source, self.base_dir, self.variables, self.sheet)
        rules: dict[str, Rule] = {}
        for item in items:
            if isinstance(item, RuleNode):
                if item.name in rules:
                    raise self.error(f"rule '{item.name}' is defined twice (first on line {rules[item.name].line})",
                                     item)
                rules[item.name] = reader.rule(item, len(rules), defaults)
        if not rules:
            raise self.source.error("the Batchfile defines no rule", None, None)
        return rules

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
