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
