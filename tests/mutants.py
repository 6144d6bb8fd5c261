"""Break each README promise in turn and show that the suite notices.

Each mutant below is one small edit to s3rules that breaks one promise README.md makes. For
each, the script copies the repository to a temporary directory, applies the edit there, and
runs the tests that guard the promise (with PYTHONPATH pointing at the copy, so the console
script the tests start runs the mutated code too). A mutant must make those tests fail
("killed"); one that passes them ("SURVIVED") is a promise without a test.

    .venv/bin/python tests/mutants.py             # every mutant (about 5 minutes on 2 cores)
    .venv/bin/python tests/mutants.py lease pace  # only mutants whose name contains a word given
    .venv/bin/python tests/mutants.py --list      # the mutants and their promises
    .venv/bin/python tests/mutants.py --no-control  # skip the check that the tests pass unmutated

Exit status 0 when every mutant is killed, 1 otherwise. Not collected by pytest (its name does
not start with test_); docs/promises.md maps every promise to its tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    promise: str            # README.md's words, shortened
    path: str               # the file edited, relative to the repository
    old: str                # text that must occur exactly once in it
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, node ids, or "-k" expressions


MUTANTS = (
    Mutant("reuse", "a job already queued or running is reused, never submitted again",
           "s3rules/aws/submitter.py", "        job_id = self.find(spec)\n        if job_id is not None:\n"
           "            self.reused += 1\n        return job_id",
           "        return None",
           ("tests/test_batch.py", "-k", "second_run_while or interrupted_mid_submission")),
    Mutant("outputs-confirmed", "a job that exits 0 but leaves an output unwritten has failed",
           "s3rules/runner.py", "        missing = [o for o in job.outputs if o not in present]",
           "        missing = []",
           ("tests/test_cli.py", "-k", "without_an_output")),
    Mutant("failed-outputs-removed", "a job that fails after writing its outputs has them removed",
           "s3rules/runner.py", "        for path in written:\n            self.storage.remove(path, directory=path in dirs)",
           "        written = []",
           ("tests/test_cli.py", "-k", "complete_looking")),
    Mutant("old-output-kept", "an output a job rewrites is put back if the job fails",
           "s3rules/runner.py", "            aside = self.storage.set_aside(out)\n",
           "            aside = None\n",
           ("tests/test_cli.py", "-k", "rerun")),
    Mutant("quoting", "every substituted value is shell-quoted: sample values are data, never code",
           "s3rules/model/jobs.py", "    return shlex.quote(str(value))", "    return str(value)",
           ("tests/test_cli.py", "-k", "byte_for_byte")),
    Mutant("segments", "a wildcard value fills exactly one path segment",
           "s3rules/model/templates.py", '    if "/" in value:\n        return "contains \'/\'"\n', "",
           ("tests/test_loader.py", "tests/test_fuzz.py", "-k", "segment")),
    Mutant("listing", "existence checks list S3 prefixes instead of one request per file",
           "s3rules/storage/s3.py", "            if len(pending) > 1:", "            if len(pending) > 10**9:",
           ("tests/test_storage.py", "-k", "request or count or list")),
    Mutant("arrays", "each rule's pending jobs go to Batch as array jobs",
           "s3rules/settings.py", "    array_size: int = 10_000 ", "    array_size: int = 1 ",
           ("tests/test_batch_arrays.py",)),
    Mutant("pace", "Batch requests paced to 40 per second by default",
           "s3rules/aws/policy.py", 'os.environ.get("S3RULES_BATCH_RPS", 40)',
           'os.environ.get("S3RULES_BATCH_RPS", 400)', ("tests/test_policy.py",)),
    Mutant("pace-hook", "s3rules paces its own Batch requests (S3RULES_BATCH_RPS)",
           "s3rules/aws/policy.py", '    client.meta.events.register("before-send.batch", PACE.wait)',
           "    pass", ("tests/test_policy.py",)),
    Mutant("backoff", "the poll interval backs off to 30 s while nothing changes",
           "s3rules/aws/policy.py", "POLL_START, POLL_LIMIT = 2.0, 30.0", "POLL_START, POLL_LIMIT = 2.0, 300.0",
           ("tests/test_policy.py",)),
    Mutant("lease-ttl", "a run that dies stops renewing, and its lease expires after 60 s",
           "s3rules/aws/policy.py", "LEASE_TTL = 60.0", "LEASE_TTL = 3600.0",
           ("tests/test_lease.py", "tests/test_batch_setup.py")),
    Mutant("name", "each job's name is s3rules-<rule>-<wildcards>-<16 hex digits>",
           "s3rules/aws/naming.py", "SHORT = 16 ", "SHORT = 12 ", ("tests/test_naming.py",)),
    Mutant("interrupt", "exit status 130: interrupted",
           "s3rules/errors.py", "    exit_code = 130", "    exit_code = 1", ("tests/test_cli.py", "-k", "ctrl_c")),
    Mutant("located", "errors at file:line:col, with the line and a caret",
           "s3rules/errors.py", "{' ' * (self.column - 1)}^", "{' ' * self.column}^",
           ("tests/test_parser.py", "tests/test_loader.py")),
    Mutant("pending-reason", "-n prints the reason each job is pending",
           "s3rules/planner/pending.py", "UPSTREAM = \"missing\", \"incomplete\", \"forced\", \"stale\", \"upstream\"",
           "UPSTREAM = \"missing\", \"incomplete\", \"forced\", \"stale\", \"missing\"",
           ("tests/test_planner.py",)),
)


def copy_repository(into: Path) -> None:
    for name in ("s3rules", "tests", "rulefiles", "README.md", "pyproject.toml", ".ci"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=shutil.ignore_patterns("__pycache__", "out", ".s3rules"))
        elif src.exists():
            shutil.copy2(src, into / name)


def apply(mutant: Mutant, root: Path) -> None:
    path = root / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: {mutant.path} holds its text {count} times, not once; "
                         "update tests/mutants.py")
    path.write_text(text.replace(mutant.old, mutant.new))


def run(mutant: Mutant, mutate: bool = True) -> tuple[bool, float, str]:
    """(the tests failed, seconds, the last line pytest printed); ``mutate=False`` is the control."""
    with tempfile.TemporaryDirectory(prefix=f"s3rules-mutant-{mutant.name}-") as tmp:
        root = Path(tmp)
        copy_repository(root)
        if mutate:
            apply(mutant, root)
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               *mutant.tests], cwd=root, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return done.returncode not in (0, 5), time.monotonic() - started, lines[-1] if lines else ""


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for m in MUTANTS:
            print(f"{m.name:<24} {m.promise}\n{'':<24} {m.path}: {' '.join(m.tests)}")
        return 0
    control = "--no-control" not in argv
    words = [a for a in argv if not a.startswith("--")]
    chosen = [m for m in MUTANTS if not words or any(word in m.name for word in words)]
    survived = []
    print(f"{'mutant':<24} {'result':<9} {'seconds':>7}  promise")
    for m in chosen:
        if control:   # the same tests pass on the unmutated copy, so a failure is the mutant's
            failed, _, last = run(m, mutate=False)
            if failed:
                raise SystemExit(f"mutant {m.name}: its tests fail without the mutation too:\n{last}")
        killed, seconds, last = run(m)
        print(f"{m.name:<24} {'killed' if killed else 'SURVIVED':<9} {seconds:7.1f}  {m.promise}", flush=True)
        if not killed:
            survived.append(m)
            print(f"{'':<24} {last}")
    print(f"{len(chosen) - len(survived)} killed, {len(survived)} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
