"""What a Batch job is, before any AWS call: its spec (from a planned job), identity and SubmitJob request.

Pure functions only, so every AWS limit is asserted here and tested without a server. The
identity hash covers what defines the work (label, command, outputs, job definition,
resources, environment, parameters) and not how it is scheduled (queue, priority, retries,
timeout, tags), so an identical job already in flight is recognised and reused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..errors import PlanError
from ..model import Job, format_number, is_url
from .definitions import definition_for
from .naming import IDENTITY_TAG, job_name
from .failures import retry_strategy
from .staging import batch_script

ACTIVE_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
FINAL_STATES = ("SUCCEEDED", "FAILED")
STATES = ACTIVE_STATES + FINAL_STATES
MAX_DEPENDS_ON = 20          # SubmitJob: "A job can depend upon a maximum of 20 jobs"
DESCRIBE_BATCH = 100         # DescribeJobs takes at most 100 job ids
MAX_REQUEST_BYTES = 30 * 1024


@dataclass(frozen=True)
class JobSpec:
    """Everything s3rules sends to Batch for one job."""

    label: str                                  # rule and wildcards, e.g. "trim-S0001"
    queue: str
    job_definition: str
    command: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    vcpus: float | None = None
    memory: int | None = None
    gpus: int = 0
    environment: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    retries: int = 0                            # extra attempts after an application error
    retries_infra: int = 0                      # extra attempts after a Spot or host reclaim
    memory_retry: str | None = None             # "2x" / "+4096": resubmitted bigger after running out
    memory_max: int | None = None
    timeout: int | None = None                  # attemptDurationSeconds
    tags: tuple[tuple[str, str], ...] = ()
    share: str | None = None                    # shareIdentifier (queues with a scheduling policy)
    priority: int | None = None                 # schedulingPriorityOverride
    same_as: str | None = None                  # the identity kept when s3rules sent it again with more memory
    named: str | None = None                    # a name of its own (a pack's), else made from label and identity
    members: tuple[str, ...] = ()               # a pack's: its members' identities, in order
    # cache for ``identity``; not an init field, so ``dataclasses.replace`` starts a fresh one
    _identity: list = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def identity(self) -> str:
        if self.same_as:   # the same work: found by the same name (status, cancel, logs, the next run)
            return self.same_as
        if not self._identity:
            defining = {
                "label": self.label, "command": list(self.command), "outputs": list(self.outputs),
                "job_definition": self.job_definition, "vcpus": self.vcpus, "memory": self.memory,
                "gpus": self.gpus, "environment": sorted(self.environment),
                "parameters": sorted(self.parameters),
            }
            text = json.dumps(defining, sort_keys=True, separators=(",", ":"))
            self._identity.append(hashlib.sha256(text.encode()).hexdigest())
        return self._identity[0]

    @property
    def shell(self) -> str:
        """What runs the script ``command[-1]``: the rule's shell, or bash for a staged job's wrapper."""
        return self.command[0] if self.command else "bash"

    @property
    def name(self) -> str:
        return self.named or job_name(self.label, self.identity)


def submit_request(spec: JobSpec, depends_on: list[str] | tuple[str, ...] = (), command=None) -> dict:
    """The SubmitJob parameters for ``spec``, checked against Batch's limits.

    ``command`` replaces the spec's own (which then runs from S3, environment included).
    """
    if len(depends_on) > MAX_DEPENDS_ON:
        raise ValueError(f"a Batch job can depend on at most {MAX_DEPENDS_ON} jobs, got {len(depends_on)}")
    resources = []
    if spec.vcpus is not None:
        resources.append({"type": "VCPU", "value": format_number(spec.vcpus)})
    if spec.memory is not None:
        resources.append({"type": "MEMORY", "value": str(int(spec.memory))})
    if spec.gpus:
        resources.append({"type": "GPU", "value": str(int(spec.gpus))})
    overrides: dict = {}
    if command or spec.command:   # none: the job definition's own command runs (an empty list replaces it)
        overrides["command"] = list(command or spec.command)
    if spec.environment and not command:
        overrides["environment"] = [{"name": k, "value": v} for k, v in spec.environment]
    if resources:
        overrides["resourceRequirements"] = resources
    request: dict = {
        "jobName": spec.name,
        "jobQueue": spec.queue,
        "jobDefinition": spec.job_definition,
        **({"containerOverrides": overrides} if overrides else {}),
        "tags": {**dict(spec.tags), IDENTITY_TAG: spec.identity},
    }
    if depends_on:
        request["dependsOn"] = [{"jobId": j} for j in depends_on]
    if spec.parameters:
        request["parameters"] = dict(spec.parameters)
    strategy = retry_strategy(spec.retries, spec.retries_infra, spec.memory_retry is not None)
    if strategy:
        request["retryStrategy"] = strategy
    if spec.timeout:
        request["timeout"] = {"attemptDurationSeconds": int(spec.timeout)}
    if spec.share is not None:
        request["shareIdentifier"] = spec.share
    if spec.priority is not None:
        request["schedulingPriorityOverride"] = int(spec.priority)
    size = len(json.dumps(request).encode())
    if size > MAX_REQUEST_BYTES:
        raise ValueError(f"the SubmitJob request for {spec.label} is {size} bytes; Batch accepts at most "
                         f"{MAX_REQUEST_BYTES} (shorten the command or its environment)")
    return request


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def job_spec(job: Job) -> JobSpec:
    """The Batch job for one planned job; rules must name a queue, and a job definition or an image."""
    rule, s = job.rule, job.settings
    b = s.batch
    missing = [k for k in ("queue",) if not b.queue] + \
        ([] if b.job_definition or b.container else ["job_definition (or container)"])
    if missing:
        raise PlanError(f"rule '{rule.name}' runs on AWS Batch but has no {' or '.join(missing)}: set it in "
                        "the rule or in the default: block")
    registered = definition_for(b, s.gpus)
    local = [p for p in job.outputs if not is_url(p)]
    if local:
        raise PlanError(f"rule '{rule.name}' runs on AWS Batch but writes the local path {local[0]}; a Batch "
                        "job's outputs must be S3 URLs (or run this rule with executor: local)")
    command = job.argv()
    staging = job.staging()
    if staging is not None:   # the command sees local copies: the job moves its files around it
        command = ["bash", "-c", batch_script(job, staging, command[-1])]
    return JobSpec(
        label="-".join([rule.name, *job.values]), queue=b.queue,
        job_definition=registered.name if registered else b.job_definition,
        command=tuple(command), outputs=job.outputs, vcpus=s.vcpus, memory=s.memory, gpus=s.gpus,
        environment=tuple(sorted(job.environment().items())), retries=b.retries, retries_infra=b.retries_infra,
        memory_retry=b.memory_retry,
        memory_max=(b.memory_max or 4 * s.memory) if b.memory_retry else None, timeout=b.timeout,
        tags=(("s3rules:rule", rule.name),) + tuple(b.tags), share=b.share, priority=b.priority)
