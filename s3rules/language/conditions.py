"""``when:`` expressions -> a test of a job's namespace tuple.

A condition compares sheet columns, wildcards and variables with ``== != in not and or``
and brackets. Names are resolved once, here: a namespace name becomes a tuple index, a
variable a constant, so a test costs a few calls per job. Values compare as text, or as
numbers when both sides read as numbers (``mem == 4`` holds for "4.0").
"""
from __future__ import annotations

import re
from operator import itemgetter
from typing import Callable, Mapping

from ..model import Condition
from .parser import Value

_FALSE = {"", "0", "false", "no", "off"}


def truthy(value) -> bool:
    """A bare name as a condition: empty, 0, false, no and off are false."""
    if isinstance(value, tuple):
        return bool(value)
    return str(value).strip().lower() not in _FALSE


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")   # a number as a Batchfile writes it


def same(a: str, b: str) -> bool:
    """Equal as text, or as numbers when both are written as numbers ("4" and "4.0")."""
    if a == b:
        return True
    return (isinstance(a, str) and isinstance(b, str) and _NUMBER.fullmatch(a) is not None
            and _NUMBER.fullmatch(b) is not None and float(a) == float(b))


class ConditionCompiler:
    """Compiles one rule's ``when:`` against what its jobs can see.

    ``positions``: namespace name -> index in a job's namespace tuple; ``constants``: variables
    (text) and list variables (tuples); ``unknown(name, value)`` raises the located error.
    """

    def __init__(self, positions: Mapping[str, int], constants: Mapping[str, object],
                 unknown: Callable[[str, Value], Exception], error: Callable[[str, Value], Exception]):
        self.positions, self.constants = positions, constants
        self.unknown, self.error = unknown, error
        self.names: list[str] = []
        self.constants_used: list[str] = []

    def compile(self, value: Value, text: str) -> Condition:
        part = self.part(value)
        if value.kind == "expr" and value.value in ("==", "!=", "in", "not in", "and", "or", "not"):
            test = part
        else:   # a bare name or value: its truth
            test = lambda ns, part=part: truthy(part(ns))   # noqa: E731
        return Condition(text, tuple(dict.fromkeys(self.names)), test)

    def part(self, value: Value) -> Callable[[tuple], object]:
        kind = value.kind
        if kind == "word":
            return self.name(value)
        if kind in ("string", "number"):
            constant = value.value if kind == "string" else value.raw
            return lambda ns: constant
        if kind == "list":
            items = tuple(self.constant(v) for v in value.args)
            return lambda ns: items
        if kind == "expr":
            return self.operator(value)
        raise self.error(f"a condition compares names and values; {value.raw!r} is not one", value)

    def constant(self, value: Value) -> str:
        if value.kind == "string":
            return value.value
        if value.kind == "number":
            return value.raw
        raise self.error("a list in a condition holds strings and numbers", value)

    def name(self, value: Value) -> Callable[[tuple], object]:
        name = value.value
        if name in self.positions:
            self.names.append(name)
            return itemgetter(self.positions[name])
        if name in self.constants:
            self.constants_used.append(name)
            constant = self.constants[name]
            if callable(constant):   # a list read from a file once the rules are known
                return lambda ns: constant()
            return lambda ns: constant
        raise self.unknown(name, value)

    def operator(self, value: Value) -> Callable[[tuple], object]:
        op = value.value
        parts = [self.part(v) for v in value.args]
        if op == "not":
            (a,) = parts
            return lambda ns: not truthy(a(ns))
        a, b = parts
        if op == "and":
            return lambda ns: truthy(a(ns)) and truthy(b(ns))
        if op == "or":
            return lambda ns: truthy(a(ns)) or truthy(b(ns))
        if op in ("in", "not in"):
            right = value.args[1]
            known = self.constants.get(right.value) if right.kind == "word" else None
            if not (right.kind == "list" or isinstance(known, tuple) or callable(known)):
                raise self.error(f"the right side of `{op}` is a list: [\"a\", \"b\"] or a list variable", right)
            if right.kind == "word":   # the list itself, even where its name is also the job's wildcard
                b = (lambda ns: known()) if callable(known) else (lambda ns: known)
            if op == "in":
                return lambda ns: any(same(a(ns), item) for item in b(ns))
            return lambda ns: not any(same(a(ns), item) for item in b(ns))
        if op == "==":
            return lambda ns: same(a(ns), b(ns))
        return lambda ns: not same(a(ns), b(ns))
