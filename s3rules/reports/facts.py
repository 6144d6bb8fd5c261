"""Each job of a workflow as a report shows it: its state now, and how it last ran.

The plan says which jobs are done; the ledger says which failed or were left running; the runs'
history (``ledger.history``) says when each job waited, ran and ended, what it used and why it
failed. Batch jobs whose times no run saw (they ended while s3rules was away) are asked of
Batch, 100 per DescribeJobs call, as long as Batch still knows them.
"""
from __future__ import annotations

from collections import Counter

from ..ledger import FAILED, STARTED
from ..ledger.history import of_workflow, usage_hours

#: a job's state in a report: its outputs are complete, its last run failed, it started and
#: never finished (running, or interrupted), or nothing ran it yet
DONE, FAILED_STATE, STARTED_STATE, TO_DO = "done", "failed", "started", "to do"
MAX_LOG_TAILS = 200   # failures no run saw whose log tails a report fetches (the page lists 200)


def job_facts(the_plan, ledger, batch=None,
              settled=frozenset(), failed=frozenset()) -> tuple[list[dict], list[dict], dict]:
    """(one dict per job of the plan that runs something, every run of this Batchfile oldest
    first, what every job line of every run took: ``history.Past.spent``). ``batch``: a
    ``BatchService``, asked for the times (and a failure's log tail) no run recorded;
    ``settled``: jobs that count as done though the plan has them pending, ``failed`` jobs that
    count as failed though their record says they started (see ``report``)."""
    workflow = the_plan.workflow
    runs, history, spent = of_workflow(workflow)
    jobs = [job for job in the_plan.jobs if not job.rule.is_target_list]
    records = ledger.lookup(jobs)
    relative = ledger.identity.relative
    facts, prices, unknown = [], [], {}
    for job in jobs:
        rec = records.get(job)
        key = ledger.history_key(job)
        line = history.get(key, {})
        if job not in the_plan.pending or job in settled:
            state = DONE
        elif (rec is not None and rec.state == FAILED) or job in failed:
            state = FAILED_STATE
        elif rec is not None and rec.state == STARTED:
            state = STARTED_STATE
        else:
            state = TO_DO
        s = job.settings
        fact = {"rule": job.rule.name, "wildcards": job.wildcards, "output": key, "state": state,
                "where": (rec.where if rec is not None else "") or line.get("where", ""),
                "vcpus": s.vcpus, "memory": s.memory, "executor": s.executor}
        prices.append((s.price_vcpu_hour, s.price_gib_hour))
        if line and (rec is None or abs(line.get("time", 0) - rec.time) < 1 or state == FAILED_STATE):
            fact.update((k, line[k]) for k in ("exit", "reason", "cause", "log_tail", "upstream_failed",
                                               "restored") if k in line)
            if line.get("log"):
                fact["log"] = relative(line["log"])
            fact.update(line.get("usage", {}))
            fact["run"] = line.get("run")
        if fact["where"].startswith("batch:") and "started" not in fact and state != TO_DO:
            unknown.setdefault(fact["where"][6:], []).append(fact)
        facts.append(fact)
    if unknown and batch is not None:
        _ask_batch(unknown, batch)
    for fact, price in zip(facts, prices):
        _durations(fact, *price)
    return facts, runs, spent


def _ask_batch(unknown: dict[str, list[dict]], batch) -> None:
    """Batch's times, and a failure's exit code, reason, cause and log tail (for at most
    ``MAX_LOG_TAILS`` failures: one CloudWatch call each), for jobs whose run no s3rules saw."""
    from ..aws.failures import cause   # no boto3: functions of a dict
    from ..aws.naming import batch_id, pack_place
    from ..aws.service import usage_of
    packs = Counter(batch_id(job_id) for job_id in unknown if pack_place(job_id) is not None)
    tails = MAX_LOG_TAILS
    for job_id, desc in batch.describe(list(unknown)).items():
        for fact in unknown.get(job_id, ()):
            fact.update(usage_of(desc))
            if pack_place(job_id) is not None:   # a pack's members no run saw end share its time too
                fact["packed"] = packs[batch_id(job_id)]
            if fact["state"] != FAILED_STATE:
                continue
            container = desc.get("container") or {}
            if "exit" not in fact and container.get("exitCode") is not None:
                fact["exit"] = container["exitCode"]
            fact["reason"] = fact.get("reason") or desc.get("statusReason") or container.get("reason") or ""
            fact["cause"] = fact.get("cause") or cause(desc)
            if not fact.get("log_tail") and tails > 0:
                tails -= 1
                fact["log_tail"] = batch.log_lines(desc, last=15)


def _durations(fact: dict, price_vcpu_hour: float, price_gib_hour: float) -> None:
    """Queue wait and run time in seconds (``history.usage_hours``: the jobs of a pack share its
    time evenly), and what the run cost at the job's prices."""
    queued, started = fact.get("queued"), fact.get("started")
    if started is not None and queued is not None:
        fact["wait"] = round(max(0.0, started - queued), 3)
    figures = usage_hours(fact["vcpus"], fact["memory"], fact)
    if figures is not None:
        fact["runtime"] = round(figures[0], 3)
        fact["vcpu_hours"], fact["gib_hours"] = figures[1], figures[2]
        fact["cost"] = figures[1] * price_vcpu_hour + figures[2] * price_gib_hour
