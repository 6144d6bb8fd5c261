"""``s3rules status``, ``logs`` and ``cancel`` on local workflows: from the job ledger, the local
log files and the process table, with AWS deliberately unusable (any AWS call would fail).

Jobs that must be caught running wait for a gate file; the tests wait for the ledger's journal to
name the job's pid (or for a file the job writes), never for a fixed time.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from s3rules.cli import main
from s3rules.cli.batch import stop_process_groups
from workflows import s3rules, write

NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",   # nothing listens
          "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
          "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}

WORKFLOW = """
samples: "samples.csv"

rule all:
    input: expand("out/b/{sample}.txt")

rule a:
    output: "out/a/{sample}.txt"
    shell: '''
        echo working on {sample}
        if [ {sample} = C ]; then echo boom; exit 3; fi
        echo {sample} > {output}
    '''

rule b:
    input: "out/a/{sample}.txt"
    output: "out/b/{sample}.txt"
    shell: "cat {input} > {output}"

rule slow:
    output: "out/slow.txt"
    shell: '''
        echo slow started
        echo partial > {output}
        while [ ! -e gate ]; do sleep 0.05; done
        echo whole >> {output}
    '''
"""

SHEET = "sample\nA\nB\nC\n"
LOCAL_COLUMNS = ["done", "running", "failed", "incomplete", "to_do", "total"]


def cli(wf: Path, *args: str) -> subprocess.CompletedProcess:
    return s3rules(*args, cwd=wf, env=NO_AWS, timeout=60)


def status(wf: Path, *args: str) -> dict[str, dict[str, int]]:
    """``s3rules status`` as {rule: {column: n}} ("to do" read as to_do); the columns checked too."""
    r = cli(wf, "status", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().split("\n\n")[0].splitlines()   # the table, not the causes below it
    columns = lines[0].replace("to do", "to_do").split()[1:]
    assert columns == LOCAL_COLUMNS, lines[0]   # no Batch state in a local workflow
    return {name: dict(zip(columns, map(int, numbers))) for name, *numbers in (line.split() for line in lines[1:])}


def row(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(LOCAL_COLUMNS, 0), **counts}


def workflow(tmp_path: Path) -> Path:
    return write(tmp_path / "wf", WORKFLOW, SHEET).parent


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def journal_pid(wf: Path) -> int | None:
    """The pid the ledger's journal gives the slow job, once it has one."""
    try:
        text = (wf / ".s3rules/ledger/journal").read_text()
    except FileNotFoundError:
        return None
    pids = [line.split("\t")[1].split(" ")[6] for line in text.splitlines() if line.startswith("out/slow.txt\t")]
    return int(pids[-1].split(":")[1]) if pids and pids[-1].startswith("local:") else None


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


class Background:
    """``s3rules run -q slow`` in the background, until its job has a pid; everything it started is
    killed on exit if the test left it running."""

    def __init__(self, wf: Path):
        self.wf = wf

    def __enter__(self) -> "Background":
        exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
        self.proc = subprocess.Popen([exe, "run", "-q", "slow"], cwd=self.wf, env={**os.environ, **NO_AWS},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        wait_for(lambda: " local:" in self._journal(), "the journal to name the job's pid")
        self.pid = journal_pid(self.wf)
        assert self.pid is not None
        wait_for(lambda: (self.wf / "out/slow.txt").exists(), "the job to start writing")
        return self

    def _journal(self) -> str:
        path = self.wf / ".s3rules/ledger/journal"
        return path.read_text() if path.exists() else ""

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        if not group_gone(self.pid):
            os.killpg(self.pid, signal.SIGKILL)


# == status =========================================================================================

def test_status_counts_a_partly_done_local_workflow(tmp_path):
    wf = workflow(tmp_path)
    assert status(wf) == {"a": row(to_do=3, total=3), "b": row(to_do=3, total=3), "total": row(to_do=6, total=6)}
    assert cli(wf, "run", "-q", "out/a/A.txt", "out/b/B.txt").returncode == 0   # a[A], a[B], b[B]
    assert status(wf) == {"a": row(done=2, to_do=1, total=3), "b": row(done=1, to_do=2, total=3),
                          "total": row(done=3, to_do=3, total=6)}
    assert status(wf, "a") == {"a": row(done=2, to_do=1, total=3), "total": row(done=2, to_do=1, total=3)}
    # a changed command is to do again, as `run` would rerun it
    (wf / "Batchfile").write_text((wf / "Batchfile").read_text().replace("cat {input}", "cat < {input}"))
    assert status(wf, "b")["b"] == row(done=0, to_do=3, total=3)


def test_status_after_a_failure_counts_it_failed(tmp_path):
    wf = workflow(tmp_path)
    r = cli(wf, "run", "-k")
    assert r.returncode == 1 and "rule a (sample=C): exit code 3" in r.stderr
    assert status(wf) == {"a": row(done=2, failed=1, total=3), "b": row(done=2, to_do=1, total=3),
                          "total": row(done=4, failed=1, to_do=1, total=6)}
    assert "failed by cause: application error 1" in cli(wf, "status").stdout


def test_status_while_a_local_job_runs_and_watch_until_it_ends(tmp_path):
    wf = workflow(tmp_path)
    with Background(wf) as run:
        assert status(wf, "slow") == {"slow": row(running=1, total=1), "total": row(running=1, total=1)}
        logs = cli(wf, "logs", "out/slow.txt")   # the log so far, of the job still running
        assert logs.returncode == 0 and logs.stdout == "slow started\n", logs.stderr
        assert "running" in logs.stderr
        exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
        watch = subprocess.Popen([exe, "status", "slow", "--watch", "--interval", "0.05"], cwd=wf,
                                 env={**os.environ, **NO_AWS}, stdout=subprocess.PIPE, text=True)
        first = [watch.stdout.readline() for _ in range(3)]
        assert first[1].split()[:3] == ["slow", "0", "1"], first   # running
        (wf / "gate").touch()
        out, _ = watch.communicate(timeout=60)
        assert watch.returncode == 0
        assert out.strip().split("\n\n")[-1].splitlines()[1].split() == ["slow", "1", "0", "0", "0", "0", "1"]
        assert run.finish() == (0, "")
    assert (wf / "out/slow.txt").read_text() == "partial\nwhole\n"
    assert status(wf, "slow")["slow"] == row(done=1, total=1)


# == logs ===========================================================================================

def test_logs_prints_a_local_jobs_log(tmp_path):
    wf = workflow(tmp_path)
    assert cli(wf, "run", "-k", "-q").returncode == 1
    failed = cli(wf, "logs", "out/a/C.txt")
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout == "working on C\nboom\n"
    assert "a[sample=C]" in failed.stderr and "failed" in failed.stderr
    done = cli(tmp_path, "logs", "-s", str(wf / "Batchfile"), str(wf / "out/a/A.txt"))   # from elsewhere
    assert done.returncode == 0 and done.stdout == "working on A\n", done.stderr
    assert "finished" in done.stderr


def test_logs_of_a_job_that_never_ran_here_is_a_one_paragraph_error(tmp_path):
    wf = workflow(tmp_path)
    r = cli(wf, "logs", "out/b/A.txt")
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("s3rules: error: no log of job b[sample=A]") and "s3rules run" in r.stderr


# == cancel =========================================================================================

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cancel_stops_a_running_local_job(tmp_path, monkeypatch, capsys):
    wf = workflow(tmp_path)
    with Background(wf) as run:
        elsewhere = cli(wf, "cancel", "-y")   # the first rule's jobs: none runs, and it says what does
        assert elsewhere.returncode == 0 and "no job of this workflow is running" in elsewhere.stderr
        assert "1 other local job of this directory is running" in elsewhere.stderr
        refused = cli(wf, "cancel", "slow")   # no terminal, no -y: nothing is stopped
        assert refused.returncode == 2 and "-y" in refused.stderr and f"pid {run.pid}" in refused.stderr
        monkeypatch.setattr(sys, "stdin", Terminal("n\n"))   # asked on a terminal, answered no
        assert main(["cancel", "-s", str(wf / "Batchfile"), "slow"]) == 1
        out, err = capsys.readouterr()
        assert "Terminate this job? [y/N]" in out
        assert "nothing cancelled" in err and f"pid {run.pid}" in err
        assert run.proc.poll() is None and not group_gone(run.pid)
        r = cli(wf, "cancel", "-y", "slow")
        assert r.returncode == 0, r.stderr
        assert "slow" in r.stderr and "stopped 1 local job" in r.stderr
        code, err = run.finish()
        assert code == 1 and "rule slow (-): killed by signal 15" in err
        wait_for(lambda: group_gone(run.pid), "the job's process group to be gone")
    assert not (wf / "gate").exists() and not (wf / "out/slow.txt").exists()   # removed: the job failed
    assert status(wf, "slow")["slow"] == row(failed=1, total=1)
    again = cli(wf, "cancel", "-y", "slow")
    assert again.returncode == 0 and "no job of this workflow is running" in again.stderr
    assert "other local job" not in again.stderr


def test_cancel_stops_the_job_a_killed_run_left_which_is_then_incomplete(tmp_path):
    wf = workflow(tmp_path)
    with Background(wf) as run:
        run.proc.kill()   # s3rules dies at once; its job, in its own session, runs on
        run.proc.communicate()
        assert not group_gone(run.pid)
        assert status(wf, "slow")["slow"] == row(running=1, total=1)
        r = cli(wf, "cancel", "-y", "out/slow.txt")
        assert r.returncode == 0 and "stopped 1 local job" in r.stderr, r.stderr
        wait_for(lambda: group_gone(run.pid), "the job's process group to be gone")
    assert (wf / "out/slow.txt").read_text() == "partial\n"   # half-written, and no longer running:
    assert status(wf, "slow")["slow"] == row(incomplete=1, total=1)


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_time():
    job = subprocess.Popen(["bash", "-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"],
                           start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline() == "ready\n"   # SIGTERM is ignored from here on
        assert stop_process_groups([str(job.pid)], grace=0.2) == (1, [])
        assert job.wait(timeout=10) == -signal.SIGKILL
        wait_for(lambda: group_gone(job.pid), "the sleep it started to be gone too")
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()


# == no AWS =========================================================================================

def test_local_workflows_never_load_boto(tmp_path):
    """status, logs and cancel of local jobs, in a fresh interpreter: botocore is never imported."""
    wf = workflow(tmp_path)
    assert cli(wf, "run", "-q", "out/a/A.txt").returncode == 0
    script = ("import sys\nfrom s3rules.cli import main\n"
              "codes = [main(['status']), main(['logs', 'out/a/A.txt']), main(['cancel', '-y'])]\n"
              "print(codes, sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=wf, env={**os.environ, **NO_AWS}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[0, 0, 0] []"


MIXED = """
samples: "samples.csv"
rule all:
    input: expand("memory://inspect-test/out/b/{sample}.txt")
rule a:
    output: "out/a/{sample}.txt"
    shell: "echo {sample} > {output}"
rule b:
    input: "out/a/{sample}.txt"
    output: "memory://inspect-test/out/b/{sample}.txt"
    executor: batch
    queue: "q"
    job_definition: "jd"
    shell: "cat {input} > {output}"
"""


class InFlight:
    """A stand-in for the Batch submitter: every Batch job asked about is RUNNABLE."""

    def in_flight_summary(self, spec):
        return {"jobId": "j-" + spec.name, "status": "RUNNABLE"}


def test_with_batch_rules_the_batch_states_replace_the_running_column(tmp_path):
    """One table: local jobs running count as RUNNING beside the Batch jobs in their states."""
    from s3rules.cli.status import status_table
    from s3rules.ledger import Ledger
    from s3rules.planner import plan
    from s3rules.storage import Storage
    from workflows import load
    wf = load(tmp_path, MIXED, SHEET)
    (tmp_path / "out/a").mkdir(parents=True)
    (tmp_path / "out/a/A.txt").write_text("A")
    the_plan = plan(wf, Storage(), check_sources=False)
    a_b = next(job for job in the_plan.jobs if job.describe() == "a[sample=B]")
    ledger = Ledger(Storage(), wf.base_dir, str(tmp_path / ".s3rules"))
    job = subprocess.Popen(["sleep", "30"], start_new_session=True)   # as the local executor starts a[B]
    try:
        ledger.started([a_b], {a_b: f"local:{job.pid}"})
        text, in_flight = status_table(the_plan, Ledger(Storage(), wf.base_dir, str(tmp_path / ".s3rules")),
                                       InFlight())
    finally:
        job.kill()
        job.wait()
    lines = [line.replace("to do", "to_do").split() for line in text.splitlines()]
    assert lines[0] == ["rule", "done", "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "failed",
                        "incomplete", "to_do", "total"]
    assert lines[1] == ["a", "1", "0", "0", "0", "0", "1", "0", "0", "1", "3"]
    assert lines[2] == ["b", "0", "0", "0", "3", "0", "0", "0", "0", "0", "3"]
    assert in_flight == 4
