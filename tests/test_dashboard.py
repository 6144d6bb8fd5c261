"""``s3rules dashboard``: the status of several workflows over HTTP on loopback, read-only, and
refreshed as jobs finish (a job waits on a gate file the test creates, never on time)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from workflows import s3rules, write

NO_AWS = {"AWS_EC2_METADATA_DISABLED": "true"}
GATED = '''
rule all:
    input: "out/slow.txt", "out/quick.txt"
rule slow:
    output: "out/slow.txt"
    shell: "while [ ! -e gate ]; do sleep 0.05; done; echo done > {output}"
rule quick:
    output: "out/quick.txt"
    shell: "echo quick > {output}"
'''
EXE = os.path.join(os.path.dirname(sys.executable), "s3rules")


@contextmanager
def dashboard(*args: str, cwd: Path):
    """A running ``s3rules dashboard`` (any free port, refreshing every 0.1 s): its base URL."""
    proc = subprocess.Popen([EXE, "dashboard", "--port", "0", "--interval", "0.1", *args], cwd=cwd,
                            env={**os.environ, **NO_AWS}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stderr.readline()
        assert "dashboard of" in line, line + proc.stderr.read()
        yield line.split("http://", 1)[1].split("/", 1)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def get(host: str, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{host}{path}", method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(host: str, check, what: str, timeout: float = 60) -> dict:
    """The first /status.json that satisfies ``check`` (the dashboard refreshes every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(get(host, "/status.json")[1])
        if status["workflows"] and check(status):
            return status
        assert time.monotonic() < deadline, f"never saw {what}: {status}"
        time.sleep(0.05)


def totals(status: dict, i: int = 0) -> dict:
    return status["workflows"][i]["total"]


def test_the_dashboard_refreshes_when_a_job_finishes(tmp_path):
    write(tmp_path, GATED)
    run = subprocess.Popen([EXE, "run", "-q"], cwd=tmp_path, env={**os.environ, **NO_AWS},
                           stderr=subprocess.PIPE, text=True)
    try:
        with dashboard("Batchfile", cwd=tmp_path) as host:
            before = wait_for(host, lambda s: totals(s).get("running") == 1 and totals(s).get("done") == 1,
                              "the slow job running and the quick one done")
            assert before["workflows"][0]["rules"] == {"slow": {"total": 1, "running": 1},
                                                       "quick": {"total": 1, "done": 1}}
            (tmp_path / "gate").touch()
            after = wait_for(host, lambda s: totals(s).get("done") == 2, "both jobs done")
            assert totals(after).get("running", 0) == 0 and after["updated"] > before["updated"]
            assert after["workflows"][0]["cost"] > 0   # the runs' history: two jobs ran
    finally:
        (tmp_path / "gate").touch()
        assert run.wait(timeout=60) == 0, run.stderr.read()


def test_the_dashboard_serves_several_workflows_and_their_reports_read_only(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    write(first, GATED.replace("while [ ! -e gate ]; do sleep 0.05; done; ", ""))
    write(second, GATED)
    assert s3rules("run", "-q", cwd=first, env=NO_AWS).returncode == 0
    with dashboard("one/Batchfile", "two/Batchfile", cwd=tmp_path) as host:
        assert host.startswith("127.0.0.1:")   # loopback unless --host says otherwise
        status = wait_for(host, lambda s: len(s["workflows"]) == 2, "both workflows")
        assert [w["batchfile"] for w in status["workflows"]] == ["one/Batchfile", "two/Batchfile"]
        assert totals(status, 0) == {"total": 2, "done": 2} and totals(status, 1) == {"total": 2, "to do": 2}
        code, page = get(host, "/")
        assert code == 200 and "s3rules dashboard" in page and "2 workflows" in page
        code, report = get(host, "/report/0")
        assert code == 200 and "s3rules report" in report and "one/Batchfile" in report
        assert get(host, "/report/2")[0] == 404 and get(host, "/nothing")[0] == 404
        for method in ("POST", "PUT", "DELETE"):
            assert get(host, "/", method)[0] == 405
        assert not (second / "out").exists()   # it ran nothing


def test_a_workflow_broken_while_the_dashboard_runs_is_a_row_saying_why(tmp_path):
    write(tmp_path, GATED)
    with dashboard("Batchfile", cwd=tmp_path) as host:
        wait_for(host, lambda s: "error" not in s["workflows"][0], "the workflow read")
        (tmp_path / "Batchfile").write_text("rule broken\n")
        status = wait_for(host, lambda s: "error" in s["workflows"][0], "the error")
        assert "Batchfile:1" in status["workflows"][0]["error"]
        assert get(host, "/")[0] == 200


def test_a_port_in_use_is_a_clean_error(tmp_path):
    write(tmp_path, GATED)
    with dashboard("Batchfile", cwd=tmp_path) as host:
        port = host.split(":")[1]
        r = s3rules("dashboard", "--port", port, cwd=tmp_path, env=NO_AWS, timeout=30)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr


def test_a_missing_batchfile_is_a_clean_error(tmp_path):
    r = s3rules("dashboard", "nowhere/Batchfile", cwd=tmp_path, env=NO_AWS, timeout=30)
    assert r.returncode == 2 and "no such Batchfile: nowhere/Batchfile" in r.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path, port):
    write(tmp_path, GATED)
    r = s3rules("dashboard", "--port", port, cwd=tmp_path, env=NO_AWS, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "expected a port from 0 to 65535" in r.stderr


@pytest.mark.parametrize("words", [["--workflows", "list.txt"], ["a/Batchfile", "b/Batchfile"]])
def test_status_and_dashboard_take_the_same_workflows(tmp_path, words):
    for name in ("a", "b"):
        write(tmp_path / name, GATED)
    (tmp_path / "list.txt").write_text("a/Batchfile\nb/Batchfile\n")
    r = s3rules("status", *words, cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 0 and [line.split()[0] for line in r.stdout.splitlines()[1:]] == [
        "a/Batchfile", "b/Batchfile", "total"]
    with dashboard(*words, cwd=tmp_path) as host:
        status = wait_for(host, lambda s: len(s["workflows"]) == 2, "both workflows")
        assert [w["batchfile"] for w in status["workflows"]] == ["a/Batchfile", "b/Batchfile"]


def test_jobs_a_live_run_has_not_started_yet_are_to_do_not_running(tmp_path):
    write(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("out/{sample}.txt")
        rule slow:
            output: "out/{sample}.txt"
            shell: "while [ ! -e gate ]; do sleep 0.05; done; echo {sample} > {output}"
        ''', sheet="sample\nA\nB\nC\n")
    run = subprocess.Popen([EXE, "run", "-q", "-j", "1"], cwd=tmp_path, env={**os.environ, **NO_AWS})
    try:
        with dashboard("Batchfile", cwd=tmp_path) as host:
            status = wait_for(host, lambda s: totals(s).get("running") == 1, "one job running")
            assert totals(status) == {"total": 3, "running": 1, "to do": 2}   # -j 1: one at a time
            r = s3rules("status", cwd=tmp_path, env=NO_AWS)
            assert r.stdout.splitlines()[1].split() == ["slow", "0", "1", "0", "0", "2", "3"]
    finally:
        (tmp_path / "gate").touch()
        assert run.wait(timeout=60) == 0


def test_the_dashboard_answers_only_by_the_loopback_address_it_printed(tmp_path):
    """A web page elsewhere, through a DNS name that points at 127.0.0.1 (DNS rebinding), gets nothing."""
    write(tmp_path, GATED)
    with dashboard("Batchfile", cwd=tmp_path) as host:
        port = host.split(":")[1]
        assert get(host, "/status.json")[0] == 200
        assert get(host, "/status.json", headers={"Host": f"localhost:{port}"})[0] == 200
        code, body = get(host, "/status.json", headers={"Host": f"attacker.example:{port}"})
        assert code == 403 and "workflows" not in body
        assert get(host, "/report/0", headers={"Host": f"attacker.example:{port}"})[0] == 403
        for odd in ("/report/%C2%B2", "/report/-1", "/report/0x0", "/report/99999999999", "/../etc/passwd"):
            assert get(host, odd)[0] == 404, odd
        assert get(host, "/", "OPTIONS")[0] == 405


def test_a_report_that_cannot_be_made_is_a_clean_http_error(tmp_path):
    write(tmp_path, GATED)
    with dashboard("Batchfile", "--interval", "30", cwd=tmp_path) as host:
        assert get(host, "/report/0")[0] == 200   # the first refresh has read it
        (tmp_path / "Batchfile").write_text("rule broken\n    output: \u2264\n")
        code, body = get(host, "/report/0")
        assert code == 503 and "cannot make the report" in body and "Batchfile:1" in body


def test_ctrl_c_stops_the_dashboard_with_status_0(tmp_path):
    write(tmp_path, GATED)
    proc = subprocess.Popen([EXE, "dashboard", "-s", "Batchfile", "--port", "0"], cwd=tmp_path,
                            env={**os.environ, **NO_AWS}, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "dashboard of 1 workflow on http://127.0.0.1:" in line, line
    finally:
        proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0 and "dashboard stopped" in proc.stderr.read()


def test_status_of_several_workflows_shows_those_it_can_read_and_names_the_others(tmp_path):
    write(tmp_path / "good", GATED)
    write(tmp_path / "bad", "rule broken\n")
    r = s3rules("status", "good/Batchfile", "bad/Batchfile", "./good/Batchfile", cwd=tmp_path, env=NO_AWS)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    rows = r.stdout.strip().splitlines()
    assert [row.split()[0] for row in rows[1:]] == ["good/Batchfile", "total", "bad/Batchfile:"]   # once each
    assert "cannot be read" in rows[-1] and "bad/Batchfile:1" in r.stderr


def test_each_workflow_is_kept_once_in_the_order_first_given(tmp_path):
    from s3rules.cli.status import once
    for name in ("a", "b"):
        write(tmp_path / name, GATED)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert once(["b/Batchfile", "a/Batchfile", "./b/Batchfile", str(tmp_path / "a/Batchfile")]) == [
            "b/Batchfile", "a/Batchfile"]
    finally:
        os.chdir(here)


def test_next_to_a_batch_workflow_a_local_ones_running_jobs_count_as_running_in_capitals():
    from s3rules.cli.status import _one_running_column, all_columns
    local = {"batchfile": "a/Batchfile", "columns": ["done", "running", "failed", "incomplete", "to do", "total"],
             "rules": {"x": {"running": 2, "total": 3, "done": 1}}, "total": {"running": 2, "total": 3, "done": 1}}
    batch = {"batchfile": "b/Batchfile", "columns": ["done", "SUBMITTED", "PENDING", "RUNNABLE", "STARTING",
                                                       "RUNNING", "to do", "total"],
             "rules": {"y": {"RUNNING": 1, "total": 1}}, "total": {"RUNNING": 1, "total": 1}}
    _one_running_column([local, batch])
    assert "running" not in local["columns"] and local["columns"][:6] == batch["columns"][:6]
    assert local["rules"]["x"] == {"RUNNING": 2, "total": 3, "done": 1} and local["total"]["RUNNING"] == 2
    assert "running" not in all_columns([local, batch])
