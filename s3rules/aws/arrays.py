"""Array jobs, and scripts too long for SubmitJob (pure functions, no AWS calls).

Batch runs child ``i`` of an array with ``AWS_BATCH_JOB_ARRAY_INDEX=i`` and the same command for
every child, so the command rebuilds child ``i``'s own script. The children of a rule differ
in a few words (sample names, paths), so the script is split once into the text they share and
the words that vary, and only the varying words are stored per child:

* inline, when they fit Batch's 8,192-character containerOverrides limit: bash arrays of the
  values in the command itself; the container needs nothing but bash;
* from a manifest otherwise: one line per child on S3 with its values in base64, fetched by
  the child (``aws s3 cp`` by default, the ``fetch_command`` setting otherwise) and read with
  ``sed`` and ``base64``.

A single job whose script does not fit (an aggregate naming 10,000 inputs) is staged the same
way: its script goes to S3 and its command fetches and runs it.

An array's identity hashes its children's identities, and a small JSON manifest on S3 records
them, so a later run can still tell which child is which job and reuse children in flight.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field, replace

from .jobspec import MAX_DEPENDS_ON, JobSpec, submit_request
from .scripts import RUN
from .naming import IDENTITY_TAG, MANIFEST_TAG, array_name, batch_id

MIN_ARRAY, MAX_ARRAY = 2, 10_000
OVERRIDES_LIMIT = 8192          # characters of containerOverrides (command and environment)
DEFAULT_FETCH = "aws s3 cp {url} -"
# The wrappers that rebuild a child's script or fetch a staged one use bash arrays and
# `pipefail`; they then hand the job's own script to its shell (``JobSpec.shell``).
WRAPPER = "bash"
# ways to cut a script into words, finest first; the first that all children share wins
_WORDS = (re.compile(r"(\w+)"), re.compile(r"""([^\s/'"=:;,()]+)"""))


def child_script(spec: JobSpec) -> str:
    """One child's whole job as a script: its environment, then its command's script."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in spec.environment)
    return exports + spec.command[-1]


def split_scripts(scripts: list[str]) -> tuple[list[str | int], list[tuple[str, ...]]]:
    """(pieces, columns): each script is the pieces joined, an int k standing for column k's
    value for that script. Repeated columns (a sample named twice) are stored once."""
    for words in _WORDS:
        parts = [words.split(s) for s in scripts]
        if len({len(p) for p in parts}) != 1:
            continue
        pieces: list[str | int] = []
        columns: list[tuple[str, ...]] = []
        shared = ""
        for k in range(len(parts[0])):
            column = tuple(p[k] for p in parts)
            if all(v == column[0] for v in column):
                shared += column[0]
                continue
            if k % 2 == 0:          # the text between words differs: this cut does not fit
                break
            if shared:
                pieces.append(shared)
                shared = ""
            if column not in columns:
                columns.append(column)
            pieces.append(columns.index(column))
        else:
            if not columns:     # every child runs the same script: it is the one value
                break
            if shared:
                pieces.append(shared)
            return pieces, columns
    return [0], [tuple(scripts)]


def fits_inline(spec: JobSpec) -> bool:
    """Whether ``spec``'s command and environment fit in SubmitJob's containerOverrides."""
    try:
        overrides = submit_request(spec).get("containerOverrides", {})
    except ValueError:
        return False
    return len(json.dumps(overrides)) <= OVERRIDES_LIMIT


def stage(spec: JobSpec, home: str, fetch: str = DEFAULT_FETCH,
          shell: str = "bash") -> tuple[list[str] | None, dict[str, str]]:
    """(command, files): a script too long for SubmitJob goes to ``home`` on S3, and the job's
    command fetches it; (None, {}) when it fits inline."""
    if fits_inline(spec):
        return None, {}
    url = f"{home}/{spec.identity}.sh"
    return staged_command(url, fetch, shell), {url: child_script(spec)}


def staged_command(url: str, fetch: str = DEFAULT_FETCH, shell: str = "bash") -> list[str]:
    """The command that fetches a job's whole script from ``url`` and runs it."""
    get = fetch.replace("{url}", shlex.quote(url))
    return [WRAPPER, "-c", f"set -euo pipefail\nscript=$({get})\n" + RUN.format(shell=shell)]


def _assemble(pieces: list[str | int], shell: str) -> str:
    """Bash that rebuilds the child's script from ``c`` (its values) and runs it."""
    parts = [shlex.quote(p) if isinstance(p, str) else f'"${{c[{p}]}}"' for p in pieces]
    return f"script={''.join(parts) or chr(39) * 2}\n" + RUN.format(shell=shell)


def inline_script(pieces, columns, shell: str = "bash") -> str:
    arrays = "".join(f"c{k}=({' '.join(shlex.quote(v) for v in col)})\n" for k, col in enumerate(columns))
    pick = " ".join(f'"${{c{k}[$i]}}"' for k in range(len(columns)))
    return f"set -eu\ni=$AWS_BATCH_JOB_ARRAY_INDEX\n{arrays}c=({pick})\n" + _assemble(pieces, shell)


def values_text(columns: list[tuple[str, ...]]) -> str:
    """The manifest: line i + 1 holds child i's values, each as base64 of ``x<value>x`` (the
    x's keep empty values and trailing newlines through the shell)."""
    def b64(v: str) -> str:
        return base64.b64encode(f"x{v}x".encode()).decode()
    return "".join(" ".join(b64(col[i]) for col in columns) + "\n" for i in range(len(columns[0])))


def manifest_script(url: str, pieces, fetch: str = DEFAULT_FETCH, shell: str = "bash") -> str:
    get = fetch.replace("{url}", shlex.quote(url))
    # no temporary file: children may share a host (and a /tmp) outside Batch
    return ("set -euo pipefail\nn=$((AWS_BATCH_JOB_ARRAY_INDEX + 1))\n"
            f"line=$({get} | sed -n \"${{n}}p\")\n"
            f"[ -n \"$line\" ] || {{ echo \"s3rules: line $n of {url} is missing\" >&2; exit 1; }}\n"
            "c=()\nfor f in $line; do v=$(printf %s \"$f\" | base64 -d); v=${v#x}; c+=(\"${v%x}\"); done\n"
            + _assemble(pieces, shell))


@dataclass
class ArrayJob:
    """One array: its children (one rule, same settings), command and manifests."""

    rule: str
    children: list[JobSpec]
    identity: str                           # hash of the children's identities
    manifest_url: str                       # JSON naming each child's identity, for later runs
    command: list[str] = field(default_factory=list)
    values_url: str | None = None           # set when the values did not fit inline
    files: dict[str, str] = field(default_factory=dict)   # url -> text to write before submitting

    @property
    def name(self) -> str:
        return array_name(self.rule, self.identity)

    @property
    def queue(self) -> str:
        return self.children[0].queue


def array_identity(children: list[JobSpec]) -> str:
    text = "\n".join(c.identity for c in children)
    return hashlib.sha256(text.encode()).hexdigest()


def build_array(rule: str, children: list[JobSpec], home: str, fetch: str = DEFAULT_FETCH,
                shell: str = "bash") -> ArrayJob:
    """The array for ``children``; its manifests go under ``home`` (``s3://bucket/prefix``)."""
    if not MIN_ARRAY <= len(children) <= MAX_ARRAY:
        raise ValueError(f"an array job has {MIN_ARRAY} to {MAX_ARRAY} children, not {len(children)}")
    identity = array_identity(children)
    array = ArrayJob(rule, children, identity, f"{home}/{identity}.json")
    array.files[array.manifest_url] = json.dumps(
        {"rule": rule, "children": [list(c.members) if c.members else c.identity for c in children],
         "labels": [c.label for c in children]})
    scripts = [child_script(c) for c in children]
    pieces, columns = split_scripts(scripts)
    array.command = [WRAPPER, "-c", inline_script(pieces, columns, shell)]
    if _fits_inline(array):
        return array
    array.values_url = f"{home}/{identity}.values"
    array.command = [WRAPPER, "-c", manifest_script(array.values_url, pieces, fetch, shell)]
    if not _fits_inline(array):     # even the shared text is too long: whole scripts per line
        pieces, columns = [0], [tuple(scripts)]
        array.command = [WRAPPER, "-c", manifest_script(array.values_url, pieces, fetch, shell)]
    array.files[array.values_url] = values_text(columns)
    return array


def _fits_inline(array: ArrayJob) -> bool:
    if len(array.command[-1]) > OVERRIDES_LIMIT:
        return False
    return len(json.dumps(array_request(array, [])["containerOverrides"])) <= OVERRIDES_LIMIT


def dependency(upstream: list[list[tuple[str, int | None]]], sizes: dict[str, int]) -> list[dict]:
    """dependsOn for a group whose member ``i`` waits on ``upstream[i]``: (job id, index) pairs,
    the job id being an array's parent and the index its child's, or a single job and None.

    N_TO_N on an array when every member ``i`` waits on exactly its child ``i`` and the sizes
    match, so member i starts as soon as its own upstream child is done; otherwise the whole
    job (an array parent counts once, however many children it has).
    """
    size = len(upstream)
    deps = []
    for unit in sorted({job_id for u in upstream for job_id, _ in u}):
        aligned = sizes.get(unit) == size and all(
            [index for job_id, index in u if job_id == unit] == [i] for i, u in enumerate(upstream))
        deps.append({"jobId": unit, "type": "N_TO_N"} if aligned and size > 1 else {"jobId": unit})
    return deps


def array_request(array: ArrayJob, depends_on: list[dict]) -> dict:
    """SubmitJob for ``array``: the first child's settings (they share a rule) with the array's command."""
    first = array.children[0]
    request = submit_request(replace(first, label=array.rule, command=tuple(array.command), outputs=(),
                                     environment=()))
    request["jobName"] = array.name
    request["arrayProperties"] = {"size": len(array.children)}
    request["tags"][IDENTITY_TAG] = array.identity
    request["tags"][MANIFEST_TAG] = array.manifest_url
    if len(depends_on) > MAX_DEPENDS_ON:
        raise ValueError(f"an array job can depend on at most {MAX_DEPENDS_ON} jobs, got {len(depends_on)}")
    if depends_on:
        request["dependsOn"] = depends_on
    return request


def child_index(job_id: str) -> tuple[str, int | None]:
    """``parent:3`` -> (parent, 3); a job that is no array child -> (job id, None). A packed
    job's ``...#k`` is its pack's."""
    parent, sep, index = batch_id(job_id).rpartition(":")
    return (parent, int(index)) if sep and index.isdigit() else (batch_id(job_id), None)
