"""What the planner works out once per rule (``_Recipe``) and once per rule pair (``_Shortcut``).

For sample-sheet workflows the same (consumer input, producer output) pair recurs once per row,
so which rule makes an input, and from which of the consumer's values, is decided here once and
reused for every job; that keeps planning linear and fast.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Sequence

from ..model import Job, Pattern, Rule


class _Shortcut:
    """How paths of one consumer input map onto one producer output, worked out once.

    Valid when both patterns have the same literal text with placeholders in the same places,
    placeholders are separated by ``/`` (so a path splits one way only), and no other output
    pattern of the workflow could match a path of this shape. ``rule is None`` means no output
    pattern can match at all: every such path is a source file.
    """

    __slots__ = ("rule", "positions", "values_of")

    def __init__(self, rule: Rule | None, positions: tuple[int, ...] = ()):
        self.rule, self.positions = rule, positions
        start = positions[0] if positions else 0
        if positions == tuple(range(start, start + len(positions))):
            # a run of the consumer's values (often all of them): a slice, always a tuple
            self.values_of = itemgetter(slice(start, start + len(positions)))
        else:   # two or more positions: itemgetter gives a tuple
            self.values_of = itemgetter(*positions)


def _shortcut(consumer: Pattern, consumer_names: Sequence[str], outputs: list[tuple[Rule, Pattern]]):
    """The ``_Shortcut`` for one consumer pattern, or None when only matching each path can tell."""
    if consumer.whole:
        return None
    matches = [(r, o) for r, o in outputs if _may_overlap(consumer, o)]
    if not matches:
        return _Shortcut(None)
    if len(matches) != 1:
        return None
    rule, out = matches[0]
    if out.literals != consumer.literals or len(out.placeholders) != len(consumer.placeholders):
        return None
    if any("/" not in lit for lit in consumer.literals[1:len(consumer.placeholders)]):
        return None
    mapping: dict[str, str] = {}
    for pc, po in zip(consumer.placeholders, out.placeholders):
        if mapping.setdefault(po.name, pc.name) != pc.name:
            return None
    if len(set(mapping.values())) != len(mapping):
        return None  # two producer wildcards from one consumer value: only the regex can say
    index = {name: i for i, name in enumerate(consumer_names)}
    return _Shortcut(rule, tuple(index[mapping[w]] for w in rule.wildcards))


def _may_overlap(a: Pattern, b: Pattern) -> bool:
    """False only when no path can fit both patterns (their fixed start or end disagree)."""
    pa, pb = a.literals[0], b.literals[0]
    if not (pa.startswith(pb) or pb.startswith(pa)):
        return False
    if len(a.literals) > len(a.placeholders) and len(b.literals) > len(b.placeholders):
        sa, sb = a.literals[-1], b.literals[-1]
        if a.placeholders and b.placeholders and not (sa.endswith(sb) or sb.endswith(sa)):
            return False
    return True


class _Recipe:
    """A rule's jobs, compiled once: formats over the job's values, row lookup, input shortcuts.

    ``jobs`` holds the rule's jobs by wildcard values. ``links`` is set when every input is a
    plain path whose producer is known per rule pair: then a job's dependencies are a slice of
    its values and a dict lookup each, with no path matching.
    """

    def __init__(self, rule: Rule, sheet, outputs: list[tuple[Rule, Pattern]]):
        self.rule = rule
        self.jobs: dict[tuple[str, ...], Job] = {}
        self.out_fmts = rule.output_formats()
        self.key_pos = rule.wildcards.index(sheet.key) if rule.uses_row else None
        self.row_checks = tuple((i, sheet.column_index[w]) for i, w in enumerate(rule.wildcards)
                                if rule.uses_row and w in sheet.column_index and w != sheet.key)
        self.filter_pos = tuple(rule.wildcards.index(w) for w in rule.expand_filter)
        self.expand_names = (sheet.columns + rule.wildcards) if sheet else ()
        columns = set(sheet.columns) if sheet else set()
        self.free_in_expand = {s.pattern.text: any(n not in columns for n in s.pattern.names)
                               for s in rule.inputs if s.expand}
        self.has_expand = any(spec.expand for spec in rule.inputs)
        self.inputs = []  # (kind, format or pattern, shortcut)
        for spec in rule.inputs:
            p = spec.pattern
            if spec.expand:
                self.inputs.append(("expand", p, _shortcut(p, self.expand_names, outputs)))
            elif p.whole:
                self.inputs.append(("whole", p.positional(rule.namespace), None))
            else:
                self.inputs.append(("path", p.positional(rule.namespace),
                                    _shortcut(p, rule.namespace, outputs)))
        plain = all(kind == "path" for kind, _, _ in self.inputs)
        self.in_fmts = tuple(fmt for _, fmt, _ in self.inputs) if plain else None
        self.links: tuple | None = None

    def link(self, recipes: dict[int, "_Recipe"]) -> None:
        """Set ``links``: per input, (producer recipe or None for a source, values getter)."""
        if self.in_fmts is None or any(sc is None for _, _, sc in self.inputs):
            return
        self.links = tuple((None if sc.rule is None else recipes[sc.rule.index], sc.values_of)
                           for _, _, sc in self.inputs)
