"""Which collected or held Batch jobs may go up now, and how: a wave at a time, as arrays or alone.

Pure: no AWS calls. A job may be submitted once every job it waits on has a job id (or has
finished) and its ``dependsOn`` fits in Batch's 20 entries; the jobs of one wave that share a
rule and the same unfinished upstream jobs go up together as array jobs, first packed N to a
Batch job where the rule says ``group: N`` (``packs``).
"""
from __future__ import annotations

from ..executors.base import Handle
from ..model import Job
from .arrays import MIN_ARRAY, ArrayJob, build_array, child_index
from .jobspec import FINAL_STATES, MAX_DEPENDS_ON, JobSpec, chunks
from .packs import build_pack


class BatchHandle(Handle):
    """A job on its way to Batch: its spec, what it waits on, and its status as last seen."""

    __slots__ = ("spec", "status", "upstream", "waits_on", "again")

    def __init__(self, job: Job, spec: JobSpec, upstream: list["BatchHandle"]):
        super().__init__(job)           # job_id: a single job's id, or an array child's "parent:index"
        self.spec, self.upstream = spec, upstream
        self.status = "WAITING"         # held here until its upstream allows dependsOn
        self.waits_on: tuple[str, ...] = ()   # jobs and arrays its SubmitJob waits for whole
        self.again = False              # submitted once already, and held to go again (``hold``)

    @property
    def unit(self) -> str | None:
        """What a dependent waits for: the job, or the whole array it is a child of."""
        return child_index(self.job_id)[0] if self.job_id else None

    def open_upstream(self) -> list["BatchHandle"]:
        return [u for u in self.upstream if u.status != "SUCCEEDED"]

    def upstream_failed(self) -> bool:
        return any(u.status == "FAILED" for u in self.upstream)


class PackHandle(BatchHandle):
    """Jobs packed into one Batch job, while they are submitted; then each is watched on its own."""

    __slots__ = ("members", "files")

    def __init__(self, members: list[BatchHandle], spec: JobSpec, files: dict[str, str]):
        upstream = list({id(u): u for m in members for u in m.upstream}.values())
        super().__init__(members[0].job, spec, upstream)
        self.members, self.files = members, files
        self.again = any(m.again for m in members)


def pack(wave: list[BatchHandle], homes: dict[str, str]) -> list[BatchHandle]:
    """``wave`` with the jobs of rules that say ``group: N`` packed N at a time (one rule, the same
    upstream jobs and resources, as an array's children). A pack's manifest goes to ``homes``."""
    out: list[BatchHandle] = []
    groups: dict[tuple, list[BatchHandle]] = {}
    for h in wave:
        if h.job.settings.batch.group < 2 or h.spec.queue not in homes or h.upstream_failed():
            out.append(h)
            continue
        groups.setdefault(_signature(h), []).append(h)
    for group in groups.values():
        settings = group[0].job.settings
        for chunk in chunks(group, settings.batch.group):
            if len(chunk) < 2:
                out.extend(chunk)
                continue
            spec, files = build_pack(chunk[0].job.rule.name, [h.spec for h in chunk], homes[chunk[0].spec.queue])
            out.append(PackHandle(chunk, spec, files))
    return out


def _signature(h: BatchHandle) -> tuple:
    """Jobs alike enough to share an array, or a pack: one rule, the same upstream, the same resources."""
    return h.job.rule.name, tuple(sorted({u.unit for u in h.open_upstream()})), _resources(h.spec)


def may_submit(handle: BatchHandle, failed_units=frozenset()) -> bool:
    """Submittable now: an upstream failed (to report), or dependsOn fits in 20 and names no
    job or array that failed (a job still running in an array with a failed child is waited
    for here, until it ends: a dependsOn on its array would fail)."""
    if handle.upstream_failed():
        return True
    if any(u.job_id is None and u.status != "SUCCEEDED" for u in handle.upstream):
        return False
    units = {u.unit for u in handle.open_upstream()}
    return len(units) <= MAX_DEPENDS_ON and not units & failed_units


def hold(handle: BatchHandle) -> None:
    """Back to waiting, to be submitted again (with a new job id)."""
    handle.status, handle.job_id, handle.waits_on, handle.again = "WAITING", None, (), True


def next_wave(todo: list[BatchHandle]) -> list[BatchHandle]:
    """The jobs whose upstream jobs all have a job id or have finished."""
    return [h for h in todo if all(u.job_id or u.status in FINAL_STATES for u in h.upstream)]


def units(wave: list[BatchHandle], homes: dict[str, str]) -> list[tuple[list[BatchHandle], ArrayJob | None]]:
    """Split a wave into arrays (one rule, the same upstream jobs, the same resources: an array's
    children all get its first child's) and single jobs.

    Only queues with a home on S3 (``homes``) get arrays: an array's manifest lives there.
    """
    groups: dict[tuple, list[BatchHandle]] = {}
    out: list[tuple[list[BatchHandle], ArrayJob | None]] = []
    for h in wave:
        settings = h.job.settings
        if settings.batch.array_size < 2 or h.spec.queue not in homes or h.upstream_failed():
            out.append(([h], None))
            continue
        groups.setdefault(_signature(h), []).append(h)
    for (rule, _, _), group in groups.items():
        # children in the order of their upstream children, so that N_TO_N can line up
        group.sort(key=lambda h: sorted(child_index(u.job_id)[1] or 0 for u in h.open_upstream()))
        settings = group[0].job.settings
        for chunk in chunks(group, settings.batch.array_size):
            if len(chunk) < MIN_ARRAY:
                out.append((chunk, None))
                continue
            out.append((chunk, build_array(rule, [h.spec for h in chunk], homes[chunk[0].spec.queue],
                                           settings.batch.fetch_command, chunk[0].spec.shell)))
    return out


def _resources(spec: JobSpec) -> tuple:
    """What every child of an array gets alike (its first child's), from the job's own settings."""
    return (spec.vcpus, spec.memory, spec.gpus, spec.timeout, spec.retries, spec.retries_infra, spec.memory_retry,
            spec.memory_max)
