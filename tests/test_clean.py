"""``s3rules clean``: list the outputs of the jobs under the targets, ask, delete; never a source."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from s3rules.cli import main
from workflows import DATA, PIPELINE, SHEET, s3rules, write

OUTPUTS = sorted([f"out/trim/{s}.txt" for s in "ABC"] + [f"out/counts/{s}.{e}" for s in "ABC" for e in ("txt", "log")]
                 + ["out/summary.tsv"])


class Terminal(io.StringIO):
    """stdin as if a person sat at a terminal and typed ``text``."""

    def isatty(self) -> bool:
        return True


def files(root: Path, under: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / under).rglob("*") if p.is_file())


@pytest.fixture
def done(tmp_path) -> Path:
    """The pipeline, run to the end: every output and every local log exists."""
    write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert files(tmp_path, "out") == OUTPUTS
    return tmp_path


def test_dry_run_lists_every_output_under_the_default_target_and_deletes_nothing(done):
    r = s3rules("clean", "-n", cwd=done)
    assert r.returncode == 0, r.stderr
    assert sorted(line.strip() for line in r.stdout.splitlines()) == OUTPUTS
    assert "would delete 10 outputs" in r.stderr
    assert files(done, "out") == OUTPUTS


def test_without_a_terminal_clean_refuses_unless_told_yes(done):
    r = s3rules("clean", cwd=done)   # stdin is /dev/null
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "pass -y" in r.stderr and r.stderr.startswith("s3rules: error: ")
    assert files(done, "out") == OUTPUTS
    r = s3rules("clean", "-y", cwd=done)
    assert r.returncode == 0, r.stderr
    assert "deleted 10 outputs" in r.stderr
    assert files(done, "out") == []
    assert files(done, "data") == ["data/A.txt", "data/B.txt", "data/C.txt"]   # sources stay
    assert (done / "samples.csv").exists() and (done / "Batchfile").exists()
    again = s3rules("run", "-n", "--json", cwd=done)
    assert '"pending": 7' in again.stdout
    nothing = s3rules("clean", "-y", cwd=done)
    assert nothing.returncode == 0 and "nothing to delete" in nothing.stderr


def test_on_a_terminal_clean_asks_and_no_keeps_everything(done, monkeypatch, capsys):
    monkeypatch.chdir(done)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert main(["clean", "trim"]) == 1
    out, err = capsys.readouterr()
    assert "Delete these 3 outputs? [y/N]" in out and "nothing deleted" in err
    assert files(done, "out") == OUTPUTS
    monkeypatch.setattr(sys, "stdin", Terminal("\n"))   # the default is no
    assert main(["clean", "trim"]) == 1
    assert files(done, "out") == OUTPUTS
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert main(["clean", "trim"]) == 0
    assert files(done, "out/trim") == []
    assert files(done, "out") == [p for p in OUTPUTS if "/trim/" not in p]


def test_clean_takes_the_jobs_under_each_target_and_rule(done):
    r = s3rules("clean", "-y", "out/counts/B.txt", cwd=done)   # count[B] and what it needs: trim[B]
    assert r.returncode == 0, r.stderr
    assert files(done, "out") == [p for p in OUTPUTS if "/B." not in p]
    r = s3rules("clean", "-y", "summary", cwd=done)
    assert r.returncode == 0, r.stderr
    assert files(done, "out") == []


def test_logs_go_only_with_the_logs_option(done):
    logs = files(done, ".s3rules/logs")
    assert ".s3rules/logs/trim/sample=A.log" in logs and len(logs) == 7
    assert s3rules("clean", "-y", "trim", cwd=done).returncode == 0
    assert files(done, ".s3rules/logs") == logs
    dry = s3rules("clean", "-n", "--logs", "count", cwd=done)
    assert ".s3rules/logs/count/sample=B.log" in dry.stdout and "out/counts/B.log" in dry.stdout
    # the jobs under count are count's and trim's: the trim outputs are gone, their logs not yet
    assert "would delete 6 outputs and 6 logs" in dry.stderr
    assert files(done, ".s3rules/logs") == logs
    r = s3rules("clean", "-y", "--logs", "count", cwd=done)
    assert r.returncode == 0, r.stderr
    assert files(done, ".s3rules/logs") == [".s3rules/logs/summary/job.log"]
    assert files(done, "out") == ["out/summary.tsv"]


def test_a_source_file_is_never_deleted(done):
    r = s3rules("clean", "-y", "data/A.txt", cwd=done)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no rule makes" in r.stderr and "never deleted" in r.stderr
    assert (done / "data/A.txt").read_text() == "a\nb\n"
    assert files(done, "out") == OUTPUTS


def test_paths_clean_prints_paste_back_from_another_directory(done):
    elsewhere = done / "elsewhere"
    elsewhere.mkdir()
    listed = s3rules("clean", "-n", "-s", str(done / "Batchfile"), "count", cwd=elsewhere)
    paths = [line.strip() for line in listed.stdout.splitlines()]
    assert "../out/counts/A.txt" in paths and len(paths) == 9
    r = s3rules("clean", "-y", "-s", str(done / "Batchfile"), "../out/counts/A.txt", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert files(done, "out") == [p for p in OUTPUTS if p not in ("out/counts/A.txt", "out/counts/A.log",
                                                                  "out/trim/A.txt")]


def test_clean_deletes_urls_through_storage(tmp_path, monkeypatch, capsys):
    import fsspec
    fs = fsspec.filesystem("memory")
    for path, data in (("in/A.txt", b"a"), ("in/B.txt", b"b"), ("out/A.txt", b"A"), ("out/B.txt", b"B"),
                       ("other/keep.txt", b"k")):
        fs.pipe(f"memory://clean-test/{path}", data)
    write(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("memory://clean-test/out/{sample}.txt")
        rule copy:
            input: "memory://clean-test/in/{sample}.txt"
            output: "memory://clean-test/out/{sample}.txt"
            shell: "true"
        ''', "sample\nA\nB\nC\n")
    monkeypatch.chdir(tmp_path)
    assert main(["clean", "-n"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["memory://clean-test/out/B.txt", "memory://clean-test/out/A.txt"]
    assert fs.exists("memory://clean-test/out/A.txt")
    assert main(["clean", "-y", "memory://clean-test/out/A.txt"]) == 0
    assert not fs.exists("memory://clean-test/out/A.txt") and fs.exists("memory://clean-test/out/B.txt")
    assert main(["clean", "-y"]) == 0
    assert not fs.exists("memory://clean-test/out/B.txt")
    assert sorted(fs.find("memory://clean-test")) == ["/clean-test/in/A.txt", "/clean-test/in/B.txt",
                                                      "/clean-test/other/keep.txt"]


KINDS = """
rule all:
    input: "out/b.txt", "out/x"
rule a:
    output: temp("tmp/a.txt"), temp(directory("tmp/d"))
    shell: "echo a > {output[0]}; mkdir -p {output[1]}/sub; echo d > {output[1]}/sub/f"
rule b:
    input: "tmp/a.txt", "tmp/d"
    output: "out/b.txt"
    shell: "cat {input[0]} > {output}"
rule x:
    output: directory("out/x")
    shell: "mkdir -p {output}; echo x > {output}/f"
"""


def kept_temp(root: Path) -> None:
    """What a --keep-temp run leaves: the temp outputs, their reader done."""
    (root / "tmp/d/sub").mkdir(parents=True, exist_ok=True)
    (root / "tmp/a.txt").write_text("a\n")
    (root / "tmp/d/sub/f").write_text("d\n")


def test_clean_deletes_directory_outputs_whole_and_temp_outputs_whose_readers_are_done(tmp_path):
    write(tmp_path, KINDS)
    assert s3rules("run", "-q", cwd=tmp_path).returncode == 0
    kept_temp(tmp_path)
    r = s3rules("clean", "-n", "out/x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(line.strip() for line in r.stdout.splitlines()) == ["out/x", "tmp/a.txt", "tmp/d"]
    assert "would delete 1 output, 2 temp outputs" in r.stderr
    r = s3rules("clean", "-y", "out/x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out/x").exists() and not (tmp_path / "tmp/a.txt").exists()
    assert not (tmp_path / "tmp/d").exists() and (tmp_path / "out/b.txt").exists()
    again = s3rules("run", "-n", "--json", cwd=tmp_path)
    assert '"pending": 1' in again.stdout and '"x"' in again.stdout   # the temp outputs were spent


def test_a_temp_output_whose_reader_is_not_done_stays(tmp_path):
    write(tmp_path, KINDS)
    assert s3rules("run", "-q", cwd=tmp_path).returncode == 0
    kept_temp(tmp_path)
    (tmp_path / "out/b.txt").unlink()   # its reader must run again: it needs them
    r = s3rules("clean", "-y", "x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "deleted 1 output" in r.stderr and "temp" not in r.stderr
    assert (tmp_path / "tmp/a.txt").exists() and (tmp_path / "tmp/d/sub/f").exists()
    assert not (tmp_path / "out/x").exists()
