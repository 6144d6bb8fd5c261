"""``s3rules report`` and the status of several workflows, on local runs: the counts, durations,
usage and costs a report shows come from what the runs recorded (ledger and history).

The Batch side is tests/test_report_batch.py; the pages in a real browser, tests/test_browser.py.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from workflows import s3rules, write

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

NO_AWS = {"AWS_EC2_METADATA_DISABLED": "true"}

# two jobs of rule a sleep and take 120 MiB; b fails for sample C; prices make cost easy to check:
# 3.6 USD per vCPU-hour is 0.001 per vCPU-second, 36 per GiB-hour is 0.01 per GiB-second
PIPELINE = '''
samples: "samples.csv"

default:
    vcpus: 2
    memory: 512
    price_vcpu_hour: 3.6
    price_gib_hour: 36

rule all:
    input: expand("out/b/{sample}.txt")

rule a:
    output: "out/a/{sample}.txt"
    shell: "sleep 0.3; python3 -c 'x = bytearray(120 * 1024 * 1024)'; echo {sample} > {output}"

rule b:
    input: "out/a/{sample}.txt"
    output: "out/b/{sample}.txt"
    vcpus: 1
    shell: "if [ {sample} = C ]; then echo 'error: truncated input' >&2; exit 4; fi; cp {input} {output}"
'''
SHEET = "sample\nA\nB\nC\n<i>D&E<i>\n"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One local run of PIPELINE with -k: a done, b done but for C (failed)."""
    wf = tmp_path_factory.mktemp("report")
    write(wf, PIPELINE, files={"samples.csv": SHEET})
    r = s3rules("run", "-k", "-j", "2", cwd=wf, env=NO_AWS)
    assert r.returncode == 1 and "exit code 4" in r.stderr, r.stderr
    return wf


def report_json(wf: Path, *args: str) -> dict:
    r = s3rules("report", "--json", *args, cwd=wf, env=NO_AWS)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_report_counts_each_rules_jobs_by_state_from_the_ledger(ran):
    doc = report_json(ran)
    rules = {r["rule"]: r for r in doc["rules"]}
    assert set(rules) == {"a", "b"}   # the target list runs nothing
    assert rules["a"]["states"] == {"done": 4} and rules["b"]["states"] == {"done": 3, "failed": 1}
    assert doc["totals"]["jobs"] == 8
    assert doc["totals"]["states"] == {"done": 7, "failed": 1, "started": 0, "to do": 0}
    assert [j["state"] for j in doc["jobs"] if j["rule"] == "b" and j["wildcards"]["sample"] == "C"] == ["failed"]


def test_durations_and_usage_are_the_recorded_ones(ran):
    doc = report_json(ran)
    a = [j for j in doc["jobs"] if j["rule"] == "a"]
    for job in a:
        assert job["runtime"] == pytest.approx(job["ended"] - job["started"], abs=0.002)
        assert 0.3 <= job["runtime"] < 60   # it slept 0.3 s
        assert job["cpu"] > 0 and job["exit"] == 0
        assert job.get("max_rss", 0) >= 120 * 1024 * 1024, job   # its python held 120 MiB
    stats = {r["rule"]: r for r in doc["rules"]}["a"]
    runtimes = sorted(j["runtime"] for j in a)
    assert stats["runtime"]["min"] == runtimes[0] and stats["runtime"]["max"] == runtimes[-1]
    assert sum(stats["histogram"]["counts"]) == 4
    assert stats["requested"] == {"vcpus": 2, "memory": 512}
    assert stats["used"]["max_rss"]["max"] == max(j["max_rss"] for j in a)


def test_costs_are_requested_resources_for_the_run_time_at_the_rules_prices(ran):
    doc = report_json(ran)
    for rule in doc["rules"]:
        jobs = [j for j in doc["jobs"] if j["rule"] == rule["rule"] and "runtime" in j]
        vcpus = {"a": 2, "b": 1}[rule["rule"]]
        expected = sum(j["runtime"] * (vcpus * 0.001 + 0.5 * 0.01) for j in jobs)
        assert rule["cost"] == pytest.approx(expected, rel=1e-6)
        assert rule["vcpu_hours"] == pytest.approx(sum(j["runtime"] * vcpus for j in jobs) / 3600, rel=1e-6)
    assert doc["totals"]["cost"] == pytest.approx(sum(r["cost"] for r in doc["rules"]))
    assert doc["prices"] == {"vcpu_hour": 3.6, "gib_hour": 36, "default": False, "spot_rules": [], "own": {}}
    assert doc["totals"]["spent"] >= doc["totals"]["cost"] - 1e-9 > 0   # every run of every job, at least the last


def test_failures_carry_cause_exit_code_and_log_tail(ran):
    doc = report_json(ran)
    assert len(doc["failures"]) == 1
    failure = doc["failures"][0]
    assert failure["rule"] == "b" and failure["wildcards"] == {"sample": "C"}
    assert failure["cause"] == "application error" and failure["exit"] == 4
    assert failure["log_tail"] == ["error: truncated input"]
    assert failure["output"] == "out/b/C.txt"


def test_the_run_is_summarised_with_its_command_line_and_batchfile_hash(ran):
    doc = report_json(ran)
    [run] = doc["runs"]
    assert run["argv"] == "s3rules run -k -j 2"
    assert (run["pending"], run["succeeded"], run["failed"]) == (8, 7, 1)
    assert run["wall"] > 0.3 and run["batchfile_hash"] == doc["workflow"]["batchfile_hash"]
    assert doc["timeline"]["mode"] == "jobs" and len(doc["timeline"]["bars"]) == 8


def test_the_html_page_is_self_contained_and_escapes_sheet_values(ran, tmp_path):
    out = tmp_path / "r.html"
    r = s3rules("report", "-o", str(out), cwd=ran, env=NO_AWS)
    assert r.returncode == 0 and "report of 8 jobs (7 done, 1 failed)" in r.stderr, r.stderr
    page = out.read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page   # nothing fetched
    assert page.count('class="run') == 8 and page.count('class="wait"') == 8   # a bar per job, wait and run
    assert page.count('class="run failed"') == 1   # b for C, outlined
    assert "&lt;i&gt;D&amp;E&lt;i&gt;" in page and "<i>D&E" not in page
    assert "error: truncated input" in page and "s3rules logs Batchfile out/b/C.txt" in page
    assert "AWS Fargate" not in page   # the Batchfile set its own prices


def test_a_workflow_that_never_ran_gets_a_report_too(tmp_path):
    write(tmp_path, PIPELINE, files={"samples.csv": "sample\nA\n"})
    doc = report_json(tmp_path)
    assert doc["runs"] == [] and doc["totals"]["states"]["to do"] == 2 and doc["timeline"] == {"mode": "empty"}
    r = s3rules("report", cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 0 and "No job has run yet" in (tmp_path / "report.html").read_text()


def test_a_report_that_cannot_be_written_is_a_clean_error(ran):
    r = s3rules("report", "-o", "/nonexistent/dir/r.html", cwd=ran, env=NO_AWS)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("s3rules: error: cannot write the report to /nonexistent/dir/r.html")


def test_100000_recorded_jobs_make_a_page_under_10_mb(tmp_path):
    from report_bench import fabricate
    counts = fabricate(tmp_path, 100_000)
    r = s3rules("report", "-o", "big.html", cwd=tmp_path, env=NO_AWS, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "report of 100000 jobs (98000 done, 2000 failed)" in r.stderr
    page = (tmp_path / "big.html").read_text()
    assert len(page.encode()) < 10_000_000
    assert "Too many jobs to draw one by one" in page and "and 1800 more" in page   # 200 of 2,000 failures
    assert counts == {"a": {"done": 50000, "failed": 0}, "b": {"done": 48000, "failed": 2000}}


# -- status of several workflows ----------------------------------------------------------------

def test_status_of_several_workflows_has_a_row_each_with_its_cost(ran, tmp_path):
    other = tmp_path / "other"
    write(other, PIPELINE.replace("sleep 0.3; ", ""), files={"samples.csv": "sample\nA\nB\n"})
    assert s3rules("run", "a", cwd=other, env=NO_AWS).returncode == 0
    r = s3rules("status", str(ran / "Batchfile"), str(other / "Batchfile"), cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["workflow", "done", "running", "failed", "incomplete", "to", "do", "total", "cost"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    first, second = str(ran / "Batchfile"), str(other / "Batchfile")
    assert rows[first][:6] == ["7", "0", "1", "0", "0", "8"]
    assert rows[second][:6] == ["2", "0", "0", "0", "2", "4"]
    assert rows["total"][:6] == ["9", "0", "1", "0", "2", "12"]
    cost = report_json(ran)["totals"]["cost"]
    assert rows[first][6] == (f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}")


def test_status_reads_the_workflows_from_a_file_and_shows_rules_with_v(ran, tmp_path):
    listing = tmp_path / "workflows.txt"
    listing.write_text(f"# the runs of this week\n{ran / 'Batchfile'}\n")
    r = s3rules("status", "--workflows", str(listing), "-v", cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 0, r.stderr
    assert f"{ran / 'Batchfile'}:\nrule" in r.stdout and "failed by cause: application error 1" in r.stdout
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing\n")
    r = s3rules("status", "--workflows", str(empty), cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 2 and "names no Batchfile" in r.stderr


def test_a_run_killed_mid_way_leaves_a_history_the_report_still_reads(tmp_path):
    """A run killed by power loss: its history has no last line, and its last job line is cut."""
    write(tmp_path, PIPELINE, files={"samples.csv": "sample\nA\n"})
    assert s3rules("run", "a", cwd=tmp_path, env=NO_AWS).returncode == 0
    [history] = (tmp_path / ".s3rules/history").iterdir()
    lines = history.read_text().splitlines()
    assert lines[-1].startswith('{"end"')
    history.write_text("\n".join(lines[:-1]) + '\n{"key":"out/b/A.txt","rule":"b","sta')
    doc = report_json(tmp_path)
    [run] = doc["runs"]
    assert run["wall"] is None and run["succeeded"] is None   # it never said how it ended
    assert {r["rule"]: r["states"] for r in doc["rules"]} == {"a": {"done": 1}, "b": {"to do": 1}}
    assert s3rules("report", cwd=tmp_path, env=NO_AWS).returncode == 0
    assert "not finished: still running, or stopped before it could say" in (tmp_path / "report.html").read_text()


def test_the_batchfile_hash_covers_the_sheet_and_not_how_the_path_was_typed(tmp_path):
    wf = tmp_path / "wf"
    write(wf, PIPELINE.replace("sleep 0.3; ", ""), files={"samples.csv": "sample\nA\n"})
    assert s3rules("run", "a", cwd=wf, env=NO_AWS).returncode == 0
    doc = report_json(tmp_path, "wf/Batchfile")   # from another directory
    assert doc["runs"][-1]["batchfile_hash"] == doc["workflow"]["batchfile_hash"]
    (wf / "samples.csv").write_text("sample\nA\nB\n")
    assert report_json(wf)["workflow"]["batchfile_hash"] != doc["workflow"]["batchfile_hash"]


def test_a_failed_rerun_that_kept_the_old_outputs_is_done_and_listed_as_a_failure(tmp_path):
    write(tmp_path, PIPELINE.replace("sleep 0.3; ", "if [ -e fail ]; then echo broken >&2; exit 9; fi; "),
          files={"samples.csv": "sample\nA\n"})
    assert s3rules("run", "a", cwd=tmp_path, env=NO_AWS).returncode == 0
    (tmp_path / "fail").touch()
    assert s3rules("run", "a", "-f", "out/a/A.txt", cwd=tmp_path, env=NO_AWS).returncode == 1
    assert (tmp_path / "out/a/A.txt").read_text() == "A\n"   # put back
    doc = report_json(tmp_path, "a")
    assert {r["rule"]: r["states"] for r in doc["rules"]} == {"a": {"done": 1}}
    [failure] = doc["failures"]
    assert failure["restored"] and failure["exit"] == 9 and failure["log_tail"] == ["broken"]


def test_a_report_of_some_rules_prices_only_their_runs_and_a_moved_workspace_keeps_its_history(ran, tmp_path):
    import shutil
    moved = tmp_path / "moved"
    shutil.copytree(ran, moved)
    whole, only_a = report_json(moved), report_json(moved, "a")
    assert whole["runs"] and [r["run"] for r in only_a["runs"]] == [r["run"] for r in whole["runs"]]
    a = next(r for r in whole["rules"] if r["rule"] == "a")
    assert only_a["totals"]["spent"] == pytest.approx(a["cost"])   # one run: a's jobs ran once
    assert only_a["totals"]["spent"] < whole["totals"]["spent"]
