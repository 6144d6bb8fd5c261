"""``Storage``: one object for targets on every backend, grouping paths and dispatching.

Local paths go to :mod:`.local` (plain functions, nothing cached); every other
``scheme://`` gets one fsspec filesystem per protocol (and options) and, over it, an
:class:`~.s3.S3Backend` when s3fs serves it or a :class:`~.generic.FsspecBackend` otherwise.
The contract all of them keep is in :mod:`.base`.
"""
from __future__ import annotations

import threading
from collections.abc import Set as AbstractSet
from typing import Any, Collection, Iterable

from ..errors import StorageError
from . import local, s3
from .base import RemoteBackend, describe, fs_key, scrub_secrets
from .generic import FsspecBackend

__all__ = ["Storage"]


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
        self._lock = threading.RLock()
        # fs key -> fsspec filesystem, made on first use (also for filesystem())
        self._fs: dict[str, Any] = {}
        # fs key -> the backend over self._fs[key], with its caches
        self._backends: dict[str, RemoteBackend] = {}

    # ------------------------------------------------------------------ public API

    is_local = staticmethod(local.is_local)

    def stat_many(self, paths: Iterable[str], directories: Collection[str] = ()) -> dict[str, float]:
        """mtime (epoch seconds, float) of each path that exists as a FILE, or, for a path
        also in ``directories``, as a directory or prefix holding at least one file (its mtime:
        the newest file's).

        Missing paths are absent from the result. Keys are the paths exactly as given.
        Paths are grouped by parent directory/prefix: a parent holding one requested path
        costs a single stat/HEAD/info, a parent holding several costs one listing of that
        parent (paginated by the backend); on S3, sibling prefixes are settled by listing
        their common ancestor (see :mod:`.s3`); a directory costs a listing of itself (see
        :mod:`.base`). Remote results are cached until :meth:`invalidate`. Raises
        :class:`StorageError` for anything but "not found".
        """
        result: dict[str, float] = {}
        if directories:
            paths, dirs = _split(paths, directories)
            self._stat_dirs(dirs, result)
        groups, aliases, remote = local.group(paths)
        if groups:
            local.stat_local(groups, result)
            for first, others in aliases.items():
                if first in result:
                    for o in others:
                        result[o] = result[first]
        self._stat_remote(remote, result)
        return result

    def exists_many(self, paths: Iterable[str], directories: Collection[str] = ()) -> set[str]:
        """The paths that exist: :meth:`stat_many` without the mtimes.

        A local listing tells files by the entry's type, which saves a ``stat`` per local
        file; remote listings carry the mtimes anyway. Several directories under one S3
        prefix cost one listing of that prefix (its CommonPrefixes), not one each.
        """
        found: set[str] = set()
        if directories:
            paths, dirs = _split(paths, directories)
            self._stat_dirs(dirs, found)
        groups, aliases, remote = local.group(paths)
        if groups:
            local.stat_local(groups, found)
            for first, others in aliases.items():
                if first in found:
                    found.update(others)
        if remote:
            mtimes: dict[str, float] = {}
            self._stat_remote(remote, mtimes)
            found.update(mtimes)
        return found

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
                key = fs_key(p)
                fs = self._fs.get(key)
                if fs is None:
                    continue
                self._backend_over(key, fs).invalidate(p)

    def remove(self, path: str, directory: bool = False) -> None:
        """Delete the file ``path``; a missing file is fine. Refuses directories, unless
        ``directory``: then the directory or prefix ``path`` goes with everything in it
        (S3: one DeleteObjects per 1,000 keys)."""
        try:
            if self.is_local(path):
                (local.remove_tree if directory else local.remove)(path)
                return
            backend = self._backend(fs_key(path), path)
            (backend.remove_tree if directory else backend.remove)(path)
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(self._scrub(
                f"cannot remove {path}: {describe(e)}. Check that the location exists and "
                "that your credentials may delete there.")) from None
        finally:
            self.invalidate([path])

    def set_aside(self, path: str) -> str | None:
        """Keep an existing local file or directory ``path`` safe while its job rewrites it
        (see ``put_back``).

        Returns where it went, or None: nothing there, or not a local path (an S3 object stays
        where it is until the job overwrites it).
        """
        return local.set_aside(path) if self.is_local(path) else None

    def put_back(self, path: str, aside: str) -> None:
        """The job that was to replace ``path`` failed: the old file (or directory) takes its
        place again."""
        local.put_back(path, aside)

    def make_parent_dirs(self, path: str, itself: bool = False) -> None:
        """Create the parent directories of a local ``path`` (``itself``: and the directory
        ``path``); a no-op for object stores and URLs."""
        if self.is_local(path):
            local.make_parent_dirs(path + "/." if itself else path)

    def filesystem(self, path: str):
        """The fsspec filesystem this ``Storage`` uses for ``path`` (one per protocol+options)."""
        if self.is_local(path):
            return self._filesystem_for_key("file", "/")
        return self._filesystem_for_key(fs_key(path), path)

    # ------------------------------------------------------------------ backends

    def _stat_remote(self, remote: dict[str, list[str]], result: dict[str, float]) -> None:
        for key, group in remote.items():
            self._backend(key, group[0]).stat(group, result)

    def _stat_dirs(self, dirs: list[str], result: dict[str, float] | set[str]) -> None:
        """Directory outputs: locally by walking them, remotely per backend (see :mod:`.base`)."""
        remote: dict[str, list[str]] = {}
        mine = []
        for p in dirs:
            if self.is_local(p):
                mine.append(p)
            else:
                remote.setdefault(fs_key(p), []).append(p)
        if mine:
            local.stat_dirs(mine, result)
        for key, group in remote.items():
            self._backend(key, group[0]).stat_dirs(group, result)

    def _backend(self, key: str, sample_path: str) -> RemoteBackend:
        backend = self._backends.get(key)
        if backend is not None:
            return backend
        return self._backend_over(key, self._filesystem_for_key(key, sample_path))

    def _backend_over(self, key: str, fs) -> RemoteBackend:
        """The backend for ``fs``, made on first need: :meth:`filesystem` alone makes none."""
        backend = self._backends.get(key)
        if backend is None:
            with self._lock:
                backend = self._backends.get(key)
                if backend is None:
                    kind = s3.S3Backend if s3.is_s3(fs) else FsspecBackend
                    backend = self._backends[key] = kind(key, fs, self)
        return backend

    def _options_for(self, protocol: str) -> dict:
        opts = self.storage_options.get(protocol)
        if opts is None and protocol in s3.S3_PROTOCOLS:
            opts = self.storage_options.get("s3")
        return dict(opts or {})

    def _filesystem_for_key(self, key: str, sample_path: str):
        """The filesystem for ``key``, made once per ``Storage`` and never shared with
        other code (``skip_instance_cache``), so its listing cache is ours alone."""
        fs = self._fs.get(key)
        if fs is not None:
            return fs
        with self._lock:
            fs = self._fs.get(key)
            if fs is not None:
                return fs
            import fsspec

            options = self._options_for(key)
            if key in s3.S3_PROTOCOLS:
                s3.prepare_options(options, self.max_concurrency)
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

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, self.storage_options)


def _split(paths: Iterable[str], directories: Collection[str]) -> tuple[list[str], list[str]]:
    """(file paths, directory paths) of ``paths``: a path in ``directories`` is a directory."""
    if not isinstance(directories, (AbstractSet, dict)):
        directories = set(directories)
    files: list[str] = []
    dirs: list[str] = []
    for p in paths:
        (dirs if p in directories else files).append(p)
    return files, dirs
