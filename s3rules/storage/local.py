"""Local paths and ``file://``/``local://`` URLs: plain ``os`` calls, grouped by directory.

A directory holding ONE requested path costs one ``os.stat`` of that path; a directory
holding SEVERAL costs one ``os.scandir`` of it (on a directory fd where the platform
allows, so each ``entry.stat()`` is an ``fstatat()`` relative to it, about 25% cheaper
than re-walking the full path). For existence alone, the entry's type is enough and no
``stat`` is made at all.

A directory output (``directory("...")``) needs a look inside anyway (it exists when it holds a
file, at any depth), so each costs one ``scandir`` of itself and of its subdirectories: for
existence only until the first file turns up, for an mtime (the newest file's) all of them.

Nothing is cached: a ``stat`` is cheaper than the bookkeeping and always fresh. This is
the hot path of planning a million local targets, so it has no classes and no per-path
function calls; fsspec, s3fs and boto3 are never imported here.
"""
from __future__ import annotations

import os
import shutil
import stat as statmod
from typing import Iterable

from ..errors import StorageError
from .base import MISSING_ERRNO_TYPES, fs_key

__all__ = ["LOCAL_PREFIXES", "group", "is_local", "local_path", "make_parent_dirs", "put_back", "remove",
           "remove_tree", "set_aside", "stat_dirs", "stat_local"]

LOCAL_PREFIXES = ("file://", "local://")
_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_DIR_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def is_local(path: str) -> bool:
    """True for plain paths and ``file://``/``local://`` URLs; False for any other ``scheme://``."""
    return "://" not in path or path.startswith(LOCAL_PREFIXES)


def local_path(path: str) -> str:
    """The OS path of a local path or URL (``file://localhost/x`` is ``/x``)."""
    for prefix in LOCAL_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if rest.startswith("localhost/"):
                rest = rest[len("localhost"):]
            return rest
    return path


def group(paths: Iterable[str]):
    """(local directory -> {basename: path}, path -> other paths naming the same local
    file, fs key -> remote paths).

    One pass over all paths, local or not, because it is the hot loop for a million local
    paths: remote ones are only set aside by fs key here.
    """
    local: dict[str, dict[str, str]] = {}
    aliases: dict[str, list[str]] = {}
    remote: dict[str, list[str]] = {}
    get = local.get
    for p in paths:
        if "://" in p:
            if not p.startswith(LOCAL_PREFIXES):
                remote.setdefault(fs_key(p), []).append(p)
                continue
            lp = local_path(p)
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


def stat_local(groups: dict[str, dict[str, str]], result: dict[str, float] | set[str]) -> None:
    """Fill ``result``: path -> mtime for a dict, just the paths of files for a set.

    A lone path is stat'ed inline (one call per directory would show when every target
    has its own directory); a directory of several is handed to :func:`_scan`.
    """
    stat, S_ISREG = os.stat, statmod.S_ISREG
    add = result.add if isinstance(result, set) else None
    for directory, names in groups.items():
        try:
            if len(names) == 1:
                (name, original), = names.items()
                full = directory + name if directory.endswith("/") else f"{directory}/{name}"
                try:
                    st = stat(full)
                except MISSING_ERRNO_TYPES:
                    continue
                if S_ISREG(st.st_mode):
                    if add is None:
                        result[original] = st.st_mtime
                    else:
                        add(original)
                continue
            _scan(directory, names, result, add)
        except OSError as e:
            raise StorageError(
                f"cannot check files in {directory}: {e.strerror or e}. Check that the "
                "directory is readable (permissions, mounts) by the user running s3rules.") from None


def _scan(directory: str, names: dict[str, str], result: dict[str, float] | set[str], add) -> None:
    """One ``scandir`` of ``directory`` for the requested ``names`` (basename -> path).

    ``add`` is ``result.add`` when only existence is wanted, else None. A directory that
    vanished, or an entry removed meanwhile, is "missing"; other OSErrors propagate.
    """
    # scandir on a directory fd: each entry.stat() is then an fstatat() relative to it,
    # about 25% cheaper than re-walking the full path.
    try:
        fd = os.open(directory, _DIR_OPEN_FLAGS) if _SCANDIR_FD else directory
    except MISSING_ERRNO_TYPES:
        return
    try:
        with os.scandir(fd) as it:
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
                except MISSING_ERRNO_TYPES:  # removed meanwhile
                    continue
    except MISSING_ERRNO_TYPES:
        return
    finally:
        if _SCANDIR_FD:
            os.close(fd)


def stat_dirs(paths: Iterable[str], result: dict[str, float] | set[str]) -> None:
    """Fill ``result`` for directory outputs: path -> newest file's mtime for a dict, the
    paths of directories holding a file for a set. An empty directory, a file or nothing at
    the path is missing."""
    want_mtime = not isinstance(result, set)
    seen: dict[str, float | None] = {}
    for p in paths:
        lp = local_path(p).rstrip("/") or "/"
        if lp not in seen:
            try:
                seen[lp] = _newest(lp, want_mtime)
            except OSError as e:
                raise StorageError(
                    f"cannot check the directory {p}: {e.strerror or e}. Check that it is readable "
                    "(permissions, mounts) by the user running s3rules.") from None
        mt = seen[lp]
        if mt is None:
            continue
        if want_mtime:
            result[p] = mt
        else:
            result.add(p)


def _newest(top: str, want_mtime: bool) -> float | None:
    """The newest mtime of the files below ``top`` (without ``want_mtime``, any file's: the
    walk stops at the first); None when there is none. Symlinked subdirectories are not
    followed (no cycles); symlinks to files count as the files."""
    newest: float | None = None
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file():
                            if not want_mtime:
                                return 0.0
                            mt = entry.stat().st_mtime
                            if newest is None or mt > newest:
                                newest = mt
                    except MISSING_ERRNO_TYPES:   # removed meanwhile
                        continue
        except MISSING_ERRNO_TYPES:   # top missing or a file; a subdirectory removed meanwhile
            continue
    return newest


def remove_tree(path: str) -> None:
    """Delete the directory ``path`` and everything in it; missing is fine. A symlink there
    goes alone (never what it points to); a file there is refused, as ``remove`` refuses a
    directory."""
    lp = local_path(path).rstrip("/") or "/"
    try:
        if os.path.islink(lp):
            os.remove(lp)
        elif os.path.isfile(lp):
            raise StorageError(f"cannot remove the directory {path}: it is a file. Remove it by hand if it "
                               "is in the way.")
        else:
            shutil.rmtree(lp)
    except MISSING_ERRNO_TYPES:
        pass
    except OSError as e:
        raise StorageError(
            f"cannot remove the directory {path}: {e.strerror or e}. Check the permissions of it, "
            "of what it holds and of its parent.") from None


def remove(path: str) -> None:
    """Delete the local file ``path``; a missing file is fine. Refuses directories."""
    lp = local_path(path)
    try:
        os.remove(lp)
    except MISSING_ERRNO_TYPES:
        pass
    except IsADirectoryError:
        raise StorageError(
            f"cannot remove {path}: it is a directory, and s3rules only removes "
            "files it manages. Remove it by hand if it is in the way.") from None
    except OSError as e:
        raise StorageError(
            f"cannot remove {path}: {e.strerror or e}. Check the permissions of "
            "the file and of its directory.") from None


def make_parent_dirs(path: str) -> None:
    """Create the parent directories of the local ``path`` (no-op if there are none)."""
    parent = os.path.dirname(local_path(path))
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


def aside_path(path: str) -> str:
    """Where ``set_aside`` keeps the old ``path``: a hidden file beside it (a rename, never a copy)."""
    head, name = os.path.split(local_path(path).rstrip("/"))
    return os.path.join(head, f".{name}.s3rules-old")


def set_aside(path: str) -> str | None:
    """Move the local file or directory ``path`` out of the way of a job about to write it
    (a rename); where it went, or None when there was nothing.

    A file already set aside was left by a run that was killed while its job rewrote ``path``:
    that one is the complete old output, and what is at ``path`` is the killed job's. It stays
    set aside, and the killed job's file goes.
    """
    aside = aside_path(path)
    if os.path.lexists(aside):
        _remove_any(path)
        return aside
    try:
        os.replace(local_path(path), aside)
    except MISSING_ERRNO_TYPES:
        return None
    except OSError as e:
        raise StorageError(f"cannot move {path} aside before its job runs: {e.strerror or e}. Check the "
                           "permissions of its directory.") from None
    return aside


def put_back(path: str, aside: str) -> None:
    """Undo ``set_aside``: the old file or directory takes its place again, over whatever
    the job left (a directory cannot be renamed over one that holds files: that goes first)."""
    lp = local_path(path)
    if os.path.isdir(aside) or (os.path.isdir(lp) and not os.path.islink(lp)):
        _remove_any(path)
    try:
        os.replace(aside, lp)
    except OSError as e:
        raise StorageError(f"cannot put the previous {path} back from {aside}: {e.strerror or e}. Move it "
                           "back by hand.") from None


def _remove_any(path: str) -> None:
    """Delete what is at ``path``, a file or a whole directory (only what a job left there)."""
    lp = local_path(path)
    if os.path.isdir(lp) and not os.path.islink(lp):
        remove_tree(path)
    else:
        remove(path)
