"""aws/jobspec.py without a server: identity and the SubmitJob request with Batch's limits."""
import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from s3rules.aws.jobspec import MAX_DEPENDS_ON, MAX_REQUEST_BYTES, JobSpec, submit_request
from s3rules.aws.naming import IDENTITY_TAG


def spec(**changes) -> JobSpec:
    base = JobSpec(label="trim-S01", queue="q", job_definition="jd:3",
                   command=("bash", "-c", "set -eu\ntrim s3://b/in/S01.txt"), outputs=("s3://b/out/S01.txt",),
                   vcpus=2, memory=4096)
    return replace(base, **changes)


# -- identity ---------------------------------------------------------------------------------

def test_identity_is_stable_across_instances_and_processes():
    here = spec(environment=(("B", "2"), ("A", "1")))
    again = spec(environment=(("A", "1"), ("B", "2")))       # order of the environment does not matter
    assert here.identity == again.identity
    assert re.fullmatch(r"[0-9a-f]{64}", here.identity)
    code = ("from s3rules.aws.jobspec import JobSpec\n"
            "print(JobSpec(label='trim-S01', queue='q', job_definition='jd:3', "
            "command=('bash', '-c', 'set -eu\\ntrim s3://b/in/S01.txt'), outputs=('s3://b/out/S01.txt',), "
            "vcpus=2, memory=4096, environment=(('A', '1'), ('B', '2'))).identity)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert other.stdout.strip() == here.identity


@pytest.mark.parametrize("changes", [
    {"command": ("bash", "-c", "set -eu\ntrim --fast s3://b/in/S01.txt")},
    {"outputs": ("s3://b/out/S01.txt", "s3://b/out/S01.log")},
    {"outputs": ("s3://b/other/S01.txt",)},
    {"vcpus": 4}, {"memory": 8192}, {"gpus": 1},
    {"environment": (("MODE", "fast"),)},
    {"parameters": (("p", "1"),)},
    {"job_definition": "jd:4"},
    {"label": "trim-S02"},
])
def test_identity_changes_with_what_defines_the_work(changes):
    base = spec()
    changed = spec(**changes)
    assert changed.identity != base.identity
    assert changed.name != base.name


@pytest.mark.parametrize("changes", [
    {"queue": "other-queue"}, {"priority": 90}, {"retries": 3}, {"timeout": 600},
    {"tags": (("team", "x"),)}, {"share": "teamA"},
])
def test_identity_ignores_how_the_job_is_scheduled(changes):
    assert spec(**changes).identity == spec().identity
    assert spec(**changes).name == spec().name


def test_replace_does_not_carry_a_cached_identity_over():
    base = spec()
    assert base.identity                                   # computed and cached
    changed = replace(base, command=("bash", "-c", "other"))
    assert changed.identity != base.identity
    assert changed.identity == JobSpec(label=base.label, queue="q", job_definition="jd:3",
                                       command=("bash", "-c", "other"), outputs=base.outputs,
                                       vcpus=2, memory=4096).identity


# -- the SubmitJob request --------------------------------------------------------------------

def test_submit_request_fields():
    s = spec(vcpus=0.5, memory=2048, gpus=1, environment=(("A", "1"), ("B", "x y")), parameters=(("p", "v"),),
             retries=2, timeout=3600, tags=(("s3rules:rule", "trim"), ("team", "genomics")), share="teamA",
             priority=42)
    req = submit_request(s, ["job-1", "job-2"])
    assert req["jobName"] == s.name
    assert req["jobQueue"] == "q" and req["jobDefinition"] == "jd:3"
    overrides = req["containerOverrides"]
    assert overrides["command"] == ["bash", "-c", "set -eu\ntrim s3://b/in/S01.txt"]
    assert overrides["environment"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "x y"}]
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "2048"}, {"type": "GPU", "value": "1"}]
    assert all(isinstance(r["value"], str) for r in overrides["resourceRequirements"])
    assert req["retryStrategy"]["attempts"] == 3
    assert req["timeout"] == {"attemptDurationSeconds": 3600}
    assert req["dependsOn"] == [{"jobId": "job-1"}, {"jobId": "job-2"}]
    assert req["tags"] == {"s3rules:rule": "trim", "team": "genomics", IDENTITY_TAG: s.identity}
    assert req["parameters"] == {"p": "v"}
    assert req["shareIdentifier"] == "teamA"
    assert req["schedulingPriorityOverride"] == 42
    json.dumps(req)   # nothing botocore could not serialise


def test_submit_request_whole_vcpus_are_written_as_integers():
    req = submit_request(spec(vcpus=2.0, memory=4096))
    assert req["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}]


def test_submit_request_minimal_has_no_optional_fields():
    req = submit_request(JobSpec(label="x", queue="q", job_definition="jd", command=("true",)))
    assert set(req) == {"jobName", "jobQueue", "jobDefinition", "containerOverrides", "tags"}
    assert req["containerOverrides"] == {"command": ["true"]}
    assert list(req["tags"]) == [IDENTITY_TAG]


def test_retries_zero_means_one_attempt_and_no_retry_strategy():
    assert "retryStrategy" not in submit_request(spec(retries=0))
    assert submit_request(spec(retries=1))["retryStrategy"] == {"attempts": 2, "evaluateOnExit": [
        {"onReason": "CannotPullContainerError*", "action": "EXIT"}, {"onReason": "*", "action": "RETRY"}]}


def test_spot_reclaims_retry_on_their_own_count_and_application_errors_on_retries():
    """Batch keeps one count of attempts: retries + retries_infra + 1 (at most 10); the rules
    decide which failure may use them. An image that cannot be pulled never retries, nor an
    out-of-memory kill when s3rules resubmits it bigger."""
    strategy = submit_request(spec(retries=0, retries_infra=5))["retryStrategy"]
    assert strategy == {"attempts": 6, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "CannotPullContainerError*", "action": "EXIT"},
        {"onReason": "*", "action": "EXIT"}]}
    strategy = submit_request(spec(retries=9, retries_infra=5, memory_retry="2x"))["retryStrategy"]
    assert strategy["attempts"] == 10
    assert strategy["evaluateOnExit"][2:] == [{"onReason": "OutOfMemoryError*", "action": "EXIT"},
                                              {"onReason": "*", "action": "RETRY"}]


def test_identity_tag_cannot_be_overridden_by_user_tags():
    s = spec(tags=((IDENTITY_TAG, "forged"),))
    assert submit_request(s)["tags"][IDENTITY_TAG] == s.identity


def test_depends_on_limit():
    ids = [f"job-{i}" for i in range(MAX_DEPENDS_ON)]
    assert len(submit_request(spec(), ids)["dependsOn"]) == MAX_DEPENDS_ON
    with pytest.raises(ValueError, match="at most 20"):
        submit_request(spec(), ids + ["one-more"])


def test_request_size_limit():
    near = "x" * (MAX_REQUEST_BYTES - 2000)
    submit_request(spec(command=("bash", "-c", near)))
    with pytest.raises(ValueError, match="trim-S01.*at most"):
        submit_request(spec(command=("bash", "-c", "x" * MAX_REQUEST_BYTES)))
    with pytest.raises(ValueError, match="shorten"):
        submit_request(spec(environment=tuple((f"V{i}", "y" * 100) for i in range(400))))


# -- failures by cause ------------------------------------------------------------------------

@pytest.mark.parametrize("description, expected", [
    ({"statusReason": "Host EC2 (instance i-0abc) terminated.", "container": {}}, "spot or host reclaimed"),
    ({"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}},
     "out of memory"),
    ({"container": {"exitCode": 137, "reason": "Container killed: memory limit exceeded"}}, "out of memory"),
    ({"container": {"exitCode": 137}}, "application error"),
    ({"container": {"reason": "CannotPullContainerError: pull image manifest has been retried 1 time(s)"}},
     "image pull"),
    ({"statusReason": "Job attempt duration exceeded timeout", "container": {}}, "timeout"),
    ({"statusReason": "Dependent Job failed", "container": {}}, "dependency failed"),
    ({"statusReason": "s3rules: cancelled", "container": {}}, "terminated"),
    ({"container": {"exitCode": 2}}, "application error"),
    ({}, "unknown"),
    # the last attempt decides; the job's own fields fill what the attempt leaves out
    ({"statusReason": "Essential container in task exited", "container": {"exitCode": 1},
      "attempts": [{"statusReason": "Host EC2 (instance i-1) terminated.", "container": {}},
                   {"container": {"exitCode": 1}}]}, "application error"),
])
def test_each_failure_is_named_by_its_cause(description, expected):
    from s3rules.aws.failures import cause
    assert cause(description) == expected


def test_earlier_attempts_are_named_oldest_first_and_successes_left_out():
    from s3rules.aws.failures import attempt_causes
    desc = {"attempts": [{"statusReason": "Host EC2 (instance i-1) terminated.", "container": {}},
                         {"container": {"exitCode": 3}}, {"container": {"exitCode": 0}}]}
    assert attempt_causes(desc) == ["spot or host reclaimed", "application error"]


@pytest.mark.parametrize("memory, grow, most, expected", [
    (2048, "2x", 8192, 4096), (4096, "2x", 6000, 6000), (6000, "2x", 6000, None),
    (2048, "+4096", 65536, 6144), (1000, "1.5x", 8000, 1500),
    (64, "1.01x", 8000, None),   # it would not grow: never sent again as it was
])
def test_memory_grows_by_its_rule_up_to_memory_max(memory, grow, most, expected):
    from s3rules.aws.failures import more_memory
    assert more_memory(memory, grow, most) == expected


def test_a_job_sent_again_with_more_memory_keeps_its_identity_and_name():
    """So status, cancel, logs and the next run find the bigger job by the name of the job it is."""
    from dataclasses import replace
    first = spec(memory=2048, memory_retry="2x", memory_max=8192)
    bigger = replace(first, memory=4096, same_as=first.identity)
    assert bigger.identity == first.identity and bigger.name == first.name
    assert submit_request(bigger)["containerOverrides"]["resourceRequirements"][1] == {"type": "MEMORY",
                                                                                      "value": "4096"}
    assert replace(first, memory=4096).identity != first.identity   # a Batchfile edit is another job
