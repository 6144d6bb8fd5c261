"""Packed short jobs (``group: N``): up to N jobs of a rule in one Batch job, run in turn (pure).

A one-second job costs a container start and minutes of scheduling, so jobs of one rule that
wait on the same upstream jobs and ask for the same resources go up in packs. A pack is one
Batch job (or, with others, one array child) whose script runs its members one after the
other, each in its own shell, each retried in place up to the rule's ``retries`` (Batch only
retries the pack after a reclaimed host), and goes on after a member fails, so the others'
outputs are made. Its last log line gives every member's exit code, which is how s3rules
reports each member's failure as that job's own; the pack exits with the first failure's code.

Inside s3rules each member keeps its own handle, watched under ``<pack id>#<k>`` (``k``: its
place in the pack). The pack's JSON manifest names its members' identities in order, so a later
run finds a member still in flight, as it finds an array's children.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import replace

from .arrays import child_script
from .jobspec import JobSpec
from .naming import MANIFEST_TAG, pack_name
from .scripts import here_document

EXIT_CODES = "s3rules pack: exit codes"
_CODES = re.compile(re.escape(EXIT_CODES) + r"((?: -?\d+)+)\s*$")


def pack_identity(members: list[JobSpec]) -> str:
    text = "pack\n" + "\n".join(m.identity for m in members)
    return hashlib.sha256(text.encode()).hexdigest()


def pack_script(members: list[JobSpec]) -> str:
    """Bash running each member's whole job (environment and script) in turn; see the module.

    Each member's script is a here-document read by ``s3rules_run``, which runs it in the
    member's shell (again after a failure, up to its ``retries``) and notes its exit code.
    """
    lines = [
        "set -u",
        "codes=()",
        's3rules_run() { local s rc tries=0; s=$(cat); echo "s3rules pack: $1"',
        '  while :; do "$3" /dev/fd/3 3<<<"$s" </dev/null; rc=$?',
        '    if [ "$rc" -eq 0 ] || [ "$tries" -ge "$2" ]; then break; fi',
        '    tries=$((tries + 1)); echo "s3rules pack: $1 failed (exit $rc); trying again" >&2; done',
        '  codes+=("$rc"); }',
    ]
    for m in members:
        lines.append(f"s3rules_run {shlex.quote(m.label)} {int(m.retries)} {shlex.quote(m.shell)} "
                     + here_document(child_script(m)))
    lines += [f'echo "{EXIT_CODES} ${{codes[*]}}"',
              'for rc in "${codes[@]}"; do if [ "$rc" -ne 0 ]; then exit "$rc"; fi; done']
    return "\n".join(lines) + "\n"


def build_pack(rule: str, members: list[JobSpec], home: str) -> tuple[JobSpec, dict[str, str]]:
    """(the pack's JobSpec, its manifest file): one Batch job for ``members`` (one rule, alike)."""
    identity = pack_identity(members)
    first = members[0]
    manifest = f"{home}/{identity}.json"
    pack = replace(first, label=rule, command=("bash", "-c", pack_script(members)),
                   outputs=tuple(o for m in members for o in m.outputs), environment=(), parameters=(),
                   retries=0, same_as=identity, named=pack_name(rule, identity),
                   members=tuple(m.identity for m in members), tags=first.tags + ((MANIFEST_TAG, manifest),))
    text = json.dumps({"rule": rule, "children": [m.identity for m in members], "labels": [m.label for m in members]})
    return pack, {manifest: text}


def exit_codes(lines: list[str]) -> list[int] | None:
    """Each member's exit code from the pack's log (its last such line); None when not there."""
    for line in reversed(lines):
        found = _CODES.search(line)
        if found:
            return [int(c) for c in found.group(1).split()]
    return None
