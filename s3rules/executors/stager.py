"""A local staged job (``stage: true``), run as its own process: download, run, upload.

``python -m s3rules.executors.stager PLAN`` reads the plan (a JSON file the local executor
wrote, deleted once read), makes a scratch directory, downloads the job's input URLs into it
with fsspec (several files at once), runs the command there, uploads the logs whatever
happened and the outputs only when the command succeeded, then removes the directory. Its
exit status is the command's (1 when a transfer failed). Being a process of the job's own
session, it is stopped with the command when the run is cancelled: it then waits for the
command to end, uploads the logs and exits 143.

What moves where is :mod:`s3rules.model.staging`'s; AWS Batch jobs do the same in bash
with the AWS CLI (:mod:`s3rules.aws.staging`).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from ..model.staging import Staging, Transfer
from ..storage import Storage


ARGUMENT_MAX = 100_000   # bytes; Linux refuses one argument over 128 KiB ("Argument list too long")


def runnable(argv: list[str], path: str) -> list[str]:
    """``argv`` (``[shell, "-c", script]``) as the kernel takes it: a script too long for one
    argument (an aggregate's over 10,000 inputs) is written to ``path`` and run from there."""
    if len(argv[-1].encode()) <= ARGUMENT_MAX:
        return argv
    with open(path, "w") as fh:
        fh.write(argv[-1])
    return [argv[0], path]


def write_plan(path: str, argv: list[str], staging: Staging, scratch: str | None) -> None:
    """The plan ``main`` reads: the command's argv and what to move."""
    plan = {"argv": argv, "scratch": scratch,
            **{part: [[t.url, t.local, t.directory] for t in getattr(staging, part)]
               for part in ("inputs", "outputs", "logs")}}
    with open(path, "w") as fh:
        json.dump(plan, fh)


def _transfers(rows) -> list[Transfer]:
    return [Transfer(url, local, directory) for url, local, directory in rows]


def _by_filesystem(storage: Storage, pairs: list[tuple[str, str]]) -> dict:
    """(url, local file) pairs grouped by the filesystem that serves each URL."""
    groups: dict[int, tuple[object, list[str], list[str]]] = {}
    for url, local in pairs:
        fs = storage.filesystem(url)
        groups.setdefault(id(fs), (fs, [], []))
        groups[id(fs)][1].append(url)
        groups[id(fs)][2].append(local)
    return groups


def download(storage: Storage, inputs: list[Transfer], scratch: str) -> None:
    """Every input into ``scratch``; a directory input is copied whole, file by file."""
    pairs = []
    for t in inputs:
        target = os.path.join(scratch, t.local)
        if not t.directory:
            pairs.append((t.url, target))
            continue
        fs = storage.filesystem(t.url)
        root = fs._strip_protocol(t.url).rstrip("/")
        protocol = t.url.split("://", 1)[0]
        for found, info in fs.find(root, detail=True).items():
            if info.get("type") == "file" and not found.endswith("/"):   # folder markers are no files
                pairs.append((f"{protocol}://{found}", os.path.join(target, os.path.relpath(found, root))))
        os.makedirs(target, exist_ok=True)
    for local in {os.path.dirname(local) for _, local in pairs}:
        os.makedirs(local, exist_ok=True)
    for fs, urls, locals_ in _by_filesystem(storage, pairs).values():
        fs.get(urls, locals_)
    for url, local in pairs:   # a prefix asked for as a file downloads nothing, and says nothing
        if not os.path.isfile(local):
            raise FileNotFoundError(f"{url} was not downloaded (a directory that no rule marks directory()?)")


def upload(storage: Storage, transfers: list[Transfer], scratch: str) -> list[str]:
    """What the command made goes to its URL; a directory output replaces what was there.
    Paths the command did not make are skipped (the runner reports them); returns them."""
    pairs, skipped = [], []
    for t in transfers:
        source = os.path.join(scratch, t.local)
        if not os.path.exists(source):
            skipped.append(t.url)
            continue
        if not t.directory:
            pairs.append((t.url, source))
            continue
        storage.remove(t.url, directory=True)   # what an older run left there goes (no glob in the URL)
        for folder, _, files in os.walk(source):
            for name in files:
                path = os.path.join(folder, name)
                pairs.append((t.url.rstrip("/") + "/" + os.path.relpath(path, source), path))
    for fs, urls, locals_ in _by_filesystem(storage, pairs).values():
        fs.put(locals_, urls)
    return skipped


def run(plan: dict) -> int:
    inputs, outputs, logs = (_transfers(plan[k]) for k in ("inputs", "outputs", "logs"))
    scratch = tempfile.mkdtemp(prefix="s3rules-stage-", dir=plan.get("scratch"))
    storage = Storage()
    running: list[subprocess.Popen] = []
    stopped: list[int] = []

    def stop(signum, _frame):   # cancelled: before the command, just go; during it, end it first
        if not running:
            raise SystemExit(128 + signum)
        stopped.append(signum)
        running[0].send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            download(storage, inputs, scratch)
        except Exception as exc:   # noqa: BLE001 - any failure to fetch fails the job, said in its log
            print(f"s3rules: could not download the job's inputs: {exc}", file=sys.stderr)
            return 1
        for t in outputs + logs:
            os.makedirs(os.path.join(scratch, t.local if t.directory else os.path.dirname(t.local)), exist_ok=True)
        argv = runnable(plan["argv"], os.path.join(scratch, "s3rules-command.sh"))
        running.append(subprocess.Popen(argv, cwd=scratch, stdin=subprocess.DEVNULL))
        code = running[0].wait()
        code = 128 - code if code < 0 else code   # killed by a signal: as a shell says it
        if stopped:
            code = 128 + stopped[0]
        try:
            upload(storage, logs, scratch)
        except Exception as exc:   # noqa: BLE001 - a log is kept when it can be; the job's word stands
            print(f"s3rules: could not upload the job's log: {exc}", file=sys.stderr)
        if code != 0:
            print(f"s3rules: the command failed (exit {code}); its outputs were not uploaded", file=sys.stderr)
            return code
        try:
            upload(storage, outputs, scratch)
        except Exception as exc:   # noqa: BLE001
            print(f"s3rules: could not upload the job's outputs: {exc}", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    path = (argv or sys.argv[1:])[0]
    with open(path) as fh:
        plan = json.load(fh)
    os.unlink(path)
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
