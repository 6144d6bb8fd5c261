"""Packed short jobs (``group: N``): up to N jobs of a rule in one Batch job, run in turn; each
job's outputs, ledger record and failure still its own.

Same harness as tests/test_batch.py: moto's server, jobs run as local processes.
"""
from __future__ import annotations

import json
import shutil

import pytest

from s3rules.cli import main
from test_batch import POLL, calls, flow, gate, run, table  # noqa: F401

SAMPLES = [f"S{i:02d}" for i in range(45)]

PACKED = '''
rule all:
    input: expand("{root}/down/{sample}.txt"), "{root}/summary.txt"
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    group: 20
    shell: "if [ -e FLAGS/fail-{sample} ]; then echo broken {sample} >&2; exit 3; fi; echo HELLO {sample} | s3tool put {output}"
rule down:
    input: "{root}/up/{sample}.txt"
    output: "{root}/down/{sample}.txt"
    group: 20
    shell: "s3tool cat {input} | rev | s3tool put {output}"
rule summary:
    input: expand("{root}/up/{sample}.txt")
    output: "{root}/summary.txt"
    shell: "echo {input} | wc -w | s3tool put {output}"
'''


def write(flow, arrays: bool = True) -> None:
    """The harness runs jobs on this machine: a job fails while its flag file is in the test's directory."""
    flow.write(PACKED.replace("FLAGS", str(flow.dir)), samples=SAMPLES, arrays=arrays)


def submitted(calls, rule: str) -> list[dict]:
    return [p for p in calls.submits if p["jobName"].startswith((f"s3rules--pack-{rule}-", f"s3rules--array-{rule}-",
                                                                  f"s3rules-{rule}-"))]


def manifest(flow, request: dict) -> list:
    """The children (a pack: its members' identities) the manifest of a SubmitJob names."""
    url = request["tags"]["s3rules:manifest"]
    return json.loads(flow.s3.get_object(Bucket=flow.bucket, Key=url.split("/", 3)[3])["Body"].read())["children"]


def test_45_jobs_in_packs_of_20_go_up_as_3_units_and_a_second_run_has_nothing_to_do(flow, calls, capsys):
    write(flow)
    summary = flow.url("out/summary.txt")
    assert run(flow.bf, summary) == 0, capsys.readouterr().err
    assert all(flow.get(f"out/up/{s}.txt") == f"HELLO {s}\n" for s in SAMPLES)
    assert flow.get("out/summary.txt").strip() == "45"
    up = submitted(calls, "up")
    assert [p["arrayProperties"]["size"] for p in up] == [3]          # one array of 3 packs: 20, 20, 5
    assert [len(child) for child in manifest(flow, up[0])] == [20, 20, 5]
    capsys.readouterr()
    calls.reset()
    assert run(flow.bf, summary) == 0 and calls.submits == []
    assert "nothing to do" in capsys.readouterr().err


def test_packs_alone_are_3_batch_jobs(flow, calls, capsys):
    write(flow, arrays=False)
    assert run(flow.bf, flow.url("out/summary.txt")) == 0, capsys.readouterr().err
    up = submitted(calls, "up")
    assert len(up) == 3 and all(p["jobName"].startswith("s3rules--pack-up-") for p in up)
    assert sorted(len(manifest(flow, p)) for p in up) == [5, 20, 20]
    assert flow.get("out/summary.txt").strip() == "45"


def test_a_failed_job_in_a_pack_is_that_jobs_failure_and_the_others_go_on(flow, calls, capsys):
    """S07 fails in the first pack of up: it alone is reported failed (its exit code), the other
    19 of its pack made their outputs, and their down jobs ran (with --keep-going); the next run
    submits only S07 and what needs it."""
    write(flow)
    (flow.dir / "fail-S07").touch()
    assert run(flow.bf, "--keep-going") == 1
    err = capsys.readouterr().err
    assert "up[sample=S07]" in err and "exit code 3" in err, err
    assert "broken S07" in err                                        # the pack's log tail
    assert flow.get("out/up/S07.txt") is None
    assert all(flow.get(f"out/up/{s}.txt") == f"HELLO {s}\n" for s in SAMPLES if s != "S07")
    assert all(flow.get(f"out/down/{s}.txt") == f"HELLO {s}"[::-1] + "\n" for s in SAMPLES if s != "S07")
    assert flow.get("out/summary.txt") is None and flow.get("out/down/S07.txt") is None
    assert main(["status", flow.bf]) == 0
    text = capsys.readouterr().out
    rows = table(text.split("\n\n")[0])
    assert rows["up"]["done"] == 44 and rows["up"]["failed"] == 1, rows
    assert rows["down"]["done"] == 44, rows
    causes = dict(c.rsplit(" ", 1) for c in text.split("failed by cause: ")[1].split("\n")[0].split(", "))
    assert causes.pop("application error") == "1" and set(causes) == {"dependency failed"}, text
    # every failed job has a cause (the summary may have been submitted, and failed, or not)
    assert 1 + int(causes["dependency failed"]) == rows["total"]["failed"] in (2, 3), text

    (flow.dir / "fail-S07").unlink()   # fixed: S07, its down job and the summary, nothing else
    calls.reset()
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert sorted(p["jobName"].rsplit("-", 1)[0] for p in calls.submits) == ["s3rules-down-S07", "s3rules-summary", "s3rules-up-S07"], [(p["jobName"], len(manifest(flow, p)) if "s3rules:manifest" in p["tags"] else 1) for p in calls.submits]


def test_packs_in_flight_are_found_again_by_the_next_run(flow, calls, capsys):
    """Detach after submitting: the next run reuses every packed job in flight (nothing twice)."""
    write(flow)
    summary = flow.url("out/summary.txt")
    assert run(flow.bf, summary, "--detach") == 0, capsys.readouterr().err
    assert len(calls.submits) == 2   # the packs of up (one array) and the summary
    calls.reset()
    assert run(flow.bf, summary) == 0, capsys.readouterr().err
    assert calls.submits == []
    assert flow.get("out/summary.txt").strip() == "45"


def test_a_pack_runs_each_job_in_turn_retries_it_in_place_and_gives_every_exit_code(tmp_path):
    """Pure bash, no AWS: job b fails once and is retried (retries: 1), c fails for good (exit 4)
    and d still runs; the last line gives 0 0 4 0 and the pack exits 4. Each job's environment is
    its own, and a job reading stdin reads nothing."""
    import subprocess
    from s3rules.aws.jobspec import JobSpec
    from s3rules.aws.packs import exit_codes, pack_script
    count = tmp_path / "count"

    def spec(label, script, retries=0, env=()):
        return JobSpec(label, "q", "jd", ("bash", "-c", f"set -euo pipefail\n{script}"), retries=retries,
                       environment=env)
    members = [spec("a", 'echo "a $WHO"; cat', env=(("WHO", "alpha"),)),
               spec("b", f'echo x >> {count}; [ "$(wc -l < {count})" -ge 2 ]', retries=1),
               spec("c", 'echo "c ${WHO:-nobody}"; exit 4', retries=0),
               spec("d", "echo d ran")]
    done = subprocess.run(["bash", "-c", pack_script(members)], capture_output=True, text=True, input="stdin text\n")
    assert done.returncode == 4, done.stderr
    out = done.stdout.splitlines()
    assert "a alpha" in out and "c nobody" in out and "d ran" in out and "stdin text" not in out
    assert count.read_text() == "x\nx\n"                         # b: one retry, then it passed
    assert exit_codes(out) == [0, 0, 4, 0]
    assert "s3rules pack: b failed (exit 1); trying again" in done.stderr


def test_staged_jobs_pack_too(flow, calls, capsys):
    """stage: true inside packs: each job downloads, runs and uploads its own files."""
    flow.write('''
rule all:
    input: expand("{root}/up/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    stage: true
    group: 2
    shell: "tr a-z A-Z < {input} > {output}"
''', samples=["a", "b", "c", "d", "e"], arrays=False)
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert [flow.get(f"out/up/{s}.txt") for s in "abcde"] == [f"HELLO {s.upper()}\n" for s in "abcde"]
    assert sorted(len(manifest(flow, p)) if "s3rules:manifest" in p["tags"] else 1 for p in calls.submits) == [1, 2, 2]


GATED = '''
rule all:
    input: expand("{root}/up/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    group: 2
    shell: "GATE echo HELLO {sample} | s3tool put {output}"
'''


def write_gated(flow, gate, arrays: bool) -> None:
    """Five jobs in packs of two (a, b | c, d | e alone), each waiting for the gate to open."""
    flow.write(GATED.replace("GATE ", gate.wait), samples=["a", "b", "c", "d", "e"], arrays=arrays)


@pytest.mark.parametrize("arrays", [True, False])
def test_a_run_with_no_record_of_them_finds_packed_jobs_in_flight_by_their_manifest(flow, calls, gate, capsys,
                                                                                   arrays):
    """Packed jobs in flight, and no job ledger (another person's run, or records lost): the next
    run lists what is in flight, reads the packs' manifests and submits nothing twice."""
    write_gated(flow, gate, arrays)
    assert run(flow.bf, "--detach") == 0, capsys.readouterr().err
    made = len(calls.submits)
    assert made == (1 if arrays else 3)        # packs of 2, 2 and a lone job: one array of 3 children, or 3
    listed = flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/ledger/").get("Contents", [])
    for o in listed:
        flow.s3.delete_object(Bucket=flow.bucket, Key=o["Key"])
    shutil.rmtree(flow.dir / ".s3rules", ignore_errors=True)
    calls.reset()
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert gate.is_open and calls.submits == []
    assert [flow.get(f"out/up/{s}.txt") for s in "abcde"] == [f"HELLO {s}\n" for s in "abcde"]


@pytest.mark.parametrize("arrays", [True, False])
def test_packed_jobs_that_ended_while_detached_are_done_for_the_next_run(flow, calls, gate, capsys, arrays):
    """The job ledger keeps each packed job's id (<pack>#<k>): jobs that ended while no s3rules
    watched are settled as done by the next run, never submitted again (their outputs were
    already there when it planned, so only their record can tell)."""
    write_gated(flow, gate, arrays)
    assert run(flow.bf, "--detach") == 0, capsys.readouterr().err
    ids = [p["jobId"] for p in calls.submits]
    gate.open()
    flow.wait(ids)
    calls.reset()
    capsys.readouterr()
    assert run(flow.bf) == 0
    assert calls.submits == [], [p["jobName"] for p in calls.submits]
    assert [flow.get(f"out/up/{s}.txt") for s in "abcde"] == [f"HELLO {s}\n" for s in "abcde"]
