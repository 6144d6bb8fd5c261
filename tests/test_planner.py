"""What is pending and why: reasons, forcing, expand, dependency inference and its errors."""
import os
import time

import pytest

from s3rules.errors import PlanError
from s3rules.planner import plan
from s3rules.storage import Storage
from workflows import DATA, PIPELINE, SHEET, load, pending


def touch(root, *paths, mtime=None):
    for p in paths:
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
        if mtime is not None:
            os.utime(f, (mtime, mtime))


def test_everything_missing(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    assert pending(wf) == {
        "trim[sample=A]": "missing", "count[sample=A]": "missing",
        "trim[sample=B]": "missing", "count[sample=B]": "missing",
        "trim[sample=C]": "missing", "count[sample=C]": "missing",
        "summary": "missing",
    }


def test_done_incomplete_and_upstream(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    touch(tmp_path, "out/trim/A.txt", "out/counts/A.txt", "out/counts/A.log",   # A done
          "out/counts/B.txt", "out/counts/B.log",                              # B: trim missing
          "out/trim/C.txt", "out/counts/C.txt",                                # C: .log missing
          "out/summary.tsv")
    assert pending(wf) == {
        "trim[sample=B]": "missing", "count[sample=B]": "upstream",
        "count[sample=C]": "incomplete", "summary": "upstream",
    }


def test_all_present_is_nothing_to_do(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    for s in "ABC":
        touch(tmp_path, f"out/trim/{s}.txt", f"out/counts/{s}.txt", f"out/counts/{s}.log")
    touch(tmp_path, "out/summary.tsv")
    assert pending(wf) == {}


def _all_done(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    t = time.time() - 100
    for s in "ABC":
        os.utime(tmp_path / f"data/{s}.txt", (t - 10, t - 10))
        touch(tmp_path, f"out/trim/{s}.txt", mtime=t)
        touch(tmp_path, f"out/counts/{s}.txt", f"out/counts/{s}.log", mtime=t + 10)
    touch(tmp_path, "out/summary.tsv", mtime=t + 20)
    return wf


def test_force_target_reruns_it_and_downstream(tmp_path):
    wf = _all_done(tmp_path)
    assert pending(wf, force=["out/trim/B.txt"]) == {
        "trim[sample=B]": "forced", "count[sample=B]": "upstream", "summary": "upstream"}


def test_forcerun_rule_and_forceall(tmp_path):
    wf = _all_done(tmp_path)
    assert pending(wf, forcerun=["count"]) == {
        "count[sample=A]": "forced", "count[sample=B]": "forced", "count[sample=C]": "forced",
        "summary": "upstream"}
    assert set(pending(wf, forceall=True).values()) == {"forced"}
    assert len(pending(wf, forceall=True)) == 7
    with pytest.raises(PlanError, match="--forcerun cuont: no such rule; did you mean 'count'"):
        pending(wf, forcerun=["cuont"])


def test_stale_only_with_rerun_stale(tmp_path):
    wf = _all_done(tmp_path)
    touch(tmp_path, "data/A.txt")  # a source newer than its output
    assert pending(wf) == {}
    assert pending(wf, rerun_stale=True) == {
        "trim[sample=A]": "stale", "count[sample=A]": "upstream", "summary": "upstream"}


def test_targets_by_path_and_by_rule(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    assert pending(wf, ["out/trim/B.txt"]) == {"trim[sample=B]": "missing"}
    assert pending(wf, [str(tmp_path / "out/counts/C.log")]) == {
        "trim[sample=C]": "missing", "count[sample=C]": "missing"}
    assert set(pending(wf, ["trim"])) == {"trim[sample=A]", "trim[sample=B]", "trim[sample=C]"}
    with pytest.raises(PlanError, match="'trm' is neither a rule nor an output of any rule; did you mean rule 'trim'"):
        pending(wf, ["trm"])
    with pytest.raises(PlanError, match="out/nothing.txt does not exist and no rule makes it"):
        pending(wf, ["out/nothing.txt"])


def test_until_stops_at_the_named_rule(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    assert set(pending(wf, until=["trim"])) == {"trim[sample=A]", "trim[sample=B]", "trim[sample=C]"}
    assert set(pending(wf, until=["out/counts/A.txt"])) == {"trim[sample=A]", "count[sample=A]"}


def test_expand_per_group_and_sheet_columns(tmp_path):
    wf = load(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("out/groups/{group}.txt")
        rule prep:
            input: "{reads}"
            output: "out/prep/{sample}.txt"
            shell: "cp {input} {output}"
        rule group:
            input: expand("out/prep/{sample}.txt")
            output: "out/groups/{group}.txt"
            shell: "cat {input} > {output}"
        ''', f"sample,group,reads\nA,g1,raw/a.fq\nB,g1,raw/b.fq\nC,g2,{tmp_path}/elsewhere/c.fq\n",
        {"raw/a.fq": "", "raw/b.fq": "", "elsewhere/c.fq": ""})
    p = plan(wf, Storage())
    jobs = {j.describe(): j for j in p.jobs}
    assert jobs["group[group=g1]"].inputs == (str(tmp_path / "out/prep/A.txt"), str(tmp_path / "out/prep/B.txt"))
    assert jobs["group[group=g2]"].inputs == (str(tmp_path / "out/prep/C.txt"),)
    assert jobs["prep[sample=A]"].inputs == (str(tmp_path / "raw/a.fq"),)
    assert jobs["prep[sample=C]"].inputs == (str(tmp_path / "elsewhere/c.fq"),)
    assert [d.describe() for d in jobs["group[group=g1]"].deps] == ["prep[sample=A]", "prep[sample=B]"]
    # a source that does not exist while its job must run: a clear error naming the job
    (tmp_path / "elsewhere/c.fq").unlink()
    with pytest.raises(PlanError, match=r"missing input .*elsewhere/c.fq: job prep\[sample=C\] needs it"):
        plan(wf, Storage(), ["out/groups/g2.txt"])
    assert pending(wf, ["out/groups/g1.txt"]) == {
        "prep[sample=A]": "missing", "prep[sample=B]": "missing", "group[group=g1]": "missing"}


def test_missing_source_is_fine_when_its_job_is_done(tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, {"data/A.txt": "x"})
    for s in "ABC":
        touch(tmp_path, f"out/trim/{s}.txt", f"out/counts/{s}.txt", f"out/counts/{s}.log")
    assert pending(wf) == {"summary": "missing"}


def test_ambiguous_producers_are_named(tmp_path):
    wf = load(tmp_path, '''
        rule all:
            input: "out/x.txt"
        rule one:
            output: "out/{name}.txt"
            shell: "touch {output}"
        rule two:
            output: "out/x.{ext}"
            shell: "touch {output}"
        ''')
    with pytest.raises(PlanError, match=r"out/x.txt can be made by several rules \('one', 'two'\)"):
        pending(wf)


def test_cycles_are_named(tmp_path):
    wf = load(tmp_path, '''
        rule all:
            input: "a.txt"
        rule a:
            input: "b.txt"
            output: "a.txt"
            shell: "cp {input} {output}"
        rule b:
            input: "a.txt"
            output: "b.txt"
            shell: "cp {input} {output}"
        ''')
    with pytest.raises(PlanError, match=r"the rules form a cycle: a -> b -> a"):
        pending(wf)


def test_wildcards_never_cross_a_segment(tmp_path):
    wf = load(tmp_path, '''
        rule a:
            output: "out/{name}.txt"
            shell: "touch {output}"
        ''')
    assert pending(wf, ["out/x.txt"]) == {"a[name=x]": "missing"}
    with pytest.raises(PlanError, match="out/sub/x.txt does not exist and no rule makes it"):
        pending(wf, ["out/sub/x.txt"])  # '{name}' cannot be 'sub/x'
    with pytest.raises(PlanError, match="does not exist and no rule makes it"):
        pending(wf, ["out/...txt"])  # would need name='..', never a wildcard value


def test_row_lookup_errors(tmp_path):
    wf = load(tmp_path, '''
        samples: "samples.csv"
        rule a:
            output: "out/{group}/{sample}.txt"
            shell: "echo {reads} > {output}"
        ''', "sample,group,reads\nA,g1,r\nB,g2,r\n")
    with pytest.raises(PlanError, match="rule 'a' makes paths like it, but 'Z' is not a value of the column sample"):
        pending(wf, ["out/g1/Z.txt"])
    with pytest.raises(PlanError, match="wildcard group='g2' disagrees with the sample sheet"):
        pending(wf, ["out/g2/A.txt"])
    assert pending(wf, ["out/g1/A.txt"]) == {"a[group=g1, sample=A]": "missing"}


def test_rule_target_needs_sheet_wildcards(tmp_path):
    wf = load(tmp_path, 'rule a:\n    output: "out/{name}.txt"\n    shell: "touch {output}"\n')
    with pytest.raises(PlanError, match=r"wildcards \(\{name\}\) that are neither sample-sheet columns nor list variables"):
        pending(wf, ["a"])


def test_memory_filesystem_targets(tmp_path):
    import fsspec
    fs = fsspec.filesystem("memory")
    fs.pipe("memory://plan-test/in/A.txt", b"a")
    fs.pipe("memory://plan-test/out/A.txt", b"a")
    wf = load(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("memory://plan-test/out/{sample}.txt")
        rule copy:
            input: "memory://plan-test/in/{sample}.txt"
            output: "memory://plan-test/out/{sample}.txt"
            shell: "true"
        ''', "sample\nA\nB\n")
    fs.pipe("memory://plan-test/in/B.txt", b"b")
    assert pending(wf) == {"copy[sample=B]": "missing"}


def test_a_rule_that_asks_for_ever_longer_paths_is_an_error_not_a_runaway(tmp_path):
    wf = load(tmp_path, 'rule all:\n    input: "out/S.txt"\nrule r:\n    input: "out/{x}.a.txt"\n'
                        '    output: "out/{x}.txt"\n    shell: "touch {output}"\n')
    with pytest.raises(PlanError, match=r"rule 'r' asks for ever longer paths \(.*out/S\.a\.a\.a"):
        pending(wf)
