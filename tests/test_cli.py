"""End to end through the installed ``s3rules`` console script, as a user runs it."""
import json
import shutil
from pathlib import Path

import pytest

from workflows import DATA, PIPELINE, SHEET, s3rules, write

DEMO = Path(__file__).resolve().parent.parent / "rulefiles" / "demo"


@pytest.fixture
def demo(tmp_path):
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("out", ".s3rules"))
    return target


def jobs_run(stderr: str) -> set[str]:
    """Jobs a run reports as done (plain progress lines: stderr is not a terminal here)."""
    return {line.split(" done ", 1)[1] for line in stderr.splitlines() if " done " in line and line.startswith("[")}


def dry_run(cwd, *args) -> dict:
    r = s3rules("run", "-n", "--json", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def described(doc) -> set[str]:
    out = set()
    for job in doc["jobs"]:
        wc = ", ".join(f"{k}={v}" for k, v in job["wildcards"].items())
        out.add(f"{job['rule']}[{wc}]" if wc else job["rule"])
    return out


def test_demo_runs_then_does_nothing_then_force_reruns_downstream(demo):
    planned = dry_run(demo)
    assert planned["summary"] == {"rules": {
        "trim": {"pending": 4, "done": 0, "total": 4}, "count": {"pending": 4, "done": 0, "total": 4},
        "group": {"pending": 2, "done": 0, "total": 2}, "summary": {"pending": 1, "done": 0, "total": 1}},
        "pending": 11, "done": 0, "total": 11}
    first = s3rules("run", cwd=demo)           # no positional: ./Batchfile
    assert first.returncode == 0, first.stderr
    assert jobs_run(first.stderr) == described(planned)   # -n listed exactly what run executed
    summary = (demo / "out/summary.tsv").read_text().split("\n")
    assert summary[:4] == ["S01\t7", "S02\t5", "S03\t12", "S04\t8"]
    assert (demo / "out/counts/S03.log").read_text() == "counted S03 in group treated\n"
    assert (demo / ".s3rules/logs/trim/sample=S01.log").exists()

    second = s3rules("run", str(demo / "Batchfile"))
    assert second.returncode == 0 and "nothing to do" in second.stderr
    assert dry_run(demo)["jobs"] == []

    before = (demo / "out/groups/treated.tsv").stat().st_mtime_ns
    forced_plan = dry_run(demo, "-f", "out/trim/S01.txt")
    assert described(forced_plan) == {"trim[sample=S01]", "count[sample=S01]", "group[group=control]", "summary"}
    forced = s3rules("run", "Batchfile", "-f", "out/trim/S01.txt", cwd=demo)  # option after the positional
    assert forced.returncode == 0, forced.stderr
    assert jobs_run(forced.stderr) == described(forced_plan)
    assert (demo / "out/groups/treated.tsv").stat().st_mtime_ns == before   # untouched branch


def test_dry_run_table_and_reasons(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    (tmp_path / "out/counts").mkdir(parents=True)
    (tmp_path / "out/counts/B.txt").write_text("1\n")
    r = s3rules("run", "-n", str(bf))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["rule", "pending", "done", "total"]
    assert lines[1].split() == ["trim", "3", "0", "3"]
    assert lines[4].split() == ["total", "7", "0", "7"]
    assert "pending (6 missing, 1 incomplete):" in r.stdout
    assert any(l.split()[:2] == ["incomplete", "count[sample=B]"] for l in lines)
    quiet = s3rules("run", "-n", "-q", str(bf))
    assert "pending (" not in quiet.stdout and "total" in quiet.stdout


def test_config_overrides_a_variable(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", str(bf), "--config", "root=elsewhere", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "elsewhere/summary.tsv").read_text().split() == ["2", "1", "3"]
    assert not (tmp_path / "out").exists()


FAILING = """
samples: "samples.csv"
rule all:
    input: expand("out/b/{sample}.txt")
rule a:
    input: "data/{sample}.txt"
    output: "out/a/{sample}.txt"
    shell: '''
        if [ {sample} = B ]; then echo "B is broken" >&2; exit 3; fi
        cp {input} {output}
    '''
rule b:
    input: "out/a/{sample}.txt"
    output: "out/b/{sample}.txt"
    shell: "cp {input} {output}"
"""


def test_a_failed_job_is_reported_and_stops_the_run(tmp_path):
    bf = write(tmp_path, FAILING, SHEET, DATA)
    r = s3rules("run", str(bf), "-j", "1")
    assert r.returncode == 1
    assert "job failed: rule a (sample=B): exit code 3" in r.stderr
    assert "| B is broken" in r.stderr
    assert "log: " in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out/b/B.txt").exists()


def test_keep_going_finishes_independent_branches(tmp_path):
    bf = write(tmp_path, FAILING, SHEET, DATA)
    r = s3rules("run", str(bf), "-k", "-j", "1")
    assert r.returncode == 1
    assert sorted(p.name for p in (tmp_path / "out/b").iterdir()) == ["A.txt", "C.txt"]
    assert "1 job was not run because a job it needs failed" in r.stderr


def test_exit_zero_without_an_output_is_a_failure(tmp_path):
    bf = write(tmp_path, '''
        rule make:
            output: "out/x.txt", "out/y.txt"
            shell: "echo x > {output[0]}"
        ''')
    r = s3rules("run", str(bf))
    assert r.returncode == 1
    assert "finished without writing its output" in r.stderr and "out/y.txt" in r.stderr
    # the half-written target stays pending, as incomplete
    again = s3rules("run", "-n", str(bf))
    assert "incomplete" in again.stdout


def test_a_failed_job_never_leaves_a_complete_looking_target(tmp_path):
    bf = write(tmp_path, '''
        rule make:
            output: "out/x.txt"
            shell: "echo x > {output}; exit 1"
        ''')
    r = s3rules("run", str(bf))
    assert r.returncode == 1
    assert "removed outputs written by failed jobs" in r.stderr
    assert not (tmp_path / "out/x.txt").exists()


def test_forced_rerun_keeps_the_old_output_until_replaced(tmp_path):
    """A rerun that overwrites its outputs and then fails leaves the old ones byte for byte."""
    old = "precious\n\x00bytes\xff".encode("latin-1")
    bf = write(tmp_path, '''
        rule make:
            output: "out/x.txt", "out/y.txt"
            shell: "echo half > {output[0]}; echo half > {output[1]}; exit 1"
        ''')
    for name in ("x", "y"):
        (tmp_path / f"out/{name}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / f"out/{name}.txt").write_bytes(old + name.encode())
    r = s3rules("run", str(bf), "-F")
    assert r.returncode == 1
    assert "kept the previous outputs of failed jobs: " in r.stderr
    assert "removed outputs" not in r.stderr
    for name in ("x", "y"):
        assert (tmp_path / f"out/{name}.txt").read_bytes() == old + name.encode()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.txt", "y.txt"]
    assert "nothing to do" in s3rules("run", "-n", str(bf)).stdout


def test_a_forced_rerun_that_succeeds_replaces_the_old_output_and_leaves_nothing_aside(tmp_path):
    bf = write(tmp_path, '''
        rule make:
            output: "out/x.txt"
            shell: "echo new > {output}"
        ''', files={"out/x.txt": "old"})
    r = s3rules("run", str(bf), "-F")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/x.txt").read_text() == "new\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.txt"]


def test_ctrl_c_during_a_rerun_puts_the_old_output_back(tmp_path):
    import signal
    import subprocess
    import sys
    bf = write(tmp_path, '''
        rule make:
            output: "out/x.txt"
            shell: "echo half > {output}; touch started; while true; do sleep 0.05; done"
        ''', files={"out/x.txt": "old"})
    proc = subprocess.Popen([sys.executable, "-m", "s3rules", "run", str(bf), "-F", "-q"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # even if inherited ignored
    try:
        for _ in range(1200):          # wait for the job to have started (at most a minute)
            if (tmp_path / "started").exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"])
        assert (tmp_path / "started").exists()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines()[:2] == ["s3rules: interrupted: 1 job stopped, 0 finished, 0 never started",
                                    "stopped: make (-)"], err
    assert "kept the previous outputs of failed jobs: out/x.txt" in err and "failed" not in err.split("\n")[0]
    assert (tmp_path / "out/x.txt").read_text() == "old"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.txt"]


def test_sample_values_reach_the_command_byte_for_byte(tmp_path):
    hostile = ["semi;colon", "dollar$(touch pwned)", "back`touch pwned`tick", "quo'te\"s", "sp ace", "ünï😀",
               "star*", "-dash"]
    sheet = "sample,label\n" + "".join(f"s{i},\"{v.replace(chr(34), chr(34) * 2)}\"\n" for i, v in enumerate(hostile))
    bf = write(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("out/{sample}.txt")
        rule echo:
            output: "out/{sample}.txt"
            shell: "printf '%s' {label} > {output}"
        ''', sheet)
    r = s3rules("run", str(bf))
    assert r.returncode == 0, r.stderr
    for i, v in enumerate(hostile):
        assert (tmp_path / f"out/s{i}.txt").read_text() == v
    assert not (tmp_path / "pwned").exists()


def test_parallel_jobs_really_run_together(tmp_path):
    # each job waits (bounded) for the other's marker: only -j 2 lets both finish
    bf = write(tmp_path, """
        samples: "samples.csv"
        rule all:
            input: expand("out/{sample}.txt")
        rule meet:
            output: "out/{sample}.txt"
            shell: '''
                touch {sample}.here
                for i in $(seq 200); do [ -e {other}.here ] && break; sleep 0.05; done
                [ -e {other}.here ] && touch {output}
            '''
        """, "sample,other\nA,B\nB,A\n")
    r = s3rules("run", str(bf), "-j", "2")
    assert r.returncode == 0, r.stderr


def test_parent_directories_and_environment(tmp_path):
    bf = write(tmp_path, '''
        samples: "samples.csv"
        default:
            environment:
                WHO: "{sample}-env"
        rule all:
            input: expand("deep/er/{sample}/x.txt")
        rule make:
            output: "deep/er/{sample}/x.txt"
            shell: "echo $WHO > {output}"
        ''', "sample\nA\n")
    r = s3rules("run", str(bf))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "deep/er/A/x.txt").read_text() == "A-env\n"


def test_errors_exit_2_without_traceback(tmp_path):
    bf = write(tmp_path, 'rule a:\n    output: "x"\n    shel: "touch x"\n')
    r = s3rules("run", str(bf))
    assert r.returncode == 2
    assert r.stderr.startswith(f"s3rules: error: {bf}:3:5: unknown key 'shel'")
    assert "did you mean 'shell'" in r.stderr and "Traceback" not in r.stderr
    missing = s3rules("run", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such Batchfile" in missing.stderr
    usage = s3rules("run", "-j", "zero")
    assert usage.returncode == 2 and "expected a whole number" in usage.stderr
    sheet = write(tmp_path / "s", PIPELINE, "sample,group\nA,g1\nA,g2\n", DATA)
    r = s3rules("run", "-n", str(sheet))
    assert r.returncode == 2 and "samples.csv:3:sample: duplicate key 'A'" in r.stderr


def test_dag_rulegraph_and_list(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    dag = s3rules("run", "--dag", str(bf)).stdout
    # trim->count x3, count->summary x3, count->all x3, summary->all
    assert dag.startswith("digraph s3rules {") and dag.count("->") == 10
    assert '"count[sample=A]"' in dag
    rg = s3rules("run", "--rulegraph", str(bf)).stdout
    assert rg.count("->") == 4 and '"summary"' in rg
    listing = s3rules("run", "--list", str(bf)).stdout
    assert "rule count  [line 12]" in listing and "input:  expand(out/counts/{sample}.txt)" in listing


def test_rule_targets_and_until(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", str(bf), "trim", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out/trim").iterdir()) == ["A.txt", "B.txt", "C.txt"]
    assert not (tmp_path / "out/counts").exists()
    doc = dry_run(tmp_path, "--until", "count")
    assert described(doc) == {"count[sample=A]", "count[sample=B]", "count[sample=C]"}
