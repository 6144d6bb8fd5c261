"""Staging (``stage: true``): a command that sees local files where its rule names URLs.

A staged job runs in a scratch directory of its own. Each URL among its inputs is downloaded
there before the command starts; its outputs and logs are written there and uploaded after it
ends: the outputs only when the command succeeded, the logs always. A URL's local name keeps
its whole address (``s3://bucket/key`` -> ``s3/bucket/key``), so two inputs never meet and a
path in a log reads as the URL it stands for. Local paths stay as they are, made absolute
(the command no longer runs in the Batchfile's directory).

This module only says what moves where; the executors move it (AWS Batch with the AWS CLI in
the job's container, local jobs with fsspec).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import PlanError
from .templates import is_url


@dataclass(frozen=True)
class Transfer:
    """One URL and its name in the scratch directory; ``directory``: moved whole (a prefix)."""

    url: str
    local: str
    directory: bool = False


@dataclass(frozen=True)
class Staging:
    """What a staged job downloads before its command and uploads after it."""

    inputs: tuple[Transfer, ...]
    outputs: tuple[Transfer, ...]
    logs: tuple[Transfer, ...]

    @property
    def made_here(self) -> tuple[Transfer, ...]:
        """What the command writes in the scratch directory (its parents are made first)."""
        return self.outputs + self.logs


def local_name(url: str) -> str:
    """Where ``url`` lives in a staged job's scratch directory, relative to it.

    A key whose segments would leave their place (``..``, ``.``, or empty between two
    slashes) is refused: S3 allows such keys, a file system cannot mirror them.
    """
    scheme, _, rest = url.partition("://")
    parts = rest.rstrip("/").split("/")
    if not rest.strip("/") or any(p in ("", ".", "..") for p in parts):
        raise PlanError(f"stage: true cannot give {url} a local name: a part of it is empty, '.' or '..'; "
                        "rename it, or run this rule without stage: true")
    return "/".join([scheme, *parts])


def staged_url(path: str) -> bool:
    """A path a staged job copies: a URL, but not a ``file://`` one (that is local already)."""
    return is_url(path) and not path.startswith("file://")


def staging(inputs, outputs, logs, directories: set[str]) -> Staging:
    """The transfers of a staged job: every URL among its paths (``directories``: those moved whole)."""
    def transfers(paths):
        seen: dict[str, Transfer] = {}
        for p in paths:
            if staged_url(p) and p not in seen:
                seen[p] = Transfer(p, local_name(p), p in directories)
        return tuple(seen.values())
    return Staging(transfers(inputs), transfers(outputs), transfers(logs))
