"""Array jobs: the pending jobs of one rule as one SubmitJob (pure functions, no AWS calls).

Batch runs child ``i`` of an array with ``AWS_BATCH_JOB_ARRAY_INDEX=i`` and the same command for
every child, so the command picks its own job by that index:

* inline, when every child's command fits in Batch's containerOverrides limit: a bash array
  holding each child's script, shell-quoted, and ``exec`` of element ``i``; the container
  needs nothing but its shell;
* from a manifest otherwise: s3rules writes one base64 line per child to S3, and the command
  fetches line ``i + 1`` (the image then needs a fetch tool, ``aws s3 cp`` by default, plus
  ``sed`` and ``base64``).

An array's identity hashes its children's identities, and the manifest records them, so a later
run can still tell which child is which job and reuse children that are in flight.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shlex
from dataclasses import dataclass

from .batchjobs import IDENTITY_TAG, MAX_NAME, NAME_PREFIX, JobSpec, submit_request

MIN_ARRAY, MAX_ARRAY = 2, 10_000
OVERRIDES_LIMIT = 8192          # characters of containerOverrides (command and environment)
ARRAY_PREFIX = NAME_PREFIX + "array-"
DEFAULT_FETCH = "aws s3 cp {url} -"


def child_script(spec: JobSpec) -> str:
    """One child's whole job as a script: its environment, then its command's script."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in spec.environment)
    return exports + spec.command[-1]


def array_identity(children: list[JobSpec]) -> str:
    text = "\n".join(c.identity for c in children)
    return hashlib.sha256(text.encode()).hexdigest()


def array_name(rule: str, identity: str) -> str:
    suffix = "-" + identity[:16]
    return (ARRAY_PREFIX + rule)[: MAX_NAME - len(suffix)] + suffix


def inline_command(children: list[JobSpec], shell: str = "bash") -> list[str] | None:
    """The command that runs child ``AWS_BATCH_JOB_ARRAY_INDEX``'s script; None if too long."""
    scripts = " ".join(shlex.quote(child_script(c)) for c in children)
    script = f'jobs=({scripts})\nexec {shell} -c "${{jobs[$AWS_BATCH_JOB_ARRAY_INDEX]}}"\n'
    command = [shell, "-c", script]
    return command if len(json.dumps({"command": command})) <= OVERRIDES_LIMIT else None


def manifest_text(children: list[JobSpec]) -> str:
    """One line per child: its script in base64 (scripts span lines; base64 never does)."""
    return "".join(base64.b64encode(child_script(c).encode()).decode() + "\n" for c in children)


def manifest_command(url: str, fetch: str = DEFAULT_FETCH, shell: str = "bash") -> list[str]:
    """The command that fetches line ``index + 1`` of the manifest at ``url`` and runs it."""
    get = fetch.replace("{url}", shlex.quote(url))
    # no temporary file: children may share a host (and a /tmp) outside Batch
    script = (f"set -euo pipefail\njob=$({get} | sed -n \"$((AWS_BATCH_JOB_ARRAY_INDEX + 1))p\" | base64 -d)\n"
              f"exec {shell} -c \"$job\"\n")
    return [shell, "-c", script]


@dataclass(frozen=True)
class Dependency:
    """How an array waits for upstream work: one N_TO_N array, or whole jobs (arrays or single)."""

    n_to_n: str | None = None
    job_ids: tuple[str, ...] = ()

    def depends_on(self) -> list[dict]:
        if self.n_to_n:
            return [{"jobId": self.n_to_n, "type": "N_TO_N"}]
        return [{"jobId": j} for j in self.job_ids]


def dependency(upstream: list[list[tuple[str, int | None]]], size: int) -> Dependency:
    """``upstream[i]``: child i's unfinished upstream jobs as (job id, index in its array or None).

    N_TO_N when every child waits on exactly the same index of one array of the same size, which
    lets child i start as soon as its own upstream child is done; otherwise the array waits for
    every upstream job whole (an array parent counts once, however many children it has).
    """
    if len(upstream) == size and all(len(u) == 1 for u in upstream):
        parents = {u[0][0] for u in upstream}
        if len(parents) == 1 and all(u[0][1] == i for i, u in enumerate(upstream)):
            return Dependency(n_to_n=parents.pop())
    ids = sorted({job_id for u in upstream for job_id, _ in u})
    return Dependency(job_ids=tuple(ids))


def array_request(rule: str, children: list[JobSpec], dependency: Dependency, command: list[str],
                  manifest_url: str | None = None) -> dict:
    """SubmitJob for an array of ``children`` (settings from the first: they share a rule)."""
    if not MIN_ARRAY <= len(children) <= MAX_ARRAY:
        raise ValueError(f"an array job has {MIN_ARRAY} to {MAX_ARRAY} children, not {len(children)}")
    first = children[0]
    identity = array_identity(children)
    request = submit_request(JobSpec(label=rule, queue=first.queue, job_definition=first.job_definition,
                                     command=tuple(command), vcpus=first.vcpus, memory=first.memory,
                                     gpus=first.gpus, retries=first.retries, timeout=first.timeout,
                                     tags=first.tags, share=first.share, priority=first.priority))
    request["jobName"] = array_name(rule, identity)
    request["arrayProperties"] = {"size": len(children)}
    request["tags"][IDENTITY_TAG] = identity
    if manifest_url:
        request["tags"]["s3rules:manifest"] = manifest_url
    deps = dependency.depends_on()
    if len(deps) > 20:
        raise ValueError(f"an array job can depend on at most 20 jobs, got {len(deps)}")
    if deps:
        request["dependsOn"] = deps
    return request
