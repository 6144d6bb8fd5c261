"""What a run looks like: tqdm bars on a terminal, plain lines otherwise, nothing with -q."""
import io
import re

import pytest
import tqdm.std

from s3rules.executors.base import Outcome
from s3rules.executors.local import LocalExecutor
from s3rules.planner import plan
from s3rules.progress import BarReporter, LineReporter, QuietReporter, make_reporter
from s3rules.runner import Runner
from s3rules.storage import Storage
from workflows import DATA, PIPELINE, SHEET, load, s3rules, write


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_with(reporter, tmp_path):
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    p = plan(wf, Storage())
    executor = LocalExecutor(wf.base_dir, str(tmp_path / ".s3rules/logs"), 2)
    return Runner(p, executor, Storage(), reporter).run()


def planned(tmp_path):
    """The pipeline's plan (3 trim, 3 count, 1 summary) and its jobs by rule, to drive a reporter by hand."""
    p = plan(load(tmp_path, PIPELINE, SHEET, DATA), Storage())
    by_rule = {}
    for job in p.pending:
        by_rule.setdefault(job.rule.name, []).append(job)
    return p, by_rule


def terminal_lines(text: str) -> list[str]:
    """What a terminal shows after ``text``: tqdm moves with \\r, \\n and ESC[A (cursor up)."""
    lines, row, col = [""], 0, 0
    for tok in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", text):
        if tok == "\r":
            col = 0
        elif tok == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif tok.startswith("\x1b"):
            row -= int(tok[2:-1] or 1) if tok.endswith("A") else 0
        else:
            lines[row] = lines[row].ljust(col)[:col] + tok + lines[row][col + len(tok):]
            col += len(tok)
    return [line.rstrip() for line in lines if line.strip()]


@pytest.fixture
def clock(monkeypatch):
    """tqdm's clock, set by the test (and no tqdm monitor thread reading it behind our back)."""
    now = [100.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    return now


def test_reporter_choice():
    assert isinstance(make_reporter(stream=Terminal()), BarReporter)
    assert isinstance(make_reporter(stream=io.StringIO()), LineReporter)
    assert type(make_reporter(quiet=True, stream=Terminal())) is QuietReporter


def test_bars_per_rule_and_total(tmp_path):
    screen = Terminal()
    result = run_with(BarReporter(screen), tmp_path)
    assert result.ok
    text = screen.getvalue()
    last = {}   # each bar's last drawing: tqdm redraws a bar after \r, each bar starts with its name
    for segment in re.split(r"[\r\n]", text):
        segment = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", segment).strip()   # cursor moves between bars
        name = segment.split(":", 1)[0].strip()
        if name in ("total", "trim", "count", "summary"):
            last[name] = segment
    assert set(last) == {"total", "trim", "count", "summary"}, repr(text)
    for name, done in (("total", "7/7"), ("trim", "3/3"), ("count", "3/3"), ("summary", "1/1")):
        assert re.search(rf"\| {done} \[", last[name]), last[name]


def test_plain_lines_count_every_job(tmp_path):
    out = io.StringIO()
    assert run_with(LineReporter(out), tmp_path).ok
    lines = out.getvalue().splitlines()
    assert lines[0] == "s3rules: 7 jobs to run"
    assert lines[-1].startswith("[7/7] done ")


def test_quiet_run_prints_nothing(tmp_path):
    bf = write(tmp_path, PIPELINE, SHEET, DATA)
    r = s3rules("run", "-q", str(bf))
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    assert (tmp_path / "out/summary.tsv").exists()


def test_a_terminal_run_starts_with_the_number_of_jobs(tmp_path):
    out = Terminal()
    assert run_with(make_reporter(stream=out), tmp_path).ok
    assert out.getvalue().startswith("s3rules: 7 jobs to run\n")


def test_only_succeeded_jobs_fill_the_bars(tmp_path, clock):
    p, jobs = planned(tmp_path)
    reporter = BarReporter(Terminal())
    reporter.start(p)
    trim = jobs["trim"]
    for job in trim:
        reporter.submitted(job)
    reporter.finished(trim[0], Outcome(True))
    reporter.failed(trim[1], Outcome(False, 3, "exit code 3"))
    reporter.failed(trim[2], Outcome(False, None, "cancelled"))
    assert (reporter.total_bar.n, reporter.bars["trim"].n) == (1, 1)
    assert reporter.total_bar.postfix == reporter.bars["trim"].postfix == "1 failed, 1 cancelled"
    assert not reporter.bars["count"].postfix
    reporter.states({"trim": {"RUNNING": 2, "RUNNABLE": 0}})   # the executor's states keep the counts
    assert reporter.bars["trim"].postfix == "RUNNING=2, 1 failed, 1 cancelled"
    reporter.close(None)


def test_a_rule_bar_times_from_its_first_job(tmp_path, clock):
    p, jobs = planned(tmp_path)
    reporter = BarReporter(Terminal())
    reporter.start(p)
    bars = reporter.bars
    assert reporter.total_bar.start_t == 100.0
    clock[0] = 250.0
    reporter.submitted(jobs["count"][0])
    clock[0] = 300.0
    reporter.submitted(jobs["count"][1])   # a later job of a started rule leaves its clock alone
    reporter.finished(jobs["count"][0], Outcome(True))
    assert bars["count"].start_t == 250.0
    assert bars["count"].format_dict["elapsed"] == 50.0
    assert reporter.total_bar.start_t == 100.0
    assert "[waiting]" in str(bars["summary"])   # no clock until its first job starts
    reporter.close(None)


def test_the_total_bar_stays_on_top_through_messages(tmp_path, clock):
    p, jobs = planned(tmp_path)
    out = Terminal()
    reporter = BarReporter(out)
    reporter.start(p)
    reporter.submitted(jobs["trim"][0])
    reporter.message("s3rules: note: one")
    reporter.finished(jobs["trim"][0], Outcome(True))
    reporter.failed(jobs["trim"][1], Outcome(False, 1, "exit code 1"))
    reporter.message("two\nthree")
    reporter.close(None)
    shown = terminal_lines(out.getvalue())
    assert [line.split(":")[0].strip() for line in shown] == [
        "s3rules", "s3rules", "two", "three", "total", "trim", "count", "summary"], shown
    assert "| 1/7 [" in shown[4] and "1 failed" in shown[4]
    assert "| 0/1 [not run]" in shown[7]


def test_plain_lines_say_when_each_job_starts(tmp_path):
    out = io.StringIO()
    assert run_with(LineReporter(out), tmp_path).ok
    lines = out.getvalue().splitlines()
    started = [line.split("] ", 1)[1] for line in lines if line.startswith("[start] ")]
    done = [line.split(" done ", 1)[1] for line in lines if " done " in line]
    assert len(started) == 7 and sorted(started) == sorted(done)
    for job in started:
        assert lines.index(f"[start] {job}") < next(i for i, line in enumerate(lines) if line.endswith(f" done {job}"))


def test_plain_lines_tell_failed_from_cancelled(tmp_path):
    p, jobs = planned(tmp_path)
    out = io.StringIO()
    reporter = LineReporter(out)
    reporter.start(p)
    reporter.finished(jobs["trim"][0], Outcome(True))
    reporter.failed(jobs["trim"][1], Outcome(False, 3, "exit code 3"))
    reporter.failed(jobs["trim"][2], Outcome(False, None, "cancelled"))
    names = [job.describe() for job in jobs["trim"]]
    assert out.getvalue().splitlines()[1:] == [
        f"[1/7] done {names[0]}", f"[2/7] FAILED {names[1]}: exit code 3", f"[3/7] cancelled {names[2]}"]
