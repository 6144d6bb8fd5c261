"""Existence and modification times of many targets, gathered by listing.

A plan over a million targets must not cost a million ``stat``/``HEAD`` calls. ``Storage``
groups the paths it is asked about by parent directory (or S3 prefix):

* a parent holding ONE requested path costs one lookup of that path: ``os.stat`` locally,
  one ``HeadObject`` on S3, one ``info()`` on other fsspec filesystems;
* a parent holding SEVERAL requested paths costs one listing of that parent:
  ``os.scandir`` locally, ``ListObjectsV2`` with delimiter ``/`` on S3 (1,000 keys per
  page, so N objects under one prefix cost ceil(N/1000) calls), ``ls(detail=True)``
  elsewhere. S3 listings and lookups run concurrently on s3fs's event loop.

On S3 the requests are sent through s3fs's client and retry wrapper (``_call_s3``), not
through ``fs.ls``/``fs.info``, which issue the same ListObjectsV2/HeadObject calls but:
``ls`` of an empty prefix lists the grandparent too and then raises FileNotFoundError,
which is also what it raises for a missing bucket; ``info`` of a missing key costs a
HEAD *and* a ListObjectsV2 (to look for a "directory"). Here a lone target costs one
``HeadObject`` whether it exists or not (plus, once per bucket not yet seen to exist, a
``HeadBucket`` after a 404, because a 404 HEAD cannot tell a missing key from a missing
bucket).

Only a *file* counts: a directory, an S3 "directory" prefix (``out/a.txt/`` holding
children) or a ``out/a.txt/`` marker object never stands for the target ``out/a.txt``.

The contract is luigi's: only "not found" means missing. Anything else (permission
denied, no such bucket, no credentials, endpoint unreachable) raises
:class:`~s3rules.errors.StorageError` with one paragraph saying what to do; known
secrets (keys, tokens from the environment and from ``storage_options``) are scrubbed
from every message.

Caching: results for object stores and other remote filesystems are cached per
``Storage`` (listings by parent, lookups by path) so that asking again is free; call
:meth:`Storage.invalidate` with the paths a job wrote (or removed) to see them again.
Local paths are never cached: a ``stat`` is cheaper than the bookkeeping and always
fresh. Each ``Storage`` owns its filesystem objects (``skip_instance_cache=True``), so
s3fs's own listing cache (``dircache``) is never shared with, or made stale by, other
code; ``invalidate`` clears it too.

Endpoint: s3fs goes through aiobotocore/botocore, which honour ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_S3`` (and ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``...) from the
environment, so ``Storage`` needs no endpoint option; ``{"s3": {"endpoint_url": ...}}``
in ``storage_options`` still works and wins.
"""
from __future__ import annotations

import os
import stat as statmod
import threading
from datetime import datetime
from typing import Any, Iterable

from ..errors import StorageError

__all__ = ["Storage"]

_S3_PROTOCOLS = ("s3", "s3a")
_LOCAL_PREFIXES = ("file://", "local://")
_MISSING_ERRNO_TYPES = (FileNotFoundError, NotADirectoryError)
_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_DIR_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
# Options whose values must never appear in a message.
_SECRET_OPTION_NAMES = ("key", "secret", "token", "password", "aws_access_key_id",
                        "aws_secret_access_key", "aws_session_token", "session_token")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_ACCESS_KEY_ID")


class Storage:
    """Existence and mtimes of targets given as local paths or fsspec URLs.

    ``storage_options`` maps a protocol to the keyword arguments of its fsspec
    filesystem, e.g. ``{"s3": {"endpoint_url": "http://127.0.0.1:9000"}}``
    (``s3a`` falls back to the ``s3`` entry). Default: none, i.e. the environment.

    A missing S3 bucket is an error, not "every target is missing": a typo in a bucket
    name (or the wrong account, region or endpoint) would otherwise re-run every job of
    the workflow and then fail writing. :meth:`stat_many` therefore raises
    ``StorageError("S3 bucket 'x' does not exist or is not reachable ...")``. A bucket
    is checked at most once per ``Storage``: a successful listing proves it, and a
    ``HeadObject`` 404 (which S3 also answers for a missing bucket) is followed by one
    ``HeadBucket`` unless the bucket is already proven.
    """

    #: Concurrent S3 requests in one :meth:`stat_many` call.
    max_concurrency = 64

    def __init__(self, storage_options: dict | None = None):
        self.storage_options: dict = dict(storage_options or {})
        self._fs: dict[str, Any] = {}
        self._lock = threading.RLock()
        # (fs key, parent) -> {basename: mtime} for listed parents (files only)
        self._listings: dict[tuple[str, str], dict[str, float]] = {}
        # (fs key, full path) -> mtime or None for single lookups
        self._single: dict[tuple[str, str], float | None] = {}
        # fs key -> buckets known to exist
        self._buckets_ok: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ public API

    @staticmethod
    def is_local(path: str) -> bool:
        """True for plain paths and ``file://``/``local://`` URLs; False for any other ``scheme://``."""
        return "://" not in path or path.startswith(_LOCAL_PREFIXES)

    def stat_many(self, paths: Iterable[str]) -> dict[str, float]:
        """mtime (epoch seconds, float) of each path that exists as a FILE.

        Missing paths are absent from the result. Keys are the paths exactly as given.
        Paths are grouped by parent directory/prefix: a parent holding one requested path
        costs a single stat/HEAD/info, a parent holding several costs one listing of that
        parent (paginated by the backend). Remote results are cached until
        :meth:`invalidate`. Raises :class:`StorageError` for anything but "not found".
        """
        result: dict[str, float] = {}
        local, aliases, remote = self._group(paths)
        if local:
            self._stat_local(local, result)
            for first, others in aliases.items():
                if first in result:
                    for o in others:
                        result[o] = result[first]
        self._stat_remote(remote, result)
        return result

    def exists_many(self, paths: Iterable[str]) -> set[str]:
        """The paths that exist as files: :meth:`stat_many` without the mtimes.

        A local listing tells files by the entry's type, which saves a ``stat`` per local
        file; remote listings carry the mtimes anyway.
        """
        found: set[str] = set()
        local, aliases, remote = self._group(paths)
        if local:
            self._stat_local(local, found)
            for first, others in aliases.items():
                if first in found:
                    found.update(others)
        if remote:
            mtimes: dict[str, float] = {}
            self._stat_remote(remote, mtimes)
            found.update(mtimes)
        return found

    def _group(self, paths: Iterable[str]):
        """(local directory -> {basename: path}, path -> other paths naming the same local
        file, fs key -> remote paths)."""
        # the hot loop for a million local paths
        local: dict[str, dict[str, str]] = {}
        aliases: dict[str, list[str]] = {}
        remote: dict[str, list[str]] = {}
        get = local.get
        for p in paths:
            if "://" in p:
                if not p.startswith(_LOCAL_PREFIXES):
                    remote.setdefault(self._fs_key(p), []).append(p)
                    continue
                lp = self._local_path(p)
            else:
                lp = p
            head, _, name = lp.rpartition("/")
            if not name:  # "dir/" or "" can never name a file
                continue
            if not head:
                head = "/" if lp.startswith("/") else "."
            g = get(head)
            if g is None:
                g = local[head] = {}
            prev = g.setdefault(name, p)
            if prev != p:
                aliases.setdefault(prev, []).append(p)
        return local, aliases, remote

    def _stat_remote(self, remote: dict[str, list[str]], result: dict[str, float]) -> None:
        for key, group in remote.items():
            fs = self._filesystem_for_key(key, group[0])
            if self._is_s3(fs):
                self._stat_s3(key, fs, group, result)
            else:
                self._stat_generic(key, fs, group, result)

    def exists(self, path: str) -> bool:
        """True if ``path`` exists as a file (a directory or prefix does not count)."""
        return path in self.stat_many([path])

    def mtime(self, path: str) -> float | None:
        """Modification time (epoch seconds) of the file ``path``, or None if missing."""
        return self.stat_many([path]).get(path)

    def invalidate(self, paths: Iterable[str]) -> None:
        """Forget what is cached about these paths and their parents' listings.

        Call it with the outputs a job wrote or removed; the next :meth:`stat_many` sees
        them. Clears s3fs's own listing cache for those parents as well.
        """
        with self._lock:
            for p in paths:
                if self.is_local(p):
                    continue  # never cached
                key = self._fs_key(p)
                fs = self._fs.get(key)
                if fs is None:
                    continue
                full, parent = self._split_remote(fs, p)
                self._single.pop((key, full), None)
                self._listings.pop((key, parent), None)
                try:  # s3fs/fsspec's own listing cache (keys without trailing "/")
                    fs.invalidate_cache(parent.rstrip("/") or parent)
                    fs.invalidate_cache(full)
                except Exception:  # a filesystem without a cache; nothing to clear
                    pass

    def remove(self, path: str) -> None:
        """Delete the file ``path``; a missing file is fine. Refuses directories."""
        try:
            if self.is_local(path):
                lp = self._local_path(path)
                try:
                    os.remove(lp)
                except _MISSING_ERRNO_TYPES:
                    pass
                except IsADirectoryError:
                    raise StorageError(
                        f"cannot remove {path}: it is a directory, and s3rules only removes "
                        "files it manages. Remove it by hand if it is in the way.") from None
                except OSError as e:
                    raise StorageError(
                        f"cannot remove {path}: {e.strerror or e}. Check the permissions of "
                        "the file and of its directory.") from None
                return
            key = self._fs_key(path)
            fs = self._filesystem_for_key(key, path)
            if self._is_s3(fs):
                bucket, k, _ = fs.split_path(path)
                if not k or k.endswith("/"):
                    raise StorageError(f"cannot remove {path}: it names a bucket or prefix, not a file.")
                self._run_s3(fs, self._s3_delete(fs, bucket, k, path))
            else:
                full = fs._strip_protocol(path)
                try:
                    info = fs.info(full)
                except FileNotFoundError:
                    return
                if info.get("type") != "file":
                    raise StorageError(f"cannot remove {path}: it is a directory, not a file.")
                try:
                    fs.rm_file(full)
                except FileNotFoundError:
                    pass
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(self._scrub(
                f"cannot remove {path}: {_describe(e)}. Check that the location exists and "
                "that your credentials may delete there.")) from None
        finally:
            self.invalidate([path])

    def make_parent_dirs(self, path: str) -> None:
        """Create the parent directories of a local ``path``; a no-op for object stores and URLs."""
        if not self.is_local(path):
            return
        parent = os.path.dirname(self._local_path(path))
        if not parent:
            return
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(
                f"cannot create directory {parent} for {path}: a file is in the way "
                "(a component of the path exists and is not a directory). Rename or remove "
                "that file, or fix the target path.") from None
        except OSError as e:
            raise StorageError(
                f"cannot create directory {parent} for {path}: {e.strerror or e}. Check the "
                "permissions of the nearest existing parent directory.") from None

    def filesystem(self, path: str):
        """The fsspec filesystem this ``Storage`` uses for ``path`` (one per protocol+options)."""
        if self.is_local(path):
            return self._filesystem_for_key("file", "/")
        return self._filesystem_for_key(self._fs_key(path), path)

    # ------------------------------------------------------------------ filesystems

    @staticmethod
    def _local_path(path: str) -> str:
        for prefix in _LOCAL_PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if rest.startswith("localhost/"):
                    rest = rest[len("localhost"):]
                return rest
        return path

    @staticmethod
    def _fs_key(path: str) -> str:
        """Protocol part of a URL: 's3' for s3://..., 'simplecache::s3' for chained URLs."""
        head, sep, _ = path.rpartition("://")
        return head if sep else "file"

    def _options_for(self, protocol: str) -> dict:
        opts = self.storage_options.get(protocol)
        if opts is None and protocol in _S3_PROTOCOLS:
            opts = self.storage_options.get("s3")
        return dict(opts or {})

    def _filesystem_for_key(self, key: str, sample_path: str):
        fs = self._fs.get(key)
        if fs is not None:
            return fs
        with self._lock:
            fs = self._fs.get(key)
            if fs is not None:
                return fs
            import fsspec

            options = self._options_for(key)
            if key in _S3_PROTOCOLS:
                # aiobotocore's default pool is 10 connections; listings run concurrently
                config = dict(options.get("config_kwargs") or {})
                config.setdefault("max_pool_connections", self.max_concurrency)
                options["config_kwargs"] = config
                if "session" not in options and "profile" not in options:
                    options["session"] = _new_aio_session()
            try:
                if "::" in key:
                    fs, _ = fsspec.core.url_to_fs(sample_path, skip_instance_cache=True, **options)
                else:
                    fs = fsspec.filesystem(key, skip_instance_cache=True, **options)
            except (ImportError, ValueError) as e:
                raise StorageError(
                    f"cannot handle {sample_path}: no filesystem for protocol '{key}' ({e}). "
                    "Use a local path, s3://bucket/key, or install the fsspec backend for "
                    "this protocol.") from None
            self._fs[key] = fs
            return fs

    @staticmethod
    def _is_s3(fs) -> bool:
        try:
            from s3fs import S3FileSystem
        except ImportError:  # pragma: no cover - s3fs is a dependency
            return False
        return isinstance(fs, S3FileSystem)

    def _split_remote(self, fs, path: str) -> tuple[str, str]:
        """(full stripped path, parent) as used for cache keys."""
        if self._is_s3(fs):
            bucket, key, _ = fs.split_path(path)
            # listings are cached under "bucket/prefix/" exactly (no rstrip: "a//" != "a/")
            return f"{bucket}/{key}", f"{bucket}/{key[: key.rfind('/') + 1]}"
        full = fs._strip_protocol(path)
        return full, fs._parent(full)

    # ------------------------------------------------------------------ local

    def _stat_local(self, groups: dict[str, dict[str, str]], result: dict[str, float] | set[str]) -> None:
        """Fill ``result``: path -> mtime for a dict, just the paths of files for a set."""
        scandir, stat, S_ISREG = os.scandir, os.stat, statmod.S_ISREG
        add = result.add if isinstance(result, set) else None
        for directory, names in groups.items():
            try:
                if len(names) == 1:
                    (name, original), = names.items()
                    full = directory + name if directory.endswith("/") else f"{directory}/{name}"
                    try:
                        st = stat(full)
                    except _MISSING_ERRNO_TYPES:
                        continue
                    if S_ISREG(st.st_mode):
                        if add is None:
                            result[original] = st.st_mtime
                        else:
                            add(original)
                    continue
                # scandir on a directory fd: each entry.stat() is then an fstatat() relative
                # to it, about 25% cheaper than re-walking the full path.
                try:
                    fd = os.open(directory, _DIR_OPEN_FLAGS) if _SCANDIR_FD else directory
                except _MISSING_ERRNO_TYPES:
                    continue
                try:
                    with scandir(fd) as it:
                        for entry in it:
                            original = names.get(entry.name)
                            if original is None:
                                continue
                            try:
                                if not entry.is_file():
                                    continue
                                if add is None:
                                    result[original] = entry.stat().st_mtime
                                else:
                                    add(original)
                            except _MISSING_ERRNO_TYPES:  # removed meanwhile
                                continue
                except _MISSING_ERRNO_TYPES:
                    continue
                finally:
                    if _SCANDIR_FD:
                        os.close(fd)
            except OSError as e:
                raise StorageError(
                    f"cannot check files in {directory}: {e.strerror or e}. Check that the "
                    "directory is readable (permissions, mounts) by the user running s3rules.") from None

    # ------------------------------------------------------------------ generic fsspec

    def _stat_generic(self, key: str, fs, paths: list[str], result: dict[str, float]) -> None:
        groups: dict[str, dict[str, list[str]]] = {}
        for p in paths:
            full = fs._strip_protocol(p).rstrip("/")
            if not full or p.endswith("/"):
                continue
            groups.setdefault(fs._parent(full), {}).setdefault(full, []).append(p)
        for parent, members in groups.items():
            listing = self._listings.get((key, parent))
            if listing is None:
                pending = {f: o for f, o in members.items() if (key, f) not in self._single}
                if len(pending) > 1:
                    listing = self._list_generic(key, fs, parent)
            for full, originals in members.items():
                if listing is not None:
                    mt = listing.get(full)
                else:
                    if (key, full) not in self._single:
                        self._single[(key, full)] = self._info_generic(fs, full, originals[0])
                    mt = self._single[(key, full)]
                if mt is not None:
                    for o in originals:
                        result[o] = mt

    def _list_generic(self, key: str, fs, parent: str) -> dict[str, float]:
        try:
            entries = fs.ls(parent, detail=True)
        except _MISSING_ERRNO_TYPES:
            entries = []
        except Exception as e:
            raise StorageError(self._scrub(
                f"cannot list {fs.unstrip_protocol(parent)}: {_describe(e)}. Check that the "
                "location exists and that your credentials may list it.")) from None
        files: dict[str, float] = {}
        for e in entries:
            if e.get("type") != "file":
                continue
            name = fs._strip_protocol(e["name"]).rstrip("/")
            mt = _info_mtime(e)
            if mt is None:
                mt = self._modified_generic(fs, name)
            files[name] = mt
        self._listings[(key, parent)] = files
        return files

    def _info_generic(self, fs, full: str, original: str) -> float | None:
        try:
            info = fs.info(full)
        except _MISSING_ERRNO_TYPES:
            return None
        except Exception as e:
            raise StorageError(self._scrub(
                f"cannot check {original}: {_describe(e)}. Check that the location exists "
                "and that your credentials may read it.")) from None
        if info.get("type") != "file":
            return None
        mt = _info_mtime(info)
        return mt if mt is not None else self._modified_generic(fs, full)

    def _modified_generic(self, fs, full: str) -> float:
        try:
            return _to_epoch(fs.modified(full))
        except Exception as e:
            raise StorageError(
                f"cannot get the modification time of {fs.unstrip_protocol(full)}: the "
                f"'{fs.protocol}' filesystem does not report it ({_describe(e)}). s3rules needs "
                "mtimes to decide what is out of date; use local paths or s3:// for targets.") from None

    # ------------------------------------------------------------------ S3

    def _stat_s3(self, key: str, fs, paths: list[str], result: dict[str, float]) -> None:
        # (bucket, prefix) -> {object key: [original paths]}
        groups: dict[tuple[str, str], dict[str, list[str]]] = {}
        for p in paths:
            bucket, k, _ = fs.split_path(p)
            if not bucket or not k or k.endswith("/"):
                continue  # a bucket or a prefix is never a file
            prefix = k[: k.rfind("/") + 1]
            groups.setdefault((bucket, prefix), {}).setdefault(k, []).append(p)
        to_list: list[tuple[str, str]] = []
        to_head: list[tuple[str, str]] = []
        for (bucket, prefix), members in groups.items():
            if (key, f"{bucket}/{prefix}") in self._listings:
                continue
            pending = [k for k in members if (key, f"{bucket}/{k}") not in self._single]
            if len(pending) > 1:
                to_list.append((bucket, prefix))
            elif pending:
                to_head.append((bucket, pending[0]))
        if to_list or to_head:
            self._run_s3(fs, self._s3_gather(key, fs, to_list, to_head, groups))
        for (bucket, prefix), members in groups.items():
            listing = self._listings.get((key, f"{bucket}/{prefix}"))
            for k, originals in members.items():
                if listing is not None:
                    mt = listing.get(k[len(prefix):])
                else:
                    mt = self._single.get((key, f"{bucket}/{k}"))
                if mt is not None:
                    for o in originals:
                        result[o] = mt

    def _run_s3(self, fs, coro):
        from fsspec.asyn import sync

        async def wrapped():
            return await coro

        return sync(fs.loop, wrapped)

    async def _connect(self, fs, bucket: str, where: str) -> None:
        """Open s3fs's session; credential problems surface here, and get the same message."""
        try:
            await fs.set_session()
        except Exception as e:
            raise self._s3_error(fs, e, where, bucket, "session") from None

    async def _s3_gather(self, key, fs, to_list, to_head, groups) -> None:
        import asyncio  # only S3 needs it: local planning skips the import
        first_bucket, first_key = (list(to_list) or list(to_head))[0]
        await self._connect(fs, first_bucket, f"s3://{first_bucket}/{first_key}")
        sem = asyncio.Semaphore(self.max_concurrency)
        bucket_checks: dict[str, asyncio.Task] = {}
        ok = self._buckets_ok.setdefault(key, set())

        async def list_one(bucket: str, prefix: str) -> None:
            files: dict[str, float] = {}
            kwargs = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
            async with sem:
                while True:
                    try:
                        page = await fs._call_s3("list_objects_v2", **kwargs)
                    except Exception as e:
                        raise self._s3_error(fs, e, f"s3://{bucket}/{prefix}", bucket, "list") from None
                    for obj in page.get("Contents", ()):
                        name = obj["Key"][len(prefix):]
                        if name and "/" not in name:
                            files[name] = _to_epoch(obj["LastModified"])
                    if not page.get("IsTruncated"):
                        break
                    kwargs["ContinuationToken"] = page["NextContinuationToken"]
            ok.add(bucket)
            self._listings[(key, f"{bucket}/{prefix}")] = files

        async def check_bucket(bucket: str, where: str) -> None:
            try:
                await fs._call_s3("head_bucket", Bucket=bucket)
            except PermissionError:
                return  # it exists (someone's); the object lookup already said 404
            except Exception as e:
                raise self._s3_error(fs, e, where, bucket, "head_bucket") from None
            ok.add(bucket)

        async def head_one(bucket: str, k: str) -> None:
            async with sem:
                try:
                    out = await fs._call_s3("head_object", Bucket=bucket, Key=k)
                    mt: float | None = _to_epoch(out["LastModified"])
                    ok.add(bucket)
                except FileNotFoundError:
                    mt = None
                except Exception as e:
                    raise self._s3_error(fs, e, f"s3://{bucket}/{k}", bucket, "head") from None
            if mt is None and bucket not in ok:
                task = bucket_checks.get(bucket)
                if task is None:
                    task = bucket_checks[bucket] = asyncio.ensure_future(check_bucket(bucket, f"s3://{bucket}/{k}"))
                await task
            self._single[(key, f"{bucket}/{k}")] = mt

        coros = [list_one(b, p) for b, p in to_list] + [head_one(b, k) for b, k in to_head]
        outcomes = await asyncio.gather(*coros, return_exceptions=True)
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o

    async def _s3_delete(self, fs, bucket: str, k: str, path: str) -> None:
        await self._connect(fs, bucket, path)
        try:
            await fs._call_s3("delete_object", Bucket=bucket, Key=k)
        except Exception as e:
            raise self._s3_error(fs, e, path, bucket, "delete") from None

    def _s3_error(self, fs, exc: BaseException, where: str, bucket: str, action: str) -> StorageError:
        import asyncio
        code = _client_error_code(exc)
        endpoint = _endpoint_of(fs)
        via = f" (endpoint {endpoint})" if endpoint else ""
        name = type(exc).__name__
        if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and action == "head_bucket") \
                or (isinstance(exc, FileNotFoundError) and action in ("list", "delete")):
            msg = (f"S3 bucket '{bucket}' does not exist or is not reachable{via} while checking "
                   f"{where}. s3rules does not treat a missing bucket as 'nothing built yet', "
                   "because a typo in a bucket name would re-run every job: check the bucket name "
                   "in the target path, create the bucket, or point AWS_PROFILE / AWS_ENDPOINT_URL "
                   "/ the region at the account that owns it.")
        elif name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            msg = (f"no usable AWS credentials to check {where}{via}: {_describe(exc)}. Configure "
                   "credentials (AWS_PROFILE, aws configure / aws sso login, or "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the account owning the bucket.")
        elif code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                      "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException"):
            msg = (f"AWS rejected the credentials used to check {where}{via} ({code}). Refresh or "
                   "fix them (aws sso login, AWS_PROFILE, or the AWS_* key variables) and run again.")
        elif isinstance(exc, PermissionError) or code in ("AccessDenied", "403", "Forbidden",
                                                          "AllAccessDisabled"):
            hint = (" S3 answers 403 instead of 404 for a missing object when you may not list the "
                    "bucket, so grant s3:ListBucket as well as s3:GetObject."
                    if action == "head" else "")
            needed = {"list": "s3:ListBucket", "head": "s3:GetObject", "delete": "s3:DeleteObject",
                      "head_bucket": "s3:ListBucket"}.get(action, "access")
            msg = (f"permission denied checking {where}{via}: the credentials in use lack "
                   f"{needed} there.{hint} Check AWS_PROFILE and the IAM policy / bucket policy.")
        elif name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                      "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                      "TimeoutError", "FSTimeoutError", "ProxyConnectionError") \
                or isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
            msg = (f"cannot reach S3{via} to check {where}: {_describe(exc)}. Check the network, "
                   "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 if you use a non-AWS endpoint, and "
                   "proxy settings.")
        else:
            msg = (f"cannot check {where}{via}: {_describe(exc)}. This is not a 'file not found' "
                   "answer, so s3rules stops rather than guess; check the bucket, credentials "
                   "and endpoint.")
        return StorageError(self._scrub(msg))

    # ------------------------------------------------------------------ secrets

    def _scrub(self, text: str) -> str:
        secrets: set[str] = set()
        for name in _SECRET_ENV:
            v = os.environ.get(name)
            if v:
                secrets.add(v)
        stack: list[Any] = [self.storage_options]
        while stack:
            d = stack.pop()
            if isinstance(d, dict):
                for k, v in d.items():
                    if isinstance(v, (dict, list, tuple)):
                        stack.append(v)
                    elif isinstance(v, str) and v and str(k).lower() in _SECRET_OPTION_NAMES:
                        secrets.add(v)
            elif isinstance(d, (list, tuple)):
                stack.extend(d)
        for s in sorted(secrets, key=len, reverse=True):
            if len(s) >= 4:
                text = text.replace(s, "***")
        return text


# ---------------------------------------------------------------------- helpers

_DATA_LOADER: Any = None
_DATA_LOADER_LOCK = threading.Lock()


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


def _to_epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()  # naive datetimes are taken as local time
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise TypeError(f"not a time: {value!r}")


def _info_mtime(info: dict) -> float | None:
    """mtime from an fsspec info dict, whatever the backend calls it."""
    for field in ("mtime", "LastModified", "last_modified", "modified", "updated", "created",
                  "time_modified", "mtime_ns"):
        v = info.get(field)
        if v is None or v == "":
            continue
        try:
            mt = _to_epoch(v)
        except (TypeError, ValueError):
            continue
        return mt / 1e9 if field == "mtime_ns" else mt
    return None


def _client_error_code(exc: BaseException) -> str | None:
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
    try:
        url = fs.s3.meta.endpoint_url
    except Exception:
        return None
    if "@" in url:  # never show userinfo
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.rpartition('@')[2]}"
    return url


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
