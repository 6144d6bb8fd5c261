"""S3 (``s3://``, ``s3a://``) through s3fs's client: listings of prefixes and of their ancestors.

Targets are grouped by prefix. Prefixes that share an ancestor with another (per-sample
folders: ``results/{sample}/x.bam``) are walked with ``ListObjectsV2`` of that ancestor,
without delimiter, each call starting at the next target not yet settled (:mod:`.s3sweep`):
at most one request per target (bar a HEAD for a target no page reaches), and about
ceil(N/1000) + 1 + c for N objects below the ancestor, c being the chains walked at once (8,
or one per 16 pages). A prefix alone under its ancestor, or left when the walk's first page
shows that walking on saves nothing, costs one ``HeadObject`` when it holds ONE requested
key, and one ``ListObjectsV2`` with delimiter ``/`` when it holds SEVERAL (1,000 keys per
page, so N objects under one prefix cost ceil(N/1000) calls).

A directory output ``d`` is the prefix ``d/``: its mtime costs one ``ListObjectsV2`` of
``d/`` without delimiter (all pages); its existence alone, when it is the only one asked for
under its parent, the first page of that; when several are, one listing of the parent with
delimiter, whose CommonPrefixes name the non-empty ones. Removing one lists it and sends one
``DeleteObjects`` per 1,000 keys. Listings and lookups of one ``stat`` call run concurrently
on s3fs's event loop, at most ``Storage.max_concurrency`` at a time.

The requests are sent through s3fs's client and retry wrapper (``_call_s3``), not through
``fs.ls``/``fs.info``, which issue the same ListObjectsV2/HeadObject calls but: ``ls`` of
an empty prefix lists the grandparent too and then raises FileNotFoundError, which is also
what it raises for a missing bucket; ``info`` of a missing key costs a HEAD *and* a
ListObjectsV2 (to look for a "directory"). Here a lone target costs one ``HeadObject``
whether it exists or not (plus, once per bucket not yet seen to exist, a ``HeadBucket``
after a 404, because a 404 HEAD cannot tell a missing key from a missing bucket).

Endpoint: s3fs goes through aiobotocore/botocore, which honour ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_S3`` (and ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``...) from the
environment, so ``Storage`` needs no endpoint option; ``{"s3": {"endpoint_url": ...}}``
in ``storage_options`` still works and wins.

s3fs, aiobotocore and asyncio are imported only when an S3 path is first met.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext
from functools import partial
from typing import Any

from ..errors import StorageError
from .base import Owner, RemoteBackend, describe, to_epoch
from .s3sweep import Shared, by_ancestor, gather, walk

__all__ = ["S3_PROTOCOLS", "S3Backend", "is_s3", "prepare_options"]

S3_PROTOCOLS = ("s3", "s3a")

_DATA_LOADER: Any = None
_UNKNOWN = object()   # a directory the caches know nothing of
_DATA_LOADER_LOCK = threading.Lock()

_CREDENTIALS_MISSING = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")
_CREDENTIALS_REJECTED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                         "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException")
_DENIED = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")
_UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                "TimeoutError", "FSTimeoutError", "ProxyConnectionError")
# The IAM permission each action needs, for "permission denied" messages.
_NEEDED = {"list": "s3:ListBucket", "head": "s3:GetObject", "delete": "s3:DeleteObject",
           "head_bucket": "s3:ListBucket"}


def prepare_options(options: dict, max_concurrency: int) -> None:
    """Complete the s3fs options of a new filesystem, in place.

    aiobotocore's default pool is 10 connections, and listings run concurrently: the pool
    gets ``max_concurrency``. Each ``Storage`` gets its own session (own credentials) unless
    the options name one or a profile.
    """
    config = dict(options.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", max_concurrency)
    options["config_kwargs"] = config
    if "session" not in options and "profile" not in options:
        options["session"] = _new_aio_session()


def is_s3(fs) -> bool:
    """True if ``fs`` is s3fs's filesystem (chained URLs such as ``simplecache::s3`` are not)."""
    try:
        from s3fs import S3FileSystem
    except ImportError:  # pragma: no cover - s3fs is a dependency
        return False
    return isinstance(fs, S3FileSystem)


class S3Backend(RemoteBackend):
    """ListObjectsV2/HeadObject/HeadBucket through ``fs._call_s3``.

    ``listings`` is keyed by ``"bucket/prefix/"`` exactly (no rstrip: ``a//`` is not
    ``a/``) and maps names relative to the prefix; ``single`` by ``"bucket/key"``.
    ``buckets_ok`` holds the buckets proven to exist: a successful listing or HEAD proves
    one, so each bucket costs at most one ``HeadBucket`` per ``Storage``.
    """

    def __init__(self, key: str, fs: Any, storage: Owner):
        super().__init__(key, fs, storage)
        self.buckets_ok: set[str] = set()

    def stat(self, paths: list[str], result: dict[str, float]) -> None:
        # (bucket, prefix) -> {object key: [original paths]}
        groups: dict[tuple[str, str], dict[str, list[str]]] = {}
        for p in paths:
            bucket, k, _ = self.fs.split_path(p)
            if not bucket or not k or k.endswith("/"):
                continue  # a bucket or a prefix is never a file
            prefix = k[: k.rfind("/") + 1]
            groups.setdefault((bucket, prefix), {}).setdefault(k, []).append(p)
        # bucket -> {prefix not listed yet: its keys not looked up yet}
        unknown: dict[str, dict[str, list[str]]] = {}
        for (bucket, prefix), members in groups.items():
            if f"{bucket}/{prefix}" not in self.listings:
                pending = [k for k in members if f"{bucket}/{k}" not in self.single]
                if pending:
                    unknown.setdefault(bucket, {})[prefix] = pending
        jobs = []
        for bucket, prefixes in unknown.items():
            alone: dict[str, list[str]] = {}
            for ancestor, siblings in by_ancestor(prefixes).items():
                if len(siblings) > 1:
                    jobs.append(partial(walk, self, bucket, ancestor, siblings))
                else:
                    alone.update(siblings)
            if alone:
                jobs.append(partial(self.by_prefix, bucket, alone))
        if jobs:
            bucket, prefixes = next(iter(unknown.items()))
            self._run(self._gather(bucket, next(iter(prefixes.values()))[0], jobs))
        for (bucket, prefix), members in groups.items():
            listing = self.listings.get(f"{bucket}/{prefix}")
            for k, originals in members.items():
                if listing is not None:
                    mt = listing.get(k[len(prefix):])
                else:
                    mt = self.single.get(f"{bucket}/{k}")
                if mt is not None:
                    for o in originals:
                        result[o] = mt

    def stat_dirs(self, paths: list[str], result: dict[str, float] | set[str]) -> None:
        want_mtime = not isinstance(result, set)
        # (bucket, parent prefix) -> {directory key without "/": [original paths]}
        groups: dict[tuple[str, str], dict[str, list[str]]] = {}
        for p in paths:
            bucket, k, _ = self.fs.split_path(p)
            k = k.rstrip("/")
            if bucket and k:   # a whole bucket is never a directory output
                groups.setdefault((bucket, k[: k.rfind("/") + 1]), {}).setdefault(k, []).append(p)
        jobs = []
        for (bucket, parent), members in groups.items():
            unknown = [k for k in members if self._dir_state(bucket, parent, k, want_mtime) is _UNKNOWN]
            if not want_mtime and len(unknown) > 1:
                jobs.append(partial(self._list_prefix, bucket, parent))
            else:
                jobs += [partial(self._list_tree, bucket, k, not want_mtime) for k in unknown]
        if jobs:
            (bucket, _), members = next(iter(groups.items()))
            self._run(self._gather(bucket, next(iter(members)), jobs))
        for (bucket, parent), members in groups.items():
            for k, originals in members.items():
                state = self._dir_state(bucket, parent, k, want_mtime)
                if state is None or state is _UNKNOWN:
                    continue
                for o in originals:
                    if want_mtime:
                        result[o] = state
                    else:
                        result.add(o)

    def _dir_state(self, bucket: str, parent: str, k: str, want_mtime: bool):
        """What the caches tell of the directory ``k``: its newest mtime, None (missing),
        True (holds a file; only when ``want_mtime`` is false) or ``_UNKNOWN``."""
        full = f"{bucket}/{k}"
        if full in self.trees:
            return self.trees[full]
        below = self.subdirs.get(f"{bucket}/{parent}")
        if below is not None and k[len(parent):] + "/" not in below:
            return None
        if not want_mtime and (below is not None or full in self.nonempty):
            return True
        return _UNKNOWN

    def remove_tree(self, path: str) -> None:
        """Every key below ``path/``, markers included. Not ``fs.rm(recursive=True)``: fsspec
        reads ``*``, ``?`` and ``[`` in a path as a glob, and a sample name may hold them."""
        bucket, k, _ = self.fs.split_path(path)
        k = k.rstrip("/")
        if not bucket or not k:
            raise StorageError(f"cannot remove {path}: it names a whole bucket, not a directory.")
        self._run(self._delete_tree(bucket, k + "/", path))

    def cache_keys(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        # listings are cached under "bucket/prefix/" exactly (no rstrip: "a//" != "a/")
        return f"{bucket}/{key}", f"{bucket}/{key[: key.rfind('/') + 1]}"

    def remove(self, path: str) -> None:
        bucket, k, _ = self.fs.split_path(path)
        if not k or k.endswith("/"):
            raise StorageError(f"cannot remove {path}: it names a bucket or prefix, not a file.")
        self._run(self._delete(bucket, k, path))

    # ------------------------------------------------------------------ requests

    def _run(self, coro):
        """Run ``coro`` on s3fs's event loop (its own thread) and wait for it."""
        from fsspec.asyn import sync

        async def wrapped():
            return await coro

        return sync(self.fs.loop, wrapped)

    async def _connect(self, bucket: str, where: str) -> None:
        """Open s3fs's session; credential problems surface here, and get the same message."""
        try:
            await self.fs.set_session()
        except Exception as e:
            raise self._error(e, where, bucket, "session") from None

    async def _gather(self, bucket: str, key: str, jobs: list) -> None:
        """Run ``jobs`` (each takes the ``Shared`` of this call) concurrently; first error
        wins. ``bucket``/``key``: where to say credential problems arose."""
        await self._connect(bucket, f"s3://{bucket}/{key}")
        shared = Shared(self.storage.max_concurrency)
        await gather(job(shared) for job in jobs)

    async def by_prefix(self, bucket: str, prefixes: dict[str, list[str]], shared: Shared) -> None:
        """Each prefix on its own: one listing when it holds several pending keys, else a HEAD."""
        jobs = []
        for prefix, pending in prefixes.items():
            if len(pending) > 1:
                jobs.append(self._list_prefix(bucket, prefix, shared))
            else:
                jobs.append(self.head_object(bucket, pending[0], shared))
        await gather(jobs)

    async def list_page(self, bucket: str, prefix: str, shared: Shared | None, **extra) -> dict:
        """One ListObjectsV2 call (s3fs's ``_call_s3`` retries it), in one of ``shared``'s
        slots (None: the caller holds one); errors said the backend's way."""
        try:
            async with shared.slots if shared else nullcontext():
                page = await self.fs._call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, **extra)
        except Exception as e:
            raise self._error(e, f"s3://{bucket}/{prefix}", bucket, "list") from None
        self.buckets_ok.add(bucket)
        return page

    async def _pages(self, bucket: str, prefix: str, **extra):
        """The pages of one ListObjectsV2, following its continuation tokens."""
        while True:
            page = await self.list_page(bucket, prefix, None, **extra)
            yield page
            if not page.get("IsTruncated"):
                return
            extra["ContinuationToken"] = page["NextContinuationToken"]

    async def _list_prefix(self, bucket: str, prefix: str, shared: Shared) -> None:
        """All pages of one ListObjectsV2 with delimiter: the files directly under ``prefix``,
        and the non-empty prefixes (CommonPrefixes) there."""
        files: dict[str, float] = {}
        below: set[str] = set()
        async with shared.slots:
            async for page in self._pages(bucket, prefix, Delimiter="/"):
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(prefix):]
                    if name and "/" not in name:
                        files[name] = to_epoch(obj["LastModified"])
                below.update(p["Prefix"][len(prefix):] for p in page.get("CommonPrefixes", ()))
        self.listings[f"{bucket}/{prefix}"] = files
        self.subdirs[f"{bucket}/{prefix}"] = below

    async def _list_tree(self, bucket: str, k: str, first_only: bool, shared: Shared) -> None:
        """ListObjectsV2 of ``k/`` without delimiter: the newest file below it (markers are no
        files). With ``first_only``, a page holding a file ends it: the directory exists."""
        newest: float | None = None
        async with shared.slots:
            async for page in self._pages(bucket, k + "/"):
                for obj in page.get("Contents", ()):
                    if not obj["Key"].endswith("/"):
                        mt = to_epoch(obj["LastModified"])
                        newest = mt if newest is None or mt > newest else newest
                if first_only and newest is not None and page.get("IsTruncated"):
                    self.nonempty.add(f"{bucket}/{k}")
                    return
        self.trees[f"{bucket}/{k}"] = newest

    async def head_object(self, bucket: str, k: str, shared: Shared) -> None:
        """One HeadObject; after a 404 in a bucket not yet proven, wait for its HeadBucket."""
        import asyncio
        async with shared.slots:
            try:
                out = await self.fs._call_s3("head_object", Bucket=bucket, Key=k)
                mt: float | None = to_epoch(out["LastModified"])
                self.buckets_ok.add(bucket)
            except FileNotFoundError:
                mt = None
            except Exception as e:
                raise self._error(e, f"s3://{bucket}/{k}", bucket, "head") from None
        if mt is None and bucket not in self.buckets_ok:
            task = shared.bucket_checks.get(bucket)
            if task is None:
                task = shared.bucket_checks[bucket] = asyncio.ensure_future(
                    self._check_bucket(bucket, f"s3://{bucket}/{k}"))
            await task
        self.single[f"{bucket}/{k}"] = mt

    async def _check_bucket(self, bucket: str, where: str) -> None:
        """HeadBucket: a missing bucket is an error, not "every target is missing"."""
        try:
            await self.fs._call_s3("head_bucket", Bucket=bucket)
        except PermissionError:
            return  # it exists (someone's); the object lookup already said 404
        except Exception as e:
            raise self._error(e, where, bucket, "head_bucket") from None
        self.buckets_ok.add(bucket)

    async def _delete(self, bucket: str, k: str, path: str) -> None:
        await self._connect(bucket, path)
        try:
            await self.fs._call_s3("delete_object", Bucket=bucket, Key=k)
        except Exception as e:
            raise self._error(e, path, bucket, "delete") from None

    async def _delete_tree(self, bucket: str, prefix: str, path: str) -> None:
        """List every key below ``prefix``, then DeleteObjects them 1,000 at a time."""
        await self._connect(bucket, path)
        keys: list[str] = []
        async for page in self._pages(bucket, prefix):
            keys += [obj["Key"] for obj in page.get("Contents", ())]
        for i in range(0, len(keys), 1000):
            batch = {"Objects": [{"Key": key} for key in keys[i:i + 1000]], "Quiet": True}
            try:
                out = await self.fs._call_s3("delete_objects", Bucket=bucket, Delete=batch)
            except Exception as e:
                raise self._error(e, path, bucket, "delete") from None
            errors = out.get("Errors") or ()
            if errors:
                first = errors[0]
                raise StorageError(self.scrub(
                    f"cannot remove s3://{bucket}/{first.get('Key')} (of {path}): {first.get('Code')} "
                    f"{first.get('Message', '')}. Check that your credentials may delete there "
                    f"({_NEEDED['delete']}).".replace("  ", " ")))

    # ------------------------------------------------------------------ errors

    def _error(self, exc: BaseException, where: str, bucket: str, action: str) -> StorageError:
        """The StorageError for ``exc`` raised by ``action`` on ``where``: what to do, no secrets."""
        endpoint = _endpoint_of(self.fs)
        via = f" (endpoint {endpoint})" if endpoint else ""
        kind, code = _error_kind(exc, action)
        return StorageError(self.scrub(_error_message(kind, code, exc, where, bucket, action, via)))


def _error_kind(exc: BaseException, action: str) -> tuple[str, str | None]:
    """(kind, S3 error code) of an exception; the tests run in this order, first match wins."""
    import asyncio
    code = _client_error_code(exc)
    name = type(exc).__name__
    if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and action == "head_bucket") \
            or (isinstance(exc, FileNotFoundError) and action in ("list", "delete")):
        return "no_bucket", code
    if name in _CREDENTIALS_MISSING:
        return "no_credentials", code
    if code in _CREDENTIALS_REJECTED:
        return "rejected", code
    if isinstance(exc, PermissionError) or code in _DENIED:
        return "denied", code
    if name in _UNREACHABLE or isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
        return "unreachable", code
    return "other", code


def _error_message(kind: str, code: str | None, exc: BaseException, where: str, bucket: str,
                   action: str, via: str) -> str:
    """One paragraph per kind of failure, each ending with what to do about it."""
    if kind == "no_bucket":
        return (f"S3 bucket '{bucket}' does not exist or is not reachable{via} while checking "
                f"{where}. s3rules does not treat a missing bucket as 'nothing built yet', "
                "because a typo in a bucket name would re-run every job: check the bucket name "
                "in the target path, create the bucket, or point AWS_PROFILE / AWS_ENDPOINT_URL "
                "/ the region at the account that owns it.")
    if kind == "no_credentials":
        return (f"no usable AWS credentials to check {where}{via}: {describe(exc)}. Configure "
                "credentials (AWS_PROFILE, aws configure / aws sso login, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the account owning the bucket.")
    if kind == "rejected":
        return (f"AWS rejected the credentials used to check {where}{via} ({code}). Refresh or "
                "fix them (aws sso login, AWS_PROFILE, or the AWS_* key variables) and run again.")
    if kind == "denied":
        hint = (" S3 answers 403 instead of 404 for a missing object when you may not list the "
                "bucket, so grant s3:ListBucket as well as s3:GetObject."
                if action == "head" else "")
        needed = _NEEDED.get(action, "access")
        return (f"permission denied checking {where}{via}: the credentials in use lack "
                f"{needed} there.{hint} Check AWS_PROFILE and the IAM policy / bucket policy.")
    if kind == "unreachable":
        return (f"cannot reach S3{via} to check {where}: {describe(exc)}. Check the network, "
                "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 if you use a non-AWS endpoint, and "
                "proxy settings.")
    return (f"cannot check {where}{via}: {describe(exc)}. This is not a 'file not found' "
            "answer, so s3rules stops rather than guess; check the bucket, credentials "
            "and endpoint.")


def _client_error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchBucket``, ``403``...) of a botocore error, also when s3fs
    has translated it into an OSError that keeps the original as its cause."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 5:
        resp = getattr(e, "response", None)
        if isinstance(resp, dict):
            code = resp.get("Error", {}).get("Code")
            if code:
                return str(code)
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def _endpoint_of(fs) -> str | None:
    """The endpoint URL the client talks to, without any userinfo, for messages."""
    try:
        url = fs.s3.meta.endpoint_url
    except Exception:
        return None
    if "@" in url:  # never show userinfo
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.rpartition('@')[2]}"
    return url


def _new_aio_session():
    """A fresh aiobotocore session (own credentials, read from the environment when first
    used) sharing one botocore data loader: parsing the S3 service model again costs
    ~0.15 s per ``Storage``, sharing it ~0.01 s. The loader only caches botocore's JSON."""
    import aiobotocore.session

    global _DATA_LOADER
    session = aiobotocore.session.AioSession()
    with _DATA_LOADER_LOCK:
        if _DATA_LOADER is None:
            _DATA_LOADER = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _DATA_LOADER)
    return session
