"""``s3rules report`` of a Batch run on the moto-based server (tests/aws_server.py runs its jobs as
local processes): Batch's own times (createdAt, startedAt, stoppedAt) for durations, a failed
job with its exit code and cause, costs at Fargate's list prices, and jobs that ended while
s3rules was away, whose times are asked of Batch."""
from __future__ import annotations

import json

import pytest

from s3rules.cli import main
from s3rules.settings import FARGATE_GIB_HOUR, FARGATE_VCPU_HOUR
from test_batch import POLL, calls, flow, run, table  # noqa: F401

FAILING_B = "sleep 1; if [ {sample} = B ]; then echo boom for {sample} >&2; exit 5; fi; "


def report(flow, capsys) -> dict:
    out = flow.dir / "report.json"
    assert main(["report", flow.bf, "--json", "-o", str(out)]) == 0, capsys.readouterr().err
    return json.loads(out.read_text())


@pytest.mark.parametrize("arrays", [False, True], ids=["single jobs", "arrays"])
def test_the_report_of_a_batch_run_with_a_failed_job(flow, calls, capsys, arrays):
    flow.write(samples="ABC", pre=FAILING_B, arrays=arrays)
    assert main(["run", flow.bf, "-k", "--poll-interval", "0.5"]) == 1
    ids = calls.ids()
    doc = report(flow, capsys)
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["up"]["states"] == {"done": 2, "failed": 1}
    assert rules["summary"]["states"] == {"failed": 1}   # never submitted: what it needs failed
    assert rules["summary"]["causes"] == {"dependency failed": 1} and rules["up"]["causes"] == {"application error": 1}
    jobs = {j["output"]: j for j in doc["jobs"]}
    described = flow.describe([ids["up-A"], ids["up-B"]])
    a = jobs[flow.url("out/up/A.txt")]
    assert a["where"] == f"batch:{ids['up-A']}"
    desc = described[ids["up-A"]]
    assert (a["queued"], a["started"], a["ended"]) == (desc["createdAt"] / 1000, desc["startedAt"] / 1000,
                                                       desc["stoppedAt"] / 1000)
    assert a["runtime"] == pytest.approx((desc["stoppedAt"] - desc["startedAt"]) / 1000, abs=0.002)
    assert a["runtime"] >= 0.2 and a.get("attempts", 1) == 1   # ListJobs (array children) gives no attempts
    expected = a["runtime"] / 3600 * (a["vcpus"] * FARGATE_VCPU_HOUR + a["memory"] / 1024 * FARGATE_GIB_HOUR)
    assert a["cost"] == pytest.approx(expected, rel=1e-6)
    assert doc["prices"]["default"] is True
    failure, blocked = doc["failures"]   # its own failures first
    assert blocked["rule"] == "summary" and blocked["upstream_failed"] and blocked["cause"] == "dependency failed"
    assert failure["rule"] == "up" and failure["wildcards"] == {"sample": "B"}
    assert failure["exit"] == 5 and failure["cause"] == "application error"
    assert any("boom for B" in line for line in failure["log_tail"])
    assert failure["where"] == f"batch:{ids['up-B']}"
    assert doc["runs"][-1]["executor"] == "batch" and doc["runs"][-1]["failed"] == 1


def test_jobs_that_ended_while_detached_are_done_with_batchs_times(flow, calls, capsys):
    flow.write(samples="AB", arrays=False)
    assert run(flow.bf, "--detach") == 0
    ids = calls.ids()
    flow.wait(list(ids.values()))
    doc = report(flow, capsys)
    assert {r["rule"]: r["states"] for r in doc["rules"]} == {"up": {"done": 2}, "summary": {"done": 1}}
    described = flow.describe(list(ids.values()))
    for job in doc["jobs"]:   # no run saw them end: their times are Batch's
        desc = described[job["where"].split(":", 1)[1]]
        assert job["ended"] == desc["stoppedAt"] / 1000 and job["runtime"] >= 0
    assert doc["runs"][-1]["detached"] is True


def test_the_html_report_of_a_batch_run_says_fargate_prices(flow, calls, capsys):
    flow.write(samples="A")
    assert run(flow.bf) == 0
    out = flow.dir / "r.html"
    assert main(["report", flow.bf, "-o", str(out)]) == 0
    page = out.read_text()
    assert "AWS Fargate&#39;s on-demand list prices" in page or "AWS Fargate's on-demand list prices" in page
    assert page.count('class="run') == 2   # up A and summary


def test_rules_whose_queue_buys_spot_capacity_are_marked(flow, capsys):
    ec2 = flow.env.server.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{flow.queue}-sg", Description="s3rules test", VpcId=vpc)["GroupId"]
    role = flow.batch.describe_compute_environments(computeEnvironments=[f"{flow.queue}-ce"])[
        "computeEnvironments"][0]["serviceRole"]
    ce = flow.batch.create_compute_environment(
        computeEnvironmentName=f"{flow.queue}-spot", type="MANAGED", state="ENABLED", serviceRole=role,
        computeResources={"type": "FARGATE_SPOT", "maxvCpus": 4, "subnets": [subnet], "securityGroupIds": [group]},
    )["computeEnvironmentArn"]
    flow.batch.create_job_queue(jobQueueName=f"{flow.queue}-spot", state="ENABLED", priority=1,
                                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    flow.write(samples="A")
    text = flow.path.read_text().replace("rule summary:", f'rule summary:\n    queue: "{flow.queue}-spot"')
    flow.path.write_text(text)
    doc = report(flow, capsys)
    assert {r["rule"]: r["spot"] for r in doc["rules"]} == {"up": False, "summary": True}
    assert doc["prices"]["spot_rules"] == ["summary"]
    out = flow.dir / "r.html"
    assert main(["report", flow.bf, "-o", str(out)]) == 0
    assert "On Spot capacity (summary)" in out.read_text()


def test_workflows_on_one_queue_share_its_listing_in_status(flow, calls, capsys):
    """README: several workflows "share one S3 listing cache and one Batch submitter, so those that
    ... use the same queue cost one listing of each between them"."""
    flow.write(samples="AB")
    second = flow.dir / "two" / "Batchfile"
    second.parent.mkdir()
    second.write_text(flow.path.read_text().replace('samples: "samples.csv"', 'samples: "../samples.csv"')
                      .replace("/out", "/out2"))
    listings = []
    calls.events.register("provide-client-params.batch.ListJobs", lambda params, **_: listings.append(params))
    assert main(["status", flow.bf]) == 0
    alone = len(listings)
    assert alone > 0
    listings.clear()
    assert main(["status", flow.bf, str(second)]) == 0
    assert len(listings) == alone   # the second workflow's jobs were looked up in the same listing
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split()[0] for r in rows[-3:]] == [flow.bf, str(second), "total"]


def test_packed_jobs_share_their_packs_time(flow, calls, capsys):
    flow.write(samples="ABC", pre="sleep 0.3; ")
    flow.path.write_text(flow.path.read_text().replace("rule up:", "rule up:\n    group: 3"))
    assert run(flow.bf) == 0
    doc = report(flow, capsys)
    up = [j for j in doc["jobs"] if j["rule"] == "up"]
    assert {j["packed"] for j in up} == {3} and len({j["where"] for j in up}) == 3   # one pack, three jobs
    pack = flow.describe([up[0]["where"][6:].split("#")[0]])
    desc = next(iter(pack.values()))
    whole = (desc["stoppedAt"] - desc["startedAt"]) / 1000
    assert whole >= 0.9   # three jobs of 0.3 s in turn
    for job in up:
        assert job["runtime"] == pytest.approx(whole / 3, abs=0.002)
    rule = {r["rule"]: r for r in doc["rules"]}["up"]
    assert rule["vcpu_hours"] == pytest.approx(sum(j["vcpus"] * j["runtime"] for j in up) / 3600, rel=1e-6)


def test_a_job_that_failed_while_detached_counts_failed_in_status_and_the_report(flow, calls, capsys):
    flow.write(samples="AB", pre=FAILING_B, arrays=False)
    assert run(flow.bf, "--detach") == 0
    ids = calls.ids()
    flow.wait([ids["up-A"], ids["up-B"]])
    capsys.readouterr()
    assert main(["status", flow.bf]) == 0
    out = capsys.readouterr().out
    assert "failed" in out, out
    assert table(out.split("\n\n")[0])["up"]["failed"] == 1 and table(out.split("\n\n")[0])["up"]["done"] == 1
    doc = report(flow, capsys)
    assert {r["rule"]: r["states"] for r in doc["rules"]}["up"] == {"done": 1, "failed": 1}
    failure = next(f for f in doc["failures"] if f["rule"] == "up")
    assert failure["wildcards"] == {"sample": "B"} and failure["exit"] == 5
    assert failure["cause"] == "application error" and failure["where"] == f"batch:{ids['up-B']}"
    assert any("boom for B" in line for line in failure["log_tail"])   # from CloudWatch: no run saw it fail


def test_every_attempt_batch_made_is_priced(flow, calls, aws_env, capsys):
    """A Spot reclaim Batch retried: the job's cost covers both attempts, its runtime the last."""
    flow.write(samples="A", pre="sleep 0.3; ", arrays=False)
    aws_env.server.fault("reclaim", lambda job: "data/A.txt" in job.command, times=1)
    assert run(flow.bf) == 0, capsys.readouterr().err
    doc = report(flow, capsys)
    up = next(j for j in doc["jobs"] if j["rule"] == "up")
    attempts = flow.describe([up["where"][6:]])[up["where"][6:]]["attempts"]
    assert up["attempts"] == len(attempts) == 2
    billed = sum(a["stoppedAt"] - a["startedAt"] for a in attempts) / 1000
    assert up["billed"] == pytest.approx(billed, abs=0.002) and up["billed"] > up["runtime"]
    assert up["vcpu_hours"] == pytest.approx(up["vcpus"] * up["billed"] / 3600, rel=1e-6)


def test_packed_jobs_that_ended_while_detached_share_their_packs_time(flow, calls, capsys):
    flow.write(samples="ABC", pre="sleep 0.3; ")
    flow.path.write_text(flow.path.read_text().replace("rule up:", "rule up:\n    group: 3"))
    assert run(flow.bf, "--detach", "up") == 0
    pack = next(p["jobId"] for p in calls.submits)
    flow.wait([pack])
    up = [j for j in report(flow, capsys)["jobs"] if j["rule"] == "up"]
    desc = flow.describe([pack])[pack]
    assert {j["packed"] for j in up} == {3} and {j["state"] for j in up} == {"done"}
    for job in up:
        assert job["runtime"] == pytest.approx((desc["stoppedAt"] - desc["startedAt"]) / 3000, abs=0.002)
