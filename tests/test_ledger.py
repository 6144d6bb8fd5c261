"""The job ledger: records survive crashes and moves, tell interrupted and changed jobs, and cost
one listing per 1,000 records on S3."""
from __future__ import annotations

import math
import os
import shutil
import uuid
from pathlib import Path

import pytest

from s3rules.language.loader import load_workflow
from s3rules.ledger import DEFAULT_TRIGGERS, FINISHED, STARTED, Ledger, Record
from s3rules.ledger.journal import Journal
from s3rules.planner import plan
from s3rules.storage import Storage
from test_storage import RequestCounter, _s3_env

BATCHFILE = """\
samples: "samples.csv"
rule all:
    input: expand("out/{sample}.txt")
rule up:
    input: "{reads}"
    output: "out/{sample}.txt"
    memory: 1024
    shell: "tr a-z A-Z < {input} > {output}  # {note}"
"""


def workflow(tmp_path: Path, text: str = BATCHFILE, rows=(("A", "data/A.txt", "x"), ("B", "data/B.txt", "y"))):
    (tmp_path / "Batchfile").write_text(text)
    (tmp_path / "samples.csv").write_text("sample,reads,note\n" + "".join(",".join(r) + "\n" for r in rows))
    (tmp_path / "data").mkdir(exist_ok=True)
    for name in ("A", "B", "C"):
        (tmp_path / "data" / f"{name}.txt").write_text(name.lower())
    return load_workflow(str(tmp_path / "Batchfile"), {})


def make_outputs(tmp_path: Path, *names: str) -> None:
    (tmp_path / "out").mkdir(exist_ok=True)
    for name in names:
        (tmp_path / "out" / f"{name}.txt").write_text(name)


def reasons(wf, ledger: Ledger, triggers=DEFAULT_TRIGGERS) -> dict[str, str]:
    p = plan(wf, Storage(), ledger=ledger, triggers=triggers)
    return {job.describe(): why for job, why in p.pending.items()}


def new_ledger(wf) -> Ledger:
    return Ledger(Storage(), wf.base_dir, os.path.join(wf.base_dir, ".s3rules"))


def jobs_of(wf):
    return [j for j in plan(wf, Storage(), forceall=True).jobs if j.rule.name == "up"]


def test_a_job_started_and_never_finished_is_incomplete_even_though_its_output_exists(tmp_path):
    wf = workflow(tmp_path)
    make_outputs(tmp_path, "A", "B")
    a, b = jobs_of(wf)
    ledger = new_ledger(wf)
    ledger.started([a, b])
    ledger.finished([b], {})
    assert reasons(wf, new_ledger(wf)) == {"up[sample=A]": "incomplete"}
    p = plan(wf, Storage(), ledger=new_ledger(wf), triggers=DEFAULT_TRIGGERS)
    assert [j.describe() for j in p.interrupted] == ["up[sample=A]"]


def test_a_failed_record_is_incomplete_and_no_record_counts_as_done(tmp_path):
    wf = workflow(tmp_path)
    make_outputs(tmp_path, "A", "B")
    a, _ = jobs_of(wf)
    new_ledger(wf).failed([(a, {"exit": 3})])
    assert reasons(wf, new_ledger(wf)) == {"up[sample=A]": "incomplete"}


@pytest.mark.parametrize("edit,expected", [
    (lambda t: t.replace("tr a-z A-Z", "tr a-z A-Z | cat"), {"A": "changed: command", "B": "changed: command"}),
    (lambda t: t.replace("memory: 1024", "memory: 2048"), {"A": "changed: resources", "B": "changed: resources"}),
    (lambda t: t, {}),
])
def test_a_rule_edit_is_told_by_the_trigger_it_touches(tmp_path, edit, expected):
    wf = workflow(tmp_path)
    make_outputs(tmp_path, "A", "B")
    new_ledger(wf).finished(jobs_of(wf), {})
    wf2 = workflow(tmp_path, edit(BATCHFILE))
    assert reasons(wf2, new_ledger(wf2)) == {f"up[sample={k}]": v for k, v in expected.items()}
    assert reasons(wf2, new_ledger(wf2), triggers=()) == {}


def test_sheet_edits_change_only_the_jobs_and_triggers_they_touch(tmp_path):
    wf = workflow(tmp_path)
    make_outputs(tmp_path, "A", "B")
    new_ledger(wf).finished(jobs_of(wf), {})
    # A reads another file (input); B's note, used by the command, changed (command)
    wf2 = workflow(tmp_path, rows=(("A", "data/C.txt", "x"), ("B", "data/B.txt", "z")))
    assert reasons(wf2, new_ledger(wf2)) == {"up[sample=A]": "changed: input", "up[sample=B]": "changed: command"}
    assert reasons(wf2, new_ledger(wf2), triggers=("command",)) == {"up[sample=B]": "changed: command"}
    # a column no rule uses changes nothing
    (tmp_path / "samples.csv").write_text("sample,reads,note,extra\nA,data/A.txt,x,1\nB,data/B.txt,y,2\n")
    wf3 = load_workflow(str(tmp_path / "Batchfile"), {})
    assert reasons(wf3, new_ledger(wf3)) == {}


def test_explain_shows_what_changed(tmp_path):
    wf = workflow(tmp_path)
    make_outputs(tmp_path, "A", "B")
    new_ledger(wf).finished(jobs_of(wf), {})
    wf2 = workflow(tmp_path, BATCHFILE.replace("tr a-z A-Z", "tr A-Z a-z"))
    lines = new_ledger(wf2).explain(jobs_of(wf2)[0])
    assert "-tr a-z A-Z < data/A.txt > out/A.txt  # x" in lines
    assert "+tr A-Z a-z < data/A.txt > out/A.txt  # x" in lines


def test_records_are_relative_so_a_moved_workspace_keeps_them(tmp_path):
    (tmp_path / "one").mkdir()
    wf = workflow(tmp_path / "one")
    make_outputs(tmp_path / "one", "A", "B")
    a, b = jobs_of(wf)
    ledger = new_ledger(wf)
    ledger.started([a])
    ledger.finished([b], {})
    shutil.move(str(tmp_path / "one"), str(tmp_path / "two"))
    wf2 = load_workflow(str(tmp_path / "two" / "Batchfile"), {})
    assert reasons(wf2, new_ledger(wf2)) == {"up[sample=A]": "incomplete"}


def test_the_journal_skips_a_line_cut_short_and_keeps_odd_paths(tmp_path):
    j = Journal(str(tmp_path / "ledger"), str(tmp_path))
    odd = str(tmp_path / "out" / "a\tb\\c\nd.txt")
    j.append([(odd, Record(1.0, FINISHED, ("1", "2", "3", "4"), "local:1"), "r")])
    j.append([(str(tmp_path / "x.txt"), Record(2.0, FINISHED, ("1", "2", "3", "4"), ""), "r")])
    with open(j.path, "a") as fh:
        fh.write("x.txt\ts 1 2 3 4 3.000 -")   # a crash cut this line short
    latest = Journal(str(tmp_path / "ledger"), str(tmp_path)).read()
    assert latest[odd] == Record(1.0, FINISHED, ("1", "2", "3", "4"), "local:1")
    assert latest[str(tmp_path / "x.txt")].state == FINISHED


def test_compaction_keeps_the_last_record_of_each_job(tmp_path):
    j = Journal(str(tmp_path / "ledger"), str(tmp_path))
    for t in range(3):
        j.append([(str(tmp_path / f"o{i}"), Record(float(t), STARTED if t < 2 else FINISHED, ("a", "b", "c", "d")),
                   "r") for i in range(1200)])
    j.compact()
    assert sum(1 for _ in open(j.path)) == 1200
    latest = Journal(str(tmp_path / "ledger"), str(tmp_path)).read()
    assert len(latest) == 1200 and {r.state for r in latest.values()} == {FINISHED}
    j.append([(str(tmp_path / "o1"), Record(9.0, STARTED, ("a", "b", "c", "d")), "r")])
    assert Journal(str(tmp_path / "ledger"), str(tmp_path)).read()[str(tmp_path / "o1")].state == STARTED


S3_BATCHFILE = """\
samples: "samples.csv"
rule all:
    input: expand("s3://BUCKET/out/{sample}.txt")
rule up:
    output: "s3://BUCKET/out/{sample}.txt"
    shell: "echo {sample} > {output}"
"""


@pytest.fixture(params=["moto", "seaweedfs"])
def s3(request, monkeypatch):
    server = request.getfixturevalue({"moto": "moto_s3", "seaweedfs": "seaweed_s3"}[request.param])
    _s3_env(monkeypatch, server)
    server.records = {"moto": 30, "seaweedfs": 1001}[request.param]   # moto takes ~8 ms per PUT
    return server


def test_reading_n_records_on_s3_costs_one_listing_per_1000(tmp_path, s3):
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    n = s3.records
    (tmp_path / "Batchfile").write_text(S3_BATCHFILE.replace("BUCKET", bucket))
    (tmp_path / "samples.csv").write_text("sample\n" + "".join(f"s{i}\n" for i in range(n)))
    s3.put_many(bucket, [f"out/s{i}.txt" for i in range(n)])
    wf = load_workflow(str(tmp_path / "Batchfile"), {})
    jobs = jobs_of(wf)
    writer = new_ledger(wf)
    writer.started(jobs)
    writer.finished(jobs[1:], {})
    writer.close()   # deletes the superseded "started" records
    storage = Storage()
    counter = RequestCounter(storage, f"s3://{bucket}/x")
    ledger = Ledger(storage, wf.base_dir, str(tmp_path / ".s3rules"))
    p = plan(wf, storage, ledger=ledger, triggers=DEFAULT_TRIGGERS)
    assert {j.describe(): r for j, r in p.pending.items()} == {"up[sample=s0]": "incomplete"}
    assert counter.count("ListObjectsV2") == 2 * math.ceil(n / 1000)   # the outputs, then the ledger
    assert counter.count() == counter.count("ListObjectsV2")
    fs = storage.filesystem(f"s3://{bucket}/x")
    fs.invalidate_cache()
    assert len(fs.ls(f"{bucket}/.s3rules/ledger/", detail=False)) == 1
    assert len(fs.find(f"{bucket}/.s3rules/ledger/")) == n


def test_the_index_sees_lines_appended_after_it_was_built(tmp_path):
    """A plan first judges each rule by the journal's index; what was appended since it was built
    (a job started again) must still make that job incomplete."""
    wf = workflow(tmp_path, BATCHFILE.replace("  # {note}", ""))
    make_outputs(tmp_path, "A", "B")
    a, b = jobs_of(wf)
    new_ledger(wf).finished([a, b], {})
    assert reasons(wf, new_ledger(wf)) == {}                    # builds the index: the rule is clean
    assert (tmp_path / ".s3rules/ledger/index").exists()
    new_ledger(wf).started([b])
    assert reasons(wf, new_ledger(wf)) == {"up[sample=B]": "incomplete"}


def test_records_of_a_rule_the_workflow_no_longer_has_are_still_read(tmp_path):
    """Renaming a rule keeps its jobs' records (they are found by output), so an interrupted job
    stays incomplete although the index knows only the old name."""
    wf = workflow(tmp_path, BATCHFILE.replace("  # {note}", "").replace("rule up:", "rule old:"))
    make_outputs(tmp_path, "A", "B")
    a, _ = [j for j in plan(wf, Storage(), forceall=True).jobs if j.rule.name == "old"]
    new_ledger(wf).started([a])
    wf2 = workflow(tmp_path, BATCHFILE.replace("  # {note}", ""))
    assert reasons(wf2, new_ledger(wf2)) == {"up[sample=A]": "incomplete"}


PARAMS = """\
samples: "samples.csv"
rule all:
    input: expand("out/{sample}.txt")
rule up:
    output: "out/{sample}.txt"
    params:
        word: "say {word}"
    memory: "{mem_mb}"
    shell: "echo {params.word} > {output}"
"""


def _dry_run(tmp_path) -> dict[str, str]:
    """{job: reason} as ``s3rules run -n --json`` tells it."""
    import json

    from workflows import s3rules
    r = s3rules("run", "-n", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return {f"{j['rule']}[{','.join(f'{k}={v}' for k, v in j['wildcards'].items())}]": j["reason"]
            for j in json.loads(r.stdout)["jobs"]}


def _sheet(tmp_path, *rows: str) -> None:
    (tmp_path / "samples.csv").write_text("sample,word,mem_mb\n" + "".join(f"{r}\n" for r in rows))


def test_a_params_edit_reruns_the_jobs_it_touches_as_changed_params(tmp_path):
    from workflows import s3rules
    (tmp_path / "Batchfile").write_text(PARAMS)
    _sheet(tmp_path, "A,hi,100", "B,yo,200")
    assert s3rules("run", cwd=tmp_path).returncode == 0
    assert _dry_run(tmp_path) == {}
    _sheet(tmp_path, "A,hi,100", "B,ya,200")   # a value the params use (no command reads it)
    assert _dry_run(tmp_path) == {"up[sample=B]": "changed: params"}
    r = s3rules("run", "-n", "--explain", cwd=tmp_path)
    assert "params: {'word': 'say yo'} -> {'word': 'say ya'}" in r.stdout
    assert s3rules("run", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out/B.txt").read_text() == "say ya\n" and _dry_run(tmp_path) == {}
    (tmp_path / "Batchfile").write_text(PARAMS.replace("say {word}", "tell {word}"))   # the template
    assert _dry_run(tmp_path) == {"up[sample=A]": "changed: params", "up[sample=B]": "changed: params"}


def test_a_per_job_memory_change_is_changed_resources(tmp_path):
    from workflows import s3rules
    (tmp_path / "Batchfile").write_text(PARAMS)
    _sheet(tmp_path, "A,hi,100", "B,yo,200")
    assert s3rules("run", cwd=tmp_path).returncode == 0
    _sheet(tmp_path, "A,hi,300", "B,yo,200")
    assert _dry_run(tmp_path) == {"up[sample=A]": "changed: resources"}
    r = s3rules("run", "-n", "--explain", cwd=tmp_path)
    assert "'memory': 100, 'gpus': 0} -> {'vcpus': '1', 'memory': 300" in r.stdout
    # the same memory written in the rule instead of read from the row changes nothing
    (tmp_path / "Batchfile").write_text(PARAMS.replace('"{mem_mb}"', "200"))
    assert _dry_run(tmp_path) == {"up[sample=A]": "changed: resources"}


def test_per_job_values_leave_no_per_rule_shortcut(tmp_path):
    """``same`` (every job's hashes alike) holds only when nothing is read per job, and a job's
    resources hash is that of its own settings."""
    from s3rules.ledger.identity import Identity, _resources_hash
    (tmp_path / "Batchfile").write_text(PARAMS)
    _sheet(tmp_path, "A,hi,100", "B,yo,200")
    wf = load_workflow(str(tmp_path / "Batchfile"), {})
    identity = Identity(wf.base_dir)
    assert identity.same(wf.rules["up"]) is None
    a, b = [j for j in plan(wf, Storage()).jobs if j.rule.name == "up"]
    assert identity.hashes(a)[3] == _resources_hash(a.settings) != identity.hashes(b)[3]
    assert identity.hashes(a)[1] != identity.hashes(b)[1]
    fixed = PARAMS.replace('"{mem_mb}"', "200").replace("{word}", "{sample}")
    (tmp_path / "Batchfile").write_text(fixed)
    wf = load_workflow(str(tmp_path / "Batchfile"), {})
    same = Identity(wf.base_dir).same(wf.rules["up"])
    assert same is not None
    assert all(Identity(wf.base_dir).hashes(j) == same for j in plan(wf, Storage()).jobs if j.rule.name == "up")
