"""A workflow's report as data: what ``s3rules report --json`` prints and the HTML page draws.

Everything is aggregated here, per rule and in total, so the page stays small however many
jobs there are: a timeline of one bar per job up to ``MAX_BARS`` jobs (packed into lanes), else
of each rule's running and queued jobs per time bin; runtimes as min / median / max and a
histogram; requested against used resources; vCPU-hours, GiB-hours and their cost.
"""
from __future__ import annotations

import heapq
import os
from itertools import accumulate
import statistics
import time
from collections import Counter

from .facts import DONE, FAILED_STATE, STARTED_STATE, TO_DO

STATES = (DONE, FAILED_STATE, STARTED_STATE, TO_DO)
MAX_BARS = 2000        # more jobs than this, or more lanes than MAX_LANES, and the timeline is binned
MAX_LANES = 120
BINS = 200             # time bins of a binned timeline
HISTOGRAM_BINS = 12
MAX_FAILURES = 200     # failures the page lists one by one (--json has them all)


def build(workflow, facts: list[dict], runs: list[dict], digest: str, version: str,
          spot: dict[str, bool] | None = None, with_jobs: bool = True, spent: dict | None = None) -> dict:
    """The report of ``facts``, ``runs`` and ``spent`` (``facts.job_facts``)."""
    spot = spot or {}
    by_rule: dict[str, list[dict]] = {}
    for fact in facts:
        by_rule.setdefault(fact["rule"], []).append(fact)
    rules = [_rule_stats(name, group, spot.get(name, False), _settings(workflow, name))
             for name, group in by_rule.items()]
    settings = workflow.settings
    # a failed rerun that left the previous outputs in place is done, but its failure is listed
    failures = sorted((f for f in facts if f["state"] == FAILED_STATE or f.get("restored")),
                      key=lambda f: bool(f.get("upstream_failed")))
    ran = [f for f in facts if "runtime" in f]
    ran_in = {f.get("run") for f in facts}   # runs of other targets or --config left out
    totals = {
        "jobs": len(facts),
        "states": {s: sum(r["states"].get(s, 0) for r in rules) for s in STATES},
        "vcpu_hours": sum(r["vcpu_hours"] for r in rules),
        "gib_hours": sum(r["gib_hours"] for r in rules),
        "cost": sum(r["cost"] for r in rules),
        "spent": priced({rule: hours for rule, hours in (spent or {}).items() if rule in by_rule}, workflow),
        "first_start": min(map(_begin, ran), default=None),
        "last_end": max((f["ended"] for f in ran), default=None),
    }
    totals["span"] = (totals["last_end"] - totals["first_start"]) if ran else None
    doc = {
        "workflow": {"batchfile": os.path.abspath(workflow.path), "batchfile_hash": digest, "version": version,
                     "generated": round(time.time(), 3)},
        "runs": [_run(r) for r in runs if r["run"] in ran_in or r is runs[-1]],
        "prices": {"vcpu_hour": settings.price_vcpu_hour, "gib_hour": settings.price_gib_hour,
                   "default": _default_prices(settings), "spot_rules": sorted(n for n, on in spot.items() if on),
                   "own": {r["rule"]: [r["price_vcpu_hour"], r["price_gib_hour"]] for r in rules
                           if (r["price_vcpu_hour"], r["price_gib_hour"]) !=
                           (settings.price_vcpu_hour, settings.price_gib_hour)}},
        "rules": rules,
        "totals": totals,
        "failures": [_failure(f) for f in failures],
        "timeline": timeline(ran, [r["rule"] for r in rules]),
    }
    if with_jobs:
        doc["jobs"] = facts
    return doc


def _settings(workflow, name: str):
    rule = workflow.rules.get(name)
    return rule.settings if rule is not None else workflow.settings


def priced(spent: dict[str, list[float]], workflow) -> float:
    """The cost of ``history.Past.spent`` (rule -> [vCPU-hours, GiB-hours]) at each rule's prices."""
    total = 0.0
    for name, (vcpu_hours, gib_hours) in spent.items():
        s = _settings(workflow, name)
        total += vcpu_hours * s.price_vcpu_hour + gib_hours * s.price_gib_hour
    return total


def _default_prices(settings) -> bool:
    from ..settings import FARGATE_GIB_HOUR, FARGATE_VCPU_HOUR
    return (settings.price_vcpu_hour, settings.price_gib_hour) == (FARGATE_VCPU_HOUR, FARGATE_GIB_HOUR)


def _run(run: dict) -> dict:
    out = {k: run.get(k) for k in ("run", "started", "ended", "argv", "cwd", "batchfile_hash", "version", "executor",
                                   "pending", "succeeded", "failed", "not_run", "interrupted", "detached")}
    out["wall"] = round(run["ended"] - run["started"], 3) if run.get("ended") and run.get("started") else None
    return out


def _failure(fact: dict) -> dict:
    return {k: fact.get(k) for k in ("rule", "wildcards", "output", "cause", "exit", "reason", "where", "log",
                                     "log_tail", "upstream_failed", "restored")}


def _summary(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"count": len(values), "min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": sum(values) / len(values)}


def histogram(values: list[float], bins: int = HISTOGRAM_BINS) -> dict | None:
    """Counts of ``values`` in ``bins`` equal bins from their min to their max."""
    if not values:
        return None
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"low": low, "high": high, "counts": counts}


def _rule_stats(name: str, group: list[dict], spot: bool, settings) -> dict:
    runtimes = [f["runtime"] for f in group if "runtime" in f]
    waits = [f["wait"] for f in group if "wait" in f]
    cores = [f["cpu"] / f["runtime"] for f in group if "cpu" in f and f.get("runtime")]
    rss = [f["max_rss"] for f in group if "max_rss" in f]
    at_most = [f["max_rss_at_most"] for f in group if "max_rss_at_most" in f and "max_rss" not in f]
    first = group[0]
    return {
        "rule": name,
        "executor": first["executor"],
        "total": len(group),
        "states": dict(Counter(f["state"] for f in group)),
        "runtime": _summary(runtimes),
        "histogram": histogram(runtimes),
        "wait": _summary(waits),
        "requested": {"vcpus": max(f["vcpus"] for f in group), "memory": max(f["memory"] for f in group)},
        "used": {"cores": _summary(cores), "max_rss": _summary(rss),
                 "max_rss_at_most": max(at_most) if at_most and not rss else None},
        "vcpu_hours": sum(f.get("vcpu_hours", 0.0) for f in group),
        "gib_hours": sum(f.get("gib_hours", 0.0) for f in group),
        "cost": sum(f.get("cost", 0.0) for f in group),
        "causes": dict(Counter(f.get("cause") or "unknown" for f in group if f["state"] == FAILED_STATE)),
        "spot": spot,
        "price_vcpu_hour": settings.price_vcpu_hour,
        "price_gib_hour": settings.price_gib_hour,
    }


def lanes(jobs: list[dict]) -> tuple[list[int], int]:
    """A lane per job so that no two jobs in one lane overlap in time (queue wait included),
    as few lanes as the busiest moment needs: (each job's lane, number of lanes)."""
    order = sorted(range(len(jobs)), key=lambda i: _begin(jobs[i]))
    free: list[tuple[float, int]] = []   # (when the lane frees, lane)
    out, count = [0] * len(jobs), 0
    for i in order:
        start = _begin(jobs[i])
        if free and free[0][0] <= start:
            _, lane = heapq.heappop(free)
        else:
            lane, count = count, count + 1
        out[i] = lane
        heapq.heappush(free, (jobs[i]["ended"], lane))
    return out, count


def _begin(fact: dict) -> float:
    return fact.get("queued", fact["started"])


def timeline(ran: list[dict], rules: list[str]) -> dict:
    """One bar per job ([lane, rule index, queued, started, ended, label, failed]) when they fit, else per
    rule the jobs running and queued in each of ``BINS`` time bins."""
    if not ran:
        return {"mode": "empty"}
    index = {name: i for i, name in enumerate(rules)}
    start = min(_begin(f) for f in ran)
    end = max(f["ended"] for f in ran)
    if len(ran) <= MAX_BARS:
        where, count = lanes(ran)
        if count <= MAX_LANES:
            bars = [[lane, index[f["rule"]], _begin(f) - start, f["started"] - start, f["ended"] - start,
                     _label(f), f["state"] == FAILED_STATE] for lane, f in zip(where, ran)]
            return {"mode": "jobs", "start": start, "end": end, "lanes": count, "bars": bars}
    width = (end - start) / BINS or 1.0
    changes = {name: {"running": [0] * (BINS + 1), "queued": [0] * (BINS + 1)} for name in rules}
    for f in ran:   # a job counts in every bin its interval touches: +1 where it begins, -1 after
        for what, a, b in (("queued", _begin(f), f["started"]), ("running", f["started"], f["ended"])):
            if b <= a and what == "queued":
                continue
            row = changes[f["rule"]][what]
            row[min(int((a - start) / width), BINS - 1)] += 1
            row[min(int((b - start) / width), BINS - 1) + 1] -= 1
    binned = {name: {what: list(accumulate(row[:BINS])) for what, row in rows.items()}
              for name, rows in changes.items()}
    return {"mode": "bins", "start": start, "end": end, "bins": BINS, "bin_seconds": width, "rules": binned}


def _label(fact: dict) -> str:
    values = ", ".join(f"{k}={v}" for k, v in fact["wildcards"].items())
    return f"{fact['rule']} ({values})" if values else fact["rule"]
