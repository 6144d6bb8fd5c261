"""The AWS Batch side of the command line: ``run`` on Batch, ``status``, ``logs``, ``cancel``.

Kept apart from ``cli`` so local use never imports boto3. Every command works from the
Batchfile and what S3 and Batch say now: there is no local state to lose or corrupt.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

from ..aws.jobspec import ACTIVE_STATES
from ..errors import PlanError, S3RulesError
from ..executors.batch import BatchExecutor, job_spec


def _service():
    from ..aws.client import BatchService
    return BatchService()


def batch_executor(the_plan, poll_interval: float, storage=None, say=None) -> BatchExecutor:
    from ..aws.submitter import Submitter
    executor = BatchExecutor(Submitter(_service()), poll_start=poll_interval, poll_limit=max(30.0, poll_interval),
                             storage=storage, say=say, planned_mtimes=the_plan.mtimes)
    executor.check(list(the_plan.pending))
    return executor


def report_detached(workflow, executor: BatchExecutor, result, args) -> int:
    sub = executor.submitter
    bf = workflow.path
    lines = [f"s3rules: detached: {sub.submitted} job{'s' if sub.submitted != 1 else ''} submitted, "
             f"{sub.reused} already in flight reused; they run on AWS Batch without s3rules."]
    if result.interrupted:
        lines.append("  (the last submission was cut short by Ctrl-C: if it did not land, running s3rules "
                     "again submits it; if it did, it is reused)")
    if executor.waiting_count:
        n = executor.waiting_count
        lines.append(f"  {n} job{' waits' if n == 1 else 's wait'} for more than 20 unfinished upstream jobs "
                     "and {} not submitted yet: s3rules submits {} when it runs again."
                     .format(*(("is", "it") if n == 1 else ("are", "them"))))
    lines.append(f"  watch:     s3rules status {bf} --watch")
    lines.append(f"  re-attach: s3rules run {bf}   (submits nothing twice)")
    lines.append(f"  cancel:    s3rules cancel {bf}")
    print("\n".join(lines), file=sys.stderr)
    return 0 if args.detach and not result.interrupted else 130


def _load(args):
    from ..language.loader import load_workflow
    from ..planner import plan
    from ..storage import Storage
    workflow = load_workflow(args.batchfile or "Batchfile", dict(args.config))
    the_plan = plan(workflow, Storage(), getattr(args, "targets", []) or [], check_sources=False)
    return workflow, the_plan


def _batch_jobs(jobs):
    return [j for j in jobs if not j.rule.is_target_list and j.rule.settings.executor == "batch"]


def status_table(the_plan, submitter) -> tuple[str, int]:
    """Per rule: done, each in-flight state, not submitted. Returns (text, jobs in flight)."""
    rows: dict[str, Counter] = {}
    for job in the_plan.jobs:
        if job.rule.is_target_list:
            continue
        row = rows.setdefault(job.rule.name, Counter())
        row["total"] += 1
        if job not in the_plan.pending:
            row["done"] += 1
            continue
        if job.rule.settings.executor != "batch":
            row["to do"] += 1
            continue
        summary = submitter.in_flight(job.rule.settings.batch.queue).get(job_spec(job).identity[:16])
        row[summary["status"] if summary else "to do"] += 1
    columns = ["done", *ACTIVE_STATES, "to do", "total"]
    width = max([4] + [len(r) for r in rows])
    out = [f"{'rule':<{width}}  " + "  ".join(f"{c:>9}" for c in columns)]
    total = Counter()
    for rule, row in rows.items():
        total.update(row)
        out.append(f"{rule:<{width}}  " + "  ".join(f"{row[c]:>9}" for c in columns))
    out.append(f"{'total':<{width}}  " + "  ".join(f"{total[c]:>9}" for c in columns))
    return "\n".join(out) + "\n", sum(total[s] for s in ACTIVE_STATES)


def cmd_status(args) -> int:
    from ..aws.submitter import Submitter
    while True:
        workflow, the_plan = _load(args)
        submitter = Submitter(_service())
        text, in_flight = status_table(the_plan, submitter)
        sys.stdout.write(text)
        sys.stdout.flush()
        if not args.watch or in_flight == 0:
            return 0
        time.sleep(args.interval)
        sys.stdout.write("\n")


def cmd_logs(args) -> int:
    from ..language.loader import load_workflow
    from ..planner import Planner
    workflow = load_workflow(args.batchfile, dict(args.config))
    planner = Planner(workflow)
    found = planner.resolve_targets([args.target])
    jobs = [j for j in found if not isinstance(j, str)]
    if not jobs:
        raise PlanError(f"no rule makes {args.target}, so no job has its log")
    from ..aws.submitter import Submitter
    service = _service()
    submitter = Submitter(service)
    for job in jobs:
        spec = job_spec(job)
        job_id = submitter.latest(spec, job.rule.name)
        if not job_id:
            raise S3RulesError(f"no Batch job {spec.name} on queue {spec.queue!r} (Batch lists finished jobs "
                               "for a limited time; s3rules submits it when its target is missing)")
        desc = service.describe([job_id]).get(job_id, {})
        print(f"# {spec.name} {desc.get('jobId', '')} {desc.get('status', '')}", file=sys.stderr)
        for line in service.log_lines(desc):
            print(line)
    return 0


def cmd_cancel(args) -> int:
    from ..aws.submitter import Submitter
    workflow, the_plan = _load(args)
    submitter = Submitter(_service())
    doomed = []
    for job in _batch_jobs(the_plan.jobs):
        spec = job_spec(job)
        summary = submitter.in_flight(spec.queue).get(spec.identity[:16])
        if summary:
            doomed.append((job, summary))
    if not doomed:
        print("s3rules: no job of this workflow is in flight", file=sys.stderr)
        return 0
    for job, summary in doomed:
        print(f"  {summary['jobId']}  {summary.get('status', ''):<9}  {job.describe()}", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise S3RulesError(f"{len(doomed)} jobs would be terminated; confirm with -y (no terminal to ask on)")
        answer = input(f"Terminate these {len(doomed)} jobs? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("s3rules: nothing cancelled", file=sys.stderr)
            return 1
    for job, summary in doomed:
        submitter.service.terminate(summary["jobId"], "cancelled with s3rules cancel")
    print(f"s3rules: terminated {len(doomed)} job{'s' if len(doomed) != 1 else ''}", file=sys.stderr)
    return 0
