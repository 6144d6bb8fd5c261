"""The command line's words, through the installed console script: which positional is the
Batchfile (-s, ./Batchfile, or a first word named like one), target paths relative to the
current directory that round-trip with what s3rules prints, and -p/--print-commands."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from s3rules.cli import main
from workflows import DATA, PIPELINE, SHEET, s3rules, write

OTHER = """
rule other:
    output: "other/done.txt"
    shell: "echo other > {output}"
"""

NO_AWS_CALLS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}   # nothing listens: any AWS call would fail


def plan_doc(cwd: Path, *args: str) -> dict:
    r = s3rules("run", "-n", "--json", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def plan_in_process(capsys, *args: str) -> dict:
    """``plan_doc`` through ``main()`` in this process, from its current directory (faster)."""
    capsys.readouterr()
    assert main(["run", "-n", "--json", *args]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def reasons(doc: dict) -> dict[str, str]:
    out = {}
    for job in doc["jobs"]:
        wc = ", ".join(f"{k}={v}" for k, v in job["wildcards"].items())
        out[f"{job['rule']}[{wc}]" if wc else job["rule"]] = job["reason"]
    return out


def assert_one_paragraph(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr and "\n\n" not in stderr.strip()
    assert stderr.startswith("s3rules: error: ")
    for needle in needles:
        assert needle in stderr, stderr


# == which word is the Batchfile ====================================================================

def test_targets_alone_use_the_batchfile_in_the_current_directory(tmp_path):
    write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", "trim", "-q", cwd=tmp_path)   # as `make target` does
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out/trim").iterdir()) == ["A.txt", "B.txt", "C.txt"]
    assert not (tmp_path / "out/counts").exists()
    assert reasons(plan_doc(tmp_path, "out/counts/B.txt")) == {"count[sample=B]": "missing"}


def test_a_first_word_named_batchfile_is_still_the_batchfile(tmp_path):
    write(tmp_path, PIPELINE, SHEET, DATA)
    write(tmp_path, OTHER, name="other.Batchfile")
    (tmp_path / "lower.batchfile").write_text(OTHER)
    assert reasons(plan_doc(tmp_path, "Batchfile", "trim")) == {f"trim[sample={s}]": "missing" for s in "ABC"}
    assert reasons(plan_doc(tmp_path, "other.Batchfile")) == {"other": "missing"}
    assert reasons(plan_doc(tmp_path, "lower.batchfile", "other/done.txt")) == {"other": "missing"}
    # from elsewhere, a Batchfile given by path, as before
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert reasons(plan_doc(elsewhere, str(tmp_path / "Batchfile"), "summary")) == {
        **{f"trim[sample={s}]": "missing" for s in "ABC"}, **{f"count[sample={s}]": "missing" for s in "ABC"},
        "summary": "missing"}


def test_any_existing_file_is_the_batchfile_when_there_is_no_dot_batchfile(tmp_path):
    wf = write(tmp_path / "wf", OTHER, name="rules.txt")
    assert reasons(plan_doc(wf.parent, "rules.txt")) == {"other": "missing"}
    # with a ./Batchfile beside it, such a name is a target: -s names the other file
    write(wf.parent, PIPELINE, SHEET, DATA)
    assert reasons(plan_doc(wf.parent, "-s", "rules.txt")) == {"other": "missing"}
    assert reasons(plan_doc(wf.parent, "--batchfile", "rules.txt", "other")) == {"other": "missing"}
    r = s3rules("run", "-n", "rules.txt", cwd=wf.parent)   # read as a target of ./Batchfile
    assert r.returncode == 0 and "other" not in r.stdout and "trim" not in r.stdout


def test_with_s_every_positional_is_a_target(tmp_path):
    bf = write(tmp_path / "wf", PIPELINE, SHEET, DATA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere, OTHER)   # a ./Batchfile that -s overrides
    assert reasons(plan_doc(elsewhere, "-s", str(bf), "count")) == {
        **{f"trim[sample={s}]": "missing" for s in "ABC"}, **{f"count[sample={s}]": "missing" for s in "ABC"}}
    assert reasons(plan_doc(elsewhere, "trim", "-s", str(bf))) == {f"trim[sample={s}]": "missing" for s in "ABC"}
    missing = s3rules("run", "-s", str(tmp_path / "nope"), cwd=elsewhere)
    assert missing.returncode == 2 and "no such Batchfile" in missing.stderr


@pytest.mark.parametrize("words", [(), ("trim",), ("out/trim/A.txt",)])
def test_no_batchfile_anywhere_is_a_one_paragraph_error(tmp_path, words):
    r = s3rules("run", *words, cwd=tmp_path)
    assert r.returncode == 2
    assert_one_paragraph(r.stderr, "no such Batchfile", "no ./Batchfile", str(tmp_path), "-s FILE")
    if words:
        assert repr(words[0]) in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["status", "logs", "cancel", "clean"])
def test_the_other_commands_say_the_same_without_a_batchfile(tmp_path, command):
    r = s3rules(command, *(["out/x.txt"] if command == "logs" else []), cwd=tmp_path)
    assert r.returncode == 2
    assert_one_paragraph(r.stderr, "no such Batchfile", "-s FILE")


def test_status_logs_and_cancel_find_the_batchfile_the_same_way(tmp_path):
    bf = write(tmp_path / "wf", PIPELINE, SHEET, DATA)
    wf = bf.parent
    assert s3rules("run", "trim", "-q", cwd=wf).returncode == 0
    for cwd, args in ((wf, ["trim"]), (tmp_path, ["-s", str(bf), "trim"]), (tmp_path, [str(bf), "trim"])):
        status = s3rules("status", *args, cwd=cwd, env=NO_AWS_CALLS)
        assert status.returncode == 0, status.stderr
        rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
        assert set(rows) == {"trim", "total"} and rows["trim"][1] == "3"   # 3 done
    cancel = s3rules("cancel", "-s", str(bf), cwd=tmp_path, env=NO_AWS_CALLS)
    assert cancel.returncode == 0 and "no job of this workflow is in flight" in cancel.stderr
    cancel = s3rules("cancel", cwd=wf, env=NO_AWS_CALLS)
    assert cancel.returncode == 0 and "no job of this workflow is in flight" in cancel.stderr
    # logs: the Batchfile is found (./Batchfile, -s, or first word), then its one TARGET checked
    for cwd, args in ((wf, []), (tmp_path, ["-s", str(bf)]), (tmp_path, [str(bf)])):
        r = s3rules("logs", *args, "out/nothing.txt", cwd=cwd, env=NO_AWS_CALLS)
        assert r.returncode == 2
        assert_one_paragraph(r.stderr, "no rule makes", "nothing.txt")
    two = s3rules("logs", "out/trim/A.txt", "out/trim/B.txt", cwd=wf, env=NO_AWS_CALLS)
    assert two.returncode == 2
    assert_one_paragraph(two.stderr, "logs takes one TARGET")


# == one path convention ============================================================================

def printed_jobs(stdout: str) -> dict[str, list[str]]:
    """The pending jobs of a `run -n` table: {job: [output paths as printed]}."""
    jobs = {}
    for line in stdout.splitlines():
        words = line.split()
        if line.startswith("  ") and len(words) >= 3 and "$" not in words[0]:
            jobs[words[1]] = words[2:]
    return jobs


@pytest.mark.parametrize("where", ["sibling", "deep/down/below", "wf/out", "wf/out/trim"])
def test_paths_printed_by_a_dry_run_paste_back_from_any_directory(tmp_path, where, monkeypatch, capsys):
    bf = write(tmp_path / "wf", PIPELINE, SHEET, DATA)
    cwd = tmp_path / where
    cwd.mkdir(parents=True, exist_ok=True)
    table = s3rules("run", "-n", "-s", str(bf), cwd=cwd)
    assert table.returncode == 0, table.stderr
    printed = printed_jobs(table.stdout)
    assert len(printed) == 7 and all(len(paths) in (1, 2) for paths in printed.values())
    if where == "sibling":
        assert printed["trim[sample=A]"] == ["../wf/out/trim/A.txt"]
    if where.startswith("deep"):   # relative would climb three levels: printed absolute
        assert printed["trim[sample=A]"] == [str(tmp_path / "wf/out/trim/A.txt")]
    if where == "wf/out/trim":
        assert printed["trim[sample=A]"] == ["A.txt"]
    assert s3rules("run", "-s", str(bf), "-q", cwd=cwd).returncode == 0   # everything done
    monkeypatch.chdir(cwd)
    for job, paths in printed.items():
        rule = job.split("[")[0]
        for path in paths:
            # as a target: the only job of its rule under it is this one
            assert reasons(plan_in_process(capsys, "-s", str(bf), path, "-R", rule)) == {job: "forced"}, path
            # as -f: this job, and what depends on it
            forced = reasons(plan_in_process(capsys, "-s", str(bf), "-f", path))
            assert forced[job] == "forced" and set(forced.values()) <= {"forced", "upstream"}, path
            assert [j for j, r in forced.items() if r == "forced"] == [job], path


def test_a_path_is_read_from_the_current_directory_before_the_batchfiles(tmp_path):
    bf = write(tmp_path, '''
        samples: "samples.csv"
        rule top:
            output: "out/{sample}.txt"
            shell: "touch {output}"
        rule nested:
            output: "sub/out/{sample}.txt"
            shell: "touch {output}"
        ''', SHEET)
    sub = tmp_path / "sub"
    sub.mkdir()
    assert reasons(plan_doc(sub, "-s", str(bf), "out/A.txt")) == {"nested[sample=A]": "missing"}
    assert reasons(plan_doc(tmp_path, "out/A.txt")) == {"top[sample=A]": "missing"}
    # no rule makes sub/sub/out/A.txt: the Batchfile-relative meaning is the fallback
    assert reasons(plan_doc(sub, "-s", str(bf), "sub/out/A.txt")) == {"nested[sample=A]": "missing"}
    # a source target relative to the current directory
    (sub / "here.txt").write_text("x")
    r = s3rules("run", "-n", "-s", str(bf), "here.txt", cwd=sub)
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stderr
    r = s3rules("run", "-n", "-s", str(bf), "gone.txt", cwd=sub)
    assert r.returncode == 2 and "gone.txt does not exist and no rule makes it" in r.stderr


# == -p / --print-commands ==========================================================================

def test_print_commands_under_each_pending_job_in_a_dry_run(tmp_path):
    bf = write(tmp_path / "wf", PIPELINE, SHEET, DATA)
    plain = s3rules("run", "-n", str(bf), cwd=tmp_path)
    assert "$ " not in plain.stdout
    r = s3rules("run", "-n", "-p", str(bf), "out/counts/A.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    trim = lines.index("  missing           trim[sample=A]  wf/out/trim/A.txt")
    assert lines[trim + 1] == "      $ tr a-z A-Z < data/A.txt > out/trim/A.txt"   # run in the Batchfile's dir
    count = next(i for i, line in enumerate(lines) if "count[sample=A]" in line)
    assert lines[count + 1:count + 3] == ["      $ wc -l < out/trim/A.txt > out/counts/A.txt",
                                          "        echo counted A > out/counts/A.log"]
    quiet = s3rules("run", "-n", "-p", "-q", str(bf), "trim", cwd=tmp_path)   # -p lists jobs even with -q
    assert quiet.stdout.count("$ tr a-z A-Z") == 3
    doc = plan_doc(tmp_path, "-p", str(bf), "out/trim/B.txt")
    assert [j["command"] for j in doc["jobs"]] == ["tr a-z A-Z < data/B.txt > out/trim/B.txt"]
    assert "command" not in plan_doc(tmp_path, str(bf), "out/trim/B.txt")["jobs"][0]
    batch = plan_doc(tmp_path, "-p", "--executor", "batch", str(bf), "out/trim/B.txt")
    wf = tmp_path / "wf"
    assert batch["jobs"][0]["command"] == f"tr a-z A-Z < {wf}/data/B.txt > {wf}/out/trim/B.txt"


def test_print_commands_before_a_real_run(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", "-p", str(bf), "trim", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["s3rules: 3 jobs to run:"] + [
        line for s in "ABC" for line in (f"  trim[sample={s}]", f"    $ tr a-z A-Z < data/{s}.txt > out/trim/{s}.txt")]
    assert (tmp_path / "out/trim/C.txt").read_text() == "D\nE\nF\n"
    again = s3rules("run", "-p", str(bf), "trim", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "" and "nothing to do" in again.stderr
