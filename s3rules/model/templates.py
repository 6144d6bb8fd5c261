"""Templates and path patterns: the string work planning does millions of times.

Patterns are compiled once into a regex (to match paths) and into a positional format string
(to render paths from a tuple of values with one C-level ``str.format`` call).
"""
from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

_FORMATTER = string.Formatter()
# {name}, {name[2]}, {name.part} or {name.part[2]}: what a command may write
_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)?(\[\d+\])?\Z")
_ALTERNATIVES = 64   # a wildcard limited to at most this many values matches them in its regex


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
        # "a{{b}}c" parses as three literal pieces: each literal between placeholders is kept
        # whole, or rendering would cut the text at the first brace
        text_before, trailing = "", False
        for literal, field_name, spec, conversion in parsed:
            offset = _advance(text, offset, literal)
            text_before += literal
            if field_name is None:
                trailing = True
                continue
            literals.append(text_before)
            text_before, trailing = "", False
            m = _FIELD.match(field_name)
            if not m or spec or conversion:
                raise TemplateSyntaxError(
                    f"{{{field_name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a placeholder: placeholders are "
                    "{name}, {name[index]} or {input.name}; write {{ and }} for literal braces", offset)
            placeholders.append(Placeholder(m.group(1), field_name, offset))
            offset = text.index("}", offset) + 1
        if trailing:
            literals.append(text_before)
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

    __slots__ = ("base_dir", "regex", "prefix", "whole", "allowed", "_positional", "_names", "_every_split")

    def __init__(self, text: str, base_dir: str = ""):
        super().__init__(text)
        for p in self.placeholders:
            if p.field != p.name:
                raise TemplateSyntaxError(f"{{{p.field}}}: a path takes plain {{wildcards}}, not indexes "
                                          "or parts", p.offset)
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
        self.allowed: Mapping[str, Collection[str]] = {}
        self._every_split: re.Pattern | None = None
        self.regex = self._compile()
        self._positional: dict[tuple[str, ...], str] = {}

    def constrain(self, allowed: Mapping[str, Collection[str]]) -> None:
        """Let each named wildcard match only these values (a sheet column's or a list's).

        A short list goes into the regex, so that ``{contig}.{vartype}`` splits a path where
        the values fit; a long one (a sheet column) is checked after matching.
        """
        self.allowed = {name: values for name, values in allowed.items() if name in self._names}
        self._every_split = None
        self.regex = self._compile()

    def _compile(self, limit: int | None = _ALTERNATIVES) -> re.Pattern:
        """The regex: a wildcard limited to at most ``limit`` values (None: any number) lists them."""
        parts, seen = [], set()
        for literal, placeholder in zip(self.literals, self.placeholders + (None,)):
            parts.append(re.escape(literal))
            if placeholder is None:
                continue
            if placeholder.name in seen:
                parts.append(f"(?P={placeholder.name})")
            else:
                seen.add(placeholder.name)
                values = self.allowed.get(placeholder.name)
                if values is not None and (limit is None or len(values) <= limit):
                    choices = "|".join(map(re.escape, sorted(values, key=len, reverse=True))) or "(?!)"
                    parts.append(f"(?P<{placeholder.name}>{choices})")
                else:
                    parts.append(f"(?P<{placeholder.name}>[^/]+)")
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
        for name, allowed in self.allowed.items():
            if values[name] not in allowed:
                return self._other_split(path, values)
        return values

    def _other_split(self, path: str, values: dict[str, str]) -> dict[str, str] | None:
        """The greedy split gave a value a long list does not hold; when the path splits another
        way (a value holds a separator), try every split, with each long list in the regex."""
        seps = {c for lit in self.literals[1:len(self.placeholders)] for c in lit if c != "/"}
        if not any(c in v for v in values.values() for c in seps):
            return None
        if self._every_split is None:
            self._every_split = self._compile(limit=None)
        m = self._every_split.match(path)
        if m is None:
            return None
        values = m.groupdict()
        return None if any(v in (".", "..") for v in values.values()) else values

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


