"""What a rule asks of its executor, and the one table that says how each setting is read.

``Settings`` holds what every executor reads (resources, environment, the shell) and, in one
field per executor, that executor's own settings (``Settings.batch``). ``KEYS`` is the table
of Batchfile keys: for each, the kind of value it takes and the class that owns it. The
loader reads the table; nothing else lists settings.

To add a setting: a field in the class that owns it, and a row in ``KEYS``
(tests/test_settings.py fails for a field without a row, and for a row without a field).
To add an executor: its settings class, a field for it in ``Settings``, its name in
``EXECUTORS`` and rows for its keys; then its executor class (``s3rules.executors``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping


#: AWS Fargate on-demand list prices (Linux/x86, us-east-1) in US dollars: what reports price a
#: job's vCPU-hours and GiB-hours at unless ``price_vcpu_hour:`` / ``price_gib_hour:`` say otherwise
FARGATE_VCPU_HOUR, FARGATE_GIB_HOUR = 0.04048, 0.004445


@dataclass(frozen=True)
class BatchSettings:
    """AWS Batch's own settings (the local executor ignores them)."""

    queue: str | None = None
    job_definition: str | None = None    # wins over ``container``
    container: str | None = None         # an image: s3rules registers (and reuses) its job definition
    job_role: str | None = None          # IAM role ARNs for the job definitions s3rules registers
    execution_role: str | None = None
    retries: int = 0                # extra attempts after an application error
    retries_infra: int = 5          # extra attempts after a Spot or host reclaim (Batch retries them)
    memory_retry: str | None = None  # "2x" or "+4096": resubmit an out-of-memory job with more memory
    memory_max: int | None = None   # MiB a memory_retry may reach (default: 4 times the job's memory)
    timeout: int | None = None      # seconds per attempt
    tags: tuple[tuple[str, str], ...] = ()
    share: str | None = None
    priority: int | None = None
    array_size: int = 10_000        # most children per array job; 1 submits every job alone
    group: int = 1                  # jobs of a rule packed into one Batch job (or array child), run in turn
    fetch_command: str = "aws s3 cp {url} -"   # how a job reads a script too long to go inline

    @property
    def runs_in(self) -> str:
        """What the job runs in, as the job ledger hashes it (a change reruns the job)."""
        return self.job_definition or (f"image {self.container}" if self.container else "")


@dataclass(frozen=True)
class Settings:
    """What every executor reads, plus each executor's own settings in a field named after it."""

    executor: str = "local"
    vcpus: float = 1
    memory: int = 2048              # MiB
    gpus: int = 0
    environment: tuple = ()         # (NAME, Template) pairs, rendered per job
    shell_executable: str = "bash"
    stage: bool = False             # the command sees local copies of its URLs (see model/staging.py)
    scratch: str | None = None      # where a staged job's directory goes (default: $TMPDIR or /tmp)
    price_vcpu_hour: float = FARGATE_VCPU_HOUR   # what reports price a vCPU-hour and a GiB-hour at
    price_gib_hour: float = FARGATE_GIB_HOUR
    batch: BatchSettings = field(default_factory=BatchSettings)


#: executor name -> the ``Settings`` field holding its own settings (None: it has none)
EXECUTORS: Mapping[str, str | None] = {"local": None, "batch": "batch"}


# -- kinds of value -------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """A string or a bare word; ``needs`` is text the value must contain, ``example`` says how."""

    needs: str | None = None
    example: str = ""
    pattern: str | None = None      # a regular expression the whole value must match


@dataclass(frozen=True)
class Number:
    integer: bool
    low: float
    high: float | None = None


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]


@dataclass(frozen=True)
class Flag:
    """true or false."""


@dataclass(frozen=True)
class Table:
    """An indented block of ``NAME: "value"`` lines; ``templates``: values may use a job's names."""

    templates: bool


@dataclass(frozen=True)
class Key:
    kind: Text | Number | Choice | Flag | Table
    owner: str | None = None        # None: ``Settings`` itself; else the field of an executor's settings


KEYS: Mapping[str, Key] = {
    "executor": Key(Choice(tuple(EXECUTORS))),
    "queue": Key(Text(), "batch"),
    "job_definition": Key(Text(), "batch"),
    "container": Key(Text(), "batch"),
    "job_role": Key(Text(needs=":role/", example="an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
                    "batch"),
    "execution_role": Key(Text(needs=":role/", example="an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
                          "batch"),
    "vcpus": Key(Number(False, 0.25)),
    "memory": Key(Number(True, 1)),
    "gpus": Key(Number(True, 0)),
    "retries": Key(Number(True, 0, 9), "batch"),
    "retries_infra": Key(Number(True, 0, 9), "batch"),
    "memory_retry": Key(Text(pattern=r"(?!1(\.0*)?x$)[1-9][0-9]*(\.[0-9]+)?x|\+[1-9][0-9]*",
                             example="a factor above 1 or an increase in MiB (\"2x\", \"1.5x\" or \"+4096\")"),
                        "batch"),
    "memory_max": Key(Number(True, 1), "batch"),
    "timeout": Key(Number(True, 60), "batch"),
    "environment": Key(Table(templates=True)),
    "tags": Key(Table(templates=False), "batch"),
    "share": Key(Text(), "batch"),
    "priority": Key(Number(True, 0, 9999), "batch"),
    "shell_executable": Key(Text()),
    "stage": Key(Flag()),
    "scratch": Key(Text(pattern=r"/.*", example="an absolute directory (\"/scratch\")")),
    "array_size": Key(Number(True, 1, 10_000), "batch"),
    "group": Key(Number(True, 1, 1000), "batch"),
    "price_vcpu_hour": Key(Number(False, 0)),
    "price_gib_hour": Key(Number(False, 0)),
    "fetch_command": Key(Text(needs="{url}", example="where the script's S3 URL goes "
                                                     "(e.g. \"aws s3 cp {url} -\")"), "batch"),
}


def with_values(base: Settings, values: Mapping[str, object]) -> Settings:
    """``base`` with these keys set, each in the class that owns it."""
    own: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for name, value in values.items():
        owner = KEYS[name].owner
        if owner is None:
            own[name] = value
        else:
            nested.setdefault(owner, {})[name] = value
    for owner, changes in nested.items():
        own[owner] = replace(getattr(base, owner), **changes)
    return replace(base, **own)
