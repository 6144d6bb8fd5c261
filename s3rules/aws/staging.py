"""A staged job's script on AWS Batch (``stage: true``): download, run, upload, in bash.

The job makes a scratch directory, downloads its S3 inputs into it with the AWS CLI (``aws s3
cp`` per file, ``aws s3 sync`` per directory, ``PARALLEL`` transfers at a time through
``xargs -P``, each file in parallel parts as the CLI does it), runs the command there, uploads
its logs whatever happened and its outputs only when the command succeeded (a directory output
is synced with ``--delete``, so it holds what this run made and nothing older), then removes
the directory. The container needs bash, ``xargs`` and the AWS CLI. The script is the job's
command like any other: arrays split it per child and a long one is fetched from S3.

What moves where is :mod:`s3rules.model.staging`'s; local jobs do the same in Python
(:mod:`s3rules.executors.stager`).
"""
from __future__ import annotations

import shlex

from ..errors import PlanError
from ..model import Job
from ..model.staging import Staging, Transfer

PARALLEL = 8
QUIET = "--only-show-errors"


def _moves(transfers, upload: bool, check: bool, otherwise: str = "") -> str:
    """Lines moving ``transfers``: files through ``aws s3 cp``, directories ``aws s3 sync``;
    ``otherwise`` runs when a line fails (else the script stops there)."""
    lines = []
    for verb, chosen in (("cp", [t for t in transfers if not t.directory]),
                         ("sync", [t for t in transfers if t.directory])):
        if not chosen:
            continue
        words = []
        for t in chosen:
            source, target = (t.local, t.url) if upload else (t.url, t.local)
            if verb == "sync":   # a prefix, not the object of that name
                source, target = source.rstrip("/") + "/", target.rstrip("/") + "/"
            words += [source, target]
        args = " ".join(shlex.quote(w) for w in words)
        extra = " --delete" if verb == "sync" and upload else ""
        feed = f"for f in {args}; do printf '%s\\0' \"$f\"; done"
        if check:   # upload only what the command made; the runner reports what is missing
            feed += " | s3rules_made"
        lines.append(f"{feed} | xargs -0 -r -n 2 -P {PARALLEL} aws s3 {verb} {QUIET}{extra}"
                     + (f" || {otherwise}" if otherwise else ""))
    return "\n".join(lines)


def _run(shell: str, command: str) -> str:
    """Run ``command`` from a here-document (an argument may not exceed 128 KiB; an aggregate's can)."""
    end = "S3RULES_COMMAND_END"
    while end in command.splitlines():
        end += "_"
    return f"{shell} /dev/fd/3 3<<'{end}'\n{command}\n{end}"


def batch_script(job: Job, staging: Staging, command: str) -> str:
    """The bash script a staged Batch job runs; ``command`` is the job's own ``argv``'s script."""
    for t in staging.inputs + staging.outputs + staging.logs:
        if not t.url.startswith("s3://"):
            raise PlanError(f"rule '{job.rule.name}' runs on AWS Batch with stage: true, which moves s3:// URLs "
                            f"with the AWS CLI; {t.url} is not one (write it to S3, or leave stage: false)")
    scratch = shlex.quote(job.settings.scratch) if job.settings.scratch else '"${TMPDIR:-/tmp}"'
    dirs = sorted({t.local if t.directory else t.local.rpartition("/")[0] for t in staging.outputs + staging.logs})
    shell = shlex.quote(job.settings.shell_executable)
    parts = [
        "set -euo pipefail",
        f"d=$(mktemp -d {scratch}/s3rules.XXXXXX)",
        "trap 'cd /; rm -rf \"$d\"' EXIT",
        'cd "$d"',
        # pairs in, the pairs whose local file exists out: what an upload skips is reported by the runner
        "s3rules_made() { while IFS= read -r -d '' a && IFS= read -r -d '' b; do "
        "if [ -e \"$a\" ]; then printf '%s\\0%s\\0' \"$a\" \"$b\"; fi; done; }",
        "s3rules_failed() { echo \"s3rules: could not download the job's inputs\" >&2; exit 1; }",
        _moves(staging.inputs, upload=False, check=False, otherwise="s3rules_failed"),
        f"mkdir -p {' '.join(shlex.quote(d) for d in dirs)}" if dirs else "",
        "set +e",
        _run(shell, command),
        "rc=$?",
        "set -e",
        _moves(staging.logs, upload=True, check=True, otherwise="echo 's3rules: a log was not uploaded' >&2"),
        'if [ "$rc" -ne 0 ]; then echo "s3rules: the command failed (exit $rc); its outputs were not uploaded" >&2; '
        'exit "$rc"; fi',
        _moves(staging.outputs, upload=True, check=True),
    ]
    return "\n".join(p for p in parts if p) + "\n"
