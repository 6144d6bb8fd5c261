"""Rules and workflows as the loader leaves them: plain, frozen data the planner can trust.

A rule's jobs see a *namespace*: its wildcards, then the columns of every sheet whose key the
wildcards cover (and of the sheets those rows join). Everything that varies per job (paths,
params, logs, resources, the ``when:`` test) is a template or a test over that namespace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..settings import Settings
from .templates import Pattern, Template


@dataclass(frozen=True)
class InputSpec:
    """One input as written: a path pattern, maybe an ``expand(...)``, maybe in a named group."""

    pattern: Pattern
    expand: bool = False
    name: str | None = None       # ``reads`` in `reads: "{fq1}", "{fq2}"`: {input.reads}
    # an expand's dimensions: the sheet view whose rows it takes (or None), and list variables
    view: object = None
    lists: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """A rule's ``when:``, compiled by the loader into a test of a job's namespace tuple."""

    text: str
    names: tuple[str, ...]
    test: Callable[[tuple], bool] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Binding:
    """A sheet (with the rows it joins) whose key a rule's wildcards cover.

    ``key_pos`` are the key columns' positions among the wildcards; the job's row is
    ``view.row_of(key)`` with ``key`` one value or, for a composite key, a tuple of them.
    """

    view: object                  # language.samples.SheetView
    key_pos: tuple[int, ...]


@dataclass(frozen=True)
class ListVariable:
    """``contig = ["I", "II"]``, or ``lines("x.fai", field=1)`` read from a file.

    ``made_by_rule``: the file is an output of a rule (a checkpoint); ``ready`` is False while it
    does not exist yet, and then ``values`` is empty.
    """

    name: str
    values: tuple[str, ...]
    file: str | None = None
    made_by_rule: bool = False
    ready: bool = True


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of a Batchfile. ``wildcards`` come from the outputs, in order of appearance.

    Frozen, so the planner can trust a rule not to change under it; ``eq=False`` keeps identity
    hashing, because the planner keys its tables by rule.
    """

    name: str
    index: int
    line: int
    inputs: tuple[InputSpec, ...]
    outputs: tuple[Pattern, ...]
    shell: Template | None
    settings: Settings
    wildcards: tuple[str, ...] = ()
    # Names visible to this rule's jobs, in order: wildcards first, then the columns of each
    # binding's row.
    namespace: tuple[str, ...] = ()
    bindings: tuple[Binding, ...] = ()
    output_names: tuple[str | None, ...] = ()
    temp: frozenset[int] = frozenset()           # positions of temp() outputs
    directories: frozenset[int] = frozenset()    # positions of directory() outputs
    logs: tuple[Pattern, ...] = ()
    log_names: tuple[str | None, ...] = ()
    params: tuple[tuple[str, Template], ...] = ()
    when: Condition | None = None
    resources: tuple[tuple[str, Template], ...] = ()   # settings read from each job's values
    # namespace positions of sheet columns this rule uses that have an empty cell somewhere
    may_be_empty: tuple[int, ...] = ()
    waits_for: tuple[str, ...] = ()              # list variables read from files a rule makes
    path: str = ""                               # the Batchfile it is written in
    _formats: dict = field(default_factory=dict, repr=False, compare=False)   # output_formats' cache

    @property
    def is_target_list(self) -> bool:
        """``rule all:``: inputs only, nothing to run."""
        return not self.outputs and self.shell is None

    @property
    def uses_row(self) -> bool:
        return bool(self.bindings)

    def output_formats(self) -> tuple[str, ...]:
        fmts = self._formats.get("out")
        if fmts is None:
            fmts = self._formats["out"] = tuple(p.positional(self.namespace) for p in self.outputs)
        return fmts


@dataclass
class Workflow:
    path: str
    base_dir: str
    rules: dict[str, Rule]
    sheet: "object | None"                       # the first sheet (``samples:``), or None
    variables: dict[str, str]
    default_rule: str | None
    settings: Settings = field(default_factory=Settings)
    sheets: tuple = ()                           # every SheetView, in the order listed
    lists: dict[str, ListVariable] = field(default_factory=dict)
    files: tuple[str, ...] = ()                  # the Batchfile and what it includes or reads
