"""The job definitions s3rules registers for ``container:`` images, found again by name.

One definition per image and resource class (CPU or GPU), never one per job: each job's
vCPUs, memory and GPUs go in its SubmitJob overrides, as with any job definition. The name
carries a hash of everything registered (image, roles, class), so the next run, or another
user's, finds it with one DescribeJobDefinitions and registers nothing; a changed image or
role is a new name, and the old definition is left as it was.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache, cached_property

from ..settings import BatchSettings
from .naming import MAX_NAME, NAME_PREFIX, slug

DEFINITION_TAG = "s3rules:definition"
#: what a registered definition asks for when a job's overrides say nothing (they always do)
DEFAULT_VCPUS, DEFAULT_MEMORY = "1", "2048"


@dataclass(frozen=True)
class Definition:
    """A job definition s3rules registers: ``request`` is RegisterJobDefinition's parameters."""

    image: str
    gpu: bool = False
    job_role: str | None = None
    execution_role: str | None = None

    @cached_property
    def digest(self) -> str:
        text = json.dumps([self.image, self.gpu, self.job_role, self.execution_role])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @cached_property
    def name(self) -> str:
        """``s3rules-image-<image>-<cpu|gpu>-<12 hex>``, at most 128 letters, digits, - and _."""
        tail = f"-{'gpu' if self.gpu else 'cpu'}-{self.digest}"
        return (NAME_PREFIX + "image-" + slug(self.image).strip("_-"))[: MAX_NAME - len(tail)] + tail

    @property
    def request(self) -> dict:
        resources = [{"type": "VCPU", "value": DEFAULT_VCPUS}, {"type": "MEMORY", "value": DEFAULT_MEMORY}]
        if self.gpu:
            resources.append({"type": "GPU", "value": "1"})
        container: dict = {"image": self.image, "resourceRequirements": resources}
        if self.job_role:
            container["jobRoleArn"] = self.job_role
        if self.execution_role:
            container["executionRoleArn"] = self.execution_role
        return {"jobDefinitionName": self.name, "type": "container", "containerProperties": container,
                "platformCapabilities": ["EC2"],
                "tags": {DEFINITION_TAG: self.digest, "s3rules:image": self.image[:256]}}


def definition_for(batch: BatchSettings, gpus: int) -> Definition | None:
    """The definition s3rules registers for a job, or None when the Batchfile names its own
    (``job_definition:`` wins) or names no image."""
    if batch.job_definition or not batch.container:
        return None
    return _definition(batch.container, gpus > 0, batch.job_role, batch.execution_role)


@cache
def _definition(image: str, gpu: bool, job_role: str | None, execution_role: str | None) -> Definition:
    """One ``Definition`` per image, class and roles, its name hashed once (``job_spec`` and the
    set-up check ask for every job's)."""
    return Definition(image, gpu, job_role, execution_role)
