"""``s3rules status``: each rule's jobs by state, for one workflow or, a row each, for several.

Several Batchfiles share one ``Storage`` and one ``Submitter``, so workflows that write under
the same prefixes or submit to the same queue cost one listing of each between them. The cost
so far is read from each workspace's run history (``ledger.history``): local files, no request.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from collections import Counter

from ..errors import S3RulesError
from . import EXIT_OK, EXIT_USAGE
from .batch import _finishing, _jobs, _load, _on_batch, _spec, _submitter, local_states


def _columns(local: bool, batch: bool, batch_failed: bool) -> list[str]:
    """done, then what runs now (local: running; with Batch rules: each active Batch state, a local
    job running counting as RUNNING), then failed (local jobs, and Batch jobs once one failed) and
    incomplete (local jobs), to do, total."""
    columns = ["done"]
    if batch:
        from ..aws.jobspec import ACTIVE_STATES
        columns += ACTIVE_STATES
    elif local:
        columns.append("running")
    columns += ["failed"] if local or batch_failed else []
    columns += ["incomplete"] if local else []
    return columns + ["to do", "total"]


def _ended_unwatched(the_plan, batch: list, ledger, submitter) -> tuple[set, dict]:
    """Batch jobs an earlier run started, no longer in flight: (those Batch says succeeded with
    every output there: done, though no run has recorded them yet; those Batch says failed,
    each with its cause as Batch tells it)."""
    from ..aws.failures import cause
    from ..ledger import STARTED
    from .records import ended_unwatched
    records = ledger.lookup([job for job in batch if job in the_plan.pending])
    left = {job for job, rec in records.items() if rec.state == STARTED}   # a failure's record says it all
    gone = [job for job in batch if job in left and submitter.in_flight_summary(_spec(job)) is None]
    if not gone:
        return set(), {}
    done, failed = ended_unwatched(gone, ledger, ledger.storage)
    ids = {job: at.split(":", 1)[1] for job, at in ledger.where(failed).items() if at.startswith("batch:")}
    described = submitter.service.describe(set(ids.values())) if ids else {}
    return set(done), {job: cause(described[ids[job]]) if ids.get(job) in described else None for job in failed}


def status_rows(the_plan, ledger, submitter=None) -> tuple[list[str], dict[str, Counter], dict]:
    """(the columns, each rule's jobs per column, the failed jobs: job -> its cause when Batch
    told it, else None for its record to say): see ``_columns``."""
    from ..planner import INCOMPLETE
    from .records import failed_jobs
    local, batch = _jobs(the_plan)
    running, failed, started = local_states(local, ledger)
    running = set(running) | _finishing(local, the_plan, started)
    if batch and submitter is None:
        submitter = _submitter()
    ended, failed_unwatched = _ended_unwatched(the_plan, batch, ledger, submitter)
    failed = {**dict.fromkeys(failed | failed_jobs(batch, the_plan, ledger)), **failed_unwatched}
    columns = _columns(bool(local), bool(batch), any(_on_batch(j) for j in failed))
    rows: dict[str, Counter] = {}
    for job in the_plan.jobs:
        if job.rule.is_target_list:
            continue
        row = rows.setdefault(job.rule.name, Counter())
        row["total"] += 1
        if _on_batch(job):
            if job not in the_plan.pending or job in ended:
                row["done"] += 1
                continue
            summary = submitter.in_flight_summary(_spec(job))
            row[summary["status"] if summary else "failed" if job in failed else "to do"] += 1
        elif job in running:
            row["RUNNING" if batch else "running"] += 1
        elif job not in the_plan.pending:
            row["done"] += 1
        elif job in failed:
            row["failed"] += 1
        else:
            row["incomplete" if the_plan.pending[job] == INCOMPLETE else "to do"] += 1
    return columns, rows, failed


#: columns that count no job running or in flight
QUIET = ("done", "failed", "incomplete", "to do", "total")


def table(columns: list[str], rows: list[tuple[str, Counter]], extra: dict[str, list[str]] | None = None,
          first: str = "rule") -> str:
    """Rows of counts under ``columns`` (and ``extra`` columns of text), then their total."""
    extra = extra or {}
    widths = [max(9, len(c)) for c in columns]
    width = max([5, len(first)] + [len(name) for name, _ in rows])
    total = Counter()
    names = [*extra]
    out = [f"{first:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths))
           + "".join(f"  {n:>10}" for n in names)]
    for i, (name, row) in enumerate([*rows, ("total", total)]):
        if row is not total:
            total.update(row)
        out.append(f"{name:<{width}}  " + "  ".join(f"{row[c]:>{w}}" for c, w in zip(columns, widths))
                   + "".join(f"  {extra[n][i]:>10}" for n in names))
    return "\n".join(out) + "\n"


def status_table(the_plan, ledger, submitter=None) -> tuple[str, int]:
    """Per rule, each job in one column (see ``_columns``), then the failures by cause. Returns
    (text, jobs running or in flight)."""
    from .records import causes_line
    columns, rows, failed = status_rows(the_plan, ledger, submitter)
    total = Counter()
    for row in rows.values():
        total.update(row)
    return table(columns, list(rows.items())) + causes_line(failed, ledger), in_flight(columns, total)


def in_flight(columns: list[str], counts) -> int:
    """The jobs ``counts`` has running here or in flight on Batch."""
    return sum(n for c, n in counts.items() if c in columns and c not in QUIET)


def spent(workflow) -> float:
    """What a workflow's runs have cost so far, by their history, at its rules' prices."""
    from ..ledger.history import of_workflow
    from ..reports.document import priced
    return priced(of_workflow(workflow).spent, workflow)


def workflow_statuses(args, batchfiles: list[str], errors: bool = False) -> list[dict]:
    """Per Batchfile: its path, the columns, each rule's counts, what is in flight, its cost so
    far (and, for the text, its ledger and failed jobs); one Storage and one Submitter for them
    all. ``status`` prints them; ``dashboard`` serves them, and with ``errors`` a workflow that
    cannot be read (its Batchfile broken while the dashboard runs) is a row saying why."""
    from ..storage import Storage
    storage, shared = Storage(), {}
    out = []
    for path in batchfiles:
        try:
            out.append(_workflow_status(args, path, storage, shared))
        except S3RulesError as exc:
            if not errors:
                raise
            out.append({"batchfile": path, "error": str(exc)})
    _one_running_column(out)
    return out


def _one_running_column(statuses: list[dict]) -> None:
    """Next to a Batch workflow, a local one's running jobs count as RUNNING (as ``status`` of a
    workflow with rules of both kinds counts them)."""
    if not any("RUNNING" in s.get("columns", ()) for s in statuses):
        return
    for s in statuses:
        if "running" in s.get("columns", ()):
            s["columns"] = [c for c in s["columns"] if c != "running"]
            from ..aws.jobspec import ACTIVE_STATES
            s["columns"][1:1] = [c for c in ACTIVE_STATES if c not in s["columns"]]
            for counts in [*s["rules"].values(), s["total"]]:
                if "running" in counts:
                    counts["RUNNING"] = counts.pop("running")


def _workflow_status(args, path: str, storage, shared: dict) -> dict:
    args.batchfile = path
    workflow, the_plan, ledger = _load(args, storage=storage)
    if "submitter" not in shared and _jobs(the_plan)[1]:
        shared["submitter"] = _submitter()
    columns, rows, failed = status_rows(the_plan, ledger, shared.get("submitter"))
    total = Counter()
    for row in rows.values():
        total.update(row)
    return {"batchfile": path, "columns": columns, "rules": {k: dict(v) for k, v in rows.items()},
            "total": dict(total), "in_flight": in_flight(columns, total),
            "cost": spent(workflow), "_ledger": ledger, "_failed": failed}


def all_columns(statuses: list[dict]) -> list[str]:
    """The columns of several workflows' statuses, in ``_columns``' order."""
    from ..aws.jobspec import ACTIVE_STATES
    order = ["done", *ACTIVE_STATES, "running", "failed", "incomplete", "to do", "total"]
    return [c for c in order if any(c in s.get("columns", ()) for s in statuses)]


def many_table(statuses: list[dict], verbose: bool) -> str:
    """A row per workflow (the union of their columns, and the cost so far); with ``verbose``,
    each workflow's rules below."""
    from ..reports.page import money
    columns = all_columns(statuses)
    read = [s for s in statuses if "error" not in s]
    costs = [money(s["cost"]) for s in read] + [money(sum(s["cost"] for s in read))]
    text = table(columns, [(s["batchfile"], Counter(s["total"])) for s in read], {"cost": costs},
                 first="workflow")
    text += "".join(f"{s['batchfile']}: cannot be read (below)\n" for s in statuses if "error" in s)
    if verbose:
        from .records import causes_line
        for s in read:
            text += f"\n{s['batchfile']}:\n" + table(s["columns"], [(k, Counter(v)) for k, v in s["rules"].items()]) \
                + causes_line(s["_failed"], s["_ledger"])
    return text


def once(paths) -> list[str]:
    """Each Batchfile once, however it was written (``A/Batchfile``, ``./A/Batchfile``, absolute)."""
    first: dict[str, str] = {}
    for path in paths:
        first.setdefault(os.path.realpath(path), path)
    return list(first.values())


def batchfiles_of(args) -> list[str] | None:
    """The Batchfiles ``status`` shows a row each for: two or more positionals that are Batchfiles
    by name, or the lines of ``--workflows FILE``; None for the one-workflow status."""
    from .args import BATCHFILE, BATCHFILE_SUFFIXES
    if args.workflows:
        try:
            with open(args.workflows) as fh:
                lines = [line.split("#", 1)[0].strip() for line in fh]
        except OSError as exc:
            raise S3RulesError(f"cannot read the list of Batchfiles {args.workflows}: {exc.strerror or exc}") from None
        base = os.path.dirname(args.workflows)
        found = [os.path.join(base, line) for line in lines if line]
        if not found:
            raise S3RulesError(f"{args.workflows} names no Batchfile: write one path per line, relative to that file")
        return once(found + list(args.words))
    named = [w for w in args.words if os.path.basename(w) == BATCHFILE or w.endswith(BATCHFILE_SUFFIXES)]
    return once(args.words) if len(args.words) > 1 and named == list(args.words) else None


def logs_command(batchfile: str) -> str:
    """How a failure on a page says to print a job's whole log."""
    return f"s3rules logs {shlex.quote(batchfile)}"


def settled(the_plan, ledger) -> tuple[set, dict]:
    """Batch jobs no run saw end: (done, failed), as ``status`` counts them."""
    batch = _jobs(the_plan)[1]
    return _ended_unwatched(the_plan, batch, ledger, _submitter()) if batch else (set(), {})


def report_of(args, with_jobs: bool):
    """(the workflow, its report document) for ``args.batchfile``: what ``report`` and the
    dashboard's report pages show."""
    from .. import __version__
    from ..reports import report
    workflow, the_plan, ledger = _load(args)
    done, failed = settled(the_plan, ledger)
    return workflow, report(workflow, the_plan, ledger, __version__, with_jobs=with_jobs, settled=done,
                            unwatched_failures=failed)


def cmd_dashboard(args) -> int:
    """Serve the dashboard until Ctrl-C, which stops it (exit status 0)."""
    import copy
    import threading

    from ..reports import page
    from ..reports.dashboard import Dashboard, serve
    from ..views import display_path
    from .args import BATCHFILE
    batchfiles = ([args.batchfile] if args.batchfile else []) + (batchfiles_of(args) or list(args.words))
    batchfiles = once(batchfiles or [BATCHFILE])
    for path in batchfiles:
        if not os.path.isfile(path):
            raise S3RulesError(f"no such Batchfile: {path}; name each workflow's Batchfile (or list them in a file "
                               "given to --workflows)")
    planning = threading.Lock()   # the refresh and the requests each plan: one at a time (the parser is shared)

    def refresh() -> dict:
        with planning:
            statuses = [{k: v for k, v in s.items() if not k.startswith("_")}
                        for s in workflow_statuses(copy.copy(args), batchfiles, errors=True)]
        return {"workflows": statuses, "columns": all_columns(statuses)}

    def make_report(i: int) -> str:
        mine = copy.copy(args)
        mine.batchfile = batchfiles[i]
        with planning:
            workflow, doc = report_of(mine, with_jobs=False)
        return page.render(doc, logs_command(display_path(workflow.path)))

    board = Dashboard(refresh, make_report, args.interval)
    try:
        server = serve(board, page.dashboard, args.host, args.port)
    except OSError as exc:
        raise S3RulesError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); pick another "
                           "--port (0: any free one), or a --host this machine has") from None
    host, port = server.server_address[:2]
    print(f"s3rules: dashboard of {len(batchfiles)} workflow{'s' if len(batchfiles) != 1 else ''} on "
          f"http://{host}:{port}/ (read-only; Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("s3rules: dashboard stopped", file=sys.stderr)
    finally:
        board.stop()
        server.server_close()
    return EXIT_OK


def cmd_status(args) -> int:
    many = batchfiles_of(args)
    if many is None:
        from .args import locate_batchfile
        locate_batchfile(args)
    while True:
        if many is None:
            _, the_plan, ledger = _load(args)
            text, busy = status_table(the_plan, ledger)
        else:
            statuses = workflow_statuses(args, many, errors=True)
            text, busy = many_table(statuses, args.verbose), sum(s.get("in_flight", 0) for s in statuses)
        sys.stdout.write(text)
        sys.stdout.flush()
        if not args.watch or busy == 0:
            broken = [s for s in statuses if "error" in s] if many is not None else []
            for s in broken:
                print(f"s3rules: error: {s['error']}", file=sys.stderr)
            return EXIT_USAGE if broken else EXIT_OK
        time.sleep(args.interval)
        sys.stdout.write("\n")
