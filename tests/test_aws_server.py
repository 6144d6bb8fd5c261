"""The AWS test harness (tests/aws_server.py) over real HTTP with real boto3:
S3, Batch jobs that really run (as local subprocesses), CloudWatch Logs.

Several tests pin down what moto's Batch does, so that code relying on it
knows: they document moto 5.2.x behaviour, not AWS's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

S3TOOL = Path(__file__).resolve().parent / "s3tool.py"


def _batch():
    return boto3.client("batch")


def _wait_status(server, job_id, wanted, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.describe_jobs([job_id])[job_id]
        if job["status"] in wanted:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"{job_id} never reached {wanted}")


# (a) env vars alone route boto3 and s3fs ------------------------------------


def test_boto3_and_s3fs_reach_the_server_via_env_only(aws_env):
    import s3fs

    bucket = aws_env.bucket
    assert os.environ["AWS_ENDPOINT_URL"] == aws_env.server.endpoint_url
    assert "AWS_PROFILE" not in os.environ

    boto3.client("s3").put_object(Bucket=bucket, Key="from-boto3.txt", Body=b"b3")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    assert fs.cat(f"s3://{bucket}/from-boto3.txt") == b"b3"
    fs.pipe(f"s3://{bucket}/from-s3fs.txt", b"fs")
    body = boto3.client("s3").get_object(Bucket=bucket, Key="from-s3fs.txt")["Body"]
    assert body.read() == b"fs"

    # the other services route the same way
    queues = _batch().describe_job_queues(jobQueues=[aws_env.queue])["jobQueues"]
    assert [q["jobQueueName"] for q in queues] == [aws_env.queue]
    boto3.client("logs").describe_log_groups()


@pytest.mark.parametrize("keep", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_s3fs_honours_either_endpoint_variable_alone(aws_env, monkeypatch, keep):
    import s3fs

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        if var != keep:
            monkeypatch.delenv(var)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.pipe(f"s3://{aws_env.bucket}/{keep}.txt", keep.encode())
    assert fs.cat(f"s3://{aws_env.bucket}/{keep}.txt") == keep.encode()
    assert boto3.client("s3").get_object(Bucket=aws_env.bucket, Key=f"{keep}.txt")[
        "Body"
    ].read() == keep.encode()


def test_s3tool_cli(aws_env, tmp_path):
    b = aws_env.bucket
    run = lambda *args, **kw: subprocess.run(  # noqa: E731
        [sys.executable, str(S3TOOL), *args], capture_output=True, **kw
    )
    assert run("put", f"s3://{b}/x.txt", input=b"hello\n").returncode == 0
    assert run("cat", f"s3://{b}/x.txt").stdout == b"hello\n"
    assert run("cp", f"s3://{b}/x.txt", str(tmp_path / "x")).returncode == 0
    assert (tmp_path / "x").read_bytes() == b"hello\n"
    assert run("cp", str(tmp_path / "x"), f"s3://{b}/y.txt").returncode == 0
    assert run("ls", f"s3://{b}/").stdout.split() == [b"x.txt", b"y.txt"]
    missing = run("cat", f"s3://{b}/nope")
    assert missing.returncode == 1 and b"NoSuchKey" in missing.stderr


# (b) a chain of dependent jobs ---------------------------------------------


def test_dependent_job_chain_runs_in_order(aws_env):
    srv, b, env = aws_env.server, aws_env.bucket, aws_env.batch
    j1 = srv.submit(env, "job1", f"echo alpha | s3tool put s3://{b}/a.txt")
    j2 = srv.submit(
        env, "job2",
        f"s3tool cat s3://{b}/a.txt | tr a-z A-Z | s3tool put s3://{b}/b.txt",
        depends_on=[j1],
    )
    j3 = srv.submit(
        env, "job3",
        f"s3tool cat s3://{b}/b.txt | rev | s3tool put s3://{b}/c.txt",
        depends_on=[j2],
    )
    jobs = srv.wait_for_jobs([j1, j2, j3], timeout=60)
    assert [jobs[j]["status"] for j in (j1, j2, j3)] == ["SUCCEEDED"] * 3
    assert [jobs[j]["container"]["exitCode"] for j in (j1, j2, j3)] == [0, 0, 0]

    s3 = boto3.client("s3")
    read = lambda k: s3.get_object(Bucket=b, Key=k)["Body"].read()  # noqa: E731
    assert (read("a.txt"), read("b.txt"), read("c.txt")) == (
        b"alpha\n", b"ALPHA\n", b"AHPLA\n",
    )
    assert jobs[j2]["startedAt"] >= jobs[j1]["stoppedAt"]
    assert jobs[j3]["startedAt"] >= jobs[j2]["stoppedAt"]
    assert jobs[j2]["dependsOn"] == [{"jobId": j1}]


def test_independent_jobs_run_concurrently(aws_env):
    """Each job writes its marker, then waits for the other's: this only
    finishes if both processes are alive at the same time."""
    srv, b, env = aws_env.server, aws_env.bucket, aws_env.batch
    script = (
        "echo up | s3tool put s3://{b}/{me}; "
        "for i in $(seq 200); do s3tool ls s3://{b}/{other} | grep -q . && exit 0; "
        "sleep 0.05; done; exit 1"
    )
    ja = srv.submit(env, "job-a", script.format(b=b, me="A", other="B"))
    jb = srv.submit(env, "job-b", script.format(b=b, me="B", other="A"))
    jobs = srv.wait_for_jobs([ja, jb], timeout=60)
    assert {j["status"] for j in jobs.values()} == {"SUCCEEDED"}


def test_job_environment(aws_env):
    srv = aws_env.server
    env = srv.create_batch_env(
        f"{aws_env.queue}-env", f"{aws_env.job_definition}-env",
        environment={"FROM_JD": "jd", "BOTH": "jd"},
    )
    jid = srv.submit(
        env, "envjob",
        'echo "id=$AWS_BATCH_JOB_ID jd=$FROM_JD both=$BOTH ovr=$OVR"; '
        'echo "idx=${AWS_BATCH_JOB_ARRAY_INDEX-unset} ep=$AWS_ENDPOINT_URL"; '
        "command -v s3tool >/dev/null && echo has-s3tool",
        environment={"OVR": "o", "BOTH": "override"},
    )
    job = srv.wait_for_jobs([jid])[jid]
    assert job["status"] == "SUCCEEDED"
    assert srv.job_log_lines(job) == [
        f"id={jid} jd=jd both=override ovr=o",
        f"idx=unset ep={srv.endpoint_url}",
        "has-s3tool",
    ]
    # DescribeJobs shows the merged environment once (the harness fixes moto's
    # habit of appending to the submitted list on every describe)
    srv.describe_jobs([jid])
    names = [e["name"] for e in srv.describe_jobs([jid])[jid]["container"]["environment"]]
    assert sorted(names) == ["AWS_BATCH_JOB_ID", "BOTH", "FROM_JD", "OVR"]


# (c) failures ----------------------------------------------------------------


def test_failing_job_exit_code_logs_and_failed_dependency(aws_env):
    srv, b, env = aws_env.server, aws_env.bucket, aws_env.batch
    bad = srv.submit(env, "bad", "echo out-line; echo err-line >&2; exit 3")
    dep = srv.submit(
        env, "after-bad", f"echo ran | s3tool put s3://{b}/dep-ran", depends_on=[bad]
    )
    jobs = srv.wait_for_jobs([bad, dep], timeout=60)

    failed = jobs[bad]
    assert failed["status"] == "FAILED"
    assert failed["container"]["exitCode"] == 3
    stream = failed["container"]["logStreamName"]
    assert stream == f"{env.job_definition}/default/{bad}"
    events = boto3.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
    )["events"]
    assert [e["message"] for e in events] == ["out-line", "err-line"]
    assert len(failed["attempts"]) == 1

    # moto: a job whose dependency FAILED is FAILED without ever running
    skipped = jobs[dep]
    assert skipped["status"] == "FAILED"
    assert skipped["attempts"] == []
    assert "logStreamName" not in skipped["container"]
    assert "exitCode" not in skipped["container"]
    assert "statusReason" not in skipped
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=b, Prefix="dep-ran")


def test_unknown_command_fails_with_127(aws_env):
    srv = aws_env.server
    jid = srv.submit(aws_env.batch, "nocmd", ["no-such-program-here", "x"])
    job = srv.wait_for_jobs([jid])[jid]
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 127
    assert "no-such-program-here" in srv.job_log_lines(job)[0]


def test_terminate_job_kills_the_process(aws_env):
    srv, b = aws_env.server, aws_env.bucket
    jid = srv.submit(
        aws_env.batch, "long",
        f"echo started; echo x | s3tool put s3://{b}/started; sleep 60; echo never",
    )
    _wait_status(srv, jid, {"RUNNING"})
    s3 = boto3.client("s3")
    deadline = time.monotonic() + 30
    while "Contents" not in s3.list_objects_v2(Bucket=b, Prefix="started"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _batch().terminate_job(jobId=jid, reason="stop it")
    job = srv.wait_for_jobs([jid], timeout=30)[jid]
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "stop it"
    assert job["container"]["exitCode"] == 137  # SIGKILL, like `docker kill`
    assert srv.job_log_lines(job) == ["started"]
    (container,) = [c for c in srv.docker.history.values() if c.job_id == jid]
    assert container.status == "exited"
    assert container not in srv.docker.running()


def test_timeout_and_retry_strategy_behaviour(aws_env):
    """moto: attemptDurationSeconds kills the job (FAILED, no exit code, no logs, no
    statusReason). retryStrategy is the harness's: attempts as AWS counts them, each failed
    attempt recorded with its exit code, the job never FAILED in between."""
    srv = aws_env.server
    env = srv.create_batch_env(
        f"{aws_env.queue}-rt", f"{aws_env.job_definition}-rt", retry_attempts=3
    )
    slow = srv.submit(env, "slow", "echo begin; sleep 30", timeout={"attemptDurationSeconds": 1})
    flaky = srv.submit(env, "flaky", 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; exit 1',
                       retryStrategy={"attempts": 2})
    default = srv.submit(env, "default", "exit 3")   # the job definition's strategy: 3 attempts
    jobs = srv.wait_for_jobs([slow, flaky, default], timeout=30)
    assert jobs[slow]["status"] == "FAILED"
    assert "exitCode" not in jobs[slow]["container"]
    assert "logStreamName" not in jobs[slow]["container"]
    assert "statusReason" not in jobs[slow]
    assert jobs[flaky]["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in jobs[flaky]["attempts"]] == [1, 1]
    assert srv.job_log_lines(jobs[flaky]) == ["attempt 1", "attempt 2"]   # one stream here
    assert [a["container"]["exitCode"] for a in jobs[default]["attempts"]] == [3, 3, 3]
    assert _batch().describe_job_definitions(jobDefinitionName=env.job_definition)[
        "jobDefinitions"
    ][0]["retryStrategy"] == {"attempts": 3}


def test_evaluate_on_exit_and_infrastructure_faults(aws_env):
    """evaluateOnExit as AWS applies it (first matching rule; none matching: retry), and the
    harness's faults: a reclaimed Spot host (statusReason ``Host EC2 (...) terminated.``, no exit
    code) and an out-of-memory kill (exit 137, reason ``OutOfMemoryError: ...``)."""
    srv, b = aws_env.server, aws_env.batch
    spot_only = {"attempts": 4, "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"},
                                                   {"onReason": "*", "action": "EXIT"}]}
    srv.fault("reclaim", lambda job: job.command.endswith("echo reclaimed-twice"), times=2)
    srv.fault("oom", lambda job: "hungry" in job.command and (job.memory or 0) < 4096)
    reclaimed = srv.submit(b, "spot", "echo reclaimed-twice", retryStrategy=spot_only)
    failing = srv.submit(b, "app", "exit 5", retryStrategy=spot_only)
    hungry = srv.submit(b, "oom", "echo hungry", retryStrategy=spot_only,
                        containerOverrides={"resourceRequirements": [{"type": "MEMORY", "value": "2048"}]})
    jobs = srv.wait_for_jobs([reclaimed, failing, hungry], timeout=30)
    assert jobs[reclaimed]["status"] == "SUCCEEDED"
    first, second, third = jobs[reclaimed]["attempts"]
    assert first["statusReason"] == second["statusReason"] == "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."
    assert first["container"].get("exitCode") is None and third["container"]["exitCode"] == 0
    assert jobs[failing]["status"] == "FAILED" and len(jobs[failing]["attempts"]) == 1
    assert jobs[hungry]["status"] == "FAILED" and len(jobs[hungry]["attempts"]) == 1
    assert jobs[hungry]["container"]["exitCode"] == 137
    assert jobs[hungry]["container"]["reason"].startswith("OutOfMemoryError")
    # the jobs run side by side: the order of their faults is the scheduler's
    assert sorted(kind for kind, _ in srv.faulted) == ["oom", "reclaim", "reclaim"]


# (d) array jobs ---------------------------------------------------------------


def test_array_job_children_see_their_index(aws_env):
    srv, b = aws_env.server, aws_env.bucket
    parent = srv.submit(
        aws_env.batch, "arr",
        f'echo "child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ID"; '
        f"echo $AWS_BATCH_JOB_ARRAY_INDEX | s3tool put s3://{b}/arr/$AWS_BATCH_JOB_ARRAY_INDEX",
        array_size=3,
    )
    children = [f"{parent}:{i}" for i in range(3)]
    jobs = srv.wait_for_jobs(children, timeout=60)
    for i, child in enumerate(children):
        assert jobs[child]["status"] == "SUCCEEDED"
        assert srv.job_log_lines(jobs[child]) == [f"child {i} of {child}"]
    s3 = boto3.client("s3")
    for i in range(3):
        assert s3.get_object(Bucket=b, Key=f"arr/{i}")["Body"].read() == f"{i}\n".encode()

    # moto: the parent itself never runs; it turns SUCCEEDED only when
    # described after all children succeeded
    desc = srv.describe_jobs([parent])[parent]
    assert desc["status"] == "SUCCEEDED"
    assert desc["arrayProperties"]["size"] == 3
    assert desc["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    listed = _batch().list_jobs(arrayJobId=parent)["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == children


# ListJobs ---------------------------------------------------------------------


def test_list_jobs_behaviour(aws_env):
    """moto's ListJobs: jobStatus filter works; without it ALL statuses are
    listed (AWS lists only RUNNING); filters JOB_NAME (exact or trailing '*',
    case-insensitive) work, other filter names match everything; jobStatus is
    ignored when filters are given; maxResults/nextToken are ignored (all
    results, no nextToken); array children are listed with the queue."""
    srv, env = aws_env.server, aws_env.batch
    ok = [srv.submit(env, f"ok-{i}", "true") for i in range(3)]
    bad = srv.submit(env, "bad-1", "exit 2")
    arr = srv.submit(env, "arr-1", "true", array_size=2)
    srv.wait_for_jobs(ok + [bad, f"{arr}:0", f"{arr}:1"])
    srv.describe_jobs([arr])  # moto: lets the parent turn SUCCEEDED
    batch = _batch()

    def ids(**kw):
        resp = batch.list_jobs(jobQueue=env.queue_name, **kw)
        assert "nextToken" not in resp
        return sorted(j["jobId"] for j in resp["jobSummaryList"])

    everything = sorted(ok + [bad, arr, f"{arr}:0", f"{arr}:1"])
    assert ids() == everything
    assert ids(jobStatus="FAILED") == [bad]
    assert ids(jobStatus="RUNNING") == []
    assert ids(maxResults=1) == everything
    assert ids(filters=[{"name": "JOB_NAME", "values": ["OK-*"]}]) == sorted(ok)
    assert ids(filters=[{"name": "JOB_NAME", "values": ["bad-1"]}]) == [bad]
    assert ids(filters=[{"name": "JOB_NAME", "values": ["bad-1"]}], jobStatus="SUCCEEDED") == [bad]
    assert ids(filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}]) == everything
    summary = batch.list_jobs(jobQueue=env.queue_name, jobStatus="FAILED")["jobSummaryList"][0]
    assert summary["container"] == {"exitCode": 2}


# harness details ------------------------------------------------------------


def test_create_batch_env_defaults_can_be_called_twice(aws_server):
    first = aws_server.create_batch_env()
    second = aws_server.create_batch_env()
    assert (first.queue_name, first.job_definition) == ("q", "jd")
    assert second.queue_arn == first.queue_arn
    assert second.compute_environment_arn == first.compute_environment_arn
    assert second.job_definition_arn.endswith(":2")


def test_only_one_server_per_process(aws_server):
    with pytest.raises(RuntimeError, match="already running"):
        type(aws_server)().start()
    # the refused start left the running server alone
    assert aws_server.client("s3").list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
