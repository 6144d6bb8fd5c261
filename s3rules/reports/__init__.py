"""What a workflow's runs did, shown after the fact or live: ``s3rules report`` and ``dashboard``.

:mod:`.facts` gathers each job's state and how it last ran (plan, ledger, the runs' history,
DescribeJobs); :mod:`.document` aggregates them into the report's data (``--json``);
:mod:`.page` draws it as one self-contained HTML page; :mod:`.dashboard` serves the status of
several workflows, and their reports, on loopback.
"""
from __future__ import annotations

import sys

from ..errors import S3RulesError

SPOT = frozenset({"SPOT", "FARGATE_SPOT"})


def report(workflow, the_plan, ledger, version: str, service=None, with_jobs: bool = True,
           settled: set = frozenset(), unwatched_failures: set = frozenset()) -> dict:
    """The report document of a planned workflow (``document.build``). ``service``: a
    ``BatchService`` for the times of Batch jobs no run saw end, and which queues are Spot; made
    here when a rule runs on Batch. ``version``: the s3rules that writes the report. ``settled``:
    jobs no run saw end that Batch says succeeded, every output there (done, as ``status`` says);
    ``unwatched_failures``: those Batch says failed. When Batch cannot be asked, the report says what the ledger
    and the history know, after a note."""
    from ..ledger.history import workflow_digest
    from .document import build
    from .facts import job_facts

    batch_rules = [r for r in workflow.rules.values() if r.settings.executor == "batch" and not r.is_target_list]
    batch, spot = None, {}
    if batch_rules:
        try:
            if service is None:
                from ..aws.service import BatchService
                service = BatchService()
            batch = service
            for rule in batch_rules:
                queue = rule.settings.batch.queue
                spot[rule.name] = bool(queue and SPOT & service.capacity_types(queue))
        except S3RulesError as exc:
            print(f"s3rules: note: cannot ask AWS Batch ({exc}); the report shows what the job ledger knows",
                  file=sys.stderr)
            batch = None
    try:
        facts, runs, spent = job_facts(the_plan, ledger, batch, settled, unwatched_failures)
    except S3RulesError as exc:
        print(f"s3rules: note: cannot ask AWS Batch for job times ({exc}); the report shows what the job "
              "ledger knows", file=sys.stderr)
        facts, runs, spent = job_facts(the_plan, ledger, None, settled, unwatched_failures)
    return build(workflow, facts, runs, workflow_digest(workflow), version, spot, with_jobs,
                 spent)
