"""``s3rules status``, ``logs`` and ``cancel``: what is on AWS Batch for a workflow.

Kept apart from ``run`` so local use never imports boto3. Every command works from the
Batchfile and what S3 and Batch say now: there is no local state to lose or corrupt.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

from ..aws.jobspec import ACTIVE_STATES, job_spec
from ..errors import PlanError, S3RulesError
from . import EXIT_FAILED, EXIT_OK


def _service():
    from ..aws.service import BatchService
    return BatchService()


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
        summary = submitter.in_flight_summary(job_spec(job))
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
            return EXIT_OK
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
    return EXIT_OK


def cmd_cancel(args) -> int:
    from ..aws.submitter import Submitter
    workflow, the_plan = _load(args)
    submitter = Submitter(_service())
    doomed = []
    for job in _batch_jobs(the_plan.jobs):
        summary = submitter.in_flight_summary(job_spec(job))
        if summary:
            doomed.append((job, summary))
    if not doomed:
        print("s3rules: no job of this workflow is in flight", file=sys.stderr)
        return EXIT_OK
    for job, summary in doomed:
        print(f"  {summary['jobId']}  {summary.get('status', ''):<9}  {job.describe()}", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise S3RulesError(f"{len(doomed)} jobs would be terminated; confirm with -y (no terminal to ask on)")
        answer = input(f"Terminate these {len(doomed)} jobs? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("s3rules: nothing cancelled", file=sys.stderr)
            return EXIT_FAILED
    for job, summary in doomed:
        submitter.service.terminate(summary["jobId"], "cancelled with s3rules cancel")
    print(f"s3rules: terminated {len(doomed)} job{'s' if len(doomed) != 1 else ''}", file=sys.stderr)
    return EXIT_OK
