"""Reporters: what a run looks like to a person (tqdm bars, or plain lines when not a terminal).

The runner calls ``start``, ``submitted``, ``finished``, ``failed`` and ``close``; a reporter
decides how that reads. ``QuietReporter`` is the base: it shows nothing.
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

from .planner import Plan


class QuietReporter:
    def start(self, plan: Plan) -> None:
        self.totals = {}
        for job in plan.pending:
            self.totals[job.rule.name] = self.totals.get(job.rule.name, 0) + 1

    def submitted(self, job) -> None:
        pass

    def finished(self, job, outcome) -> None:
        pass

    def failed(self, job, outcome) -> None:
        pass

    def states(self, counts: dict[str, dict[str, int]]) -> None:
        """Executors that know finer states (Batch) report per-rule counts per state."""

    def message(self, text: str) -> None:
        pass

    def close(self, result) -> None:
        pass


class LineReporter(QuietReporter):
    """One line per finished job, for logs and CI (stderr is not a terminal)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, plan: Plan) -> None:
        super().start(plan)
        self.total = sum(self.totals.values())
        self.count = 0
        self.t0 = time.monotonic()
        if self.total:
            self.message(f"s3rules: {self.total} job{'s' if self.total != 1 else ''} to run")

    def finished(self, job, outcome) -> None:
        self.count += 1
        self.message(f"[{self.count}/{self.total}] done {job.describe()}")

    def failed(self, job, outcome) -> None:
        self.count += 1
        self.message(f"[{self.count}/{self.total}] FAILED {job.describe()}: {outcome.reason}")

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class BarReporter(QuietReporter):
    """A tqdm bar per rule and a total bar, on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bars: dict[str, tqdm] = {}

    def start(self, plan: Plan) -> None:
        super().start(plan)
        total = sum(self.totals.values())
        if not total:
            return
        width = max(len(name) for name in self.totals)
        self.total_bar = tqdm(total=total, desc="total".ljust(width), unit="job", file=self.stream,
                              position=0, leave=True, dynamic_ncols=True)
        for i, (rule, n) in enumerate(self.totals.items(), 1):
            self.bars[rule] = tqdm(total=n, desc=rule.ljust(width), unit="job", file=self.stream,
                                   position=i, leave=True, dynamic_ncols=True)
        self.failures: dict[str, int] = {}

    def _advance(self, job) -> None:
        bar = self.bars.get(job.rule.name)
        if bar is not None:
            bar.update(1)
            self.total_bar.update(1)

    def finished(self, job, outcome) -> None:
        self._advance(job)

    def failed(self, job, outcome) -> None:
        name = job.rule.name
        self.failures[name] = self.failures.get(name, 0) + 1
        bar = self.bars.get(name)
        if bar is not None:
            bar.set_postfix_str(f"{self.failures[name]} failed", refresh=False)
        self._advance(job)

    def states(self, counts: dict[str, dict[str, int]]) -> None:
        for rule, states in counts.items():
            bar = self.bars.get(rule)
            if bar is not None:
                bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in states.items() if v), refresh=True)

    def message(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def close(self, result) -> None:
        for bar in self.bars.values():
            bar.close()
        if self.bars:
            self.total_bar.close()


def make_reporter(quiet: bool = False, stream=None) -> QuietReporter:
    stream = stream or sys.stderr
    if quiet:
        return QuietReporter()
    if getattr(stream, "isatty", lambda: False)():
        return BarReporter(stream)
    return LineReporter(stream)
