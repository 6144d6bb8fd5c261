"""Records of jobs with local outputs: one line per event, appended to ``.s3rules/ledger/journal``.

A line is ``output<TAB>state command params input resources time where``: the job's first output
(relative to the workspace; it names the job, as one rule makes each output), then the record's
summary. The last line of a job wins. A plan reads every line, so reading is built for speed:
one ``split`` per line in C, and the summary is parsed only for jobs whose record is not simply
"finished, unchanged". Appends are one ``write`` under an exclusive ``flock``, so runs in one workspace never
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
from operator import methodcaller
from typing import Iterable

from .records import Record, parse, prefix_of, summary_of

#: a rule whose lines show more distinct states and hashes than this is checked job by job
MAX_PREFIXES = 8

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
    """The ledger of one workspace's local outputs, keyed by each job's first output."""

    def __init__(self, directory: str, base_dir: str):
        self.directory = directory
        self.path = os.path.join(directory, "journal")
        self.base = base_dir.rstrip("/") + "/"
        self._lines = 0
        self._latest: dict[str, str] | None = None   # absolute first output -> summary text

    def key(self, output: str) -> str:
        """How ``output`` is written in the journal: relative below the workspace, else absolute."""
        return output[len(self.base):] if output.startswith(self.base) else output

    def lookup_key(self, output: str) -> str:
        """``output`` as :meth:`summaries` has it: the workspace prefixed to what the journal wrote."""
        return output if output.startswith(self.base) else self.base + output

    def summaries(self) -> dict[str, str]:
        """Absolute first output -> the summary of its last record (see :func:`parse`)."""
        if self._latest is not None:
            return self._latest
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            text = ""
        cut = text.rfind("\n") + 1
        body = text[:cut]                      # a last line without its newline was cut short
        self._lines = body.count("\n")
        if not body:
            self._latest = {}
        elif "\\" in body:                     # escaped paths: the careful way
            self._latest = self._parse_slowly(body)
        else:                                  # every key made absolute by one replace, in C
            body = self.base + body[:-1].replace("\n", "\n" + self.base)
            try:
                self._latest = dict(map(methodcaller("split", "\t", 1), body.split("\n")))
            except ValueError:                 # a damaged line
                self._latest = self._parse_slowly(text[:cut])
        return self._latest

    def _parse_slowly(self, body: str) -> dict[str, str]:
        latest = {}
        for line in body.split("\n"):
            key, tab, summary = line.partition("\t")
            if tab and summary.count(" ") == 7:
                latest[self.base + _unescape(key)] = summary
        return latest

    def read(self) -> dict[str, Record]:
        """Absolute first output -> its last record."""
        return {key: parse(summary) for key, summary in self.summaries().items()}

    def append(self, entries: Iterable[tuple[str, Record, str]]) -> None:
        """Add records (a job's first output, its record, its rule's name) in one write."""
        text = []
        for output, rec, rule in entries:
            line = summary_of(rec, rule)
            text.append(f"{_escape(self.key(output))}\t{line}\n")
            if self._latest is not None:
                self._latest[self.lookup_key(output)] = line
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
        """Rewrite the journal with each job's last line, when most lines are superseded; bring
        the index up to date either way, so the next plan reads none of this run's lines."""
        self.prefixes()
        self._latest = None
        latest = self.summaries()
        if self._lines < 2 * len(latest) + 1000:
            return
        with self._locked():
            self._latest = None
            latest = self.summaries()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".journal-")
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.writelines(f"{_escape(self.key(key))}\t{summary}\n" for key, summary in latest.items())
            os.replace(tmp, self.path)
            self._lines = len(latest)
        self.prefixes()

    # -- the index: what each rule's lines say, without reading them all ----------------------

    def prefixes(self) -> dict[str, set[str] | None]:
        """Rule name -> the distinct state-and-hashes its journal lines carry (None: too many).

        A plan asks this first: a rule whose lines all say "finished" with today's hashes needs
        no look at its jobs. Kept in ``index`` beside the journal with the journal's inode and
        the length it covers, so a plan reads only the lines appended since (none, usually).
        """
        index_path = os.path.join(self.directory, "index")
        try:
            st = os.stat(self.path)
        except OSError:
            return {}
        try:
            with open(index_path) as fh:
                index = json.load(fh)
            if index["inode"] != st.st_ino or index["offset"] > st.st_size:
                raise ValueError("the journal was rewritten")
        except (OSError, ValueError, KeyError, TypeError):
            index = {"inode": st.st_ino, "offset": 0, "rules": {}}
        if index["offset"] < st.st_size:
            with open(self.path, "rb") as fh:
                fh.seek(index["offset"])
                tail = fh.read(st.st_size - index["offset"])
            tail = tail[:tail.rfind(b"\n") + 1]
            _index_lines(tail.decode("utf-8", "surrogateescape"), index["rules"])
            index["offset"] += len(tail)
            try:
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".index-")
                with os.fdopen(fd, "w") as fh:
                    json.dump(index, fh)
                os.replace(tmp, index_path)
            except OSError:
                pass   # only the next plan reads more
        return {rule: (set(p) if p is not None else None) for rule, p in index["rules"].items()}

    # -- full records ---------------------------------------------------------------------------

    def _body_path(self, key: str) -> str:
        name = hashlib.blake2b(self.key(key).encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
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


def _index_lines(text: str, rules: dict[str, list | None]) -> None:
    """Add the prefixes of these journal lines to ``rules`` (rule -> prefixes, None when too many)."""
    for line in text.split("\n"):
        _, tab, summary = line.partition("\t")
        if not tab:
            continue
        rule = summary[summary.rfind(" ") + 1:]
        known = rules.setdefault(rule, [])
        if known is None:
            continue
        prefix = prefix_of(summary)
        if prefix not in known:
            known.append(prefix)
            if len(known) > MAX_PREFIXES:
                rules[rule] = None
