"""aws/grouping.py without a server: which jobs go up now, and which go together as arrays."""
import pytest

from s3rules.aws.grouping import BatchHandle, may_submit, next_wave, units
from s3rules.aws.jobspec import job_spec
from s3rules.planner import Planner
from workflows import load

BATCHFILE = """
samples: "samples.csv"
default:
    executor: batch
    queue: "q"
    job_definition: "jd"
rule a:
    output: "s3://b/a/{sample}.txt"
    shell: "echo {sample} > {output}"
rule b:
    input: "s3://b/a/{sample}.txt"
    output: "s3://b/b/{sample}.txt"
    shell: "cp {input} {output}"
rule c:
    input: "s3://b/a/{sample}.txt"
    output: "s3://b/c/{sample}.txt"
    array_size: 2
    shell: "cp {input} {output}"
rule alone:
    input: "s3://b/a/{sample}.txt"
    output: "s3://b/alone/{sample}.txt"
    array_size: 1
    shell: "cp {input} {output}"
"""
HOMES = {"q": "s3://b/.s3rules/jobs"}


@pytest.fixture
def jobs(tmp_path):
    sheet = "sample\n" + "".join(f"S{i}\n" for i in range(5))
    wf = load(tmp_path, BATCHFILE, sheet)
    planner = Planner(wf)
    return {name: planner.jobs_of_rule(wf.rules[name]) for name in ("a", "b", "c", "alone")}


def handles(jobs, upstream=()):
    return [BatchHandle(job, job_spec(job), [u] if u else []) for job, u in
            zip(jobs, list(upstream) or [None] * len(jobs))]


def submitted(hs, parent):
    for i, h in enumerate(hs):
        h.job_id, h.status = f"{parent}:{i}", "RUNNING"
    return hs


def test_jobs_of_one_rule_behind_the_same_array_go_up_as_one_array_in_upstream_order(jobs):
    ups = submitted(handles(jobs["a"]), "A")
    downs = handles(jobs["b"], ups)
    [(group, array)] = units(list(reversed(downs)), HOMES)
    assert array is not None and [h.job for h in group] == jobs["b"]
    assert len(array.children) == 5 and array.queue == "q"


def test_without_a_home_on_s3_or_with_array_size_1_every_job_goes_alone(jobs):
    ups = submitted(handles(jobs["a"]), "A")
    assert all(array is None and len(group) == 1 for group, array in units(handles(jobs["b"], ups), {}))
    assert all(array is None for _, array in units(handles(jobs["alone"], ups), HOMES))


def test_array_size_cuts_arrays_and_a_lone_rest_goes_alone(jobs):
    ups = submitted(handles(jobs["a"]), "A")
    out = units(handles(jobs["c"], ups), HOMES)
    assert sorted(len(g) for g, a in out if a is not None) == [2, 2]
    assert [len(g) for g, a in out if a is None] == [1]


def test_jobs_behind_a_failed_job_go_alone_to_be_reported(jobs):
    ups = submitted(handles(jobs["a"]), "A")
    ups[0].status = "FAILED"
    out = units(handles(jobs["b"], ups), HOMES)
    assert [(len(g), a is None) for g, a in out if g[0].upstream[0] is ups[0]] == [(1, True)]


def test_may_submit_when_depends_on_fits_in_twenty(jobs):
    def behind(n):
        ups = handles(jobs["a"][:1] * n)
        for i, u in enumerate(ups):
            u.job_id, u.status = f"job{i}", "RUNNING"
        h = handles(jobs["b"][:1])[0]
        h.upstream = ups
        return h, ups
    assert may_submit(behind(20)[0]) and not may_submit(behind(21)[0])
    h, ups = behind(21)
    ups[0].status = "SUCCEEDED"          # finished jobs need no dependsOn
    assert may_submit(h)
    h, ups = behind(21)
    ups[3].status = "FAILED"             # to be reported at once
    assert may_submit(h)
    h, ups = behind(1)
    ups[0].job_id, ups[0].status = None, "WAITING"   # held itself: wait for it
    assert not may_submit(h)


def test_next_wave_takes_jobs_whose_upstream_all_have_ids_or_finished(jobs):
    ups = handles(jobs["a"][:3])
    ups[0].job_id = "x"
    ups[1].status = "SUCCEEDED"
    downs = handles(jobs["b"][:3], ups)
    assert next_wave(downs) == downs[:2]
    assert next_wave(ups) == ups


def test_arrays_group_only_jobs_with_the_same_resources(tmp_path):
    """An array's children all run with its first child's resources: a job that reads other
    resources from its row goes in another array (or alone), and its SubmitJob asks for them."""
    from s3rules.aws.arrays import array_request
    text = BATCHFILE.replace('samples: "samples.csv"', 'samples: "samples.csv"\n').replace(
        '    output: "s3://b/a/{sample}.txt"\n', '    output: "s3://b/a/{sample}.txt"\n    memory: "{mem}"\n'
        '    vcpus: "{cpu}"\n')
    sheet = "sample,mem,cpu\n" + "".join(f"S{i},{1000 if i < 3 else 2000},{1 if i != 4 else 2}\n" for i in range(5))
    wf = load(tmp_path, text, sheet)
    a = Planner(wf).jobs_of_rule(wf.rules["a"])
    out = units(handles(a), HOMES)
    assert sorted(sorted(h.job.values[0] for h in g) for g, _ in out) == [["S0", "S1", "S2"], ["S3"], ["S4"]]
    (group, array), = [(g, arr) for g, arr in out if arr is not None]
    memory = [r for r in array_request(array, [])["containerOverrides"]["resourceRequirements"] if r["type"] == "MEMORY"]
    assert memory == [{"type": "MEMORY", "value": "1000"}]
    assert {h.spec.memory for g, _ in out for h in g if h.job.values[0] in ("S3", "S4")} == {2000}
    assert [h.spec.vcpus for g, _ in out for h in g if h.job.values[0] == "S4"] == [2]
