"""The command line's words: one argparse parser per command, options anywhere."""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import S3RulesError
from ..settings import EXECUTORS

BATCHFILE = "Batchfile"
BATCHFILE_SUFFIXES = (".Batchfile", ".batchfile")
WHICH_BATCHFILE = (
    "The Batchfile is FILE with -s FILE. Without -s, the first positional is the Batchfile when "
    "its file name is Batchfile or ends in .Batchfile or .batchfile, or when there is no "
    "./Batchfile and it is an existing file; otherwise the Batchfile is ./Batchfile and every "
    "positional is a target. A target path is relative to the current directory, as s3rules "
    "prints paths; when no rule makes that path, it is read relative to the Batchfile's directory.")


def _config_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _port(text: str) -> int:
    if not text.isdecimal() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not n > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return n


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
                                     "(default: the first rule). " + WHICH_BATCHFILE)
    _run_arguments(run)

    _status_commands(sub)

    logs = sub.add_parser("logs", help="print the log of the job making TARGET (its local log file, or CloudWatch)",
                          description="Print the log of the job that makes TARGET, one output path of the job: "
                                      "its local log file, or its CloudWatch log on AWS Batch. " + WHICH_BATCHFILE)
    _workflow_arguments(logs, what="TARGET")

    cancel = sub.add_parser("cancel", help="stop this workflow's jobs running here or in flight on AWS Batch",
                            description="Stop this workflow's jobs still running here (local processes, even "
                                        "those a killed run left) or in flight on AWS Batch, after "
                                        "confirmation. " + WHICH_BATCHFILE)
    _workflow_arguments(cancel)
    cancel.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    clean = sub.add_parser("clean", help="delete the outputs of the jobs under the targets",
                           description="Delete the existing outputs of every job under the given targets or "
                                       "rules (default: the first rule), after listing them and asking. "
                                       "Source files, which no rule makes, are never deleted. " + WHICH_BATCHFILE)
    _workflow_arguments(clean)
    clean.add_argument("-n", "--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    clean.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    clean.add_argument("--logs", action="store_true",
                       help="also delete the jobs' local log files (.s3rules/logs/ beside the Batchfile)")
    return parser, dict(sub.choices)


def _status_commands(sub) -> None:
    """status, dashboard and report: what the jobs of one workflow or several are doing or did."""
    status = sub.add_parser("status", help="what is done, running (on AWS Batch: by state), failed and still to do",
                            description="Show each rule's jobs: done, running here or in flight on AWS Batch "
                                        "by state, failed, incomplete, or to do. Submits nothing. "
                                        "Given two or more Batchfiles (each named Batchfile or *.Batchfile), or "
                                        "--workflows FILE, a row per workflow with its cost so far. "
                                        + WHICH_BATCHFILE)
    _workflow_arguments(status)
    status.add_argument("--watch", action="store_true", help="refresh until nothing is running or in flight")
    status.add_argument("--interval", type=_seconds, default=10.0, metavar="SECONDS",
                        help="with --watch: seconds between refreshes (default: 10)")
    _many_arguments(status)
    status.add_argument("-v", "--verbose", action="store_true",
                        help="with several workflows: each one's rules below the table")

    dashboard = sub.add_parser("dashboard", help="a live, read-only web page of the status of workflows",
                               description="Serve a page on 127.0.0.1 that shows what `status` shows for each "
                                           "Batchfile given (default: ./Batchfile), refreshing itself, with "
                                           "each workflow's report one click away. Read-only: it runs and "
                                           "stops nothing.")
    _workflow_arguments(dashboard, what="BATCHFILE")
    _many_arguments(dashboard)
    dashboard.add_argument("--port", type=_port, default=8765, help="the port to listen on (default: 8765; 0: any "
                                                                  "free port)")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="the address to listen on (default: 127.0.0.1, this machine only; the page "
                                "shows paths and log tails, so think before opening it to a network)")
    dashboard.add_argument("--interval", type=_seconds, default=10.0, metavar="SECONDS",
                           help="seconds between refreshes of the statuses (default: 10)")

    report = sub.add_parser("report", help="an HTML report of the jobs: timeline, runtimes, cost, failures",
                            description="Write one self-contained HTML page of the jobs under the targets or "
                                        "rules (default: the first rule): what is done, failed and to do, a "
                                        "timeline, runtimes and resources per rule, cost, failures with their "
                                        "log tails, and the runs. Runs nothing. " + WHICH_BATCHFILE)
    _workflow_arguments(report)
    report.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="where to write it (default: report.html; with --json: stdout)")
    report.add_argument("--json", action="store_true", help="the same data as one JSON document, every job included")


TRIGGER_WORDS = ("command", "params", "input", "resources", "mtime", "none")


def _run_arguments(run: argparse.ArgumentParser) -> None:
    _workflow_arguments(run)
    run.add_argument("-p", "--print-commands", action="store_true",
                     help="print each pending job's command (with -n: under the job; else before running)")
    run.add_argument("-n", "--dry-run", action="store_true", help="show what is pending and why; run nothing")
    run.add_argument("--json", action="store_true", help="with -n: print the plan as one JSON document")
    run.add_argument("-f", "--force", action="append", default=[], metavar="TARGET",
                     help="rerun the job making TARGET even if it exists (repeatable)")
    run.add_argument("-R", "--forcerun", action="append", default=[], metavar="RULE",
                     help="rerun every job of RULE (repeatable)")
    run.add_argument("-F", "--forceall", action="store_true", help="rerun every job")
    run.add_argument("--rerun-stale", action="store_true",
                     help="also rerun jobs whose outputs are older than an input (Make's rule; the same "
                          "as adding mtime to --rerun-triggers)")
    run.add_argument("--rerun-triggers", nargs="+", choices=TRIGGER_WORDS, default=None, metavar="TRIGGER",
                     help="which differences from a job's record rerun it: any of command params input "
                          "resources mtime, or none (default: command params input resources)")
    run.add_argument("--explain", action="store_true",
                     help="with -n: under each changed job, what changed since it last ran")
    run.add_argument("--touch", action="store_true",
                     help="record every job whose outputs exist as done with today's command, inputs and "
                          "resources, and run nothing")
    run.add_argument("--nolock", action="store_true",
                     help="do not lock the workspace (for experts: two runs may then write the same outputs)")
    run.add_argument("--until", action="append", default=[], metavar="TARGET|RULE",
                     help="run only what these targets or rules need, and stop there")
    run.add_argument("-j", "--jobs", type=_positive, default=None,
                     help="parallel local jobs (default: number of cores)")
    run.add_argument("--keep-temp", action="store_true",
                     help="keep temp() outputs after the jobs that need them have finished")
    run.add_argument("-k", "--keep-going", action="store_true",
                     help="after a failure, carry on with the jobs that do not depend on it")
    run.add_argument("--executor", choices=tuple(EXECUTORS), default=None,
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


def _many_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workflows", default=None, metavar="FILE",
                   help="a file listing Batchfiles, one path per line (relative to that file; # comments)")


def _workflow_arguments(p: argparse.ArgumentParser, what: str = "TARGET|RULE") -> None:
    p.add_argument("words", nargs="*", metavar=what,
                   help={"TARGET": "an output path of the job; it may be preceded by the Batchfile (see above)",
                         "BATCHFILE": "the Batchfiles of the workflows to show (default: ./Batchfile)"}.get(
                       what, "output paths (relative to the current directory) or rule names; the first may "
                             "be the Batchfile (see above)"))
    p.add_argument("-s", "--batchfile", default=None, metavar="FILE",
                   help="the Batchfile (default: the first positional if it names one, else ./Batchfile)")
    p.add_argument("--config", action="append", default=[], type=_config_pair, metavar="KEY=VALUE",
                   help="override a Batchfile or config-file variable (repeatable; a list takes a,b,c)")
    p.add_argument("--configfile", default=None, metavar="FILE",
                   help="a YAML or JSON config file, in place of the Batchfile's configfile:")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, commands = build_parser()
    if not argv or argv[0] not in commands:
        return parser.parse_args(argv)  # prints help, the version, or a usage error
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command, args.argv = argv[0], argv   # argv: what a run's history says it was run with
    return args


def names_a_batchfile(word: str) -> bool:
    """The rule for a first positional without -s (``WHICH_BATCHFILE`` says it to users)."""
    name = os.path.basename(word)
    if name == BATCHFILE or name.endswith(BATCHFILE_SUFFIXES):
        return True
    return not os.path.isfile(BATCHFILE) and os.path.isfile(word)


def locate_batchfile(args: argparse.Namespace) -> None:
    """Split the positionals into ``args.batchfile`` and ``args.targets`` (``args.target`` for logs)."""
    words = list(args.words)
    if args.batchfile is None:
        if words and names_a_batchfile(words[0]):
            args.batchfile = words.pop(0)
        elif os.path.isfile(BATCHFILE):
            args.batchfile = BATCHFILE
        else:
            first = f", and {words[0]!r} is not a Batchfile" if words else ""
            raise S3RulesError(
                f"no such Batchfile: there is no ./Batchfile in {os.getcwd()}{first}; run s3rules in the "
                "directory that holds the Batchfile, or name it with -s FILE (or as the first argument)")
    args.targets = words
    if args.command == "logs":
        if len(words) != 1:
            raise S3RulesError(f"logs takes one TARGET, an output path of the job whose log to print "
                               f"(got {len(words)}: {' '.join(words) or 'none'})")
        args.target = words[0]
