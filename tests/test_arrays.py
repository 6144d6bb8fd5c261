"""Array-job building blocks: child scripts rebuilt by index, manifests, N_TO_N detection."""
import hashlib
import json
import os
import shlex
import subprocess

import pytest

from s3rules.aws.arrays import (array_identity, array_request, build_array, child_index, child_script, dependency,
                                split_scripts)
from s3rules.aws.jobspec import JobSpec
from s3rules.aws.naming import ARRAY_PREFIX, MANIFEST_TAG, job_name

HOME = "s3://b/.s3rules/jobs"


def spec(i, value="x", env=(), extra=""):
    return JobSpec(label=f"trim-S{i}", queue="q", job_definition="jd:1",
                   command=("bash", "-c", f"set -euo pipefail\nprintf '%s' {shlex.quote(value)} > out-{i}.txt\n"
                            + extra),
                   outputs=(f"s3://b/out/{i}.txt",), vcpus=2, memory=1024, environment=env)


def run_child(command, index, cwd, extra_env=None):
    env = dict(os.environ, AWS_BATCH_JOB_ARRAY_INDEX=str(index), **(extra_env or {}))
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def rebuilt(pieces, columns, i):
    return "".join(p if isinstance(p, str) else columns[p][i] for p in pieces)


def test_split_scripts_keeps_the_shared_text_once_and_each_varying_word_once():
    scripts = [f"cp s3://b/raw/{s}.txt s3://b/trim/{s}.txt && echo {s} {n}\n"
               for s, n in (("S01", 1), ("S02", 2), ("S10", 30))]
    pieces, columns = split_scripts(scripts)
    assert columns == [("S01", "S02", "S10"), ("1", "2", "30")]   # the sample, named 3 times, stored once
    assert [rebuilt(pieces, columns, i) for i in range(3)] == scripts
    # scripts that differ in shape still work: each whole script is the one value
    odd = ["echo a b\n", "echo 'a;b'\n"]
    pieces, columns = split_scripts(odd)
    assert [rebuilt(pieces, columns, i) for i in range(2)] == odd
    same = ["echo same\n"] * 3        # a command that names no wildcard: still one value per child
    pieces, columns = split_scripts(same)
    assert len(columns) == 1 and [rebuilt(pieces, columns, i) for i in range(3)] == same


def test_an_inline_array_runs_each_childs_own_job_with_hostile_values(tmp_path):
    hostile = ["plain", "semi;colon $(touch pwned) `x`", "quo'te\"s\nnew line", "ünï", "", "trailing\n\n"]
    # each child also sees its own environment
    children = [spec(i, v, env=(("WHO", f"child {i}'s"),), extra='echo "$WHO" > who-$AWS_BATCH_JOB_ARRAY_INDEX\n')
                for i, v in enumerate(hostile)]
    array = build_array("trim", children, HOME)
    assert array.values_url is None and list(array.files) == [array.manifest_url]
    for i, value in enumerate(hostile):
        r = run_child(array.command, i, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == value
        assert (tmp_path / f"who-{i}").read_text() == f"child {i}'s\n"
    assert not (tmp_path / "pwned").exists()


def test_a_child_that_fails_fails_its_array_index_only(tmp_path):
    children = [spec(0), spec(1, extra="exit 3\n")]
    array = build_array("trim", children, HOME)
    assert run_child(array.command, 0, tmp_path).returncode == 0
    assert run_child(array.command, 1, tmp_path).returncode == 3


def test_values_too_big_for_the_overrides_go_to_a_manifest_the_child_fetches(tmp_path):
    def value(i):   # 64 characters that differ per child: 300 of them cannot go inline
        return f"value {hashlib.sha256(str(i).encode()).hexdigest()}\nline two {i}"
    children = [spec(i, value(i)) for i in range(300)]
    array = build_array("trim", children, HOME)
    assert array.values_url == f"{HOME}/{array.identity}.values"
    assert len(json.dumps(array_request(array, [])["containerOverrides"])) <= 8192
    lines = array.files[array.values_url].splitlines()
    assert len(lines) == 300
    # a stand-in for `aws s3 cp {url} -` that reads the local copy (and is given the URL)
    local = tmp_path / "manifest.txt"
    local.write_text(array.files[array.values_url])
    array = build_array("trim", children, HOME, fetch=f"sh -c 'cat {local}' {{url}}")
    for i in (0, 150, 299):
        r = run_child(array.command, i, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == value(i)
    r = run_child(array.command, 300, tmp_path)   # no such line: a clear failure, nothing run
    assert r.returncode != 0 and "line 301" in r.stderr


def test_a_shared_text_too_long_for_the_command_goes_to_the_manifest_whole(tmp_path):
    long = "echo " + "y" * 9000 + "\n"     # say, a per-group aggregate naming many inputs
    children = [spec(i, extra=long) for i in range(3)]
    local = tmp_path / "manifest.txt"
    array = build_array("trim", children, HOME, fetch=f"sh -c 'cat {local}' {{url}}")
    assert len(json.dumps(array_request(array, [])["containerOverrides"])) <= 8192
    local.write_text(array.files[array.values_url])
    r = run_child(array.command, 2, tmp_path)
    assert r.returncode == 0 and r.stdout == "y" * 9000 + "\n", r.stderr
    assert (tmp_path / "out-2.txt").read_text() == "x"


def test_ten_thousand_children_stay_within_the_request_limits():
    children = [spec(i) for i in range(10_000)]
    array = build_array("trim", children, HOME)
    request = array_request(array, [{"jobId": "up", "type": "N_TO_N"}])
    assert len(json.dumps(request).encode()) < 30 * 1024
    assert request["arrayProperties"] == {"size": 10_000}
    manifest = json.loads(array.files[array.manifest_url])
    assert manifest["children"] == [c.identity for c in children]


def test_n_to_n_only_when_indices_line_up():
    aligned = [[("up", i)] for i in range(3)]
    assert dependency(aligned, {"up": 3}) == [{"jobId": "up", "type": "N_TO_N"}]
    assert dependency(aligned, {"up": 4}) == [{"jobId": "up"}]            # sizes differ: whole
    shifted = [[("up", i + 1)] for i in range(3)]
    assert dependency(shifted, {"up": 3}) == [{"jobId": "up"}]
    two = [[("a", i), ("b", i)] for i in range(3)]                         # a join of two per-sample arrays
    assert dependency(two, {"a": 3, "b": 3}) == [{"jobId": "a", "type": "N_TO_N"}, {"jobId": "b", "type": "N_TO_N"}]
    mixed = [[("up", i), ("ref", None)] for i in range(3)]
    assert dependency(mixed, {"up": 3}) == [{"jobId": "ref"}, {"jobId": "up", "type": "N_TO_N"}]
    fan_in = [[("a", 0), ("a", 1), ("b", 0)]]   # an aggregate over two arrays waits for both, whole
    assert dependency(fan_in, {"a": 2, "b": 2}) == [{"jobId": "a"}, {"jobId": "b"}]
    assert dependency([[], []], {}) == []


def test_array_request_fields_and_limits():
    children = [spec(i) for i in range(3)]
    array = build_array("trim", children, HOME)
    request = array_request(array, [{"jobId": "up", "type": "N_TO_N"}])
    assert request["arrayProperties"] == {"size": 3}
    assert request["dependsOn"] == [{"jobId": "up", "type": "N_TO_N"}]
    assert request["jobName"].startswith(ARRAY_PREFIX + "trim-") and len(request["jobName"]) <= 128
    assert request["tags"]["s3rules:identity"] == array_identity(children)
    assert request["tags"][MANIFEST_TAG] == f"{HOME}/{array_identity(children)}.json"
    assert {"type": "VCPU", "value": "2"} in request["containerOverrides"]["resourceRequirements"]
    assert array_identity(children) != array_identity(children[:2])
    # a single job's name never looks like an array's, whatever its rule is called
    assert not job_name("array-S1", "0" * 64).startswith(ARRAY_PREFIX)
    with pytest.raises(ValueError, match="2 to 10000 children"):
        build_array("trim", children[:1], HOME)
    with pytest.raises(ValueError, match="at most 20"):
        array_request(array, [{"jobId": str(i)} for i in range(21)])


def test_child_index_and_child_script():
    assert child_index("a1b2-c3:17") == ("a1b2-c3", 17)
    assert child_index("a1b2-c3") == ("a1b2-c3", None)
    assert child_script(spec(0, env=(("A", "x y"),))).startswith("export A='x y'\nset -euo pipefail\n")


def test_array_request_keeps_every_setting_of_its_children_but_their_own_command():
    from dataclasses import replace
    children = [replace(spec(i), parameters=(("ref", "hg38"),), share="teamA", priority=7, retries=2,
                        timeout=600, tags=(("team", "x"),), environment=(("SAMPLE", f"S{i}"),))
                for i in range(3)]
    request = array_request(build_array("trim", children, HOME), [])
    assert request["parameters"] == {"ref": "hg38"}
    assert (request["shareIdentifier"], request["schedulingPriorityOverride"]) == ("teamA", 7)
    assert request["retryStrategy"]["attempts"] == 3
    assert request["timeout"] == {"attemptDurationSeconds": 600}
    assert request["tags"]["team"] == "x"
    assert "environment" not in request["containerOverrides"]   # each child's is in its own script


def test_a_rule_with_another_shell_still_gets_bash_wrappers_that_run_its_script_in_that_shell(tmp_path):
    """README: the image needs the rule's shell_executable and bash: the wrappers that rebuild a
    child's script (bash arrays) or fetch a staged one (pipefail) are bash, whatever the rule's shell."""
    from dataclasses import replace
    children = [replace(spec(i, f"v{i}"), command=("sh", "-c", f"set -eu\nprintf '%s' v{i} > out-{i}.txt\n"
                                                   "[ -z \"${BASH_VERSION:-}\" ] || echo bash > shell-was-bash\n"))
                for i in range(3)]
    array = build_array("trim", children, HOME, shell="sh")
    assert array.command[0] == "bash"
    for i in range(3):
        r = run_child(array.command, i, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == f"v{i}"
    assert not (tmp_path / "shell-was-bash").exists()     # the job's own script ran in sh
    from s3rules.aws.arrays import staged_command
    assert staged_command("s3://b/x.sh", shell="sh")[0] == "bash"


def test_manifests_take_100_to_200_bytes_per_child_for_typical_sample_names():
    """README: the manifests are small (100 to 200 bytes per child for typical sample names)."""
    children = [JobSpec(label=f"quant-NA12878_L{i:05d}", queue="q", job_definition="jd:1",
                        command=("bash", "-c", f"set -euo pipefail\nsalmon quant -r s3://b/trim/NA12878_L{i:05d}.fq "
                                 f"-o s3://b/quant/NA12878_L{i:05d}\n"),
                        outputs=(f"s3://b/quant/NA12878_L{i:05d}/quant.sf",)) for i in range(10_000)]
    array = build_array("quant", children, HOME)
    assert array.values_url is not None            # too many to go inline: both manifests are written
    per_child = sum(len(text.encode()) for text in array.files.values()) / len(children)
    assert 100 <= per_child <= 200, per_child
