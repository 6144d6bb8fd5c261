"""Records of jobs with local outputs: one line per event, appended to ``.s3rules/ledger/journal``.

A line is ``time state command params input resources where<TAB>outputs``; the last line of a
job wins. Appends are one ``write`` under an exclusive ``flock``, so runs in one workspace never
interleave lines; a line cut short by a crash is skipped when read. Full records (what
``--explain`` compares) go to ``records/<hash>.json``, one file per job, replaced atomically.
When most lines are superseded, the journal is rewritten with the last line of each job.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from typing import Iterable

from .records import Record

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n"}


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text:
        return "".join(_ESCAPES.get(c, c) for c in text)
    return text


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append({"t": "\t", "n": "\n"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Journal:
    """The ledger of one workspace's local outputs. Keys are a job's outputs joined by 0x1f,
    written relative to the workspace."""

    def __init__(self, directory: str, base_dir: str):
        self.directory = directory
        self.path = os.path.join(directory, "journal")
        self.base = base_dir.rstrip("/") + "/"
        self._lines = 0
        self._latest: dict[str, Record] | None = None

    def _relative(self, key: str) -> str:
        base, n = self.base, len(self.base)
        if "\x1f" in key:
            return "\x1f".join(p[n:] if p.startswith(base) else p for p in key.split("\x1f"))
        return key[n:] if key.startswith(base) else key

    def read(self) -> dict[str, Record]:
        """Job key (absolute outputs) -> its last record; an empty dict when there is no journal."""
        if self._latest is not None:
            return self._latest
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            text = ""
        latest: dict[str, Record] = {}
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        elif lines:
            lines.pop()   # cut short by a crash
        base, sep = self.base, "\x1f"
        for line in lines:
            head, tab, key = line.partition("\t")
            fields = head.split(" ")
            if not tab or len(fields) != 7:
                continue
            key = _unescape(key)
            if sep in key:
                key = sep.join(p if p.startswith("/") or "://" in p else base + p for p in key.split(sep))
            elif not key.startswith("/") and "://" not in key:
                key = base + key
            where = fields[6]
            latest[key] = Record(float(fields[0]), fields[1], tuple(fields[2:6]), "" if where == "-" else where)
        self._lines = len(lines)
        self._latest = latest
        return latest

    def append(self, entries: Iterable[tuple[str, Record]]) -> None:
        """Add records (job key, record) in one write."""
        text = []
        for key, rec in entries:
            text.append(f"{rec.time:.3f} {rec.state} {' '.join(rec.hashes)} {rec.where or '-'}\t"
                        f"{_escape(self._relative(key))}\n")
            if self._latest is not None:
                self._latest[key] = rec
        if not text:
            return
        data = "".join(text).encode("utf-8", "surrogateescape")
        os.makedirs(self.directory, exist_ok=True)
        with self._locked() as fd:
            os.write(fd, data)
        self._lines += len(text)

    def _locked(self):
        journal = self

        class _Lock:
            def __enter__(self):
                while True:
                    self.fd = os.open(journal.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    fcntl.flock(self.fd, fcntl.LOCK_EX)
                    try:   # compacted meanwhile: append to the new file
                        if os.fstat(self.fd).st_ino == os.stat(journal.path).st_ino:
                            return self.fd
                    except FileNotFoundError:
                        pass
                    os.close(self.fd)

            def __exit__(self, *exc):
                os.close(self.fd)

        return _Lock()

    def compact(self) -> None:
        """Rewrite the journal with each job's last line, when most lines are superseded."""
        self._latest = None
        latest = self.read()
        if self._lines < 2 * len(latest) + 1000:
            return
        with self._locked():
            self._latest = None
            latest = self.read()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".journal-")
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
                for key, rec in latest.items():
                    fh.write(f"{rec.time:.3f} {rec.state} {' '.join(rec.hashes)} {rec.where or '-'}\t"
                             f"{_escape(self._relative(key))}\n")
            os.replace(tmp, self.path)
            self._lines = len(latest)

    # -- full records ---------------------------------------------------------------------------

    def _body_path(self, key: str) -> str:
        name = hashlib.blake2b(self._relative(key).encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
        return os.path.join(self.directory, "records", name[:2], name + ".json")

    def write_body(self, key: str, body: dict) -> None:
        path = self._body_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".record-")
        with os.fdopen(fd, "w") as fh:
            json.dump(body, fh)
        os.replace(tmp, path)

    def body(self, key: str) -> dict | None:
        try:
            with open(self._body_path(key)) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None
