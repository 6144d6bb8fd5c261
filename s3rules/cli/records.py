"""The job ledger around ``s3rules run``: which triggers count, what earlier runs left, --touch, --explain,
and which failure kept a job from running (for ``s3rules logs``)."""
from __future__ import annotations

import sys

from ..errors import S3RulesError
from ..ledger import DEFAULT_TRIGGERS, FAILED, Ledger
from ..model import directories_of
from ..settings import EXECUTORS


def triggers(args) -> tuple[str, ...]:
    """--rerun-triggers (default: all but mtime), plus mtime for --rerun-stale."""
    chosen = tuple(args.rerun_triggers) if args.rerun_triggers else DEFAULT_TRIGGERS
    if "none" in chosen:
        if len(chosen) > 1:
            raise S3RulesError("--rerun-triggers none goes alone: it means outputs that exist are done")
        chosen = ()
    if args.rerun_stale and "mtime" not in chosen:
        chosen += ("mtime",)
    return chosen


def settle(jobs: list, ledger: Ledger, storage, running: bool = True) -> tuple[bool, dict]:
    """Jobs an earlier run started and never saw end: ask where they ran what became of them.

    One that succeeded (a Batch job that finished while no s3rules watched) with every output
    present is recorded as finished: True first means the plan must be made again. Batch jobs
    still in flight, unchanged and on their queue, come back second (job -> id): the run watches
    them instead of submitting them again. One still running as a local process (its s3rules
    was killed) stops this run (``running``: not a dry run), which would write the same files.
    """
    placed, states = ask(jobs, ledger)
    orphans = [job for job, (kind, state) in states.items() if kind == "local" and state == "RUNNING"]
    if orphans and running:
        job = orphans[0]
        raise S3RulesError(
            f"job {job.describe()} of an earlier run is still running as process {placed['local'][job]} "
            f"(and {len(orphans) - 1} more), although the s3rules that started it is gone; a new run would write "
            "the same files. Wait for it to end, or stop it with `s3rules cancel`, then run again.")
    records = ledger.lookup(list(states))
    in_flight = {job: placed[kind][job] for job, (kind, state) in states.items()   # the same job, not an older
                 if kind != "local" and state == "RUNNING"                         # version of it
                 and records[job].hashes == ledger.identity.hashes(job)}
    done = [job for job, (_, state) in states.items() if state == "SUCCEEDED"]
    if not done:
        return False, in_flight
    complete, present = _complete(done, storage)
    ledger.finished(complete, present, {job: {"where": f"batch:{placed['batch'][job]}"} for job in complete})
    ledger.close()
    return bool(complete), in_flight


def ended_unwatched(jobs: list, ledger: Ledger, storage) -> tuple[list, list]:
    """Of jobs an earlier run started and never saw end, (those that succeeded meanwhile with
    every output present: what ``settle`` would record as finished, those their executor says
    failed). ``status`` and ``report`` count them so; they write nothing."""
    _, states = ask(jobs, ledger)
    failed = [job for job, (_, state) in states.items() if state == "FAILED"]
    return _complete([job for job, (_, state) in states.items() if state == "SUCCEEDED"], storage)[0], failed


def ask(jobs: list, ledger: Ledger) -> tuple[dict[str, dict], dict]:
    """Where jobs an earlier run started ran (kind -> {job: id}, looked for where the ledger has no
    id) and what their executor says became of them (job -> (kind, "SUCCEEDED" | "FAILED" |
    "RUNNING"); a job left out is unknown). Reads only."""
    from ..executors.registry import executor_class

    known = ledger.where(jobs)
    placed = _by_kind(known, EXECUTORS)
    for kind, found in _find_unplaced([job for job in jobs if job not in known]).items():
        placed.setdefault(kind, {}).update(found)
    states = {}
    for kind, ids in placed.items():
        try:
            states.update({job: (kind, state) for job, state in executor_class(kind).settle(ids).items()})
        except S3RulesError as exc:   # AWS unreachable: the jobs stay incomplete and run again
            print(f"s3rules: note: cannot ask {kind} what became of {len(ids)} interrupted jobs ({exc}); "
                  "they count as incomplete", file=sys.stderr)
    return placed, states


def _by_kind(where: dict, kinds) -> dict[str, dict]:
    """Job -> "kind:id", as records say where jobs ran, grouped: kind -> {job: id}, of ``kinds`` only."""
    placed: dict[str, dict] = {}
    for job, at in where.items():
        kind, _, ident = at.partition(":")
        if kind in kinds and ident:
            placed.setdefault(kind, {})[job] = ident
    return placed


def _complete(jobs: list, storage) -> tuple[list, dict]:
    """The jobs whose every output exists now (looked at afresh: a plan may have looked before
    they ended), and the outputs' mtimes."""
    if not jobs:
        return [], {}
    outputs = [o for job in jobs for o in job.outputs]
    storage.invalidate(outputs)
    present = storage.stat_many(outputs, directories=directories_of(jobs))
    return [job for job in jobs if all(o in present for o in job.outputs)], present


def _find_unplaced(jobs: list) -> dict[str, dict]:
    """Started jobs whose id was never recorded (their run stopped mid-submission), looked for
    where their rules run: kind -> {job: id}."""
    from ..executors.registry import executor_class

    by_kind: dict[str, list] = {}
    for job in jobs:
        by_kind.setdefault(job.settings.executor, []).append(job)
    out = {}
    for kind, group in by_kind.items():
        try:
            out[kind] = executor_class(kind).find(group)
        except S3RulesError as exc:   # AWS unreachable: they stay incomplete and run again
            print(f"s3rules: note: cannot look for {len(group)} interrupted jobs ({exc}); they count as "
                  "incomplete", file=sys.stderr)
    return out


def stopped_by(job, the_plan, ledger: Ledger, judges: dict | None = None, limit: int = 3) -> list[tuple]:
    """The failed jobs below ``job`` that kept it from running, nearest first: (job, how it failed).

    Only pending jobs below are looked at. One that ran and failed is what stopped it; one that
    never ran (never started, or failed before it started) is looked through, to what stopped
    that. Where a job ran, that executor's word (``judges``: kind -> ids -> {id: (failed, ran,
    how)}) comes first, the job's last record next.
    """
    judges = judges or {}
    found, seen = [], set()
    layer = [dep for dep in job.deps if dep in the_plan.pending]
    while layer and len(found) < limit:
        seen.update(layer)
        records = ledger.lookup(layer)
        placed = _by_kind({dep: rec.where for dep, rec in records.items()}, judges)
        said = {dep: answer for kind, ids in placed.items() for dep, answer in _judged(judges[kind], ids).items()}
        below = []
        for dep in layer:
            failed, ran, how = said.get(dep) or _recorded_failure(dep, records.get(dep), ledger)
            if failed and ran:
                found.append((dep, how))
            elif failed:
                below += [d for d in dep.deps if d in the_plan.pending and d not in seen]
        layer = list(dict.fromkeys(below))
    return found[:limit]


def _judged(judge, ids: dict) -> dict:
    """{job: id} -> {job: what ``judge`` says of that id}, one call for them all."""
    answers = judge(set(ids.values()))
    return {job: answers[ident] for job, ident in ids.items() if ident in answers}


def _recorded_failure(job, rec, ledger: Ledger) -> tuple[bool, bool, str]:
    """(failed, ran, how) as the job's last record says: no record, it never started; one that
    started and never ended tells nothing; a failure ran unless it never got anywhere to run or
    its run says something it needs failed."""
    if rec is None:
        return True, False, ""
    if rec.state != FAILED:
        return False, False, ""
    body = ledger.body(job) or {}
    return True, bool(rec.where) and not body.get("upstream_failed"), body.get("reason") or "failed"


def failed_jobs(jobs: list, the_plan, ledger: Ledger) -> set:
    """Pending jobs whose last record says they failed."""
    records = ledger.lookup([j for j in jobs if j in the_plan.pending])
    return {job for job, rec in records.items() if rec.state == FAILED}


def causes_line(failed, ledger: Ledger, limit: int = 100) -> str:
    """``failed by cause: out of memory 2, application error 1``, from the records of at most
    ``limit`` failed jobs (one read each), or the cause ``failed`` maps a job to where Batch
    told it; empty when none names a cause."""
    from collections import Counter
    told = failed if isinstance(failed, dict) else {}
    counts = Counter(cause for job in sorted(failed, key=lambda j: j.outputs)[:limit]
                     if (cause := told.get(job) or (ledger.body(job) or {}).get("cause")))
    if not counts:
        return ""
    shown = ", ".join(f"{cause} {n}" for cause, n in counts.most_common())
    return f"\nfailed by cause: {shown}" + (f" (of the first {limit} failed jobs)" if len(failed) > limit else "") + "\n"


def touch(the_plan, ledger: Ledger, storage, quiet: bool) -> None:
    """--touch: jobs whose outputs all exist are recorded as done, as they are today."""
    jobs = [job for job in the_plan.jobs if job.outputs]
    present = storage.stat_many([o for job in jobs for o in job.outputs], directories=directories_of(jobs))
    complete = [job for job in jobs if all(o in present for o in job.outputs)]
    ledger.finished(complete, present, {job: {"where": "touch"} for job in complete})
    ledger.close()
    if not quiet:
        left = len(jobs) - len(complete)
        print(f"s3rules: recorded {len(complete)} job{'s' if len(complete) != 1 else ''} as done with today's "
              "commands, inputs and resources" + (f"; {left} with missing outputs left as they are" if left else ""),
              file=sys.stderr)


def explain(the_plan, ledger: Ledger, out, limit: int = 20) -> None:
    """--explain: under each changed job, a short diff of its record and today's job."""
    changed = [(job, why) for job, why in the_plan.pending.items() if why.startswith("changed")]
    if not changed:
        return
    out.write("\nwhat changed:\n")
    for job, why in changed[:limit]:
        out.write(f"  {job.describe()} ({why})\n")
        out.writelines(f"      {line}\n" for line in ledger.explain(job))
    if len(changed) > limit:
        out.write(f"  ... and {len(changed) - limit} more\n")


def interrupted_note(the_plan, out) -> None:
    """-n: say that the last run was interrupted, and what that means."""
    n = len(the_plan.interrupted)
    if n:
        out.write(f"\nthe last run was interrupted: {n} job{'s' if n != 1 else ''} started and never finished, so "
                  "their outputs do not count as done (reason: incomplete)\n")
