"""Kinds of output in a run: directory() outputs count once they hold a file, log: files are the job's
own (kept whatever happens), temp() outputs go once every job of the run that reads them succeeded."""
from __future__ import annotations

import os

from s3rules.executors.local import LocalExecutor
from s3rules.planner import plan
from s3rules.progress import QuietReporter
from s3rules.runner import Runner
from s3rules.storage import Storage
from test_batch import calls, flow  # noqa: F401  (fixtures)
from workflows import load

DIRECTORY = """
rule all:
    input: "out/d"
rule a:
    output: directory("out/d")
    log: "logs/a/run.log"
    shell: "mkdir -p {output}/sub; echo {VERSION} > {output}/sub/f; echo logged > {log}"
"""

TEMP = """
rule all:
    input: "out/b.txt", "out/c.txt"
rule a:
    output: temp("tmp/a.txt"), temp(directory("tmp/d")), "out/a.txt"
    shell: "echo a > {output[0]}; mkdir -p {output[1]}; echo x > {output[1]}/f; echo a > {output[2]}"
rule b:
    input: "tmp/a.txt", "tmp/d"
    output: "out/b.txt"
    shell: "cat {input[0]} > {output}; B_FAILS"
rule c:
    input: "tmp/a.txt"
    output: "out/c.txt"
    shell: "cat {input} > {output}"
"""


def run(wf, targets=(), force=(), **options):
    p = plan(wf, Storage(), targets, force=force)
    executor = LocalExecutor(wf.base_dir, os.path.join(wf.base_dir, ".s3rules", "logs"), 2)
    return p, Runner(p, executor, Storage(), QuietReporter(), poll_interval=0.05, **options).run()


def names(jobs) -> list[str]:
    return sorted(job.describe() for job in jobs)


def directory(tmp_path, version="v1"):
    return load(tmp_path, DIRECTORY.replace("{VERSION}", version))


def test_a_directory_output_made_by_a_job_is_done_and_a_second_run_does_nothing(tmp_path):
    _, result = run(directory(tmp_path))
    assert result.ok and names(result.succeeded) == ["a"]
    assert (tmp_path / "out/d/sub/f").read_text() == "v1\n"
    assert (tmp_path / "logs/a/run.log").read_text() == "logged\n"   # its directory was made for it
    again, result = run(directory(tmp_path))
    assert again.pending == {} and result.succeeded == []


def test_an_empty_directory_is_no_output(tmp_path):
    wf = load(tmp_path, DIRECTORY.replace("mkdir -p {output}/sub; echo {VERSION} > {output}/sub/f", "mkdir -p {output}"))
    _, result = run(wf)
    (job, outcome), = result.failed
    assert "finished without writing its output" in outcome.reason and "directory()" in outcome.reason
    assert (tmp_path / "logs/a/run.log").read_text() == "logged\n"


def test_a_failed_job_keeps_its_log_and_loses_its_outputs(tmp_path):
    wf = load(tmp_path, """
        rule all:
            input: "out/x.txt"
        rule a:
            output: "out/x.txt", directory("out/d")
            log: "logs/a.log"
            shell: "echo x > {output[0]}; mkdir -p {output[1]}/deep; echo y > {output[1]}/deep/f; echo why > {log}; exit 3"
    """)
    _, result = run(wf)
    assert not result.ok and names(j for j, _ in result.failed) == ["a"]
    assert sorted(result.removed) == [str(tmp_path / "out/d"), str(tmp_path / "out/x.txt")]
    assert not (tmp_path / "out/d").exists() and not (tmp_path / "out/x.txt").exists()
    assert (tmp_path / "logs/a.log").read_text() == "why\n"


def test_a_forced_rerun_of_a_directory_output_gets_the_old_one_back_when_it_fails(tmp_path):
    run(directory(tmp_path))
    wf = load(tmp_path, DIRECTORY.replace("{VERSION}", "v2").replace("echo logged > {log}", "echo no > {log}; exit 1"))
    _, result = run(wf, force=["out/d"])
    assert not result.ok and result.restored == [str(tmp_path / "out/d")]
    assert (tmp_path / "out/d/sub/f").read_text() == "v1\n"
    assert sorted(os.listdir(tmp_path / "out")) == ["d"]   # nothing set aside is left beside it
    _, result = run(directory(tmp_path, "v3"), force=["out/d"])
    assert result.ok and (tmp_path / "out/d/sub/f").read_text() == "v3\n"
    assert sorted(os.listdir(tmp_path / "out")) == ["d"]


def test_a_temp_output_goes_once_its_last_reader_succeeded(tmp_path):
    wf = load(tmp_path, TEMP.replace("; B_FAILS", ""))
    _, result = run(wf)
    assert result.ok
    assert sorted(result.temp_removed) == [str(tmp_path / "tmp/a.txt"), str(tmp_path / "tmp/d")]
    assert not (tmp_path / "tmp/a.txt").exists() and not (tmp_path / "tmp/d").exists()
    assert (tmp_path / "out/b.txt").read_text() == "a\n" and (tmp_path / "out/c.txt").exists()
    assert (tmp_path / "out/a.txt").exists()   # not temp: stays
    again, result = run(wf)
    assert again.pending == {} and result.succeeded == []


def test_keep_temp_keeps_temp_outputs(tmp_path):
    _, result = run(load(tmp_path, TEMP.replace("; B_FAILS", "")), keep_temp=True)
    assert result.ok and result.temp_removed == []
    assert (tmp_path / "tmp/a.txt").exists() and (tmp_path / "tmp/d/f").exists()


def test_a_temp_output_stays_when_a_reader_fails(tmp_path):
    wf = load(tmp_path, TEMP.replace("B_FAILS", "exit 1"))
    _, result = run(wf, keep_going=True)
    assert names(j for j, _ in result.failed) == ["b"] and "c" in names(result.succeeded)
    assert result.temp_removed == []
    assert (tmp_path / "tmp/a.txt").exists() and (tmp_path / "tmp/d/f").exists()


def test_a_temp_output_stays_when_a_reader_does_not_run(tmp_path):
    wf = load(tmp_path, """
        rule all:
            input: "out/b.txt", "out/c.txt"
        rule a:
            output: temp("tmp/a.txt")
            shell: "echo a > {output}"
        rule e:
            output: "out/e.txt"
            shell: "exit 1"
        rule b:
            input: "tmp/a.txt"
            output: "out/b.txt"
            shell: "cat {input} > {output}"
        rule c:
            input: "tmp/a.txt", "out/e.txt"
            output: "out/c.txt"
            shell: "cat {input[0]} > {output}"
    """)
    _, result = run(wf, keep_going=True)
    assert names(result.succeeded) == ["a", "b"] and names(result.blocked) == ["c"]
    assert (tmp_path / "tmp/a.txt").exists() and result.temp_removed == []


def test_a_temp_output_no_pending_job_reads_stays(tmp_path):
    wf = load(tmp_path, TEMP.replace("; B_FAILS", ""))
    _, result = run(wf, targets=["out/a.txt"])
    assert result.ok and names(result.succeeded) == ["a"] and result.temp_removed == []
    assert (tmp_path / "tmp/a.txt").exists() and (tmp_path / "tmp/d/f").exists()


def test_a_temp_output_nothing_reads_goes_once_its_job_has_made_it(tmp_path):
    wf = load(tmp_path, """
        rule all:
            input: "out/b.txt"
        rule a:
            output: "out/b.txt", temp("tmp/scratch.txt")
            shell: "echo x > {output[0]}; echo y > {output[1]}"
    """)
    _, result = run(wf)
    assert result.ok and result.temp_removed == [str(tmp_path / "tmp/scratch.txt")]
    assert (tmp_path / "out/b.txt").exists() and not (tmp_path / "tmp/scratch.txt").exists()


def test_on_batch_a_directory_prefix_counts_as_done_and_a_temp_object_goes(flow, calls):
    """On AWS Batch (moto's server) with S3 outputs: the directory is a prefix, the temp output an
    object the run deletes once its reader succeeded; a second run submits nothing."""
    from s3rules.cli import main
    from test_batch import POLL
    flow.write('''
rule all:
    input: expand("{root}/final/{sample}.txt")
rule parts:
    input: "s3://BUCKET/data/{sample}.txt"
    output: directory("{root}/parts/{sample}"), temp("{root}/tmp/{sample}.txt")
    shell: "s3tool cat {input} | s3tool put {output[0]}/a/part-1; echo t | s3tool put {output[1]}"
rule final:
    input: "{root}/parts/{sample}", "{root}/tmp/{sample}.txt"
    output: "{root}/final/{sample}.txt"
    shell: "s3tool cat {input[0]}/a/part-1 | s3tool put {output}"
''')
    assert main(["run", str(flow.bf), *POLL]) == 0
    assert flow.get("out/final/A.txt") == "hello A\n" and flow.get("out/parts/B/a/part-1") == "hello B\n"
    left = [o["Key"] for o in boto3_client().list_objects_v2(Bucket=flow.bucket, Prefix="out/tmp/").get("Contents", [])]
    assert left == []
    calls.reset()
    assert main(["run", str(flow.bf), *POLL]) == 0
    assert calls.labels == []


def boto3_client():
    import boto3
    return boto3.client("s3")


def test_the_local_executor_makes_the_directories_of_a_jobs_logs(tmp_path):
    """Also when no runner made them first (the runner does, through storage)."""
    wf = directory(tmp_path)
    job, = [j for j in plan(wf, Storage()).pending]
    (tmp_path / "out").mkdir()
    executor = LocalExecutor(wf.base_dir, str(tmp_path / ".s3rules/logs"), 1)
    executor.submit(job, [])
    finished = []
    while not finished:
        finished = executor.poll(1.0)
    (_, outcome), = finished
    assert outcome.ok, outcome.log_tail
    assert (tmp_path / "logs/a/run.log").read_text() == "logged\n"
