#!/usr/bin/env python3
"""What a report of a big workflow costs: ``s3rules report`` over 100,000 recorded jobs.

A workflow of two per-sample rules (``--jobs`` in all, default 100,000) whose jobs all ran in
one simulated run of about two hours: each job has a ledger record (the journal of local
outputs) and a line in the run's history with its queue wait, run time, CPU time and peak
memory; every 50th job failed (no output, a failure record with a log tail), the others left
their output. It is written through s3rules' own ledger classes, as a run would write it.

Measured: the wall time and size of ``s3rules report`` (HTML) and ``s3rules report --json``,
and how long Debian's chromium takes to open the page (navigation start to the load event),
best of ``--repeat``. Targets: the page under 10 MB, made in under 10 s,
open in under 2 s.

    python bench/report_bench.py                 # 100,000 jobs
    python bench/report_bench.py --jobs 10000 --repeat 1
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHFILE = '''samples: "samples.csv"

default:
    vcpus: 2
    memory: 4096

rule all:
    input: expand("out/b/{sample}.txt")

rule a:
    output: "out/a/{sample}.txt"
    shell: "align {sample} > {output}"

rule b:
    input: "out/a/{sample}.txt"
    output: "out/b/{sample}.txt"
    shell: "count {input} > {output}"
'''
FAIL_EVERY = 50
START = 1_790_000_000.0   # a fixed epoch second: the same workload every time


def fabricate(root: Path, jobs: int, seed: int = 1) -> dict:
    """Write the workflow, its outputs, ledger records and one run's history into ``root``;
    returns what was written ({"done", "failed", "jobs"} counts per rule)."""
    from s3rules.language.loader import load_workflow
    from s3rules.ledger import FAILED, FINISHED, Ledger, Record
    from s3rules.ledger.history import History
    from s3rules.planner import plan
    from s3rules.storage import Storage

    rng = random.Random(seed)
    samples = jobs // 2
    root.mkdir(parents=True, exist_ok=True)
    (root / "Batchfile").write_text(BATCHFILE)
    (root / "samples.csv").write_text("sample\n" + "".join(f"S{i:06d}\n" for i in range(samples)))
    workflow = load_workflow(str(root / "Batchfile"), {})
    storage = Storage()
    the_plan = plan(workflow, storage, [], check_sources=False)
    ledger = Ledger(storage, workflow.base_dir, str(root / ".s3rules"))
    history = History(str(root / ".s3rules" / "history"), "20260901T000000-1")
    history.begin(argv="s3rules run -k", cwd=str(root), batchfile=os.path.abspath(workflow.path),
                  batchfile_hash="fabricated", version="bench", executor="local", pending=jobs)
    for d in ("out/a", "out/b"):
        (root / d).mkdir(parents=True, exist_ok=True)
    counts: dict = {}
    entries, lines = [], []
    for n, job in enumerate(j for j in the_plan.jobs if not j.rule.is_target_list):
        queued = START + rng.uniform(0, 5400)
        started = queued + rng.expovariate(1 / 120)
        ended = started + rng.uniform(30, 300)
        failed = n % FAIL_EVERY == FAIL_EVERY - 1
        state = FAILED if failed else FINISHED
        count = counts.setdefault(job.rule.name, {"done": 0, "failed": 0})
        count["failed" if failed else "done"] += 1
        if not failed:
            os.close(os.open(job.outputs[0], os.O_CREAT | os.O_WRONLY, 0o644))
        entries.append((job.outputs[0], Record(ended, state, ledger.identity.hashes(job), f"batch:{n:08x}"),
                        job.rule.name))
        line = {"key": ledger.identity.relative(job.outputs[0]), "rule": job.rule.name,
                "wildcards": job.wildcards, "state": state, "time": ended, "where": f"batch:{n:08x}",
                "vcpus": 2, "memory": 4096, "exit": 1 if failed else 0,
                "usage": {"queued": queued, "started": started, "ended": ended, "attempts": 1}}
        if failed:
            line.update(cause="application error", reason="application error: exit code 1",
                        log_tail=[f"reading {job.wildcards['sample']}", "error: truncated input at byte 4096"])
        lines.append(line)
    ledger.journal.append(entries)
    history.jobs(lines)
    history.end(succeeded=sum(c["done"] for c in counts.values()),
                failed=sum(c["failed"] for c in counts.values()), not_run=0, interrupted=False, detached=False)
    return counts


def timed(*args: str, cwd: Path) -> float:
    exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
    t0 = time.perf_counter()
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    took = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"s3rules {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return took


def open_in_chromium(page: Path, repeat: int) -> float | None:
    """Navigation start to the load event (the page drawn: it has no script), in seconds, best
    of ``repeat``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    best = None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        for _ in range(repeat):
            tab = browser.new_page()
            tab.goto(page.as_uri(), wait_until="load")
            load = tab.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            tab.close()
            best = load if best is None else min(best, load)
        browser.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3rules-report-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        fabricate(root, opts.jobs)
        print(f"fabricated {opts.jobs:,} jobs in {time.perf_counter() - t0:.1f} s")
        html = min(timed("report", "-o", "report.html", cwd=root) for _ in range(opts.repeat))
        size = (root / "report.html").stat().st_size
        js = min(timed("report", "--json", "-o", "report.json", cwd=root) for _ in range(opts.repeat))
        js_size = (root / "report.json").stat().st_size
        opened = open_in_chromium(root / "report.html", opts.repeat)
        print("\n| jobs | report (HTML) | page size | report --json | JSON size | chromium: open (load event) |")
        print("|---:|---:|---:|---:|---:|---|")
        shown = f"{opened:.2f} s" if opened is not None else "(no playwright)"
        print(f"| {opts.jobs:,} | {html:.2f} s | {size / 1e6:.2f} MB | {js:.2f} s | {js_size / 1e6:.1f} MB | {shown} |")
        print()
        print(f"{'PASS' if size < 10e6 else 'FAIL'}: page under 10 MB ({size / 1e6:.2f} MB)")
        print(f"{'PASS' if html < 10 else 'FAIL'}: made in under 10 s ({html:.2f} s)")
        if opened is not None:
            print(f"{'PASS' if opened < 2 else 'FAIL'}: opens in under 2 s ({opened:.2f} s)")


if __name__ == "__main__":
    main()
