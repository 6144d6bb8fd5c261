"""Containers without set-up (``container: "image:tag"``): s3rules registers one job definition per
image and resource class, finds it again by name on the next run, and ``job_definition:`` still wins.
Also ``job_definition: "name:revision"`` on a server that describes definitions only by name or ARN.

Same harness as tests/test_batch.py: moto's server, jobs run as local processes (the image is not
pulled: the harness runs each job's command on this machine).
"""
from __future__ import annotations

import pytest

from s3rules.cli import main
from test_batch import POLL, assert_clean_error, calls, flow, proxy, run  # noqa: F401

TOOLS = "public.ecr.aws/example/tools:1.4"
ALIGNER = "quay.io/biocontainers/bwa:0.7.18--he4a0461_0"

TWO_IMAGES = f'''
samples: "samples.csv"
root = "s3://BUCKET/out"
default:
    executor: batch
    queue: "QUEUE"
    container: "{TOOLS}"
    job_role: "ROLE"
rule all:
    input: expand("{{root}}/b/{{sample}}.txt")
rule a:
    output: "{{root}}/a/{{sample}}.txt"
    shell: "echo a {{sample}} | s3tool put {{output}}"
rule b:
    input: "{{root}}/a/{{sample}}.txt"
    output: "{{root}}/b/{{sample}}.txt"
    container: "{ALIGNER}"
    gpus: GPUS
    shell: "s3tool cat {{input}} | tr a-z A-Z | s3tool put {{output}}"
'''


class Registrations:
    """RegisterJobDefinition requests s3rules sends, seen through boto3's default session."""

    def __init__(self, calls):
        self.requests: list[dict] = []
        calls.events.register("provide-client-params.batch.RegisterJobDefinition",
                              lambda params, **_: self.requests.append(dict(params)))


def write(flow, text: str, samples: str = "AB", gpus: int = 0) -> None:
    (flow.dir / "samples.csv").write_text("sample\n" + "".join(f"{s}\n" for s in samples))
    flow.path.write_text(text.replace("BUCKET", flow.bucket).replace("QUEUE", flow.queue)
                         .replace("GPUS", str(gpus)).replace("ROLE", role(flow)))


def role(flow) -> str:
    """A role of this test's own: the server outlives the test, and so do the definitions it holds."""
    return f"arn:aws:iam::123456789012:role/jobs-{flow.bucket}"


def definitions_named(flow, name: str) -> list[dict]:
    return flow.batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]


def test_a_container_pipeline_registers_each_image_once_and_the_next_run_reuses_them(flow, calls, capsys):
    registered = Registrations(calls)
    write(flow, TWO_IMAGES)
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert flow.get("out/b/A.txt") == "A A\n" and flow.get("out/b/B.txt") == "A B\n"
    assert sorted(r["containerProperties"]["image"] for r in registered.requests) == sorted([TOOLS, ALIGNER])
    by_image = {r["containerProperties"]["image"]: r["jobDefinitionName"] for r in registered.requests}
    used = {label.split("-")[0]: request["jobDefinition"] for label, request in calls.by_label().items()}
    assert used == {"a": by_image[TOOLS], "b": by_image[ALIGNER]}
    for request in registered.requests:   # the role from default:, and nothing per job
        assert request["containerProperties"]["jobRoleArn"] == role(flow)
        assert "command" not in request["containerProperties"]
        assert request["tags"]["s3rules:image"] == request["containerProperties"]["image"]

    # a second run with more samples (and a third, forced) registers nothing: found by name
    registered.requests.clear()
    calls.reset()
    write(flow, TWO_IMAGES, samples="ABC")
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert main(["run", flow.bf, "-F", "a", *POLL]) == 0, capsys.readouterr().err
    assert registered.requests == []
    assert {r["jobDefinition"] for r in calls.submits} == set(by_image.values())
    assert calls.labels.count("a-C") == 2 and flow.get("out/b/C.txt") == "A C\n"
    for name in by_image.values():
        assert len(definitions_named(flow, name)) == 1, name   # one revision each, ever


def test_another_role_or_a_gpu_rule_is_another_definition_and_the_old_one_is_left_alone(flow, calls, capsys):
    registered = Registrations(calls)
    write(flow, TWO_IMAGES, samples="A")
    assert run(flow.bf) == 0, capsys.readouterr().err
    first = {r["jobDefinitionName"] for r in registered.requests}
    registered.requests.clear()
    write(flow, TWO_IMAGES.replace("ROLE", role(flow) + "-other"), samples="A", gpus=1)
    assert main(["run", flow.bf, "-F", *POLL]) == 0, capsys.readouterr().err
    names = {r["jobDefinitionName"]: r for r in registered.requests}
    assert len(names) == 2 and not names.keys() & first
    gpu = [r for r in names.values() if r["containerProperties"]["image"] == ALIGNER][0]
    assert gpu["jobDefinitionName"].endswith(gpu["tags"]["s3rules:definition"])
    assert "-gpu-" in gpu["jobDefinitionName"]
    assert {"type": "GPU", "value": "1"} in gpu["containerProperties"]["resourceRequirements"]
    for name in first:
        assert [d["status"] for d in definitions_named(flow, name)] == ["ACTIVE"]


def test_job_definition_wins_over_container(flow, calls, capsys):
    registered = Registrations(calls)
    write(flow, TWO_IMAGES.replace(f'    container: "{ALIGNER}"\n', f'    job_definition: "{flow.jd}"\n'),
          samples="A")
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert [r["containerProperties"]["image"] for r in registered.requests] == [TOOLS]
    assert calls.by_label()["b-A"]["jobDefinition"] == flow.jd


def test_a_container_job_whose_image_changed_is_rerun(flow, calls, capsys):
    write(flow, TWO_IMAGES, samples="A")
    assert run(flow.bf) == 0, capsys.readouterr().err
    calls.reset()
    write(flow, TWO_IMAGES.replace(ALIGNER, ALIGNER.replace("0.7.18", "0.7.19")), samples="A")
    assert main(["run", "-n", "--explain", flow.bf]) == 0
    out = capsys.readouterr().out
    assert "changed: command  b[sample=A]" in out
    assert f"job_definition: 'image {ALIGNER}' -> 'image {ALIGNER.replace('0.7.18', '0.7.19')}'" in out
    assert run(flow.bf) == 0, capsys.readouterr().err
    assert calls.labels == ["b-A"]


def test_a_refused_registration_is_a_clear_error_naming_the_permissions(flow, calls, proxy, capsys):
    proxy.script("RegisterJobDefinition", ["403"])
    write(flow, TWO_IMAGES, samples="A")
    assert run(flow.bf) == 2, (proxy.requests, capsys.readouterr())
    assert_clean_error(capsys.readouterr().err, f"registering a job definition for image {TOOLS!r}",
                       "batch:RegisterJobDefinition", "iam:PassRole")
    assert calls.submits == []


def test_a_role_that_is_not_an_arn_is_a_located_error(flow, capsys):
    write(flow, TWO_IMAGES.replace("ROLE", "s3rules-jobs"))
    assert run(flow.bf) == 2
    err = capsys.readouterr().err
    assert "Batchfile:8:15:" in err and "job_role must contain :role/" in err and "Traceback" not in err


def test_a_job_definition_named_by_revision_works_where_describe_only_knows_names(flow, calls, capsys):
    """moto's DescribeJobDefinitions looks ``name:revision`` up as a name and finds nothing: s3rules
    then lists the name and picks the revision, so the run goes ahead (no proxy here)."""
    revision = definitions_named(flow, flow.jd)[0]["revision"]
    assert flow.batch.describe_job_definitions(jobDefinitions=[f"{flow.jd}:{revision}"])["jobDefinitions"] == []
    write(flow, TWO_IMAGES.replace(f'    container: "{TOOLS}"\n', f'    job_definition: "{flow.jd}:{revision}"\n')
          .replace(f'    container: "{ALIGNER}"\n', ""), samples="A")
    assert run(flow.bf) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert {r["jobDefinition"] for r in calls.submits} == {f"{flow.jd}:{revision}"}
    write(flow, TWO_IMAGES.replace(f'    container: "{TOOLS}"\n', f'    job_definition: "{flow.jd}:{revision + 7}"\n')
          .replace(f'    container: "{ALIGNER}"\n', ""), samples="B")
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, f"job definition '{flow.jd}:{revision + 7}' does not exist")
