"""A staged job's script on AWS Batch (``stage: true``): download, run, upload, in bash.

The job makes a scratch directory, downloads its S3 inputs into it with the AWS CLI (``aws s3
cp`` per file, ``aws s3 sync`` per directory, ``PARALLEL`` transfers at a time through
``xargs -P``, each file in parallel parts as the CLI does it), runs the command there, uploads
its logs whatever happened and its outputs only when the command succeeded (a directory output
is copied whole, then synced with ``--delete``, so it holds what this run made and nothing
older: ``sync`` alone skips a file of the same size and an older mtime), then removes the
directory. Stopped (a timeout, ``cancel``, a reclaimed host: Batch sends SIGTERM first), it
stops the command, uploads the logs and exits 143. The container needs bash, ``xargs`` and the
AWS CLI. The script is the job's command like any other: arrays split it per child and a long
one is fetched from S3.

What moves where is :mod:`s3rules.model.staging`'s; local jobs do the same in Python
(:mod:`s3rules.executors.stager`).
"""
from __future__ import annotations

import shlex

from ..errors import PlanError
from ..model import Job
from ..model.staging import Staging, Transfer
from .scripts import heredoc

PARALLEL = 8
QUIET = "--only-show-errors"
# a directory output: every file copied, then what the prefix held beyond them deleted
DIRECTORY_UP = (f"bash -c 'aws s3 cp --recursive {QUIET} \"$1\" \"$2\" && aws s3 sync --delete {QUIET} \"$1\" \"$2\"' "
                "s3rules")


def _moves(transfers, upload: bool, check: bool, otherwise: str = "") -> str:
    """Lines moving ``transfers``: files through ``aws s3 cp``, directories ``aws s3 sync``;
    ``otherwise`` runs when a line fails (else the script stops there)."""
    lines = []
    for directory in (False, True):
        chosen = [t for t in transfers if t.directory == directory]
        if not chosen:
            continue
        words = []
        for t in chosen:
            source, target = (t.local, t.url) if upload else (t.url, t.local)
            if directory:   # a prefix, not the object of that name
                source, target = source.rstrip("/") + "/", target.rstrip("/") + "/"
            words += [source, target]
        args = " ".join(shlex.quote(w) for w in words)
        feed = f"for f in {args}; do printf '%s\\0' \"$f\"; done"
        if check:   # upload only what the command made; the runner reports what is missing
            feed += " | s3rules_made"
        command = (DIRECTORY_UP if upload else f"aws s3 sync {QUIET}") if directory else f"aws s3 cp {QUIET}"
        lines.append(f"{feed} | xargs -0 -r -n 2 -P {PARALLEL} {command}" + (f" || {otherwise}" if otherwise else ""))
    return "\n".join(lines)


def batch_script(job: Job, staging: Staging, command: str) -> str:
    """The bash script a staged Batch job runs; ``command`` is the job's own ``argv``'s script."""
    for t in staging.inputs + staging.outputs + staging.logs:
        if not t.url.startswith("s3://"):
            raise PlanError(f"rule '{job.rule.name}' runs on AWS Batch with stage: true, which moves s3:// URLs "
                            f"with the AWS CLI; {t.url} is not one (write it to S3, or leave stage: false)")
    scratch = shlex.quote(job.settings.scratch) if job.settings.scratch else '"${TMPDIR:-/tmp}"'
    dirs = sorted({t.local if t.directory else t.local.rpartition("/")[0] for t in staging.outputs + staging.logs}
                  | {t.local for t in staging.inputs if t.directory})   # an empty directory input too
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
        # in the background, so that a SIGTERM (timeout, cancel) reaches it and the logs still go up
        'stopped=0; pid=""',
        "trap 'kill -TERM \"$pid\" 2>/dev/null; stopped=1' TERM INT",
        heredoc(shell, command, background=True),
        "pid=$!",
        'wait "$pid"; rc=$?',
        'if [ "$stopped" = 1 ]; then wait "$pid"; rc=143; fi',
        "trap - TERM INT",
        "set -e",
        _moves(staging.logs, upload=True, check=True, otherwise="echo 's3rules: a log was not uploaded' >&2"),
        'if [ "$rc" -ne 0 ]; then echo "s3rules: the command failed (exit $rc); its outputs were not uploaded" >&2; '
        'exit "$rc"; fi',
        _moves(staging.outputs, upload=True, check=True),
    ]
    return "\n".join(p for p in parts if p) + "\n"
