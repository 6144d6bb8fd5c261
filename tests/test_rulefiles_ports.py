"""The ports of public pipelines in rulefiles/ run out of the box, with the installed console
script, on a copy of their directory: every final output is there and holds what the dataflow
puts in it (a call per planted variant, a genotype column per sample, a record per contig),
logs are written, temp() files are gone, and a second run has nothing to do.

rulefiles/tutorial: the Snakemake tutorial (bwa_map ... plot_quals).
rulefiles/variants: snakemake-workflows/dna-seq-gatk-variant-calling (units, when:, include:,
lines() of a made file, scatter per sample x contig, gathers, directory() outputs).
"""
import gzip
import json
import shutil
from pathlib import Path

from workflows import s3rules

RULEFILES = Path(__file__).resolve().parent.parent / "rulefiles"
OUTPUTS = ("mapped_reads", "sorted_reads", "calls", "plots", "results", "resources", "logs", ".s3rules")


def copy(name: str, tmp_path: Path) -> Path:
    """The port's directory without any outputs of a run made in place."""
    target = tmp_path / name
    shutil.copytree(RULEFILES / name, target, ignore=shutil.ignore_patterns(*OUTPUTS))
    return target / "Batchfile"


def run(*args: str, cwd: Path):
    r = s3rules(*args, cwd=cwd, timeout=60)
    assert r.returncode == 0, f"s3rules {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def assert_nothing_left(batchfile: Path) -> None:
    """A second run does nothing, and `run -n` lists nothing pending."""
    again = run("run", str(batchfile), cwd=batchfile.parent.parent)
    assert "nothing to do" in again.stdout + again.stderr and "to run" not in again.stderr   # no job ran
    dry = run("run", "-n", "--json", str(batchfile), cwd=batchfile.parent.parent)
    doc = json.loads(dry.stdout)
    assert doc["jobs"] == [] and doc["summary"]["pending"] == 0, doc
    table = run("run", "-n", str(batchfile), cwd=batchfile.parent.parent)
    assert "nothing to do" in table.stdout + table.stderr


def records(lines) -> tuple[list[str], list[list[str]]]:
    """(the #CHROM header's columns, the records' columns) of a VCF's lines."""
    lines = list(lines)
    header = next(line for line in lines if line.startswith("#CHROM")).split("\t")
    return header, [line.split("\t") for line in lines if line and not line.startswith("#")]


def vcf_gz(path: Path):
    return records(gzip.decompress(path.read_bytes()).decode().splitlines())


def genotypes(header, recs) -> dict[tuple[str, int], dict[str, str]]:
    """(contig, pos) -> {sample: GT}."""
    samples = header[9:]
    return {(r[0], int(r[1])): {s: r[9 + i].split(":")[0] for i, s in enumerate(samples)} for r in recs}


def test_tutorial_port_runs_and_its_calls_come_from_the_reads(tmp_path):
    batchfile = copy("tutorial", tmp_path)
    wd = batchfile.parent
    first = run("run", str(batchfile), cwd=tmp_path)
    assert "11 jobs" in first.stderr

    header, recs = records((wd / "calls" / "all.vcf").read_text().splitlines())
    assert header[9:] == ["A", "B", "C"]     # one column per row of samples.tsv
    assert genotypes(header, recs) == {      # the SNVs planted in data/samples/*.fastq
        ("I", 50): {"A": "0/1", "B": "1/1", "C": "0/0"},
        ("I", 130): {"A": "0/0", "B": "0/0", "C": "1/1"},
        ("II", 90): {"A": "1/1", "B": "0/0", "C": "0/0"},
        ("II", 170): {"A": "0/0", "B": "1/1", "C": "1/1"},
    }
    assert "##source=bcftools call -mv -P 0.001" in (wd / "calls" / "all.vcf").read_text()   # config.yaml
    svg = (wd / "plots" / "quals.svg").read_text()
    assert svg.startswith("<svg") and "4 calls" in svg and svg.count("<rect") >= 4

    for sample in "ABC":
        sam = (wd / "sorted_reads" / f"{sample}.bam").read_text().splitlines()
        assert f"@RG\tID:{sample}\tSM:{sample}" in sam                      # params.rg
        body = [line.split("\t") for line in sam if not line.startswith("@")]
        assert [(r[2], int(r[3])) for r in body] == sorted((r[2], int(r[3])) for r in body)
        index = dict(line.split("\t") for line in (wd / "sorted_reads" / f"{sample}.bam.bai").read_text().splitlines())
        assert sum(map(int, index.values())) == len(body) == 52
        assert "Processed 52 reads" in (wd / "logs" / "bwa_mem" / f"{sample}.log").read_text()
        assert not (wd / "mapped_reads" / f"{sample}.bam").exists()         # temp(): read, then removed
    assert "3 samples, 4 variant sites" in (wd / "logs" / "bcftools_call" / "all.log").read_text()

    assert_nothing_left(batchfile)

    # a config value reaches only the jobs that use it; the temp BAMs are not made again
    changed = run("run", str(batchfile), "--config", "prior_mutation_rate=0.01", cwd=tmp_path)
    assert "2 jobs" in changed.stderr and "bwa_map" not in changed.stderr
    assert "-P 0.01" in (wd / "calls" / "all.vcf").read_text()
    assert not list((wd / "mapped_reads").glob("*.bam"))


# The variants port: the SNVs planted in data/reads, per contig, and who carries them.
PLANTED = {
    ("I", 60): {"A": "1/1", "B": "1/1"},      # rs1000 in the known variants
    ("II", 100): {"A": "1/1", "B": "0/0"},
    ("II", 158): {"A": "0/0", "B": "0/1"},    # a sequencing error in one read of B
    ("II", 180): {"A": "0/0", "B": "1/1"},
    ("III", 30): {"A": "0/0", "B": "1/1"},
    ("III", 150): {"A": "1/1", "B": "0/0"},
}
UNITS = ("A-1", "B-1", "B-2")                 # B-2 is single-end (empty fq2)
CONTIGS = ("I", "II", "III")


def test_variants_port_runs_and_its_calls_come_from_every_unit_and_contig(tmp_path):
    batchfile = copy("variants", tmp_path)
    wd = batchfile.parent
    run("run", str(batchfile), cwd=tmp_path)   # plans {contig} once genome_faidx has made the .fai

    # the final VCF: a column per sample, a call per planted variant, every sample x contig
    header, recs = vcf_gz(wd / "results" / "annotated" / "all.vcf.gz")
    assert header[9:] == ["A", "B"]
    assert genotypes(header, recs) == PLANTED
    for sample in ("A", "B"):
        for contig in CONTIGS:
            assert any(gt[sample] != "0/0" for (c, _), gt in genotypes(header, recs).items() if c == contig), \
                (sample, contig)
    by_site = {(r[0], int(r[1])): r for r in recs}
    assert by_site[("I", 60)][2] == "rs1000"                                  # known variants -> IDs
    assert by_site[("II", 158)][6] == "snv-hard-filter"                       # QD < 2.0 (config.yaml)
    assert {r[6] for site, r in by_site.items() if site != ("II", 158)} == {"PASS"}
    assert "CSQ=T|missense_variant|MODERATE|TFC3|YAL001C|protein_coding|0.0721" in by_site[("I", 60)][7]   # VEP

    # scatter per sample x contig, gather per contig over samples, then over contigs in .fai order
    for sample in ("A", "B"):
        for contig in CONTIGS:
            gh, grecs = vcf_gz(wd / "results" / "called" / f"{sample}.{contig}.g.vcf.gz")
            assert gh[9:] == [sample] and {r[0] for r in grecs} == {contig}
    for contig in CONTIGS:
        ch, _ = vcf_gz(wd / "results" / "called" / f"all.{contig}.g.vcf.gz")
        assert ch[9:] == ["A", "B"]
    _, genotyped = vcf_gz(wd / "results" / "genotyped" / "all.vcf.gz")
    assert [r[0] for r in genotyped] == sorted((r[0] for r in genotyped), key=CONTIGS.index)

    table = gzip.decompress((wd / "results" / "tables" / "calls.tsv.gz").read_bytes()).decode().splitlines()
    assert len(table) == 1 + len(PLANTED) - 1                                 # PASS only
    for plot in ("depths", "allele-freqs"):
        assert (wd / "results" / "plots" / f"{plot}.svg").read_text().count("<circle") == 6   # a dot per carrier
    report = (wd / "results" / "qc" / "multiqc.html").read_text()
    assert all(f"<td>{unit}</td>" in report for unit in UNITS)                # expand over the units sheet
    assert (wd / "resources" / "vep" / "cache" / "saccharomyces_cerevisiae" / "98_R64-1-1" / "genes.tsv").is_file()
    assert (wd / "resources" / "vep" / "plugins" / "LoFtool.pm").is_file()   # directory() outputs

    # when: picked the paired-end or single-end rules per unit; logs written per job
    logs = wd / "logs"
    assert "Input Read Pairs: 39" in (logs / "trimmomatic" / "A-1.log").read_text()
    assert "Input Read Pairs: 34" in (logs / "trimmomatic" / "B-1.log").read_text()
    assert "Input Reads: 34" in (logs / "trimmomatic" / "B-2.log").read_text()
    for unit, reads in zip(UNITS, (78, 68, 34)):
        assert f"{reads}/{reads} reads mapped" in (logs / "bwa_mem" / f"{unit}.log").read_text()
        assert (logs / "picard" / "dedup" / f"{unit}.log").is_file()
        assert (logs / "gatk" / "bqsr" / f"{unit}.log").is_file()
    for sample in ("A", "B"):
        for contig in CONTIGS:
            log = logs / "gatk" / "haplotypecaller" / f"{sample}.{contig}.log"
            assert f"{sample} on {contig}:" in log.read_text()
    assert "dropped rs1002" in (logs / "fix-iupac-alleles.log").read_text()
    assert "1 records fail" in (logs / "gatk" / "variantfiltration" / "snvs.log").read_text()
    for log in ("get-genome.log", "bwa_index.log", "vep/annotate.log", "multiqc.log", "plot-stats.log"):
        assert (logs / log).is_file(), log

    # temp() outputs that a later job reads are gone once it has; the others stay
    results = wd / "results"
    gone = [f"trimmed/{u}.{m}.fastq.gz" for u in ("A-1", "B-1") for m in (1, 2)] + ["trimmed/B-2.fastq.gz"]
    gone += [f"mapped/{u}.sorted.bam" for u in UNITS] + [f"dedup/{u}.bam" for u in UNITS]
    gone += [f"genotyped/all.{c}.vcf.gz" for c in CONTIGS]
    gone += [f"filtered/all.{v}{kind}.vcf.gz" for v in ("snvs", "indels") for kind in ("", ".hardfiltered")]
    assert [p for p in gone if (results / p).exists()] == []
    assert (results / "trimmed" / "A-1.trimlog.txt").is_file() and (results / "recal" / "B-2.bam").is_file()

    assert_nothing_left(batchfile)
