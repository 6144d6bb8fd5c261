"""Contract tests for s3rules.storage.Storage, run against every backend.

Backends: a local temporary directory, fsspec's memory://, moto's S3 server and a real
SeaweedFS S3 server (tests/s3servers.py). S3 request counts are measured with botocore
event hooks on the client s3fs uses (``fs.s3.meta.events``, "before-send.s3"), which fire
once per HTTP request actually sent (retries included).
"""
from __future__ import annotations

import math
import os
import time
import uuid

import pytest

from s3rules.errors import StorageError
from s3rules.storage import Storage

BACKENDS = ["local", "memory", "moto", "seaweedfs"]
S3_BACKENDS = ["moto", "seaweedfs"]


def _s3_env(monkeypatch, server) -> None:
    """Route every AWS client of this process to ``server`` through the environment only."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)


class Backend:
    """One place to write test files the way a job would (not through Storage)."""

    def __init__(self, kind: str, root: str, server=None, bucket: str | None = None):
        self.kind, self.root, self.server, self.bucket = kind, root, server, bucket
        self.is_s3 = server is not None

    def url(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def write(self, rel: str, data: bytes = b"x") -> str:
        url = self.url(rel)
        if self.kind == "local":
            os.makedirs(os.path.dirname(url), exist_ok=True)
            with open(url, "wb") as f:
                f.write(data)
        elif self.kind == "memory":
            import fsspec

            fsspec.filesystem("memory").pipe(url, data)
        else:
            key = url[len(f"s3://{self.bucket}/"):]
            self.server.client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return url

    def make_dir(self, rel: str) -> None:
        """Make ``rel`` a directory/prefix holding a child (and, on S3, a 'dir/' marker too)."""
        self.write(f"{rel}/child")
        if self.kind == "local":
            return
        if self.is_s3:
            self.server.client().put_object(Bucket=self.bucket, Key=self.url(rel)[len(f"s3://{self.bucket}/"):] + "/",
                                            Body=b"")

    def key(self, url: str) -> str:
        """The object key of an S3 ``url`` of this backend."""
        return url[len(f"s3://{self.bucket}/"):]

    def try_make_dir(self, rel: str) -> None:
        """An empty directory at ``rel`` (an ``rel/`` marker object on S3), unless a file is in the way."""
        url = self.url(rel)
        try:
            if self.kind == "local":
                os.makedirs(url, exist_ok=True)
            elif self.kind == "memory":
                fs = _memory_fs()
                if not _memory_file_in_the_way(fs, url, as_dir=True):
                    fs.makedirs(url, exist_ok=True)
            else:
                self.server.client().put_object(Bucket=self.bucket, Key=self.key(url) + "/", Body=b"")
        except Exception as e:
            self._unless_in_the_way(e)

    def try_write(self, rel: str) -> None:
        """A file at ``rel`` unless something is in the way (local rules; S3 has none)."""
        url = self.url(rel)
        try:
            if self.kind == "local":
                os.makedirs(os.path.dirname(url), exist_ok=True)
                if not os.path.isdir(url):
                    self.write(rel)
            elif self.kind == "memory":
                if not _memory_file_in_the_way(_memory_fs(), url, as_dir=False):
                    self.write(rel)
            else:
                self.write(rel)
        except Exception as e:
            self._unless_in_the_way(e)

    def _unless_in_the_way(self, exc: Exception) -> None:
        """Re-raise ``exc`` unless it says "something is in the way": an OSError locally, a
        ClientError from a real S3 server refusing a key that is also a "directory"."""
        in_the_way = type(exc).__name__ == "ClientError" if self.is_s3 else isinstance(exc, OSError)
        if not in_the_way:
            raise exc

    def is_file(self, url: str) -> bool:
        """Whether ``url`` is a file, asked without Storage (os, fsspec, boto3)."""
        if self.kind == "local":
            return os.path.isfile(url)
        if self.kind == "memory":
            return _memory_fs().isfile(url)
        from botocore.exceptions import ClientError

        try:
            self.server.client().head_object(Bucket=self.bucket, Key=self.key(url))
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def wait_for_newer_mtime(self) -> None:
        """Let the clock pass the backend's mtime granularity (S3: whole seconds)."""
        if self.is_s3:
            now = time.time()
            time.sleep(math.floor(now) + 1.05 - now)
        else:
            time.sleep(0.02)


def _memory_fs():
    import fsspec

    return fsspec.filesystem("memory")


def _memory_file_in_the_way(fs, url: str, as_dir: bool) -> bool:
    """memory:// lets a file and a directory share a name (then ``info`` calls it a directory
    while ``ls`` lists a file too); local disks, and the trees these tests build, do not."""
    path = fs._strip_protocol(url)
    parts = path.split("/")
    if any(fs.isfile("/".join(parts[:i])) for i in range(2, len(parts))):
        return True
    return fs.isfile(path) if as_dir else fs.isdir(path)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch):
    kind = request.param
    if kind == "local":
        yield Backend("local", str(tmp_path))
        return
    if kind == "memory":
        root = f"memory://s3rules-test-{uuid.uuid4().hex[:10]}"
        yield Backend("memory", root)
        import fsspec

        fs = fsspec.filesystem("memory")
        for k in [k for k in fs.store if k.startswith(root[len("memory:/"):])]:
            fs.store.pop(k, None)
        for d in [d for d in fs.pseudo_dirs if d.startswith(root[len("memory:/"):])]:
            fs.pseudo_dirs.remove(d)
        return
    server = request.getfixturevalue({"moto": "moto_s3", "seaweedfs": "seaweed_s3"}[kind])
    _s3_env(monkeypatch, server)
    bucket = server.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    yield Backend(kind, f"s3://{bucket}/run", server, bucket)


@pytest.fixture(params=S3_BACKENDS)
def s3(request, monkeypatch):
    server = request.getfixturevalue({"moto": "moto_s3", "seaweedfs": "seaweed_s3"}[request.param])
    _s3_env(monkeypatch, server)
    return server


class RequestCounter:
    """Counts S3 HTTP requests by operation on the client a Storage's s3fs uses."""

    def __init__(self, storage: Storage, sample_url: str):
        fs = storage.filesystem(sample_url)
        fs.connect()  # creates fs.s3, the aiobotocore client
        self.calls: list[str] = []
        fs.s3.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, event_name=None, **kwargs):
        self.calls.append(event_name.rsplit(".", 1)[-1])

    def count(self, op: str | None = None) -> int:
        return len(self.calls) if op is None else self.calls.count(op)

    def reset(self) -> None:
        self.calls.clear()


# ---------------------------------------------------------------------- contract


def test_missing_present_and_partial_sets(backend):
    a = backend.write("out/a.txt")
    b = backend.write("out/b b+ü.txt")  # space, plus and non-ASCII in a name
    lone = backend.write("lone/only.txt")
    missing_sibling = backend.url("out/c.txt")
    missing_lone = backend.url("elsewhere/missing.txt")
    missing_dir = backend.url("no/such/dir/x.txt")
    st = Storage()
    assert st.stat_many([]) == {}
    res = st.stat_many([a, b, missing_sibling, lone, missing_lone, missing_dir, a])
    assert set(res) == {a, b, lone}
    assert all(isinstance(v, float) and v > 0 for v in res.values())
    # single-path helpers, on a fresh Storage (nothing cached) and on the same one
    for s in (Storage(), st):
        assert s.exists(a) and s.exists(lone)
        assert not s.exists(missing_sibling) and not s.exists(missing_lone)
        assert s.mtime(missing_dir) is None
        assert s.mtime(a) == pytest.approx(res[a])
    # all missing
    assert Storage().stat_many([missing_sibling, missing_lone, missing_dir]) == {}
    # existence alone (what planning asks) agrees with the mtimes
    assert Storage().exists_many([a, b, missing_sibling, lone, missing_lone, missing_dir, a]) == {a, b, lone}
    assert Storage().exists_many([]) == set()


def test_directory_or_prefix_is_never_a_file(backend):
    backend.make_dir("out/a.txt")  # out/a.txt/child (+ out/a.txt/ marker on S3)
    sibling = backend.write("out/b.txt")
    a = backend.url("out/a.txt")
    # lone lookup (stat / HEAD / info) and grouped lookup (listing) agree
    assert Storage().stat_many([a]) == {}
    assert set(Storage().stat_many([a, sibling])) == {sibling}
    assert Storage().exists_many([a, sibling]) == {sibling}
    assert not Storage().exists(a + "/")
    assert Storage().exists(backend.url("out/a.txt/child"))
    if backend.kind == "local":
        assert Storage().stat_many([backend.root + "/out"]) == {}


def test_mtimes_order_follows_write_order(backend):
    first = backend.write("out/first.txt")
    backend.wait_for_newer_mtime()
    second = backend.write("out/second.txt")
    grouped = Storage().stat_many([first, second])
    assert grouped[first] < grouped[second]
    lone = Storage()
    assert lone.mtime(first) < lone.mtime(second)
    # a lone lookup and a listing report the same time for the same file
    assert lone.mtime(first) == pytest.approx(grouped[first])


def test_invalidate_makes_new_files_visible(backend):
    x = backend.write("out/x.txt")
    y = backend.url("out/y.txt")
    z = backend.url("solo/z.txt")
    st = Storage()
    assert set(st.stat_many([x, y])) == {x}  # listing of out/
    assert not st.exists(z)  # lone lookup of z
    backend.write("out/y.txt")
    backend.write("solo/z.txt")
    if backend.kind != "local":  # remote results are cached until invalidated
        assert set(st.stat_many([x, y])) == {x}
        assert not st.exists(z)
    st.invalidate([y, z])
    assert set(st.stat_many([x, y])) == {x, y}
    assert st.exists(z)


def test_invalidate_sees_rewritten_mtime(backend):
    x = backend.write("out/x.txt")
    other = backend.write("out/other.txt")
    st = Storage()
    before = st.stat_many([x, other])[x]
    backend.wait_for_newer_mtime()
    backend.write("out/x.txt", b"new")
    st.invalidate([x])
    assert st.stat_many([x, other])[x] > before


def test_remove(backend):
    x = backend.write("out/x.txt")
    keep = backend.write("out/keep.txt")
    st = Storage()
    assert set(st.stat_many([x, keep])) == {x, keep}
    st.remove(x)
    assert set(st.stat_many([x, keep])) == {keep}  # remove() invalidates
    st.remove(x)  # missing is fine
    st.remove(backend.url("never/existed.txt"))
    assert set(Storage().stat_many([x, keep])) == {keep}
    assert not Storage().exists(x)


def test_remove_never_removes_a_directory(backend):
    backend.make_dir("d")  # d/child (+ d/ marker on S3)
    d = backend.url("d")
    st = Storage()
    with pytest.raises(StorageError, match="directory|prefix"):
        st.remove(d + "/")
    if backend.is_s3:
        st.remove(d)  # on S3 "d" is just a key that does not exist: nothing to delete
    else:
        with pytest.raises(StorageError, match="directory"):
            st.remove(d)
    if backend.kind == "local":
        assert os.path.isdir(d)
    assert Storage().exists(backend.url("d/child"))
    assert backend.is_file(backend.url("d/child"))


def test_make_parent_dirs(backend):
    target = backend.url("deep/er/est/out.txt")
    st = Storage()
    st.make_parent_dirs(target)
    st.make_parent_dirs(target)  # idempotent
    if backend.kind == "local":
        assert os.path.isdir(os.path.dirname(target))
        blocker = backend.write("blocked")
        with pytest.raises(StorageError, match="in the way"):
            st.make_parent_dirs(blocker + "/sub/out.txt")
        assert not st.exists(blocker + "/sub/out.txt")  # ENOTDIR means missing, not an error
    else:
        assert not st.exists(target)  # object stores: nothing to create, nothing created


# ---------------------------------------------------------------------- local specifics


def test_local_costs_one_scandir_per_directory(tmp_path, monkeypatch):
    paths = []
    for d in range(10):
        (tmp_path / f"d{d}").mkdir()
        for i in range(150):
            p = tmp_path / f"d{d}" / f"f{i}"
            if i % 3:
                p.write_bytes(b"")
            paths.append(str(p))
    (tmp_path / "d0" / "f0").mkdir()  # a directory named like a target
    calls = {"scandir": 0, "stat": 0}
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(*a, **k):
        calls["scandir"] += 1
        return real_scandir(*a, **k)

    def stat(*a, **k):
        calls["stat"] += 1
        return real_stat(*a, **k)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)
    res = Storage().stat_many(paths)
    assert calls == {"scandir": 10, "stat": 0}
    assert set(res) == {p for p in paths if os.path.isfile(p)}
    assert len(res) == 10 * 100


def test_local_file_urls_symlinks_and_relative_paths(tmp_path, monkeypatch):
    real = tmp_path / "real.txt"
    real.write_bytes(b"x")
    (tmp_path / "link.txt").symlink_to(real)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dirlink").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)
    paths = [str(real), f"file://{real}", str(tmp_path / "link.txt"), str(tmp_path / "dangling.txt"),
             str(tmp_path / "dirlink"), "real.txt", "./real.txt", "missing.txt"]
    res = Storage().stat_many(paths)
    assert set(res) == {str(real), f"file://{real}", str(tmp_path / "link.txt"), "real.txt", "./real.txt"}
    assert len(set(res.values())) == 1
    assert Storage.is_local("/a/b") and Storage.is_local("file:///a/b") and Storage.is_local("rel/x")
    assert not Storage.is_local("s3://b/k") and not Storage.is_local("memory://x/y")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_local_unreadable_directory_is_an_error(tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    (d / "a").write_bytes(b"")
    d.chmod(0)
    try:
        with pytest.raises(StorageError, match="cannot check"):
            Storage().stat_many([str(d / "a"), str(d / "b")])
    finally:
        d.chmod(0o755)


# ---------------------------------------------------------------------- S3 specifics


@pytest.fixture(scope="module")
def seeded_prefix(request):
    """Per server: a bucket with 2,500 objects under one prefix (seeded once)."""
    cache: dict[str, tuple[str, list[str]]] = {}

    def get(server) -> tuple[str, list[str]]:
        if server.name not in cache:
            bucket = server.make_bucket(f"s3rules-many-{uuid.uuid4().hex[:10]}")
            keys = [f"many/obj-{i:05d}.dat" for i in range(2500)]
            server.put_many(bucket, keys + ["many/sub/nested.dat", "lone/one.dat"])
            cache[server.name] = (bucket, keys)
        return cache[server.name]

    return get


def test_s3_request_counts(s3, seeded_prefix):
    bucket, keys = seeded_prefix(s3)
    targets = [f"s3://{bucket}/{k}" for k in keys]
    missing = [f"s3://{bucket}/many/absent-{i}.dat" for i in range(50)]
    st = Storage()
    rc = RequestCounter(st, targets[0])

    res = st.stat_many(targets + missing + [f"s3://{bucket}/many/sub"])
    assert set(res) == set(targets)
    assert rc.count("ListObjectsV2") == math.ceil(2500 / 1000) == 3
    assert rc.count() == 3  # no HEAD, no HeadBucket

    rc.reset()
    assert st.stat_many(targets[:10]) == {t: res[t] for t in targets[:10]}
    assert rc.count() == 0  # served from the cached listing

    rc.reset()  # a lone present target: one HEAD
    assert st.exists(f"s3://{bucket}/lone/one.dat")
    assert rc.calls == ["HeadObject"]

    rc.reset()  # a lone missing target in a bucket already proven to exist: one HEAD
    assert not st.exists(f"s3://{bucket}/lone/none.dat")
    assert rc.calls == ["HeadObject"]

    # A fresh Storage: a lone missing target costs HEAD + one HeadBucket (a 404 HEAD cannot
    # tell a missing key from a missing bucket); the bucket check is not repeated.
    fresh = Storage()
    rc2 = RequestCounter(fresh, targets[0])
    assert not fresh.exists(f"s3://{bucket}/lone/none.dat")
    assert rc2.calls == ["HeadObject", "HeadBucket"]
    rc2.reset()
    assert not fresh.exists(f"s3://{bucket}/other/none.dat")
    assert rc2.calls == ["HeadObject"]

    # Several prefixes: many/ and many/sub/ share the ancestor many/, whose first page settles
    # the two targets in many/ but not the two in many/sub/, 2,500 keys on: walking on would
    # save nothing, so many/sub/ is listed on its own; lone/one.dat, alone, costs a HEAD.
    third = Storage()
    rc3 = RequestCounter(third, targets[0])
    res = third.stat_many([targets[0], targets[1], f"s3://{bucket}/lone/one.dat",
                           f"s3://{bucket}/many/sub/nested.dat", f"s3://{bucket}/many/sub/none.dat"])
    assert set(res) == {targets[0], targets[1], f"s3://{bucket}/lone/one.dat",
                        f"s3://{bucket}/many/sub/nested.dat"}
    assert sorted(rc3.calls) == ["HeadObject", "ListObjectsV2", "ListObjectsV2"]


def test_s3_invalidate_clears_s3fs_listing_cache(s3):
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    st = Storage()
    fs = st.filesystem(f"s3://{bucket}/x")
    s3.client().put_object(Bucket=bucket, Key="d/a", Body=b"")
    assert fs.ls(f"{bucket}/d") == [f"{bucket}/d/a"]  # fills s3fs's dircache
    s3.client().put_object(Bucket=bucket, Key="d/b", Body=b"")
    st.invalidate([f"s3://{bucket}/d/b"])
    assert fs.ls(f"{bucket}/d") == [f"{bucket}/d/a", f"{bucket}/d/b"]


def test_s3_nonexistent_bucket_is_an_error(s3):
    bucket = f"s3rules-nosuch-{uuid.uuid4().hex[:10]}"
    cases = [
        [f"s3://{bucket}/out/a.txt"],  # lone: HEAD 404, then HeadBucket 404
        [f"s3://{bucket}/out/a.txt", f"s3://{bucket}/out/b.txt"],  # listing: NoSuchBucket
        [f"s3://{bucket}/results/S{i}/x.bam" for i in range(3)],  # a walk of results/: NoSuchBucket
    ]
    for paths in cases:
        with pytest.raises(StorageError) as info:
            Storage().stat_many(paths)
        msg = str(info.value)
        assert bucket in msg and "does not exist" in msg and "\n" not in msg
        assert s3.env()["AWS_SECRET_ACCESS_KEY"] not in msg
        assert s3.env()["AWS_ACCESS_KEY_ID"] not in msg
    with pytest.raises(StorageError, match="does not exist"):
        Storage().remove(f"s3://{bucket}/out/a.txt")


def test_s3_explicit_storage_options_without_env(s3, monkeypatch):
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    s3.client().put_object(Bucket=bucket, Key="k/a", Body=b"")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    st = Storage({"s3": s3.storage_options()})
    assert set(st.stat_many([f"s3://{bucket}/k/a", f"s3://{bucket}/k/b"])) == {f"s3://{bucket}/k/a"}


def test_s3_no_credentials_is_an_error(s3, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    with pytest.raises(StorageError, match="credentials"):
        Storage().stat_many(["s3://some-bucket/a", "s3://some-bucket/b"])


def test_s3_unreachable_endpoint_is_an_error(s3, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", dead)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore would retry for ~9 s
    with pytest.raises(StorageError, match="cannot reach S3") as info:
        Storage().stat_many(["s3://some-bucket/a"])
    assert s3.env()["AWS_SECRET_ACCESS_KEY"] not in str(info.value)


def test_seaweedfs_rejects_wrong_credentials(seaweed_s3, monkeypatch):
    """A real server checks signatures (moto does not): the message says so, without secrets."""
    _s3_env(monkeypatch, seaweed_s3)
    bucket = seaweed_s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "s3rules-wrong-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3rules-wrong-secret-value")
    # a lone target is a HEAD, whose 403 cannot tell a bad key from a missing permission; a
    # listing's answer names the bad key
    for paths, start in (([f"s3://{bucket}/a"], f"permission denied checking s3://{bucket}/a "),
                         ([f"s3://{bucket}/a", f"s3://{bucket}/b"],
                          f"AWS rejected the credentials used to check s3://{bucket}/ ")):
        with pytest.raises(StorageError) as info:
            Storage().stat_many(paths)
        msg = str(info.value)
        assert msg.startswith(start), msg
        assert "s3rules-wrong-secret-value" not in msg and "s3rules-wrong-key" not in msg


def test_conditional_put_if_none_match(s3):
    """Both servers refuse PutObject(If-None-Match='*') on an existing key with 412 (for leases)."""
    from botocore.exceptions import ClientError

    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    c = s3.client()
    c.put_object(Bucket=bucket, Key="lease", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        c.put_object(Bucket=bucket, Key="lease", Body=b"2", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key="lease")["Body"].read() == b"1"


def test_s3_one_listing_per_prefix_many_prefixes(s3):
    """At most one listing per prefix: 20 sibling prefixes are settled by one listing of their
    ancestor; prefixes 1,100 keys apart, where walking the ancestor saves nothing, one each."""
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    keys = [f"sample{i:02d}/{name}" for i in range(20) for name in ("r1.fq", "r2.fq")]
    apart = [f"{d}/{name}" for d in ("a", "m", "z") for name in ("r1.fq", "r2.fq")]
    fillers = [f"{d}/f{i:04d}" for d in ("f", "p") for i in range(1100)]   # after a/, after m/
    s3.put_many(bucket, keys[::2] + apart[::2] + fillers)  # only r1 exists
    for names in (keys, apart):
        st = Storage()
        rc = RequestCounter(st, f"s3://{bucket}/x")
        res = st.stat_many(f"s3://{bucket}/{k}" for k in names)
        assert set(res) == {f"s3://{bucket}/{k}" for k in names[::2]}
        assert rc.calls == ["ListObjectsV2"] * (1 if names is keys else 3)


@pytest.fixture(scope="module")
def sample_folders():
    """Per server (seeded once): bucket ``dense``, 10,000 folders results/S{i}/ each holding
    log.txt, and x.bam and x.bam.bai for even i; bucket ``sparse``, 6 folders S{i}/ each
    holding x.bam after 1,050 chunks/ files."""
    cache: dict[str, dict] = {}

    def get(server) -> dict:
        if server.name not in cache:
            dense = [f"results/S{i}/{name}" for i in range(10_000)
                     for name in ("log.txt", "x.bam", "x.bam.bai")[: 3 if i % 2 == 0 else 1]]
            sparse = [f"S{i}/{name}" for i in range(6)
                      for name in [f"chunks/c{j:04d}" for j in range(1050)] + ["x.bam"]]
            buckets = {"dense": dense, "sparse": sparse}
            for kind, keys in buckets.items():
                buckets[kind] = server.make_bucket(f"s3rules-{kind}-{uuid.uuid4().hex[:10]}")
                server.put_many(buckets[kind], keys)
            cache[server.name] = {**buckets, "objects": len(dense)}
        return cache[server.name]

    return get


def _listed_mtimes(server, bucket: str) -> dict[str, float]:
    """Every object of ``bucket`` with its mtime, as boto3's own listing says."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {f"s3://{bucket}/{o['Key']}": o["LastModified"].timestamp()
            for page in pages for o in page.get("Contents", ())}


def test_s3_sample_folders_cost_one_listing_per_1000_objects(s3, sample_folders):
    """10,000 targets results/S{i}/x.bam, half present, each alone in its folder: a walk of
    results/, not one HEAD per target; x.bam with x.bam.bai (two per folder) likewise."""
    seeded = sample_folders(s3)
    bucket = seeded["dense"]
    truth = _listed_mtimes(s3, bucket)
    bound = math.ceil(seeded["objects"] / 1000) + 10
    for names in (["x.bam"], ["x.bam", "x.bam.bai"]):
        targets = [f"s3://{bucket}/results/S{i}/{name}" for i in range(10_000) for name in names]
        st = Storage()
        rc = RequestCounter(st, targets[0])
        res = st.stat_many(targets)
        assert res == {t: truth[t] for t in targets if t in truth}   # the right files, exact mtimes
        assert len(res) == 5_000 * len(names)
        assert rc.count() <= bound, (names, rc.count(), bound)
        assert rc.count("HeadObject") == 0
        rc.reset()
        assert st.stat_many(targets) == res and rc.calls == []   # asked again: all cached
        st.invalidate([targets[1]])   # S0/x.bam.bai or S1/x.bam: one HEAD, no walk
        assert st.stat_many(targets) == res and rc.calls == ["HeadObject"]


def test_s3_sparse_sample_folders_cost_no_more_than_one_request_per_target(s3, sample_folders):
    """Six x.bam, each after 1,050 keys nobody asked for: the first page of the walk settles
    one target, so walking on would save nothing and the rest cost one HEAD each (a plain walk
    would take 7 pages, one HEAD per target 6 requests)."""
    bucket = sample_folders(s3)["sparse"]
    targets = [f"s3://{bucket}/S{i}/x.bam" for i in range(6)]
    st = Storage()
    rc = RequestCounter(st, targets[0])
    res = st.stat_many(targets)
    assert res == {t: _listed_mtimes(s3, bucket)[t] for t in targets}
    assert sorted(rc.calls) == ["HeadObject"] * 5 + ["ListObjectsV2"]
    rc.reset()
    assert st.stat_many(targets) == res and rc.calls == []


def test_s3_walk_agrees_with_a_plain_listing_whatever_the_key_order(s3, monkeypatch):
    """Folder names that S3 (bytes: ``S1 a/`` < ``S1-b/`` < ``S1/``) and SeaweedFS (directories:
    ``S1/`` first) sort differently, walked with pages of 1 to 1,000 keys so that pages end
    everywhere, in as many chains as the cost rule picks or in 1 or 3 whatever it costs: every
    target is found, with its mtime, or missing exactly as boto3's plain listing says; as
    picked, never more than one request per target."""
    from s3rules.storage import s3sweep

    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    folders = ["S1", "S1 a", "S1!", "S1-b", "S1.b", "S10", "S1é", "S2", "S3/deep"]
    existing = [f"mix/{d}/{name}" for i, d in enumerate(folders)
                for name in ("x.ba!", "x.bal", "x.bam.bai", "y") + (("x.bam",) if i % 2 else ())]
    s3.put_many(bucket, existing + ["mix/S2!"])   # SeaweedFS lists nothing below StartAfter "mix/S2"
    targets = [f"s3://{bucket}/mix/{d}/{name}" for d in folders for name in ("x.bam", "x.bal")]
    targets += [f"s3://{bucket}/mix/S2!", f"s3://{bucket}/mix/S1-"]
    present = _listed_mtimes(s3, bucket)
    picked = s3sweep.chain_count
    for chains in (None, 1, 3):
        forced = (lambda settled, open_keys, *_: min(chains, open_keys)) if chains else picked
        monkeypatch.setattr(s3sweep, "chain_count", forced)
        for page_keys in (1, 2, 3, 5, 1000):
            monkeypatch.setattr(s3sweep, "PAGE_KEYS", page_keys)
            st = Storage()
            rc = RequestCounter(st, targets[0])
            found = st.stat_many(targets)
            assert found == {t: present[t] for t in targets if t in present}, (chains, page_keys)
            assert chains or rc.count() <= len(targets), page_keys


# ---------------------------------------------------------------------- property


def test_stat_many_matches_an_independent_check(backend):
    """Any tree of files and directories: grouped, existence-only and lone lookups all agree
    with the backend asked directly (os.path.isfile, fsspec's isfile, boto3's HeadObject)."""
    from hypothesis import given, settings
    from hypothesis import strategies as S

    names = S.sampled_from(["a", "b", "c.txt", "d d", "é"])
    rel = S.lists(names, min_size=1, max_size=3).map("/".join)

    # S3 servers take ~0.4 s per example (three fresh clients and a few dozen requests)
    @settings(max_examples=15 if backend.is_s3 else 40, deadline=None)
    @given(files=S.lists(rel, max_size=6), dirs=S.lists(rel, max_size=3), queries=S.lists(rel, max_size=8))
    def check(files, dirs, queries):
        root = f"prop-{uuid.uuid4().hex[:10]}"  # a fresh, empty tree per example
        for d in dirs:
            backend.try_make_dir(f"{root}/{d}")
        for f in files:
            backend.try_write(f"{root}/{f}")
        paths = [backend.url(f"{root}/{q}") for q in queries]
        expected = {p for p in paths if backend.is_file(p)}
        assert set(Storage().stat_many(paths)) == expected
        assert Storage().exists_many(paths) == expected
        lone = Storage()
        assert {p for p in paths if lone.exists(p)} == expected

    check()


# ---------------------------------------------------------------------- directory outputs


def test_directory_exists_when_it_holds_a_file(backend):
    """A path named in ``directories`` counts when a file is below it, at any depth; its mtime
    is the newest file's. Lone lookups and grouped ones (several under one parent) agree."""
    backend.write("out/full/a.txt")
    backend.wait_for_newer_mtime()
    newest = backend.write("out/full/sub/deep.txt")
    backend.write("out/other/x")
    backend.try_make_dir("out/empty")     # an empty directory (S3: an "empty/" marker object alone)
    backend.write("out/file")             # a file where a directory is expected
    sibling = backend.write("out/sibling.txt")
    full, other, empty, none, file = (backend.url(f"out/{n}") for n in ("full", "other", "empty", "none", "file"))
    dirs = [full, other, empty, none, file]
    mtimes = Storage().stat_many([*dirs, sibling], directories=dirs)
    assert set(mtimes) == {full, other, sibling}
    assert mtimes[full] == pytest.approx(Storage().mtime(newest))
    assert mtimes[full] > Storage().mtime(backend.url("out/full/a.txt"))
    for d in dirs:   # each alone: stat and existence
        expected = {d} if d in (full, other) else set()
        assert set(Storage().stat_many([d], directories=[d])) == expected
        assert Storage().exists_many([d], directories={d}) == expected
    expected = {full, other, sibling} | ({empty} if backend.is_s3 else set())   # base.py: a marker shows
    assert Storage().exists_many([*dirs, sibling], directories=dirs) == expected   # among CommonPrefixes
    # without directories= a directory is never a file; a path in directories but not asked is not looked at
    assert Storage().stat_many([full, sibling]) == {sibling: mtimes[sibling]}
    assert Storage().stat_many([sibling], directories=[full]) == {sibling: mtimes[sibling]}
    assert Storage().stat_many([full + "/"], directories=[full + "/"]) == {full + "/": mtimes[full]}


def test_directory_cache_is_invalidated_by_what_is_written_below(backend):
    d = backend.url("out/d")
    st = Storage()
    assert st.stat_many([d], directories=[d]) == {}
    first = backend.write("out/d/one")
    st.invalidate([d])
    assert set(st.stat_many([d], directories=[d])) == {d}
    before = st.stat_many([d], directories=[d])[d]
    backend.wait_for_newer_mtime()
    backend.write("out/d/deeper/two")
    st.invalidate([backend.url("out/d/deeper/two")])   # a file deep inside: the directory is asked again
    assert st.stat_many([d], directories=[d])[d] > before
    assert st.stat_many([first])   # files still answer as files


def test_remove_a_directory(backend):
    backend.write("d[1]/a")
    backend.write("d[1]/sub/b")
    backend.try_make_dir("d[1]/emptysub")
    keep = [backend.write("d1/x"), backend.write("d[1]2/y"), backend.write("d[1].txt")]   # [1] is no glob
    d = backend.url("d[1]")
    st = Storage()
    assert st.exists_many([d], directories=[d]) == {d}
    st.remove(d, directory=True)
    assert st.exists_many([d], directories=[d]) == set()   # remove() invalidates
    assert Storage().stat_many([d], directories=[d]) == {}
    assert Storage().exists_many(keep) == set(keep)
    if backend.kind == "local":
        assert not os.path.exists(d)
    st.remove(d, directory=True)   # missing is fine
    if backend.kind == "local":
        with pytest.raises(StorageError, match="is a file"):
            st.remove(keep[2], directory=True)
        assert os.path.isfile(keep[2])


def test_local_directory_set_aside_and_put_back(tmp_path):
    d = tmp_path / "out" / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "old.txt").write_text("old")
    st = Storage()
    aside = st.set_aside(str(d))
    assert aside and not d.exists() and os.path.isfile(os.path.join(aside, "sub", "old.txt"))
    (d / "new").mkdir(parents=True)       # the rerun's partial directory
    (d / "new" / "half.txt").write_text("half")
    st.put_back(str(d), aside)
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == ["sub", "sub/old.txt"]
    assert not os.path.exists(aside)
    # a killed run left the old directory aside: it stays there, the killed job's directory goes
    aside = st.set_aside(str(d))
    (d / "killed.txt").parent.mkdir()
    (d / "killed.txt").write_text("k")
    assert st.set_aside(str(d)) == aside and not d.exists()
    st.put_back(str(d), aside)
    assert (d / "sub" / "old.txt").read_text() == "old"
    st.remove(aside, directory=True)   # what the runner does once the rerun succeeded: nothing there now
    assert st.set_aside(str(tmp_path / "never")) is None


def test_s3_directory_request_counts(s3):
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    s3.put_many(bucket, [f"out/d{i}/part-{j}" for i in range(5) for j in range(3)] + ["out/d0/sub/deep"])
    dirs = [f"s3://{bucket}/out/d{i}" for i in range(8)]   # d5..d7 missing
    present = set(dirs[:5])
    st = Storage()
    rc = RequestCounter(st, dirs[0])
    assert st.exists_many(dirs, directories=dirs) == present
    assert rc.calls == ["ListObjectsV2"]   # the parent's CommonPrefixes
    rc.reset()
    assert set(st.stat_many(dirs, directories=dirs)) == present
    assert rc.calls == ["ListObjectsV2"] * 5   # one per directory, none for those known missing
    rc.reset()
    assert set(st.stat_many(dirs, directories=dirs)) == present and rc.calls == []   # cached
    fresh = Storage()
    rc = RequestCounter(fresh, dirs[0])
    assert fresh.exists_many([dirs[0]], directories=[dirs[0]]) == {dirs[0]}
    assert rc.calls == ["ListObjectsV2"]


def test_s3_remove_a_directory_batches_deletes(s3):
    bucket = s3.make_bucket(f"s3rules-{uuid.uuid4().hex[:12]}")
    s3.put_many(bucket, [f"big/part-{i:05d}" for i in range(1500)] + ["big/", "bigger/keep"])
    st = Storage()
    rc = RequestCounter(st, f"s3://{bucket}/big")
    st.remove(f"s3://{bucket}/big", directory=True)
    assert rc.count("DeleteObjects") == 2 and rc.count("DeleteObject") == 0
    left = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in left] == ["bigger/keep"]
    with pytest.raises(StorageError, match="whole bucket"):
        st.remove(f"s3://{bucket}", directory=True)
