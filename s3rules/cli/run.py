"""``s3rules run``: load, plan, then show the plan or run it on the executor the rules name."""
from __future__ import annotations

import contextlib
import gc
import os
import sys

from ..errors import Interrupted, JobFailed, S3RulesError
from ..settings import EXECUTORS
from ..ledger import Ledger
from ..model import is_url
from ..workspace import Workspace
from . import EXIT_INTERRUPTED, EXIT_OK, records


def cmd_run(args) -> int:
    # Loading and planning make up to millions of long-lived objects and no garbage: the cyclic
    # collector would only walk them again and again. It stays off until jobs are about to run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _cmd_run(args, collecting)
    finally:
        if collecting:
            gc.enable()


def _cmd_run(args, collecting: bool) -> int:
    """Plan and run; when jobs wait for a checkpoint file the run made, load and plan again."""
    from ..language.loader import load_workflow

    batchfile = args.batchfile or "Batchfile"
    made: set[str] = set()   # checkpoint files made
    ran: frozenset = frozenset()   # outputs of the jobs run so far: --force does not rerun them
    while True:
        workflow = load_workflow(batchfile, dict(args.config), args.configfile)
        code, waiting, outputs = _round(workflow, args, collecting, ran)
        ran |= outputs
        if code != EXIT_OK or not waiting or args.dry_run or args.dag or args.rulegraph or args.touch:
            return code
        if args.detach or set(waiting) <= made:
            _waiting_note(waiting, sys.stderr, "run s3rules again once "
                          + ("they are made" if len(waiting) > 1 else "it is made"))
            return code
        made |= set(waiting)
        if not args.quiet:
            print(f"s3rules: {', '.join(_shown(f) for f in waiting)} made: planning the rest", file=sys.stderr)


def _round(workflow, args, collecting: bool, ran: frozenset) -> tuple[int, dict, frozenset]:
    """One plan and its run: (exit status, the checkpoint files jobs still wait for, the outputs
    of the jobs it ran)."""
    from .. import views
    from ..storage import Storage

    out = sys.stdout
    if args.list:
        views.rule_list(workflow, out)
        return EXIT_OK, {}, frozenset()
    storage = Storage()
    state_dir = os.path.join(workflow.base_dir, ".s3rules")
    ledger = Ledger(storage, workflow.base_dir, state_dir)
    looking = args.dag or args.rulegraph or args.dry_run
    # S3 outputs are kept apart by the per-queue lease and Batch's reuse of jobs in flight
    local = any(not is_url(p.text) or p.whole for rule in workflow.rules.values() for p in rule.outputs)
    workspace = None if looking or args.nolock or not local else Workspace(state_dir)
    with workspace or contextlib.nullcontext():   # no other run plans or registers meanwhile
        the_plan, in_flight = _plan(workflow, storage, ledger, args, workspace, ran)
        code = _show_or_touch(workflow, the_plan, ledger, storage, args, out)
        if code is not None:
            return code, _waits(the_plan), frozenset()
        if workspace is not None:
            workspace.register([o for job in the_plan.pending for o in job.outputs if not is_url(o)],
                               " ".join(sys.argv))
    try:
        if collecting:
            gc.enable()
        notes = workspace.notes if workspace else []
        code = execute(workflow, the_plan, storage, args, ledger, notes, in_flight)
        return code, _waits(the_plan), frozenset(o for job in the_plan.pending for o in job.outputs)
    finally:
        if workspace is not None:
            workspace.release()


def _plan(workflow, storage, ledger, args, workspace=None, ran: frozenset = frozenset()):
    """The plan, made again when jobs an earlier run left turn out to have finished.

    Jobs another live run is running look interrupted from here: that run is named first.
    """
    from ..planner import plan
    chosen = records.triggers(args)

    def make():
        return plan(workflow, storage, args.targets, force=args.force, forcerun=args.forcerun,
                    forceall=args.forceall, until=args.until, rerun_stale="mtime" in chosen, ledger=ledger,
                    triggers=chosen, already_ran=ran)
    the_plan = make()
    left = ledger.left_open(list(the_plan.pending))   # started by an earlier run, never seen to end
    if left and workspace is not None:
        workspace.check({o for job in left for o in job.outputs})
    in_flight: dict = {}
    if left:
        recorded, in_flight = records.settle(left, ledger, storage, running=workspace is not None)
        if recorded:   # the new plan has new jobs: the ones in flight are found by their outputs
            storage.invalidate([o for job in left for o in job.outputs])
            the_plan = make()
            again = {job.outputs: job for job in the_plan.pending}
            in_flight = {again[job.outputs]: i for job, i in in_flight.items() if job.outputs in again}
    return the_plan, in_flight


def _show_or_touch(workflow, the_plan, ledger, storage, args, out) -> int | None:
    """--dag, --rulegraph, -n and --touch end here (an exit status); a run goes on (None)."""
    from .. import views
    if args.dag:
        views.dag_dot(the_plan, out)
        return EXIT_OK
    if args.rulegraph:
        views.rulegraph_dot(the_plan, out)
        return EXIT_OK
    command = _command_of(workflow, args) if args.print_commands else None
    if args.dry_run:
        if args.json:
            views.write_json(views.plan_json(the_plan, command), out)
        else:
            views.plan_table(the_plan, out, list_jobs=not args.quiet or command is not None, command=command)
            if not args.quiet:
                records.interrupted_note(the_plan, out)
                if the_plan.waiting or the_plan.waiting_rules:
                    _waiting_note(_waits(the_plan), out, "`s3rules run` makes it, then plans the rest")
            if args.explain:
                records.explain(the_plan, ledger, out)
        return EXIT_OK
    if args.json or args.explain:
        raise S3RulesError(f"{'--json' if args.json else '--explain'} goes with -n/--dry-run")
    if args.touch:
        records.touch(the_plan, ledger, storage, args.quiet)
        return EXIT_OK
    if not the_plan.pending:
        if not args.quiet:
            print("s3rules: nothing to do: every requested target exists", file=sys.stderr)
        return EXIT_OK
    if command is not None:
        _print_commands(the_plan, command, out)
    return None


def _waits(the_plan) -> dict[str, tuple[int, list[str]]]:
    """checkpoint file -> (jobs that wait for it, the rules they and the rules asked for belong to)."""
    out = {}
    for path in {**the_plan.waiting, **the_plan.waiting_rules}:
        jobs = the_plan.waiting.get(path, [])
        names = [job.rule.name for job in jobs] + the_plan.waiting_rules.get(path, [])
        out[path] = (sum(1 for job in jobs if not job.rule.is_target_list), list(dict.fromkeys(names)))
    return out


def _waiting_note(waiting: dict, out, then: str) -> None:
    """Which jobs a checkpoint file holds back: they are known once it is made."""
    for path, (n, names) in waiting.items():
        rules = ", ".join(names)
        what = f"{_count(n)} of {rules} wait" if n else f"rule{'s' if len(names) > 1 else ''} {rules} wait" \
            + ("" if len(names) > 1 else "s")
        print(f"s3rules: {what} for {_shown(path)}; {then}", file=out)


def _shown(path: str) -> str:
    return path if is_url(path) else os.path.relpath(path)


def _command_of(workflow, args):
    """Job -> its command as its executor runs it (local jobs: paths relative to the Batchfile's
    directory, where they run; AWS Batch: paths as they are)."""
    def command(job) -> str:
        local = (args.executor or job.rule.settings.executor) == "local"
        return job.command(workflow.base_dir if local else None)
    return command


def _print_commands(the_plan, command, out) -> None:
    """-p on a real run: every pending job and its command, before anything runs."""
    from ..views import command_lines
    n = len(the_plan.pending)
    lines = [f"s3rules: {n} job{'s' if n != 1 else ''} to run:\n"]
    for job in the_plan.pending:
        lines.append(f"  {job.describe()}\n")
        lines.append(command_lines(command(job), "    "))
    out.writelines(lines)
    out.flush()


def execute(workflow, the_plan, storage, args, ledger=None, notes=(), in_flight=None) -> int:
    """Run the pending jobs on the one executor their rules (or --executor) name."""
    from ..executors.base import RunOptions
    from ..executors.registry import executor_class
    from ..progress import make_reporter
    from ..runner import Runner

    kinds = {args.executor or job.rule.settings.executor for job in the_plan.pending}
    if len(kinds) > 1:
        first, *others = sorted(kinds, key=list(EXECUTORS).index)
        raise S3RulesError(f"some pending jobs use executor: {first} and others executor: {', '.join(others)}; "
                           f"one run uses one executor: pass --executor, or run the {first} rules first as targets")
    reporter = make_reporter(args.quiet)
    options = RunOptions(base_dir=workflow.base_dir, state_dir=os.path.join(workflow.base_dir, ".s3rules"),
                         jobs=args.jobs, poll_interval=args.poll_interval, planned_mtimes=the_plan.mtimes,
                         say=reporter.message)
    kind = kinds.pop()
    executor = executor_class(kind).create(options, storage)
    executor.check(list(the_plan.pending))
    for note in [*notes, *executor.notes]:
        reporter.message(f"s3rules: note: {note}")
    history = (_history(workflow, kind, len(the_plan.pending), getattr(args, "argv", sys.argv[1:]))
               if ledger is not None else None)
    if ledger is not None:
        ledger.history = history
    result = Runner(the_plan, executor, storage, reporter, keep_going=args.keep_going, detach=args.detach,
                    ledger=ledger, attached=in_flight, keep_temp=args.keep_temp).run()
    if history is not None:
        history.end(succeeded=len(result.succeeded), failed=len(result.failed), not_run=len(result.not_run),
                    interrupted=result.interrupted, detached=result.detached)
    for note in ledger.notes if ledger is not None else ():
        reporter.message(f"s3rules: note: {note}")
    if result.detached:
        print("\n".join(executor.detached(workflow.path, result.interrupted)), file=sys.stderr)
        return EXIT_OK if args.detach and not result.interrupted else EXIT_INTERRUPTED
    if result.ok:
        if not args.quiet:   # with jobs waiting for a checkpoint, the targets are not all there yet
            removed = len(result.temp_removed)
            print(f"s3rules: {_count(len(result.succeeded))} done"
                  + ("" if the_plan.waiting or the_plan.waiting_rules else "; every requested target exists")
                  + (f"; {removed} temp file{'s' if removed != 1 else ''} removed" if removed else ""),
                  file=sys.stderr)
        return EXIT_OK
    if result.interrupted:
        raise Interrupted(failure_report(result))
    raise JobFailed(failure_report(result))


def _history(workflow, executor: str, pending: int, argv: list[str]):
    """This run's history file (``ledger.history``), begun with what a report says of the run."""
    import shlex

    from .. import __version__
    from ..ledger.history import History, history_dir, workflow_digest
    history = History(history_dir(workflow.base_dir))
    history.begin(argv=shlex.join(["s3rules", *argv]), cwd=os.getcwd(), batchfile=os.path.abspath(workflow.path),
                  batchfile_hash=workflow_digest(workflow), version=__version__,
                  executor=executor, pending=pending)
    return history


def failure_report(result) -> str:
    """What went wrong, job by job; for Ctrl-C, what was stopped, finished and never started."""
    from ..views import display_path

    stopped, failed = [], []   # Ctrl-C's cancelled jobs were stopped, not failed
    for job, outcome in result.failed:
        if result.interrupted and outcome.reason == "cancelled":
            stopped.append(job)
        else:
            failed.append((job, outcome))
    lines = []
    for job, outcome in failed:
        head = f"job failed: rule {job.rule.name} ({_wildcards(job)}): {outcome.reason}"
        if outcome.external_id:
            head += f" [job id {outcome.external_id}]"
        lines.append(head)
        if outcome.log_path:
            lines.append(f"  log: {display_path(outcome.log_path)}")
        lines.extend("  | " + line for line in outcome.log_tail)
    if stopped:
        lines.append("stopped: " + ", ".join(f"{job.rule.name} ({_wildcards(job)})" for job in stopped[:10])
                     + (" ..." if len(stopped) > 10 else ""))
    for paths, what in ((result.removed, "removed outputs written by failed jobs"),
                        (result.restored, "kept the previous outputs of failed jobs")):
        if paths:
            lines.append(f"{what}: " + ", ".join(display_path(p) for p in paths[:5])
                         + (" ..." if len(paths) > 5 else ""))
    if result.interrupted:
        lines.insert(0, f"interrupted: {_count(len(stopped))} stopped, {len(result.succeeded)} finished, "
                        f"{len(result.not_run)} never started" + (f", {len(failed)} failed" if failed else ""))
        return "\n".join(lines)
    blocked = len(result.blocked)
    if blocked:
        lines.append(f"{blocked} job{'s were' if blocked != 1 else ' was'} not run because a job "
                     f"{'they need' if blocked != 1 else 'it needs'} failed")
    unstarted = len(result.not_run) - blocked
    if unstarted:
        lines.append(f"{unstarted} job{'s that need' if unstarted != 1 else ' that needs'} no failed job never started: "
                     "s3rules stops at the first failure; -k (--keep-going) runs them")
    n = len(failed)
    lines.insert(0, f"{_count(n)} failed" if n else "the run did not finish")
    return "\n".join(lines)


def _wildcards(job) -> str:
    return ", ".join(f"{k}={v}" for k, v in job.wildcards.items()) or "-"


def _count(n: int) -> str:
    return f"{n} job{'s' if n != 1 else ''}"
