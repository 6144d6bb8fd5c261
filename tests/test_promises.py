"""README promises that no other test checked (docs/promises.md maps every promise to its tests).

Each test names, in its docstring, the README sentence it guards. Local tests run the console
script or pure functions; AWS tests use moto's server (tests/aws_server.py, Batch jobs run as
local processes) through the fixtures of tests/test_batch.py, and tests/faultproxy.py where every
request s3rules sends must be seen. Nothing here patches s3rules or asserts on timing: where a
job must stay in flight it waits on a ``gate``, and every wait is bounded.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s3rules.cli import main
from test_batch import (PIPELINE, Flow, Terminal, calls, flow, gate, proxy, run,  # noqa: F401  (fixtures)
                        table)
from workflows import DATA, SHEET, load, s3rules, write
from workflows import PIPELINE as LOCAL_PIPELINE

S3RULES = os.path.join(os.path.dirname(sys.executable), "s3rules")


def dry_json(cwd, *args, env=None) -> dict:
    r = s3rules("run", "-n", "--json", *args, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def reasons(doc) -> dict[str, str]:
    out = {}
    for job in doc["jobs"]:
        wc = ", ".join(f"{k}={v}" for k, v in job["wildcards"].items())
        out[f"{job['rule']}[{wc}]" if wc else job["rule"]] = job["reason"]
    return out


# == The Batchfile ==================================================================================

def test_strings_take_double_single_and_triple_quotes_and_triple_quoted_commands_are_dedented(tmp_path):
    """README, The Batchfile: 'Strings use "...", '...' or \"\"\"...\"\"\". Triple-quoted commands are
    dedented.' A here-document ends only at an unindented delimiter, so an indented command would
    leave the delimiter and the indentation in the output."""
    bf = write(tmp_path, '''
        rule all:
            input: 'out/single.txt', "out/double.txt"
        rule single:
            output: 'out/single.txt'
            shell: 'echo single > {output}'
        rule double:
            output: "out/double.txt"
            shell: """
                cat > {output} <<EOF
                first
                  second
                EOF
            """
        ''')
    r = s3rules("run", str(bf), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/single.txt").read_text() == "single\n"
    assert (tmp_path / "out/double.txt").read_text() == "first\n  second\n"


def test_the_first_rule_is_the_default_target(tmp_path):
    """README, The Batchfile: 'the first rule is the default target, as in Make'."""
    bf = write(tmp_path, '''
        rule one:
            output: "out/one.txt"
            shell: "touch {output}"
        rule two:
            output: "out/two.txt"
            shell: "touch {output}"
        ''')
    assert reasons(dry_json(tmp_path, str(bf))) == {"one": "missing"}
    bf.write_text(bf.read_text().replace("rule one:", "rule first:\n    input: \"out/two.txt\"\nrule one:"))
    assert reasons(dry_json(tmp_path, str(bf))) == {"two": "missing"}


def test_a_command_can_name_inputs_outputs_one_of_them_resources_and_literal_braces(tmp_path):
    """README, Shell commands: '{input} and {output}: all paths, space-separated; {input[0]}: one of
    them; ... {vcpus}, {memory} and {gpus}: the job's resources.' and 'Write {{ and }} for literal
    braces (as in awk '{{print $1}}')'."""
    bf = write(tmp_path, '''
        rule all:
            input: "out/names.txt"
        rule names:
            input: "data/a.txt", "data/b.txt"
            output: "out/names.txt"
            vcpus: 0.5
            memory: 512
            gpus: 1
            shell: """
                printf '%s\\n' {input} > {output}
                echo {input[1]} >> {output}
                echo {vcpus} {memory} {gpus} >> {output}
                awk '{{print $2}}' {input[0]} >> {output}
            """
        ''', files={"data/a.txt": "x from-a\n", "data/b.txt": "y\n"})
    r = s3rules("run", str(bf), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/names.txt").read_text().splitlines() == [
        "data/a.txt", "data/b.txt", "data/b.txt", "0.5 512 1", "from-a"]


STRICT = '''
samples: "samples.csv"
rule all:
    input: "out/where.txt", expand("out/strict/{sample}.txt")
rule where:
    output: "out/where.txt"
    shell: 'printf "%s\\n%s\\n" "$BASH_VERSION" "$PWD" > {output}'
rule strict:
    output: "out/strict/{sample}.txt"
    shell: """
        case {sample} in
            pipefail) false | true ;;
            nounset) : "$S3RULES_TEST_NEVER_SET" ;;
            errexit) false ;;
        esac
        touch {output}
    """
'''


def test_local_jobs_run_strict_bash_in_the_batchfiles_directory(tmp_path):
    """README, Shell commands: 'Local jobs run with bash -c 'set -euo pipefail; ...' in the
    Batchfile's directory.' Run from another directory: each of -e, -u and pipefail fails its job,
    the control job (no strict rule broken) succeeds."""
    wf, elsewhere = tmp_path / "wf", tmp_path / "elsewhere"
    elsewhere.mkdir()
    bf = write(wf, STRICT, "sample\npipefail\nnounset\nerrexit\ncontrol\n")
    env = {k: v for k, v in os.environ.items() if k != "S3RULES_TEST_NEVER_SET"}
    r = subprocess.run([S3RULES, "run", str(bf), "-k", "-j", "1"], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    version, pwd = (wf / "out/where.txt").read_text().splitlines()
    assert version and os.path.realpath(pwd) == os.path.realpath(wf)
    for sample in ("pipefail", "nounset", "errexit"):
        assert f"job failed: rule strict (sample={sample}): exit code 1" in r.stderr, r.stderr
        assert not (wf / f"out/strict/{sample}.txt").exists()
    assert (wf / "out/strict/control.txt").exists()
    assert not list(elsewhere.iterdir())


def test_shell_executable_names_the_shell_and_defaults_to_bash(tmp_path):
    """README, Settings: 'shell_executable | the shell that runs commands (default bash)'."""
    bf = write(tmp_path, '''
        rule all:
            input: "out/default.txt", "out/sh.txt"
        rule default:
            output: "out/default.txt"
            shell: 'echo "$0" > {output}'
        rule sh:
            output: "out/sh.txt"
            shell_executable: "sh"
            shell: 'echo "$0" > {output}'
        ''')
    r = s3rules("run", str(bf), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/default.txt").read_text() == "bash\n"
    assert (tmp_path / "out/sh.txt").read_text() == "sh\n"


def test_a_sample_sheet_may_be_an_s3_url(tmp_path, moto_s3):
    """README, The Batchfile: 'the sample sheet: CSV, or TSV by extension (.tsv/.tab/.txt); local path
    or s3:// URL'."""
    bucket = moto_s3.make_bucket(f"s3rules-sheet-{os.urandom(4).hex()}")
    moto_s3.client().put_object(Bucket=bucket, Key="sheets/samples.tsv", Body=b"sample\tgroup\nA\tg1\nB\tg2\n")
    bf = write(tmp_path, f'''
        samples: "s3://{bucket}/sheets/samples.tsv"
        rule all:
            input: expand("out/{{group}}/{{sample}}.txt")
        rule make:
            output: "out/{{group}}/{{sample}}.txt"
            shell: "touch {{output}}"
        ''')
    doc = dry_json(tmp_path, str(bf), env=moto_s3.env())
    assert reasons(doc) == {"make[group=g1, sample=A]": "missing", "make[group=g2, sample=B]": "missing"}


# == Settings =======================================================================================

SETTINGS = '''
samples: "samples.csv"
default:
    executor: batch
    queue: "arn:aws:batch:us-east-1:123456789012:job-queue/genomics"
    job_definition: "tools:3"
    vcpus: 0.25
    memory: 512
    gpus: 1
    retries: 2
    timeout: 3600
    share: "teamA"
    priority: 9999
    tags:
        project: "rnaseq"
    environment:
        GROUP: "{group}"
rule all:
    input: expand("s3://b/out/{sample}.txt")
rule make:
    output: "s3://b/out/{sample}.txt"
    shell: "echo {sample} | aws s3 cp - {output}"
'''


def test_every_batch_setting_reaches_the_submit_job_request(tmp_path):
    """README, Settings table: queue (name or ARN), job_definition (name:revision), vcpus (0.25 and
    more), memory (MiB), gpus, environment (values may use columns), retries and retries_infra
    (retryStrategy attempts = retries + retries_infra + 1), timeout (seconds per attempt), tags, share, priority (0-9999)."""
    from s3rules.aws.jobspec import job_spec, submit_request
    from s3rules.errors import BatchfileError
    from s3rules.planner import Planner
    wf = load(tmp_path, SETTINGS, "sample,group\nA,g1\n")
    [job] = Planner(wf).jobs_of_rule(wf.rules["make"])
    request = submit_request(job_spec(job))
    assert request["jobQueue"] == "arn:aws:batch:us-east-1:123456789012:job-queue/genomics"
    assert request["jobDefinition"] == "tools:3"
    overrides = request["containerOverrides"]
    assert overrides["resourceRequirements"] == [{"type": "VCPU", "value": "0.25"},
                                                 {"type": "MEMORY", "value": "512"}, {"type": "GPU", "value": "1"}]
    assert overrides["environment"] == [{"name": "GROUP", "value": "g1"}]
    assert request["retryStrategy"]["attempts"] == 8   # retries: 2, retries_infra: 5 by default
    assert request["timeout"] == {"attemptDurationSeconds": 3600}
    assert request["tags"]["project"] == "rnaseq" and request["tags"]["s3rules:rule"] == "make"
    assert (request["shareIdentifier"], request["schedulingPriorityOverride"]) == ("teamA", 9999)
    with pytest.raises(BatchfileError, match=r"Batchfile:12:15: 'priority' must be from 0 to 9999, not 10000"):
        load(tmp_path / "over", SETTINGS.replace("priority: 9999", "priority: 10000"), "sample,group\nA,g1\n")


def test_array_size_defaults_to_10000_children_per_array(tmp_path):
    """README, Settings: 'array_size | most children per Batch array job (default 10,000; ...)'.
    10,001 pending jobs of one rule go up as one array of 10,000 and one job alone."""
    from s3rules.aws.grouping import BatchHandle, units
    from s3rules.aws.jobspec import job_spec
    from s3rules.planner import Planner
    sheet = "sample\n" + "".join(f"S{i:05d}\n" for i in range(10_001))
    wf = load(tmp_path, SETTINGS.replace("    environment:\n        GROUP: \"{group}\"\n", ""), sheet)
    jobs = Planner(wf).jobs_of_rule(wf.rules["make"])
    out = units([BatchHandle(j, job_spec(j), []) for j in jobs], {wf.rules["make"].settings.batch.queue: "s3://b/x"})
    assert sorted((len(group), array is not None) for group, array in out) == [(1, False), (10_000, True)]


def spec(i: int, label: str = "trim-S{:05d}", value: str = "x"):
    from s3rules.aws.jobspec import JobSpec
    label = label.format(i)
    return JobSpec(label=label, queue="q", job_definition="jd:1",
                   command=("bash", "-c", f"set -euo pipefail\nprintf '%s' '{value}' > out-{i}.txt\n"),
                   outputs=(f"s3://b/out/{label}.txt",), vcpus=1, memory=1024)


def test_a_small_array_needs_nothing_in_the_container_but_bash(tmp_path):
    """README, Array jobs: 'small arrays need nothing in the container but bash'. Each child runs with
    a PATH that holds bash alone."""
    from s3rules.aws.arrays import build_array
    only_bash = tmp_path / "bin"
    only_bash.mkdir()
    (only_bash / "bash").symlink_to(shutil.which("bash"))
    array = build_array("trim", [spec(i, value=f"child {i}") for i in range(3)], "s3://b/.s3rules/jobs")
    assert array.values_url is None
    for i in range(3):
        r = subprocess.run(array.command, cwd=tmp_path, capture_output=True, text=True, timeout=30,
                           env={"PATH": str(only_bash), "AWS_BATCH_JOB_ARRAY_INDEX": str(i)})
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out-{i}.txt").read_text() == f"child {i}"


def test_large_arrays_and_long_scripts_are_fetched_with_aws_s3_cp_by_default():
    """README, Settings: 'fetch_command | how a Batch job fetches a script or array manifest from S3
    (default aws s3 cp {url} -)'; Array jobs: manifests at s3://<bucket>/.s3rules/jobs/<hash>.values,
    scripts at .../<hash>.sh, and 'large arrays and long scripts need aws (the AWS CLI), sed and base64'."""
    from dataclasses import replace

    from s3rules.aws.arrays import build_array, stage
    home = "s3://b/.s3rules/jobs"
    array = build_array("trim", [spec(i, value="v" * 64 + str(i)) for i in range(300)], home)
    assert array.values_url == f"{home}/{array.identity}.values"
    script = array.command[-1]
    assert f"aws s3 cp {shlex.quote(array.values_url)} -" in script and "sed -n" in script and "base64 -d" in script
    long = replace(spec(0), command=("bash", "-c", "echo " + "y" * 9000))
    command, files = stage(long, home)
    assert list(files) == [f"{home}/{long.identity}.sh"]
    assert f"aws s3 cp {shlex.quote(f'{home}/{long.identity}.sh')} -" in command[-1]


# == The command line ===============================================================================

def _all_done(tmp_path: Path) -> Path:
    bf = write(tmp_path, LOCAL_PIPELINE, SHEET, DATA)
    t = time.time() - 100
    for s in "ABC":
        os.utime(tmp_path / f"data/{s}.txt", (t - 10, t - 10))
        for rel, at in ((f"out/trim/{s}.txt", t), (f"out/counts/{s}.txt", t + 10), (f"out/counts/{s}.log", t + 10)):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("x")
            os.utime(tmp_path / rel, (at, at))
    (tmp_path / "out/summary.tsv").write_text("x")
    os.utime(tmp_path / "out/summary.tsv", (t + 20, t + 20))
    return bf


def test_force_options_repeat_and_rerun_stale_applies_the_mtime_rule(tmp_path):
    """README, options: '-f, --force TARGET | rerun the job making TARGET even if it exists
    (repeatable, one value each)', '-R, --forcerun RULE | rerun every job of RULE (repeatable)',
    '--rerun-stale | also rerun jobs whose outputs are older than an input', and -n's table lists
    'each pending job, its outputs and its reason'."""
    bf = _all_done(tmp_path)
    assert dry_json(tmp_path, str(bf))["jobs"] == []
    forced = reasons(dry_json(tmp_path, str(bf), "-f", "out/trim/A.txt", "--force", "out/counts/B.txt"))
    assert forced == {"trim[sample=A]": "forced", "count[sample=A]": "upstream", "count[sample=B]": "forced",
                      "summary": "upstream"}
    assert reasons(dry_json(tmp_path, str(bf), "-f", "out/trim/A.txt", "trim")) == {   # "trim": a target
        "trim[sample=A]": "forced"}
    assert reasons(dry_json(tmp_path, str(bf), "-R", "trim", "--forcerun", "summary")) == {
        **{f"trim[sample={s}]": "forced" for s in "ABC"}, **{f"count[sample={s}]": "upstream" for s in "ABC"},
        "summary": "forced"}
    os.utime(tmp_path / "data/B.txt")                 # a source newer than its output
    assert dry_json(tmp_path, str(bf))["jobs"] == []  # existence is what counts
    assert reasons(dry_json(tmp_path, str(bf), "--rerun-stale")) == {
        "trim[sample=B]": "stale", "count[sample=B]": "upstream", "summary": "upstream"}
    table_text = s3rules("run", "-n", str(bf), "-f", "out/trim/A.txt", cwd=tmp_path).stdout
    line = next(l for l in table_text.splitlines() if "trim[sample=A]" in l)
    assert line.split() == ["forced", "trim[sample=A]", "out/trim/A.txt"]
    line = next(l for l in table_text.splitlines() if "count[sample=A]" in l)
    assert line.split() == ["upstream", "count[sample=A]", "out/counts/A.txt", "out/counts/A.log"]


def test_jobs_default_is_the_number_of_cores(tmp_path):
    """README, options: '-j, --jobs N | parallel local jobs (default: number of cores)'. As many jobs
    as cores each wait (bounded) until all of them have started: only that many at once lets them
    finish."""
    n = os.cpu_count() or 1
    if n < 2:
        pytest.skip("one core: the default cannot be told apart from -j 1")
    bf = write(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("out/{sample}.txt")
        rule meet:
            output: "out/{sample}.txt"
            shell: """
                mkdir -p here && touch here/{sample}
                for i in $(seq 400); do [ "$(ls here | wc -l)" -ge N ] && break; sleep 0.05; done
                [ "$(ls here | wc -l)" -ge N ] && touch {output}
            """
        '''.replace(" N ", f" {n} "), "sample\n" + "".join(f"s{i}\n" for i in range(n)))
    r = s3rules("run", str(bf), "-q", timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").iterdir())) == n


def test_the_executor_option_overrides_the_batchfile(tmp_path):
    """README, options: '--executor local|batch | override the Batchfile's executor'."""
    bf = write(tmp_path, '''
        default:
            executor: batch
            queue: "q"
            job_definition: "jd"
        rule make:
            output: "out/x.txt"
            shell: "echo here > {output}"
        ''')
    offline = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
               "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_EC2_METADATA_DISABLED": "true"}
    on_batch = s3rules("run", str(bf), env=offline)
    assert on_batch.returncode == 2 and "runs on AWS Batch but writes the local path" in on_batch.stderr
    local = s3rules("run", str(bf), "--executor", "local", "-q", env=offline)
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "out/x.txt").read_text() == "here\n"


# == Running on AWS Batch: names, retries, requests ==================================================

def test_job_and_array_names():
    """README, Identity: 'Each job's name is s3rules-<rule>-<wildcards>-<16 hex digits>' and 'An array
    is named s3rules--array-<rule>-<16 hex digits>'; Development: 'characters Batch refuses become _'."""
    from s3rules.aws.arrays import array_request, build_array
    from s3rules.aws.naming import job_name
    assert job_name("count-sample=A/B.1", "0123456789abcdef" * 4) == "s3rules-count-sample_A_B_1-0123456789abcdef"
    array = build_array("trim", [spec(i) for i in range(2)], "s3://b/.s3rules/jobs")
    assert re.fullmatch(r"s3rules--array-trim-[0-9a-f]{16}", array_request(array, [])["jobName"])
    assert array_request(array, [])["jobName"].endswith(array.identity[:16])


def test_aws_clients_retry_in_botocore_adaptive_mode():
    """README, Cost of the bookkeeping: 'Throttled calls are still retried by botocore's adaptive retry
    mode, and a throttled SubmitJob is tried again after a pause' (SubmitJob's own client sends once:
    s3rules retries it, tests/test_reliability.py)."""
    import boto3

    from s3rules.aws.service import BatchService
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    service = BatchService(session=session)
    for client in (service.batch, service.logs):
        assert client.meta.config.retries["mode"] == "adaptive"
        assert client.meta.config.retries["total_max_attempts"] > 1
    assert service.submitter_client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 1}


def test_describe_jobs_asks_for_at_most_100_jobs_per_call(aws_env, calls):
    """README, Cost of the bookkeeping: 'Watching: one DescribeJobs call per 100 single jobs and array
    parents in flight'."""
    from s3rules.aws.service import BatchService
    asked: list[int] = []
    calls.events.register("provide-client-params.batch.DescribeJobs",
                          lambda params, **_: asked.append(len(params["jobs"])))
    BatchService().describe([f"00000000-0000-0000-0000-{i:012d}" for i in range(250)])
    assert asked == [100, 100, 50]


from test_batch_setup import ONE_RULE   # noqa: E402  (one pipeline for both files)


def test_finding_jobs_in_flight_costs_one_list_jobs_per_active_state(flow, calls, gate, capsys):
    """README, Cost of the bookkeeping: 'Finding in-flight jobs: one ListJobs call per active state per
    queue, plus one more per 1,000 jobs in that state.' and 'Array children in flight (once per run):
    one DescribeJobs per 100 arrays, the manifest, and ListJobs of the array's children per active
    state.' Counted while ``s3rules status`` finds an array and a job in flight."""
    from s3rules.aws.jobspec import ACTIVE_STATES
    flow.write(samples=["S1", "S2"], pre=gate.wait)     # "up" is an array of 2; the summary waits for it
    assert run(flow.bf, "--detach") == 0
    ids = calls.ids()
    [array] = calls.arrays
    flow.wait_status([ids["up-S1"], ids["up-S2"]], {"RUNNING"})
    listed, described, manifests = [], [], []
    calls.events.register("provide-client-params.batch.ListJobs", lambda params, **_: listed.append(dict(params)))
    calls.events.register("provide-client-params.batch.DescribeJobs",
                          lambda params, **_: described.append(list(params["jobs"])))
    calls.events.register("provide-client-params.s3.GetObject",
                          lambda params, **_: manifests.append(params["Key"]))
    capsys.readouterr()
    assert main(["status", flow.bf]) == 0
    assert table(capsys.readouterr().out)["total"]["RUNNING"] == 2
    on_queue = [p for p in listed if "jobQueue" in p]
    assert sorted(p["jobStatus"] for p in on_queue) == sorted(ACTIVE_STATES)    # one call per active state
    children = [p for p in listed if "arrayJobId" in p]
    assert children and {p["arrayJobId"] for p in children} == {array["jobId"]}
    assert len(children) <= len(ACTIVE_STATES) and all(p["jobStatus"] in ACTIVE_STATES for p in children)
    assert all(p["maxResults"] == 1000 for p in listed)                        # 1,000 per page
    assert described == [[array["jobId"]]]                                      # one DescribeJobs, the array
    assert manifests == [array["tags"]["s3rules:manifest"].split("/", 3)[3]]    # its manifest, once
    gate.open()


def test_cancel_terminates_only_this_workflows_jobs(aws_env, tmp_path, flow, calls, gate, capsys):
    """README, The command line: 's3rules cancel [BATCHFILE] [-y] | terminate this workflow's jobs in
    flight on Batch'. Another workflow's jobs on the same queue are left running."""
    flow.write(pre=gate.wait)
    assert run(flow.bf, "--detach") == 0
    ours = set(calls.ids().values())
    (tmp_path / "other").mkdir()
    other = Flow(aws_env, tmp_path / "other").write(pre=gate.wait)
    other.path.write_text(other.path.read_text().replace(f"s3://{flow.bucket}/out", f"s3://{flow.bucket}/other"))
    calls.reset()
    assert run(other.bf, "--detach") == 0
    theirs = set(calls.ids().values())
    assert len(calls.submits) == 2 and not ours & theirs
    flow.wait_status([i for i in ours | theirs if ":" in i], {"RUNNING"})   # the array children, at the gate
    calls.reset()
    assert main(["cancel", flow.bf, "-y"]) == 0
    assert sorted(calls.terminated) == sorted(ours)
    assert {j["status"] for j in flow.wait(sorted(ours), timeout=30).values()} == {"FAILED"}
    assert all(j["status"] not in ("SUCCEEDED", "FAILED") for j in flow.describe(sorted(theirs)).values())
    gate.open()
    assert {j["status"] for j in flow.wait(sorted(theirs), timeout=60).values()} == {"SUCCEEDED"}
    assert other.get("other/summary.txt") == "HELLO A\nHELLO B\n"


PAIR = '''
rule all:
    input: expand("{root}/pair/{sample}.a")
rule pair:
    output: "{root}/pair/{sample}.a", "{root}/pair/{sample}.b"
    shell: """
        echo new a {sample} | s3tool put {output[0]}
        if [ {sample} = fresh ]; then echo new b {sample} | s3tool put {output[1]}; fi
        echo 'failed after writing' >&2
        exit 3
    """
'''


def test_a_failed_batch_job_loses_the_outputs_it_wrote_and_keeps_those_it_did_not(flow, calls, capsys):
    """README, intro: 'A job that fails after writing its outputs has them removed.' The command line:
    'On S3 there is no rename: an output that the failed job did not overwrite stays, and one it
    overwrote is removed with the job's other outputs, so that nothing half-made looks done.'
    ``fresh`` writes both outputs and fails; ``old`` (both outputs there before, forced) overwrites
    one and fails."""
    flow.write(PAIR, samples=["fresh", "old"], data=False)
    flow.put("out/pair/old.a", "old a\n")
    flow.put("out/pair/old.b", "old b\n")
    now = time.time()
    time.sleep(int(now) + 1.05 - now)    # S3 times are whole seconds: an overwrite must show as newer
    assert run(flow.bf, "-F") == 1
    err = capsys.readouterr().err
    assert "2 jobs failed" in err and "| failed after writing" in err
    assert "removed outputs written by failed jobs: " in err
    assert flow.get("out/pair/fresh.a") is None and flow.get("out/pair/fresh.b") is None
    assert flow.get("out/pair/old.a") is None                  # overwritten, then removed
    assert flow.get("out/pair/old.b") == "old b\n"             # never touched: stays
    capsys.readouterr()
    assert main(["run", "-n", "--json", flow.bf]) == 0
    assert reasons(json.loads(capsys.readouterr().out)) == {"pair[sample=fresh]": "missing",
                                                            "pair[sample=old]": "incomplete"}


FAILS_FOR_B = PIPELINE.replace("PRE ", "if [ {sample} = B ]; then echo 'B is broken' >&2; exit 3; fi; PRE ")


def test_jobs_waiting_for_an_array_with_a_failed_child_are_stopped_by_s3rules(flow, calls, gate, capsys):
    """README, Array jobs: 'Jobs that wait for a whole array with a failed child will never run:
    s3rules stops them and reports them as not run.' The other children are held at a gate, so
    Batch cannot fail the summary by itself; the gate opens when s3rules terminates a job (or, if it
    never does, after 90 s, and the test fails)."""
    flow.write(FAILS_FOR_B, samples="ABC", pre=gate.wait)
    calls.events.register("provide-client-params.batch.TerminateJob", lambda **_: gate.open())
    safety = threading.Timer(90, gate.open)
    safety.start()
    try:
        assert run(flow.bf) == 1
    finally:
        safety.cancel()
    err = capsys.readouterr().err
    summary = calls.by_label()["summary"]["jobId"]
    assert summary in calls.terminated
    assert "1 job failed" in err and "1 job was not run because a job it needs failed" in err
    assert "| B is broken" in err
    final = flow.wait([summary])[summary]
    assert final["status"] == "FAILED" and not final.get("startedAt")
    assert flow.get("out/up/A.txt") == "HELLO A\n" and flow.get("out/up/C.txt") == "HELLO C\n"


def test_on_batch_the_bars_show_the_count_in_each_batch_state(flow, calls, gate, monkeypatch):
    """README, The command line: 'Progress uses one tqdm bar per rule and a total bar on a terminal. On
    Batch, the bars also show the count in each Batch state.' stderr is a terminal here; the jobs stay
    RUNNING until the bars have said so (at most 60 s)."""
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    flow.write(samples=["A", "B"], pre=gate.wait)
    seen = threading.Event()

    def watch_the_screen():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not gate.is_open:
            if re.search(r"up\s*:.*RUNNING=2", screen.getvalue()):
                seen.set()
                break
            time.sleep(0.05)
        gate.open()

    watcher = threading.Thread(target=watch_the_screen, daemon=True)
    watcher.start()
    assert run(flow.bf) == 0
    watcher.join(5)
    assert seen.is_set(), screen.getvalue()
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\n"


def test_a_queue_may_be_named_by_its_arn(flow, calls, gate):
    """README, Settings: 'queue | Batch job queue (name or ARN)'. A run names the queue by ARN; a second
    run finds its jobs in flight on that queue and reuses them."""
    arn = flow.env.batch.queue_arn
    flow.write(ONE_RULE, samples=["S1", "S2"], queue=arn, pre=gate.wait)
    assert run(flow.bf, "--detach") == 0
    assert {p["jobQueue"] for p in calls.submits} == {arn}
    calls.reset()
    calls.on_lease_release(gate.open)
    assert run(flow.bf) == 0
    assert gate.is_open and calls.submits == []
    assert flow.get("out/up/S1.txt") == "HELLO S1\n"


def test_a_job_in_flight_on_another_queue_is_not_the_same_job(aws_env, flow, calls, gate):
    """README, Identity: 'A job counts as the same job when its identity is in flight on the queue
    (SUBMITTED, PENDING, RUNNABLE, STARTING or RUNNING).' The same job (same identity) in flight on
    another queue is not reused."""
    other = aws_env.server.make_test_env()
    try:
        flow.write(ONE_RULE, samples=["S1"], pre=gate.wait)
        assert run(flow.bf, "--detach") == 0
        [first] = calls.submits
        flow.wait_status([first["jobId"]], {"RUNNING"})
        calls.reset()
        flow.write(ONE_RULE, samples=["S1"], pre=gate.wait, queue=other.queue, data=False)
        assert run(flow.bf, "--detach") == 0
        [second] = calls.submits
        assert second["jobQueue"] == other.queue and second["jobId"] != first["jobId"]
        assert second["tags"]["s3rules:identity"] == first["tags"]["s3rules:identity"]
    finally:
        gate.open()
        aws_env.server.terminate_unfinished(other.queue)


# == Credentials and endpoints ======================================================================

class _TaskRole(BaseHTTPRequestHandler):
    """The container credentials endpoint of an ECS task (AWS_CONTAINER_CREDENTIALS_FULL_URI)."""
    answers = 0
    keys: dict = {}

    def do_GET(self):
        type(self).answers += 1
        body = json.dumps({"AccessKeyId": self.keys["AWS_ACCESS_KEY_ID"], "Token": "task-token",
                           "SecretAccessKey": self.keys["AWS_SECRET_ACCESS_KEY"],
                           "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("source", ["AWS_PROFILE", "task-role"])
@pytest.mark.parametrize("endpoints", [("AWS_ENDPOINT_URL",), ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_BATCH")],
                         ids=["one-endpoint", "per-service"])
def test_credentials_and_endpoints_come_from_the_usual_places(flow, tmp_path, source, endpoints):
    """README, Running on AWS Batch: 'Credentials come from the usual places (AWS_PROFILE, environment
    variables, instance or task roles)' and 'AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3,
    AWS_ENDPOINT_URL_BATCH) points s3rules at another endpoint'. ``s3rules status`` lists the
    outputs on S3 and the jobs on Batch with no credentials in the environment, and only the
    endpoint variables named."""
    flow.write()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    keys = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(AWS_DEFAULT_REGION=os.environ["AWS_DEFAULT_REGION"], AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    for name in endpoints:
        env[name] = flow.env.server.endpoint_url
    server = None
    if source == "AWS_PROFILE":
        (tmp_path / "credentials").write_text(
            f"[s3rules-test]\naws_access_key_id = {keys['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {keys['AWS_SECRET_ACCESS_KEY']}\n")
        env["AWS_PROFILE"] = "s3rules-test"
    else:
        handler = type("TaskRole", (_TaskRole,), {"answers": 0, "keys": keys})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{server.server_address[1]}/creds"
    try:
        r = subprocess.run([S3RULES, "status", flow.bf], env=env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    finally:
        if server is not None:
            server.shutdown()
    assert r.returncode == 0, r.stderr
    assert table(r.stdout)["total"] == {"done": 0, "SUBMITTED": 0, "PENDING": 0, "RUNNABLE": 0, "STARTING": 0,
                                        "RUNNING": 0, "to_do": 3, "total": 3}
    if server is not None:
        assert handler.answers >= 1


# == IAM permissions ================================================================================

IAM = '''
rule all:
    input: "{root}/summary.txt", expand("{root}/bad/{sample}.txt")
rule up:
    input: "s3://BUCKET/data/{sample}.txt"
    output: "{root}/up/{sample}.txt"
    shell: "s3tool cat {input} | tr a-z A-Z | s3tool put {output}"
rule summary:
    input: expand("{root}/up/{sample}.txt")
    output: "{root}/summary.txt"
    shell: "echo LONG > /dev/null; for f in {input}; do s3tool cat $f; done | s3tool put {output}"
rule bad:
    output: "{root}/bad/{sample}.txt"
    shell: "PRE echo half | s3tool put {output}; echo 'bad {sample}' >&2; exit 3"
'''.replace("LONG", "x" * 9000)

#: README's IAM table, by the operation s3rules sends (HeadObject needs s3:GetObject, HeadBucket and
#: ListObjectsV2 need s3:ListBucket; SubmitJob with tags needs batch:TagResource too)
PERMITTED = {"DescribeJobQueues", "DescribeJobDefinitions", "SubmitJob", "TagResource", "ListJobs", "DescribeJobs",
             "TerminateJob", "GetLogEvents", "ListObjectsV2", "HeadBucket", "HeadObject", "GetObject",
             "DeleteObject", "DeleteObjects", "PutObject"}   # DeleteObjects: s3:DeleteObject, on superseded
#                                                                  ledger records under .s3rules/ledger/


def test_every_request_s3rules_sends_is_in_the_iam_table(flow, calls, gate, proxy, capsys):
    """README, IAM permissions: the table of permissions 'for the identity that runs s3rules', with
    s3:PutObject only on <bucket>/.s3rules/* (the lease, array manifests and staged scripts), and
    'The job definition's job role must allow those S3 reads and writes': s3rules never copies data
    (it reads and writes no object of the workflow but the outputs of a failed job it removes).
    Also the locations: the lease at s3://<bucket>/.s3rules/leases/<queue>.json, an array's
    manifest at .s3rules/jobs/<hash>.json and a long script at .s3rules/jobs/<hash>.sh.
    Every request goes through the proxy: run (arrays, a staged script, failures and their logs),
    status, logs, and cancel."""
    flow.write(IAM.replace("PRE ", ""))
    flow.path.write_text(flow.path.read_text().replace("default:\n", 'default:\n    fetch_command: "s3tool cat {url}"\n'))
    keys: dict[str, list[str]] = {"PutObject": [], "GetObject": [], "DeleteObject": []}
    for op, seen in keys.items():
        proxy.before_forward(op, lambda n, info, seen=seen: seen.append(info["path"].split("?")[0].split("/", 2)[2]))
    assert run(flow.bf, "-k") == 1
    err = capsys.readouterr().err
    assert "2 jobs failed" in err and "| bad A" in err
    assert flow.get("out/summary.txt") == "HELLO A\nHELLO B\n"
    assert main(["status", flow.bf]) == 0
    assert main(["logs", flow.bf, flow.url("out/up/A.txt")]) == 0
    flow.write(IAM.replace("PRE ", gate.wait), data=False)      # the bad jobs again, held in flight: cancel them
    assert run(flow.bf, "--detach") == 0
    assert main(["cancel", flow.bf, "-y"]) == 0
    gate.open()

    sent = set(proxy.requests)
    assert sent <= PERMITTED, sent - PERMITTED
    assert {"SubmitJob", "TerminateJob", "GetLogEvents", "DeleteObject", "PutObject", "ListJobs"} <= sent
    assert keys["PutObject"] and all(k.startswith(".s3rules/") for k in keys["PutObject"]), keys["PutObject"]
    assert keys["GetObject"] and all(k.startswith(".s3rules/") for k in keys["GetObject"]), keys["GetObject"]
    assert sorted(set(keys["DeleteObject"])) == ["out/bad/A.txt", "out/bad/B.txt"]
    state = sorted(o["Key"] for o in flow.s3.list_objects_v2(Bucket=flow.bucket, Prefix=".s3rules/")["Contents"])
    assert f".s3rules/leases/{flow.queue}.json" in state
    jobs = [k for k in state if k.startswith(".s3rules/jobs/")]
    assert jobs and all(re.fullmatch(r"\.s3rules/jobs/[0-9a-f]{64}\.(json|sh)", k) for k in jobs), jobs
    assert {k.rsplit(".", 1)[1] for k in jobs} == {"json", "sh"}


# == More on Batch: share, the lease, the Python API ================================================

def test_share_is_refused_on_a_queue_without_a_scheduling_policy(flow, calls, capsys):
    """README, Settings: 'share | fair-share identifier (only for queues with a scheduling policy)'.
    moto's queues have none: the run stops before anything is submitted, with one paragraph."""
    from test_batch import assert_clean_error
    flow.write()
    flow.path.write_text(flow.path.read_text().replace("default:\n", 'default:\n    share: "teamA"\n'))
    assert run(flow.bf) == 2
    assert_clean_error(capsys.readouterr().err, "sets share:", "has no scheduling policy")
    assert calls.submits == [] and flow.jobs() == []


def test_a_lease_held_from_another_machine_is_waited_for(moto_s3):
    """README, Two runs at once: 'A second s3rules run of the same workflow, even from another machine,
    waits for the lease' and 'if the dead process was on the same machine, the lease is taken over
    at once' (only then: a process id means nothing on another machine)."""
    from s3rules.aws.lease import Lease
    from s3rules.errors import AwsSetupError
    bucket = moto_s3.make_bucket(f"lease-{os.urandom(4).hex()}")
    client = moto_s3.client()
    url = f"s3://{bucket}/.s3rules/leases/q.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = Lease(url, client, ttl=3600)
    holder.acquire()
    body = json.loads(holder._body())
    body.update(pid=int(dead.stdout), host="another-machine", boot="another-boot")   # alive there, for all we know
    client.put_object(Bucket=holder.bucket, Key=holder.key, Body=json.dumps(body).encode())
    said = []
    waiter = Lease(url, client, ttl=30, wait=1, on_wait=said.append)
    with pytest.raises(AwsSetupError, match=r"another s3rules run \(another-machine, pid \d+\)"):
        waiter.acquire()
    assert said and "waiting for another s3rules run (another-machine" in said[0]
    here = json.loads(holder._body())
    body.update(host=here["host"], boot=here["boot"])     # the same dead holder, on this machine
    client.put_object(Bucket=holder.bucket, Key=holder.key, Body=json.dumps(body).encode())
    heir = Lease(url, client, ttl=30, wait=1)
    heir.acquire()
    assert heir.held
    heir.release()


def test_the_python_api_monitor_shows_a_tqdm_summary(flow, calls, capsys):
    """README, The Python API: 'statuses = helper.monitor()    # tqdm summary until all are done:
    {jobId: "SUCCEEDED" | "FAILED"}'."""
    from s3rules.api import AWSBatchHelper
    helper = AWSBatchHelper(flow.queue, poll_interval=0.2)
    ok = helper.add_job("fine", flow.jd, command=["true"])
    bad = helper.add_job("broken", flow.jd, command=["bash", "-c", "exit 3"])
    capsys.readouterr()
    assert helper.monitor() == {ok: "SUCCEEDED", bad: "FAILED"}
    err = capsys.readouterr().err
    assert re.search(r"batch: 100%\|.*\| 2/2 \[", err), err
