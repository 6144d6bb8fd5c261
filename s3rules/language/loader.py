"""Batchfiles + config + sheets -> a checked ``Workflow``.

The semantic pass: every name a string uses must mean something (a wildcard, a sheet column, a
variable, ``input``/``output``...), every key must be known (with a did-you-mean), every value
must have the right type, and sheet values that fill path segments must stay inside their
segment. Each complaint points at file:line:col of a Batchfile or file:row:column of a sheet.

This module does the whole workflow, in the order a reader needs: includes spliced in, the
config file, variables (``--config`` wins), sheets and lists (``dimensions``), ``default:``,
the rules in order (``rules``), then what needs every rule (``lines()`` files, wildcard values).
"""
from __future__ import annotations

import os
from typing import Mapping

from ..errors import BatchfileError
from ..model import Rule, Workflow, resolve_path, segment_problem
from ..settings import Settings
from .config import read_config
from .dimensions import Dimensions
from .parser import Assign, Document, RuleNode, Setting, parse
from .rules import RuleReader
from .samples import SHELL_NAMES
from .values import RULE_KEYS, SETTING_KEYS, Reader, hint

__all__ = ["RULE_KEYS", "SETTING_KEYS", "TOP_LEVEL_KEYS", "build_workflow", "load_workflow"]

TOP_LEVEL_KEYS = ("samples", "sheet", "default", "configfile", "include")
_SNAKEMAKE_TOP = {"workdir": "s3rules runs local jobs in the Batchfile's directory",
                  "wildcard_constraints": "a wildcard named after a sheet column or a list variable only "
                                          "takes its values",
                  "localrules": "set `executor: local` in those rules"}


def load_workflow(path: str, config: Mapping[str, str] | None = None, configfile: str | None = None) -> Workflow:
    """Read, parse and check the Batchfile at ``path`` (``configfile`` replaces its ``configfile:``)."""
    return build_workflow(read_document(path), config or {}, configfile)


def read_document(path: str) -> Document:
    try:
        with open(path, encoding="utf-8-sig") as fh:   # a byte-order mark is not part of the text
            text = fh.read()
    except FileNotFoundError:
        raise BatchfileError("no such Batchfile (give its path: s3rules run path/to/Batchfile)", path) from None
    except IsADirectoryError:
        raise BatchfileError("this is a directory, not a Batchfile", path) from None
    except UnicodeDecodeError:
        raise BatchfileError("the Batchfile is not UTF-8 text", path) from None
    return parse(text, path)


def build_workflow(document: Document, config: Mapping[str, str], configfile: str | None = None) -> Workflow:
    return _Loader(document, config, configfile).build()


class _Loader:
    """One pass over the main Batchfile and what it includes."""

    def __init__(self, document: Document, config: Mapping[str, str], configfile: str | None):
        self.doc = document
        self.config = dict(config)
        self.configfile = configfile
        self.variables: dict[str, str] = {}
        self.dims = Dimensions()
        self.files = [document.source.path]
        self.main = self.reader(document)

    def reader(self, document: Document) -> Reader:
        path = document.source.path
        return Reader(document.source, os.path.dirname(os.path.abspath(path)), self.variables)

    def build(self) -> Workflow:
        items = self.flatten(self.main, self.doc, ())
        self.read_config(items)
        self.collect_variables(items)
        default_setting = self.top_level(items)
        self.dims.join()
        self.check_names_are_one_thing(items)
        defaults = self.defaults(default_setting)
        rules = self.rules(items, defaults)
        self.dims.read_lines(lambda path: any(p.match(path) is not None for r in rules.values() for p in r.outputs))
        self.constrain(rules)
        self.check_sheet_segments(rules)
        first_main = self.first_main or next(iter(rules))
        views = tuple(self.dims.views)
        return Workflow(self.doc.source.path, self.main.base_dir, rules, views[0] if views else None,
                        dict(self.variables), first_main, defaults, views, dict(self.dims.lists),
                        tuple(self.files))

    # -- includes and config ------------------------------------------------------------------
    def flatten(self, reader: Reader, document: Document, stack: tuple[str, ...]) -> list:
        """(reader, item) for every item, each ``include:`` replaced by the file's own items."""
        out = []
        here = os.path.abspath(document.source.path)
        for item in document.items:
            if not (isinstance(item, Setting) and item.name == "include"):
                out.append((reader, item))
                continue
            value = reader.one(item)
            path = resolve_path(reader.substitute(value), reader.base_dir)
            if path in stack + (here,):
                raise reader.error(f"{os.path.relpath(path)} includes itself (through "
                                   f"{' -> '.join(os.path.relpath(p) for p in stack + (here,))})", value)
            if not os.path.isfile(path):
                raise reader.error(f"no such file to include: {os.path.relpath(path)} (paths are relative to "
                                   "the file that includes them)", value)
            included = read_document(path)
            self.files.append(path)
            out += self.flatten(self.reader(included), included, stack + (here,))
        return out

    def read_config(self, items) -> None:
        """The config file's values, before any variable: ``--configfile`` replaces ``configfile:``."""
        settings = [(r, i) for r, i in items if isinstance(i, Setting) and i.name == "configfile"]
        if len(settings) > 1:
            reader, item = settings[1]
            raise reader.error("configfile: is given twice (the first on line "
                               f"{settings[0][1].line} of {settings[0][0].source.path})", item)
        self.config_path = None
        if self.configfile is not None:
            path, display = os.path.abspath(self.configfile), self.configfile
        elif settings:
            reader, item = settings[0]
            path = resolve_path(reader.text(item), reader.base_dir)
            display = os.path.relpath(path) if "://" not in path else path
        else:
            self.file_config = {}
            return
        self.files.append(path)
        self.config_path = display
        self.file_config = read_config(path, display)

    def collect_variables(self, items) -> None:
        """``name = value`` lines, in order (a value may use the ones above it). The config file
        wins over the Batchfile, and ``--config`` over both; the config's other keys are variables too."""
        seen: dict[str, tuple[Reader, Assign]] = {}
        file_config = self.file_config
        assigns = [(r, i) for r, i in items if isinstance(i, Assign)]
        assigned = {a.name for _, a in assigns}
        for name in file_config:   # the config's own keys first: a `name = value` may use them
            if name not in assigned:
                self.set_config_value(self.main, None, name)
        for reader, a in assigns:
            if a.name in seen:
                first_reader, first = seen[a.name]
                where = "" if first_reader is reader else f" of {os.path.relpath(first_reader.source.path)}"
                raise reader.error(f"variable '{a.name}' is set twice (first on line {first.line}{where})", a)
            seen[a.name] = (reader, a)
            if a.name in self.config or a.name in file_config:
                self.set_config_value(reader, a, a.name)
            elif a.value.kind == "string":
                self.variables[a.name] = reader.substitute(a.value)
            elif a.value.kind in ("number", "word"):
                self.variables[a.name] = a.value.raw
            elif a.value.kind == "list" or (a.value.kind == "call" and a.value.value == "lines"):
                self.dims.add_list(reader, a)
            else:
                raise reader.error("a variable takes a string, a number, a [list] or lines(\"file\")", a.value)
        unknown = [k for k in self.config if k not in seen and k not in file_config]
        if unknown:
            name = unknown[0]
            known = sorted(set(seen) | set(file_config))
            raise BatchfileError(f"--config {name}=...: the Batchfile has no variable '{name}'"
                                 f"{hint(name, known)} (its variables: {', '.join(known) or 'none'})",
                                 self.doc.source.path)

    def set_config_value(self, reader: Reader, node, name: str) -> None:
        """A variable from the config file or ``--config`` (which splits a list's value at commas)."""
        if name.split(".")[0] in SHELL_NAMES:
            raise BatchfileError(f"config key '{name}': {{{name.split('.')[0]}}} means the job's own "
                                 f"{name.split('.')[0]} in a command; rename the key", self.config_path or self.doc.source.path)
        value = self.file_config.get(name)
        is_list = isinstance(value, tuple) or (node is not None and node.value.kind in ("list", "call"))
        if name in self.config:
            value = self.config[name]
            if is_list:
                value = tuple(v for v in value.split(",") if v)
        if isinstance(value, tuple):
            if len(set(value)) != len(value):
                where = "--config" if name in self.config else (self.config_path or "the config file")
                raise BatchfileError(f"list '{name}' holds a value twice", where) if node is None else \
                    reader.error(f"list '{name}' (from {where}) holds a value twice", node)
            self.dims.set_list(reader, node or _Named(name), value)
        else:
            self.variables[name] = value

    def top_level(self, items) -> Setting | None:
        """Sheets are read here, in order; returns the (last) ``default:``; any other key is an error."""
        default_setting = None
        for reader, item in items:
            if not isinstance(item, Setting) or item.name in ("configfile", "include"):
                continue
            if item.name in ("samples", "sheet"):
                if item.name == "sheet" and item.label is None:
                    raise reader.error("a sheet needs a name: `sheet units: \"units.tsv\"`", item)
                self.dims.add_sheet(reader, item)
            elif item.name == "default":
                default_setting = (reader, item)
            else:
                why = _SNAKEMAKE_TOP.get(item.name)
                raise reader.error(f"unknown top-level key '{item.name}'"
                                   + (f": {why}" if why else hint(item.name, TOP_LEVEL_KEYS + ("rule",)))
                                   + " (top level holds samples:, sheet NAME:, configfile:, include:, "
                                     "default:, `name = value` and rules)", item)
        return default_setting

    def check_names_are_one_thing(self, items) -> None:
        """A variable named like a sheet column would make ``{name}`` mean two things."""
        columns = self.dims.columns()
        for name in self.variables:
            if name in columns:
                where = next(((r, a) for r, a in items if isinstance(a, Assign) and a.name == name), None)
                message = (f"'{name}' is both a variable and a column of {columns[name].path}; rename one of them")
                if where is None:
                    raise BatchfileError(message, self.config_path or self.doc.source.path)
                raise where[0].error(message, where[1])
        for name in self.dims.lists:
            if name in columns:
                where = next(((r, a) for r, a in items if isinstance(a, Assign) and a.name == name), None)
                message = (f"'{name}' is both a list variable and a column of {columns[name].path}; "
                           "rename one of them")
                if where is None:
                    raise BatchfileError(message, self.doc.source.path)
                raise where[0].error(message, where[1])

    def defaults(self, found) -> Settings:
        if found is None:
            return Settings()
        reader, setting = found
        defaults = reader.settings(setting.children, Settings(), "default")
        if setting.values:
            raise reader.error("'default' takes an indented block of settings", setting.values[0])
        return defaults

    def rules(self, items, defaults: Settings) -> dict[str, Rule]:
        """Every rule, in file order."""
        rules: dict[str, Rule] = {}
        readers: dict[int, RuleReader] = {}
        self.first_main = None   # the default target: the main file's first rule
        for reader, item in items:
            if not isinstance(item, RuleNode):
                continue
            rr = readers.get(id(reader))
            if rr is None:
                rr = readers[id(reader)] = RuleReader(reader.source, reader.base_dir, self.variables, self.dims)
            if item.name in rules:
                first = rules[item.name]
                where = "" if first.path == rr.source.path else f" of {os.path.relpath(first.path)}"
                raise rr.error(f"rule '{item.name}' is defined twice (first on line {first.line}{where})", item)
            rules[item.name] = rr.rule(item, len(rules), defaults)
            if reader is self.main and self.first_main is None:
                self.first_main = item.name
        if not rules:
            raise self.doc.source.error("the Batchfile defines no rule", None, None)
        return rules

    def constrain(self, rules: dict[str, Rule]) -> None:
        """Each output's wildcards named after a sheet column or a list take only its values."""
        cache: dict[str, object] = {}
        for rule in rules.values():
            for pattern in rule.outputs:
                allowed = {}
                for name in pattern.names:
                    if name not in cache:
                        cache[name] = self.dims.allowed(name)
                    if cache[name] is not None:
                        allowed[name] = cache[name]
                if allowed:
                    pattern.constrain(allowed)

    def check_sheet_segments(self, rules: dict[str, Rule]) -> None:
        """A sheet value that fills part of a path must be a clean path segment (an empty one is
        checked per job: only a job that uses it is wrong)."""
        used: set[str] = set()
        for rule in rules.values():
            for spec in rule.inputs:
                if not spec.pattern.whole:
                    used.update(spec.pattern.names)
            for p in rule.outputs + rule.logs:
                used.update(p.names)
        for view in self.dims.views:
            sheet = view.sheet
            for column in sheet.columns:
                if column not in used:
                    continue
                ci = sheet.column_index[column]
                for r, row in enumerate(sheet.rows):
                    problem = segment_problem(row[ci]) if row[ci] else None
                    if problem:
                        raise sheet.error(f"value {row[ci]!r} {problem}, but column '{column}' fills part of a "
                                          "path, where a value must stay inside one path segment", r, column)


class _Named:
    """A config key that the Batchfile does not assign, where an error needs a node."""

    def __init__(self, name: str):
        self.name, self.line, self.column = name, None, None

