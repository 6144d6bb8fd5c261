"""The storage contract, the remote backend base class and the helpers all backends share.

Contract (luigi's): only "not found" means missing. Anything else (permission denied, no
such bucket, no credentials, endpoint unreachable) raises
:class:`~s3rules.errors.StorageError` with one paragraph saying what to do; known secrets
(keys, tokens from the environment and from ``storage_options``) are scrubbed from every
message (:func:`scrub_secrets`).

Only a *file* counts: a directory, an S3 "directory" prefix (``out/a.txt/`` holding
children) or a ``out/a.txt/`` marker object never stands for the target ``out/a.txt``,
unless the path is named as a directory (``directories=`` of ``stat_many``/``exists_many``,
for ``directory("...")`` outputs). Then it is the other way round: it exists when it is a
directory or prefix holding at least one file, at any depth (an empty directory, or
``dir/`` marker objects alone, do not count: a job that only made the directory made
nothing), and its mtime is the newest of those files'.

Cost: a plan over a million targets must not cost a million ``stat``/``HEAD`` calls, so
every backend groups the paths it is asked about by parent directory (or S3 prefix). A
parent holding ONE requested path costs one lookup of that path; a parent holding SEVERAL
costs one listing of that parent. Each backend module says what a lookup and a listing
are there. On S3, sibling prefixes holding a target or a few each (per-sample folders) are
settled by listing their common ancestor instead, about one request per 1,000 objects below it
(:mod:`.s3sweep`). A directory's mtime needs a listing of the directory itself (every file below
it), so it costs that per directory, in ``stat_many`` only. Its existence alone is cheaper
on S3: a listing of a parent with delimiter names the non-empty prefixes below it
(CommonPrefixes), so several directories under one parent cost that one listing. (A prefix
holding nothing but a ``dir/`` marker shows there too; only ``stat_many``, which the runner
uses to confirm what a job wrote, tells it from a real one.)

Caching: results for object stores and other remote filesystems are cached per
``Storage`` (listings by parent, lookups by path, in :class:`RemoteBackend`) so that asking
again is free; ``Storage.invalidate`` with the paths a job wrote (or removed) makes them
visible again. Local paths are never cached (see :mod:`.local`). Each ``Storage`` owns its
filesystem objects (``skip_instance_cache=True``), so fsspec's own listing cache
(``dircache``) is never shared with, or made stale by, other code; ``invalidate`` clears it
too.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Protocol

__all__ = ["MISSING_ERRNO_TYPES", "Owner", "RemoteBackend", "describe", "fs_key", "info_mtime",
           "scrub_secrets", "to_epoch"]

# What "not found" looks like from os and fsspec: ENOTDIR too, since a file where a
# directory should be means the target below it cannot exist.
MISSING_ERRNO_TYPES = (FileNotFoundError, NotADirectoryError)
# Options whose values must never appear in a message.
_SECRET_OPTION_NAMES = ("key", "secret", "token", "password", "aws_access_key_id",
                        "aws_secret_access_key", "aws_session_token", "session_token")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_ACCESS_KEY_ID")


class Owner(Protocol):
    """What a backend reads from the ``Storage`` that owns it, at the time it needs it
    (both are public attributes a caller may change after construction)."""

    storage_options: dict
    max_concurrency: int


class RemoteBackend(ABC):
    """One fsspec filesystem (one protocol + options) of a ``Storage``, and its caches.

    ``listings`` maps a listed parent to the files found there (name -> mtime, names as
    the backend chooses); ``single`` maps a path looked up alone to its mtime, or None
    when it is not a file. For directories, ``trees`` maps one (keyed as in ``single``) to
    its newest file's mtime, or None when it holds no file; ``nonempty`` holds those known
    to hold a file, mtime unknown; ``subdirs`` maps a listed parent (keyed as in
    ``listings``) to the non-empty prefixes below it (``"name/"``). All live until
    :meth:`invalidate`. The owning ``Storage`` wraps whatever :meth:`remove` and
    :meth:`remove_tree` raise, so backends may let errors through there.
    """

    def __init__(self, key: str, fs: Any, storage: Owner):
        self.key, self.fs, self.storage = key, fs, storage
        self.listings: dict[str, dict[str, float]] = {}
        self.single: dict[str, float | None] = {}
        self.trees: dict[str, float | None] = {}
        self.nonempty: set[str] = set()
        self.subdirs: dict[str, set[str]] = {}

    @abstractmethod
    def stat(self, paths: list[str], result: dict[str, float]) -> None:
        """Add ``path -> mtime`` to ``result`` for each of ``paths`` that is a file."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Delete the file ``path``; missing is fine; StorageError for a path the backend
        can tell names a directory or prefix."""

    @abstractmethod
    def stat_dirs(self, paths: list[str], result: dict[str, float] | set[str]) -> None:
        """For each of ``paths`` that is a directory holding a file: add ``path -> newest
        mtime`` to a dict ``result``, or just ``path`` to a set (existence only, cheaper)."""

    @abstractmethod
    def remove_tree(self, path: str) -> None:
        """Delete the directory or prefix ``path`` and everything below it; missing is fine."""

    @abstractmethod
    def cache_keys(self, path: str) -> tuple[str, str]:
        """(key in ``single``, key in ``listings`` of its parent) for ``path``."""

    def invalidate(self, path: str) -> None:
        """Forget ``path`` and its parent's listing, here and in fsspec's own cache, and what
        is known of the directories above it (a file written or removed there changes them)."""
        full, parent = self.cache_keys(path)
        self.single.pop(full, None)
        self.listings.pop(parent, None)
        above = full.rstrip("/")
        while above:
            self.trees.pop(above, None)
            self.nonempty.discard(above)
            self.subdirs.pop(above + "/", None)
            self.subdirs.pop(above, None)
            above = above.rpartition("/")[0]
        try:  # s3fs/fsspec's own listing cache (keys without trailing "/")
            self.fs.invalidate_cache(parent.rstrip("/") or parent)
            self.fs.invalidate_cache(full)
        except Exception:  # a filesystem without a cache; nothing to clear
            pass

    def scrub(self, text: str) -> str:
        """``text`` without the secrets the owning ``Storage`` knows of."""
        return scrub_secrets(text, self.storage.storage_options)


def fs_key(path: str) -> str:
    """Protocol part of a URL: 's3' for s3://..., 'simplecache::s3' for chained URLs."""
    head, sep, _ = path.rpartition("://")
    return head if sep else "file"


def scrub_secrets(text: str, storage_options: dict) -> str:
    """``text`` with every known secret replaced by ``***``.

    Secrets are the AWS key variables of the environment and every string option, at any
    depth of ``storage_options``, named as in ``_SECRET_OPTION_NAMES``; values under 4
    characters are left alone (replacing them would garble ordinary words). Both are read
    at each call, so credentials changed since the ``Storage`` was made are scrubbed too.
    """
    secrets: set[str] = set()
    for name in _SECRET_ENV:
        v = os.environ.get(name)
        if v:
            secrets.add(v)
    stack: list[Any] = [storage_options]
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
    for s in sorted(secrets, key=len, reverse=True):  # longest first: no partial leftovers
        if len(s) >= 4:
            text = text.replace(s, "***")
    return text


def to_epoch(value: Any) -> float:
    """Epoch seconds from a datetime, a number or an ISO 8601 string (as backends report)."""
    if isinstance(value, datetime):
        return value.timestamp()  # naive datetimes are taken as local time
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise TypeError(f"not a time: {value!r}")


def info_mtime(info: dict) -> float | None:
    """mtime from an fsspec info dict, whatever the backend calls it."""
    for field in ("mtime", "LastModified", "last_modified", "modified", "updated", "created",
                  "time_modified", "mtime_ns"):
        v = info.get(field)
        if v is None or v == "":
            continue
        try:
            mt = to_epoch(v)
        except (TypeError, ValueError):
            continue
        return mt / 1e9 if field == "mtime_ns" else mt
    return None


def describe(exc: BaseException) -> str:
    """First line of an exception's text (or its type): messages stay one paragraph."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
