"""s3rules on AWS Batch end to end: ``main([...])`` in this process, over real HTTP to the moto
server of tests/aws_server.py, whose Batch jobs really run (as local subprocesses).

Batch calls are observed through hooks on boto3's default session (s3rules' BatchService uses
it when one is set up); the harness's own clients (``flow.batch``, ``flow.s3``) are separate and
never seen by the hooks. Answers AWS may give and moto does not (another order, a lagging
listing) come from tests/faultproxy.py, over HTTP (the ``proxy`` fixture). Jobs use ``s3tool``
(tests/s3tool.py) to read and write S3. A job that must still be in flight when the test looks
waits on a ``gate`` (a file the test creates when it has seen what it needs), never on time.
"""
from __future__ import annotations

import io
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest

from aws_server import FlowBase
from faultproxy import FaultProxy
from s3rules.api import AWSBatchHelper
from s3rules.aws.naming import MANIFEST_TAG, NAME_PREFIX, identity_of_name
from s3rules.cli import main
from s3rules.errors import S3RulesError

POLL = ["--poll-interval", "0.2"]

# The default pipeline: one "up" job per sample, one "summary" over all of them.
# BUCKET is replaced by the test's bucket; PRE by a command prefix (e.g. "sleep 2;").
PIPELINE = '''
rule all:
    input: "{root}/summary.txt"
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    shell: "PRE s3tool cat {input} | tr a-z A-Z | s3tool put {output}"
rule summary:
    input: expand("{root}/up/{sample}.txt")
    output: "{root}/summary.txt"
    shell: "for f in {input}; do s3tool cat $f; done | s3tool put {output}"
'''


class BatchCalls:
    """The Batch calls s3rules makes in this test, seen through boto3's default session.

    ``submits`` are the SubmitJob requests; ``jobs`` the jobs they made, an array's children
    named through the manifest s3rules wrote for it.
    """

    def __init__(self, s3=None):
        self.s3 = s3
        boto3.setup_default_session()   # the aws_env fixture puts DEFAULT_SESSION back afterwards
        self.events = boto3.DEFAULT_SESSION.events
        self.submits: list[dict] = []   # SubmitJob params, with "jobId" added once answered
        self.terminated: list[str] = []
        self.events.register("provide-client-params.batch.SubmitJob", self._params)
        self.events.register("after-call.batch.SubmitJob", self._answered)
        self.events.register("provide-client-params.batch.TerminateJob",
                             lambda params, **_: self.terminated.append(params["jobId"]))

    def _params(self, params, **_):
        self.submits.append(dict(params))

    def _answered(self, parsed, **_):
        if "jobId" in parsed:
            self.submits[-1]["jobId"] = parsed["jobId"]

    def reset(self):
        self.submits.clear()
        self.terminated.clear()

    def on_lease_release(self, fn) -> None:
        """Call ``fn()`` when s3rules (in this process) releases a submission lease: it has then
        reused or submitted everything it was going to, and only watches. A run that only watches
        jobs by the ids the job ledger recorded takes no lease: ``fn()`` then comes with its first
        DescribeJobs (from then on the jobs may end: the run knows their ids)."""
        def put(params, **_):
            if params.get("Key", "").startswith(".s3rules/leases/") and released(params.get("Body")):
                fn()
        self.events.register("provide-client-params.s3.PutObject", put)
        self.events.register("provide-client-params.batch.DescribeJobs", lambda **_: fn())

    @property
    def jobs(self) -> list[dict]:
        """{"label", "jobId", "request"} per job made (an array child's jobId is "parent:i")."""
        out = []
        for p in self.submits:
            url = p.get("tags", {}).get(MANIFEST_TAG)
            if url is None:
                out.append({"label": label_of(p["jobName"]), "jobId": p.get("jobId"), "request": p})
                continue
            bucket, key = url[len("s3://"):].split("/", 1)
            labels = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())["labels"]
            out += [{"label": label, "jobId": f"{p.get('jobId')}:{i}", "request": p}
                    for i, label in enumerate(labels)]
        return out

    @property
    def labels(self) -> list[str]:
        return [j["label"] for j in self.jobs]

    @property
    def arrays(self) -> list[dict]:
        return [p for p in self.submits if "arrayProperties" in p]

    def ids(self) -> dict[str, str]:
        """label -> job id (an array child's is "parent:i")."""
        return {j["label"]: j["jobId"] for j in self.jobs}

    def by_label(self) -> dict[str, dict]:
        """label -> the SubmitJob request that made it (for an array child: its array's)."""
        return {j["label"]: j["request"] for j in self.jobs}


def released(body) -> bool:
    """Whether a lease write is the release (the lease marked expired: ``"expires": 0``)."""
    try:
        return json.loads(body).get("expires") == 0
    except (TypeError, ValueError, AttributeError):
        return False


def open_gate_on_lease_release(proxy: FaultProxy, gate: "Gate") -> None:
    """Open ``gate`` when a run (any process going through ``proxy``) releases its submission lease:
    it has then reused or submitted all it was going to. A run that is killed never releases it. A
    run that watches jobs by the ids the job ledger recorded takes no lease: its first DescribeJobs
    opens the gate."""
    def opener(n, info):
        if "/.s3rules/leases/" in info["path"] and released(info["body"]):
            gate.open()
    proxy.before_forward("PutObject", opener)
    proxy.before_forward("DescribeJobs", lambda n, info: gate.open())   # watching by the ledger's ids


class Gate:
    """Jobs whose command starts with ``gate.wait`` block until the test opens the gate: they stay
    in flight (RUNNING) for as long as the test needs, however slow the machine."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def wait(self) -> str:
        """A shell prefix (job processes run on this machine and see this file)."""
        return f"while [ ! -e {shlex.quote(str(self.path))} ]; do sleep 0.1; done; "

    def open(self) -> None:
        self.path.touch()

    @property
    def is_open(self) -> bool:
        return self.path.exists()


def label_of(job_name: str) -> str:
    """``s3rules-up-A-0123456789abcdef`` -> ``up-A``."""
    assert job_name.startswith(NAME_PREFIX) and identity_of_name(job_name), job_name
    return job_name[len(NAME_PREFIX):-17]


class Flow(FlowBase):
    """One test's workflow directory, bucket, queue and job definition."""

    def write(self, rules: str = PIPELINE, samples="AB", *, pre: str = "", data: bool = True,
              queue: str | None = None, job_definition: str | None = None, arrays: bool = True) -> "Flow":
        """``arrays=False`` submits every job alone (``array_size: 1``)."""
        (self.dir / "samples.csv").write_text("sample\n" + "".join(f"{s}\n" for s in samples))
        head = (f'samples: "samples.csv"\nroot = "s3://{self.bucket}/out"\n'
                f'default:\n    executor: batch\n    queue: "{queue or self.queue}"\n'
                f'    job_definition: "{job_definition or self.jd}"\n' + ("" if arrays else "    array_size: 1\n"))
        self.path.write_text(head + rules.replace("BUCKET", self.bucket).replace("PRE ", pre))
        if data:
            for s in samples:
                self.put(f"data/{s}.txt", f"hello {s}\n")
        return self

    def describe(self, job_ids) -> dict[str, dict]:
        return self.env.server.describe_jobs(job_ids)

    def wait(self, job_ids, timeout: float = 60) -> dict[str, dict]:
        return self.env.server.wait_for_jobs(job_ids, timeout=timeout)

    def wait_status(self, job_ids, statuses, timeout: float = 30) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.describe(job_ids)
            if all(j["status"] in statuses for j in jobs.values()) and len(jobs) == len(set(job_ids)):
                return jobs
            assert time.monotonic() < deadline, {k: v["status"] for k, v in jobs.items()}
            time.sleep(0.05)


@pytest.fixture
def flow(aws_env, tmp_path):
    return Flow(aws_env, tmp_path)


@pytest.fixture
def calls(aws_env):
    return BatchCalls(aws_env.server.client("s3"))


@pytest.fixture
def gate(tmp_path):
    g = Gate(tmp_path / "gate")
    try:
        yield g
    finally:
        g.open()   # whatever still waits finishes (the aws_env fixture terminates the rest)


@pytest.fixture
def proxy(aws_env, monkeypatch):
    """tests/faultproxy.py in front of moto: s3rules' own calls go through it (no faults unless the
    test scripts some). boto3's default session is kept, so ``calls`` still sees every call."""
    p = FaultProxy(aws_env.server.endpoint_url).start()
    for key, value in p.env().items():
        monkeypatch.setenv(key, value)
    if "s3fs" in sys.modules:   # an S3FileSystem made before keeps its endpoint
        sys.modules["s3fs"].S3FileSystem.clear_instance_cache()
    try:
        yield p
    finally:
        p.stop()


class Terminal(io.StringIO):
    """stdin as if a person sat at a terminal and typed ``text``."""

    def isatty(self) -> bool:
        return True


def run(*args) -> int:
    return main(["run", *args, *POLL])


def table(text: str) -> dict[str, dict[str, int]]:
    """``s3rules status`` output as {rule: {column: n}} ("to do" is one column)."""
    lines = text.strip().splitlines()
    columns = lines[0].replace("to do", "to_do").split()[1:]
    out = {}
    for line in lines[1:]:
        name, *numbers = line.split()
        out[name] = dict(zip(columns, map(int, numbers)))
    return out


def assert_clean_error(err: str, *needles: str) -> None:
    """One paragraph from the CLI, no traceback, naming what to do."""
    assert "Traceback" not in err
    message = err.strip()
    assert message.startswith("s3rules: error: "), err
    assert "\n\n" not in message and len(message.splitlines()) == 1, err
    for needle in needles:
        assert needle in message, (needle, err)


# -- 1. what is submitted --------------------------------------------------------------------------

def test_only_missing_targets_are_submitted(flow, calls, capsys):
    flow.write(samples="ABC")
    flow.put("out/up/A.txt", "ALREADY THERE\n")
    assert run(flow.bf) == 0
    assert sorted(calls.labels) == ["summary", "up-B", "up-C"]
    assert flow.get("out/summary.txt") == "ALREADY THERE\nHELLO B\nHELLO C\n"
    assert flow.get("out/up/A.txt") == "ALREADY THERE\n"

    calls.reset()
    assert run(flow.bf) == 0
    assert calls.submits == []
    assert "nothing to do" in capsys.readouterr().err


# -- 2. dependsOn ----------------------------------------------------------------------------------

def test_downstream_jobs_depend_on_their_upstream_job_ids_and_run_after_them(flow, calls):
    flow.write(samples="ABC", arrays=False)
    assert run(flow.bf) == 0
    jobs = calls.by_label()
    assert set(jobs) == {"up-A", "up-B", "up-C", "summary"}
    ups = {jobs[f"up-{s}"]["jobId"] for s in "ABC"}
    for s in "ABC":
        assert "dependsOn" not in jobs[f"up-{s}"]
    assert {d["jobId"] for d in jobs["summary"]["dependsOn"]} == ups
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\nHELLO C\n"
    described = flow.describe(ups | {jobs["summary"]["jobId"]})
    summary = described.pop(jobs["summary"]["jobId"])
    assert all(j["status"] == "SUCCEEDED" for j in described.values())
    assert summary["startedAt"] >= max(j["stoppedAt"] for j in described.values())
    # what each job runs, and the identity it carries
    up_a = jobs["up-A"]
    assert up_a["jobQueue"] == flow.queue and up_a["jobDefinition"] == flow.jd
    assert up_a["containerOverrides"]["command"][:2] == ["bash", "-c"]
    assert "set -euo pipefail" in up_a["containerOverrides"]["command"][2]
    assert up_a["tags"]["s3rules:identity"].startswith(identity_of_name(up_a["jobName"]))
    assert up_a["tags"]["s3rules:rule"] == "up"


# -- 3. re-attaching submits nothing twice ---------------------------------------------------------

def test_a_second_run_while_jobs_are_in_flight_submits_nothing(flow, calls, gate, capsys):
    flow.write(pre=gate.wait)                        # in flight until the second run has reused them
    assert run(flow.bf, "--detach") == 0
    assert sorted(calls.labels) == ["summary", "up-A", "up-B"]
    err = capsys.readouterr().err
    assert "detached: 3 jobs submitted" in err and "re-attach" in err
    assert len(calls.arrays) == 1 and calls.arrays[0]["arrayProperties"] == {"size": 2}
    first_ids = set(calls.ids().values())
    parents = {p["jobId"] for p in calls.arrays}
    in_flight = {j["jobId"] for j in flow.jobs() if j["status"] not in ("SUCCEEDED", "FAILED")}
    assert in_flight - parents == first_ids          # the second run really starts while they run

    calls.reset()
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0
    assert gate.is_open and calls.submits == []
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\n"
    assert {j["jobId"] for j in flow.jobs()} - parents == first_ids
    assert "3 jobs done" in capsys.readouterr().err


# -- 4. interrupted mid-submission -----------------------------------------------------------------

def test_a_run_interrupted_mid_submission_then_restarted_makes_no_duplicate(flow, calls, gate, capsys):
    flow.write(samples="ABC", pre=gate.wait, arrays=False)   # in flight until the restart has reused them
    answered = []

    def interrupt_after_second(**_):
        answered.append(1)
        if len(answered) == 2:   # Batch made the job, but this process never learns its id
            raise KeyboardInterrupt

    calls.events.register("after-call.batch.SubmitJob", interrupt_after_second)
    assert run(flow.bf) == 130
    assert len(calls.submits) == 2
    assert "detached" in capsys.readouterr().err
    calls.events.unregister("after-call.batch.SubmitJob", interrupt_after_second)

    calls.reset()
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0
    assert sorted(calls.labels) == ["summary", "up-C"]   # the two made before the interrupt are reused
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\nHELLO C\n"
    jobs = flow.jobs()
    per_identity = Counter(identity_of_name(j["jobName"]) for j in jobs)
    assert len(per_identity) == 4 and set(per_identity.values()) == {1}, per_identity
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}


# -- 5. a failing job ------------------------------------------------------------------------------

FAILING = PIPELINE.replace(
    "PRE ", "if [ {sample} = B ]; then echo 'bad input for B: cannot parse line 7' >&2; exit 3; fi; ")


def test_a_failing_job_fails_its_dependents_and_is_reported(flow, calls, proxy, capsys):
    """Whatever order DescribeJobs lists them in (AWS promises none), a job that Batch failed
    because its upstream failed is reported as not run, not as a failure of its own."""
    flow.write(FAILING, samples="ABC")

    def both_settled_first(n, info):   # the poll that sees up-B FAILED also sees the summary FAILED
        ids = {label: p.get("jobId") for label, p in calls.by_label().items()}
        if "summary" in ids and flow.describe([ids["up-B"]])[ids["up-B"]]["status"] == "FAILED":
            flow.wait([ids["summary"]], timeout=10)

    def reversed_order(doc, info):   # Batch's answer, in the other order
        doc["jobs"].reverse()

    proxy.before_forward("DescribeJobs", both_settled_first)
    proxy.rewrite("DescribeJobs", reversed_order)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    jobs = calls.by_label()
    failed_id = jobs["up-B"]["jobId"]
    assert "Traceback" not in err
    assert "1 job failed" in err
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    assert "rule up (sample=B)" in line and "exit code 3" in line and failed_id in line
    assert "| bad input for B: cannot parse line 7" in err
    assert "1 job was not run because a job it needs failed" in err
    assert "summary" not in line
    assert flow.get("out/up/A.txt") == "HELLO A\n" and flow.get("out/up/C.txt") == "HELLO C\n"
    assert flow.get("out/summary.txt") is None
    summary = flow.wait([jobs["summary"]["jobId"]])[jobs["summary"]["jobId"]]
    assert summary["status"] == "FAILED" and not summary.get("startedAt")   # Batch never ran it
    assert proxy.rewritten["DescribeJobs"] >= 1     # the poll that saw both failures was reversed

    calls.reset()
    flow.write(PIPELINE, samples="ABC", data=False)   # fixed: only B and the summary run again
    assert run(flow.bf, "--rerun-triggers", "none") == 0   # (the fix changed A's and C's command too)
    assert sorted(calls.labels) == ["summary", "up-B"]


# -- 6. fan-in over more than 20 upstream jobs -----------------------------------------------------

FAN_IN = '''
rule all:
    input: "{root}/agg.txt"
rule one:
    output: "{root}/one/{sample}.txt"
    shell: "echo {sample} | s3tool put {output}"
rule agg:
    input: expand("{root}/one/{sample}.txt")
    output: "{root}/agg.txt"
    shell: "s3tool ls s3://BUCKET/out/one/ | sort | s3tool put {output}"
'''


def test_fan_in_over_more_than_20_upstream_jobs(flow, calls):
    samples = [f"S{i:02d}" for i in range(25)]
    flow.write(FAN_IN, samples=samples, data=False, arrays=False)
    finished_at_submit = []

    def count_finished(params, **_):
        if params["jobName"].startswith(NAME_PREFIX + "agg-"):
            ones = [p["jobId"] for p in calls.submits if p["jobName"].startswith(NAME_PREFIX + "one-")]
            finished_at_submit.append(sum(j["status"] == "SUCCEEDED" for j in flow.describe(ones).values()))

    calls.events.register("provide-client-params.batch.SubmitJob", count_finished)
    assert run(flow.bf) == 0
    assert sorted(calls.labels) == sorted([f"one-{s}" for s in samples] + ["agg"])
    assert all(len(p.get("dependsOn", [])) <= 20 for p in calls.submits)
    assert finished_at_submit and finished_at_submit[0] >= 5     # held back until <= 20 were unfinished
    agg = calls.by_label()["agg"]
    ones = {p["jobId"] for p in calls.submits if p["jobName"].startswith(NAME_PREFIX + "one-")}
    assert {d["jobId"] for d in agg.get("dependsOn", [])} <= ones
    assert flow.get("out/agg.txt").split() == [f"out/one/{s}.txt" for s in samples]


def test_fan_in_held_back_when_detached_is_submitted_by_the_next_run(flow, calls, capsys):
    samples = [f"S{i:02d}" for i in range(21)]
    flow.write(FAN_IN, samples=samples, data=False, arrays=False)
    assert run(flow.bf, "--detach") == 0
    assert len(calls.submits) == 21 and "agg" not in calls.labels
    err = capsys.readouterr().err
    assert "detached: 21 jobs submitted" in err
    assert "1 job waits for more than 20 unfinished upstream jobs" in err
    calls.reset()
    assert run(flow.bf) == 0
    assert calls.labels == ["agg"]
    assert flow.get("out/agg.txt").split() == [f"out/one/{s}.txt" for s in samples]
    assert len(flow.jobs()) == 22


# -- 7. --force ------------------------------------------------------------------------------------

def test_force_resubmits_the_target_and_downstream(flow, calls, capsys):
    flow.write()
    for key, text in (("up/A", "HELLO A\n"), ("up/B", "HELLO B\n"), ("summary", "HELLO A\nHELLO B\n")):
        flow.put(f"out/{key}.txt", text)
    flow.put("data/A.txt", "changed A\n")         # newer than its output: make would rerun, s3rules not
    assert run(flow.bf) == 0                       # outputs exist: nothing runs
    assert calls.submits == []
    assert run(flow.bf, "--force", flow.url("out/up/A.txt")) == 0
    assert sorted(calls.labels) == ["summary", "up-A"]
    assert flow.get("out/summary.txt") == "CHANGED A\nHELLO B\n"


# -- 8. cancel -------------------------------------------------------------------------------------

def test_cancel_terminates_the_workflows_jobs_in_flight(flow, calls, gate, capsys, monkeypatch):
    flow.write(pre=gate.wait)                      # never opened: only cancel ends them
    assert run(flow.bf, "--detach") == 0
    ids = [calls.ids()[label] for label in ("up-A", "up-B", "summary")]   # array children and a job
    flow.wait_status(ids[:2], {"RUNNING"})
    capsys.readouterr()

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))   # no terminal to ask on
    assert main(["cancel", flow.bf]) == 2
    err = capsys.readouterr().err
    assert "-y" in err and "Traceback" not in err
    assert calls.terminated == []

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))   # asked on a terminal, answered no
    assert main(["cancel", flow.bf]) == 1
    out, err = capsys.readouterr()
    assert "Terminate these 3 jobs? [y/N]" in out and "nothing cancelled" in err
    assert all(i in err for i in ids)                      # it lists what it would terminate
    assert calls.terminated == []
    assert all(j["status"] not in ("SUCCEEDED", "FAILED") for j in flow.describe(ids).values())

    assert main(["cancel", flow.bf, "-y"]) == 0
    assert "terminated 3 jobs" in capsys.readouterr().err
    assert sorted(calls.terminated) == sorted(ids)
    final = flow.wait(ids, timeout=20)
    assert {j["status"] for j in final.values()} == {"FAILED"}
    assert flow.get("out/up/A.txt") is None

    assert main(["cancel", flow.bf, "-y"]) == 0
    assert "no job of this workflow is in flight" in capsys.readouterr().err


# -- 9. status -------------------------------------------------------------------------------------

def test_status_counts_done_in_flight_and_to_do(flow, calls, gate, capsys):
    flow.write(samples="ABC", pre=gate.wait)       # RUNNING until the test has counted them
    flow.put("out/up/A.txt", "HELLO A\n")
    assert main(["status", flow.bf]) == 0
    before = table(capsys.readouterr().out)
    assert before["up"] == {"done": 1, "SUBMITTED": 0, "PENDING": 0, "RUNNABLE": 0, "STARTING": 0,
                            "RUNNING": 0, "to_do": 2, "total": 3}
    assert before["summary"]["to_do"] == 1 and before["total"]["to_do"] == 3
    assert calls.submits == []                        # status submits nothing

    assert run(flow.bf, "--detach") == 0
    ids = calls.ids()
    flow.wait_status([ids["up-B"], ids["up-C"]], {"RUNNING"})
    flow.wait_status([ids["summary"]], {"PENDING"})
    capsys.readouterr()
    assert main(["status", flow.bf]) == 0
    during = table(capsys.readouterr().out)
    assert during["up"]["done"] == 1 and during["up"]["RUNNING"] == 2 and during["up"]["to_do"] == 0
    assert during["summary"]["PENDING"] == 1           # waiting on its dependencies
    assert during["total"]["total"] == 4

    # --watch refreshes until nothing is in flight: the jobs finish on Batch without s3rules
    gate.open()
    assert main(["status", flow.bf, "--watch", "--interval", "0.2"]) == 0
    tables = capsys.readouterr().out.strip().split("\n\n")
    assert len(tables) >= 2
    after = table(tables[-1])
    assert "up" in after, tables
    assert after["up"]["done"] == 3 and after["summary"]["done"] == 1
    assert after["total"]["done"] == 4 and after["total"]["to_do"] == 0
    assert sum(after["total"][s] for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")) == 0


# -- 10. logs --------------------------------------------------------------------------------------

def test_logs_prints_the_jobs_cloudwatch_lines(flow, calls, capsys):
    flow.write(pre="echo 'working on {sample}' >&2; echo second line;")
    assert main(["logs", flow.bf, flow.url("out/up/A.txt")]) == 2   # never submitted
    assert "no Batch job" in capsys.readouterr().err
    assert run(flow.bf, flow.url("out/up/A.txt")) == 0
    capsys.readouterr()
    assert main(["logs", flow.bf, flow.url("out/up/A.txt")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["working on A", "second line"]
    assert calls.by_label()["up-A"]["jobId"] in err and "SUCCEEDED" in err


# -- 11. AWSBatchHelper ----------------------------------------------------------------------------

def test_aws_batch_helper(flow, calls, capsys):
    a, b, lazy, bad = (flow.url(f"api/{k}.txt") for k in ("a", "b", "lazy", "bad"))
    flow.put("api/there.txt", "x")
    helper = AWSBatchHelper(flow.queue, poll_interval=0.2)
    assert helper.add_job("exists", flow.jd, outputs=[flow.url("api/there.txt")], command=["true"]) is None

    make_a = dict(outputs=[a], command=["bash", "-c", f"sleep 1; echo made a | s3tool put {a}"])
    id_a = helper.add_job("make-a", flow.jd, **make_a)
    assert id_a and helper.add_job("make-a", flow.jd, **make_a) == id_a          # same helper
    assert AWSBatchHelper(flow.queue).add_job("make-a", flow.jd, **make_a) == id_a   # another process
    id_b = helper.add_job("make-b", flow.jd, outputs=[b], depends_on=[id_a, None],
                          command=["bash", "-c", f"s3tool cat {a} | tr a-z A-Z | s3tool put {b}"])
    id_lazy = helper.add_job("lazy", flow.jd, outputs=[lazy], command=["true"])
    id_bad = helper.add_job("bad", flow.jd, outputs=[bad], command=["bash", "-c", "exit 4"])
    assert len({id_a, id_b, id_lazy, id_bad}) == 4
    assert len(calls.submits) == 4
    assert calls.by_label()["make-b"]["dependsOn"] == [{"jobId": id_a}]
    assert calls.by_label()["make-b"]["retryStrategy"]["attempts"] == 6   # reclaimed hosts: 5 more, as run's
    with pytest.raises(S3RulesError, match="at most 20"):
        helper.add_job("many", flow.jd, outputs=[flow.url("api/many.txt")], command=["true"],
                       depends_on=[id_a] * 21)
    assert len(calls.submits) == 4

    result = helper.monitor(quiet=True)
    assert result == {id_a: "SUCCEEDED", id_b: "SUCCEEDED", id_lazy: "FAILED", id_bad: "FAILED"}
    assert flow.get("api/b.txt") == "MADE A\n"
    assert "did not write all of its outputs" in capsys.readouterr().err
    assert AWSBatchHelper(flow.queue).add_job("make-a", flow.jd, **make_a) is None   # done now

    calls.reset()
    dry = AWSBatchHelper(flow.queue, dry_run=True)
    assert dry.add_job("exists", flow.jd, outputs=[flow.url("api/there.txt")], command=["true"]) is None
    job = dry.add_job("make-c", flow.jd, outputs=[flow.url("api/c.txt")], command=["true"])
    assert job is not None
    assert dry.monitor(quiet=True) == {job: "DRY_RUN"}
    assert calls.submits == []
    assert "would submit" in capsys.readouterr().err


# -- 12. set-up errors -----------------------------------------------------------------------------

def test_missing_queue_is_a_clear_error(flow, calls, capsys):
    flow.write(queue="no-such-queue")
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, "no-such-queue", "does not exist", "queue:")
    assert calls.submits == []


def test_missing_job_definition_is_a_clear_error(flow, calls, capsys):
    flow.write(job_definition="no-such-definition")
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, "no-such-definition", "does not exist", "job_definition:")
    assert calls.submits == []


# longer than the 128 KiB Linux allows one argument: the job must not pass it as one
HUGE = PIPELINE.replace("for f in {input}; do s3tool cat $f; done", "echo " + "x" * 140_000)


def test_a_command_too_long_for_submit_job_runs_from_a_script_staged_on_s3(flow, calls):
    flow.write(HUGE)
    flow.path.write_text(flow.path.read_text().replace("default:\n", 'default:\n    fetch_command: "s3tool cat {url}"\n'))
    assert run(flow.bf) == 0
    assert flow.get("out/summary.txt") == "x" * 140_000 + "\n"
    summary = calls.by_label()["summary"]
    assert len(json.dumps(summary["containerOverrides"])) < 8192 and ".sh" in summary["containerOverrides"]["command"][-1]


def test_a_command_too_long_with_nowhere_to_stage_it_is_a_clear_error_before_anything_is_submitted(
        flow, calls, capsys):
    flow.write(HUGE)
    flow.path.write_text(flow.path.read_text().replace('"{root}/summary.txt"', '"memory://huge/summary.txt"'))
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, "rule 'summary'", "too long for SubmitJob", "shorten")
    assert calls.submits == []


FAKE_SECRET = "fakeSECRET/do-not-print-0123456789abcdefXYZ"


PARTIAL = {"AWS_ACCESS_KEY_ID": "AKIAFAKEKEYID", "AWS_SESSION_TOKEN": FAKE_SECRET}
NO_CREDENTIALS = [
    pytest.param({}, id="none"),
    pytest.param({"AWS_SECRET_ACCESS_KEY": FAKE_SECRET}, id="secret-without-key-id"),
    pytest.param(PARTIAL, id="key-id-without-secret"),
]


@pytest.fixture(params=NO_CREDENTIALS)
def no_credentials(request, flow, monkeypatch, tmp_path):
    """The environment with no usable credentials (plus, in some cases, part of a set)."""
    flow.write()
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in request.param.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    boto3.setup_default_session()   # a session made now sees no credentials
    return request.param


#: what each layer says when it meets no usable credentials: (nothing usable, a partial set).
#: ``run``, ``status`` and ``cancel`` meet them first on S3 (planning lists the outputs); ``logs`` on
#: Batch (it asks Batch for the job first).
CREDENTIALS_SAY = {
    "s3": ("Unable to locate credentials. Configure credentials (AWS_PROFILE, aws configure / aws sso "
           "login, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
           "Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY. Configure credentials "
           "(AWS_PROFILE, aws configure / aws sso login, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
    "batch": ("no AWS credentials found. Set AWS_PROFILE (see `aws configure`), or AWS_ACCESS_KEY_ID and "
              "AWS_SECRET_ACCESS_KEY",
              "incomplete AWS credentials (AWS_SECRET_ACCESS_KEY is missing). Set it too, or unset "
              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and use AWS_PROFILE"),
}


def assert_credentials_error(code: int, capsys, layer: str, given: dict) -> None:
    out, err = capsys.readouterr()
    assert code == 2, err
    nothing, partial = CREDENTIALS_SAY[layer]
    assert_clean_error(err, "credentials", partial if given == PARTIAL else nothing)   # says what to set
    assert FAKE_SECRET not in out + err


@pytest.mark.parametrize("command", ["run", "status", "cancel"])
def test_no_credentials_is_a_clear_error(flow, no_credentials, capsys, command):
    argv = {"run": ["run", flow.bf, *POLL], "status": ["status", flow.bf], "cancel": ["cancel", flow.bf, "-y"]}
    assert_credentials_error(main(argv[command]), capsys, "s3", no_credentials)
    assert flow.jobs() == []


def test_no_credentials_is_a_clear_error_from_batch_calls(flow, no_credentials, capsys):
    """``logs`` asks Batch (not S3) first; the Python API raises the same error."""
    assert_credentials_error(main(["logs", flow.bf, flow.url("out/summary.txt")]), capsys, "batch", no_credentials)
    with pytest.raises(S3RulesError, match="credentials") as caught:
        AWSBatchHelper(flow.queue).add_job("x", flow.jd, command=["true"])
    assert caught.value.exit_code == 2 and FAKE_SECRET not in str(caught.value)
    assert flow.jobs() == []


# -- 13. SUCCEEDED without its outputs -------------------------------------------------------------

LAZY = '''
rule all:
    input: expand("{root}/made/{sample}.txt")
rule make:
    output: "{root}/made/{sample}.txt"
    shell: "if [ {sample} = A ] || s3tool cat s3://BUCKET/flag >/dev/null 2>&1; then echo ok | s3tool put {output}; fi"
'''


def test_a_job_that_succeeds_without_writing_its_outputs_is_a_failure_and_runs_again(flow, calls, capsys):
    flow.write(LAZY, data=False)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    lazy_id = calls.by_label()["make-B"]["jobId"]
    assert flow.describe([lazy_id])[lazy_id]["status"] == "SUCCEEDED"     # Batch's word
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    assert "rule make (sample=B)" in line and "finished without writing" in line
    assert flow.url("out/made/B.txt") in line and lazy_id in line
    assert flow.get("out/made/A.txt") == "ok\n"

    calls.reset()
    flow.put("flag", "")
    assert run(flow.bf) == 0
    assert calls.labels == ["make-B"]
    assert flow.get("out/made/B.txt") == "ok\n"


LAZY_UP = PIPELINE.replace("PRE s3tool cat {input} | tr a-z A-Z | s3tool put {output}",
                           "if [ {sample} = A ]; then s3tool cat {input} | s3tool put {output}; fi")


def test_dependents_of_a_job_that_did_not_write_its_outputs_are_reported_as_not_run(flow, calls, capsys):
    flow.write(LAZY_UP)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert "finished without writing its output " + flow.url("out/up/B.txt") in err
    assert "1 job failed" in err
    assert "1 job was not run because a job it needs failed" in err


# -- 14. Ctrl-C while watching detaches ------------------------------------------------------------

def test_ctrl_c_while_watching_detaches_and_jobs_carry_on(flow, calls, capsys):
    flow.write()

    def ctrl_c(**_):
        raise KeyboardInterrupt

    calls.events.register("before-call.batch.DescribeJobs", ctrl_c)
    assert run(flow.bf) == 130
    err = capsys.readouterr().err
    assert "detached: 3 jobs submitted" in err and "s3rules run" in err
    assert calls.terminated == []
    final = flow.wait([p["jobId"] for p in calls.submits])
    assert {j["status"] for j in final.values()} == {"SUCCEEDED"}
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\n"
