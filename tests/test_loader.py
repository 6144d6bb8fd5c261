"""The semantic pass: names, keys, types and variables, each error at file:line:col."""
import dataclasses

import pytest

from s3rules.errors import BatchfileError, SampleSheetError
from s3rules.language.loader import load_workflow
from workflows import load

SHEET = "sample,group,reads\nA,g1,data/A.txt\nB,g2,data/B.txt\n"


def error_of(tmp_path, text, sheet=SHEET, config=None, cls=BatchfileError):
    with pytest.raises(cls) as info:
        load(tmp_path, text, sheet, config=config)
    return info.value


def test_variables_settings_and_defaults(tmp_path):
    wf = load(tmp_path, '''
        samples: "samples.csv"
        root = "out"
        sub = "{root}/sub"
        default:
            queue: "q1"
            vcpus: 1
            memory: 1024
            environment:
                REF: "hg38"
        rule a:
            input: "{reads}"
            output: "{sub}/{sample}.txt"
            vcpus: 2
            timeout: 600
            tags:
                project: "x"
            shell: "cat {input} > {output}"
        ''', SHEET, config={"root": "s3://bucket/run2"})
    rule = wf.rules["a"]
    assert rule.outputs[0].text == "s3://bucket/run2/sub/{sample}.txt"
    assert rule.settings.batch.queue == "q1" and rule.settings.vcpus == 2 and rule.settings.memory == 1024
    assert rule.settings.batch.timeout == 600 and rule.settings.batch.tags == (("project", "x"),)
    assert [(k, t.text) for k, t in rule.settings.environment] == [("REF", "hg38")]
    assert wf.default_rule == "a" and wf.variables == {"root": "s3://bucket/run2", "sub": "s3://bucket/run2/sub"}


def test_rules_are_built_bound_to_the_sheet_and_frozen(tmp_path):
    wf = load(tmp_path, '''
        samples: "samples.csv"
        rule all:
            input: expand("o/{group}/{sample}.txt")
        rule a:
            output: "o/{group}/{sample}.txt"
            shell: "echo {reads} > {output}"
        rule g:
            output: "g/{group}.txt"
            shell: "touch {output}"
        ''', SHEET)
    a, g, everything = wf.rules["a"], wf.rules["g"], wf.rules["all"]
    # a wildcard that is the sheet's key brings the whole row, after the wildcards
    assert (a.wildcards, a.uses_row) == (("group", "sample"), True)
    assert a.namespace == ("group", "sample", "sample", "group", "reads")
    assert (g.namespace, g.uses_row) == (("group",), False)
    assert (everything.namespace, everything.uses_row) == ((), False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.namespace = ()
    assert len({a, g, everything}) == 3 and a != wf.rules["g"]   # hashed by identity


def test_local_paths_are_relative_to_the_batchfile(tmp_path):
    wf = load(tmp_path / "wf", 'rule a:\n    input: "../data/x.txt"\n    output: "out/y.txt"\n    shell: "cp {input} {output}"\n')
    rule = wf.rules["a"]
    assert rule.inputs[0].pattern.text == str(tmp_path / "data" / "x.txt")
    assert rule.outputs[0].text == str(tmp_path / "wf" / "out" / "y.txt")


@pytest.mark.parametrize("text, line, column, fragments", [
    ('sampels: "samples.csv"\nrule a:\n    input: "x"\n', 1, 1, ["unknown top-level key 'sampels'", "did you mean 'samples'"]),
    ('rule a:\n    input: "x"\n    ouptut: "y"\n', 3, 5, ["unknown key 'ouptut'", "did you mean 'output'"]),
    ('default:\n    vcpu: 2\nrule a:\n    input: "x"\n', 2, 5, ["unknown key 'vcpu' in default", "did you mean 'vcpus'"]),
    ('rule a:\n    output: "o/{x}.txt"\n    shell: "echo {y} > {output}"\n', 3, 18, ["unknown name {y}"]),
    ('samples: "samples.csv"\nrule a:\n    output: "o/{sample}.txt"\n    shell: "echo {sampel} > {output}"\n',
     4, 18, ["unknown name {sampel}", "did you mean {sample}?"]),
    ('samples: "samples.csv"\nrule a:\n    input: expand("o/{sample}.txt")\n    output: "s.txt"\n    shell: "cat {input} {reads} > {output}"\n',
     5, 25, ["'reads' is a column of", "no {sample} wildcard"]),
    ('rule a:\n    output: "o/{x}.txt"\n    shell: "echo > {output[1]}"\n', 3, 20, ["{output[1]}", "has 1 output"]),
    ('rule a:\n    output: "o/{x}.txt"\n    shell: "awk \'{print $1}\' > {output}"\n', 3, 18, ["is not a placeholder", "{{ and }}"]),
    ('rule a:\n    output: "o.txt"\n    vcpus: "two"\n    shell: "x"\n', 3, 12, ["'vcpus' takes a number"]),
    ('rule a:\n    output: "o.txt"\n    timeout: 10\n    shell: "x"\n', 3, 14, ["'timeout' must be at least 60"]),
    ('rule a:\n    output: "o.txt"\n    executor: lambda\n    shell: "x"\n', 3, 15, ["executor must be one of local, batch"]),
    ('rule a:\n    input: "x"\nrule a:\n    input: "y"\n', 3, 6, ["rule 'a' is defined twice (first on line 1)"]),
    ('rule a:\n    output: "o/{x}.txt", "o/{y}.log"\n    shell: "x"\n', 2, 26, ["must use the same wildcards"]),
    ('rule a:\n    input: expand("o/{x}.txt")\n', 2, 22, ["expand fills {x} from sheet columns and list variables"]),
    ('rule a:\n    input: glob("*.txt")\n', 2, 12, ["unknown function 'glob'"]),
    ('rule a:\n    output: "o.txt"\n', 1, 6, ["has outputs but no shell"]),
    ('rule a:\n    input: "x"\n    shell: "echo"\n', 1, 6, ["has a shell: command but no output"]),
    ('rule a:\n    output: "{x}"\n    shell: "x"\n', 2, 13, ["an output needs literal text"]),
    ('rule a:\n    input: "o/{x}.txt"\n    output: "o.txt"\n    shell: "x"\n', 2, 15, ["unknown name {x}"]),
    ('a = "1"\na = "2"\nrule r:\n    input: "x"\n', 2, 1, ["variable 'a' is set twice"]),
])
def test_semantic_errors_are_located(tmp_path, text, line, column, fragments):
    err = error_of(tmp_path, text)
    message = str(err)
    for fragment in fragments:
        assert fragment in message
    assert (err.line, err.column) == (line, column), message
    assert message.startswith(f"{tmp_path / 'Batchfile'}:{line}:{column}: ")
    assert message.splitlines()[-1].index("^") - 4 == column - 1


def test_unknown_config_key_names_the_variables(tmp_path):
    err = error_of(tmp_path, 'root = "out"\nrule a:\n    input: "x"\n', config={"rot": "y"})
    assert "--config rot=...: the Batchfile has no variable 'rot'; did you mean 'root'?" in str(err)


def test_missing_batchfile(tmp_path):
    with pytest.raises(BatchfileError, match="no such Batchfile"):
        load_workflow(str(tmp_path / "nope"))


# Errors of the sheet alone (its header, keys, row widths) are in test_samples.py; these come
# from the Batchfile's use of it: a value that fills a path segment must stay inside it.
@pytest.mark.parametrize("sheet, row, column, fragment", [
    ("sample,group\nA,g/1\n", 2, "group", "contains '/'"),
    ("sample,group\n..,g1\n", 2, "sample", "is '..'"),
])
def test_sample_sheet_errors_name_row_and_column(tmp_path, monkeypatch, sheet, row, column, fragment):
    monkeypatch.chdir(tmp_path)   # the message names the sheet relative to here
    text = ('samples: "samples.csv"\nrule all:\n    input: expand("out/{group}/{sample}.txt")\n'
            'rule a:\n    output: "out/{group}/{sample}.txt"\n    shell: "touch {output}"\n')
    err = error_of(tmp_path, text, sheet, cls=SampleSheetError)
    assert fragment in str(err)
    assert (err.row, err.column) == (row, column)
    assert str(err).startswith(f"samples.csv:{row}" if tmp_path == tmp_path.cwd() else "")
    where = f":{row}:{column}: " if column else f":{row}: "
    assert where in str(err)


def test_whole_path_column_may_hold_a_url(tmp_path):
    wf = load(tmp_path, 'samples: "samples.csv"\nrule a:\n    input: "{reads}"\n    output: "o/{sample}.txt"\n'
                        '    shell: "cp {input} {output}"\n', "sample,reads\nA,s3://bucket/raw/A.fq\n")
    assert wf.rules["a"].inputs[0].pattern.whole

