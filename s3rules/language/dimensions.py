"""The dimensions a workflow iterates over: sample sheets (joined) and list variables.

``samples:`` and each ``sheet NAME:`` are read here, keyed (``key: sample, unit``) and joined:
a sheet whose columns include another sheet's whole key takes that sheet's columns through it
(``units.sample -> samples``). Any other column name two sheets share is an error naming both
files. List variables are literal lists, config lists or ``lines(file, field=N)``. Together they
say which values a wildcard may take: a sheet column's, or a list's.
"""
from __future__ import annotations

import os

from ..model import ListVariable, resolve_path
from .config import read_text
from .parser import Assign, Setting, Value
from .samples import SampleSheet, SheetView, load_sheet
from .values import Reader, hint


class Dimensions:
    """The sheets (as joined views, in the order listed) and the list variables."""

    def __init__(self):
        self.views: list[SheetView] = []
        self.lists: dict[str, ListVariable] = {}
        self._sheets: list[tuple[str, SampleSheet, Reader, Setting]] = []
        self.pending_lines: dict[str, tuple[Reader, Assign, str, int]] = {}   # name -> where to read

    # -- sheets -------------------------------------------------------------------------------
    def add_sheet(self, reader: Reader, setting: Setting) -> None:
        name = setting.label or "samples"
        if any(n == name for n, *_ in self._sheets):
            raise reader.error(f"a sheet named '{name}' is already listed", setting)
        if setting.name == "samples" and setting.label is not None:
            raise reader.error("write `samples: \"file\"` or `sheet NAME: \"file\"`", setting)
        if len(setting.values) != 1 or setting.values[0].kind != "string":
            raise reader.error(f"'{setting.name}' takes the sheet's path as one quoted string", setting)
        location = resolve_path(reader.substitute(setting.values[0]), reader.base_dir)
        display = os.path.relpath(location) if "://" not in location else location
        for child in setting.children:
            if child.name != "key":
                raise reader.error(f"unknown key '{child.name}' in sheet '{name}'" + hint(child.name, ["key"])
                                   + " (a sheet takes `key: column, column`)", child)
        key_setting = next((c for c in setting.children if c.name == "key"), None)
        sheet = load_sheet(location, display, keyed=key_setting is None)
        if key_setting is not None:
            sheet.with_key(self.key_of(reader, key_setting, sheet))
        self._sheets.append((name, sheet, reader, setting))

    @staticmethod
    def key_of(reader: Reader, setting: Setting, sheet: SampleSheet) -> tuple[str, ...]:
        names = []
        for v in setting.values:
            if v.kind not in ("word", "string") or not str(v.value).isidentifier():
                raise reader.error("key: takes column names, like `key: sample, unit`", v)
            if v.value not in sheet.column_index:
                raise reader.error(f"{sheet.path} has no column '{v.value}'" + hint(v.value, sheet.columns)
                                   + f" (its columns: {', '.join(sheet.columns)})", v)
            names.append(v.value)
        if not names:
            raise reader.error("key: names at least one column", setting)
        return tuple(names)

    def join(self) -> None:
        """Make the views: each sheet joined (transitively) to the sheets whose key it holds."""
        joins: dict[int, list[int]] = {i: [] for i in range(len(self._sheets))}
        for i, (_, a, ra, sa) in enumerate(self._sheets):
            for j, (_, b, _, _) in enumerate(self._sheets[:i]):
                shared = set(a.columns) & set(b.columns)
                if not shared:
                    continue
                if shared == set(b.key_columns):
                    joins[i].append(j)
                elif shared == set(a.key_columns):
                    joins[j].append(i)
                else:
                    column = sorted(shared - set(b.key_columns) or shared)[0]
                    raise ra.error(f"column '{column}' is in both {b.path} and {a.path}, but it is neither "
                                   f"sheet's whole key, so the rows cannot be joined; rename it in one of "
                                   "them", sa)
        views: dict[int, SheetView] = {}

        def view(i: int, stack: tuple = ()) -> SheetView:
            if i in views:
                return views[i]
            name, sheet, reader, setting = self._sheets[i]
            if i in stack:
                raise reader.error(f"sheet '{name}' joins itself through other sheets", setting)
            parts = []
            for j in joins[i]:
                other = view(j, stack + (i,))
                self.check_join(sheet, other)
                parts.append((other, tuple(sheet.column_index[c] for c in other.key_columns)))
            views[i] = SheetView(name, sheet, parts)
            return views[i]

        self.views = [view(i) for i in range(len(self._sheets))]

    @staticmethod
    def check_join(sheet: SampleSheet, other: SheetView) -> None:
        idx = [sheet.column_index[c] for c in other.key_columns]
        for r, row in enumerate(sheet.rows):
            key = tuple(row[i] for i in idx) if len(idx) > 1 else row[idx[0]]
            if key not in other.row_of:
                raise sheet.error(f"{key!r} is not a key of {other.path}, which this column joins",
                                  r, other.key_columns[-1])

    @property
    def first(self) -> SheetView | None:
        return self.views[0] if self.views else None

    def columns(self) -> dict[str, SheetView]:
        """Every column name -> the first view that has it."""
        out: dict[str, SheetView] = {}
        for view in self.views:
            for c in view.columns:
                out.setdefault(c, view)
        return out

    def view_holding(self, names) -> SheetView | None:
        """The first-listed view that holds every one of ``names``."""
        for view in self.views:
            if all(n in view.column_index for n in names):
                return view
        return None

    # -- list variables -------------------------------------------------------------------------
    def add_list(self, reader: Reader, assign: Assign) -> None:
        """``name = [...]`` or ``name = lines("file", field=N)``: the file is read once the rules
        are known (``read_lines``), since a rule may make it."""
        value = assign.value
        if value.kind == "list":
            items = []
            for v in value.args:
                if v.kind == "string":
                    items.append(reader.substitute(v))
                elif v.kind in ("number", "word"):
                    items.append(v.raw)
                else:
                    raise reader.error("a list holds strings and numbers", v)
            self.set_list(reader, assign, tuple(items))
            return
        path, field = self.lines_call(reader, value)
        self.pending_lines[assign.name] = (reader, assign, path, field)
        self.lists[assign.name] = ListVariable(assign.name, (), path, ready=False)

    def set_list(self, reader: Reader, node, items: tuple[str, ...]) -> None:
        if len(set(items)) != len(items):
            raise reader.error(f"list '{node.name}' holds a value twice", node)
        self.lists[node.name] = ListVariable(node.name, items)

    @staticmethod
    def lines_call(reader: Reader, value: Value) -> tuple[str, int]:
        args = [a for a in value.args if a.kind != "keyword"]
        keywords = {a.value: a for a in value.args if a.kind == "keyword"}
        if len(args) != 1 or args[0].kind != "string" or set(keywords) - {"field"}:
            raise reader.error("lines takes a file and an optional field: lines(\"genome.fai\", field=1)", value)
        field = 1
        if "field" in keywords:
            f = keywords["field"].args[0]
            if f.kind != "number" or not float(f.value).is_integer() or f.value < 1:
                raise reader.error("field= is a column number, counted from 1", f)
            field = int(f.value)
        return resolve_path(reader.substitute(args[0]), reader.base_dir), field

    def read_lines(self, made_by_rule) -> None:
        """Read each ``lines()`` file; one a rule makes and that is not there yet waits (a checkpoint)."""
        for name, (reader, assign, path, field) in self.pending_lines.items():
            made = made_by_rule(path)
            try:
                values = _read_field(path, field)
            except FileNotFoundError:
                if not made:
                    raise reader.error(f"lines(): {os.path.relpath(path) if '://' not in path else path} "
                                       "does not exist and no rule makes it", assign.value) from None
                self.lists[name] = ListVariable(name, (), path, made_by_rule=True, ready=False)
                continue
            except OSError as exc:
                raise reader.error(f"lines(): cannot read {path}: {exc}", assign.value) from None
            self.lists[name] = ListVariable(name, tuple(dict.fromkeys(values)), path, made_by_rule=made)

    def allowed(self, name: str):
        """The values wildcard ``name`` may take, or None when it may take any."""
        if name in self.lists:   # a list still to be read from a file a rule makes: any value, for now
            lst = self.lists[name]
            return frozenset(lst.values) if lst.ready else None
        values = None
        for view in self.views:
            if name in view.column_index:
                values = (values or frozenset()) | view.values_of(name)
        return values


def _read_field(path: str, field: int) -> list[str]:
    """Field ``field`` (from 1) of each tab-separated line; blank and ``#`` lines skipped."""
    text = read_text(path)
    out = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= field and parts[field - 1]:
                out.append(parts[field - 1])
    return out
