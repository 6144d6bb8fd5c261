"""``s3rules logs`` and ``cancel``, and what ``status`` shares with them: a workflow's jobs, wherever they run.

Local jobs (``executor: local``) are looked up in the job ledger (``.s3rules/`` beside the
Batchfile), their log files and the process table; Batch jobs on AWS Batch, and in the ledger
only when an earlier run started them and never saw them end (they may be in flight). boto3 is
imported only when some job in question runs on Batch, so a local workflow needs no AWS set-up.
Nothing here writes: the Batchfile, the outputs, the ledger and Batch say everything, so these
commands keep no state of their own to lose or corrupt.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from ..errors import JobFailed, PlanError, S3RulesError
from . import EXIT_FAILED, EXIT_OK

#: how long ``cancel`` lets a local job's processes end after SIGTERM before it sends SIGKILL
STOP_GRACE = 5.0


def _service():
    from ..aws.service import BatchService
    return BatchService()


def _submitter():
    from ..aws.submitter import Submitter
    return Submitter(_service())


def _on_batch(job) -> bool:
    return job.settings.executor == "batch"


def _state_dir(workflow) -> str:
    return os.path.join(workflow.base_dir, ".s3rules")


class _StatusRecords:
    """The ledger as the planner sees it here: every verdict on local jobs; on Batch jobs only
    "incomplete", for those an earlier run started and never saw end. So a forced rerun's jobs in
    flight are asked of Batch instead of counted done by their old outputs; a changed Batch job is
    counted from S3 and Batch alone, as it always was."""

    def __init__(self, ledger):
        self.ledger, self.identity = ledger, ledger.identity

    def verdicts(self, jobs, triggers):
        from ..planner import INCOMPLETE
        local, batch = [], []
        for job in jobs:
            (batch if _on_batch(job) else local).append(job)
        out = self.ledger.verdicts(local, triggers)
        out.update(dict.fromkeys(self.ledger.left_open(batch), INCOMPLETE))
        return out


def _load(args, targets=None, storage=None):
    """The workflow, its plan (local jobs read with the ledger, as ``run`` would) and the ledger."""
    from ..language.loader import load_workflow
    from ..ledger import DEFAULT_TRIGGERS, Ledger
    from ..planner import plan
    from ..storage import Storage
    workflow = load_workflow(args.batchfile or "Batchfile", dict(args.config), args.configfile)
    storage = storage or Storage()
    ledger = Ledger(storage, workflow.base_dir, _state_dir(workflow))
    the_plan = plan(workflow, storage, targets or getattr(args, "targets", []) or [], check_sources=False,
                    ledger=_StatusRecords(ledger), triggers=DEFAULT_TRIGGERS)
    return workflow, the_plan, ledger


def _jobs(the_plan) -> tuple[list, list]:
    """The plan's jobs that run something: (local ones, Batch ones)."""
    local, batch = [], []
    for job in the_plan.jobs:
        if not job.rule.is_target_list:
            (batch if _on_batch(job) else local).append(job)
    return local, batch


def local_states(jobs, ledger) -> tuple[dict, set, set]:
    """Local jobs whose process runs now ({job: pid}: last record "started" with a pid that still
    leads its session), those whose last record says they failed, and those it says started."""
    from ..executors.local import LocalExecutor
    from ..ledger import FAILED, STARTED
    if not jobs:
        return {}, set(), set()
    records = ledger.lookup(jobs)
    placed = {}
    for job, rec in records.items():
        kind, _, pid = rec.where.partition(":")
        if rec.state == STARTED and kind == "local" and pid:
            placed[job] = pid
    running = {job: placed[job] for job in LocalExecutor.settle(placed)}
    return (running, {job for job, rec in records.items() if rec.state == FAILED},
            {job for job, rec in records.items() if rec.state == STARTED})


def _finishing(jobs, the_plan, started: set) -> set:
    """Started local jobs whose outputs a live ``s3rules run`` holds: their process may have just
    ended, but that run has not recorded them yet (so they are not "incomplete"). The jobs it
    holds and has not started yet are still to do."""
    from ..workspace import Workspace
    jobs = [job for job in jobs if job in started and job in the_plan.pending]
    if not jobs:
        return set()
    claimed = Workspace(os.path.join(the_plan.workflow.base_dir, ".s3rules")).claimed()
    return {job for job in jobs if claimed.intersection(job.outputs)}


def _spec(job):
    from ..aws.jobspec import job_spec
    return job_spec(job)


# -- logs --------------------------------------------------------------------------------------

def cmd_logs(args) -> int:
    """Exit status 0 with the log printed; 1 when the job never ran (what stopped it is said)."""
    from ..language.loader import load_workflow
    from ..planner import Planner
    workflow = load_workflow(args.batchfile, dict(args.config), args.configfile)
    planner = Planner(workflow)
    found = planner.resolve_targets([args.target])
    jobs = [j for j in found if not isinstance(j, str)]
    if not jobs:
        raise PlanError(f"no rule makes {args.target}, so no job has its log")
    submitter = _submitter() if any(_on_batch(job) for job in jobs) else None
    for job in jobs:
        if submitter is not None and _on_batch(job):
            _batch_log(args, job, submitter)
        else:
            _local_log(args, workflow, job)
    return EXIT_OK


def _batch_log(args, job, submitter) -> None:
    from ..aws.jobspec import ACTIVE_STATES
    spec = _spec(job)
    job_id = submitter.latest(spec, job.rule.name)
    service = submitter.service
    desc = service.describe([job_id]).get(job_id, {}) if job_id else {}
    status = desc.get("status", "")
    if not _started(desc) and status not in ACTIVE_STATES:
        raise _no_batch_run(args, job, spec, desc, service)
    print(f"# {spec.name} {job_id} {status}" + ("" if _started(desc) else ": not started yet, so no log yet"),
          file=sys.stderr)
    for line in service.log_lines(desc):
        print(line)


def _started(desc: dict) -> bool:
    """Batch started the job (a job failed because something it needs failed never was)."""
    return bool(desc.get("startedAt") or desc.get("attempts"))


def _no_batch_run(args, job, spec, desc: dict, service) -> S3RulesError:
    """Why a Batch job has no log: Batch failed it before it started, or s3rules never submitted
    it, and which failure below stopped it, as far as Batch and the ledger know."""
    from ..ledger import FAILED
    from .records import stopped_by
    job, the_plan, ledger = _planned(args, job)
    culprits = stopped_by(job, the_plan, ledger, {"batch": lambda ids: _batch_failures(service, ids)})
    rec = ledger.lookup([job]).get(job)
    recorded = (ledger.body(job) or {}).get("reason") if rec is not None and rec.state == FAILED else None
    if desc:
        reason = desc.get("statusReason")
        how = f"Batch failed {spec.name} ({desc['jobId']}) before it started" + (f" ({reason})" if reason else "")
    elif culprits or recorded:
        how = "s3rules never submitted it" + (f" ({recorded})" if recorded else "")
    else:
        return S3RulesError(f"no Batch job {spec.name} on queue {spec.queue!r} (Batch lists finished jobs "
                            "for a limited time; s3rules submits it when its target is missing)")
    return _never_ran(the_plan.workflow, job, how, culprits)


def _batch_failures(service, ids) -> dict[str, tuple[bool, bool, str]]:
    """Job id -> (failed, ran, how) as DescribeJobs tells it."""
    from ..aws.failures import cause
    out = {}
    for job_id, desc in service.describe(ids).items():
        code = (desc.get("container") or {}).get("exitCode")
        why = cause(desc) if desc.get("status") == "FAILED" else ""
        how = ", ".join(filter(None, [why, f"exit code {code}" if code is not None else "", desc.get("statusReason"),
                                      f"job id {job_id}"]))
        out[job_id] = (desc.get("status") == "FAILED", _started(desc), how)
    return out


def _planned(args, job):
    """``job`` as a plan of its target sees it, that plan (what below it is pending) and the ledger."""
    _, the_plan, ledger = _load(args, [args.target])
    return next((j for j in the_plan.targets if j.outputs == job.outputs), job), the_plan, ledger


def _never_ran(workflow, job, how: str, culprits: list) -> JobFailed:
    """The one paragraph ``logs`` says of a job that never ran, naming the failures that stopped it."""
    from ..views import display_path
    text = f"job {job.describe()} never ran, so it has no log: {how}"
    if culprits:
        first = culprits[0][0]
        text += ("; it needs " + "; ".join(f"{dep.describe()}, which failed ({what})" for dep, what in culprits)
                 + f". `s3rules logs {display_path(workflow.path)} {display_path(first.outputs[0])}` prints the "
                 f"log of {first.describe()}")
    return JobFailed(text)


def _local_log(args, workflow, job) -> None:
    """The log file of the local job's last run: where its finish or failure record says, else
    where a run writes it now (``.s3rules/logs/<rule>/<wildcards>.log``)."""
    from ..executors.local import log_path_for
    from ..ledger import STARTED, Ledger
    from ..storage import Storage
    from ..views import display_path
    from .records import stopped_by
    ledger = Ledger(Storage(), workflow.base_dir, _state_dir(workflow))
    log_dir = os.path.join(_state_dir(workflow), "logs")
    rec = ledger.lookup([job]).get(job)
    paths = [log_path_for(log_dir, job)]
    if rec is not None and rec.state != STARTED:
        body = ledger.body(job)
        if body and body.get("log"):
            paths.insert(0, body["log"])
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        planned, the_plan, ledger = _planned(args, job)
        culprits = stopped_by(planned, the_plan, ledger)
        if culprits:
            raise _never_ran(workflow, planned, "s3rules never started it", culprits)
        raise S3RulesError(f"no log of job {job.describe()}: it has not run from this Batchfile "
                           f"({display_path(workflow.path)}, whose local jobs log to {display_path(log_dir)}/), "
                           "or its log was deleted since; `s3rules run` runs it")
    if rec is None:
        state = ""
    elif rec.state == STARTED:
        state = "running" if job in local_states([job], ledger)[0] else "interrupted"
    else:
        state = {"f": "finished", "x": "failed"}.get(rec.state, "")
    print(f"# {job.describe()} {display_path(path)} {state}".rstrip(), file=sys.stderr)
    sys.stdout.flush()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), ""):
            sys.stdout.write(chunk)


# -- cancel ------------------------------------------------------------------------------------

def cmd_cancel(args) -> int:
    _, the_plan, ledger = _load(args)
    local, batch = _jobs(the_plan)
    submitter = _submitter() if batch else None
    doomed = []   # (job, Batch job id or None, pid or None, state)
    for job in batch:
        summary = submitter.in_flight_summary(_spec(job))
        if summary:
            doomed.append((job, summary["jobId"], None, summary.get("status", "")))
    doomed += [(job, None, pid, "RUNNING") for job, pid in local_states(local, ledger)[0].items()]
    if not doomed:
        print("s3rules: no job of this workflow is in flight" if not local else
              "s3rules: nothing to cancel: no job of this workflow is running here, and no job of this "
              "workflow is in flight on AWS Batch" + _others_running(ledger, local), file=sys.stderr)
        return EXIT_OK
    for job, job_id, pid, state in doomed:
        print(f"  {job_id or f'pid {pid}'}  {state:<9}  {job.describe()}", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise S3RulesError(f"{_count(len(doomed))} would be terminated; confirm with -y (no terminal to ask on)")
        answer = input(f"Terminate {'this job' if len(doomed) == 1 else f'these {len(doomed)} jobs'}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("s3rules: nothing cancelled", file=sys.stderr)
            return EXIT_FAILED
    said, code = [], EXIT_OK
    terminated = [job_id for _, job_id, _, _ in doomed if job_id]
    for job_id in terminated:
        submitter.service.terminate(job_id, "cancelled with s3rules cancel")
    if terminated:
        said.append(f"terminated {_count(len(terminated))}")
    pids = [pid for _, _, pid, _ in doomed if pid]
    if pids:
        stopped, refused = stop_process_groups(pids)
        said.append(f"stopped {_count(stopped, 'local job')}")
        if refused:
            said.append(f"not allowed to stop process {', '.join(refused)} (another user's?)")
            code = EXIT_FAILED
    print(f"s3rules: {'; '.join(said)}", file=sys.stderr)
    return code


def _others_running(ledger, jobs) -> str:
    """A hint when local jobs run here that are not among ``jobs`` (the targets'; by default the
    first rule's): their pids are in the workspace's journal."""
    from ..executors.local import LocalExecutor
    from ..ledger import STARTED
    mine = {ledger._key(job) for job in jobs}
    placed = {key: rec.where.partition(":")[2] for key, rec in ledger.journal.read().items()
              if key not in mine and rec.state == STARTED and rec.where.startswith("local:")}
    n = len(LocalExecutor.settle(placed))
    return (f" ({_count(n, 'other local job')} of this directory {'is' if n == 1 else 'are'} running, not under "
            "these targets: name their rule or an output to cancel them)") if n else ""


def stop_process_groups(pids: list[str], grace: float = STOP_GRACE) -> tuple[int, list[str]]:
    """SIGTERM each local job's process group (the job leads its own session, so this reaches
    everything it started); SIGKILL what is left after ``grace`` seconds. Returns (groups
    signalled, pids not ours to signal); a job that ended meanwhile counts as neither."""
    stopped, refused = [], []
    for pid in pids:
        try:
            os.killpg(int(pid), signal.SIGTERM)
            stopped.append(int(pid))
        except ProcessLookupError:
            pass
        except PermissionError:
            refused.append(pid)
    deadline = time.monotonic() + grace
    while any(map(_group_alive, stopped)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in filter(_group_alive, stopped):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(stopped), refused


def _group_alive(pgid: int) -> bool:
    """Some process of the group still runs (zombies, waiting for their parent to reap them, do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                state, _, group = fh.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):
            continue
        if group == str(pgid) and state not in ("Z", "X"):
            return True
    return False


def _count(n: int, noun: str = "job") -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
