"""The example workflows in rulefiles/ work as documented."""
import json
import re
import uuid
from pathlib import Path

from workflows import s3rules

ROOT = Path(__file__).resolve().parent.parent
GENOMICS = ROOT / "rulefiles" / "genomics" / "Batchfile"


def test_genomics_example_plans_against_a_local_s3_server(s3_backend):
    """`s3rules run -n` on the S3 + Batch example, against moto and against SeaweedFS."""
    reads, refs = "s3rules-example-reads", "my-lab-references"
    results = f"results-{uuid.uuid4().hex[:8]}"
    for bucket in (reads, refs, results):
        try:
            s3_backend.make_bucket(bucket)
        except Exception:
            pass  # the reads and references buckets are shared by both parametrisations' servers
    sheet = (GENOMICS.parent / "samples.csv").read_text().splitlines()[1:]
    keys = [url.split("/", 3)[3] for line in sheet for url in line.split(",")[2:]]
    s3_backend.put_many(reads, keys)
    s3_backend.put_many(refs, ["salmon/GRCh38_index.tar"])
    run = f"s3://{results}/rnaseq/2026-11"
    # one sample already trimmed: its trim job is done, everything else is missing
    s3_backend.put_many(results, [f"rnaseq/2026-11/trimmed/NA12878_L1_R{i}.fastq.gz" for i in (1, 2)]
                        + ["rnaseq/2026-11/qc/NA12878_L1.fastp.json"])

    r = s3rules("run", "-n", "--json", str(GENOMICS), "--config", f"bucket=s3://{results}", env=s3_backend.env())
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["rules"] == {
        "trim": {"pending": 4, "done": 1, "total": 5}, "quant": {"pending": 5, "done": 0, "total": 5},
        "group": {"pending": 2, "done": 0, "total": 2}, "qc_summary": {"pending": 1, "done": 0, "total": 1}}
    assert {j["reason"] for j in doc["jobs"]} == {"missing"}
    group = next(j for j in doc["jobs"] if j["rule"] == "group" and j["wildcards"] == {"group": "control"})
    assert group["outputs"] == [f"{run}/groups/control.tsv"]

    table = s3rules("run", "-n", str(GENOMICS), "--config", f"bucket=s3://{results}", env=s3_backend.env())
    assert re.search(r"^total\s+12\s+1\s+13$", table.stdout, re.M), table.stdout


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```(?:sh|bash)\n(.*?)```", readme, re.S)
    assert block, "README.md has a Quick start with a shell block"
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    for command in commands:
        assert command in ci
