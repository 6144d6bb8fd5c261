"""Staging (``stage: true``): the command sees local files where its rule names S3 URLs.

One Batchfile, run locally (the stager downloads with fsspec) and on AWS Batch (the job's bash
moves its files with the real AWS CLI, ``awscli`` from the test extras, against moto's server;
the harness runs each job as a local process, so ``scratch:`` is a directory of this test).
"""
from __future__ import annotations

import subprocess

import pytest

from s3rules.aws.staging import batch_script
from s3rules.errors import PlanError
from s3rules.model.staging import local_name
from s3rules.planner import Planner
from test_batch import POLL, assert_clean_error, calls, flow, run  # noqa: F401
from workflows import load

PIPELINE = '''
samples: "samples.csv"
root = "s3://BUCKET/out"
default:
    executor: EXECUTOR
    queue: "QUEUE"
    job_definition: "JD"
    stage: true
    scratch: "SCRATCH"
rule all:
    input: "{root}/sum.txt"
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    log: "{root}/logs/up/{sample}.log"
    shell: "case {input} in /*|s3:*) exit 9;; esac; tr a-z A-Z < {input} > {output}; pwd > {log}"
rule bins:
    input: "{root}/up/{sample}.txt"
    output: directory("{root}/bins/{sample}")
    shell: "split -l 1 {input} {output}/part-"
rule sum:
    input: expand("{root}/bins/{sample}")
    output: "{root}/sum.txt"
    shell: "for d in {input}; do cat $d/*; done > {output}"
'''


def write(flow, executor: str, text: str = PIPELINE, samples: str = "AB") -> None:
    (flow.dir / "samples.csv").write_text("sample\n" + "".join(f"{s}\n" for s in samples))
    (flow.dir / "scratch").mkdir(exist_ok=True)
    flow.path.write_text(text.replace("BUCKET", flow.bucket).replace("QUEUE", flow.queue).replace("JD", flow.jd)
                         .replace("EXECUTOR", executor).replace("SCRATCH", str(flow.dir / "scratch")))
    for s in samples:
        flow.put(f"data/{s}.txt", f"{s.lower()}1\n{s.lower()}2\n")


def keys(flow, prefix: str) -> list[str]:
    listed = flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"][len(prefix):] for o in listed)


@pytest.mark.parametrize("executor", ["local", "batch"])
def test_one_staged_batchfile_runs_locally_and_on_batch(flow, calls, executor, capsys):
    """Inputs downloaded, the command run on local names in a scratch directory, outputs, logs and
    directory outputs uploaded; the scratch directory removed; a second run has nothing to do. A
    json.py beside the Batchfile does not stand in for the stager's own."""
    write(flow, executor)
    (flow.dir / "json.py").write_text("raise SystemExit('the json.py beside the Batchfile was imported')\n")
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert flow.get("out/up/A.txt") == "A1\nA2\n" and flow.get("out/up/B.txt") == "B1\nB2\n"
    assert keys(flow, "out/bins/A/") == ["part-aa", "part-ab"]
    assert flow.get("out/sum.txt") == "A1\nA2\nB1\nB2\n"
    ran_in = flow.get("out/logs/up/A.log").strip()
    assert ran_in.startswith(str(flow.dir / "scratch") + "/"), ran_in
    assert list((flow.dir / "scratch").iterdir()) == []            # nothing left behind
    if executor == "batch":   # the job moved its files itself, with the AWS CLI
        commands = [" ".join(j["request"]["containerOverrides"]["command"]) for j in calls.jobs]
        assert commands and all("aws s3 cp" in c or "aws s3 sync" in c for c in commands)
    capsys.readouterr()
    calls.reset()
    assert run(flow.bf) == 0
    assert "nothing to do" in capsys.readouterr().err and calls.jobs == []
    flow.path.write_text(flow.path.read_text().replace("stage: true", "stage: false"))
    assert run(flow.bf, "-n") == 0   # the ledger compares commands as written: nothing changed
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("executor", ["local", "batch"])
def test_a_failed_staged_job_uploads_its_log_and_nothing_else(flow, executor, capsys):
    """The command writes its output, then fails: the output is not uploaded (the one an earlier run
    made survives a forced rerun), the log is."""
    text = PIPELINE.replace('pwd > {log}"', 'echo tried {sample} > {log}; exit 0"')
    write(flow, executor, text, samples="A")
    assert run(flow.bf, flow.url("out/up/A.txt")) == 0, capsys.readouterr().err
    write(flow, executor, text.replace("exit 0", "exit 3"), samples="A")
    flow.put("out/logs/up/A.log", "old log\n")
    assert run(flow.bf, "-F", flow.url("out/up/A.txt")) == 1
    assert "exit code 3" in capsys.readouterr().err
    assert flow.get("out/up/A.txt") == "A1\nA2\n"           # the good one, not the failed job's
    assert flow.get("out/logs/up/A.log") == "tried A\n"     # the failed job's log
    assert list((flow.dir / "scratch").iterdir()) == []


@pytest.mark.parametrize("executor", ["local", "batch"])
def test_a_staged_directory_output_replaces_what_was_there(flow, executor, capsys):
    """A rerun of a directory output leaves only what the job made (an older run's extra file goes)."""
    write(flow, executor, samples="A")
    assert run(flow.bf) == 0, capsys.readouterr().err
    flow.put("out/bins/A/part-zz", "stale\n")
    assert run(flow.bf, "-F", flow.url("out/bins/A")) == 0, capsys.readouterr().err
    assert keys(flow, "out/bins/A/") == ["part-aa", "part-ab"]


def test_batch_staging_moves_s3_urls_only(flow, calls, capsys):
    """A staged Batch job with a non-S3 URL is refused before anything is submitted."""
    write(flow, "batch", PIPELINE.replace('output: "{root}/up/{sample}.txt"', 'output: "memory://up/{sample}.txt"'),
          samples="A")
    assert run(flow.bf, "memory://up/A.txt") == 2
    assert_clean_error(capsys.readouterr().err, "stage: true", "memory://up/A.txt", "s3://")
    assert calls.jobs == []


# -- pure parts --------------------------------------------------------------------------------

def test_local_names_keep_the_whole_address_and_refuse_what_cannot_be_mirrored():
    assert local_name("s3://bucket/a/b.txt") == "s3/bucket/a/b.txt"
    assert local_name("s3://bucket/dir/") == "s3/bucket/dir"
    assert local_name("gs://other/x") == "gs/other/x"
    for bad in ("s3://bucket/a/../../x", "s3://bucket/a//b", "s3://bucket/./b", "s3://"):
        with pytest.raises(PlanError, match="stage: true"):
            local_name(bad)


STAGED = '''
default:
    stage: true
rule all:
    input: "s3://b/out/x.txt"
rule make:
    input: "s3://b/in/x.txt", "/data/ref.fa", "file:///data/other.fa"
    output: "s3://b/out/x.txt"
    log: "s3://b/logs/x.log"
    shell: "tool {input} > {output} 2> {log}"
'''


def _job(text: str, tmp_path):
    workflow = load(tmp_path, text.replace("/data", str(tmp_path)))
    return Planner(workflow).job(workflow.rules["make"], ())


def test_a_staged_command_names_local_copies_and_the_ledger_the_urls(tmp_path):
    job = _job(STAGED, tmp_path)
    here = str(tmp_path)
    assert job.command(here) == (f"tool s3/b/in/x.txt {here}/ref.fa file://{here}/other.fa > s3/b/out/x.txt "
                                 "2> s3/b/logs/x.log")
    assert job.command(here, staged=False).startswith("tool s3://b/in/x.txt ref.fa")   # what --explain hashes
    s = job.staging()
    assert [(t.url, t.local) for t in s.inputs] == [("s3://b/in/x.txt", "s3/b/in/x.txt")]
    assert [t.url for t in s.outputs] == ["s3://b/out/x.txt"] and [t.url for t in s.logs] == ["s3://b/logs/x.log"]
    unstaged = _job(STAGED.replace("stage: true", "stage: false"), tmp_path)
    assert unstaged.staging() is None and "s3://b/in/x.txt" in unstaged.command(here)


def test_the_batch_script_is_valid_bash_and_uploads_after_the_command(tmp_path):
    job = _job(STAGED, tmp_path)
    script = batch_script(job, job.staging(), job.argv()[-1])
    subprocess.run(["bash", "-n", "-c", script], check=True)
    lines = script.splitlines()
    download = next(i for i, l in enumerate(lines) if "aws s3 cp" in l and "s3://b/in/x.txt s3/b/in/x.txt" in l)
    command = next(i for i, l in enumerate(lines) if l.startswith("tool s3/b/in/x.txt"))
    log = next(i for i, l in enumerate(lines) if "s3/b/logs/x.log s3://b/logs/x.log" in l)
    output = next(i for i, l in enumerate(lines) if "s3/b/out/x.txt s3://b/out/x.txt" in l)
    stop = next(i for i, l in enumerate(lines) if 'if [ "$rc" -ne 0 ]' in l)
    assert download < command < log < stop < output


def test_staged_array_children_run_their_bash_wrapper_whatever_the_rules_shell(flow, capsys):
    """The staging script is bash; the command in it runs in shell_executable (sh here)."""
    write(flow, "batch", PIPELINE.replace("    stage: true\n", '    stage: true\n    shell_executable: "sh"\n'))
    assert run(flow.bf, flow.url("out/up/A.txt"), flow.url("out/up/B.txt")) == 0, capsys.readouterr().err
    assert flow.get("out/up/A.txt") == "A1\nA2\n" and flow.get("out/up/B.txt") == "B1\nB2\n"


@pytest.mark.parametrize("executor", ["local", "batch"])
def test_a_staged_directory_output_is_copied_whole(flow, executor, capsys):
    """A file of the same size with an old mtime (tar x, cp -p) still replaces the old object, and a
    directory named with glob characters leaves its neighbour alone."""
    text = PIPELINE.replace('shell: "split -l 1 {input} {output}/part-"',
                            'shell: "head -c 4 {input} > {output}/a.txt; touch -d 2001-01-01 {output}/a.txt"')
    (flow.dir / "samples.csv").write_text("sample\ns[1]\n")
    write(flow, executor, text, samples="")
    (flow.dir / "samples.csv").write_text("sample\ns[1]\n")
    flow.put("data/s[1].txt", "new1\n")
    flow.put("out/bins/s[1]/a.txt", "old1")           # same size as what the job writes, and newer
    flow.put("out/bins/s1/keep.txt", "neighbour")     # what a glob "s[1]" would match
    flow.put("out/up/s[1].txt", "NEW1\n")
    assert run(flow.bf, "-F", flow.url("out/bins/s[1]")) == 0, capsys.readouterr().err
    assert flow.get("out/bins/s[1]/a.txt") == "NEW1"
    assert flow.get("out/bins/s1/keep.txt") == "neighbour"


def test_a_stopped_batch_job_still_uploads_its_log(flow, tmp_path):
    """Batch sends SIGTERM first (a timeout, cancel, a reclaimed host): the staging script stops the
    command, uploads the log, uploads no output and exits 143, leaving no scratch directory."""
    import os
    import signal
    import time
    text = STAGED.replace('shell: "tool {input} > {output} 2> {log}"',
                          'shell: "echo started > {log}; echo partial > {output}; sleep 60"')
    job = _job(text.replace("s3://b/", f"s3://{flow.bucket}/").replace("stage: true",
                                                                       f'stage: true\n    scratch: "{tmp_path}"'),
               tmp_path)
    flow.put("in/x.txt", "x")
    script = batch_script(job, job.staging(), job.argv()[-1])
    proc = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("s3rules.") and (p / "s3" / flow.bucket / "logs" / "x.log").exists()
                  for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert flow.get("logs/x.log") == "started\n"
    assert flow.get("out/x.txt") is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("s3rules.")]
