"""Failures by cause on AWS Batch: a reclaimed Spot host is retried by Batch without using the
application's ``retries``; an out-of-memory job comes back with more memory (``memory_retry``);
an aggregate that needs only some children of an array runs though another child failed.

Same harness as tests/test_batch.py (moto's server, jobs run as local processes). The harness
applies ``retryStrategy`` as AWS does and makes infrastructure failures on demand
(``AwsServer.fault``): a reclaimed host or an out-of-memory kill of a job attempt.
"""
from __future__ import annotations

from s3rules.cli import main
from test_batch import POLL, calls, flow, run, table  # noqa: F401

SPOT = '''
rule all:
    input: expand("{root}/b/{sample}.txt")
rule a:
    output: "{root}/a/{sample}.txt"
    RETRIES
    shell: "FLAKY echo a {sample} | s3tool put {output}"
rule b:
    input: "{root}/a/{sample}.txt"
    output: "{root}/b/{sample}.txt"
    shell: "s3tool cat {input} | tr a-z A-Z | s3tool put {output}"
'''


def spot_flow(flow, retries: int, flaky: bool, samples="A"):
    """Rule a's job fails once with exit 1 (on its first real run) when ``flaky``."""
    marker = flow.dir / "ran-once"
    pre = f"if [ ! -e {marker} ]; then touch {marker}; echo failing once >&2; exit 1; fi; " if flaky else ""
    flow.write(SPOT.replace("RETRIES", f"retries: {retries}").replace("FLAKY ", pre), samples=samples, data=False)
    return flow


def attempts_of(flow, job_id: str) -> list[dict]:
    return flow.describe([job_id])[job_id]["attempts"]


def test_a_reclaimed_spot_host_is_retried_by_batch_without_using_the_applications_retries(flow, calls, aws_env,
                                                                                          capsys):
    spot_flow(flow, retries=1, flaky=True)
    aws_env.server.fault("reclaim", lambda job: " a A " in job.command or "echo a A" in job.command, times=2)
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert flow.get("out/b/A.txt") == "A A\n"
    request = calls.by_label()["a-A"]
    assert request["retryStrategy"] == {"attempts": 7, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "CannotPullContainerError*", "action": "EXIT"},
        {"onReason": "*", "action": "RETRY"}]}
    assert calls.labels.count("a-A") == 1   # Batch retried it: one job, four attempts
    tries = attempts_of(flow, calls.ids()["a-A"])
    assert [t.get("statusReason", "")[:8] for t in tries] == ["Host EC2", "Host EC2", "", ""]
    assert [t["container"].get("exitCode") for t in tries] == [None, None, 1, 0]


def test_an_application_error_is_not_retried_when_retries_is_zero_though_spot_retries_are_on(flow, calls, capsys):
    spot_flow(flow, retries=0, flaky=True)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert calls.by_label()["a-A"]["retryStrategy"]["attempts"] == 6
    assert len(attempts_of(flow, calls.ids()["a-A"])) == 1
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    assert "application error: exit code 1" in line


def test_the_failure_report_status_and_the_ledger_name_a_reclaim_that_used_up_its_retries(flow, calls, aws_env,
                                                                                        capsys):
    spot_flow(flow, retries=0, flaky=False)
    flow.path.write_text(flow.path.read_text().replace("default:\n", "default:\n    retries_infra: 1\n"))
    aws_env.server.fault("reclaim", lambda job: "echo a A" in job.command, times=2)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    assert "spot or host reclaimed: Host EC2" in line and "(after 1 retried: spot or host reclaimed)" in line
    main(["status", flow.bf])
    out = capsys.readouterr().out
    counts, causes = out.split("\n\n")
    assert table(counts)["a"]["failed"] == 1 and table(counts)["b"]["failed"] == 1   # b: never ran
    assert causes.strip() in ("failed by cause: spot or host reclaimed 1, dependency failed 1",
                              "failed by cause: dependency failed 1, spot or host reclaimed 1"), out
    assert any('"cause": "spot or host reclaimed"' in body or '"cause":"spot or host reclaimed"' in body
               for body in ledger_bodies(flow)), ledger_bodies(flow)


def ledger_bodies(flow) -> list[str]:
    listed = flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/ledger/").get("Contents", [])
    return [flow.s3.get_object(Bucket=flow.bucket, Key=o["Key"])["Body"].read().decode() for o in listed]


OOM = '''
rule all:
    input: "{root}/sum.txt"
rule big:
    output: "{root}/big/{sample}.txt"
    memory: 2048
    memory_retry: "2x"
MAX    shell: "echo hungry {sample} | s3tool put {output}"
rule sum:
    input: expand("{root}/big/{sample}.txt")
    output: "{root}/sum.txt"
    shell: "for f in {input}; do s3tool cat $f; done | s3tool put {output}"
'''


def test_an_out_of_memory_job_comes_back_with_twice_the_memory_and_its_dependents_wait_for_it(
        flow, calls, aws_env, capsys):
    flow.write(OOM.replace("MAX", ""), samples="AB", data=False)
    aws_env.server.fault("oom", lambda job: "hungry" in job.command and job.memory < 4096, times=10)
    assert run(flow.bf) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert flow.get("out/sum.txt") == "hungry A\nhungry B\n"
    for label in ("big-A", "big-B"):
        assert memories(calls, label) == [2048, 4096]
        first, second = [j["jobId"] for j in calls.jobs if j["label"] == label]
        bodies = " ".join(ledger_bodies(flow))   # the record names the job that made the output
        assert f"batch:{second}" in bodies and f"batch:{first}" not in bodies
    assert "ran out of memory with 2048 MiB" in err and "submitting it again with 4096 MiB" in err
    assert calls.labels.count("sum") >= 1 and "job failed" not in err


def test_memory_retry_stops_at_memory_max_and_reports_out_of_memory(flow, calls, aws_env, capsys):
    flow.write(OOM.replace("MAX", "    memory_max: 3000\n"), samples="A", data=False)
    aws_env.server.fault("oom", lambda job: "hungry" in job.command and job.memory < 4096, times=10)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert memories(calls, "big-A") == [2048, 3000]
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    assert "out of memory: exit code 137 (OutOfMemoryError" in line


def memories(calls, label: str) -> list[int]:
    """The memory each submission of ``label`` asked for (an array child: its array's), in order."""
    return [int(x["value"]) for j in calls.jobs if j["label"] == label
            for x in j["request"]["containerOverrides"]["resourceRequirements"] if x["type"] == "MEMORY"]


GROUPS = '''
rule all:
    input: expand("{root}/grp/{group}.txt")
rule b:
    output: "{root}/b/{sample}.txt"
    shell: "if [ {sample} = s5 ]; then exit 4; fi; echo {sample} | s3tool put {output}"
rule grp:
    input: expand("{root}/b/{sample}.txt")
    output: "{root}/grp/{group}.txt"
    shell: "for f in {input}; do s3tool cat $f; done | s3tool put {output}"
'''


def test_an_aggregate_that_needs_only_some_children_of_an_array_runs_though_another_child_failed(
        flow, calls, capsys):
    flow.write(GROUPS, samples="x", data=False)
    (flow.dir / "samples.csv").write_text("sample,group\n" + "".join(
        f"s{i},g{i // 3}\n" for i in range(9)))
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert flow.get("out/grp/g0.txt") == "s0\ns1\ns2\n" and flow.get("out/grp/g2.txt") == "s6\ns7\ns8\n"
    assert flow.get("out/grp/g1.txt") is None
    failed = [l for l in err.splitlines() if l.startswith("job failed:")]
    assert len(failed) == 1 and "sample=s5" in failed[0]
    assert "1 job was not run because a job it needs failed" in err


def test_a_job_held_back_and_never_submitted_is_failed_by_its_dependency(flow, capsys):
    """The summary waits on 21 single jobs (over Batch's 20 dependsOn): it is held here, and when
    S05 fails it is never submitted. Its record still names its cause: status counts it in the
    failed column and in the cause line alike."""
    samples = [f"S{i:02d}" for i in range(21)]
    flow.write(samples=samples, pre="if [ {sample} = S05 ]; then exit 4; fi; ", arrays=False)
    assert run(flow.bf, "--keep-going") == 1
    capsys.readouterr()
    assert main(["status", flow.bf]) == 0
    text = capsys.readouterr().out
    rows = table(text.split("\n\n")[0])
    assert rows["up"]["failed"] == 1 and rows["summary"]["failed"] == 1, text
    assert "failed by cause: " in text
    causes = sorted(text.split("failed by cause: ")[1].split("\n")[0].split(", "))
    assert causes == ["application error 1", "dependency failed 1"], text
