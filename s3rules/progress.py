"""Reporters: what a run looks like to a person (tqdm bars, or plain lines when not a terminal).

The runner calls ``start``, ``submitted``, ``finished``, ``failed`` and ``close``; a reporter
decides how that reads. ``QuietReporter`` is the base: it shows nothing. Only succeeded jobs
count as progress: failed and cancelled jobs are counted apart, so a full bar means done.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

from .planner import Plan

FAILED, CANCELLED = "failed", "cancelled"


def jobs_to_run(n: int) -> str:
    return f"s3rules: {n} job{'s' if n != 1 else ''} to run"


def how_lost(outcome) -> str:
    """The runner reports a job stopped by Ctrl-C as failed with the reason "cancelled"."""
    return CANCELLED if getattr(outcome, "reason", "") == CANCELLED else FAILED


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
    """A line when a job starts and one when it ends, for logs and CI (stderr is not a terminal):
    a log of ends alone cannot tell a slow job from one never started."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, plan: Plan) -> None:
        super().start(plan)
        self.total = sum(self.totals.values())
        self.count = 0   # finished jobs of every kind: done, failed, cancelled
        if self.total:
            self.message(jobs_to_run(self.total))

    def submitted(self, job) -> None:
        self.message(f"[start] {job.describe()}")

    def finished(self, job, outcome) -> None:
        self.count += 1
        self.message(f"[{self.count}/{self.total}] done {job.describe()}")

    def failed(self, job, outcome) -> None:
        self.count += 1
        if how_lost(outcome) == CANCELLED:   # Ctrl-C stopped it: no fault of the job's to show
            self.message(f"[{self.count}/{self.total}] cancelled {job.describe()}")
        else:
            self.message(f"[{self.count}/{self.total}] FAILED {job.describe()}: {outcome.reason}")

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def idle_format(label: str) -> str:
    """A rule bar before its first job starts (or if none ever does) shows no clock: it has none yet."""
    return "{l_bar}{bar}| {n_fmt}/{total_fmt} [" + label + "{postfix}]"


class BarReporter(QuietReporter):
    """A tqdm bar per rule under a total bar, on a terminal.

    Bars have fixed positions, the total on top; ``close`` closes them top down, as tqdm leaves
    a closed bar on the cursor's line: any other order moves the total. Messages go through
    ``tqdm.write``, which clears the bars, writes above them and redraws them in place."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bars: dict[str, tqdm] = {}
        self.total_bar: tqdm | None = None
        self.started: set[str] = set()
        self.lost: dict[str, dict[str, int]] = {}   # rule ("" for the total) -> failed/cancelled counts
        self.busy: dict[str, str] = {}              # rule -> the executor's state counts, as text

    def start(self, plan: Plan) -> None:
        super().start(plan)
        total = sum(self.totals.values())
        if not total:
            return
        self.message(jobs_to_run(total))
        width = max(len(name) for name in [*self.totals, "total"])
        self.total_bar = self._bar("total".ljust(width), total, 0)
        for i, (rule, n) in enumerate(self.totals.items(), 1):
            self.bars[rule] = self._bar(rule.ljust(width), n, i, idle_format("waiting"))

    def _bar(self, desc: str, total: int, position: int, bar_format: str | None = None) -> tqdm:
        return tqdm(total=total, desc=desc, unit="job", file=self.stream, position=position, leave=True,
                    dynamic_ncols=True, bar_format=bar_format)

    def submitted(self, job) -> None:
        """A rule's clock starts with its first job: from the run's start, a rule whose jobs
        wait for others would show a false elapsed time and rate."""
        rule = job.rule.name
        bar = self.bars.get(rule)
        if bar is None or rule in self.started:
            return
        self.started.add(rule)
        bar.bar_format = None
        bar.reset()   # nothing of the rule has finished yet: this only restarts its clock

    def finished(self, job, outcome) -> None:
        bar = self.bars.get(job.rule.name)
        if bar is not None:
            bar.update(1)
            self.total_bar.update(1)

    def failed(self, job, outcome) -> None:
        rule = job.rule.name
        if rule not in self.bars:
            return
        kind = how_lost(outcome)
        for key in (rule, ""):
            counts = self.lost.setdefault(key, {FAILED: 0, CANCELLED: 0})
            counts[kind] += 1
        self._show(rule)
        self._show("")

    def states(self, counts: dict[str, dict[str, int]]) -> None:
        for rule, states in counts.items():
            if rule in self.bars:
                self.busy[rule] = " ".join(f"{k}={v}" for k, v in states.items() if v)
                self._show(rule)

    def _show(self, rule: str) -> None:
        """A bar's postfix: the executor's states, then the failed and cancelled jobs ("" is the total)."""
        bar = self.bars[rule] if rule else self.total_bar
        lost = self.lost.get(rule, {})
        parts = [self.busy.get(rule, "")] + [f"{lost[k]} {k}" for k in (FAILED, CANCELLED) if lost.get(k)]
        bar.set_postfix_str(", ".join(p for p in parts if p), refresh=True)

    def message(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def close(self, result) -> None:
        if self.total_bar is None:
            return
        for rule, bar in self.bars.items():
            if rule not in self.started:
                bar.bar_format = idle_format("not run")
        self.total_bar.close()
        for bar in self.bars.values():
            bar.close()


def make_reporter(quiet: bool = False, stream=None) -> QuietReporter:
    stream = stream or sys.stderr
    if quiet:
        return QuietReporter()
    if getattr(stream, "isatty", lambda: False)():
        return BarReporter(stream)
    return LineReporter(stream)
