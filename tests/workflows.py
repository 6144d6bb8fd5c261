"""Helpers for tests: write a Batchfile, its sample sheet and some files into a directory."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from s3rules.language.loader import load_workflow
from s3rules.planner import plan
from s3rules.storage import Storage


def write(root: Path, batchfile: str, sheet: str | None = None, files: dict[str, str] | None = None,
          name: str = "Batchfile") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(textwrap.dedent(batchfile).lstrip("\n"))
    if sheet is not None:
        (root / "samples.csv").write_text(textwrap.dedent(sheet).lstrip("\n"))
    for rel, content in (files or {}).items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content)
    return path


def load(root: Path, batchfile: str, sheet: str | None = None, files=None, config=None):
    return load_workflow(str(write(root, batchfile, sheet, files)), config or {})


def pending(workflow, targets=(), **kwargs) -> dict[str, str]:
    """{job description: reason} of a fresh plan."""
    p = plan(workflow, Storage(), targets, **kwargs)
    return {job.describe(): reason for job, reason in p.pending.items()}


def s3rules(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run the installed console script (as a user would) and capture its output."""
    exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([exe, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


PIPELINE = """
samples: "samples.csv"
root = "out"

rule all:
    input: expand("{root}/counts/{sample}.txt"), "{root}/summary.tsv"

rule trim:
    input: "data/{sample}.txt"
    output: "{root}/trim/{sample}.txt"
    shell: "tr a-z A-Z < {input} > {output}"

rule count:
    input: "{root}/trim/{sample}.txt"
    output: "{root}/counts/{sample}.txt", "{root}/counts/{sample}.log"
    shell: '''
        wc -l < {input} > {output[0]}
        echo counted {sample} > {output[1]}
    '''

rule summary:
    input: expand("{root}/counts/{sample}.txt")
    output: "{root}/summary.tsv"
    shell: "cat {input} > {output}"
"""

SHEET = """
sample,group
A,g1
B,g1
C,g2
"""

DATA = {"data/A.txt": "a\nb\n", "data/B.txt": "c\n", "data/C.txt": "d\ne\nf\n"}
