#!/usr/bin/env python3
"""What the job ledger costs: planning time with every existing output recorded, and the S3
requests of reading 10,000 records.

1. Local: bench/plan_bench.py's workload (100,000 samples: 300,001 jobs, the first half done).
   ``s3rules run -n -q`` is timed (best of ``--repeat``) with no ledger, then after
   ``s3rules run --touch`` has recorded every done job (150,000 records), and then with every
   record's command changed (each done job then is "changed: command"). The target: the
   ledger costs at most 5 % of the planning time.
2. S3: ``--records`` (default 10,000) jobs whose outputs are objects on a local S3 server
   (SeaweedFS, or moto with ``--server moto``), every one recorded as finished. A fresh plan
   of them is made with a request counter on the Storage's S3 client (as tests/test_storage.py
   does): the target is at most 20 requests to read the ledger (1 ListObjectsV2 per 1,000).

    python bench/ledger_bench.py                  # both parts
    python bench/ledger_bench.py --samples 10000 --records 2000 --server moto
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from plan_bench import Size, build_workdir  # noqa: E402


def s3rules(*args: str, cwd: Path) -> float:
    exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
    t0 = time.perf_counter()
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"s3rules {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return took


def best(n: int, *args: str, cwd: Path) -> float:
    return min(s3rules(*args, cwd=cwd) for _ in range(n))


def local_part(samples: int, repeat: int, tmp: Path) -> list[str]:
    root = tmp / "local"
    root.mkdir()
    build_workdir(root, Size(samples))
    s3rules("run", "--list", cwd=root)   # bytecode, as an installed copy
    without = best(repeat, "run", "-n", "-q", cwd=root)
    s3rules("run", "--touch", "-q", cwd=root)
    journal = root / ".s3rules/ledger/journal"
    lines = sum(1 for _ in open(journal))
    recorded = best(repeat, "run", "-n", "-q", cwd=root)
    text = (root / "Batchfile").read_text()
    (root / "Batchfile").write_text(text.replace("cp {input} {output}", "cp  {input} {output}"))
    changed = best(repeat, "run", "-n", "-q", cwd=root)
    cost = (recorded - without) / without * 100
    return [f"local, {samples:,} samples ({3 * samples + 1:,} jobs), {lines:,} records:",
            f"  run -n, no ledger:                {without:6.2f} s",
            f"  run -n, every done job recorded:  {recorded:6.2f} s  ({cost:+.1f} %)",
            f"  run -n, every record changed:     {changed:6.2f} s",
            f"{'PASS' if cost <= 5 else 'FAIL'}  the ledger costs at most 5 % of planning ({cost:+.1f} %)"]


BATCHFILE = """\
samples: "samples.csv"
rule all:
    input: expand("s3://BUCKET/out/{sample}.txt")
rule make:
    output: "s3://BUCKET/out/{sample}.txt"
    shell: "echo {sample} > {output}"
"""


def s3_part(records: int, server_kind: str, tmp: Path) -> list[str]:
    import s3servers
    from test_storage import RequestCounter

    from s3rules.language.loader import load_workflow
    from s3rules.ledger import DEFAULT_TRIGGERS, Ledger
    from s3rules.planner import plan
    from s3rules.storage import Storage

    server = (s3servers.SeaweedS3Server() if server_kind == "seaweedfs" else s3servers.MotoS3Server()).start()
    try:
        os.environ.update(server.env())
        bucket = server.make_bucket(f"bench-{uuid.uuid4().hex[:8]}")
        root = tmp / "s3"
        root.mkdir()
        (root / "Batchfile").write_text(BATCHFILE.replace("BUCKET", bucket))
        (root / "samples.csv").write_text("sample\n" + "".join(f"S{i:06d}\n" for i in range(records)))
        server.put_many(bucket, [f"out/S{i:06d}.txt" for i in range(records)])
        workflow = load_workflow(str(root / "Batchfile"), {})
        jobs = [j for j in plan(workflow, Storage()).jobs if j.outputs]
        t0 = time.perf_counter()
        writer = Ledger(Storage(), workflow.base_dir, str(root / ".s3rules"))
        writer.finished(jobs, {})
        wrote = time.perf_counter() - t0
        storage = Storage()
        counter = RequestCounter(storage, f"s3://{bucket}/x")
        t0 = time.perf_counter()
        the_plan = plan(workflow, storage, ledger=Ledger(storage, workflow.base_dir, str(root / ".s3rules")),
                        triggers=DEFAULT_TRIGGERS)
        took = time.perf_counter() - t0
        assert not the_plan.pending, "every recorded job should be done"
        outputs = math.ceil(records / 1000)
        ledger_requests = counter.count() - outputs
    finally:
        server.stop()
    return [f"S3 ({server_kind}), {records:,} outputs, each recorded as finished:",
            f"  writing the records:  {wrote:6.2f} s (concurrent PUTs)",
            f"  plan: {counter.count()} requests in {took:.2f} s: {outputs} listings of the outputs, "
            f"{ledger_requests} of the ledger",
            f"{'PASS' if ledger_requests <= 20 else 'FAIL'}  reading {records:,} records costs at most 20 requests "
            f"({ledger_requests})"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--server", choices=("seaweedfs", "moto"), default="seaweedfs")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--skip-s3", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="s3rules-ledger-bench-"))
    lines = []
    try:
        if not args.skip_local:
            lines += local_part(args.samples, args.repeat, tmp)
        if not args.skip_s3:
            lines += s3_part(args.records, args.server, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
