"""Array-job building blocks: child scripts picked by index, manifests, N_TO_N detection."""
import base64
import json
import os
import shlex
import subprocess

import pytest

from s3rules.arrays import (Dependency, array_identity, array_name, array_request, dependency, inline_command,
                            manifest_command, manifest_text)
from s3rules.batchjobs import JobSpec


def spec(i, value="x", env=(), extra=""):
    return JobSpec(label=f"trim-S{i}", queue="q", job_definition="jd:1",
                   command=("bash", "-c", f"set -euo pipefail\nprintf '%s' {shlex.quote(value)} > out-{i}.txt\n"
                            + extra),
                   outputs=(f"s3://b/out/{i}.txt",), vcpus=2, memory=1024, environment=env)


def run_child(command, index, tmp_path, extra_env=None):
    env = dict(os.environ, AWS_BATCH_JOB_ARRAY_INDEX=str(index), **(extra_env or {}))
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)


def test_inline_command_runs_each_childs_own_job(tmp_path):
    hostile = ["plain", "semi;colon $(touch pwned) `x`", "quo'te\"s\nnew line", "ünï"]
    # each child also sees its own environment
    children = [spec(i, v, env=(("WHO", f"child {i}'s"),), extra='echo "$WHO" > who-$AWS_BATCH_JOB_ARRAY_INDEX\n')
                for i, v in enumerate(hostile)]
    command = inline_command(children)
    assert command is not None and command[:2] == ["bash", "-c"]
    for i, value in enumerate(hostile):
        r = run_child(command, i, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == value
        assert (tmp_path / f"who-{i}").read_text() == f"child {i}'s\n"
    assert not (tmp_path / "pwned").exists()


def test_inline_command_gives_way_to_a_manifest_when_too_long():
    children = [spec(i, "v" * 100) for i in range(200)]
    assert inline_command(children) is None


def test_manifest_command_fetches_its_line(tmp_path):
    children = [spec(i, f"value {i}\nline two") for i in range(5)]
    manifest = tmp_path / "manifest.txt"
    manifest.write_text(manifest_text(children))
    assert len(manifest.read_text().splitlines()) == 5
    assert base64.b64decode(manifest.read_text().splitlines()[3]).decode().endswith("> out-3.txt\n")
    # a stand-in for `aws s3 cp {url} -` that reads the local copy (and is given the URL)
    command = manifest_command("s3://b/.s3rules/arrays/m.txt", fetch=f"sh -c 'cat {manifest}' {{url}}")
    for i in (0, 3, 4):
        r = run_child(command, i, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == f"value {i}\nline two"


def test_n_to_n_only_when_indices_line_up():
    aligned = [[("up", i)] for i in range(3)]
    assert dependency(aligned, 3) == Dependency(n_to_n="up")
    assert dependency(aligned, 3).depends_on() == [{"jobId": "up", "type": "N_TO_N"}]
    shifted = [[("up", i + 1)] for i in range(3)]
    assert dependency(shifted, 3) == Dependency(job_ids=("up",))
    mixed = [[("up", 0)], [("up", 1), ("single", None)], [("up", 2)]]
    assert dependency(mixed, 3) == Dependency(job_ids=("single", "up"))
    fan_in = [[("a", 0), ("a", 1), ("b", 0)]]   # an aggregate over two arrays waits for both, whole
    assert dependency(fan_in, 1).depends_on() == [{"jobId": "a"}, {"jobId": "b"}]
    assert dependency([[], []], 2) == Dependency()


def test_array_request_fields_and_limits():
    children = [spec(i) for i in range(3)]
    command = inline_command(children)
    request = array_request("trim", children, Dependency(n_to_n="up"), command)
    assert request["arrayProperties"] == {"size": 3}
    assert request["dependsOn"] == [{"jobId": "up", "type": "N_TO_N"}]
    assert request["jobName"] == array_name("trim", array_identity(children))
    assert request["jobName"].startswith("s3rules-array-trim-") and len(request["jobName"]) <= 128
    assert request["tags"]["s3rules:identity"] == array_identity(children)
    assert {"type": "VCPU", "value": "2"} in request["containerOverrides"]["resourceRequirements"]
    assert len(json.dumps(request)) < 30 * 1024
    assert array_identity(children) != array_identity(children[:2])
    with pytest.raises(ValueError, match="2 to 10000 children"):
        array_request("trim", children[:1], Dependency(), command)
    with pytest.raises(ValueError, match="at most 20"):
        array_request("trim", children, Dependency(job_ids=tuple(str(i) for i in range(21))), command)
