"""Every name s3rules gives on AWS: job and array names, identity keys, tags, S3 locations.

A job's name carries the first 16 hex digits of its identity (``short``), which is how a later
run finds it in flight; the full identity is a tag. Changing anything here changes the names
of jobs, so runs of an older s3rules would no longer recognise them: keep it stable.
"""
from __future__ import annotations

import re

NAME_PREFIX = "s3rules-"
ARRAY_PREFIX = NAME_PREFIX + "-array-"   # "--": a single job's name never has it
PACK_PREFIX = NAME_PREFIX + "-pack-"     # packed jobs (group: N)
MAX_NAME = 128                           # job names: up to 128 letters, digits, '-' and '_'
SHORT = 16                               # hex digits of the identity in a name
IDENTITY_TAG = "s3rules:identity"
MANIFEST_TAG = "s3rules:manifest"
STATE_PREFIX = ".s3rules"                # beside the outputs, in their bucket
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SHORT_ID = re.compile(r"[0-9a-f]{%d}" % SHORT)


def batch_id(job_id: str) -> str:
    """The Batch job of an id s3rules watches: a packed job's ``<pack id>#<k>`` is its pack's."""
    return job_id.split("#", 1)[0]


def pack_place(job_id: str | None) -> int | None:
    """Where a packed job is in its pack (``<pack id>#<k>`` -> k); None for any other job."""
    _, sep, place = (job_id or "").rpartition("#")
    return int(place) if sep and place.isdigit() else None


def short(identity: str) -> str:
    """The part of an identity that names carry and in-flight jobs are indexed by."""
    return identity[:SHORT]


def slug(text: str) -> str:
    """``text`` with every run of characters a job name cannot hold made one ``_``."""
    return _NAME_CHARS.sub("_", text)


def job_name(label: str, identity: str) -> str:
    """A valid Batch job name: ``s3rules-<label>-<16 hex of the identity>``, at most 128 chars."""
    suffix = "-" + short(identity)
    return (NAME_PREFIX + (slug(label).strip("_-") or "job"))[: MAX_NAME - len(suffix)] + suffix


def identity_of_name(name: str) -> str | None:
    """The short identity carried in a job name made by ``job_name``."""
    if not name.startswith(NAME_PREFIX) or len(name) <= SHORT or name[-SHORT - 1] != "-":
        return None
    tail = name[-SHORT:]
    return tail if _SHORT_ID.fullmatch(tail) else None


def array_name_prefix(rule: str) -> str:
    """What the names of ``rule``'s arrays start with."""
    return (ARRAY_PREFIX + slug(rule))[: MAX_NAME - SHORT - 1] + "-"


def array_name(rule: str, identity: str) -> str:
    return array_name_prefix(rule) + short(identity)


def pack_name_prefix(rule: str) -> str:
    """What the names of ``rule``'s packs start with."""
    return (PACK_PREFIX + slug(rule))[: MAX_NAME - SHORT - 1] + "-"


def pack_name(rule: str, identity: str) -> str:
    return pack_name_prefix(rule) + short(identity)


def jobs_home(bucket: str) -> str:
    """Where array manifests and staged scripts go: ``s3://<bucket>/.s3rules/jobs``."""
    return f"s3://{bucket}/{STATE_PREFIX}/jobs"


def lease_url(bucket: str, queue: str) -> str:
    """The submission lease of ``queue``: ``s3://<bucket>/.s3rules/leases/<queue>.json``."""
    return f"s3://{bucket}/{STATE_PREFIX}/leases/{_KEY_CHARS.sub('_', queue)}.json"
