"""The ledger on AWS Batch: jobs that end while no s3rules watches are settled by the next run."""
from __future__ import annotations

import json

import pytest

from s3rules.cli import main
from test_batch import POLL, calls, flow, proxy, run  # noqa: F401 - fixtures

HALF = '''
rule all:
    input: expand("{root}/up/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    shell: "s3tool cat {input} | tr a-z A-Z | s3tool put {output}; if [ {sample} = B ] && s3tool cat s3://BUCKET/broken; then exit 3; fi"
'''


def dry_run(flow, capsys) -> dict[str, str]:
    capsys.readouterr()
    assert main(["run", "-n", "--json", str(flow.bf)]) == 0
    return {f"{j['rule']}[{j['wildcards'].get('sample', '')}]": j["reason"]
            for j in json.loads(capsys.readouterr().out)["jobs"]}


@pytest.mark.parametrize("arrays", [True, False], ids=["array", "single-jobs"])
def test_a_job_that_fails_while_detached_is_incomplete_on_the_next_dry_run(flow, calls, capsys, arrays):
    """B writes its output, then fails, with no s3rules watching: its output exists but must not
    count as done; A, which succeeded meanwhile, is recorded as finished and not run again."""
    flow.write(HALF, arrays=arrays)
    flow.put("broken", "yes\n")
    assert run(flow.bf, "--detach") == 0
    flow.wait(calls.ids().values())
    assert flow.get("out/up/B.txt") == "HELLO B\n"          # written, then the job failed
    assert dry_run(flow, capsys) == {"up[B]": "incomplete"}
    names = [o["Key"] for o in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/ledger/")["Contents"]]
    states = sorted(name.rsplit("/", 1)[1].split(".")[2] for name in names)
    assert states == ["f", "s"]                              # A finished (settled), B started only
    calls.reset()
    flow.s3.delete_object(Bucket=flow.bucket, Key="broken")
    assert run(flow.bf) == 0
    assert calls.labels == ["up-B"]                          # A is not paid for twice
    assert dry_run(flow, capsys) == {}


def test_each_batch_job_costs_three_ledger_puts_and_a_plan_one_listing(flow, calls, proxy, capsys):
    """README, Cost of the bookkeeping: three small PUTs per job (about to be submitted, its job id
    once submitted, finished), superseded records deleted in bulk, one listing per rule to read."""
    flow.write(HALF, samples="AB", arrays=False)
    puts: list[str] = []
    proxy.before_forward("PutObject", lambda n, info: puts.append(info["path"]) if "/.s3rules/ledger/" in info["path"]
                         else None)
    assert run(flow.bf) == 0
    states = sorted(p.rsplit("/", 1)[1].split(".")[2] for p in puts)
    assert states == ["f", "f", "s", "s", "s", "s"]          # per job: started, started with its id, finished
    names = [o["Key"] for o in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/ledger/")["Contents"]]
    assert len(names) == 2 and all(".f." in n for n in names)   # the superseded ones were deleted
    proxy.requests.clear()
    assert dry_run(flow, capsys) == {}
    # the inputs' prefix and the outputs' share the bucket's root, listed once; the rule's records
    assert proxy.requests["ListObjectsV2"] == 2


def test_a_failed_forced_rerun_gives_an_s3_output_its_whole_old_record_back(flow, capsys):
    """After -F with a changed command fails, the output on S3 is the old one and so is its record:
    --explain compares today's command with the recorded one, not with nothing."""
    flow.write('''
rule all:
    input: "{root}/x.txt"
rule x:
    output: "{root}/x.txt"
    stage: true
    shell: "echo VERSION > {output}"
''')
    flow.path.write_text(flow.path.read_text().replace("executor: batch", "executor: local"))
    assert run(flow.bf) == 0, capsys.readouterr().err
    flow.path.write_text(flow.path.read_text().replace('"echo VERSION > {output}"',
                                                       '"echo VERSION2 > {output}; exit 3"'))
    assert run(flow.bf, "-F") == 1
    assert flow.get("out/x.txt") == "VERSION\n"
    capsys.readouterr()
    assert main(["run", "-n", "--explain", flow.bf]) == 0
    out = capsys.readouterr().out
    assert "changed: command" in out
    assert "-echo VERSION > " in out and "+echo VERSION2 > " in out, out
