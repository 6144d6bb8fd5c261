"""README promises about s3rules' set-up on AWS Batch, each checked so that breaking it fails a test.

- the submission lease expires 60 s after it was last written (unless renewed);
- ``array_size: N`` caps the children per array job;
- watching backs off from ``--poll-interval`` to 30 s while nothing changes;
- a queue that is DISABLED or INVALID, and a job definition that is INACTIVE, are refused before
  anything is submitted (exit status 2, one paragraph);
- ListJobs is followed page by page (``nextToken``): in-flight jobs on later pages are reused
  and counted by ``s3rules status``.

Same harness as tests/test_batch.py (moto's server, jobs run as local processes); answers moto
never gives (an INVALID queue, a definition looked up by ``name:revision``, ListJobs in pages)
come from tests/faultproxy.py, over HTTP.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from s3rules.cli import main
from test_batch import (POLL, assert_clean_error, calls, flow, gate, open_gate_on_lease_release, proxy,  # noqa: F401
                        released, run, table)

S3RULES = os.path.join(os.path.dirname(sys.executable), "s3rules")

STATES = ["done", "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "to_do"]
IDLE = dict.fromkeys(STATES, 0)

ONE_RULE = '''
rule all:
    input: expand("{root}/up/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    shell: "PRE s3tool cat {input} | tr a-z A-Z | s3tool put {output}"
'''


# -- the lease lives 60 s ----------------------------------------------------------------------------

def test_a_lease_taken_with_the_defaults_expires_60_s_after_it_was_written(aws_env):
    from s3rules.aws.lease import Lease
    lease = Lease(f"s3://{aws_env.bucket}/.s3rules/leases/some-queue.json")
    before = time.time()
    lease.acquire()
    after = time.time()
    try:
        body = aws_env.server.client("s3").get_object(Bucket=aws_env.bucket, Key=lease.key)["Body"].read()
        assert before + 60 <= json.loads(body)["expires"] <= after + 60
    finally:
        lease.release()


def test_a_run_writes_its_queues_lease_to_expire_60_s_after_each_write(flow, calls):
    """Every lease write of ``s3rules run`` (the create, each renewal) says it expires 60 s after it
    was made: after the previous AWS call of the run ended and before the write was sent."""
    flow.write(ONE_RULE, samples=["S1", "S2"], arrays=False)
    last_answer = [time.time()]
    writes: list[tuple[float, float, float]] = []   # (previous answer, write sent, expires)

    def lease_write(params, **_):
        if params.get("Key", "").startswith(".s3rules/leases/") and not released(params["Body"]):
            writes.append((last_answer[0], time.time(), json.loads(params["Body"])["expires"]))

    calls.events.register("provide-client-params.s3.PutObject", lease_write)
    calls.events.register("after-call", lambda **_: last_answer.__setitem__(0, time.time()))
    assert run(flow.bf, "--detach") == 0
    assert len(writes) >= 2                          # created, then renewed before the first SubmitJob
    for previous, sent, expires in writes:
        assert previous + 60 <= expires <= sent + 60, (previous, sent, expires)
    on_s3 = json.loads(flow.get(f".s3rules/leases/{flow.queue}.json"))
    assert on_s3["expires"] == 0                     # released when the run detached


# -- array_size ------------------------------------------------------------------------------------

def test_array_size_caps_the_children_per_array(flow, calls):
    samples = ["S1", "S2", "S3", "S4", "S5"]
    flow.write(ONE_RULE, samples=samples)
    flow.path.write_text(flow.path.read_text().replace("default:\n", "default:\n    array_size: 2\n"))
    assert run(flow.bf) == 0
    sizes = sorted((p.get("arrayProperties") or {}).get("size", 1) for p in calls.submits)
    assert sizes == [1, 2, 2]                        # arrays of 2 and 2, and one job alone
    [single] = [p for p in calls.submits if "arrayProperties" not in p]
    assert single["jobName"].startswith("s3rules-up-")          # a job of its own, not an array of 1
    assert sorted(calls.labels) == [f"up-{s}" for s in samples]  # each sample once
    units = [j for j in flow.jobs() if ":" not in j["jobId"]]
    assert len(units) == 3 and len(flow.jobs()) == 3 + 2 + 2  # on the queue: 3 units, 4 children
    for s in samples:
        assert flow.get(f"out/up/{s}.txt") == f"HELLO {s}\n"


# -- polling backs off to 30 s ---------------------------------------------------------------------

def _backoff(tmp_path, poll_interval):
    from s3rules.executors.base import RunOptions
    from s3rules.executors.batch import BatchExecutor
    options = RunOptions(base_dir=str(tmp_path), state_dir=str(tmp_path / ".s3rules"), poll_interval=poll_interval)
    return BatchExecutor.create(options, None).backoff


def test_polling_starts_at_the_poll_interval_and_backs_off_to_30_s(aws_env, tmp_path):
    from s3rules.cli.args import parse_args
    assert parse_args(["run", "Batchfile", "--poll-interval", "2"]).poll_interval == 2.0
    backoff = _backoff(tmp_path, 2)
    assert (backoff.start, backoff.interval, backoff.limit) == (2, 2, 30)
    seen = []
    for _ in range(6):
        backoff.polled(False)                        # nothing changed
        seen.append(backoff.interval)
    assert seen == [4, 8, 16, 30, 30, 30]
    backoff.polled(True)                             # news: back to the start
    assert backoff.interval == 2


def test_a_poll_interval_above_30_s_is_kept_as_the_limit(aws_env, tmp_path):
    backoff = _backoff(tmp_path, 45)
    assert (backoff.start, backoff.limit) == (45, 45)
    backoff.polled(False)
    assert backoff.interval == 45


# -- unusable queues and job definitions are refused before anything is submitted ------------------

def assert_refused(flow, calls, capsys, *needles: str) -> None:
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, *needles)
    assert calls.submits == []
    assert flow.jobs() == []                         # the queue holds no job


def test_a_disabled_queue_is_refused_before_anything_is_submitted(flow, calls, capsys):
    flow.write()
    flow.batch.update_job_queue(jobQueue=flow.queue, state="DISABLED")
    assert_refused(flow, calls, capsys, f"job queue {flow.queue!r} is DISABLED / VALID",
                   "Enable it or pick another queue")


def test_an_invalid_queue_is_refused_before_anything_is_submitted(flow, calls, proxy, capsys):
    """moto's queues are always VALID: the proxy gives the answer AWS gives for a broken one."""
    flow.write()
    reason = "CLIENT_ERROR - the compute environment of this queue is INVALID"

    def invalid(doc, info):
        for queue in doc["jobQueues"]:
            queue.update(status="INVALID", statusReason=reason)

    proxy.rewrite("DescribeJobQueues", invalid)
    assert_refused(flow, calls, capsys, f"job queue {flow.queue!r} is ENABLED / INVALID: {reason}.",
                   "Enable it or pick another queue")
    assert proxy.rewritten["DescribeJobQueues"] >= 1


def _by_revision(flow):
    """A proxy rewrite: DescribeJobDefinitions of ``name:revision`` answers as on AWS (moto looks
    such an identifier up as a name and finds nothing)."""
    def rewrite(doc, info):
        for wanted in info["request"].get("jobDefinitions", []):
            name, _, revision = wanted.partition(":")
            if revision and not any(f"{d['jobDefinitionName']}:{d['revision']}" == wanted
                                    for d in doc["jobDefinitions"]):
                found = flow.batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
                doc["jobDefinitions"] += [d for d in found if str(d["revision"]) == revision]
    return rewrite


def test_an_inactive_job_definition_named_by_revision_is_refused(flow, calls, proxy, capsys):
    revision = flow.batch.describe_job_definitions(jobDefinitionName=flow.jd)["jobDefinitions"][0]["revision"]
    named = f"{flow.jd}:{revision}"
    flow.batch.deregister_job_definition(jobDefinition=named)
    proxy.rewrite("DescribeJobDefinitions", _by_revision(flow))
    flow.write(job_definition=named)
    assert_refused(flow, calls, capsys, f"job definition {named!r} is INACTIVE", "job_definition:")


def test_a_job_definition_whose_revisions_are_all_inactive_is_refused(flow, calls, capsys):
    for d in flow.batch.describe_job_definitions(jobDefinitionName=flow.jd)["jobDefinitions"]:
        flow.batch.deregister_job_definition(jobDefinition=d["jobDefinitionArn"])
    flow.write()
    assert_refused(flow, calls, capsys, f"job definition {flow.jd!r} does not exist or has no ACTIVE revision",
                   "job_definition:")


def test_the_revision_check_passes_an_active_revision(flow, calls, proxy, capsys):
    """The counterpart of the test above: the same lookup, the revision ACTIVE, the run goes ahead."""
    revision = flow.batch.describe_job_definitions(jobDefinitionName=flow.jd)["jobDefinitions"][0]["revision"]
    proxy.rewrite("DescribeJobDefinitions", _by_revision(flow))
    flow.write(ONE_RULE, samples=["S1"], job_definition=f"{flow.jd}:{revision}")
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert [p["jobDefinition"] for p in calls.submits] == [f"{flow.jd}:{revision}"]


# -- ListJobs pages --------------------------------------------------------------------------------

@pytest.mark.parametrize("arrays", [False, True], ids=["single-jobs", "array"])
def test_in_flight_jobs_on_later_list_jobs_pages_are_counted_and_reused(flow, calls, gate, proxy, capsys, arrays):
    """Five jobs RUNNING (held at a gate) and ListJobs answering two at a time: ``status`` counts all
    five and a second run reuses all five; neither stops at the first page."""
    samples = ["S1", "S2", "S3", "S4", "S5"]
    flow.write(samples=samples, pre=gate.wait, arrays=arrays)
    assert run(flow.bf, "--detach") == 0
    first = calls.ids()
    flow.wait_status([first[f"up-{s}"] for s in samples], {"RUNNING"})
    flow.wait_status([first["summary"]], {"PENDING"})
    proxy.page_list_jobs(2)
    capsys.readouterr()

    assert main(["status", flow.bf]) == 0
    assert table(capsys.readouterr().out) == {
        "up": {**IDLE, "RUNNING": 5, "total": 5},
        "summary": {**IDLE, "PENDING": 1, "total": 1},
        "total": {**IDLE, "RUNNING": 5, "PENDING": 1, "total": 6},
    }
    pages_for_status = proxy.paged["ListJobs"]
    assert pages_for_status >= 2                     # 5 RUNNING: pages of 2, 2 and 1

    # re-attach long after: the lease no longer names the jobs the first run made (it remembers them
    # for 15 min), so only ListJobs can find them. In a process of its own: a run that kept missing
    # children would never end.
    flow.s3.delete_object(Bucket=flow.bucket, Key=f".s3rules/leases/{flow.queue}.json")
    for record in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/ledger/")["Contents"]:
        flow.s3.delete_object(Bucket=flow.bucket, Key=record["Key"])   # nor the job ledger, with their ids
    submitted = proxy.forwarded["SubmitJob"]
    open_gate_on_lease_release(proxy, gate)
    again = subprocess.run([S3RULES, "run", flow.bf, *POLL], cwd=flow.dir, env={**os.environ, **proxy.env()},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert gate.is_open                              # it released its lease, then watched them finish
    assert proxy.forwarded["SubmitJob"] == submitted  # all five found in flight: nothing submitted twice
    assert proxy.paged["ListJobs"] >= 2 * pages_for_status
    assert flow.get("out/summary.txt") == "".join(f"HELLO {s}\n" for s in samples)
    assert len([j for j in flow.jobs() if ":" not in j["jobId"]]) == (2 if arrays else 6)
