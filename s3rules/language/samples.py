"""Sample sheets: one row per key, the first column is the key unless ``key:`` names others.

Read once (a local file directly; a URL or a compressed file through fsspec), CSV or TSV by
extension, kept as tuples so a million rows stay small, and indexed by key and by any group of
columns that ``expand`` filters on. A ``SheetView`` is a sheet with the rows it joins (a column
that is another sheet's key). Every problem is a ``SampleSheetError`` at file:row[:column].
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from operator import itemgetter

from ..errors import SampleSheetError, StorageError


# Names a shell command gives every job; a column may not take one, or {name} would mean two things.
SHELL_NAMES = ("input", "output", "log", "params", "vcpus", "memory", "gpus")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")   # read through fsspec, which unpacks them


class SampleSheet:
    """The rows of a checked sheet; ``lines`` keeps each row's line in the file, for messages."""

    def __init__(self, path: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
                 lines: list[int]):
        self.path = path
        self.columns = columns
        self.key = columns[0]
        self.key_columns: tuple[str, ...] = (columns[0],)
        self.rows = rows
        self.lines = lines  # file line of each row, for messages
        self.column_index = {c: i for i, c in enumerate(columns)}
        self.row_of: dict = {row[0]: row for row in rows}   # key -> row (a tuple key when composite)
        self._groups: dict[tuple[int, ...], dict[tuple[str, ...], list[int]]] = {}
        self.empty_columns = _empty_columns(columns, rows)

    def with_key(self, key: tuple[str, ...]) -> None:
        """Key the rows by these columns (``key: sample, unit``): none empty, no key twice."""
        idx = [self.column_index[c] for c in key]
        row_of: dict = {}
        for r, row in enumerate(self.rows):
            value = tuple(row[i] for i in idx) if len(idx) > 1 else row[idx[0]]
            for i in idx:
                if not row[i]:
                    raise self.error("this key column is empty", r, self.columns[i])
            if value in row_of:
                first = self.lines[self.rows.index(row_of[value])]
                raise self.error(f"duplicate key {value!r}: it is already used on line {first}", r, key[-1])
            row_of[value] = row
        self.key, self.key_columns, self.row_of = key[0], tuple(key), row_of

    def values_of(self, column: str) -> frozenset[str]:
        return frozenset(map(itemgetter(self.column_index[column]), self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def rows_where(self, columns: tuple[str, ...], values: tuple[str, ...]) -> list[int]:
        """Indices of the rows whose ``columns`` equal ``values`` (an index built on first use)."""
        idx = tuple(self.column_index[c] for c in columns)
        groups = self._groups.get(idx)
        if groups is None:
            groups = defaultdict(list)
            for i, row in enumerate(self.rows):
                groups[tuple(row[j] for j in idx)].append(i)
            self._groups[idx] = groups = dict(groups)
        return groups.get(values, [])

    def error(self, message: str, row: int | None = None, column: str | None = None) -> SampleSheetError:
        """An error at ``rows[row]``, named by its line in the file."""
        line = self.lines[row] if row is not None else None
        return SampleSheetError(message, self.path, line, column)


class SheetView:
    """A sheet and the rows it joins: ``units`` (sample, unit, fq1...) joined to ``samples``
    through its ``sample`` column gives each unit its sample's columns too.

    ``rows`` are the sheet's rows extended by the joined rows' other columns, so that a job
    bound to this view reads every column from one tuple.
    """

    def __init__(self, name: str, sheet: SampleSheet, joins: list[tuple["SheetView", tuple[int, ...]]] = ()):
        self.name, self.sheet, self.path = name, sheet, sheet.path
        self.key, self.key_columns, self.lines = sheet.key, sheet.key_columns, sheet.lines
        columns = list(sheet.columns)
        picks = []   # per join: (view, key positions in my row, positions of its columns I add)
        for view, key_idx in joins:
            extra = [i for i, c in enumerate(view.columns) if c not in columns]
            columns += [view.columns[i] for i in extra]
            picks.append((view, key_idx, extra))
        self.columns = tuple(columns)
        self.column_index = {c: i for i, c in enumerate(self.columns)}
        self.joins = tuple(view for view, _ in joins)
        if not picks:
            self.rows, self.row_of = sheet.rows, sheet.row_of
        else:
            self.rows = [self._joined(row, picks) for row in sheet.rows]
            idx = [self.column_index[c] for c in self.key_columns]
            self.row_of = {(tuple(row[i] for i in idx) if len(idx) > 1 else row[idx[0]]): row
                           for row in self.rows}
        self.empty_columns = sheet.empty_columns if not picks else _empty_columns(self.columns, self.rows)
        self._groups: dict = {}

    def _joined(self, row: tuple[str, ...], picks) -> tuple[str, ...]:
        for view, key_idx, extra in picks:
            key = tuple(row[i] for i in key_idx) if len(key_idx) > 1 else row[key_idx[0]]
            other = view.row_of[key]
            row = row + tuple(other[i] for i in extra)
        return row

    def __len__(self) -> int:
        return len(self.rows)

    rows_where = SampleSheet.rows_where

    def values_of(self, column: str) -> frozenset[str]:
        return frozenset(map(itemgetter(self.column_index[column]), self.rows))

    def error(self, message: str, row: int | None = None, column: str | None = None) -> SampleSheetError:
        return self.sheet.error(message, row, column)


def cell_of(views, ns, column: str) -> tuple[str, int] | None:
    """(sheet, line) of the row a job reads ``column`` from: in the sheet that has the column and
    whose key the job's names (``ns``) hold. Only for error messages: it scans the rows."""
    for view in views:
        sheet = view.sheet
        if column in sheet.column_index and all(c in ns for c in sheet.key_columns):
            idx = [sheet.column_index[c] for c in sheet.key_columns]
            key = tuple(ns[c] for c in sheet.key_columns)
            for r, row in enumerate(sheet.rows):
                if tuple(row[i] for i in idx) == key:
                    return sheet.path, sheet.lines[r]
    return None


def _empty_columns(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> frozenset[str]:
    """The columns with an empty cell (``in`` over ``itemgetter``: C speed on a million rows)."""
    return frozenset(c for i, c in enumerate(columns) if "" in map(itemgetter(i), rows))


def _delimiter(path: str) -> str:
    """Tab for .tsv, .tab and .txt (compressed or not), else comma."""
    name = path.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith((".tsv", ".tab", ".txt")):
        return "\t"
    return ","


def load_sheet(path: str, display: str | None = None, keyed: bool = True) -> SampleSheet:
    """Read a CSV/TSV sample sheet; every problem is a ``SampleSheetError`` at file:row:column."""
    display = display or path
    try:
        if "://" not in path and not path.endswith(_COMPRESSED):
            with open(path, "rb") as fh:   # the common case, without importing fsspec
                raw = fh.read()
        else:
            import fsspec
            with fsspec.open(path, "rb", compression="infer") as fh:
                raw = fh.read()
    except FileNotFoundError:
        raise SampleSheetError("the sample sheet does not exist", display) from None
    except IsADirectoryError:
        raise SampleSheetError("this is a directory, not a sample sheet", display) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{display}: cannot read the sample sheet: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SampleSheetError("not valid UTF-8 text", display, line) from None
    return parse_sheet(text, display, _delimiter(path), keyed)


def parse_sheet(text: str, path: str, delimiter: str = ",", keyed: bool = True) -> SampleSheet:
    """The sheet in ``text``; any problem is a ``SampleSheetError`` at the first bad row.

    A well-formed sheet takes one cheap pass (the NUL and duplicate-key checks run over the
    whole text and the key index); anything odd is read again row by row to say where.
    """
    if "\0" not in text:
        sheet = _parse_quickly(text, path, delimiter, keyed)
        if sheet is not None:
            return sheet
    return _parse_checking(text, path, delimiter, keyed)


def _parse_quickly(text: str, path: str, delimiter: str, keyed: bool) -> SampleSheet | None:
    """The sheet if every row has the header's width, a key, and no key twice; else None."""
    reader = _reader(text, delimiter)
    try:
        columns, _ = _header(reader, path)
        width = len(columns)
        if width < 2:   # a one-column row of spaces is a blank line there: leave it to the checks
            return None
        rows: list[tuple[str, ...]] = []
        lines: list[int] = []
        for record in reader:
            if len(record) != width or (keyed and not record[0]):
                if _is_blank(record):
                    continue
                return None
            rows.append(tuple(record))
            lines.append(reader.line_num)
    except (csv.Error, SampleSheetError):
        return None
    if not rows:
        return None
    sheet = SampleSheet(path, columns, rows, lines)
    return sheet if not keyed or len(sheet.row_of) == len(rows) else None


def _reader(text: str, delimiter: str):
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)


def _is_blank(record: list[str]) -> bool:
    """An empty line or a line of spaces: skipped, not a row."""
    return not record or (len(record) == 1 and not record[0].strip())


def _header(reader, path: str) -> tuple[tuple[str, ...], int]:
    """The column names and the header's line; raises ``SampleSheetError`` for a bad header."""
    header = next(reader, None)
    while header is not None and not any(h.strip() for h in header):
        header = next(reader, None)
    if header is None:
        raise SampleSheetError("the sample sheet is empty: it needs a header row and one row per sample",
                               path, 1)
    header_line = reader.line_num
    columns = tuple(h.strip() for h in header)
    seen: dict[str, int] = {}
    for i, name in enumerate(columns):
        if not name:
            raise SampleSheetError(f"column {i + 1} has no name in the header", path, header_line)
        if not name.isidentifier():
            raise SampleSheetError(
                f"column name {name!r} is not a valid wildcard name (letters, digits, _)",
                path, header_line, name)
        if name in SHELL_NAMES:
            raise SampleSheetError(f"column name {name!r} is reserved: in a shell command {{{name}}} means "
                                   "the job's own value; rename the column", path, header_line, name)
        if name in seen:
            raise SampleSheetError(f"column {name!r} appears twice in the header", path, header_line, name)
        seen[name] = i
    return columns, header_line


def _parse_checking(text: str, path: str, delimiter: str, keyed: bool) -> SampleSheet:
    """``keyed``: the first column is the key (else ``SampleSheet.with_key`` checks the key later)."""
    """The sheet read row by row, so that the first problem is named with its line."""
    reader = _reader(text, delimiter)
    try:
        columns, header_line = _header(reader, path)
        rows: list[tuple[str, ...]] = []
        lines: list[int] = []
        keys: dict[str, int] = {}
        width = len(columns)
        for record in reader:
            line = reader.line_num
            if _is_blank(record):
                continue
            if len(record) != width:
                raise SampleSheetError(f"this row has {len(record)} fields but the header has {width}",
                                       path, line)
            for i, value in enumerate(record):
                if "\0" in value:   # no process can receive it: refuse it here, for every column
                    raise SampleSheetError("this value contains a NUL byte, which no command can receive",
                                           path, line, columns[i])
            key = record[0]
            if keyed and key == "":
                raise SampleSheetError("the key (first column) is empty", path, line, columns[0])
            if keyed and key in keys:
                raise SampleSheetError(f"duplicate key {key!r}: it is already used on line {keys[key]}",
                                       path, line, columns[0])
            keys[key] = line
            rows.append(tuple(record))
            lines.append(line)
    except csv.Error as exc:
        raise SampleSheetError(f"malformed {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}",
                               path, reader.line_num) from None
    if not rows:
        raise SampleSheetError("the sample sheet has a header but no rows", path, header_line)
    return SampleSheet(path, columns, rows, lines)
