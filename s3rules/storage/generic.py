"""Any fsspec filesystem other than S3 (``memory://``, ``gs://``, ``simplecache::s3://``...).

A parent holding ONE requested path costs one ``info()`` of that path; a parent holding
SEVERAL costs one ``ls(detail=True)`` of that parent (the filesystem paginates as it
likes). An entry without an mtime in its info costs one ``modified()`` more. A directory
output costs one ``find(detail=True)`` of itself, for its mtime or its existence alike
(filesystems here have no cheaper "is it non-empty"). Results are cached until
``Storage.invalidate`` (see :class:`~.base.RemoteBackend`).

Named ``generic`` rather than ``fsspec`` so that the package never appears to shadow the
library it uses.
"""
from __future__ import annotations

from ..errors import StorageError
from .base import MISSING_ERRNO_TYPES, RemoteBackend, describe, info_mtime, to_epoch

__all__ = ["FsspecBackend"]


class FsspecBackend(RemoteBackend):
    """Lookups through ``fs.info``/``fs.ls``; ``listings`` and ``single`` are keyed by the
    stripped full path (``fs._strip_protocol``), listings by the parent's."""

    def stat(self, paths: list[str], result: dict[str, float]) -> None:
        fs, single = self.fs, self.single
        groups: dict[str, dict[str, list[str]]] = {}
        for p in paths:
            full = fs._strip_protocol(p).rstrip("/")
            if not full or p.endswith("/"):
                continue
            groups.setdefault(fs._parent(full), {}).setdefault(full, []).append(p)
        for parent, members in groups.items():
            listing = self.listings.get(parent)
            if listing is None:
                pending = {f: o for f, o in members.items() if f not in single}
                if len(pending) > 1:
                    listing = self._list(parent)
            for full, originals in members.items():
                if listing is not None:
                    mt = listing.get(full)
                else:
                    if full not in single:
                        single[full] = self._info(full, originals[0])
                    mt = single[full]
                if mt is not None:
                    for o in originals:
                        result[o] = mt

    def stat_dirs(self, paths: list[str], result: dict[str, float] | set[str]) -> None:
        for p in paths:
            full = self.fs._strip_protocol(p).rstrip("/")
            if not full:
                continue
            if full not in self.trees:
                self.trees[full] = self._newest(full, p)
            mt = self.trees[full]
            if mt is None:
                continue
            if isinstance(result, set):
                result.add(p)
            else:
                result[p] = mt

    def _newest(self, full: str, original: str) -> float | None:
        """One ``find`` below ``full``: the newest file's mtime, None when there is none."""
        fs = self.fs
        try:
            found = fs.find(full, detail=True)
        except MISSING_ERRNO_TYPES:
            return None
        except Exception as e:
            raise StorageError(self.scrub(
                f"cannot list the directory {original}: {describe(e)}. Check that the location "
                "exists and that your credentials may list it.")) from None
        newest: float | None = None
        for name, info in found.items():
            name = fs._strip_protocol(name).rstrip("/")
            if info.get("type") != "file" or not name.startswith(full + "/"):
                continue   # find() of a file gives the file itself: no directory
            mt = info_mtime(info)
            mt = self._modified(name) if mt is None else mt
            newest = mt if newest is None or mt > newest else newest
        return newest

    def remove_tree(self, path: str) -> None:
        """Each file below ``path`` (found by ``find``, which never reads a path as a glob, as
        ``rm`` does), then the directories left, deepest first."""
        fs = self.fs
        full = fs._strip_protocol(path).rstrip("/")
        if not full:
            raise StorageError(f"cannot remove {path}: it names the root of the filesystem.")
        try:
            found = fs.find(full, withdirs=True, detail=True)
        except FileNotFoundError:
            return
        below = {fs._strip_protocol(n).rstrip("/"): i for n, i in found.items()}
        below = {n: i for n, i in below.items() if n.startswith(full + "/")}
        for name, info in below.items():
            if info.get("type") == "file":
                fs.rm_file(name)
        for name in sorted((n for n, i in below.items() if i.get("type") != "file"), reverse=True) + [full]:
            try:
                fs.rmdir(name)
            except (OSError, NotImplementedError):   # not a directory, not empty, or none at all
                pass

    def cache_keys(self, path: str) -> tuple[str, str]:
        full = self.fs._strip_protocol(path)
        return full, self.fs._parent(full)

    def remove(self, path: str) -> None:
        fs = self.fs
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

    def _list(self, parent: str) -> dict[str, float]:
        """One ``ls`` of ``parent``: its files (full path -> mtime), cached. Missing is empty."""
        fs = self.fs
        try:
            entries = fs.ls(parent, detail=True)
        except MISSING_ERRNO_TYPES:
            entries = []
        except Exception as e:
            raise StorageError(self.scrub(
                f"cannot list {fs.unstrip_protocol(parent)}: {describe(e)}. Check that the "
                "location exists and that your credentials may list it.")) from None
        files: dict[str, float] = {}
        for e in entries:
            if e.get("type") != "file":
                continue
            name = fs._strip_protocol(e["name"]).rstrip("/")
            mt = info_mtime(e)
            if mt is None:
                mt = self._modified(name)
            files[name] = mt
        self.listings[parent] = files
        return files

    def _info(self, full: str, original: str) -> float | None:
        """One ``info`` of ``full``: its mtime if it is a file, else None."""
        fs = self.fs
        try:
            info = fs.info(full)
        except MISSING_ERRNO_TYPES:
            return None
        except Exception as e:
            raise StorageError(self.scrub(
                f"cannot check {original}: {describe(e)}. Check that the location exists "
                "and that your credentials may read it.")) from None
        if info.get("type") != "file":
            return None
        mt = info_mtime(info)
        return mt if mt is not None else self._modified(full)

    def _modified(self, full: str) -> float:
        """``fs.modified`` for filesystems whose listings carry no time; none at all is an error."""
        fs = self.fs
        try:
            return to_epoch(fs.modified(full))
        except Exception as e:
            raise StorageError(
                f"cannot get the modification time of {fs.unstrip_protocol(full)}: the "
                f"'{fs.protocol}' filesystem does not report it ({describe(e)}). s3rules needs "
                "mtimes to decide what is out of date; use local paths or s3:// for targets.") from None
