"""Fixes from what a new user hit on the moto-based Batch server (issue 12), end to end.

The Python API without a command runs the job definition's own, and its dry run needs no AWS;
``s3rules logs`` of a job that never ran says which failure stopped it; jobs of a forced rerun
left in flight by Ctrl-C are in flight for ``status`` and ``run``, not done by their old outputs.
Fixtures and helpers are tests/test_batch.py's (moto's server, Batch jobs run as local processes).
"""
from __future__ import annotations

import os
import shutil
import sys

import boto3
import pytest

from s3rules.api import AWSBatchHelper
from s3rules.cli import main
from workflows import DATA, SHEET, write
from workflows import PIPELINE as LOCAL_PIPELINE
from test_batch import FAILING, calls, flow, gate, released, run, table  # noqa: F401  (fixtures)


# -- the Python API ---------------------------------------------------------------------------------

def test_add_job_without_a_command_runs_the_job_definitions_own(flow, calls):
    """No ``containerOverrides.command`` at all: an empty one replaced the definition's command,
    and every such job failed."""
    made = flow.url("api/own.txt")
    own = flow.batch.register_job_definition(
        jobDefinitionName=f"{flow.jd}-own", type="container",
        containerProperties={"image": "busybox",
                             "command": ["bash", "-c", f"echo from the definition | s3tool put {made}"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "512"}]})["jobDefinitionName"]
    helper = AWSBatchHelper(flow.queue, poll_interval=0.2)
    job_id = helper.add_job("own", own, outputs=[made], environment={"SAMPLE": "S1"})
    assert "command" not in calls.submits[0]["containerOverrides"]
    assert calls.submits[0]["containerOverrides"]["environment"] == [{"name": "SAMPLE", "value": "S1"}]
    assert helper.monitor(quiet=True) == {job_id: "SUCCEEDED"}
    assert flow.get("api/own.txt") == "from the definition\n"


def test_a_dry_run_needs_no_region_nor_credentials(tmp_path, monkeypatch, capsys):
    """A dry run prints what it would submit and never speaks to Batch; an S3 output it cannot
    check without credentials is said to be unchecked, and the job would be submitted."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    if "s3fs" in sys.modules:   # an S3FileSystem made by an earlier test keeps its credentials
        sys.modules["s3fs"].S3FileSystem.clear_instance_cache()
    there = tmp_path / "there.txt"
    there.write_text("x")

    helper = AWSBatchHelper("genomics", dry_run=True)
    assert helper.add_job("exists", "tools:3", outputs=[str(there)]) is None
    first = helper.add_job("align-S1", "tools:3", outputs=[str(tmp_path / "S1.bam")], command=["bash", "-c", "..."])
    second = helper.add_job("call-S1", "tools:3", outputs=["s3://no-such-bucket-s3rules/S1.vcf"], depends_on=[first])
    assert first and second and first != second
    assert helper.monitor(quiet=True) == {first: "DRY_RUN", second: "DRY_RUN"}
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 2, err
    assert lines[0].startswith("[dry run] would submit s3rules-align-S1-") and lines[0].endswith(" to genomics")
    assert lines[1].startswith("[dry run] would submit s3rules-call-S1-") and f"after {first}" in lines[1]
    assert "not checked" in lines[1] and "credentials" in lines[1]


# -- logs of a job that never ran -------------------------------------------------------------------

def assert_never_ran(err: str, job: str, how: str, culprit: str, failure: str, culprit_url: str) -> None:
    """One paragraph: the job never ran, how, the failure that stopped it, and the command that
    prints that failure's log."""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"s3rules: job {job} never ran, so it has no log: {how}"), err
    assert f"it needs {culprit}, which failed ({failure}" in err, err
    assert f"`s3rules logs {flow_path(err)} {culprit_url}` prints the log of {culprit}" in err, err


def flow_path(err: str) -> str:
    return err.split("`s3rules logs ", 1)[1].split(" ", 1)[0]


@pytest.mark.parametrize("detach", [False, True], ids=["watched", "detached"])
@pytest.mark.parametrize("arrays", [True, False], ids=["array", "single-jobs"])
def test_logs_of_a_job_that_never_ran_names_the_failure_that_stopped_it(flow, calls, capsys, arrays, detach):
    """Batch failed the summary before it started, because up-B failed: ``logs`` says so and exits 1
    (it printed ``# s3rules-summary-... FAILED`` and exited 0), whether s3rules watched the failure
    (the ledger says it) or not (Batch says it)."""
    flow.write(FAILING, samples="AB", arrays=arrays)
    assert run(flow.bf, *(["--detach"] if detach else [])) == (0 if detach else 1)
    ids = calls.ids()
    flow.wait(ids.values())
    summary = flow.describe([ids["summary"]])[ids["summary"]]
    assert summary["status"] == "FAILED" and not summary.get("startedAt")
    capsys.readouterr()

    assert main(["logs", flow.bf, flow.url("out/summary.txt")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_never_ran(err, "summary", f"Batch failed {calls.submits[-1]['jobName']} ({ids['summary']}) before it "
                     "started", "up[sample=B]", f"application error, exit code 3, job id {ids['up-B']}", flow.url("out/up/B.txt"))
    assert main(["logs", flow_path(err), flow.url("out/up/B.txt")]) == 0   # the command it names
    assert "bad input for B: cannot parse line 7" in capsys.readouterr().out


FAN_IN_ONE_FAILS = """
rule all:
    input: "{root}/agg.txt"
rule one:
    output: "{root}/one/{sample}.txt"
    shell: "if [ {sample} = S00 ]; then echo 'S00 is broken' >&2; exit 5; fi; echo {sample} | s3tool put {output}"
rule agg:
    input: expand("{root}/one/{sample}.txt")
    output: "{root}/agg.txt"
    shell: "echo done | s3tool put {output}"
"""


def test_logs_of_a_job_s3rules_never_submitted_names_the_failure_that_stopped_it(flow, calls, capsys):
    """The aggregate waits on 21 single jobs, more than Batch's 20, so s3rules holds it back; one of
    them fails, so it is never submitted: ``logs`` says so from the ledger and exits 1."""
    samples = [f"S{i:02d}" for i in range(21)]
    flow.write(FAN_IN_ONE_FAILS, samples=samples, data=False, arrays=False)
    assert run(flow.bf) == 1
    assert "agg" not in calls.labels
    capsys.readouterr()

    assert main(["logs", flow.bf, flow.url("out/agg.txt")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_never_ran(err, "agg", "s3rules never submitted it (", "one[sample=S00]",   # (and why, as recorded)
                     f"application error, exit code 5, job id {calls.ids()['one-S00']}", flow.url("out/one/S00.txt"))


def test_logs_of_a_local_job_that_never_started_names_the_failure_that_stopped_it(tmp_path, monkeypatch, capsys):
    """A local job whose upstream failed never starts: no log, and ``logs`` says why (exit 1); a
    job that never ran for no known reason is still the error it was (exit 2)."""
    write(tmp_path, LOCAL_PIPELINE.replace("tr a-z A-Z < {input} > {output}",
                                           "if [ {sample} = B ]; then echo broken >&2; exit 4; fi; "
                                           "tr a-z A-Z < {input} > {output}"), SHEET, DATA)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-q", "-k"]) == 1
    capsys.readouterr()
    assert main(["logs", "out/summary.tsv"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("s3rules: job summary never ran, so it has no log: s3rules never started it; it needs "
                          "trim[sample=B], which failed (exit code 4"), err   # count[B] never ran: looked through
    assert "`s3rules logs Batchfile out/trim/B.txt` prints the log of trim[sample=B]" in err, err
    assert main(["logs", "Batchfile", "out/trim/B.txt"]) == 0
    assert "broken" in capsys.readouterr().out

    (tmp_path / "out").rename(tmp_path / "gone")             # nothing below it failed now: no reason known
    shutil.rmtree(tmp_path / ".s3rules")
    assert main(["logs", "out/summary.tsv"]) == 2
    assert "no log of job summary" in capsys.readouterr().err


# -- a forced rerun left in flight ------------------------------------------------------------------

def ctrl_c_once_submitted(calls) -> None:
    """Ctrl-C, once, at the run's first DescribeJobs after it released its submission lease:
    everything is submitted, and the run is watching."""
    submitted, fired = [], []

    def lease_released(params, **_):
        if params.get("Key", "").startswith(".s3rules/leases/") and released(params.get("Body")):
            submitted.append(True)

    def ctrl_c(**_):
        if submitted and not fired:
            fired.append(True)
            raise KeyboardInterrupt

    calls.events.register("provide-client-params.s3.PutObject", lease_released)
    calls.events.register("before-call.batch.DescribeJobs", ctrl_c)


@pytest.mark.parametrize("arrays", [True, False], ids=["array", "single-jobs"])
def test_a_forced_rerun_left_in_flight_is_in_flight_for_status_and_run(flow, calls, gate, capsys, arrays):
    """``run -F`` then Ctrl-C: the old outputs exist, but the jobs the ledger says were started are
    in flight: ``status`` counts them in their Batch states, and ``run`` re-attaches, watches them
    and reports them (it said "nothing to do" while status showed 0 in flight)."""
    flow.write(samples="ABC", pre=gate.wait, arrays=arrays)
    gate.open()
    assert run(flow.bf) == 0
    gate.path.unlink()                                  # the forced rerun's jobs wait, in flight
    calls.reset()
    ctrl_c_once_submitted(calls)
    assert run(flow.bf, "-F") == 130
    assert "detached: 4 jobs submitted" in capsys.readouterr().err
    ids = calls.ids()
    assert sorted(ids) == ["summary", "up-A", "up-B", "up-C"]
    flow.wait_status([ids[f"up-{s}"] for s in "ABC"], {"RUNNING"})

    assert main(["status", flow.bf]) == 0
    during = table(capsys.readouterr().out)
    assert during["up"]["RUNNING"] == 3 and during["up"]["done"] == 0 and during["up"]["to_do"] == 0
    in_flight = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
    assert sum(during["summary"][s] for s in in_flight) == 1 and during["summary"]["done"] == 0
    assert sum(during["total"][s] for s in in_flight) == 4

    calls.reset()
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0                            # re-attaches
    err = capsys.readouterr().err
    assert gate.is_open and calls.submits == []
    assert "nothing to do" not in err and "4 jobs done" in err
    assert all(f"done up[sample={s}]" in err for s in "ABC") and "done summary" in err
    assert {j["status"] for j in flow.describe(ids.values()).values()} == {"SUCCEEDED"}

    assert main(["status", flow.bf]) == 0
    after = table(capsys.readouterr().out)
    assert after["total"]["done"] == 4 and sum(after["total"][s] for s in in_flight) == 0
