"""The ``s3rules`` command. The only module that prints errors and chooses exit codes.

Exit status: 0 every requested target exists afterwards; 1 a job failed (or a run was
interrupted); 2 a usage, Batchfile, sample-sheet or setup error; 130 interrupted by Ctrl-C.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

from .. import __version__
from ..errors import JobFailed, S3RulesError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _config_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser (for --help) and one parser per command.

    Commands are parsed on their own with ``parse_intermixed_args`` so options may come before
    or after positionals (argparse cannot intermix through subparsers).
    """
    parser = argparse.ArgumentParser(
        prog="s3rules", description="Make-style rules over S3 targets, filled from a sample sheet; "
                                    "runs only what is missing, locally or on AWS Batch.")
    parser.add_argument("--version", action="version", version=f"s3rules {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run what is pending (or show it with -n)",
                         description="Run the jobs whose outputs are missing for the given targets or rules "
                                     "(default: the first rule). With no positional argument the Batchfile "
                                     "is ./Batchfile.")
    run.add_argument("batchfile", nargs="?", default=None, metavar="BATCHFILE")
    run.add_argument("targets", nargs="*", metavar="TARGET|RULE",
                     help="output paths (relative to the Batchfile's directory) or rule names")
    run.add_argument("-n", "--dry-run", action="store_true", help="show what is pending and why; run nothing")
    run.add_argument("--json", action="store_true", help="with -n: print the plan as one JSON document")
    run.add_argument("-f", "--force", action="append", default=[], metavar="TARGET",
                     help="rerun the job making TARGET even if it exists (repeatable)")
    run.add_argument("-R", "--forcerun", action="append", default=[], metavar="RULE",
                     help="rerun every job of RULE (repeatable)")
    run.add_argument("-F", "--forceall", action="store_true", help="rerun every job")
    run.add_argument("--rerun-stale", action="store_true",
                     help="also rerun jobs whose outputs are older than an input (Make's rule)")
    run.add_argument("--until", action="append", default=[], metavar="TARGET|RULE",
                     help="run only what these targets or rules need, and stop there")
    run.add_argument("-j", "--jobs", type=_positive, default=None,
                     help="parallel local jobs (default: number of cores)")
    run.add_argument("-k", "--keep-going", action="store_true",
                     help="after a failure, carry on with the jobs that do not depend on it")
    run.add_argument("--config", action="append", default=[], type=_config_pair, metavar="KEY=VALUE",
                     help="override a Batchfile variable (repeatable)")
    run.add_argument("--executor", choices=("local", "batch"), default=None,
                     help="where jobs run (default: the Batchfile's `executor:`, else local)")
    run.add_argument("--dag", action="store_true", help="print the job graph in Graphviz DOT and exit")
    run.add_argument("--rulegraph", action="store_true", help="print the rule graph in Graphviz DOT and exit")
    run.add_argument("--list", action="store_true", help="list rules with their inputs and outputs and exit")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output (with -n: the table only)")
    run.add_argument("--detach", action="store_true",
                     help="on AWS Batch: submit everything and exit; jobs run on without s3rules")
    run.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS",
                     help="first interval between Batch status checks; it backs off to 30 s while "
                          "nothing changes (default: 2)")

    status = sub.add_parser("status", help="what is done, in flight on AWS Batch, and still to do",
                            description="Show each rule's jobs: done (outputs exist), in flight on AWS Batch "
                                        "by state, or not submitted. Submits nothing.")
    _workflow_arguments(status)
    status.add_argument("--watch", action="store_true", help="refresh until nothing is in flight")
    status.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                        help="with --watch: seconds between refreshes (default: 10)")

    logs = sub.add_parser("logs", help="print the CloudWatch log of the Batch job making TARGET")
    logs.add_argument("batchfile", metavar="BATCHFILE")
    logs.add_argument("target", metavar="TARGET", help="an output path of the job, relative to the Batchfile")
    logs.add_argument("--config", action="append", default=[], type=_config_pair, metavar="KEY=VALUE")

    cancel = sub.add_parser("cancel", help="terminate this workflow's jobs still in flight on AWS Batch")
    _workflow_arguments(cancel)
    cancel.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return parser, dict(sub.choices)


def _workflow_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("batchfile", nargs="?", default=None, metavar="BATCHFILE")
    p.add_argument("targets", nargs="*", metavar="TARGET|RULE")
    p.add_argument("--config", action="append", default=[], type=_config_pair, metavar="KEY=VALUE")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, commands = build_parser()
    if not argv or argv[0] not in commands:
        return parser.parse_args(argv)  # prints help, the version, or a usage error
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        from . import batch as batchcli
        return getattr(batchcli, f"cmd_{args.command}")(args)
    except JobFailed as exc:
        print(f"s3rules: {exc}", file=sys.stderr)
        return exc.exit_code
    except S3RulesError as exc:
        print(f"s3rules: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("s3rules: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK
    return EXIT_OK


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
    from .. import views
    from ..language.loader import load_workflow
    from ..planner import plan
    from ..storage import Storage

    batchfile = args.batchfile or "Batchfile"
    workflow = load_workflow(batchfile, dict(args.config))
    out = sys.stdout
    if args.list:
        views.rule_list(workflow, out)
        return EXIT_OK
    storage = Storage()
    the_plan = plan(workflow, storage, args.targets, force=args.force, forcerun=args.forcerun,
                    forceall=args.forceall, until=args.until, rerun_stale=args.rerun_stale)
    if args.dag:
        views.dag_dot(the_plan, out)
        return EXIT_OK
    if args.rulegraph:
        views.rulegraph_dot(the_plan, out)
        return EXIT_OK
    if args.dry_run:
        if args.json:
            views.write_json(views.plan_json(the_plan), out)
        else:
            views.plan_table(the_plan, out, list_jobs=not args.quiet)
        return EXIT_OK
    if args.json:
        raise S3RulesError("--json goes with -n/--dry-run")
    if not the_plan.pending:
        if not args.quiet:
            print("s3rules: nothing to do: every requested target exists", file=sys.stderr)
        return EXIT_OK
    if collecting:
        gc.enable()
    return execute(workflow, the_plan, storage, args)


def execute(workflow, the_plan, storage, args) -> int:
    from ..executors.local import LocalExecutor
    from ..progress import make_reporter
    from ..runner import Runner

    kinds = {args.executor or job.rule.settings.executor for job in the_plan.pending}
    if len(kinds) > 1:
        raise S3RulesError("some pending jobs use executor: local and others executor: batch; one run uses "
                           "one executor: pass --executor, or run the local rules first as targets")
    reporter = make_reporter(args.quiet)
    if kinds == {"batch"}:
        from .batch import batch_executor, report_detached
        executor = batch_executor(the_plan, args.poll_interval, storage, reporter.message)
        runner = Runner(the_plan, executor, storage, reporter, keep_going=True, detach=args.detach)
        result = runner.run()
        if result.detached:
            return report_detached(workflow, executor, result, args)
    else:
        state_dir = os.path.join(workflow.base_dir, ".s3rules")
        executor = LocalExecutor(workflow.base_dir, os.path.join(state_dir, "logs"), args.jobs)
        for note in executor.notes:
            reporter.message(f"s3rules: note: {note}")
        result = Runner(the_plan, executor, storage, reporter, keep_going=args.keep_going).run()
    if result.ok:
        if not args.quiet:
            n = len(result.succeeded)
            print(f"s3rules: {n} job{'s' if n != 1 else ''} done; every requested target exists",
                  file=sys.stderr)
        return EXIT_OK
    raise JobFailed(failure_report(result))


def failure_report(result) -> str:
    from ..views import display_path

    lines = []
    if result.interrupted:
        lines.append("interrupted; running jobs were stopped.")
    for job, outcome in result.failed:
        wildcards = ", ".join(f"{k}={v}" for k, v in job.wildcards.items()) or "-"
        head = f"job failed: rule {job.rule.name} ({wildcards}): {outcome.reason}"
        if outcome.external_id:
            head += f" [job id {outcome.external_id}]"
        lines.append(head)
        if outcome.log_path:
            lines.append(f"  log: {display_path(outcome.log_path)}")
        lines.extend("  | " + line for line in outcome.log_tail)
    if result.removed:
        lines.append("removed outputs written by failed jobs: "
                     + ", ".join(display_path(p) for p in result.removed[:5])
                     + (" ..." if len(result.removed) > 5 else ""))
    if result.not_run:
        lines.append(f"{len(result.not_run)} job{'s were' if len(result.not_run) != 1 else ' was'} not run "
                     "because a job they need failed")
    n = len(result.failed)
    lines.insert(0, f"{n} job{'s' if n != 1 else ''} failed" if n else "the run did not finish")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
