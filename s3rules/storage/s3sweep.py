"""Targets under many sibling S3 prefixes, settled by listing their common ancestor.

``results/{sample}/x.bam`` puts each target under a prefix of its own, where one request per
prefix (a HEAD, or a listing) is one request per sample. So the prefixes with pending targets
are grouped by the deepest ancestor each shares with another (:func:`by_ancestor`), and a
group's keys, sorted, are walked with ListObjectsV2 of that ancestor without delimiter. Each
call starts just before the next target not yet settled (``StartAfter`` is the key less its
last character, a proper prefix, which sorts before it) and settles every target up to its
last key: present with its mtime, or absent. Keys nobody asked for between two targets are
jumped over. A page settles at least the target it starts at, and a dense group costs about
one request per 1,000 objects.

The first page (the probe) measures how many targets a page settles. The rest is walked only
when that is cheaper than one request per prefix: in chains (contiguous runs of the sorted
targets) walked concurrently, one per 16 pages expected, at least 8, at most
``Storage.max_concurrency``. A chain costs at most one page more than a single walk would,
and the probe one more, so a group costs about ``ceil(objects / 1000) + 1 + chains``.
Otherwise (sparse targets: the probe settled one, say) each prefix left costs what it costs
alone, a HEAD or a listing of a prefix holding several pending targets, as without the walk.

Key order: S3 lists keys in UTF-8 byte order, but SeaweedFS walks directories (``a/x`` comes
before ``a-b/x``), and its StartAfter skips the keys below ``StartAfter + "/"``. A target
counts as absent only when a page covers it in both orders (:func:`covers`); one that no page
covers costs one HEAD.
"""
from __future__ import annotations

import os
from typing import Any, Awaitable, Iterable

from .base import to_epoch

__all__ = ["Shared", "by_ancestor", "chain_count", "covers", "gather", "walk"]

PAGE_KEYS = 1000       # keys a ListObjectsV2 page holds: S3's default and most
FEWEST_CHAINS = 8      # below this many chains, a long walk is mostly waiting
PAGES_PER_CHAIN = 16   # above it, one more chain per 16 pages: at most 1/16 wasted


def by_ancestor(prefixes: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """``{prefix: pending keys}`` of one bucket, grouped as ``{ancestor: {prefix: keys}}``.

    Each prefix goes under the deepest prefix it shares with another (``""`` is the bucket's
    root); that one is shared with a neighbour in sorted order. A prefix alone in its group is
    asked on its own.
    """
    ordered = sorted(prefixes)
    groups: dict[str, dict[str, list[str]]] = {}
    for i, prefix in enumerate(ordered):
        neighbours = ordered[max(i - 1, 0):i] + ordered[i + 1:i + 2]
        ancestor = max((_common_dir(prefix, n) for n in neighbours), key=len, default=prefix)
        groups.setdefault(ancestor, {})[prefix] = prefixes[prefix]
    return groups


def _common_dir(a: str, b: str) -> str:
    """The longest prefix of ``a`` and ``b`` that ends with ``/`` (or ``""``)."""
    shared = len(os.path.commonprefix((a, b)))
    return a[: a.rfind("/", 0, shared) + 1]


def covers(start: str, last: str | None, key: str) -> bool:
    """Whether a page listed after ``start`` up to ``last`` (None: to the end of the listing)
    holds ``key`` if it exists, whether the server sorts keys by bytes or by directory."""
    if key.startswith(start + "/"):
        return False   # SeaweedFS skips them
    parts = key.split("/")
    if not (start < key and start.split("/") < parts):
        return False
    return last is None or (key <= last and parts <= last.split("/"))


def chain_count(settled: int, open_keys: int, open_prefixes: int, most: int) -> int:
    """How many chains to walk ``open_keys`` with, after the probe settled ``settled`` keys in
    one page; 0 when asking each of ``open_prefixes`` alone costs no more."""
    if settled < 1 or not open_keys:
        return 0
    pages = -(-open_keys // settled)
    chains = min(pages, most, max(FEWEST_CHAINS, -(-pages // PAGES_PER_CHAIN)))
    return chains if pages + chains < open_prefixes else 0


class _Walk:
    """One group's pending keys, sorted, and what the pages said of them so far."""

    def __init__(self, backend: Any, bucket: str, ancestor: str, prefixes: dict[str, list[str]]):
        self.backend, self.bucket, self.ancestor = backend, bucket, ancestor
        self.keys = sorted(k for keys in prefixes.values() for k in keys)
        self.wanted = set(self.keys)
        self.known: dict[str, float | None] = {}   # key -> mtime, or None: absent

    def take(self, page: dict, start: str, lo: int, hi: int) -> int:
        """Record a page listed after ``start``; the index of the first of ``keys[lo:hi]`` it
        leaves open (``lo`` when it settles none of them)."""
        contents = page.get("Contents") or ()
        for obj in contents:
            if obj["Key"] in self.wanted:
                self.known[obj["Key"]] = to_epoch(obj["LastModified"])
        last = (contents[-1]["Key"] if contents else start) if page.get("IsTruncated") else None
        i = lo
        while i < hi and (self.keys[i] in self.known or covers(start, last, self.keys[i])):
            self.known.setdefault(self.keys[i], None)
            i += 1
        return i

    async def chain(self, lo: int, hi: int, shared: Shared, pages: int | None = None) -> int:
        """Settle ``keys[lo:hi]``, one page after another (at most ``pages``); returns where it
        stopped. A key no page covers costs one HEAD."""
        i = lo
        while i < hi and pages != 0:
            key = self.keys[i]
            if key in self.known:   # seen on another chain's page
                i += 1
                continue
            start = key[:-1]
            after = {"StartAfter": start} if start else {}
            page = await self.backend.list_page(self.bucket, self.ancestor, shared,
                                                MaxKeys=PAGE_KEYS, **after)
            stop = self.take(page, start, i, hi)
            if stop == i:
                await self.backend.head_object(self.bucket, key, shared)
                self.known[key] = self.backend.single[f"{self.bucket}/{key}"]
                stop += 1
            i = stop
            pages = None if pages is None else pages - 1
        return i


async def walk(backend: Any, bucket: str, ancestor: str, prefixes: dict[str, list[str]],
               shared: Shared) -> None:
    """Settle the pending keys of ``prefixes``, all below ``ancestor``, into ``backend.single``:
    the probe, then chains or one request per prefix, whichever costs less."""
    w = _Walk(backend, bucket, ancestor, prefixes)
    settled = await w.chain(0, len(w.keys), shared, pages=1)
    left = {prefix: rest for prefix, keys in prefixes.items()
            if (rest := [k for k in keys if k not in w.known])}
    chains = chain_count(settled, sum(map(len, left.values())), len(left), shared.limit)
    if chains:
        span = len(w.keys) - settled
        bounds = [settled + span * c // chains for c in range(chains + 1)]
        await gather(w.chain(lo, hi, shared) for lo, hi in zip(bounds, bounds[1:]))
    elif left:
        await backend.by_prefix(bucket, left, shared)
    for k, mtime in w.known.items():
        backend.single[f"{bucket}/{k}"] = mtime


class Shared:
    """What the requests of one ``stat`` call share: at most ``limit`` in flight, and one
    HeadBucket per bucket (a task every HEAD that got a 404 there waits for)."""

    def __init__(self, limit: int):
        import asyncio  # only S3 needs it: local planning skips the import

        self.limit = limit
        self.slots = asyncio.Semaphore(limit)
        self.bucket_checks: dict[str, Any] = {}


async def gather(coros: Iterable[Awaitable]) -> None:
    """Await ``coros`` concurrently; once all have ended, raise the first error, if any."""
    import asyncio

    for outcome in await asyncio.gather(*coros, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome
