"""``s3rules clean``: delete the outputs (and, with --logs, the local logs) of the jobs under targets.

Only paths a rule makes are ever deleted: the jobs come from the planner, so a source file is
never among them. Outputs go through ``Storage`` and so may be local paths or any URL; a
directory() output goes whole. Also the temp() outputs of the whole workflow that a run would
have removed (a ``--keep-temp`` run, or one whose readers finished in another run): those that
exist and whose readers are all done, so that deleting them makes nothing pending again.
"""
from __future__ import annotations

import os
import sys

from ..errors import PlanError, S3RulesError
from . import EXIT_FAILED, EXIT_OK


def cmd_clean(args) -> int:
    from ..language.loader import load_workflow
    from ..model import directories_of
    from ..storage import Storage
    from ..views import display_path

    workflow = load_workflow(args.batchfile, dict(args.config), args.configfile)
    storage = Storage()
    the_plan, jobs = _jobs(workflow, storage, args.targets)
    outputs = list(dict.fromkeys(o for job in jobs for o in job.outputs))
    dirs = directories_of(jobs)
    present = storage.exists_many(outputs, directories=dirs)
    doomed = [o for o in outputs if o in present]
    temp, temp_dirs = _spent_temp(workflow, storage, the_plan, args.targets, set(doomed))
    dirs |= temp_dirs
    logs = _logs(workflow, jobs) if args.logs else []
    if not doomed and not temp and not logs:
        print("s3rules: nothing to delete: no output of these jobs exists"
              + (" and they have no local logs" if args.logs else ""), file=sys.stderr)
        return EXIT_OK
    for path in doomed + temp + logs:
        print(f"  {display_path(path)}")
    what = ", ".join(([_count(len(doomed), "output")] if doomed or not temp else [])
                     + ([_count(len(temp), "temp output")] if temp else []))
    what += f" and {_count(len(logs), 'log')}" if args.logs else ""
    if args.dry_run:
        print(f"s3rules: would delete {what} (dry run: nothing deleted)", file=sys.stderr)
        return EXIT_OK
    if not args.yes and not _confirmed(what):
        print("s3rules: nothing deleted", file=sys.stderr)
        return EXIT_FAILED
    for path in doomed + temp + logs:
        storage.remove(path, directory=path in dirs)
    print(f"s3rules: deleted {what}", file=sys.stderr)
    return EXIT_OK


def _jobs(workflow, storage, targets: list[str]) -> tuple:
    """The plan of ``targets`` (default: the first rule) and its jobs, dependents before what
    they need, so that a clean cut short never leaves an output that looks done above a missing one."""
    from ..planner import Planner, plan
    paths = [t for t in targets if t not in workflow.rules]
    for name, found in zip(paths, Planner(workflow).resolve_targets(paths)):
        if isinstance(found, str):
            raise PlanError(f"clean {name}: no rule makes {found}, and s3rules clean deletes only what "
                            "rules make (source files are never deleted)")
    the_plan = plan(workflow, storage, targets, check_sources=False)
    return the_plan, [job for job in reversed(the_plan.jobs) if not job.rule.is_target_list]


def _spent_temp(workflow, storage, the_plan, targets: list[str], doomed: set[str]) -> tuple[list[str], set[str]]:
    """(temp outputs of the whole workflow that exist and that jobs read, every one of those done,
    not already among ``doomed``; which of them are directories). A temp output only a target
    list (``rule all``) reads is a result: it stays, as a run leaves it."""
    from ..planner import plan
    from ..runner import TempFiles
    if not any(rule.temp for rule in workflow.rules.values()):
        return [], set()
    whole = the_plan if not targets or workflow.default_rule is None else \
        plan(workflow, storage, (), check_sources=False)
    temp = TempFiles(whole.jobs)
    spent = [path for path, readers in temp.readers.items() if path not in doomed and
             all(not r.rule.is_target_list and r not in whole.pending for r in readers)]
    present = storage.exists_many(spent, directories=temp.directories)
    return [p for p in spent if p in present], temp.directories


def _logs(workflow, jobs) -> list[str]:
    """The jobs' local log files that exist (``.s3rules/logs/`` beside the Batchfile)."""
    from ..executors.local import log_path_for
    log_dir = os.path.join(workflow.base_dir, ".s3rules", "logs")
    return [p for p in (log_path_for(log_dir, job) for job in jobs) if os.path.isfile(p)]


def _confirmed(what: str) -> bool:
    if not sys.stdin.isatty():
        raise S3RulesError(f"clean would delete {what}; pass -y to delete them without a question "
                           "(there is no terminal to ask on), or -n to only list them")
    answer = input(f"Delete these {what}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
