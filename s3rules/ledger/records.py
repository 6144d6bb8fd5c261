"""One record: a job's event (started, finished, failed), its identity hashes and where it ran."""
from __future__ import annotations

from typing import NamedTuple

STARTED, FINISHED, FAILED, UNRECORDED = "s", "f", "x", "n"   # "n": as if there were no record


class Record(NamedTuple):
    time: float                    # epoch seconds of the event
    state: str                     # STARTED, FINISHED or FAILED
    hashes: tuple[str, ...]        # one per identity.TRIGGERS
    where: str = ""                # "local:<pid>", "batch:<job id>", "" before it is known
    name: str = ""                 # on object stores: the record's own path (to delete it later)

    @property
    def open(self) -> bool:
        """Started and never finished: what it wrote may be half-written."""
        return self.state != FINISHED


def summary_of(rec: Record, rule: str) -> str:
    """``state command params input resources time where rule``: what the journal keeps of a
    record. State and hashes come first, so "finished, unchanged" is one ``startswith``."""
    return f"{rec.state} {' '.join(rec.hashes)} {rec.time:.3f} {rec.where or '-'} {rule}"


def prefix_of(summary: str) -> str:
    """A summary's state and hashes: what every job of a rule shares when all is well."""
    return summary[:summary.rfind(" ", 0, summary.rfind(" ", 0, summary.rfind(" ")))]


def parse(summary: str) -> Record:
    """The record a summary says; a damaged one reads as a job that started and never finished."""
    try:
        state, c, p, i, r, when, where = summary.split(" ")[:7]
        return Record(float(when), state, (c, p, i, r), "" if where == "-" else where)
    except ValueError:
        return Record(0.0, STARTED, ("", "", "", ""))
