"""settings.py: the table of Batchfile keys covers every setting, and each kind is read as it says."""
from __future__ import annotations

from dataclasses import fields

import pytest

from s3rules.errors import BatchfileError
from s3rules.settings import EXECUTORS, KEYS, BatchSettings, Settings, with_values
from workflows import load


def owned_fields() -> set[tuple[str | None, str]]:
    out = {(None, f.name) for f in fields(Settings) if f.name not in {o for o in EXECUTORS.values() if o}}
    for owner in filter(None, EXECUTORS.values()):
        out |= {(owner, f.name) for f in fields(type(getattr(Settings(), owner)))}
    return out


def test_every_field_has_a_row_and_every_row_a_field():
    assert {(key.owner, name) for name, key in KEYS.items()} == owned_fields()


def test_every_executor_with_settings_owns_a_field_of_settings():
    for name, owner in EXECUTORS.items():
        if owner is not None:
            assert isinstance(getattr(Settings(), owner), BatchSettings), name


def test_with_values_puts_each_key_in_its_owner_and_keeps_the_rest():
    base = with_values(Settings(), {"queue": "q", "vcpus": 2})
    s = with_values(base, {"retries": 3, "memory": 512})
    assert (s.vcpus, s.memory, s.batch.queue, s.batch.retries) == (2, 512, "q", 3)
    assert base.batch.retries == 0 and base.memory == 2048


RULE = 'rule a:\n    output: "o.txt"\n    {key}: {value}\n    shell: "true"\n'


@pytest.mark.parametrize("key, value, expected", [
    ("executor", "batch", "batch"),
    ("queue", '"q1"', "q1"),
    ("vcpus", "0.5", 0.5),
    ("memory", "512", 512),
    ("retries", "9", 9),
    ("retries_infra", "0", 0),
    ("memory_retry", '"2x"', "2x"),
    ("memory_retry", '"+4096"', "+4096"),
    ("memory_max", "65536", 65536),
    ("container", '"quay.io/org/tool:1.0"', "quay.io/org/tool:1.0"),
    ("array_size", "1", 1),
    ("fetch_command", '"get {url}"', "get {url}"),
    ("shell_executable", "zsh", "zsh"),
    ("stage", "true", True),
    ("group", "20", 20),
    ("stage", "false", False),
    ("scratch", '"/scratch"', "/scratch"),
])
def test_each_kind_is_read(tmp_path, key, value, expected):
    wf = load(tmp_path, RULE.format(key=key, value=value))
    settings = wf.rules["a"].settings
    owner = KEYS[key].owner
    assert getattr(getattr(settings, owner) if owner else settings, key) == expected


@pytest.mark.parametrize("key, value, message", [
    ("executor", "slurm", "executor must be one of local, batch, not 'slurm'"),
    ("retries", "10", "'retries' must be from 0 to 9, not 10"),
    ("memory", "1.5", "'memory' must be a whole number"),
    ("vcpus", "0.1", "'vcpus' must be at least 0.25, not 0.1"),
    ("fetch_command", '"get"', "fetch_command must contain {url}"),
    ("memory_retry", '"double"', "memory_retry must be a factor above 1 or an increase in MiB (\"2x\", \"1.5x\" "
                                 "or \"+4096\"), not 'double'"),
    ("memory_retry", '"4096"', "memory_retry must be a factor"),
    ("memory_retry", '"1x"', "memory_retry must be a factor above 1"),
    ("memory_retry", '"1.00x"', "memory_retry must be a factor above 1"),
    ("retries_infra", "10", "'retries_infra' must be from 0 to 9, not 10"),
    ("tags", '"x"', "'tags' takes an indented block"),
    ("stage", "yes", "stage is true or false, not 'yes'"),
    ("stage", "1", "stage is true or false, not 1"),
    ("group", "0", "'group' must be from 1 to 1000, not 0"),
    ("scratch", '"scratch"', "scratch must be an absolute directory"),
])
def test_each_kind_refuses_bad_values_at_their_place(tmp_path, key, value, message):
    with pytest.raises(BatchfileError) as err:
        load(tmp_path, RULE.format(key=key, value=value))
    assert "Batchfile:3:" in str(err.value) and message in str(err.value)
