#!/usr/bin/env python3
"""S3 existence checks: requests and wall time of Storage.stat_many vs one HEAD per target.

The target (from the issue): checking N targets on S3 costs at most ceil(N/1000) plus one
ListObjectsV2 per distinct prefix, and never one HEAD per target when many targets share
a prefix. A lone target may cost one HeadObject. Per-sample folders, one target each
(``results/{sample}/x.bam``), are walked through their parent: at most ceil(objects/1000) + 10
requests for the objects below it, where one request per prefix would be one per target.

A local S3 server is started (moto in this process, and/or a real SeaweedFS ``weed mini``
subprocess, via tests/s3servers.py). It is seeded with ``--objects`` N objects (default
10,000) in two layouts under bucket ``bench``:

    out/c/S0000000.txt ... out/c/S<N-1>.txt                  one prefix
    out/p0/S0000000.txt ... out/p9/S<N/10-1>.txt              10 prefixes x N/10
    out/lone/only.txt                                         a lone object

and, in bucket ``bench-samples``, ``--samples`` S sample folders (default 100,000):

    results/S000000/log.txt ... results/S<S-1>/log.txt        every sample
    results/S000000/x.bam, results/S000002/x.bam ...          every other sample

Scenarios, each on a fresh ``Storage()`` (nothing cached):

    (a) the N targets of out/c/, all present
    (b) the same N plus N missing targets in out/c/ (out/c/M...)
    (c) 10 prefixes x N/10 targets, all present
    (d) 1 lone target, present          (e) 1 lone target, missing
    (f) results/{sample}/x.bam of the S samples, half present, each alone in its folder

s3rules requests are counted with a botocore ``before-send.s3`` event hook on the
aiobotocore client of the s3fs filesystem the Storage uses (``storage.filesystem(url).s3``),
as tests/test_storage.py does. It fires once per HTTP request actually sent, retries
included. The baseline uses a plain boto3 client and sends one ``head_object`` per target,
sequentially and from a pool of ``--threads`` threads, counted by the same hook. That is
what snakemake-storage-plugin-s3 does: per its source, ``StorageObject.exists()`` loads
the object (one HeadObject per file) and ``inventory()`` is not implemented. For a missing
key it also sends HeadBucket and a ListObjectsV2, so one HEAD per target is a lower bound
on its request count. To keep the run short, the baseline runs on an evenly spaced sample
of ``--baseline-sample`` targets (default 1,000). Its wall time is then scaled to all N
targets and marked ``~``. Use ``--baseline-sample 0`` to HEAD every target (takes minutes).

    python bench/s3_bench.py                         # moto + SeaweedFS (moto alone if weed cannot run)
    python bench/s3_bench.py --server moto --objects 100000
    python bench/s3_bench.py --samples 0             # without (f), which takes most of the time
    python bench/s3_bench.py --baseline-sample 0     # full baseline, no extrapolation

It prints a table and PASS/FAIL lines. It exits 0 even if a request-count check fails.
It exits 2 when a server cannot start, and 1 when stat_many raises or finds the wrong
set of targets.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench"
SAMPLES_BUCKET = "bench-samples"
PAGE = 1000                     # keys per ListObjectsV2 page (S3's maximum and default)
SHORT = {"ListObjectsV2": "List", "HeadObject": "HEAD", "HeadBucket": "HeadBucket"}
# Variables that could route clients elsewhere than the bench server.
UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
             "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def s3servers():
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import s3servers as mod

    return mod


# --------------------------------------------------------------------------- counting


class RequestCounter:
    """Counts S3 HTTP requests by operation; a botocore ``before-send.s3`` handler."""

    def __init__(self):
        self.ops: Counter = Counter()
        self.failed = 0   # attempts that got no answer (a timeout, a 5xx): sent again
        self._lock = threading.Lock()

    def __call__(self, event_name=None, **kwargs):
        op = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.ops[op] += 1

    def attempt_failed(self, response=None, caught_exception=None, **kwargs):
        """A botocore ``needs-retry.s3`` handler (returns None: botocore's own one decides)."""
        if caught_exception is not None or (response and response[0].status_code >= 500):
            with self._lock:
                self.failed += 1

    def total(self) -> int:
        return sum(self.ops.values())

    def reset(self) -> None:
        with self._lock:
            self.ops.clear()


def ops_text(ops: Counter) -> str:
    return " + ".join(f"{n:,} {SHORT.get(op, op)}" for op, n in sorted(ops.items())) or "0"


# --------------------------------------------------------------------------- workload


@dataclass
class Scenario:
    key: str
    title: str
    targets: list[str]
    present: set[str]
    prefixes: int                       # distinct parent prefixes among the targets
    lone_prefixes: int                  # prefixes holding exactly one target, HEADed
    buckets: int = 1
    objects: int = 0                    # sibling folders: the objects below their parent

    @property
    def allowed(self) -> int:
        """The bound on ListObjectsV2 + HeadObject requests: the issue's, or for sibling
        folders walked through their parent, ceil(objects/1000) + 10."""
        if self.objects:
            return math.ceil(self.objects / PAGE) + 10
        return math.ceil(len(self.targets) / PAGE) + self.prefixes

    def bound(self) -> str:
        if self.objects:
            return f"ceil({self.objects:,} objects/1000) + 10"
        return (f"ceil({len(self.targets):,}/1000) + {self.prefixes} "
                f"prefix{'es' if self.prefixes > 1 else ''}")


@dataclass
class Result:
    server: str
    sc: Scenario
    ops: Counter = field(default_factory=Counter)
    walls: list[float] = field(default_factory=list)
    found: int = 0
    correct: bool = False
    cached_requests: int | None = None
    failed: int = 0                      # attempts sent again (counted in ops)
    error: str = ""
    base_requests: float | None = None   # scaled to all targets when sampled
    base_sample: int = 0
    base_seq: float | None = None
    base_pool: float | None = None
    base_error: str = ""

    @property
    def requests(self) -> int:
        return sum(self.ops.values())

    @property
    def wall(self) -> float | None:
        return min(self.walls) if self.walls else None


def layout(n: int, n_prefixes: int) -> tuple[list[str], list[str]]:
    """(object keys to seed, the keys of layout (c))."""
    one = [f"out/c/S{i:07d}.txt" for i in range(n)]
    per = max(1, n // n_prefixes)
    spread = [f"out/p{j}/S{i:07d}.txt" for j in range(n_prefixes) for i in range(per)]
    return one + spread + ["out/lone/only.txt"], spread


def sample_layout(samples: int) -> list[str]:
    """The object keys of the sample folders: log.txt in each, x.bam in every other one."""
    return [f"results/S{i:06d}/{name}" for i in range(samples)
            for name in ("log.txt", "x.bam")[: 1 + (i % 2 == 0)]]


def sample_scenario(samples: int) -> Scenario:
    targets = [f"s3://{SAMPLES_BUCKET}/results/S{i:06d}/x.bam" for i in range(samples)]
    return Scenario("f", f"{samples:,} folders results/{{sample}}/x.bam, half present", targets,
                    set(targets[::2]), samples, 0, objects=samples + (samples + 1) // 2)


def scenarios(n: int, n_prefixes: int, spread: list[str]) -> list[Scenario]:
    def url(key: str) -> str:
        return f"s3://{BUCKET}/{key}"

    present_c = [url(f"out/c/S{i:07d}.txt") for i in range(n)]
    missing_c = [url(f"out/c/M{i:07d}.txt") for i in range(n)]
    spread_urls = [url(k) for k in spread]
    per = len(spread) // n_prefixes
    lone, gone = url("out/lone/only.txt"), url("out/gone/none.txt")
    return [
        Scenario("a", f"1 prefix, {n:,} present", present_c, set(present_c), 1, 0),
        Scenario("b", f"1 prefix, {n:,} present + {n:,} missing", present_c + missing_c,
                 set(present_c), 1, 0),
        Scenario("c", f"{n_prefixes} prefixes x {per:,} present", spread_urls, set(spread_urls),
                 n_prefixes, 0),
        Scenario("d", "1 lone target, present", [lone], {lone}, 1, 1),
        Scenario("e", "1 lone target, missing", [gone], set(), 1, 1),
    ]


# --------------------------------------------------------------------------- measuring


def measure_s3rules(server_name: str, sc: Scenario, repeat: int) -> Result:
    from s3rules.errors import StorageError
    from s3rules.storage import Storage

    r = Result(server_name, sc)
    for i in range(repeat):
        st = Storage()                       # fresh: no listing, lookup or bucket cached
        fs = st.filesystem(sc.targets[0])
        fs.connect()                         # creates fs.s3, the aiobotocore client (untimed)
        counter = RequestCounter()
        fs.s3.meta.events.register("before-send.s3", counter)
        fs.s3.meta.events.register("needs-retry.s3", counter.attempt_failed)
        t0 = time.perf_counter()
        try:
            res = st.stat_many(sc.targets)
        except StorageError as e:
            r.error = f"StorageError: {e}"
            return r
        r.walls.append(time.perf_counter() - t0)
        if repeat > 1:
            log(f"  run {i + 1}/{repeat}: {r.walls[-1]:.2f} s")
        if i == 0:
            r.ops = Counter(counter.ops)
            r.failed = counter.failed
            r.found = len(res)
            r.correct = set(res) == sc.present and all(
                isinstance(v, float) and v > 0 for v in res.values())
            counter.reset()                  # asking again: served from the cache
            st.stat_many(sc.targets)
            r.cached_requests = counter.total()
        elif counter.ops != r.ops:
            log(f"  note: run {i + 1} sent {ops_text(counter.ops)}, run 1 {ops_text(r.ops)}")
    return r


def measure_baseline(server, r: Result, sample_size: int, threads: int) -> None:
    from botocore.exceptions import ClientError

    targets = r.sc.targets
    n = len(targets)
    s = n if sample_size <= 0 or sample_size >= n else sample_size
    sample = [targets[i * n // s] for i in range(s)]   # evenly spaced: same present/missing mix
    scale = n / s
    expected = sum(1 for t in sample if t in r.sc.present)

    def run(pool_size: int) -> float:
        client = server.client(max_pool_connections=max(pool_size, 10))
        counter = RequestCounter()
        client.meta.events.register("before-send.s3", counter)

        def head(url: str) -> bool:
            bucket, _, key = url[len("s3://"):].partition("/")
            try:
                client.head_object(Bucket=bucket, Key=key)
                return True
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

        t0 = time.perf_counter()
        if pool_size <= 1:
            found = sum(map(head, sample))
        else:
            with ThreadPoolExecutor(pool_size) as pool:
                found = sum(pool.map(head, sample))
        wall = time.perf_counter() - t0
        if found != expected:
            r.base_error = f"baseline found {found} of {s}, expected {expected}"
        if counter.ops.get("HeadObject", 0) != s or counter.total() != s:
            r.base_error = f"baseline sent {ops_text(counter.ops)} for {s} targets"
        r.base_requests = counter.total() * scale
        return wall * scale

    r.base_sample = s
    try:
        r.base_seq = run(1)
        r.base_pool = run(threads)
    except Exception as e:  # the baseline is context; never lose the s3rules numbers for it
        r.base_error = f"{type(e).__name__}: {e}"


# --------------------------------------------------------------------------- one server


def warm_up(server) -> None:
    """Untimed: one listing through s3rules and one HEAD through boto3, so that the first
    scenario does not pay for lazy imports, service-model parsing and server caches."""
    from s3rules.storage import Storage

    Storage().stat_many([f"s3://{BUCKET}/out/lone/only.txt", f"s3://{BUCKET}/out/lone/none.txt"])
    server.client().head_object(Bucket=BUCKET, Key="out/lone/only.txt")


def set_env(server) -> None:
    for var in UNSET_ENV:
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.update(server.env())


def run_server(name: str, args, results: list[Result], notes: list[str]) -> bool:
    mod = s3servers()
    server = mod.MotoS3Server() if name == "moto" else mod.SeaweedS3Server()
    t0 = time.perf_counter()
    log(f"[{name}] starting ...")
    try:
        server.start()
    except Exception as e:
        log(f"[{name}] cannot start: {e}")
        raise SystemExit(2)
    try:
        set_env(server)
        keys, spread = layout(args.objects, args.prefixes)
        samples = sample_layout(args.samples)
        t1 = time.perf_counter()
        for bucket, seeded in ((BUCKET, keys), (SAMPLES_BUCKET, samples)):
            if seeded:   # a bucket of its own: moto reads every key of a bucket per listing
                server.make_bucket(bucket)
                server.put_many(bucket, seeded)
        how = ("straight into moto's in-process backend" if name == "moto"
               else "through the filer's HTTP API")
        notes.append(f"{name}: started in {t1 - t0:.1f} s at {server.endpoint_url}; seeded "
                     f"{len(keys) + len(samples):,} objects {how} in {time.perf_counter() - t1:.1f} s")
        log(f"[{name}] up at {server.endpoint_url}; seeded {len(keys) + len(samples):,} objects in "
            f"{time.perf_counter() - t1:.1f} s")
        warm_up(server)
        ok = True
        chosen = scenarios(args.objects, args.prefixes, spread)
        for sc in chosen + ([sample_scenario(args.samples)] if args.samples else []):
            r = measure_s3rules(name, sc, args.repeat)
            if r.error:
                log(f"[{name}] ({sc.key}) {r.error}")
                ok = False
            else:
                log(f"[{name}] ({sc.key}) {sc.title}: s3rules {ops_text(r.ops)} in {r.wall:.2f} s")
                ok = ok and r.correct
            measure_baseline(server, r, args.baseline_sample, args.threads)
            if r.base_error:
                log(f"[{name}] ({sc.key}) baseline: {r.base_error}")
            else:
                log(f"[{name}] ({sc.key}) baseline: {r.base_sample:,} HEAD(s) sent; "
                    f"{r.base_seq:.2f} s sequential, {r.base_pool:.2f} s with {args.threads} threads"
                    + (" (scaled to all targets)" if r.base_sample < len(sc.targets) else ""))
            results.append(r)
        return ok
    finally:
        server.stop()
        log(f"[{name}] stopped")


# --------------------------------------------------------------------------- report


def fmt(x, spec: str, mark: str = "") -> str:
    return "-" if x is None else mark + format(x, spec)


def print_table(results: list[Result], threads: int) -> None:
    head = ("server", "scenario", "targets", "found", "s3rules requests", "req/1k tgt",
            "allowed", "wall s", "HEAD/target req", "req/1k tgt", "seq wall s",
            f"{threads}-thr wall s", "fewer req", "faster vs best")
    rows = []
    for r in results:
        n = len(r.sc.targets)
        mark = "~" if r.base_sample and r.base_sample < n else ""
        best = min((x for x in (r.base_seq, r.base_pool) if x is not None), default=None)
        fewer = speed = ""
        if not r.error and r.base_requests:
            ratio = r.base_requests / max(r.requests, 1)
            fewer = f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
        if not r.error and best is not None and r.wall:
            speed = f"{mark}{best / r.wall:,.1f}x"
        rows.append((
            r.server, f"({r.sc.key}) {r.sc.title}", f"{n:,}",
            "-" if r.error else f"{r.found:,}",
            "ERROR" if r.error else ops_text(r.ops) + (f" ({r.failed} resent)" if r.failed else ""),
            "-" if r.error else f"{r.requests * 1000 / n:,.1f}",
            f"{r.sc.allowed:,} +1 HB",
            fmt(r.wall, ".2f"),
            fmt(r.base_requests, ",.0f"),
            "-" if r.base_requests is None else f"{r.base_requests * 1000 / n:,.0f}",
            fmt(r.base_seq, ".2f", mark), fmt(r.base_pool, ".2f", mark), fewer, speed))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    left = {0, 1, 4}
    for line in [head] + rows:
        print("  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths))).rstrip())


def checks(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        sc = r.sc
        name = f"{r.server} ({sc.key}) {sc.title}"
        if r.error:
            out.append(f"FAIL  {name}: {r.error}")
            continue
        hb = r.ops.get("HeadBucket", 0)
        other = r.requests - hb - r.failed
        heads = r.ops.get("HeadObject", 0)
        good = other <= sc.allowed and hb <= sc.buckets and heads <= sc.lone_prefixes
        resent = f" (+{r.failed} failed attempts sent again)" if r.failed else ""
        out.append(
            f"{'PASS' if good else 'FAIL'}  {name}: {other:,} List/HEAD requests{resent} <= "
            f"{sc.bound()} = {sc.allowed:,}; HeadBucket {hb} <= {sc.buckets}; HEAD {heads} <= "
            f"{sc.lone_prefixes} lone-target prefix{'es' if sc.lone_prefixes != 1 else ''}")
        out.append(f"{'PASS' if r.correct else 'FAIL'}  {name}: found {r.found:,} of "
                   f"{len(sc.present):,} present targets, no missing one reported, float mtimes")
        if r.cached_requests is not None:
            out.append(f"{'PASS' if r.cached_requests == 0 else 'FAIL'}  {name}: asking again "
                       f"on the same Storage sends {r.cached_requests} requests (cached)")
    return out


def versions() -> str:
    parts = []
    for mod in ("s3rules", "s3fs", "aiobotocore", "boto3", "moto"):
        try:
            from importlib.metadata import version

            parts.append(f"{mod} {version(mod)}")
        except Exception:
            parts.append(f"{mod} ?")
    return ", ".join(parts)


def weed_version(mod) -> str:
    weed = mod.weed_binary()
    try:
        out = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0]
    except Exception:
        return "weed ?"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", choices=("moto", "seaweedfs", "both"), default=None,
                   help="local S3 server(s) (default: both if the weed binary runs, else moto)")
    p.add_argument("--objects", type=int, default=10_000,
                   help="objects in the one-prefix and the spread layouts (default 10000)")
    p.add_argument("--prefixes", type=int, default=10, help="prefixes in layout (c) (default 10)")
    p.add_argument("--samples", type=int, default=100_000,
                   help="sample folders of scenario (f); 0 leaves it out (default 100000)")
    p.add_argument("--repeat", type=int, default=1,
                   help="s3rules wall time: best of N fresh runs (default 1)")
    p.add_argument("--baseline-sample", type=int, default=1000, metavar="K",
                   help="HEAD K evenly spaced targets per scenario and scale the wall time to "
                        "all of them; 0 = HEAD every target (default 1000)")
    p.add_argument("--threads", type=int, default=32, help="baseline thread pool (default 32)")
    args = p.parse_args(argv)
    if args.objects < 2 or args.prefixes < 1 or args.objects < args.prefixes:
        p.error("need --objects >= 2 and 1 <= --prefixes <= --objects")
    if args.repeat < 1 or args.threads < 1 or args.baseline_sample < 0 or args.samples < 0:
        p.error("--repeat and --threads must be >= 1, --baseline-sample and --samples >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    mod = s3servers()
    notes: list[str] = []
    reason = mod.weed_unusable_reason()
    if args.server is None:
        servers = ["moto"] if reason else ["moto", "seaweedfs"]
        if reason:
            notes.append(f"SeaweedFS skipped: {reason}")
    else:
        servers = ["moto", "seaweedfs"] if args.server == "both" else [args.server]
        if "seaweedfs" in servers and reason:
            log(reason)
            return 2
    if "seaweedfs" in servers:
        notes.append(f"SeaweedFS: {weed_version(mod)} (weed mini, a subprocess)")
    saved_env = dict(os.environ)
    results: list[Result] = []
    ok = True
    started = time.time()
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    try:
        for name in servers:
            ok = run_server(name, args, results, notes) and ok
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        os.environ.clear()
        os.environ.update(saved_env)

    print()
    load = f"; load avg at start {load0[0]:.2f}" if load0 else ""
    print(f"s3rules S3 existence-check bench  ({versions()}; Python "
          f"{platform.python_version()}; {os.cpu_count()} CPUs{load})")
    for n in notes:
        print(f"  {n}")
    print("  s3rules: Storage().stat_many(targets) on a fresh Storage per scenario"
          + (f", best of {args.repeat}" if args.repeat > 1 else "")
          + "; requests = HTTP requests counted by a botocore before-send.s3 hook"
          + " (resent: attempts that failed, a timeout or a 5xx, and were sent again)")
    print(f"  baseline: boto3 head_object per target (one HEAD per file, as "
          f"snakemake-storage-plugin-s3's exists()), sequential and {args.threads} threads; "
          "1 request per target, checked on every target HEADed"
          + ("" if args.baseline_sample == 0 else
             f"; ~ = measured on {args.baseline_sample:,} evenly spaced targets, scaled to all"))
    print("  allowed = ceil(targets/1000) + distinct prefixes List/HEAD requests (the issue's "
          "bound), plus at most 1 HeadBucket (HB) per bucket:")
    print("    a 404 HEAD cannot tell a missing key from a missing bucket, so s3rules sends one "
          "HeadBucket per bucket not yet proven to exist")
    print("    (here: only in (e), a lone missing target on a fresh Storage).")
    if args.samples:
        print("  (f): one target per folder, so the issue's bound would allow one request per "
              "target; allowed = ceil(objects below results/ / 1000) + 10,")
        print("    the bound for sibling folders walked through their parent (ListObjectsV2 "
              "without delimiter, jumping to the next target).")
        print("    moto reads and sorts every key of the bucket for each ListObjectsV2 call "
              "(~1.5 s at 150,000 keys), one call at a time (the GIL), so its (f) wall time is")
        print("    mostly moto's, and a call queued behind the others may pass s3fs's 15 s read "
              "timeout and be sent again (resent).")
    print("  Wall times are on a local server (~1-5 ms per request, mostly client CPU; moto "
          "shares this process's GIL); real S3 round trips are slower.")
    print("  (d) and (e) times include the first request's setup on a fresh client, for "
          "s3rules and the baseline alike.")
    print()
    print_table(results, args.threads)
    print()
    for line in checks(results):
        print(line)
    print(f"(total bench time {time.time() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
