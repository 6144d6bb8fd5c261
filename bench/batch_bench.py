#!/usr/bin/env python3
"""Batch API calls: submitting N pending jobs, and one poll of N active jobs.

A workflow with three per-sample rules and one aggregate (``a -> b -> c -> summary``, outputs
on S3) is run with ``s3rules run --detach`` against moto's server (``ThreadedMotoServer`` on
127.0.0.1 in this process), once with array jobs (the default) and once with ``array_size: 1``
(every job alone, which is what a one-SubmitJob-per-job executor does). Every AWS request
s3rules sends is counted with botocore event hooks on boto3's default session, by operation.

Then the same workflow is run again attached: every job is in flight, so the run reuses them
all and watches; the Batch calls of each poll are counted over three polls, then the run is
interrupted (it detaches, as on Ctrl-C).

moto's Batch would start a thread per job (and per array child); this bench stops that by
replacing ``moto.batch.models.Job.start`` with a no-op in this process, so every job stays
SUBMITTED: the server still stores, lists and describes them. moto returns every ListJobs
result in one page, so the ListJobs figures are per state, not per 1,000 jobs as on AWS.

    python bench/batch_bench.py                 # 10,000 and 100,000 pending jobs
    python bench/batch_bench.py --jobs 30000
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
             "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
BUCKET = "bench-batch"
POLLS = 3

BATCHFILE = '''\
samples: "samples.csv"
root = "s3://{bucket}/{run}"
default:
    executor: batch
    queue: "{queue}"
    job_definition: "bench-jd"
{extra}
rule all:
    input: "{{root}}/summary.txt"
rule a:
    output: "{{root}}/a/{{sample}}.txt"
    shell: "echo {{sample}} > /tmp/x && aws s3 cp /tmp/x {{output}}"
rule b:
    input: "{{root}}/a/{{sample}}.txt"
    output: "{{root}}/b/{{sample}}.txt"
    shell: "aws s3 cp {{input}} {{output}}"
rule c:
    input: "{{root}}/b/{{sample}}.txt"
    output: "{{root}}/c/{{sample}}.txt"
    shell: "aws s3 cp {{input}} {{output}}"
rule summary:
    input: expand("{{root}}/c/{{sample}}.txt")
    output: "{{root}}/summary.txt"
    shell: "echo {{input}} | wc -w > /tmp/n && aws s3 cp /tmp/n {{output}}"
'''


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def start_server():
    import moto.batch.models as bm
    from moto.server import ThreadedMotoServer
    bm.Job.start = lambda self, *a, **k: None     # jobs stay SUBMITTED: no thread per job
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for var in UNSET_ENV:
        os.environ.pop(var, None)
    empty = Path(tempfile.mkdtemp()) / "empty"
    empty.write_text("")
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(empty),
                       "AWS_SHARED_CREDENTIALS_FILE": str(empty)})
    return server


def set_up_batch(queue: str) -> None:
    import boto3
    session = boto3.session.Session()
    session.client("s3").create_bucket(Bucket=BUCKET)
    iam, batch = session.client("iam"), session.client("batch")
    role = iam.create_role(RoleName="bench-batch-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "batch.amazonaws.com"}}]}))["Role"]["Arn"]
    ce = batch.create_compute_environment(computeEnvironmentName="bench-ce", type="UNMANAGED", state="ENABLED",
                                          serviceRole=role)["computeEnvironmentArn"]
    batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    batch.register_job_definition(jobDefinitionName="bench-jd", type="container",
                                  containerProperties={"image": "bench", "command": ["true"],
                                                       "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                                                {"type": "MEMORY", "value": "512"}]})


class Calls:
    """AWS requests s3rules sends, by service and operation, seen on boto3's default session."""

    def __init__(self):
        import boto3
        boto3.setup_default_session()
        self.counts: Counter = Counter()
        self.batch_times: list[float] = []
        boto3.DEFAULT_SESSION.events.register("before-send", self._sent)

    def _sent(self, event_name, **_):
        self.counts[event_name.split(".")[-1]] += 1   # "before-send.batch.SubmitJob": once per request sent
        if event_name.split(".")[1] == "batch":
            self.batch_times.append(time.monotonic())

    def busiest_second(self, since: float = 0.0) -> int:
        """The most Batch requests sent within any one second."""
        times = [t for t in self.batch_times if t >= since]
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] < t - 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best

    def snapshot(self) -> Counter:
        return Counter(self.counts)


def write_workflow(root: Path, run: str, samples: int, queue: str, arrays: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "samples.csv", "w") as f:
        f.write("sample\n")
        f.writelines(f"S{i:07d}\n" for i in range(samples))
    extra = "" if arrays else "    array_size: 1\n"
    path = root / "Batchfile"
    path.write_text(BATCHFILE.format(bucket=BUCKET, run=run, queue=queue, extra=extra))
    return path


def measure(jobs: int, arrays: bool, queue: str, tmp: Path, calls: Calls) -> dict:
    from s3rules.cli import main
    from s3rules.aws.watch import Watch
    samples = math.ceil((jobs - 1) / 3)
    run_name = f"{'arrays' if arrays else 'single'}-{jobs}"
    bf = write_workflow(tmp / run_name, run_name, samples, queue, arrays)
    pending = samples * 3 + 1
    before = calls.snapshot()
    started = time.monotonic()
    t0 = time.perf_counter()
    code = main(["run", str(bf), "--detach", "-q"])
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"s3rules run --detach exited {code}")
    submitted = calls.snapshot() - before

    # re-attach: everything is in flight; count each poll's calls, then interrupt
    polls: list[Counter] = []
    original = Watch.poll

    def counted(self):
        start = calls.snapshot()
        try:
            return original(self)
        finally:
            polls.append(calls.snapshot() - start)
            if len(polls) >= POLLS:
                raise KeyboardInterrupt

    Watch.poll = counted
    before = calls.snapshot()
    t0 = time.perf_counter()
    try:
        main(["run", str(bf), "-q", "--poll-interval", "0.01"])
    finally:
        Watch.poll = original
    reattach = calls.snapshot() - before
    for p in polls:
        reattach -= p
    return {"jobs": pending, "arrays": arrays, "wall": wall, "submitted": submitted, "polls": polls,
            "reattach": reattach, "reattach_wall": time.perf_counter() - t0,
            "busiest": calls.busiest_second(started)}


def per_thousand(n: int, jobs: int) -> str:
    return f"{n * 1000 / jobs:.2f}"


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="10000,100000", help="pending jobs per run, comma-separated")
    parser.add_argument("--single-max", type=int, default=10_000,
                        help="largest size also run with array_size: 1 (default 10000)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.jobs.split(",")]
    server = start_server()
    tmp = Path(tempfile.mkdtemp(prefix="s3rules-batch-bench-"))
    try:
        rows = []
        for i, jobs in enumerate(sizes):
            for arrays in (True, False):
                if not arrays and jobs > args.single_max:
                    continue
                queue = f"bench-q-{i}-{'a' if arrays else 's'}"
                set_up_batch(queue) if not rows else _queue_only(queue)
                calls = Calls()
                log(f"[{jobs:,} jobs, {'arrays' if arrays else 'one job per SubmitJob'}] ...")
                rows.append(measure(jobs, arrays, queue, tmp, calls))
                r = rows[-1]
                log(f"  submitted in {r['wall']:.1f} s: {dict(r['submitted'])}")
                log(f"  polls: {[dict(p) for p in r['polls']]}")
        report(rows)
    finally:
        server.stop()
    return 0


def _queue_only(queue: str) -> None:
    import boto3
    batch = boto3.session.Session().client("batch")
    ce = batch.describe_compute_environments(computeEnvironments=["bench-ce"])["computeEnvironments"][0]
    batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])


def report(rows: list[dict]) -> None:
    import platform

    import s3rules
    print(f"\ns3rules Batch API bench (s3rules {getattr(s3rules, '__version__', '?')}; Python "
          f"{platform.python_version()}; {os.cpu_count()} CPUs; moto's server on 127.0.0.1, jobs kept SUBMITTED)")
    print("pipeline a -> b -> c per sample + summary; `s3rules run --detach`, then re-attached for "
          f"{POLLS} polls\n")
    head = (f"{'pending':>8}  {'mode':<7} {'SubmitJob':>9} {'/1k jobs':>8} {'all Batch':>9} {'/1k jobs':>8} "
            f"{'S3 PUT':>6} {'submit s':>8}  {'DescribeJobs/poll':>17} {'other/poll':>10} {'max req/s':>9}")
    print(head)
    batch_ops = ("SubmitJob", "ListJobs", "DescribeJobs", "DescribeJobQueues", "DescribeJobDefinitions",
                 "TerminateJob")
    for r in rows:
        s = r["submitted"]
        batch_calls = sum(s[o] for o in batch_ops)
        describe = max(p["DescribeJobs"] for p in r["polls"])
        other = max(sum(p.values()) - p["DescribeJobs"] for p in r["polls"])
        print(f"{r['jobs']:>8,}  {'arrays' if r['arrays'] else 'single':<7} {s['SubmitJob']:>9,} "
              f"{per_thousand(s['SubmitJob'], r['jobs']):>8} {batch_calls:>9,} {per_thousand(batch_calls, r['jobs']):>8} "
              f"{s['PutObject']:>6,} {r['wall']:>8.1f}  {describe:>17,} {other:>10,} {r['busiest']:>9,}")
    print()
    for r in rows:
        if not r["arrays"]:
            continue
        n = r["jobs"]
        per_rule = math.ceil((n - 1) / 3 / 10_000)
        want = per_rule * 3 + 1
        got = r["submitted"]["SubmitJob"]
        verdict = "PASS" if got <= want else "FAIL"
        print(f"{verdict} {n:,} jobs: SubmitJob calls {got} <= ceil(N/10000) per rule = {want}")
        active_units = want
        limit = math.ceil(active_units / 100)
        describe = max(p["DescribeJobs"] for p in r["polls"])
        verdict = "PASS" if describe <= max(1, math.ceil(n / 100)) else "FAIL"
        print(f"{verdict} {n:,} active jobs: {describe} DescribeJobs per poll <= ceil(active/100) = "
              f"{math.ceil(n / 100)} (array parents: {limit})")
    busiest = max(r["busiest"] for r in rows)
    print(f"{'PASS' if busiest < 50 else 'FAIL'} Batch requests in any one second: {busiest} < 50 "
          "(submission, re-attach and polls, both modes)")
    print("(baseline: one SubmitJob and one DescribeJobs per job, as an executor without arrays and "
          "batched describes does: 1,000 per 1k jobs each)")


if __name__ == "__main__":
    sys.exit(main_())
