"""Reliability of s3rules on AWS Batch: faults, crashes, concurrent runs, outputs.

The promise under test: whatever happens, no job is paid for twice (the queue holds exactly one
job per identity), no finished target is lost and none is wrongly called done.

s3rules talks to the moto server of tests/aws_server.py through tests/faultproxy.py, which
throttles, fails and drops requests, or forwards them and loses the answer. The jobs themselves
(``s3tool`` in their shell commands) talk to moto directly. Figures for docs/reliability.md are
printed with ``-s`` (lines starting with ``FIGURES``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest

from aws_server import FlowBase
from faultproxy import FaultProxy
from test_batch import gate, open_gate_on_lease_release, released  # noqa: F401  (a fixture)
from s3rules.aws.naming import ARRAY_PREFIX, MANIFEST_TAG, NAME_PREFIX, identity_of_name, job_name
from s3rules.cli import main

POLL = ["--poll-interval", "0.2"]
S3RULES = os.path.join(os.path.dirname(sys.executable), "s3rules")

# The demo pipeline (rulefiles/demo) on S3 and Batch: trim per sample, count (two outputs) per
# sample, group per group, one summary. BUCKET, QUEUE, JD are replaced per test; PRE by a prefix.
DEMO = r'''
samples: "samples.csv"
root = "s3://BUCKET/out"
default:
    executor: batch
    queue: "QUEUE"
    job_definition: "JD"

rule all:
    input: expand("{root}/counts/{sample}.txt"), expand("{root}/groups/{group}.tsv"), "{root}/summary.tsv"

rule trim:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/trim/{sample}.txt"
    shell: "PRE s3tool cat {input} | tr a-z A-Z | s3tool put {output}"

rule count:
    input: "{root}/trim/{sample}.txt"
    output: "{root}/counts/{sample}.txt", "{root}/counts/{sample}.log"
    shell: """
        s3tool cat {input} | wc -l | tr -d ' ' | s3tool put {output[0]}
        echo "counted {sample} in group {group}" | s3tool put {output[1]}
    """

rule group:
    input: expand("{root}/counts/{sample}.txt")
    output: "{root}/groups/{group}.tsv"
    shell: "for f in {input}; do printf '%s\t%s\n' \"$(basename \"$f\" .txt)\" \"$(s3tool cat \"$f\")\"; done | s3tool put {output}"

rule summary:
    input: expand("{root}/groups/{group}.tsv")
    output: "{root}/summary.tsv"
    shell: "for f in {input}; do s3tool cat $f; done | sort | s3tool put {output}"
'''
SAMPLES = {"S1": ("g1", "a\nb\n"), "S2": ("g1", "c\n"), "S3": ("g2", "d\ne\nf\n")}
DEMO_LABELS = sorted([f"trim-{s}" for s in SAMPLES] + [f"count-{s}" for s in SAMPLES]
                     + ["group-g1", "group-g2", "summary"])
DEMO_OUTPUTS = {
    "out/trim/S1.txt": "A\nB\n", "out/trim/S2.txt": "C\n", "out/trim/S3.txt": "D\nE\nF\n",
    "out/counts/S1.txt": "2\n", "out/counts/S2.txt": "1\n", "out/counts/S3.txt": "3\n",
    "out/counts/S1.log": "counted S1 in group g1\n", "out/counts/S2.log": "counted S2 in group g1\n",
    "out/counts/S3.log": "counted S3 in group g2\n",
    "out/groups/g1.tsv": "S1\t2\nS2\t1\n", "out/groups/g2.tsv": "S3\t3\n",
    "out/summary.tsv": "S1\t2\nS2\t1\nS3\t3\n",
}
TRIM_LABELS = sorted(f"trim-{s}" for s in SAMPLES)
TRIM_OUTPUTS = {k: v for k, v in DEMO_OUTPUTS.items() if k.startswith("out/trim/")}

#: figures gathered while the tests run, printed as they come and in total at the end (pytest -s)
FIGURES: dict[str, object] = {}
TOTALS: Counter = Counter()   # requests, faulted, fault:<kind>, runs, duplicates (extra jobs of one identity)


@pytest.fixture(scope="module", autouse=True)
def totals():
    yield
    print(f"\nFIGURES total: {json.dumps(dict(sorted(TOTALS.items())))}")


def label_of(job_name: str) -> str:
    assert job_name.startswith(NAME_PREFIX) and identity_of_name(job_name), job_name
    return job_name[len(NAME_PREFIX):-17]


class Flow(FlowBase):
    """One test's workflow directory, bucket, queue and job definition (moto clients, no proxy)."""

    def write(self, rules: str = DEMO, samples: dict | None = None, pre: str = "", data: bool = True,
              arrays: bool = False) -> "Flow":
        """``arrays``: submit each rule's jobs as array jobs (the default of s3rules; off here, so the
        per-job tests count one SubmitJob per job)."""
        samples = SAMPLES if samples is None else samples
        (self.dir / "samples.csv").write_text(
            "sample,group\n" + "".join(f"{s},{g}\n" for s, (g, _) in samples.items()))
        text = (rules.replace("BUCKET", self.bucket).replace("QUEUE", self.queue).replace("JD", self.jd)
                .replace("PRE ", pre))
        if not arrays:
            text = text.replace(f'    job_definition: "{self.jd}"\n', f'    job_definition: "{self.jd}"\n    array_size: 1\n', 1)
        self.path.write_text(text)
        if data:
            for s, (_, body) in samples.items():
                self.put(f"data/{s}.txt", body)
        return self

    def outputs(self) -> dict[str, str]:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix="out/").get("Contents", [])]
        return {k: self.get(k) for k in keys}

    def units(self) -> list[dict]:
        """What SubmitJob made on the queue: single jobs and array parents (not their children)."""
        return [j for j in self.jobs() if ":" not in j["jobId"]]

    def per_name(self) -> Counter:
        """Jobs per name; an array's children by the labels its manifest gives them."""
        names: Counter = Counter()
        for unit in self.units():
            if not unit["jobName"].startswith(ARRAY_PREFIX):
                names[unit["jobName"]] += 1
                continue
            desc = self.batch.describe_jobs(jobs=[unit["jobId"]])["jobs"][0]
            bucket, key = desc["tags"][MANIFEST_TAG][len("s3://"):].split("/", 1)
            manifest = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            names.update(job_name(label, ident) for label, ident in zip(manifest["labels"], manifest["children"]))
        return names

    def assert_one_job_per_identity(self, labels=DEMO_LABELS) -> Counter:
        names = self.per_name()
        duplicates = {n: c for n, c in names.items() if c > 1}
        TOTALS["duplicates"] += sum(c - 1 for c in duplicates.values())
        assert not duplicates, f"paid twice: {duplicates}"
        per_identity = Counter(identity_of_name(n) for n in names.elements())
        assert set(per_identity.values()) <= {1}, per_identity
        if labels is not None:
            assert sorted(label_of(n) for n in names) == sorted(labels)
        return names


@pytest.fixture
def flow(aws_env, tmp_path):
    return Flow(aws_env, tmp_path)


@pytest.fixture
def proxy(aws_env, monkeypatch):
    """A fault proxy in front of moto; this process's clients go through it (no faults yet)."""
    p = FaultProxy(aws_env.server.endpoint_url).start()
    for key, value in p.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    try:
        yield p
    finally:
        p.stop()
        TOTALS["requests"] += sum(p.requests.values())
        TOTALS["faulted"] += sum(p.faulted.values())
        for kind, n in p.faults_by_kind().items():
            TOTALS[f"fault:{kind}"] += n


def run(*args) -> int:
    TOTALS["runs"] += 1
    return main(["run", *args, *POLL])


def record(name: str, **figures) -> None:
    FIGURES[name] = figures
    print(f"FIGURES {name}: {json.dumps(figures, sort_keys=True)}")


def ctrl_c_reaches_it() -> None:
    """In the child: SIGINT back to its default, which a suite started in the background (a
    shell without job control ignores SIGINT for its background jobs) would pass on as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Processes:
    """``s3rules`` console-script runs; every one still alive is killed on exit (SIGKILL)."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, flow: Flow, endpoint_env: dict[str, str], *args: str) -> subprocess.Popen:
        env = dict(os.environ)          # the aws_env fixture's variables (credentials, region, config files)
        env.update(endpoint_env)        # s3rules' own calls go through the fault proxy
        proc = subprocess.Popen([S3RULES, "run", flow.bf, *POLL, *args], cwd=flow.dir, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=ctrl_c_reaches_it)
        self.procs.append(proc)
        TOTALS["runs"] += 1
        return proc

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.communicate(timeout=10)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


# -- 1. faults on every operation ---------------------------------------------------------------------

def SLOW(*values):
    """A soak case CI leaves out (``-m slow`` runs them): the cases kept cover each fault kind."""
    return pytest.param(*values, marks=pytest.mark.slow)


BEFORE_THE_SERVER = ("429", "500", "503", "drop")   # faults after which nothing happened on the server


@pytest.mark.parametrize("seed,arrays", [(1, False), SLOW(2, False), SLOW(3, False), (1, True), SLOW(2, True)],
                         ids=["seed1", "seed2", "seed3", "arrays-seed1", "arrays-seed2"])
def test_demo_completes_with_20_percent_of_requests_failing(flow, proxy, seed, arrays, capsys):
    """Every request s3rules makes (S3 lease, listings and lookups; Batch checks, listings, submissions,
    descriptions; Logs) is throttled, fails with 500/503, has its connection dropped, or is carried out with
    its answer lost, 20 % of the time. SubmitJob meets only the faults after which nothing was created: a
    lost SubmitJob answer is its own test below (s3rules looks for the job by name before it sends
    SubmitJob again, so it makes no duplicate)."""
    flow.write(arrays=arrays)
    proxy.seed, proxy.rate = seed, 0.2
    proxy.op_kinds["SubmitJob"] = BEFORE_THE_SERVER
    started = time.monotonic()
    code = run(flow.bf)
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 0, err
    assert flow.outputs() == DEMO_OUTPUTS
    names = flow.assert_one_job_per_identity()
    assert {j["status"] for j in flow.jobs()} == {"SUCCEEDED"}
    assert proxy.forwarded["SubmitJob"] == len(flow.units())    # every SubmitJob that arrived made a job
    assert len(flow.units()) == (4 if arrays else len(DEMO_LABELS))   # arrays: trim, count, group, summary
    summary = proxy.summary()
    assert summary["faulted"] >= 5, summary
    record(f"faults-20pct-{'arrays-' if arrays else ''}seed{seed}", seconds=round(elapsed, 1), jobs=len(names), duplicates=0, **summary)


def test_a_submit_job_whose_answer_is_lost_is_sent_once(aws_env, proxy):
    """The layer under the Submitter: ``submit(retry=False)`` must never resend (it has no idempotency token)."""
    from s3rules.aws.client import SubmitUnknown
    from s3rules.aws.service import BatchService
    service = BatchService()
    request = {"jobName": "s3rules-lost-0123456789abcdef", "jobQueue": aws_env.queue,
               "jobDefinition": aws_env.job_definition, "containerOverrides": {"command": ["true"]}}
    proxy.script("SubmitJob", ["lost"])
    with pytest.raises(SubmitUnknown):               # the job may exist: the caller must look before resending
        service.submit(request, retry=False)
    made = aws_env.server.client("batch").list_jobs(jobQueue=aws_env.queue)["jobSummaryList"]
    assert (proxy.requests["SubmitJob"], len(made)) == (1, 1)
    assert made[0]["jobName"] == request["jobName"]


def test_lost_submit_answers_make_no_duplicate(flow, proxy, capsys):
    """The first 3 SubmitJobs reach Batch (the job is made) but their answers are lost."""
    flow.write()
    proxy.script("SubmitJob", ["lost"] * 3)
    code = run(flow.bf, "trim")
    assert code == 0, capsys.readouterr().err
    assert flow.outputs() == TRIM_OUTPUTS
    flow.assert_one_job_per_identity(TRIM_LABELS)
    assert proxy.forwarded["SubmitJob"] == len(TRIM_LABELS)     # each sent once, then found by name
    assert proxy.forwarded["ListJobs"] >= 3
    record("lost-submit-answers", lost=3, submit_requests=proxy.requests["SubmitJob"],
           jobs=len(TRIM_LABELS), duplicates=0)


def test_lost_array_submit_answers_make_no_duplicate_child(flow, proxy, capsys):
    """The first 3 SubmitJobs (the trim, count and group arrays) are made but their answers are lost."""
    flow.write(arrays=True)
    proxy.script("SubmitJob", ["lost"] * 3)
    code = run(flow.bf)
    assert code == 0, capsys.readouterr().err
    assert flow.outputs() == DEMO_OUTPUTS
    flow.assert_one_job_per_identity()
    assert proxy.forwarded["SubmitJob"] == len(flow.units()) == 4     # each sent once, then found by name
    record("lost-array-submit-answers", lost=3, submit_requests=proxy.requests["SubmitJob"],
           jobs=len(DEMO_LABELS), duplicates=0)


def test_a_lost_submit_answer_makes_no_duplicate_while_list_jobs_lags(flow, proxy, capsys, monkeypatch):
    flow.write()
    proxy.list_lag = 3.0                      # ListJobs shows a new job 3 s after SubmitJob made it
    proxy.script("SubmitJob", ["lost"])
    code = run(flow.bf, "trim")
    assert code == 0, capsys.readouterr().err
    flow.assert_one_job_per_identity(TRIM_LABELS)


# -- 2. the lease under faults --------------------------------------------------------------------------

def lease_url(aws_env) -> str:
    return f"s3://{aws_env.bucket}/.s3rules/leases/{aws_env.queue}.json"


def test_a_lost_answer_to_the_lease_create_does_not_make_a_run_wait_for_itself(aws_env, proxy):
    """The create lands on S3 but its answer is lost. The run reads the lease back, sees itself as the
    holder and keeps it: it never waits for it to expire nor takes it over (which would be a
    write with If-Match), and it says nothing about waiting for another run."""
    from s3rules.aws.lease import Lease
    said: list[str] = []
    lease = Lease(lease_url(aws_env), ttl=6, wait=30, on_wait=said.append)
    writes: list[dict] = []
    proxy.before_forward("PutObject", lambda n, info: writes.append(
        {h: info["headers"].get(h) for h in ("If-None-Match", "If-Match")}))
    proxy.script("PutObject", ["lost"])
    lease.acquire()
    try:
        assert said == []
        assert lease.held
        on_s3 = aws_env.server.client("s3").get_object(Bucket=aws_env.bucket, Key=lease.key)
        assert json.loads(on_s3["Body"].read())["owner"] == lease.owner     # the one create is ours
        assert on_s3["ETag"] == lease.etag
        assert proxy.faulted[("PutObject", "lost")] == 1
        assert writes and all(w == {"If-None-Match": "*", "If-Match": None} for w in writes), writes  # creates only
        assert proxy.requests["GetObject"] == 1          # read back once, found itself
    finally:
        lease.release()


def test_a_lost_answer_to_a_lease_renewal_keeps_the_lease(aws_env, proxy):
    from s3rules.aws.lease import Lease
    lease = Lease(lease_url(aws_env), ttl=60, wait=5)
    lease.acquire()
    try:
        proxy.script("PutObject", ["lost"])
        lease.renewed_at = 0                  # a renewal is due
        lease.renew_if_due()
        assert lease.held
    finally:
        lease.release()


# -- 3. crashes: SIGKILL and Ctrl-C during submission ---------------------------------------------------

@pytest.mark.parametrize("k,arrays", [(1, False), SLOW(2, False), SLOW(5, False), (9, False), (1, True), (3, True)],
                         ids=["1", "2", "5", "9", "arrays-1", "arrays-3"])
def test_killed_after_k_submissions_then_run_again_no_duplicate(flow, proxy, gate, k, arrays):
    """SIGKILL right after Batch made the k-th job or array (its answer never reaches the run), then run again.
    The jobs made are held at a gate until the second run released its lease: it must reuse them."""
    flow.write(pre=gate.wait, arrays=arrays)
    open_gate_on_lease_release(proxy, gate)
    victim: dict[str, subprocess.Popen] = {}

    def kill():
        os.kill(victim["proc"].pid, signal.SIGKILL)
        return "drop"

    proxy.at("SubmitJob", k, kill)
    with Processes() as procs:
        victim["proc"] = procs.start(flow, proxy.env())
        code, err = finish(victim["proc"])
        assert code == -signal.SIGKILL, err
        assert len(flow.units()) == k                 # killed exactly there
        started = time.monotonic()
        code, err = finish(procs.start(flow, proxy.env()))
        elapsed = time.monotonic() - started
    assert code == 0, err
    assert gate.is_open
    assert "waiting for another s3rules run" not in err   # the dead holder's lease is taken over at once
    assert flow.outputs() == DEMO_OUTPUTS
    names = flow.assert_one_job_per_identity()
    assert proxy.forwarded["SubmitJob"] == len(flow.units()) == (4 if arrays else len(DEMO_LABELS))
    # on Batch s3rules keeps no local state it needs: only the runs' history, for reports
    assert [p.name for p in (flow.dir / ".s3rules").iterdir()] == ["history"]
    record(f"sigkill-after-{k}{'-arrays' if arrays else ''}", submitted_before_kill=k, jobs=len(names), duplicates=0,
           rerun_seconds=round(elapsed, 1))


def test_killed_mid_submission_then_run_again_no_duplicate_while_list_jobs_lags(flow, proxy, gate):
    """The run is killed as Batch makes its second job. ListJobs hides new jobs for 30 s, longer than
    s3rules waits for it (15 s): the second run cannot find the second job by name. The two jobs are
    in flight when the second run plans (held at a gate); they finish while it looks for them (the
    gate opens at its first ListJobs, and that answer waits until they are done): their outputs
    have appeared since planning, so neither is submitted again."""
    flow.write(pre=gate.wait)
    proxy.list_lag = 30.0
    victim: dict[str, subprocess.Popen] = {}
    second: dict[str, bool] = {}
    proxy.at("SubmitJob", 2, lambda: (os.kill(victim["proc"].pid, signal.SIGKILL), "drop")[1])

    def finish_them_now(n, info):
        if second and not gate.is_open:
            gate.open()
            flow.env.server.wait_for_jobs([j["jobId"] for j in flow.jobs()], timeout=60)

    proxy.before_forward("ListJobs", finish_them_now)
    with Processes() as procs:
        victim["proc"] = procs.start(flow, proxy.env(), "trim")
        assert finish(victim["proc"])[0] == -signal.SIGKILL
        assert len(flow.jobs()) == 2 and not gate.is_open
        second["started"] = True
        code, err = finish(procs.start(flow, proxy.env(), "trim"))
    assert code == 0, err
    assert gate.is_open
    flow.assert_one_job_per_identity(TRIM_LABELS)
    assert proxy.forwarded["SubmitJob"] == 3                 # 2 by the killed run, trim-S3 by the second
    assert flow.outputs() == TRIM_OUTPUTS


CTRL_C_AT = 4


def interrupt_at(proxy: FaultProxy, k: int, victim: dict) -> None:
    """SIGINT the run while it waits for the k-th SubmitJob's answer (Batch has made the job). The
    answer is held until the run has handled the signal: it releases its lease (or exits)."""
    handled = threading.Event()

    def on_release(n, info):
        if "/.s3rules/leases/" in info["path"] and released(info["body"]):
            handled.set()

    def ctrl_c():
        os.kill(victim["proc"].pid, signal.SIGINT)
        while not handled.wait(0.1) and victim["proc"].poll() is None:
            pass
    proxy.before_forward("PutObject", on_release)
    proxy.at("SubmitJob", k, ctrl_c)


def test_ctrl_c_during_submission_detaches_consistently(flow, proxy):
    flow.write(pre="sleep 1;")
    victim: dict[str, subprocess.Popen] = {}
    interrupt_at(proxy, CTRL_C_AT, victim)
    with Processes() as procs:
        victim["proc"] = procs.start(flow, proxy.env())
        code, err = finish(victim["proc"])
        assert code == 130, err
        assert "Traceback" not in err
        said = re.search(r"detached: (\d+) jobs? submitted, (\d+) already in flight reused", err)
        assert said, err
        assert "re-attach: s3rules run" in err
        on_queue = len(flow.jobs())
        assert on_queue == CTRL_C_AT
        assert int(said.group(1)) in (CTRL_C_AT - 1, CTRL_C_AT)
        # the lease was released: the next run starts at once
        code2, err2 = finish(procs.start(flow, proxy.env()))
    assert code2 == 0, err2
    assert "waiting for another s3rules run" not in err2
    assert flow.outputs() == DEMO_OUTPUTS
    flow.assert_one_job_per_identity()
    record("ctrl-c-during-submission", interrupted_at=CTRL_C_AT, jobs_on_queue=on_queue,
           reported_submitted=int(said.group(1)), duplicates=0)


def test_jobs_that_end_before_the_next_run_after_ctrl_c_are_not_paid_twice(flow, proxy):
    """Ctrl-C during submission, then every job it made ends before the next run plans (as on a
    loaded machine): those jobs are neither in flight nor, by the plan's first look, done. The
    next run asks Batch what became of them (by id, or by name for the one whose answer the
    Ctrl-C cut off), looks at their outputs again, and submits none of them a second time."""
    flow.write(pre="sleep 1;")
    victim: dict[str, subprocess.Popen] = {}
    interrupt_at(proxy, CTRL_C_AT, victim)
    with Processes() as procs:
        victim["proc"] = procs.start(flow, proxy.env())
        code, err = finish(victim["proc"])
        assert code == 130, err
        made = [j["jobId"] for j in flow.jobs()]
        assert len(made) == CTRL_C_AT
        flow.env.server.wait_for_jobs(made)
        code2, err2 = finish(procs.start(flow, proxy.env()))
    assert code2 == 0, err2
    assert flow.outputs() == DEMO_OUTPUTS
    flow.assert_one_job_per_identity()


def test_ctrl_c_during_submission_reports_every_job_it_made(flow, proxy):
    flow.write(pre="sleep 1;")
    victim: dict[str, subprocess.Popen] = {}
    interrupt_at(proxy, 2, victim)
    with Processes() as procs:
        victim["proc"] = procs.start(flow, proxy.env())
        code, err = finish(victim["proc"])
    assert code == 130 and len(flow.jobs()) == 2
    said = re.search(r"detached: (\d+) jobs? submitted", err)
    assert said and int(said.group(1)) == 2, err


# -- 4. concurrent runs of one workflow on one queue ----------------------------------------------------

@pytest.mark.parametrize("runs,lag,arrays", [SLOW(2, 0.0, False), (2, 5.0, False), (3, 0.0, False), (3, 0.0, True)],
                         ids=["2-runs", "2-runs-list-lag", "3-runs", "3-runs-arrays"])
def test_concurrent_runs_never_submit_the_same_job_twice(flow, proxy, runs, lag, arrays):
    """``runs`` runs start together; the proxy holds their lease creates until all of them have sent one,
    then lets them race. With ``lag``, ListJobs hides jobs for 5 s: the later runs then know the first run's
    jobs only from the lease's ``recent``."""
    flow.write(pre="sleep 1;", arrays=arrays)
    proxy.list_lag = lag
    barrier = threading.Barrier(runs)
    creates: list[str] = []

    def race(n, info):
        if "/.s3rules/leases/" in info["path"] and info["headers"].get("If-None-Match"):
            creates.append(info["path"])
            if len(creates) <= runs:
                try:
                    barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    pass

    proxy.before_forward("PutObject", race)
    with Processes() as procs:
        started = [procs.start(flow, proxy.env()) for _ in range(runs)]
        results = [finish(p) for p in started]
    for code, err in results:
        assert code == 0, err
    assert not barrier.broken and len(creates) >= runs
    assert flow.outputs() == DEMO_OUTPUTS
    names = flow.assert_one_job_per_identity()
    assert proxy.forwarded["SubmitJob"] == len(flow.units())       # the losers submitted nothing at all
    waited = sum("waiting for another s3rules run" in err for _, err in results)
    assert waited >= 1, [err for _, err in results]
    record(f"concurrent-{runs}-runs-lag{lag:g}{'-arrays' if arrays else ''}", runs=runs, jobs=len(names), duplicates=0, runs_that_waited=waited,
           list_jobs_hidden=proxy.hidden["ListJobs"])


# -- 5. outputs ------------------------------------------------------------------------------------------
# Covered elsewhere, not repeated here: a Batch job that SUCCEEDED without its (single) output is reported
# and rerun (tests/test_batch.py::test_a_job_that_succeeds_without_writing_its_outputs_is_a_failure_and_runs_
# again); a failed upstream fails its dependents, independent jobs finish (test_batch.py::test_a_failing_job_
# fails_its_dependents_and_is_reported); locally: exit 0 without an output (test_cli.py::test_exit_zero_
# without_an_output_is_a_failure), a failed job's complete-looking outputs removed (test_cli.py::test_a_failed_
# job_never_leaves_a_complete_looking_target), a failed forced job keeps the old output (test_cli.py::test_
# forced_rerun_keeps_the_old_output_until_replaced), -k (test_cli.py::test_keep_going_finishes_independent_
# branches).

PAIR = '''
samples: "samples.csv"
root = "s3://BUCKET/out"
default:
    executor: batch
    queue: "QUEUE"
    job_definition: "JD"
rule all:
    input: expand("{root}/pair/{sample}.a")
rule pair:
    output: "{root}/pair/{sample}.a", "{root}/pair/{sample}.b"
    shell: """
        echo first {sample} | s3tool put {output[0]}
        if s3tool cat s3://BUCKET/fixed >/dev/null 2>&1; then echo second {sample} | s3tool put {output[1]}; exit 0; fi
        if [ {sample} = S1 ]; then echo "wrote one of two outputs, then broke" >&2; exit 3; fi
    """
'''


def plan_reasons(flow: Flow) -> dict[str, str]:
    from io import StringIO
    from contextlib import redirect_stdout
    out = StringIO()
    with redirect_stdout(out):
        assert main(["run", "-n", "--json", flow.bf]) == 0
    return {"-".join([j["rule"], *j["wildcards"].values()]): j["reason"] for j in json.loads(out.getvalue())["jobs"]}


def test_batch_jobs_that_write_one_of_two_outputs_leave_the_target_pending_as_incomplete(flow, capsys):
    """S1 writes one output then fails; S2 writes one output and SUCCEEDS on Batch. Both are reported,
    nothing claims to be done, both stay pending as incomplete, and the next run makes both again."""
    flow.write(PAIR, samples={"S1": ("g1", ""), "S2": ("g1", "")}, data=False)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert "2 jobs failed" in err, err
    s1 = next(l for l in err.splitlines() if l.startswith("job failed: rule pair (sample=S1)"))
    s2 = next(l for l in err.splitlines() if l.startswith("job failed: rule pair (sample=S2)"))
    assert "exit code 3" in s1 and "| wrote one of two outputs, then broke" in err
    assert "finished without writing its output " + flow.url("out/pair/S2.b") in s2
    assert {j["jobName"].split("-")[2]: j["status"] for j in flow.jobs()} == {"S1": "FAILED", "S2": "SUCCEEDED"}
    assert flow.get("out/pair/S1.a") == "first S1\n" and flow.get("out/pair/S1.b") is None
    assert plan_reasons(flow) == {"pair-S1": "incomplete", "pair-S2": "incomplete"}

    flow.put("fixed", "")
    assert run(flow.bf) == 0
    assert flow.outputs() == {f"out/pair/{s}.{x}": f"{w} {s}\n" for s in ("S1", "S2")
                              for x, w in (("a", "first"), ("b", "second"))}
    assert plan_reasons(flow) == {}


FORCED = '''
root = "s3://BUCKET/out"
default:
    executor: batch
    queue: "QUEUE"
    job_definition: "JD"
rule make:
    output: "{root}/x.txt"
    shell: "s3tool cat {output} | s3tool put s3://BUCKET/seen-$AWS_BATCH_JOB_ID; sleep 1; if s3tool cat s3://BUCKET/broken >/dev/null 2>&1; then exit 1; fi; echo new | s3tool put {output}"
'''


def test_a_forced_batch_rerun_keeps_the_old_output_until_the_new_one_is_complete(flow, capsys):
    flow.write(FORCED, samples={}, data=False)
    flow.put("out/x.txt", "old\n")
    flow.put("broken", "")
    assert run(flow.bf, "--force", flow.url("out/x.txt")) == 1      # the forced job fails
    err = capsys.readouterr().err
    assert "removed outputs" not in err
    assert flow.get("out/x.txt") == "old\n"                          # never deleted
    seen = [o["Key"] for o in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix="seen-")["Contents"]]
    assert [flow.get(k) for k in seen] == ["old\n"]                  # it was there while the job ran

    flow.s3.delete_object(Bucket=flow.bucket, Key="broken")
    assert run(flow.bf, "--force", flow.url("out/x.txt")) == 0
    assert flow.get("out/x.txt") == "new\n"
    seen = [o["Key"] for o in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix="seen-")["Contents"]]
    assert sorted(flow.get(k) for k in seen) == ["old\n", "old\n"]   # old until the new one replaced it


def test_keep_going_on_batch_finishes_every_independent_branch(flow, capsys):
    """trim S2 fails: count S2, group g1 and the summary never run; every other branch finishes."""
    flow.write(pre="if [ {sample} = S2 ]; then echo 'S2 is unreadable' >&2; exit 3; fi;")
    assert run(flow.bf, "--keep-going") == 1
    err = capsys.readouterr().err
    assert "1 job failed" in err and "3 jobs were not run because a job they need failed" in err, err
    assert "job failed: rule trim (sample=S2): application error: exit code 3" in err and "| S2 is unreadable" in err
    expected = {k: v for k, v in DEMO_OUTPUTS.items()
                if "S2" not in k and k not in ("out/groups/g1.tsv", "out/summary.tsv")}
    assert flow.outputs() == expected
    assert sorted(plan_reasons(flow)) == ["count-S2", "group-g1", "summary", "trim-S2"]


def test_a_local_job_that_writes_one_of_two_outputs_then_fails_is_pending_as_incomplete(tmp_path, capsys):
    (tmp_path / "Batchfile").write_text(
        'rule make:\n    output: "out/x.txt", "out/y.txt"\n'
        '    shell: "echo x > {output[0]}; test -e fixed || exit 3; echo y > {output[1]}"\n')
    bf = str(tmp_path / "Batchfile")
    TOTALS["runs"] += 2
    assert main(["run", bf, "-q"]) == 1
    assert "exit code 3" in capsys.readouterr().err
    assert (tmp_path / "out/x.txt").exists()                         # kept: the target is visibly incomplete
    assert main(["run", "-n", "--json", bf]) == 0
    assert [j["reason"] for j in json.loads(capsys.readouterr().out)["jobs"]] == ["incomplete"]
    (tmp_path / "fixed").write_text("")
    assert main(["run", bf, "-q"]) == 0
    assert (tmp_path / "out/y.txt").read_text() == "y\n"


# -- 6. local state is a cache ---------------------------------------------------------------------------

LOCAL = '''
samples: "samples.csv"
rule all:
    input: expand("out/{sample}.txt")
rule make:
    input: "data/{sample}.txt"
    output: "out/{sample}.txt"
    shell: "SLOW tr a-z A-Z < {input} > {output}; if [ {sample} = C ]; then echo 'C always fails' >&2; exit 4; fi"
'''


def local_flow(tmp_path: Path, slow: str = "") -> Path:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    for s in "ABC":
        (tmp_path / "data" / f"{s}.txt").write_text(f"{s.lower()}\n")
    (tmp_path / "samples.csv").write_text("sample\nA\nB\nC\n")
    (tmp_path / "Batchfile").write_text(LOCAL.replace("SLOW ", slow))
    return tmp_path / "Batchfile"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    TOTALS["runs"] += args[0] == "run" and "-n" not in args
    return subprocess.run([S3RULES, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_deleting_or_filling_local_state_with_garbage_changes_nothing(tmp_path):
    bf = local_flow(tmp_path)
    first = cli("run", str(bf), "-k", cwd=tmp_path)
    assert first.returncode == 1 and "| C always fails" in first.stderr
    state = tmp_path / ".s3rules"
    assert (state / "logs/make/sample=C.log").exists()

    import shutil
    shutil.rmtree(state)                                            # deleted
    again = cli("run", str(bf), "-k", cwd=tmp_path)
    assert again.returncode == 1 and "| C always fails" in again.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["A.txt", "B.txt"]

    rng = __import__("random").Random(7)                            # garbage in every file, and junk beside
    for log in state.rglob("*.log"):
        log.write_bytes(bytes(rng.randrange(256) for _ in range(20000)))
    (state / "logs/make/junk").mkdir()
    (state / "logs/stray.log").write_bytes(b"\x00\xff" * 100)
    (state / "lock").write_text("not a lock\n")
    forced = cli("run", str(bf), "-k", "-f", "out/A.txt", cwd=tmp_path)
    assert forced.returncode == 1 and "Traceback" not in forced.stderr
    tail = [l for l in forced.stderr.splitlines() if l.startswith("  | ")]
    assert tail == ["  | C always fails"]                            # the log is the job's own, not the garbage
    assert (tmp_path / "out/A.txt").read_text() == "A\n"


@pytest.mark.parametrize("shape", ["state-is-a-file", "logs-is-a-file", "a-later-log-is-a-directory"])
def test_local_state_of_the_wrong_shape_changes_nothing(tmp_path, shape):
    bf = local_flow(tmp_path, slow="sleep 0.5;")
    state = tmp_path / ".s3rules"
    if shape == "state-is-a-file":
        state.write_text("garbage")
    elif shape == "logs-is-a-file":
        state.mkdir()
        (state / "logs").write_text("garbage")
    else:
        (state / "logs/make/sample=C.log").mkdir(parents=True)
    r = cli("run", str(bf), "-k", "-j", "2", cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1 and "| C always fails" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["A.txt", "B.txt"]
