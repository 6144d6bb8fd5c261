"""Array jobs on Batch end to end (moto's server, jobs really run; see tests/test_batch.py).

The pending jobs of one rule go up as one array job; downstream per-sample arrays wait N_TO_N,
an aggregate waits for the array parent; children are reused, never submitted twice; polling
describes parents, not children.
"""
from __future__ import annotations

import random
import string

from s3rules.cli import main
from test_batch import PIPELINE, calls, flow, gate, proxy, run, table  # noqa: F401  (fixtures)

# tests/test_batch.py's pipeline with a per-sample rule between "up" and the summary
THREE_RULES = PIPELINE.replace('expand("{root}/up/{sample}.txt")', 'expand("{root}/mid/{sample}.txt")') + '''
rule mid:
    input: "{root}/up/{sample}.txt"
    output: "{root}/mid/{sample}.txt"
    shell: "(s3tool cat {input}; echo {sample}) | s3tool put {output}"
'''


def summary_text(samples) -> str:
    return "".join(f"HELLO {s.upper()}\n{s}\n" for s in samples)


def test_each_rule_goes_up_as_one_array_wired_n_to_n(flow, calls, capsys):
    samples = ["S1", "S2", "S3", "S4", "S5"]
    flow.write(THREE_RULES, samples=samples)
    flow.put("out/up/S2.txt", "HELLO S2\n")        # done: up has 4 children, mid has 5
    assert run(flow.bf) == 0
    assert flow.get("out/summary.txt") == summary_text(samples)
    # 10 jobs in 4 SubmitJob calls: mid[S2] has nothing to wait for, so it goes alone and the
    # other 4 mid jobs line up with up's 4 children
    assert len(calls.submits) == 4
    up, mid = calls.arrays
    ids = calls.ids()
    assert up["arrayProperties"] == mid["arrayProperties"] == {"size": 4} and "dependsOn" not in up
    assert mid["dependsOn"] == [{"jobId": up["jobId"], "type": "N_TO_N"}]
    assert [ids[f"mid-{s}"].split(":")[1] for s in ("S1", "S3", "S4", "S5")] == \
        [ids[f"up-{s}"].split(":")[1] for s in ("S1", "S3", "S4", "S5")]
    assert "dependsOn" not in calls.by_label()["mid-S2"]
    summary = calls.by_label()["summary"]
    assert sorted(d["jobId"] for d in summary["dependsOn"]) == sorted([mid["jobId"], ids["mid-S2"]])
    assert sorted(calls.labels) == sorted([f"up-{s}" for s in samples if s != "S2"]
                                          + [f"mid-{s}" for s in samples] + ["summary"])

    calls.reset()
    flow.write(THREE_RULES, samples=samples, data=False)
    assert run(flow.bf, "-F") == 0                   # everything again: 5 and 5
    up, mid = calls.arrays
    assert up["arrayProperties"] == mid["arrayProperties"] == {"size": 5}
    assert mid["dependsOn"] == [{"jobId": up["jobId"], "type": "N_TO_N"}]
    assert flow.get("out/summary.txt") == summary_text(samples)


def test_values_too_long_to_go_inline_are_fetched_from_the_manifest(flow, calls):
    rng = random.Random(7)
    samples = ["".join(rng.choices(string.ascii_lowercase, k=800)) for _ in range(12)]   # 9,600 characters
    rules = '''
rule all:
    input: expand("{root}/up/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    shell: "s3tool cat {input} | tr a-z A-Z | s3tool put {output}"
'''
    flow.write(rules, samples=samples)
    flow.path.write_text(flow.path.read_text().replace(
        "default:\n", 'default:\n    fetch_command: "s3tool cat {url}"\n'))
    assert run(flow.bf) == 0
    [array] = calls.submits
    assert array["arrayProperties"] == {"size": 12}
    script = array["containerOverrides"]["command"][-1]
    assert "s3tool cat" in script and ".values" in script and samples[0] not in script
    for s in (samples[0], samples[11]):
        assert flow.get(f"out/up/{s}.txt") == f"HELLO {s.upper()}\n"


FAILS_FOR_S2 = THREE_RULES.replace(
    "PRE ", "if [ {sample} = S2 ]; then echo 'bad input for S2' >&2; exit 3; fi; ")


def test_a_failed_child_stops_only_its_own_downstream(flow, calls, capsys):
    samples = ["S1", "S2", "S3"]
    flow.write(FAILS_FOR_S2, samples=samples)
    assert run(flow.bf) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(l for l in err.splitlines() if l.startswith("job failed:"))
    up_parent = calls.submits[0]["jobId"]
    assert "rule up (sample=S2)" in line and "exit code 3" in line and f"{up_parent}:1" in line
    assert "| bad input for S2" in err
    assert "2 jobs were not run because a job they need failed" in err   # mid[S2] and the summary
    assert flow.get("out/mid/S1.txt") == "HELLO S1\nS1\n" and flow.get("out/mid/S3.txt") == "HELLO S3\nS3\n"
    assert flow.get("out/mid/S2.txt") is None and flow.get("out/summary.txt") is None

    calls.reset()
    flow.write(THREE_RULES, samples=samples, data=False)   # fixed: only S2's jobs and the summary
    assert run(flow.bf, "--rerun-triggers", "none") == 0   # (the fix changed every up job's command)
    assert sorted(calls.labels) == ["mid-S2", "summary", "up-S2"]
    assert flow.get("out/summary.txt") == summary_text(samples)


def test_children_in_flight_are_reused_by_the_next_run_even_with_new_samples(flow, calls, gate, capsys):
    flow.write(THREE_RULES, samples=["S1", "S2"], pre=gate.wait)   # in flight until the next run reused them
    assert run(flow.bf, "--detach") == 0
    first = calls.ids()
    calls.reset()
    flow.write(THREE_RULES, samples=["S1", "S2", "S3"], pre=gate.wait)   # one more sample
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0
    assert gate.is_open
    # S1 and S2 are in flight as array children: only S3's jobs and the new summary go up
    assert sorted(calls.labels) == ["mid-S3", "summary", "up-S3"]
    assert flow.get("out/summary.txt") == summary_text(["S1", "S2", "S3"])
    summary = calls.by_label()["summary"]
    old_mid = first["mid-S1"].split(":")[0]
    assert {"jobId": old_mid} in summary["dependsOn"]   # the reused children's array, whole


def test_a_run_killed_before_it_learned_the_arrays_id_makes_no_duplicate(flow, calls, gate, capsys):
    """The first run dies between SubmitJob and its answer: the lease it leaves names the array as
    about to be submitted, with no id. The next run waits out ListJobs' lag (15 s, the real wait),
    asks for that name, and reuses the array's children, still in flight."""
    flow.write(THREE_RULES, samples=["S1", "S2", "S3"], pre=gate.wait)

    def interrupt(**_):   # Batch made the first array, but this process never learns its id
        raise KeyboardInterrupt

    calls.events.register("after-call.batch.SubmitJob", interrupt)
    assert run(flow.bf) == 130
    calls.events.unregister("after-call.batch.SubmitJob", interrupt)
    assert len(calls.submits) == 1
    made = calls.submits[0]["jobName"]
    calls.reset()
    looked_up = []
    calls.events.register("provide-client-params.batch.ListJobs", lambda params, **_: looked_up.extend(
        v for f in params.get("filters", []) if f["name"] == "JOB_NAME" for v in f["values"]))
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0
    assert gate.is_open and made in looked_up       # the name left on the lease was asked for
    assert sorted(calls.labels) == ["mid-S1", "mid-S2", "mid-S3", "summary"]   # up's children reused
    assert made not in [p["jobName"] for p in calls.submits]
    assert flow.get("out/summary.txt") == summary_text(["S1", "S2", "S3"])


def test_watching_describes_array_parents_not_children(flow, calls):
    samples = [f"S{i:02d}" for i in range(12)]
    flow.write(THREE_RULES, samples=samples)
    described: list[list[str]] = []
    listed: list[dict] = []
    calls.events.register("provide-client-params.batch.DescribeJobs",
                          lambda params, **_: described.append(list(params["jobs"])))
    calls.events.register("provide-client-params.batch.ListJobs", lambda params, **_: listed.append(dict(params)))
    assert run(flow.bf) == 0
    assert len(calls.submits) == 3                   # 25 jobs
    units = {p["jobId"] for p in calls.submits}
    assert described and all(set(ids) <= units for ids in described)   # never a child, one call a poll
    # children are listed only for an array whose statusSummary changed, by final state
    child_listings = [p for p in listed if "arrayJobId" in p]
    assert child_listings and all(p["jobStatus"] in ("SUCCEEDED", "FAILED") for p in child_listings)
    assert flow.get("out/summary.txt") == summary_text(samples)


def test_status_and_logs_see_array_children(flow, calls, gate, capsys):
    flow.write(THREE_RULES, samples=["S1", "S2"], pre="echo 'working on {sample}' >&2; " + gate.wait)
    assert run(flow.bf, "--detach") == 0
    ids = calls.ids()
    flow.wait_status([ids["up-S1"], ids["up-S2"]], {"RUNNING"})            # held at the gate
    flow.wait_status([ids["mid-S1"], ids["mid-S2"], ids["summary"]], {"PENDING"})   # waiting for them
    capsys.readouterr()
    assert main(["status", flow.bf]) == 0
    idle = dict.fromkeys(["done", "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "to_do"], 0)
    assert table(capsys.readouterr().out) == {      # every child counted once, in its state
        "up": {**idle, "RUNNING": 2, "total": 2},
        "mid": {**idle, "PENDING": 2, "total": 2},
        "summary": {**idle, "PENDING": 1, "total": 1},
        "total": {**idle, "RUNNING": 2, "PENDING": 3, "total": 5},
    }
    gate.open()
    assert run(flow.bf) == 0
    capsys.readouterr()
    assert main(["logs", flow.bf, flow.url("out/up/S2.txt")]) == 0
    assert "working on S2" in capsys.readouterr().out


def test_a_child_listing_that_lags_behind_the_status_summary_is_asked_again(flow, calls, proxy):
    """ListJobs may not show yet a child that the array's statusSummary already counts."""
    flow.write(THREE_RULES, samples=["S1", "S2", "S3"])
    hidden, listings, seen = [], [], set()

    def lag(doc, info):
        """The first listing where all 3 children of an array are done misses one that no earlier
        listing showed (one already seen would need no listing again: s3rules knows it ended)."""
        array = info["request"].get("arrayJobId")
        if not array:
            return
        listings.append(array)
        children = [j for j in doc.get("jobSummaryList", []) if ":" in j["jobId"]]
        fresh = [j for j in children if j["jobId"] not in seen]
        if len(children) == 3 and fresh and not hidden:
            hidden.append((len(listings), fresh[-1]["jobId"]))
            doc["jobSummaryList"].remove(fresh[-1])
            children.remove(fresh[-1])
        seen.update(j["jobId"] for j in children)

    proxy.rewrite("ListJobs", lag)
    assert run(flow.bf) == 0
    assert len(hidden) == 1                              # one child was hidden once
    after, child = hidden[0]
    assert child.split(":")[0] in listings[after:]       # and its array's children were listed again
    assert flow.get("out/summary.txt") == summary_text(["S1", "S2", "S3"])
