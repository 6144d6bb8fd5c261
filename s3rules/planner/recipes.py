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
    """The ``_Shortcut`` for one consumer pattern, or None when only matching each path can tell.

    A producer with a ``when:`` condition, or whose wildcard only takes some values (a sheet
    column's, a list's) where the consumer's value has another name, is matched path by path.
    """
    if consumer.whole:
        return None
    matches = [(r, o) for r, o in outputs if _may_overlap(consumer, o)]
    if not matches:
        return _Shortcut(None)
    if len(matches) != 1:
        return None
    rule, out = matches[0]
    if rule.when is not None:
        return None
    if out.literals != consumer.literals or len(out.placeholders) != len(consumer.placeholders):
        return None
    if any("/" not in lit for lit in consumer.literals[1:len(consumer.placeholders)]):
        return None
    mapping: dict[str, str] = {}
    for pc, po in zip(consumer.placeholders, out.placeholders):
        if mapping.setdefault(po.name, pc.name) != pc.name:
            return None
        if po.name in out.allowed and pc.name != po.name:
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


class _Expand:
    """One ``expand(...)`` input of a rule: where its values come from, worked out once.

    Its paths are ``format(*(row + combination + job values))`` for each row of ``view`` that
    agrees with the job's wildcards (``row_filter``), times each combination of the list
    variables (a list the rule has as a wildcard is fixed to the job's value).
    """

    __slots__ = ("pattern", "view", "lists", "names", "fmt", "row_filter", "list_values", "key_pos",
                 "empty")

    def __init__(self, rule: Rule, pattern: Pattern, view, lists: tuple[str, ...], all_lists):
        self.pattern, self.view, self.lists = pattern, view, lists
        columns = view.columns if view is not None else ()
        self.names = tuple(columns) + lists + rule.wildcards
        self.fmt = pattern.positional(self.names)
        wildcard_pos = {w: i for i, w in enumerate(rule.wildcards)}
        # the job's wildcards that are columns of the view filter its rows
        filters = [(w, i) for w, i in wildcard_pos.items() if view is not None and w in view.column_index]
        self.row_filter = (tuple(w for w, _ in filters), tuple(i for _, i in filters))
        # per list: its values, or the position of the job's value when the rule has it as a wildcard
        self.list_values = tuple(wildcard_pos.get(n, all_lists[n]) for n in lists)
        free = [wildcard_pos[n] for n in pattern.names if n not in columns and n not in lists]
        self.key_pos = tuple(sorted(set(self.row_filter[1]) | set(free)
                                    | {v for v in self.list_values if isinstance(v, int)}))
        self.empty = tuple(n for n in pattern.names if view is not None and n in view.empty_columns)


class _Recipe:
    """A rule's jobs, compiled once: formats over the job's values, row lookup, input shortcuts.

    ``jobs`` holds the rule's jobs by wildcard values. ``links`` is set when every input is a
    plain path whose producer is known per rule pair: then a job's dependencies are a slice of
    its values and a dict lookup each, with no path matching. ``key_pos`` (one sheet with a
    one-column key) is the fast way to a job's row; ``slow`` sends a rule whose jobs need more
    (several sheets, a composite key, a check of values) through ``Planner._make_job``.
    """

    def __init__(self, rule: Rule, workflow, outputs: list[tuple[Rule, Pattern]]):
        self.rule = rule
        self.jobs: dict[tuple[str, ...], Job] = {}
        self.out_fmts = rule.output_formats()
        b = rule.bindings
        self.key_pos = b[0].key_pos[0] if len(b) == 1 and len(b[0].key_pos) == 1 else None
        self.row_of = b[0].view.row_of if self.key_pos is not None else None
        nw = len(rule.wildcards)
        keys = {c for binding in b for c in binding.view.key_columns}
        # a wildcard that is also a (non-key) column of the job's row must agree with it
        self.row_checks = tuple((i, j - nw) for i, w in enumerate(rule.wildcards) if w not in keys
                                for j, name in enumerate(rule.namespace) if j >= nw and name == w)
        self.slow = bool(self.row_checks or rule.may_be_empty) or (bool(b) and self.key_pos is None)
        self.has_expand = any(spec.expand for spec in rule.inputs)
        self.expands: dict[int, _Expand] = {}
        self.inputs = []  # (kind, format or pattern, shortcut)
        for n, spec in enumerate(rule.inputs):
            p = spec.pattern
            if spec.expand:
                e = self.expands[n] = _Expand(rule, p, spec.view, spec.lists,
                                              {k: v.values for k, v in workflow.lists.items()})
                self.inputs.append(("expand", e, _shortcut(p, e.names, outputs)))
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
