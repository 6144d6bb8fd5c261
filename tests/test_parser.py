"""The Batchfile syntax: what parses, and located syntax errors with a caret."""
import pytest

from s3rules.errors import BatchfileError
from s3rules.language.parser import parse

EXAMPLE = '''# comments start with '#'
samples: "samples.csv"          # the sample sheet
root = "out"                    # a variable

default:                        # settings every rule inherits
    queue: "genomics"
    vcpus: 1
    memory: 2048                # MiB
    environment:
        REF: "hg38"

rule all:
    input: expand("{root}/counts/{sample}.txt"), "{root}/summary.tsv"

rule count:
    input:
        "{root}/trim/{sample}.txt",
        "extra.txt"
    output: "{root}/counts/{sample}.txt", "{root}/counts/{sample}.log"
    shell: """
        wc -l < {input} > {output[0]}
        echo counted {sample} > {output[1]}
    """
'''


def test_parses_the_documented_example():
    doc = parse(EXAMPLE, "Batchfile")
    kinds = [type(i).__name__ for i in doc.items]
    assert kinds == ["Setting", "Assign", "Setting", "RuleNode", "RuleNode"]
    default = doc.items[2]
    assert [c.name for c in default.children] == ["queue", "vcpus", "memory", "environment"]
    assert default.children[3].children[0].values[0].value == "hg38"
    rule_all = doc.items[3]
    call = rule_all.settings[0].values[0]
    assert (call.kind, call.value, call.args[0].value) == ("call", "expand", "{root}/counts/{sample}.txt")
    count = doc.items[4]
    inputs = count.settings[0]
    assert [v.value for v in inputs.values] == ["{root}/trim/{sample}.txt", "extra.txt"]
    shell = count.settings[2].values[0]
    assert "wc -l < {input} > {output[0]}" in shell.value
    assert (count.line, count.column) == (15, 6)


def test_numbers_and_words():
    doc = parse("default:\n    vcpus: 0.5\n    memory: 4096\n    executor: batch\n")
    values = [c.values[0] for c in doc.items[0].children]
    assert [(v.kind, v.value) for v in values] == [("number", 0.5), ("number", 4096), ("word", "batch")]


def test_file_without_trailing_newline_and_comment_only_lines():
    doc = parse("# only\n\n   # indented comment\nrule a:\n    # inside\n    input: \"x\"  # trailing")
    assert doc.items[0].settings[0].values[0].value == "x"


@pytest.mark.parametrize("text, line, column, fragment", [
    ('rule a:\n    input "x"\n', 2, 11, "unexpected"),
    ('rule a:\n    input: "x\n', 2, 12, "unterminated string"),
    ('rule a:\ninput: "x"\n', 2, 1, "expected an indented block"),
    ('rule a:\n    input: "x"\n      output: "y"\n', 3, 7, "unexpected indentation"),
    ('rule a:\n    input: "a"\n  output: "b"\n', 3, 3, "indentation matches no enclosing block"),
    ('rule a:\n    "x"\n', 2, 5, "a value without a key"),
    ('root = \n', 1, 8, "unexpected end of line"),
    ('rule a:\n    input: expand("x"\n', 2, 18, "never closed"),
    ('rule a:\n    input: "x" "y"\n', 2, 16, "unexpected"),
    ('rule a:\n    input: @\n', 2, 12, "unexpected character '@'"),
])
def test_syntax_errors_are_located(text, line, column, fragment):
    with pytest.raises(BatchfileError) as info:
        parse(text, "wf/Batchfile")
    err = info.value
    assert fragment in str(err)
    assert (err.line, err.column) == (line, column)
    message = str(err)
    assert message.startswith(f"wf/Batchfile:{line}:{column}: ")
    # the offending line, then a caret under the column
    shown, caret = message.splitlines()[1:3]
    assert shown.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - 4 == column - 1
