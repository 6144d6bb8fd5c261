"""Checkpoints on AWS Batch (moto's server; jobs run as local processes): a list read with
``lines()`` from an S3 object a rule makes. Attached, the run makes it, plans again and carries
on; with ``--detach`` it submits what it can and says to run again."""
from __future__ import annotations

from test_batch import POLL, calls, flow  # noqa: F401  (fixtures)
from s3rules.cli import main

CHECKPOINT = '''
chrom = lines("{root}/list.txt")
rule all:
    input: "{root}/merged.txt"
rule make_list:
    input: "s3://BUCKET/data/A.txt"
    output: "{root}/list.txt"
    shell: "printf 'a\\\\nb\\\\n' | s3tool put {output}"
rule per_chrom:
    output: "{root}/per/{chrom}.txt"
    shell: "echo {chrom} | s3tool put {output}"
rule merge:
    input: expand("{root}/per/{chrom}.txt")
    output: "{root}/merged.txt"
    shell: "(s3tool cat {input[0]}; s3tool cat {input[1]}) | s3tool put {output}"
'''


def test_attached_a_checkpoint_object_is_made_then_the_rest_runs(flow, calls, capsys):
    flow.write(CHECKPOINT)
    assert main(["run", str(flow.bf), *POLL]) == 0
    assert flow.get("out/list.txt") == "a\nb\n" and flow.get("out/merged.txt") == "a\nb\n"
    assert "out/list.txt made: planning the rest" in capsys.readouterr().err
    calls.reset()
    assert main(["run", str(flow.bf), *POLL]) == 0
    assert calls.labels == []   # a second run submits nothing


def test_detached_it_submits_what_it_can_and_says_to_run_again(flow, calls, capsys):
    flow.write(CHECKPOINT)
    assert main(["run", str(flow.bf), "--detach", *POLL]) == 0
    err = capsys.readouterr().err
    assert "wait for s3://" in err and "list.txt; run s3rules again once it is made" in err
    assert [label.split("[")[0] for label in calls.labels] == ["make_list"]
    flow.wait([j["jobId"] for j in calls.jobs])
    assert main(["run", str(flow.bf), *POLL]) == 0
    assert flow.get("out/merged.txt") == "a\nb\n"
