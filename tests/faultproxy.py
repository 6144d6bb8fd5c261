"""A fault-injecting HTTP reverse proxy for the tests (standard library only).

It sits between s3rules (boto3 for Batch, CloudWatch Logs and the lease; s3fs/aiobotocore for
S3 listings and lookups) and the moto server of tests/aws_server.py, and answers some requests
itself with the errors AWS really sends, at a configurable rate per operation::

    proxy = FaultProxy(aws_server.endpoint_url, seed=1, rate=0.2).start()
    env.update(proxy.env())            # AWS_ENDPOINT_URL(_S3/_BATCH/_CLOUDWATCH_LOGS) -> proxy
    ...
    proxy.stop()

Batch jobs are not affected: the harness gives each job its own environment, pointing at moto
directly.

Operations
    Requests are named by service (from the SigV4 ``Credential=.../<service>/aws4_request``
    scope, else by shape) and operation: Batch is REST-JSON (``POST /v1/submitjob`` ->
    ``SubmitJob``), CloudWatch Logs is JSON 1.1 (``X-Amz-Target: Logs_20140328.GetLogEvents``
    -> ``GetLogEvents``), S3 is REST-XML and named from method, path and query
    (``GET ?list-type=2`` -> ``ListObjectsV2``, ``HEAD /b/k`` -> ``HeadObject``,
    ``PUT /b/k`` -> ``PutObject``, ``GET /b/k`` -> ``GetObject``, ...).

Faults (``KINDS``)
    ``429``   throttled, nothing done: Batch 429 ``TooManyRequestsException`` (JSON body and
              ``x-amzn-ErrorType``); S3 has no 429, so S3 gets 503 ``SlowDown``; Logs 400
              ``ThrottlingException``.
    ``500``   internal error, nothing done: Batch ``ServerException``, S3 ``InternalError``,
              Logs ``ServiceUnavailableException``.
    ``503``   Batch 503 ``ServiceUnavailableException``, S3 503 ``SlowDown``, Logs 503.
    ``drop``  the connection is closed without an answer; the request never reached the server.
    ``403``   access denied, nothing done (only by ``script``, never drawn at random): Batch 403
              ``AccessDeniedException``, S3 403 ``AccessDenied``, Logs 400 ``AccessDeniedException``.
    ``lost``  the request IS forwarded (the server acts on it: a SubmitJob creates its job),
              then the connection is closed without relaying the answer.

    Each operation has its own seeded RNG (``random.Random(f"{seed}:{op}")``), so the n-th call
    of an operation meets the same fate in every run whatever the interleaving of other
    operations. ``max_consecutive`` bounds how many calls of one operation in a row are
    faulted (so a client that retries enough always gets through), ``script(op, kinds)``
    forces the fate of the next calls of an operation, ``on_forwarded(op, fn)`` runs
    ``fn(n, info)`` after the n-th call of ``op`` was answered by the server and before that
    answer is relayed (``fn`` returning ``"drop"`` drops it), ``before_forward(op, fn)`` runs
    ``fn(n, info)`` before forwarding (it may block, e.g. as a barrier).

Models of AWS behaviour moto lacks
    ``atomic_conditional_writes`` (on by default): S3 PutObject with ``If-None-Match`` or
    ``If-Match`` is forwarded under a per-key lock. moto 5.2's put_object checks the
    precondition and then writes, with no lock, so two racing ``If-None-Match: *`` creates can
    both succeed there; on S3 exactly one does. Without this the tests would test moto's race,
    not s3rules'.
    ``list_lag``: seconds during which a just-created Batch job is left out of ListJobs answers
    (AWS's eventual consistency, which s3rules' lease docstring assumes); default 0.

Rewriting answers (AWS answers moto never gives)
    ``rewrite(op, fn)``: every 200 JSON answer of ``op`` is parsed and passed to
    ``fn(doc, info)`` before it is relayed (``info["request"]`` is the parsed JSON request,
    ``info["n"]`` the n-th forwarded call of ``op``); ``fn`` edits ``doc`` in place or returns
    a new one. E.g. a ListJobs of an array's children that lags behind its ``statusSummary``,
    a DescribeJobQueues answer with a queue that is ``INVALID``, DescribeJobs in another order.
    ``page_list_jobs(n)``: ListJobs answers come in pages of at most ``n`` job summaries, as
    AWS pages them (moto returns everything in one answer and never a ``nextToken``). The
    first request is forwarded; the proxy relays the first ``n`` summaries with its own
    ``nextToken`` and keeps the rest; a request carrying that token is answered from what was
    kept (not forwarded), ``n`` at a time, with a new token while more remain.

Counters: ``forwarded[op]``, ``faulted[(op, kind)]``, ``requests[op]`` (all calls seen),
``hidden[op]`` (job summaries hidden by ``list_lag``), ``rewritten[op]`` (answers changed by a
``rewrite``), ``paged[op]`` (follow-up pages answered from kept summaries). ``stop()`` closes the listening socket
and every open connection; all waits are bounded.
"""
from __future__ import annotations

import http.client
import json
import random
import re
import socket
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

KINDS = ("429", "500", "503", "drop", "lost")
SCRIPTED_KINDS = KINDS + ("403",)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length"}
BATCH_OPERATIONS = (
    "SubmitJob", "DescribeJobs", "ListJobs", "TerminateJob", "CancelJob", "DescribeJobQueues",
    "DescribeJobDefinitions", "DescribeComputeEnvironments", "RegisterJobDefinition", "CreateJobQueue",
    "CreateComputeEnvironment", "UpdateJobQueue", "ListTagsForResource", "DescribeSchedulingPolicies")
_BATCH_BY_PATH = {"/v1/" + op.lower(): op for op in BATCH_OPERATIONS}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def classify(method: str, path: str, headers: Any) -> tuple[str, str]:
    """``(service, operation)`` of one request to an AWS endpoint."""
    url = urlsplit(path)
    auth = headers.get("Authorization", "") or ""
    m = _CREDENTIAL.search(auth)
    service = m.group(1) if m else ""
    target = headers.get("X-Amz-Target", "") or ""
    if not service:
        if url.path.startswith("/v1/"):
            service = "batch"
        elif target.startswith("Logs_"):
            service = "logs"
        else:
            service = "s3"
    if service == "batch":
        if url.path.startswith("/v1/tags/"):
            return service, {"GET": "ListTagsForResource", "POST": "TagResource",
                             "DELETE": "UntagResource"}.get(method, "Tags")
        return service, _BATCH_BY_PATH.get(url.path.lower().rstrip("/"), "batch:" + url.path)
    if service == "logs":
        return service, target.rsplit(".", 1)[-1] or "logs"
    if service != "s3":
        return service, target.rsplit(".", 1)[-1] if target else f"{service}:{method}"
    query = parse_qs(url.query, keep_blank_values=True)
    _, bucket, key = (unquote(url.path).split("/", 2) + ["", ""])[:3]
    if method == "HEAD":
        return service, "HeadObject" if key else "HeadBucket"
    if method == "GET":
        if key:
            for sub in ("tagging", "acl", "attributes", "uploadId"):
                if sub in query:
                    return service, {"uploadId": "ListParts"}.get(sub, "GetObject" + sub.capitalize())
            return service, "GetObject"
        if query.get("list-type") == ["2"]:
            return service, "ListObjectsV2"
        for sub, op in (("location", "GetBucketLocation"), ("versions", "ListObjectVersions"),
                        ("uploads", "ListMultipartUploads"), ("versioning", "GetBucketVersioning")):
            if sub in query:
                return service, op
        return service, "ListObjects" if bucket else "ListBuckets"
    if method == "PUT":
        if not key:
            return service, "CreateBucket" if not query else "PutBucketConfig"
        if "uploadId" in query:
            return service, "UploadPart"
        if headers.get("x-amz-copy-source"):
            return service, "CopyObject"
        if "tagging" in query:
            return service, "PutObjectTagging"
        return service, "PutObject"
    if method == "DELETE":
        if "uploadId" in query:
            return service, "AbortMultipartUpload"
        return service, "DeleteObject" if key else "DeleteBucket"
    if method == "POST":
        if "delete" in query:
            return service, "DeleteObjects"
        if "uploads" in query:
            return service, "CreateMultipartUpload"
        if "uploadId" in query:
            return service, "CompleteMultipartUpload"
    return service, f"s3:{method}"


def error_answer(service: str, kind: str, op: str) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body AWS sends for this fault."""
    if service == "s3":
        status, code, text = {"403": (403, "AccessDenied", "Access Denied"),
                              "429": (503, "SlowDown", "Please reduce your request rate."),
                              "500": (500, "InternalError", "We encountered an internal error. Please try again."),
                              "503": (503, "SlowDown", "Please reduce your request rate.")}[kind]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{text}</Message>'
                f"<RequestId>FAULTPROXY</RequestId></Error>").encode()
        return status, {"Content-Type": "application/xml", "x-amz-request-id": "FAULTPROXY"}, body
    if service == "logs":
        status, code = {"403": (400, "AccessDeniedException"), "429": (400, "ThrottlingException"), "500": (500, "ServiceUnavailableException"),
                        "503": (503, "ServiceUnavailableException")}[kind]
        ctype = "application/x-amz-json-1.1"
    else:
        status, code = {"403": (403, "AccessDeniedException"), "429": (429, "TooManyRequestsException"), "500": (500, "ServerException"),
                        "503": (503, "ServiceUnavailableException")}[kind]
        ctype = "application/json"
    body = json.dumps({"__type": code, "message": f"injected by faultproxy ({op})"}).encode()
    return status, {"Content-Type": ctype, "x-amzn-ErrorType": f"{code}:", "x-amzn-RequestId": "FAULTPROXY"}, body


def _json(body: bytes) -> dict:
    """A JSON object from a request or answer body ({} when it is not one)."""
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return   # a client that went away (killed, interrupted, timed out)
        super().handle_error(request, client_address)


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int = 0, rate: float = 0.0,
                 rates: dict[str, float] | None = None, kinds: Iterable[str] = KINDS,
                 op_kinds: dict[str, Iterable[str]] | None = None, max_consecutive: int | None = 3,
                 atomic_conditional_writes: bool = True, list_lag: float = 0.0, host: str = "127.0.0.1"):
        """``rate``: probability that a call of any operation is faulted; ``rates``: per operation
        (or per service, ``"s3:*"``) overrides; ``kinds``/``op_kinds``: which faults are drawn."""
        up = urlsplit(upstream)
        self.upstream_host, self.upstream_port = up.hostname or "127.0.0.1", up.port or 80
        self.seed, self.rate = seed, rate
        self.rates = dict(rates or {})
        self.kinds = tuple(kinds)
        self.op_kinds = {k: tuple(v) for k, v in (op_kinds or {}).items()}
        for k in self.kinds + tuple(x for v in self.op_kinds.values() for x in v):
            if k not in KINDS:
                raise ValueError(f"unknown fault kind {k!r}; one of {KINDS}")
        self.max_consecutive = max_consecutive
        self.atomic_conditional_writes = atomic_conditional_writes
        self.list_lag = list_lag
        self.host = host
        self.port = 0
        self.enabled = True
        self.requests: Counter = Counter()
        self.forwarded: Counter = Counter()
        self.faulted: Counter = Counter()   # (op, kind) -> n
        self.hidden: Counter = Counter()
        self.rewritten: Counter = Counter()
        self.paged: Counter = Counter()
        self.page_size: int | None = None      # page_list_jobs(n)
        self._pages: dict[str, list] = {}       # our nextToken -> the job summaries still to send
        self._rewrites: dict[str, list[Callable]] = {}
        #: (time, op, n-th call of op, fate or None, status forwarded or None), for post-mortems
        self.trace: list[tuple[float, str, int, str | None, int | None]] = []
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}
        self._streak: Counter = Counter()
        self._script: dict[str, deque] = {}
        self._after: dict[str, list[Callable]] = {}
        self._before: dict[str, list[Callable]] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._created: dict[str, float] = {}   # jobId -> time it was created (for list_lag)
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Variables that aim every boto3/s3fs client at the proxy."""
        return {name: self.url for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_BATCH",
                                            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")}

    # -- configuration ---------------------------------------------------------------------
    def script(self, op: str, kinds: Iterable[str | None]) -> None:
        """The next calls of ``op`` meet these fates in order (``None``: forwarded cleanly)."""
        kinds = list(kinds)
        for k in kinds:
            if k is not None and k not in SCRIPTED_KINDS:
                raise ValueError(f"unknown fault kind {k!r}; one of {SCRIPTED_KINDS}")
        with self._lock:
            self._script.setdefault(op, deque()).extend(kinds)

    def on_forwarded(self, op: str, fn: Callable[[int, dict], str | None]) -> None:
        self._after.setdefault(op, []).append(fn)

    def before_forward(self, op: str, fn: Callable[[int, dict], None]) -> None:
        self._before.setdefault(op, []).append(fn)

    def rewrite(self, op: str, fn: Callable[[dict, dict], dict | None]) -> None:
        """Pass every 200 JSON answer of ``op`` through ``fn(doc, info)`` before relaying it."""
        self._rewrites.setdefault(op, []).append(fn)

    def page_list_jobs(self, n: int | None) -> None:
        """ListJobs answers in pages of at most ``n`` summaries with a ``nextToken`` (None: off)."""
        if n is not None and n < 1:
            raise ValueError("a page holds at least one job summary")
        self.page_size = n

    def at(self, op: str, k: int, fn: Callable[[], str | None]) -> None:
        """Run ``fn()`` once, right after the server answered the k-th call of ``op``."""
        self.on_forwarded(op, lambda n, info: fn() if n == k else None)

    # -- figures ---------------------------------------------------------------------------
    def faults_by_kind(self) -> Counter:
        out: Counter = Counter()
        for (_, kind), n in self.faulted.items():
            out[kind] += n
        return out

    def faults_by_op(self) -> Counter:
        out: Counter = Counter()
        for (op, _), n in self.faulted.items():
            out[op] += n
        return out

    def summary(self) -> dict[str, Any]:
        total = sum(self.requests.values())
        faults = sum(self.faulted.values())
        return {"requests": total, "faulted": faults, "fault_rate": round(faults / total, 3) if total else 0.0,
                "by_kind": dict(sorted(self.faults_by_kind().items())),
                "by_op": {op: f"{self.faults_by_op()[op]}/{n}" for op, n in sorted(self.requests.items())}}

    # -- decisions -------------------------------------------------------------------------
    def _fate(self, service: str, op: str) -> tuple[int, str | None]:
        """(n, fault): this is the n-th call of ``op``; fault None means forward it cleanly."""
        with self._lock:
            n = self.requests[op] = self.requests[op] + 1
            return n, self._draw(service, op)

    def _draw(self, service: str, op: str) -> str | None:
        """Called under the lock."""
        queued = self._script.get(op)
        if queued:
            kind = queued.popleft()
            if kind is not None:
                self.faulted[(op, kind)] += 1
            return kind
        if not self.enabled:
            return None
        rate = self.rates.get(op, self.rates.get(f"{service}:*", self.rate))
        kinds = self.op_kinds.get(op, self.kinds)
        rng = self._rngs.get(op)
        if rng is None:
            rng = self._rngs[op] = random.Random(f"{self.seed}:{op}")
        draw, pick = rng.random(), rng.choice(kinds) if kinds else None
        if rate <= 0 or draw >= rate or pick is None or (
                self.max_consecutive is not None and self._streak[op] >= self.max_consecutive):
            self._streak[op] = 0
            return None
        self._streak[op] += 1
        self.faulted[(op, pick)] += 1
        return pick

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _page(self, doc: dict, request: dict) -> dict:
        """The first page of ``doc`` (a ListJobs answer); the rest is kept under a new token."""
        summaries = doc.get("jobSummaryList", [])
        size = min(self.page_size or len(summaries), int(request.get("maxResults") or 100))
        if len(summaries) > size:
            with self._lock:
                token = f"faultproxy-page-{len(self._pages) + 1}"
                self._pages[token] = summaries[size:]
            doc = dict(doc, jobSummaryList=summaries[:size], nextToken=token)
        return doc

    def _next_page(self, token: str, request: dict) -> bytes | None:
        """The answer to a ListJobs that carries one of our tokens (None: not ours)."""
        with self._lock:
            rest = self._pages.get(token)
            if rest is None:
                return None
            self.paged["ListJobs"] += 1
        return json.dumps(self._page({"jobSummaryList": rest}, request)).encode()

    def _filter_list(self, body: bytes) -> bytes:
        """Leave jobs created less than ``list_lag`` seconds ago out of a ListJobs answer."""
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        now = time.time()
        keep = []
        for summary in doc.get("jobSummaryList", []):
            created = self._created.get(summary.get("jobId", ""))
            if created is not None and now - created < self.list_lag:
                self.hidden["ListJobs"] += 1
                continue
            keep.append(summary)
        doc["jobSummaryList"] = keep
        return json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = 60

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._conns.add(self.connection)
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.owner._lock:
                self.owner._conns.discard(self.connection)
            if self._upstream is not None:
                self._upstream.close()

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding", "") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass   # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.owner
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                resp = self._upstream.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._upstream.close()
                    self._upstream = None
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive upstream connection went stale before the request was read
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handle(self) -> None:
        proxy = self.owner
        body = self._read_body()
        service, op = classify(self.command, self.path, self.headers)
        info = {"service": service, "op": op, "method": self.command, "path": self.path, "body": body,
                "headers": self.headers}
        seen, fate = proxy._fate(service, op)
        if fate in ("403", "429", "500", "503", "drop"):
            proxy.trace.append((time.time(), op, seen, fate, None))
        if fate == "drop":
            return self._drop()
        if fate in ("403", "429", "500", "503"):
            status, headers, payload = error_answer(service, fate, op)
            return self._answer(status, "Injected", list(headers.items()), payload, keep_length=False)
        for fn in proxy._before.get(op, ()):
            fn(seen, info)
        request = _json(body) if service == "batch" else {}
        if op == "ListJobs" and proxy.page_size and isinstance(request.get("nextToken"), str):
            page = proxy._next_page(request["nextToken"], request)
            if page is not None:
                proxy.trace.append((time.time(), op, seen, "page", 200))
                if fate == "lost":
                    return self._drop()
                return self._answer(200, "OK", [("Content-Type", "application/json"),
                                                ("x-amzn-RequestId", "FAULTPROXY")], page, keep_length=False)
        conditional = service == "s3" and op == "PutObject" and (
            self.headers.get("If-None-Match") or self.headers.get("If-Match"))
        try:
            if conditional and proxy.atomic_conditional_writes:
                with proxy._key_lock(urlsplit(self.path).path):
                    status, reason, headers, data = self._forward(body)
            else:
                status, reason, headers, data = self._forward(body)
        except (OSError, http.client.HTTPException):
            proxy.trace.append((time.time(), op, seen, "upstream-error", None))
            return self._drop()
        with proxy._lock:
            proxy.forwarded[op] += 1
            n = proxy.forwarded[op]
            proxy.trace.append((time.time(), op, seen, fate, status))
        if op == "SubmitJob" and status == 200:
            try:
                proxy._created[json.loads(data)["jobId"]] = time.time()
            except (ValueError, KeyError):
                pass
        if op == "ListJobs" and status == 200 and proxy.list_lag > 0:
            data = proxy._filter_list(data)
        if status == 200 and (proxy._rewrites.get(op) or (op == "ListJobs" and proxy.page_size)):
            doc = _json(data)
            before = json.dumps(doc, sort_keys=True)
            for fn in proxy._rewrites.get(op, ()):
                doc = fn(doc, {**info, "n": n, "request": request}) or doc
            if json.dumps(doc, sort_keys=True) != before:
                with proxy._lock:
                    proxy.rewritten[op] += 1
            if op == "ListJobs" and proxy.page_size:
                doc = proxy._page(doc, request)
            data = json.dumps(doc).encode()
        info.update(status=status, answer=data)
        verdict = None
        for fn in proxy._after.get(op, ()):
            verdict = fn(n, info) or verdict
        if fate == "lost" or verdict == "drop":
            return self._drop()
        self._answer(status, reason, headers, data, keep_length=self.command == "HEAD")

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes,
                keep_length: bool) -> None:
        self.send_response_only(status, reason)
        length_sent = False
        for k, v in headers:
            low = k.lower()
            if low == "content-length" and keep_length:
                self.send_header(k, v)
                length_sent = True
            elif low not in HOP_BY_HOP:
                self.send_header(k, v)
        if not length_sent and self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        elif not length_sent:
            self.send_header("Content-Length", "0")
        try:
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:   # the client went away (killed, interrupted)
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET
