"""aws/naming.py: job names valid for Batch whatever the label, carrying the identity."""
import re

import pytest

from s3rules.aws.naming import MAX_NAME, identity_of_name, job_name
from test_jobspec import spec

BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


@pytest.mark.parametrize("label", [
    "trim-S01", "a", "-", "", "_x_", "rule-sample=A/B", "ünïcödé-ßample", "with space and 'quotes'",
    "x" * 500, "trim-" + "S" * 10_000, "-" * 300 + "a", "a" * 127, "a" * 128, "rule.with.dots:and:colons",
])
def test_names_are_valid_for_batch_whatever_the_label(label):
    s = spec(label=label)
    name = s.name
    assert BATCH_NAME.match(name), name
    assert len(name) <= MAX_NAME
    assert identity_of_name(name) == s.identity[:16]


def test_name_keeps_a_readable_label_and_ends_with_the_identity():
    s = spec()
    assert s.name == f"s3rules-trim-S01-{s.identity[:16]}"
    assert job_name("trim-S01", "f" * 64) == "s3rules-trim-S01-ffffffffffffffff"


def test_huge_wildcards_that_differ_only_at_the_end_still_get_different_names():
    a = spec(label="trim-" + "S" * 5000 + "1", outputs=("s3://b/" + "S" * 5000 + "1",))
    b = spec(label="trim-" + "S" * 5000 + "2", outputs=("s3://b/" + "S" * 5000 + "2",))
    assert len(a.name) == len(b.name) == MAX_NAME
    assert a.name != b.name


@pytest.mark.parametrize("name", ["s3rules-x", "trim-0123456789abcdef", "s3rules-x-0123456789ABCDEF",
                                  "s3rules-x_0123456789abcdef", "s3rules-x-0123456789abcdeg", ""])
def test_identity_of_name_ignores_names_s3rules_did_not_make(name):
    assert identity_of_name(name) is None
