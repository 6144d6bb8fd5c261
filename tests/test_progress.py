"""What a run looks like: tqdm bars on a terminal, plain lines otherwise, nothing with -q."""
import io

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


def test_reporter_choice():
    assert isinstance(make_reporter(stream=Terminal()), BarReporter)
    assert isinstance(make_reporter(stream=io.StringIO()), LineReporter)
    assert type(make_reporter(quiet=True, stream=Terminal())) is QuietReporter


def test_bars_per_rule_and_total(tmp_path):
    screen = Terminal()
    result = run_with(BarReporter(screen), tmp_path)
    assert result.ok
    text = screen.getvalue()
    import re
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
