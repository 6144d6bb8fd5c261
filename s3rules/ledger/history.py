"""What each run did, for reports: one JSON-lines file per run in ``.s3rules/history/`` beside the Batchfile.

The ledger answers "is this job done, and is it the same job?" one job at a time, wherever its
outputs live: reading an S3 record whole costs a GET. A report wants every job's times and
usage at once, and what each run was. So each run also appends to a local file of its own a
line when it starts (its command line, the Batchfile's hash, the s3rules version), one per job
as it ends (what its ledger record says of how it ran, without what the job is) and one when it
ends. A report of 100,000 jobs reads a few files, not 100,000 records. Losing the history loses
only the figures of past runs, never what is done.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import time
from typing import NamedTuple

SUFFIX = ".jsonl"


def history_dir(base_dir: str) -> str:
    """Where the runs of the workspace at ``base_dir`` (the Batchfile's directory) keep their history."""
    return os.path.join(base_dir, ".s3rules", "history")


class History:
    """The file of one run, written as it goes (a crash keeps every line written before it)."""

    def __init__(self, directory: str, run_id: str | None = None):
        self.directory = directory
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        self.path = os.path.join(directory, self.run_id + SUFFIX)
        self.failed = False   # the history could not be written: the run goes on without it

    def _append(self, lines: list[dict]) -> None:
        if self.failed or not lines:
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
            with open(self.path, "a", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
        except OSError:
            self.failed = True

    def begin(self, **facts) -> None:
        """The run's first line: ``facts`` (argv, batchfile, its hash, version, executor...)."""
        self._append([{"run": self.run_id, "started": round(time.time(), 3), **facts}])

    def jobs(self, entries: list[dict]) -> None:
        """A line per job that ended: its key (first output), rule, wildcards, state and details."""
        self._append(entries)

    def end(self, **facts) -> None:
        self._append([{"end": self.run_id, "ended": round(time.time(), 3), **facts}])


def digest(paths, base_dir: str) -> str:
    """A short hash of these local files (a workflow's Batchfile, what it includes, its config
    and sample sheets), so a report can say which version of the workflow a run ran. Paths
    count relative to ``base_dir``, so the same files hash the same from any directory; URLs
    are left out."""
    import hashlib
    h = hashlib.sha256()
    for path in sorted({os.path.relpath(os.path.abspath(p), base_dir) for p in paths if "://" not in p}):
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(os.path.join(base_dir, path), "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
        except OSError:
            h.update(b"missing")
    return h.hexdigest()[:12]


def of_workflow(workflow) -> "Past":
    """What the runs of ``workflow``'s Batchfile did (its neighbours' runs left out)."""
    return read(history_dir(workflow.base_dir), os.path.basename(workflow.path))


def workflow_digest(workflow) -> str:
    """``digest`` of the files that make ``workflow``."""
    sheets = [view.path for view in workflow.sheets if isinstance(getattr(view, "path", None), str)]
    return digest([*(workflow.files or (workflow.path,)), *sheets], workflow.base_dir)


class Past(NamedTuple):
    runs: list[dict]              # each run's first line, with what its last line says once it ended
    jobs: dict[str, dict]         # each job's latest line, by key (its first output)
    spent: dict[str, list[float]]  # rule -> [vCPU-hours, GiB-hours] of every job line, every run


def read(directory: str, batchfile: str | None = None) -> Past:
    """What the runs of one workspace did, oldest run first; with ``batchfile`` (a file name in
    the workspace, so a moved or copied workspace keeps its history), only the runs of that
    Batchfile. A line cut short by a crash is skipped."""
    runs: dict[str, dict] = {}
    jobs: dict[str, dict] = {}
    spent: dict[str, list[float]] = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(directory), "*" + SUFFIX))):
        try:
            st = os.stat(path)
        except OSError:
            continue
        run, end, lines = _parse(path, st.st_size, st.st_mtime_ns)
        if run is None or (batchfile is not None and os.path.basename(str(run.get("batchfile"))) != batchfile):
            continue   # another Batchfile's run in the same directory
        runs[run["run"]] = {**run, **end}
        for line in lines:
            old = jobs.get(line["key"])
            if old is None or old.get("time", 0) <= line.get("time", 0):
                jobs[line["key"]] = line
            _spend(spent, line)
    return Past(sorted(runs.values(), key=lambda r: r.get("started", 0)), jobs, spent)


@functools.lru_cache(maxsize=512)
def _parse(path: str, size: int, mtime_ns: int) -> tuple[dict | None, dict, list[dict]]:
    """One run's file: (its first line, what its last line says, its job lines). Kept while the
    file's size and mtime stay, so a dashboard reads only the files that grew."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            texts = fh.read().split("\n")
    except OSError:
        return None, {}, []
    run_id = os.path.basename(path)[:-len(SUFFIX)]
    run, end, lines = None, {}, []
    for text in texts:
        try:
            line = json.loads(text) if text else None
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if "key" in line:
            line["run"] = run_id
            lines.append(line)
        elif "run" in line:
            run = {**line, "run": run_id}
        elif "end" in line:
            end = {k: v for k, v in line.items() if k != "end"}
    return run, end, lines


def _spend(spent: dict[str, list[float]], line: dict) -> None:
    used = line.get("usage")
    figures = usage_hours(line.get("vcpus", 0), line.get("memory", 0), used) if isinstance(used, dict) else None
    if figures is not None and "rule" in line:
        total = spent.setdefault(line["rule"], [0.0, 0.0])
        total[0] += figures[1]
        total[1] += figures[2]


def usage_hours(vcpus: float, memory: int, used: dict) -> tuple[float, float, float] | None:
    """(run seconds, vCPU-hours, GiB-hours) of one job run, or None when its times are unknown:
    the requested vCPUs and memory (MiB) for as long as it ran, as Fargate bills them, every
    attempt Batch made included (``billed``); a packed job's share of its pack (``packed``)."""
    try:
        share = used.get("packed") or 1
        run = round(max(0.0, used["ended"] - used["started"]) / share, 3)
        billed = round(used["billed"] / share, 3) if "billed" in used else run
    except (KeyError, TypeError):
        return None
    return run, vcpus * billed / 3600, memory / 1024 * billed / 3600
