"""One run per workspace: two runs never write the same outputs at once.

A run holds ``.s3rules/lock`` (an exclusive ``flock``) while it plans and registers, so no
other run plans meanwhile; it registers the outputs it will write in ``.s3rules/runs/<pid>``,
a file it keeps ``flock``-ed until it ends. A later run whose outputs overlap a live
registration refuses, naming that run. A registration whose lock is free belongs to a process
that died (``kill -9``, a crash): it is taken over. The kernel drops a dead process's locks,
so pid reuse cannot fool this. A run that ends unregisters under ``.s3rules/lock`` too, so
what it finished while another run planned is seen by that plan.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from typing import Iterable

from .errors import S3RulesError
from .views import display_path


class WorkspaceBusy(S3RulesError):
    """Another live run is writing some of this run's outputs."""


class Workspace:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.runs = os.path.join(state_dir, "runs")
        self._guard: int | None = None
        self._mine: int | None = None
        self._path = ""
        self.notes: list[str] = []

    def __enter__(self) -> "Workspace":
        """Hold the workspace while planning (other runs wait here until this one registered)."""
        try:
            os.makedirs(self.runs, exist_ok=True)
            self._guard = os.open(os.path.join(self.state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:   # .s3rules/ is in the way: run, and say so
            self.notes.append(f"cannot lock the workspace {self.state_dir} ({exc.strerror or exc}); another run "
                              "in this directory would not be stopped from writing the same outputs")
            return self
        fcntl.flock(self._guard, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        self._drop_guard()

    def _drop_guard(self) -> None:
        if self._guard is not None:
            os.close(self._guard)
            self._guard = None

    def register(self, outputs: Iterable[str], what: str) -> None:
        """Claim ``outputs`` for this run, or raise ``WorkspaceBusy`` naming the run that has some."""
        if self._guard is None:
            return
        mine = set(outputs)
        self.check(mine)
        path = os.path.join(self.runs, f"{os.getpid()}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                                 "what": what, "outputs": sorted(mine)}).encode())
        self._mine, self._path = fd, path

    def check(self, outputs: Iterable[str]) -> None:
        """Raise ``WorkspaceBusy`` if a live run registered any of ``outputs``."""
        if self._guard is None:
            return
        mine = outputs if isinstance(outputs, set) else set(outputs)
        for name in sorted(os.listdir(self.runs)):
            other = self._live(os.path.join(self.runs, name))
            if other is None:
                continue
            overlap = [p for p in other.get("outputs", ()) if p in mine]
            if overlap:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(other.get("started", 0)))
                raise WorkspaceBusy(
                    f"another s3rules run is writing outputs this run needs (pid {other.get('pid')} on "
                    f"{other.get('host')}, started {when}: {other.get('what', '')}); for example "
                    f"{display_path(overlap[0])}. Wait for it to finish and run again, or pass --nolock if you are sure "
                    "the two runs cannot write the same files.")

    def claimed(self) -> set[str]:
        """The outputs live runs registered (read without the workspace lock: for ``status``)."""
        out: set[str] = set()
        try:
            names = os.listdir(self.runs)
        except OSError:
            return out
        for name in names:
            other = self._live(os.path.join(self.runs, name), take_over=False)
            if other:
                out.update(other.get("outputs", ()))
        return out

    @staticmethod
    def _live(path: str, take_over: bool = True) -> dict | None:
        """The registration at ``path`` if its run is alive; a dead run's is removed (``take_over``)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with os.fdopen(os.dup(fd)) as fh:
                    try:
                        return json.load(fh)
                    except ValueError:
                        return {}
            if take_over:
                os.unlink(path)   # its run died
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Unregister, under the workspace lock, so a run planning now waits and sees our outputs."""
        if self._mine is None:
            return
        try:
            guard = os.open(os.path.join(self.state_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            guard = None
        try:
            if guard is not None:
                fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            os.close(self._mine)
            self._mine = None
        finally:
            if guard is not None:
                os.close(guard)
