"""The Batchfile language for real pipelines: config files, includes, several joined sheets, list
variables, named inputs and outputs, logs, params, per-job resources, temp(), when:, and the
Snakemake habits that get a hint. Each construct's meaning, and each error class with its message."""
import json
import os
import textwrap
from pathlib import Path

import pytest

from s3rules.errors import BatchfileError, PlanError, SampleSheetError
from s3rules.language.loader import load_workflow
from s3rules.planner import Planner, plan
from s3rules.storage import Storage
from workflows import s3rules

SAMPLES = "sample\tcondition\tmem_mb\nA\ttreated\t1024\nB\tuntreated\t2048\n"
UNITS = ("sample\tunit\tlayout\tfq1\tfq2\n"
         "A\t1\tpaired\tdata/A1_1.fq\tdata/A1_2.fq\n"
         "A\t2\tsingle\tdata/A2.fq\t\n"
         "B\t1\tsingle\tdata/B1.fq\tdata/B1.fq\n")
SHEETS = '''
samples: "samples.tsv"
sheet units: "units.tsv"
    key: sample, unit
'''
MAPPING = SHEETS + '''
rule map_pe:
    when: layout == "paired"
    input:
        reads: "{fq1}", "{fq2}"
        ref: "genome.fa"
    output:
        bam: temp("mapped/{sample}-{unit}.bam")
    log: "logs/{sample}-{unit}.log"
    params:
        rg: "@RG\\tID:{unit}\\tSM:{sample}"
    memory: "{mem_mb}"
    shell: "bwa mem -R {params.rg} {input.ref} {input.reads} > {output.bam} 2> {log}"

rule map_se:
    when: layout == "single"
    input:
        reads: "{fq1}"
        ref: "genome.fa"
    output:
        bam: temp("mapped/{sample}-{unit}.bam")
    shell: "bwa mem {input.ref} {input.reads} > {output.bam}"

rule merge:
    input: expand("mapped/{sample}-{unit}.bam")
    output: "merged/{sample}.bam"
    shell: "samtools merge {output} {input}"
'''


@pytest.fixture(autouse=True)
def here(tmp_path, monkeypatch):
    """Messages name files relative to the current directory: the workflow's."""
    monkeypatch.chdir(tmp_path)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if name.endswith(("Batchfile", ".batch")) else text)
    return root / "Batchfile"


def load(root: Path, batchfile: str, files: dict[str, str] | None = None, **kwargs):
    path = write(root, {"Batchfile": batchfile, **(files or {})})
    return load_workflow(os.path.relpath(path), **kwargs)


def jobs(workflow, targets=(), **kwargs) -> dict[str, str]:
    p = plan(workflow, Storage(), targets, check_sources=False, **kwargs)
    return {job.describe(): reason for job, reason in p.pending.items()}


def error(root: Path, batchfile: str, files=None, cls=BatchfileError, **kwargs) -> str:
    with pytest.raises(cls) as info:
        wf = load(root, batchfile, files, **kwargs)
        plan(wf, Storage(), check_sources=False)
    return str(info.value)


# -- config files and includes ---------------------------------------------------------------
def test_a_config_file_gives_variables_lists_and_dotted_keys(tmp_path):
    wf = load(tmp_path, '''
        configfile: "config.yaml"
        root = "out"
        rule all:
            input: expand("{root}/{contig}.txt")
        rule a:
            output: "{root}/{contig}.txt"
            shell: "trim -a {trim.adapter} -q {trim.quality} {contig} > {output}"
        ''', {"config.yaml": "root: results\ntrim:\n  adapter: AGATC\n  quality: 20\ncontig: [I, II]\n"})
    assert jobs(wf) == {"a[contig=I]": "missing", "a[contig=II]": "missing"}
    job = Planner(wf).jobs_of_rule(wf.rules["a"])[1]
    assert job.outputs == (str(tmp_path / "results" / "II.txt"),)   # the config file wins over the Batchfile
    assert job.command() == f"trim -a AGATC -q 20 II > {tmp_path}/results/II.txt"


def test_configfile_option_replaces_it_and_config_wins_over_both(tmp_path):
    files = {"config.yaml": "root: a\ncontig: [I]\n", "other.json": '{"root": "b", "contig": ["X", "Y"]}'}
    text = 'configfile: "config.yaml"\nrule all:\n    input: expand("{root}/{contig}.txt")\n' \
           'rule a:\n    output: "{root}/{contig}.txt"\n    shell: "touch {output}"\n'
    assert jobs(load(tmp_path, text, files)) == {"a[contig=I]": "missing"}
    wf = load(tmp_path, text, files, configfile=str(tmp_path / "other.json"))
    assert jobs(wf) == {"a[contig=X]": "missing", "a[contig=Y]": "missing"}
    wf = load(tmp_path, text, files, config={"root": "c", "contig": "P,Q,R"})
    assert [j.outputs[0][len(str(tmp_path)) + 1:] for j in Planner(wf).jobs_of_rule(wf.rules["a"])] == \
        ["c/P.txt", "c/Q.txt", "c/R.txt"]


def test_config_file_errors_are_located(tmp_path):
    text = 'configfile: "config.yaml"\nrule a:\n    output: "o.txt"\n    shell: "x"\n'
    message = error(tmp_path, text, {"config.yaml": "a: [1\nb: 2\n"})
    assert message.startswith("config.yaml:2:") or "config.yaml:" in message
    assert "not valid YAML or JSON" in message
    assert "holds plain values" in error(tmp_path, text, {"config.yaml": "a:\n  - {x: 1}\n"})
    assert "--config nope=...: the Batchfile has no variable 'nope'" in \
        error(tmp_path, text, {"config.yaml": "a: 1\n"}, config={"nope": "1"})


def test_include_brings_rules_and_variables_with_paths_relative_to_that_file(tmp_path):
    wf = load(tmp_path, '''
        include: "rules/qc.batch"
        rule all:
            input: expand("{qcdir}/{contig}.html")
        ''', {"rules/qc.batch": '''
        qcdir = "qc"
        contig = ["I", "II"]
        rule qc:
            input: "../data/{contig}.fq"
            output: "{qcdir}/{contig}.html"
            shell: "fastqc {input} > {output}"
        '''})
    assert wf.default_rule == "all"   # the main file's first rule, not the included one's
    job = Planner(wf).jobs_of_rule(wf.rules["qc"])[0]
    assert job.inputs == (str(tmp_path / "data" / "I.fq"),)
    assert job.outputs == (str(tmp_path / "rules" / "qc" / "I.html"),)
    assert jobs(wf, ["all"]) == {}   # rules/qc/... is not what all asks for: no producer, a source


def test_include_errors_are_located(tmp_path):
    message = error(tmp_path, 'include: "nope.batch"\nrule a:\n    input: "x"\n')
    assert message.startswith("Batchfile:1:10: no such file to include: ")
    message = error(tmp_path, 'include: "b.batch"\nrule a:\n    input: "x"\n', {"b.batch": 'include: "Batchfile"\n'})
    assert "includes itself" in message and "b.batch:1:10" in message


# -- several sheets ------------------------------------------------------------------------------
def test_a_units_sheet_joins_samples_and_jobs_see_both_rows(tmp_path):
    wf = load(tmp_path, MAPPING, {"samples.tsv": SAMPLES, "units.tsv": UNITS})
    planner = Planner(wf)
    merge_a = planner.producer(str(tmp_path / "merged" / "A.bam"))
    assert [d.describe() for d in _deps(planner, merge_a)] == ["map_pe[sample=A, unit=1]", "map_se[sample=A, unit=2]"]
    pe = _deps(planner, merge_a)[0]
    assert pe.namespace()["condition"] == "treated" and pe.namespace()["fq2"] == "data/A1_2.fq"
    assert pe.settings.memory == 1024
    assert pe.command(str(tmp_path)) == ("bwa mem -R '@RG\tID:1\tSM:A' genome.fa data/A1_1.fq data/A1_2.fq "
                                         "> mapped/A-1.bam 2> logs/A-1.log")
    merge_b = planner.producer(str(tmp_path / "merged" / "B.bam"))
    se = _deps(planner, merge_b)[0]
    assert se.describe() == "map_se[sample=B, unit=1]" and se.settings.memory == 2048


def _deps(planner, job):
    return [dep for _, dep in planner.dependencies(job) if dep is not None]


def test_a_shared_column_that_is_no_key_is_an_error_naming_both_files(tmp_path):
    message = error(tmp_path, SHEETS + 'rule a:\n    input: "x"\n',
                    {"samples.tsv": "sample\tlayout\nA\tp\n", "units.tsv": UNITS}, cls=BatchfileError)
    assert "column 'layout' is in both samples.tsv and units.tsv" in message


def test_a_join_to_a_missing_row_is_a_sheet_error(tmp_path):
    message = error(tmp_path, SHEETS + 'rule a:\n    input: "x"\n',
                    {"samples.tsv": SAMPLES, "units.tsv": UNITS.replace("B\t1", "Z\t1")}, cls=SampleSheetError)
    assert message.startswith("units.tsv:4:sample: 'Z' is not a key of samples.tsv")


def test_a_composite_key_must_be_unique_and_filled(tmp_path):
    dup = UNITS + "A\t1\tsingle\tx.fq\t\n"
    assert error(tmp_path, SHEETS + 'rule a:\n    input: "x"\n', {"samples.tsv": SAMPLES, "units.tsv": dup},
                 cls=SampleSheetError).startswith("units.tsv:5:unit: duplicate key ('A', '1')")
    assert "units.tsv: has no column 'unt'" in error(
        tmp_path, SHEETS.replace("sample, unit", "sample, unt") + 'rule a:\n    input: "x"\n',
        {"samples.tsv": SAMPLES, "units.tsv": UNITS}).replace("units.tsv has", "units.tsv: has")


def test_an_empty_cell_is_allowed_until_a_job_uses_it(tmp_path):
    files = {"samples.tsv": SAMPLES, "units.tsv": UNITS}
    wf = load(tmp_path, MAPPING.replace('layout == "paired"', 'sample == "A"').replace(
        'layout == "single"', 'sample == "B"'), files)
    with pytest.raises(SampleSheetError) as info:
        jobs(wf, [str(tmp_path / "merged" / "A.bam")])
    assert str(info.value).startswith("units.tsv:3:fq2: this value is empty, and job map_pe[sample=A, unit=2] "
                                      "uses {fq2}")
    assert jobs(load(tmp_path, MAPPING, files), [str(tmp_path / "merged" / "A.bam")])   # when: keeps it unused


# -- list variables and dimensions ---------------------------------------------------------------
def test_expand_takes_joined_rows_times_lists_filtered_by_the_jobs_wildcards(tmp_path):
    wf = load(tmp_path, MAPPING + '''
contig = ["I", "II"]
vartype = ["snvs", "indels"]
rule all:
    input: expand("joint/{contig}.{vartype}.vcf")
rule call:
    input: "merged/{sample}.bam"
    output: "calls/{sample}/{contig}.vcf"
    shell: "call -r {contig} {input} > {output}"
rule joint:
    input: expand("calls/{sample}/{contig}.vcf")
    output: "joint/{contig}.{vartype}.vcf"
    shell: "merge --type {vartype} {input} > {output}"
''', {"samples.tsv": SAMPLES, "units.tsv": UNITS})
    planner = Planner(wf)
    everything = planner.jobs_of_rule(wf.rules["all"])[0]
    assert [p[len(str(tmp_path)) + 1:] for p in everything.inputs] == [
        "joint/I.snvs.vcf", "joint/I.indels.vcf", "joint/II.snvs.vcf", "joint/II.indels.vcf"]
    joint = planner.producer(everything.inputs[2])
    assert joint.describe() == "joint[contig=II, vartype=snvs]"
    assert [p[len(str(tmp_path)) + 1:] for p in joint.inputs] == ["calls/A/II.vcf", "calls/B/II.vcf"]
    assert len(jobs(wf, ["all"])) == 4 + 4 + 2 + 3   # joint, call, merge, map


def test_a_wildcard_named_after_a_list_or_column_only_takes_its_values(tmp_path):
    wf = load(tmp_path, '''
        samples: "samples.tsv"
        contig = ["I", "II"]
        rule a:
            output: "out/{sample}.{contig}.txt"
            shell: "touch {output}"
        rule b:
            output: "out/{sample}.{x}.txt"
            shell: "touch {output}"
        ''', {"samples.tsv": "sample\nA.1\nB\n"})
    planner = Planner(wf)
    # a's {contig} cannot be III: only b makes it; for II both can, which is ambiguous
    assert planner.producer(str(tmp_path / "out/A.1.III.txt")).describe() == "b[sample=A.1, x=III]"
    with pytest.raises(PlanError, match=r"out/A.1.II.txt can be made by several rules \('a', 'b'\)"):
        planner.producer(str(tmp_path / "out/A.1.II.txt"))
    assert planner.producer(str(tmp_path / "out/C.I.txt")) is None
    assert "'C' is not a value of the column sample" in planner.why_not_made(str(tmp_path / "out/C.I.txt"))


def test_lines_reads_a_list_from_a_file(tmp_path):
    wf = load(tmp_path, '''
        chrom = lines("genome.fai", field=2)
        rule all:
            input: expand("out/{chrom}.txt")
        rule a:
            output: "out/{chrom}.txt"
            shell: "touch {output}"
        ''', {"genome.fai": "x\tchr1\t5\n\ny\tchr2\t6\n"})
    assert wf.lists["chrom"].values == ("chr1", "chr2") and not wf.lists["chrom"].made_by_rule
    assert jobs(wf) == {"a[chrom=chr1]": "missing", "a[chrom=chr2]": "missing"}
    assert "lines(): nope.fai does not exist and no rule makes it" in \
        error(tmp_path, 'c = lines("nope.fai")\nrule a:\n    input: "x"\n')


# -- named files, logs, params, resources --------------------------------------------------------
def test_inputs_keep_their_positions_and_names(tmp_path):
    wf = load(tmp_path, SHEETS + '''
rule a:
    input:
        "genome.fa"
        reads: "{fq1}", "{fq2}"
    output: "o/{sample}-{unit}.txt"
    shell: "x {input[0]} {input[2]} {input.reads[1]} {input.reads} > {output}"
''', {"samples.tsv": SAMPLES, "units.tsv": UNITS})
    job = Planner(wf).producer(str(tmp_path / "o/B-1.txt"))
    assert len(job.inputs) == 3   # B's two read columns hold the same file: both positions stay
    assert job.command(str(tmp_path)) == "x genome.fa data/B1.fq data/B1.fq data/B1.fq data/B1.fq > o/B-1.txt"


def test_named_and_indexed_names_are_checked_when_loading(tmp_path):
    base = 'rule a:\n    input:\n        ref: "g.fa"\n    output: "o/{x}.txt"\n    shell: "{}"\n'
    assert "rule 'a' names no input 'reds' (its named inputs: ref)" in \
        error(tmp_path, base.replace("{}", "x {input.reds}"))
    assert "rule 'a' has 1 input (indexes start at 0)" in error(tmp_path, base.replace("{}", "x {input[1]}"))
    assert "rule 'a' has no params:" in error(tmp_path, base.replace("{}", "x {params.rg}"))
    assert "rule 'a' has no log:" in error(tmp_path, base.replace("{}", "x 2> {log}"))
    assert "an unnamed input after named ones" in error(
        tmp_path, 'rule a:\n    input:\n        ref: "g.fa"\n        "x"\n    output: "o.txt"\n    shell: "x"\n')


def test_a_log_must_use_every_wildcard(tmp_path):
    message = error(tmp_path, 'rule a:\n    output: "o/{x}.txt"\n    log: "logs/a.log"\n    shell: "x"\n')
    assert message.startswith("Batchfile:3:10: this log of rule 'a' does not use {x}")


def test_a_resource_read_from_a_column_is_checked_per_job(tmp_path):
    text = 'samples: "s.tsv"\nrule all:\n    input: expand("o/{sample}.txt")\nrule a:\n' \
           '    output: "o/{sample}.txt"\n    memory: "{mem}"\n    shell: "x {memory}"\n'
    wf = load(tmp_path, text, {"s.tsv": "sample\tmem\nA\t512\nB\tlots\n"})
    with pytest.raises(SampleSheetError) as info:
        jobs(wf)
    assert str(info.value) == "s.tsv:3:mem: memory of job a[sample=B] is 'lots' (from {mem}), which is not a number"
    assert "'memory' in default: takes a number" in error(tmp_path, 'default:\n    memory: "{mem}"\n' + text[17:],
                                                          {"s.tsv": "sample\tmem\nA\t1\n"})


# -- when: -----------------------------------------------------------------------------------------
def test_exactly_one_condition_must_hold_for_each_job(tmp_path):
    files = {"samples.tsv": SAMPLES, "units.tsv": UNITS}
    both = MAPPING.replace('layout == "single"', 'layout == "single" or unit == "1"')
    with pytest.raises(PlanError, match=r"mapped/A-1.bam: the when: conditions of rules 'map_pe' and 'map_se' "
                                        r"all hold for sample=A, unit=1"):
        jobs(load(tmp_path, both, files), [str(tmp_path / "merged/A.bam")])
    neither = MAPPING.replace('layout == "single"', 'layout == "single" and unit == "1"')
    with pytest.raises(PlanError, match=r"mapped/A-2.bam: no when: condition of rules 'map_pe' \(when: "
                                        r"layout == \"paired\"\) and 'map_se' .* holds for sample=A, unit=2"):
        jobs(load(tmp_path, neither, files), [str(tmp_path / "merged/A.bam")])


def test_a_condition_false_for_the_only_maker_makes_the_path_a_source(tmp_path):
    text = 'samples: "s.tsv"\nrule all:\n    input: expand("o/{sample}.txt")\nrule a:\n' \
           '    when: kind != "skip" and sample not in ["Z"]\n    output: "o/{sample}.txt"\n    shell: "x"\n'
    wf = load(tmp_path, text, {"s.tsv": "sample\tkind\nA\tdo\nB\tskip\n"})
    with pytest.raises(PlanError, match=r"missing input o/B.txt: .* \(rule 'a' makes it only when kind != \"skip\""):
        plan(wf, Storage())
    assert [j.describe() for j in Planner(wf).jobs_of_rule(wf.rules["a"])] == ["a[sample=A]"]


@pytest.mark.parametrize("condition, output, fragment", [
    ("layot == 'paired'", "{sample}/{unit}", "unknown name layot in the when: of rule 'a' (did you mean layout?)"),
    ("fq1 in 'x'", "{sample}/{unit}", "the right side of `in` is a list"),
    ("condition == 'x'", "{fq1}/{unit}", "'condition' is a column of samples.tsv, but the outputs of rule 'a' "
                                         "have no {sample} wildcard"),
])
def test_condition_names_are_checked_when_loading(tmp_path, condition, output, fragment):
    text = SHEETS + f'rule a:\n    when: {condition}\n    output: "o/{output}.txt"\n    shell: "x"\n'
    message = error(tmp_path, text, {"samples.tsv": SAMPLES, "units.tsv": UNITS})
    assert fragment in message and "Batchfile:6:" in message


# -- what a Snakemake user writes ----------------------------------------------------------------
@pytest.mark.parametrize("text, fragment", [
    ('rule a:\n    output: "o"\n    threads: 4\n    shell: "x"\n', "unknown key 'threads' in rule 'a': write vcpus:"),
    ('l = [1]\nrule a:\n    input: expand("{l}.{b}", b=[1])\n', "expand fills {b} itself"),
    ('rule a:\n    output: "o/{x}"\n    shell: "x {wildcards.x}"\n', "{wildcards.x}: write {x}"),
    ('rule a:\n    input: "a",\n        "b"\n', "a list does not continue on the next line after a trailing ','"),
    ('l = [1]\nrule a:\n    input: expand("{l}.{b}")\n', "expand fills {b} from sheet columns and list variables, "
                                                          "and b is neither (it knows: l)"),
])
def test_snakemake_habits_get_a_hint(tmp_path, text, fragment):
    assert fragment in error(tmp_path, text)


def test_braces_in_paths_and_variables_stay_whole(tmp_path):
    wf = load(tmp_path, 'v = "a{b}c"\nrule a:\n    input: "data/{{x}}.txt", "data/{v}.txt"\n'
                        '    output: "out/{{y}}.txt"\n    shell: "cat {input} > {output}"\n')
    job = Planner(wf).jobs_of_rule(wf.rules["a"])[0]
    assert job.inputs == (f"{tmp_path}/data/{{x}}.txt", f"{tmp_path}/data/a{{b}}c.txt")
    assert job.outputs == (f"{tmp_path}/out/{{y}}.txt",)


# -- temp files, directories and checkpoints, run end to end -------------------------------------
def test_temp_files_go_once_consumed_and_never_make_a_done_job_pending(tmp_path):
    write(tmp_path, {"Batchfile": '''
        rule all:
            input: "out/final.txt"
        rule a:
            output: temp("tmp/a.txt")
            shell: "echo a > {output}"
        rule b:
            input: "tmp/a.txt"
            output: "out/final.txt"
            shell: "cat {input} > {output}"
        '''})
    first = s3rules("run", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out/final.txt").read_text() == "a\n" and not (tmp_path / "tmp/a.txt").exists()
    again = s3rules("run", "-n", cwd=tmp_path)
    assert "nothing to do" in again.stdout, again
    forced = s3rules("run", "-n", "-f", "out/final.txt", cwd=tmp_path)
    assert "a   " in forced.stdout or "a " in forced.stdout
    assert "tmp/a.txt" in forced.stdout   # b must rerun, so the temp file is made again
    kept = s3rules("run", "-q", "-f", "out/final.txt", "--keep-temp", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert (tmp_path / "tmp/a.txt").exists()


def test_a_directory_output_counts_as_made(tmp_path):
    write(tmp_path, {"Batchfile": '''
        rule all:
            input: "out/listing.txt"
        rule index:
            output: directory("out/index")
            shell: "mkdir -p {output}/sub && echo x > {output}/sub/genome"
        rule use:
            input: "out/index", "ref"
            output: "out/listing.txt"
            shell: "ls {input[0]} > {output}"
        ''', "ref/file.txt": "a directory given as a source input\n"})
    first = s3rules("run", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out/listing.txt").read_text() == "sub\n"
    again = s3rules("run", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_a_checkpoint_file_is_made_then_the_rest_is_planned(tmp_path):
    write(tmp_path, {"Batchfile": '''
        chrom = lines("ref/genome.fai")
        rule all:
            input: expand("out/{chrom}.txt")
        rule faidx:
            input: "ref/genome.fa"
            output: "ref/genome.fai"
            shell: "grep '>' {input} | tr -d '>' > {output}"
        rule per_chrom:
            output: "out/{chrom}.txt"
            shell: "echo {chrom} > {output}"
        ''', "ref/genome.fa": ">chr1\nACGT\n>chr2\nGGCC\n"})
    dry = s3rules("run", "-n", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "faidx" in dry.stdout and "waits for ref/genome.fai" in dry.stdout
    assert "per_chrom" not in dry.stdout.split("waits for")[0].split("faidx")[-1]
    run = s3rules("run", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out/chr1.txt").read_text() == "chr1\n" and (tmp_path / "out/chr2.txt").exists()
    again = s3rules("run", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_a_list_named_like_a_column_is_an_error(tmp_path):
    message = error(tmp_path, 'samples: "s.tsv"\nsample = ["A"]\nrule a:\n    input: "x"\n', {"s.tsv": "sample\nA\n"})
    assert message.startswith("Batchfile:2:1: 'sample' is both a list variable and a column of s.tsv")
    assert "holds a value twice" in error(tmp_path, 'c = ["I", "I"]\nrule a:\n    input: "x"\n')


CHECKPOINT = '''
    chrom = lines("list.txt")
    rule all:
        input: "merged.txt"
    rule make_list:
        output: "list.txt"
        shell: "printf 'a\\\\nb\\\\n' > {output}"
    rule per_chrom:
        output: "per/{chrom}.txt"
        shell: "echo {chrom} > {output}"
    rule merge:
        input: expand("per/{chrom}.txt")
        output: "merged.txt"
        shell: "cat {input} > {output}"
    '''


def test_jobs_behind_a_checkpoint_are_pending_and_their_targets_wait(tmp_path):
    write(tmp_path, {"Batchfile": CHECKPOINT})
    dry = s3rules("run", "-n", "--json", cwd=tmp_path)
    summary = json.loads(dry.stdout)["summary"]   # waiting for the list is not done
    assert summary["rules"]["merge"] == {"pending": 1, "done": 0, "total": 1} and summary["done"] == 0
    by_rule = s3rules("run", "-q", "per_chrom", cwd=tmp_path)   # the rule's jobs are listed once the list is read
    assert by_rule.returncode == 0, by_rule.stderr
    assert sorted(p.name for p in (tmp_path / "per").iterdir()) == ["a.txt", "b.txt"]
    (tmp_path / "list.txt").unlink()
    for p in (tmp_path / "per").iterdir():
        p.unlink()
    by_path = s3rules("run", "-q", "per/a.txt", cwd=tmp_path)   # a value of the list that is not read yet
    assert by_path.returncode == 0, by_path.stderr
    assert [p.name for p in (tmp_path / "per").iterdir()] == ["a.txt"]


def test_forcing_everything_across_a_checkpoint_runs_each_job_once(tmp_path):
    write(tmp_path, {"Batchfile": CHECKPOINT})
    assert s3rules("run", "-q", cwd=tmp_path).returncode == 0
    forced = s3rules("run", "-F", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.count("done make_list") == 1
    assert forced.stderr.count("done per_chrom[chrom=a]") == 1 and forced.stderr.count("done merge") == 1
    assert (tmp_path / "merged.txt").read_text() == "a\nb\n"


def test_a_sheet_path_used_in_an_included_file_is_relative_to_the_main_batchfile(tmp_path):
    wf = load(tmp_path, 'samples: "s.tsv"\nrule all:\n    input: expand("out/{sample}.txt")\ninclude: "rules/c.batch"\n',
              {"s.tsv": "sample\treads\nA\tdata/A.txt\n", "data/A.txt": "x\n",
               "rules/c.batch": 'rule copy:\n    input: "{reads}"\n    output: "../out/{sample}.txt"\n'
                                '    shell: "cp {input} {output}"\n'})
    assert Planner(wf).jobs_of_rule(wf.rules["copy"])[0].inputs == (str(tmp_path / "data" / "A.txt"),)


def test_a_named_group_may_take_a_block_of_lines(tmp_path):
    wf = load(tmp_path, 'rule a:\n    input:\n        ref: "g.fa"\n        idx:\n            "i.1"\n            "i.2"\n'
                        '    output: "o.txt"\n    shell: "x {input.idx[1]} {input.ref}"\n')
    job = Planner(wf).jobs_of_rule(wf.rules["a"])[0]
    assert job.command(str(tmp_path)) == "x i.2 g.fa"


def test_conditions_compare_numbers_only_as_a_batchfile_writes_them(tmp_path):
    text = 'samples: "s.tsv"\nrule a:\n    when: lot == 10\n    output: "o/{sample}.txt"\n    shell: "x"\n'
    wf = load(tmp_path, text, {"s.tsv": "sample\tlot\nA\t10.0\nB\t1_0\nC\t 10\nD\t10\n"})
    assert [j.describe() for j in Planner(wf).jobs_of_rule(wf.rules["a"])] == ["a[sample=A]", "a[sample=D]"]


# -- found by a read of the change --------------------------------------------------------------
def test_a_temp_file_a_target_list_names_is_made_and_kept(tmp_path):
    write(tmp_path, {"Batchfile": 'rule all:\n    input: "out/t.txt"\nrule mk:\n    output: temp("out/t.txt")\n'
                                  '    shell: "echo t > {output}"\n'})
    run = s3rules("run", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out/t.txt").read_text() == "t\n"


def test_a_directory_output_exists_empty_before_its_job_starts(tmp_path):
    write(tmp_path, {"Batchfile": 'rule idx:\n    output: directory("res/idx")\n    shell: "echo x > {output}/genome"\n'})
    run = s3rules("run", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "res/idx/genome").read_text() == "x\n"


def test_a_group_named_like_a_list_method_works(tmp_path):
    wf = load(tmp_path, 'rule a:\n    input:\n        ref: "g.fa"\n        index: "g.fai"\n        count: "c"\n'
                        '    output: "o.txt"\n    shell: "x {input.index} {input.count[0]} {input.ref}"\n')
    assert Planner(wf).jobs_of_rule(wf.rules["a"])[0].command(str(tmp_path)) == "x g.fai c g.fa"


def test_config_keys_never_shadow_columns_or_command_names(tmp_path):
    text = 'configfile: "c.yaml"\nsamples: "s.tsv"\nrule a:\n    input: "x"\n'
    assert "'sample' is both a variable and a column of s.tsv" in \
        error(tmp_path, text, {"c.yaml": "sample: S1\n", "s.tsv": "sample\nA\n"})
    assert "config key 'params.extra': {params} means the job's own params" in \
        error(tmp_path, text, {"c.yaml": "params:\n  extra: x\n", "s.tsv": "sample\nA\n"})


def test_a_variable_may_use_a_key_only_the_config_file_has(tmp_path):
    wf = load(tmp_path, 'configfile: "c.yaml"\nref = "{genome_dir}/genome.fa"\nrule a:\n    output: "o.txt"\n'
                        '    shell: "echo {ref} > {output}"\n', {"c.yaml": "genome_dir: /refs\n"})
    assert wf.variables["ref"] == "/refs/genome.fa"


def test_a_resource_from_a_variable_is_a_number_even_in_default(tmp_path):
    wf = load(tmp_path, 'mem = 4096\ndefault:\n    memory: "{mem}"\nrule a:\n    output: "o.txt"\n    shell: "x"\n')
    assert wf.rules["a"].settings.memory == 4096 and not wf.rules["a"].resources


def test_a_done_jobs_resource_cell_gone_bad_is_a_located_error(tmp_path):
    files = {"Batchfile": 'samples: "s.tsv"\nrule all:\n    input: expand("o/{sample}.txt")\nrule a:\n'
                          '    output: "o/{sample}.txt"\n    memory: "{mem}"\n    shell: "echo {memory} > {output}"\n',
             "s.tsv": "sample\tmem\nA\t100\n"}
    write(tmp_path, files)
    assert s3rules("run", "-q", cwd=tmp_path).returncode == 0
    (tmp_path / "s.tsv").write_text("sample\tmem\nA\t8G\n")
    dry = s3rules("run", "-n", cwd=tmp_path)
    assert dry.returncode == 2 and "Traceback" not in dry.stderr
    assert dry.stderr.startswith("s3rules: error: s.tsv:2:mem: memory of job a[sample=A] is '8G'"), dry.stderr


def test_a_temp_file_read_behind_a_checkpoint_is_made_once(tmp_path):
    write(tmp_path, {"Batchfile": '''
        chrom = lines("list.txt")
        rule all:
            input: "merged.txt"
        rule make_list:
            output: "list.txt"
            shell: "printf 'a\\\\nb\\\\n' > {output}"
        rule prep:
            output: temp("prep.txt")
            shell: "echo run >> runs.log; echo p > {output}"
        rule merge:
            input: "prep.txt", expand("per/{chrom}.txt")
            output: "merged.txt"
            shell: "cat {input} > {output}"
        rule per_chrom:
            output: "per/{chrom}.txt"
            shell: "echo {chrom} > {output}"
        '''})
    run = s3rules("run", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "runs.log").read_text() == "run\n" and not (tmp_path / "prep.txt").exists()
    assert (tmp_path / "merged.txt").read_text() == "p\na\nb\n"


def test_a_variable_set_in_two_files_names_both(tmp_path):
    message = error(tmp_path, 'v = "1"\ninclude: "b.batch"\nrule a:\n    input: "x"\n', {"b.batch": 'v = "2"\n'})
    assert "b.batch:1:1: variable 'v' is set twice (first on line 1 of Batchfile)" in message
