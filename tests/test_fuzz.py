"""Hostile and broken input: random and mutated Batchfiles and sample sheets, hostile sample values,
planted credentials, misspelled keys.

The promise (issue "Hostile and broken input"):

* any Batchfile or sample sheet either runs or exits 2 with ONE message, located at
  ``Batchfile:LINE:COL:`` (with that line shown and a caret under COL) or ``samples.csv:ROW``;
  never a traceback, never a hang;
* a sample value reaches the command byte for byte (checked by writing it to a file), or is
  refused with a located error; a value that fills a path segment never leaves its directory;
* credentials never appear in any output or log;
* an unknown key is an error with a did-you-mean hint, at the key's line:col.

``s3rules.cli.main`` runs in-process (fast) under a SIGALRM time bound; only the credential tests
go through the console script, as a user would. Every example gets a fresh directory and runs
with the working directory set to it, so messages name ``Batchfile`` and ``samples.csv``.

Sample values and CSV: the sheet is written with ``csv.writer`` (quoting as needed), so newlines,
carriage returns, quotes and delimiters inside a value round-trip and must reach the command
unchanged. A NUL byte cannot be passed to a process at all: a value holding one must be refused
(exit 1 or 2 with one message), never crash.

Known bugs: ``KNOWN_BUGS`` names the input shapes the generators steer around while a bug is open
(see ``avoid_known_bugs``); each has a hand-written reproducer at the end of this file, skipped
while its name is listed. Remove the name once the bug is fixed: the generators then cover that
shape again and the reproducer runs.

``S3RULES_FUZZ_SCALE=10 pytest tests/test_fuzz.py`` multiplies every example count (a deeper run);
``S3RULES_FUZZ_KNOWN_BUGS=a,b`` replaces the list of open bugs (empty: every reproducer runs).
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event as _event, given, note as _note, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from s3rules.cli import main
from s3rules.language.loader import RULE_KEYS, SETTING_KEYS, TOP_LEVEL_KEYS

# Open bugs (reproducers at the end of this file). While a name is listed, the generators avoid
# the inputs that trigger it; remove it once fixed.
KNOWN_BUGS: set[str] = set()   # every bug the fuzzing found so far is fixed; each reproducer runs
if "S3RULES_FUZZ_KNOWN_BUGS" in os.environ:   # e.g. S3RULES_FUZZ_KNOWN_BUGS= to see every open bug fail
    KNOWN_BUGS = set(os.environ["S3RULES_FUZZ_KNOWN_BUGS"].split(",")) - {""}

SCALE = float(os.environ.get("S3RULES_FUZZ_SCALE", "1"))
REPO = Path(__file__).resolve().parent.parent
PREFIX = "s3rules: error: "


def note(text: str) -> None:
    if currently_in_test_context():
        _note(text)


def event(label: str) -> None:
    if currently_in_test_context():
        _event(label)


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def fuzz_settings(n: int):
    return settings(max_examples=examples(n), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(autouse=True, scope="module")
def no_real_aws():
    """Nothing here may reach AWS: an s3:// path that a mutation produces fails at once."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(key)
        mp.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        mp.setenv("AWS_MAX_ATTEMPTS", "1")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ACCESS_KEY_ID", "fuzz")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "fuzz")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


# ---------------------------------------------------------------------------------------------
# Running main in-process, under a time bound

class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(cwd: Path, argv: list[str], seconds: int = 10) -> tuple[int, str, str]:
    """``main(argv)`` in ``cwd``: (exit code, stdout, stderr). An escaping exception is a bug."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with time_limit(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Hang as exc:
        raise AssertionError(f"hang: s3rules {' '.join(argv)} gave {exc}") from None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped main (a traceback for the user): {exc}\n"
                             f"stderr so far: {err.getvalue()!r}") from exc
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def workdir():
    """A fresh ``root/wf`` directory; ``root`` holds nothing else, so escapes are visible."""
    root = Path(tempfile.mkdtemp(prefix="s3rules-fuzz-"))
    wf = root / "wf"
    wf.mkdir()
    try:
        yield root, wf
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_files(wf: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = wf / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# The oracle: exit 0, or exit 2 with one located message

_DEDENT_MESSAGE = "this line's indentation matches no enclosing block"
WHOLE_BATCHFILE = ("the Batchfile defines no rule", "the Batchfile is not UTF-8 text")
WHOLE_SHEET = ("the sample sheet does not exist", "this is a directory, not a sample sheet")


def text_as_read(data: bytes) -> str | None:
    """The Batchfile as s3rules reads it: UTF-8 (a leading byte-order mark dropped), universal newlines."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_batchfile_location(line: int, col: int, err: str, data: bytes) -> None:
    text = text_as_read(data)
    assert text is not None, f"a located error in a file that is not UTF-8:\n{err}"
    lines = text.split("\n")     # an editor's lines: only \n ends one (after a final \n: an empty one)
    if "eof-line" in KNOWN_BUGS and not text.endswith("\n"):
        lines.append("")
    assert 1 <= line <= len(lines), f"LINE {line} is outside the file ({len(lines)} lines):\n{err}"
    src = lines[line - 1]
    assert 1 <= col <= max(len(src), len(src.expandtabs(8))) + 1, \
        f"COL {col} is outside line {line} ({src!r}):\n{err}"
    shown = err.rstrip("\n").split("\n")
    assert len(shown) >= 3, f"no source line and caret:\n{err}"
    assert shown[-2] == "    " + src.rstrip(), \
        f"the message shows {shown[-2][4:]!r}, but line {line} is {src!r}:\n{err}"
    assert shown[-1] == " " * (4 + col - 1) + "^", f"the caret is not under column {col}:\n{err}"


def sheet_line_count(data: bytes) -> int:
    text = data.decode("utf-8", "replace")
    # the csv reader ends a line at \r as well as \n; an editor only at \n: accept either count
    return max(len(re.split(r"\r\n|\r|\n", text)), data.count(b"\n") + 1)


# The only exit-2 messages allowed without file:line:col or file:row: they are about the plan
# (what the rules make, what exists, the command line), not about a place in a file.
UNLOCATED = re.compile("|".join([
    r"missing input ", r"the rules form a cycle: ", r"\S.* can be made by several rules ",
    r"'.*' is neither a rule nor an output of any rule", r"\S.* does not exist and no rule makes it",
    r"(\S.*: )?rule '[^']*'", r"\S.*: wildcard \w+=.* disagrees with the sample sheet",
    r"--config \S+=\.\.\.: ", r"--force ", r"--forcerun ", r"--json goes with",
    r"some pending jobs use executor: ",
    # storage: the path or URL is the place
    r"cannot (check|read|list|create|remove|get|reach S3) ", r"permission denied checking ",
    r"no usable AWS credentials ", r"AWS rejected the credentials ", r"S3 bucket '",
    # a sample sheet named by a path that no file is at: the whole sheet is the place
    r"(?s:\S.*?): (" + "|".join(map(re.escape, WHOLE_SHEET)) + ")$",
]))


def check_outcome(code: int, out: str, err: str, files: dict[str, bytes]) -> str:
    """Exit 0, or exit 2 with one located message. Returns a label for ``event``."""
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code in (0, 2), f"exit {code}:\n{err}"
    if code == 0:
        return "runs"
    assert err.startswith(PREFIX), f"exit 2 without an error message:\n{err!r}"
    assert err.count(PREFIX) == 1, f"more than one message:\n{err}"
    body = err[len(PREFIX):]
    m = re.match(r"Batchfile:(\d+):(\d+): \S", body)
    if m:
        check_batchfile_location(int(m[1]), int(m[2]), err, files["Batchfile"])
        return "error at Batchfile:LINE:COL"
    if body == "Batchfile: " + _DEDENT_MESSAGE + "\n" and "dedent-unlocated" in KNOWN_BUGS:
        return "known bug: dedent-unlocated"
    if body.startswith("Batchfile: "):
        assert body.startswith(WHOLE_BATCHFILE, len("Batchfile: ")), f"a Batchfile error without LINE:COL:\n{err}"
        return "error in the whole Batchfile"
    for name, data in files.items():   # the Batchfile too: `samples: "Batchfile"` reads it as a sheet
        if body.startswith(name + ":"):
            m = re.match(re.escape(name) + r":(\d+)[:\s]", body)
            if m:
                row = int(m[1])
                assert 1 <= row <= sheet_line_count(data), f"ROW {row} is outside the sheet:\n{err}"
                return "error at samples:ROW"
            assert body.startswith(WHOLE_SHEET, len(name) + 2), f"a sheet error without ROW:\n{err}"
            return "error in the whole sheet"
    assert UNLOCATED.match(body), f"exit 2 with an error that is neither located nor about the plan:\n{err}"
    return "plan error: " + re.split(r"['\"{(/\d]", body, maxsplit=1)[0][:40]


# ---------------------------------------------------------------------------------------------
# Steering around open bugs

_SPLITLINES_ONLY = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"   # line ends for str.splitlines, not for Lark


def avoid_known_bugs(text: str) -> str:
    if "bad-string-literal" in KNOWN_BUGS:
        text = re.sub(r"\\(?=[xuUN])", "/", text).replace("\x00", "\x01")
    if "huge-int" in KNOWN_BUGS:
        text = re.sub(r"\d{4000,}", lambda m: m[0][:40], text)
    if "splitlines" in KNOWN_BUGS:
        text = text.translate({ord(c): " " for c in _SPLITLINES_ONLY})
    return text


def avoid_known_bugs_bytes(data: bytes) -> bytes:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data        # not UTF-8: refused whole, nothing further is read
    return avoid_known_bugs(text).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Valid Batchfiles to start from

@dataclass
class Base:
    name: str
    text: str
    files: dict[str, bytes] = field(default_factory=dict)


def _demo() -> Base:
    demo = REPO / "rulefiles" / "demo"
    files = {"samples.csv": (demo / "samples.csv").read_bytes()}
    for f in sorted((demo / "data").iterdir()):
        files[f"data/{f.name}"] = f.read_bytes()
    return Base("demo", (demo / "Batchfile").read_text(), files)


FULL = '''\
# every kind of line the language has
samples: "samples.csv"
root = "out"
n = 3
default:
    executor: local
    queue: "q"
    job_definition: "jd:1"
    vcpus: 0.5
    memory: 512
    retries: 1
    timeout: 600
    priority: 10
    environment:
        REF: "hg38"
        N: 3
    tags:
        project: "fuzz"

rule all:
    input:
        expand("{root}/b/{sample}.txt"),
        "{root}/merged.txt",

rule a:                       # two outputs
    input: "{reads}"
    output: "{root}/a/{sample}.txt", "{root}/a/{sample}.log"
    shell: "cat {input} > {output[0]} && echo {group} > {output[1]}"

rule b:
    input: "{root}/a/{sample}.txt"
    output: "{root}/b/{sample}.txt"
    gpus: 0
    environment:
        SAMPLE: "{sample}"
    shell: \'\'\'
        tr a-z A-Z < {input} > {output}   # {{braces}} and $SAMPLE
    \'\'\'

rule merged:
    input: \\
        expand("{root}/b/{sample}.txt")
    output: "{root}/merged.txt"
    shell: "cat {input} > {output}"
'''
FULL_SHEET = b'sample,group,reads\nS1,g1,data/S1.txt\nS2,g2,"data/S2.txt"\n'
FULL_DATA = {"data/S1.txt": b"a\n", "data/S2.txt": b"b\n"}

SMALL = '''\
rule all:
    input: "out/x.txt"
rule x:
    output: "out/x.txt"
    shell: "echo hi > {output}"
'''

BASES = [_demo(),
         Base("full", FULL, {"samples.csv": FULL_SHEET, **FULL_DATA}),
         Base("small", SMALL, {"samples.csv": FULL_SHEET, **FULL_DATA})]
ARGVS = [["run", "-n", "Batchfile"], ["run", "-n", "--json", "Batchfile"], ["run", "--list", "Batchfile"],
         ["run", "--dag", "Batchfile"], ["run", "--rulegraph", "Batchfile"], ["run", "-n", "-q", "Batchfile", "all"]]


@pytest.mark.parametrize("base", BASES, ids=lambda b: b.name)
def test_the_starting_points_are_valid(base):
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": base.text.encode(), **base.files})
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
        assert code == 0, err


# ---------------------------------------------------------------------------------------------
# Mutations

KEY_NAMES = (RULE_KEYS + SETTING_KEYS + TOP_LEVEL_KEYS
             + ("rule", "expand", "all", "root", "sample", "ouptut", "shel", "vcpu", "x", "_", "Rule", "RULE"))
INTERESTING_CHARS = ('"', "'", "{", "}", "(", ")", "[", "]", ":", ",", "=", "#", "\\", "\t", " ", "\n", "\r",
                     "\x00", "\x0c", "\x0b", "\u2028", "\x85", "\x1c", "é", "日", "😀", "\ufeff", "\u200b",
                     "$", "`", ";", "-", "+", "0", "9", ".", "e", "_", "a", "Z", "/", "*", "\x7f")
SNIPPETS = ('"""', "'''", "{{", "}}", "{sample}", "{root}", "{input[0]}", "{output[9]}", "{nope}",
            "{input.attr}", "{0}", "{}", "{sample!r}", "{sample:>5}", "{ sample }", "input:", "output:",
            "shell:", "default:", "samples:", "environment:", "rule x:", "rule all:", "expand(", "expand()",
            'expand("{sample}")', "glob(", "\n    ", "\n        ", "\n\t", " \\\n", "1e999", "-1", "0.1",
            "nan", "inf", "9" * 30, "0x10", "1_000", "#", "# comment", " = ", '"x" "y"', ",,", "\\\"",
            "\\x", "\\u12", "\\N{nope}", "s3://", "..", "../", "/etc/passwd", "~")
VALUES = ('"x"', '"out/{sample}.txt"', '"{reads}"', '"{nope}"', '"{input[3]}"', '""', "''", '"""a\nb"""',
          "1", "0", "-1", "0.25", "1e3", "1e999", "99999999999999999999", "local", "batch", "lambda",
          'expand("o/{sample}.txt")', 'expand("{reads}")', "expand()", 'expand("a", "b")', 'glob("*")',
          '"a", "b"', '"a",', ",", "", '"x" # c', '"{{"', '"}"', '"{"', '"{sample}/{sample}"', '"/abs/{sample}"',
          '"../{sample}.txt"', '"{root}/{group}/{sample}"')


def _index(draw, n: int) -> int:
    return draw(st.integers(0, max(n - 1, 0)))


def _lines(text: str) -> list[str]:
    return text.split("\n")


def op_delete_line(draw, text):
    lines = _lines(text)
    del lines[_index(draw, len(lines))]
    return "\n".join(lines)


def op_duplicate_line(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines))
    lines.insert(i, lines[i])
    return "\n".join(lines)


def op_swap_lines(draw, text):
    lines = _lines(text)
    i, j = _index(draw, len(lines)), _index(draw, len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def op_move_line(draw, text):
    lines = _lines(text)
    line = lines.pop(_index(draw, len(lines)))
    lines.insert(_index(draw, len(lines) + 1), line)
    return "\n".join(lines)


def op_reindent(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines))
    indent = draw(st.sampled_from(["", " ", "  ", "   ", "    ", "     ", "\t", "\t ", " \t", "        ", "\t\t"]))
    lines[i] = indent + lines[i].lstrip(" \t")
    return "\n".join(lines)


def op_insert(draw, text):
    at = _index(draw, len(text) + 1)
    piece = draw(st.one_of(st.text(st.sampled_from(INTERESTING_CHARS), min_size=1, max_size=4),
                           st.sampled_from(SNIPPETS), st.text(min_size=1, max_size=3)))
    return text[:at] + piece + text[at:]


def op_delete_span(draw, text):
    at = _index(draw, len(text))
    return text[:at] + text[at + draw(st.integers(1, 12)):]


def op_truncate(draw, text):
    return text[:_index(draw, len(text) + 1)]


def op_repeat_span(draw, text):
    at = _index(draw, len(text))
    span = text[at:at + draw(st.integers(1, 20))]
    return text[:at] + span * draw(st.integers(2, 300)) + text[at:]


def op_rename_key(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines))
    name = draw(st.one_of(st.sampled_from(KEY_NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)))
    lines[i] = re.sub(r"^(\s*(?:rule\s+)?)[A-Za-z_]\w*", lambda m: m[1] + name, lines[i], count=1)
    return "\n".join(lines)


def op_replace_value(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines))
    value = draw(st.one_of(st.sampled_from(VALUES), st.text(st.sampled_from(INTERESTING_CHARS), max_size=8)))
    lines[i] = re.sub(r"^(\s*[A-Za-z_]\w*\s*[:=]\s*).*$", lambda m: m[1] + value, lines[i], count=1)
    return "\n".join(lines)


def op_add_setting(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines) + 1)
    indent = draw(st.sampled_from(["", "    ", "        ", "\t"]))
    key = draw(st.sampled_from(KEY_NAMES))
    lines.insert(i, f"{indent}{key}: {draw(st.sampled_from(VALUES))}")
    return "\n".join(lines)


def op_join_lines(draw, text):
    lines = _lines(text)
    if len(lines) < 2:
        return text
    i = _index(draw, len(lines) - 1)
    lines[i:i + 2] = [lines[i] + draw(st.sampled_from(["", " ", "\\"])) + lines[i + 1]]
    return "\n".join(lines)


def op_line_endings(draw, text):
    return text.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\n\n", "\n \n", "\n#\n"])))


OPS = [op_delete_line, op_duplicate_line, op_swap_lines, op_move_line, op_reindent, op_insert, op_delete_span,
       op_truncate, op_repeat_span, op_rename_key, op_replace_value, op_add_setting, op_join_lines,
       op_line_endings]


def insert_bytes(draw, data: bytes) -> bytes:
    at = _index(draw, len(data) + 1)
    junk = draw(st.one_of(st.binary(min_size=1, max_size=6),
                          st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x00", b"\x80abc",
                                           b"\xf4\x90\x80\x80", b"\xc0\xaf"])))
    return data[:at] + junk + data[at:]


@st.composite
def mutated_batchfiles(draw):
    base = draw(st.sampled_from(BASES))
    text = base.text
    ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=6))
    for op in ops:
        text = op(draw, text)
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data = insert_bytes(draw, data)
    return base, avoid_known_bugs_bytes(data)


def check_batchfile(data: bytes, files: dict[str, bytes], argv: list[str]) -> None:
    note(f"Batchfile: {data!r}")
    note(f"argv: {argv}")
    with workdir() as (root, wf):
        write_files(wf, {**files, "Batchfile": data})
        code, out, err = run_cli(wf, argv)
        event(check_outcome(code, out, err, {**files, "Batchfile": data}))


@fuzz_settings(900)
@given(mutated_batchfiles(), st.sampled_from(ARGVS))
def test_mutated_batchfiles_run_or_fail_located(case, argv):
    base, data = case
    check_batchfile(data, base.files, argv)


# Token soups: the grammar's own vocabulary in random order, so that deeper parser states are reached.
TOKENS = ("rule", "samples", "default", "input", "output", "shell", "environment", "vcpus", "memory",
          "executor", "tags", "expand", "all", "a", "b", "root", ":", ":", "=", ",", "(", ")", '"x"',
          '"out/{sample}.txt"', '"{reads}"', '"samples.csv"', '"{root}/{sample}"', "'y'", '"""z"""',
          "'''w\n'''", '"{input}"', '"{output[0]}"', "1", "0.5", "-3", "1e3", "local", "\n", "\n", "\n",
          "\n    ", "\n    ", "\n        ", "\n  ", "\n\t", "\t", " ", "#c", "\\\n")


@st.composite
def token_soups(draw):
    parts = draw(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " ", " "])), max_size=80))
    return "".join(t + sep for t, sep in parts)


@fuzz_settings(400)
@given(token_soups(), st.sampled_from(ARGVS[:3]))
def test_token_soups_run_or_fail_located(text, argv):
    check_batchfile(avoid_known_bugs(text).encode("utf-8"), BASES[1].files, argv)


@fuzz_settings(250)
@given(st.one_of(st.text(max_size=300),
                 st.lists(st.sampled_from(INTERESTING_CHARS + TOKENS), max_size=120).map("".join)))
def test_random_text_runs_or_fails_located(text):
    check_batchfile(avoid_known_bugs(text).encode("utf-8"), BASES[1].files, ["run", "-n", "Batchfile"])


@fuzz_settings(100)
@given(st.binary(max_size=300))
def test_random_bytes_run_or_fail_located(data):
    check_batchfile(avoid_known_bugs_bytes(data), BASES[1].files, ["run", "-n", "Batchfile"])


def _nested_calls(depth: int) -> str:
    return ('samples: "samples.csv"\nrule all:\n    input: ' + "expand(" * depth + '"x"' + ")" * depth + "\n")


def _nested_blocks(depth: int) -> str:
    lines = ["default:"] + [" " * (i + 1) + f"k{i}:" for i in range(depth)] + [" " * (depth + 1) + "x: 1"]
    return "\n".join(lines) + '\nrule a:\n    input: "x"\n'


@fuzz_settings(40)
@given(st.sampled_from([_nested_calls, _nested_blocks]),
       st.integers(1, 40 if "deep-nesting" in KNOWN_BUGS else 5000))
def test_deep_nesting_fails_located(make, depth):
    check_batchfile(make(depth).encode(), BASES[1].files, ["run", "-n", "Batchfile"])


@pytest.mark.parametrize("text", [
    "", "\n", "# only a comment\n", "   \n\t\n", "rule", "rule a", "rule a:", "rule a:\n", "rule a:\n    input:\n",
    'rule a:\n    input: "x"\n  output: "y"\n', 'rule a:\n\tinput: "x"\n        output: "y"\n',
    'rule a:\r\n    output: "o.txt"\r\n    shell: "x"\r\n', "\ufeffrule a:\n    input: \"x\"\n",
    'rule a:\n    input: "x"\n\x00\n', 'rule a:\n    shell: """never closed\n', 'rule a:\n    input: expand(\n',
    'rule a:\n    input: expand("x"\n    output: "y"\n', 'samples: "samples.csv"\nrule a:\n    input: "{nope"\n',
    'x = 1\nx = 2\n', "samples: 1\nrule a:\n    input: \"x\"\n", 'samples: ""\nrule a:\n    input: "x"\n',
    'samples: "."\nrule a:\n    input: "x"\n', 'samples: "Batchfile"\nrule a:\n    input: "x"\n',
    'samples: "nope.csv.gz"\nrule a:\n    input: "x"\n', 'samples: "samples.csv"\nrule a:\n    input: "{reads}"\n'
    '    output: "out/{sample}/{reads}"\n    shell: "x"\n',
    'rule a:\n    output: "o/{x}.txt"\n    shell: "echo {x!r} > {output}"\n',
    'rule a:\n    output: "' + "o/" * 3000 + 'x.txt"\n    shell: "x"\n',
    'rule a:\n    input: ' + ", ".join(['"x"'] * 5000) + "\n",
    "rule a:\n    input: \"x\"\n" * 2000,
], ids=lambda t: repr(t[:30]))
def test_hand_written_hostile_batchfiles(text):
    check_batchfile(text.encode(), BASES[1].files, ["run", "-n", "Batchfile"])


# ---------------------------------------------------------------------------------------------
# Sample sheets

SHEET_BATCHFILE = '''\
samples: "{sheet}"
rule all:
    input: expand("out/{{group}}/{{sample}}.txt"), expand("groups/{{group}}.txt")
rule a:
    input: "{{reads}}"
    output: "out/{{group}}/{{sample}}.txt"
    shell: "cat {{input}} > {{output}} && echo {{note}}"
rule g:
    input: expand("out/{{group}}/{{sample}}.txt")
    output: "groups/{{group}}.txt"
    shell: "cat {{input}} > {{output}}"
'''
BASE_SHEET_ROWS = [["sample", "group", "reads", "note"], ["S1", "g1", "data/S1.txt", "first"],
                   ["S2", "g1", "data/S2.txt", 'a, quoted "note"'], ["S3", "g2", "data/S3.txt", ""]]
SHEET_DATA = {f"data/S{i}.txt": b"x\n" for i in (1, 2, 3)}
SHEET_CHARS = (",", "\t", '"', "\n", "\r", "\r\n", "\x00", "\ufeff", " ", "é", "😀", "..", "/", ".", "a", "S1",
               "g1", "data/S1.txt", "sample", "#", "'", "\\", "{", "}", "\x85", "\u2028")


def _sheet_text(delimiter: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(BASE_SHEET_ROWS)
    return buf.getvalue()


def sop_insert(draw, text):
    at = _index(draw, len(text) + 1)
    piece = draw(st.one_of(st.lists(st.sampled_from(SHEET_CHARS), min_size=1, max_size=4).map("".join),
                           st.text(min_size=1, max_size=3)))
    return text[:at] + piece + text[at:]


def sop_huge_field(draw, text):
    at = _index(draw, len(text) + 1)
    return text[:at] + draw(st.sampled_from(["a", '"', ",", "\n", "é"])) * draw(st.integers(1000, 200_000)) + text[at:]


def sop_header(draw, text):
    lines = _lines(text)
    cells = lines[0].split(",") if lines else [""]
    i = _index(draw, len(cells))
    cells[i] = draw(st.sampled_from(["", " ", "sample", "group", "my-col", "1st", "é", "input", "output",
                                     "__class__", "a b", "Sample", " group "]))
    lines[0] = ",".join(cells)
    return "\n".join(lines)


def sop_ragged(draw, text):
    lines = _lines(text)
    i = _index(draw, len(lines))
    lines[i] = lines[i] + "," * draw(st.integers(1, 3)) if draw(st.booleans()) else lines[i].rsplit(",", 1)[0]
    return "\n".join(lines)


SHEET_OPS = [op_delete_line, op_duplicate_line, op_swap_lines, op_delete_span, op_truncate, op_line_endings,
             op_join_lines, sop_insert, sop_insert, sop_huge_field, sop_header, sop_ragged]


@pytest.mark.parametrize("name, delimiter", [("samples.csv", ","), ("samples.tsv", "\t")])
def test_the_starting_sheets_are_valid(name, delimiter):
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": SHEET_BATCHFILE.format(sheet=name).encode(),
                         name: _sheet_text(delimiter).encode(), **SHEET_DATA})
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
        assert code == 0, err


@st.composite
def mutated_sheets(draw):
    name, delimiter = draw(st.sampled_from([("samples.csv", ","), ("samples.tsv", "\t")]))
    text = _sheet_text(delimiter)
    for op in draw(st.lists(st.sampled_from(SHEET_OPS), min_size=1, max_size=5)):
        text = op(draw, text)
    data = text.encode("utf-8")
    if draw(st.integers(0, 5)) == 0:
        data = insert_bytes(draw, data)
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    return name, data


SHEET_CELLS = ("S1", "S2", "S3", "g1", "g2", "data/S1.txt", "data/S2.txt", "", " ", "..", ".", "/", "a/b", "é",
               "x" * 300, "\n", "\r\n", '"', ",", "\t", "s3://b/k", "~", "-")


@st.composite
def wellformed_sheets(draw):
    """Valid CSV/TSV (written by csv.writer) with odd cells: these get past the reader to the planner."""
    name, delimiter = draw(st.sampled_from([("samples.csv", ","), ("samples.tsv", "\t")]))
    header = ["sample", "group", "reads", "note"]
    cell = st.one_of(st.sampled_from(SHEET_CELLS), st.text(max_size=6))
    rows = [header] + [[draw(cell) for _ in header] for _ in range(draw(st.integers(0, 5)))]
    buf = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    csv.writer(buf, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
               quoting=quoting).writerows(rows)
    return name, buf.getvalue().encode("utf-8")


@fuzz_settings(500)
@given(st.one_of(mutated_sheets(), wellformed_sheets(),
                 st.tuples(st.just("samples.csv"), st.binary(max_size=200)),
                 st.tuples(st.just("samples.csv"),
                           st.lists(st.sampled_from(SHEET_CHARS), max_size=60).map(lambda t: "".join(t).encode()))))
def test_mutated_sheets_run_or_fail_located(sheet):
    name, data = sheet
    note(f"{name}: {data[:2000]!r}")
    batchfile = SHEET_BATCHFILE.format(sheet=name).encode()
    with workdir() as (root, wf):
        files = {"Batchfile": batchfile, name: data, **SHEET_DATA}
        write_files(wf, files)
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
        event(check_outcome(code, out, err, files))


# ---------------------------------------------------------------------------------------------
# Hostile sample values: byte for byte into the command, or refused; never out of their directory

HOSTILE = (";", "; touch pwned", "$(touch pwned)", "`touch pwned`", "'", '"', "\\", "\n", "\r\n", "\r", " ", "  ",
           "\t", "..", "../", "/", "/etc/passwd", "*", "?", "[a]", "-", "--", "-rf", "~", "$HOME", "${IFS}",
           "$'\\n'", "%s", "%n", "%%", "{", "}", "{sample}", "{{", "!", "&", "&&", "|", ">", "<", "#", "=", ",",
           "é", "日本語", "😀", "\u2028", "\x85", "\x7f", "\x1b[31m", "\ufeff", "\x01", "\x00", ".", "a", "x.txt")
INJECTIONS = ("; touch pwned", "$(touch pwned)", "`touch pwned`", "' ; touch pwned ; '", '" ; touch pwned ; "',
              "\ntouch pwned\n", "| touch pwned", "&& touch pwned", "$(touch${IFS}pwned)", "\\$(touch pwned)")
_EXCLUDED = "\x00" if "nul-in-command" in KNOWN_BUGS else ""


def hostile_values(max_bytes: int = 10_000):
    piece = st.one_of(st.sampled_from(INJECTIONS),
                      st.sampled_from([h for h in HOSTILE if not (_EXCLUDED and _EXCLUDED in h)]),
                      st.text(st.characters(codec="utf-8", exclude_characters=_EXCLUDED), max_size=4))
    return (st.lists(piece, max_size=6).map("".join)
            .filter(lambda v: len(v.encode()) <= max_bytes and not (_EXCLUDED and _EXCLUDED in v)))


def write_sheet(wf: Path, column: str, values: list[str]) -> list[int]:
    """samples.csv with keys s0..sN and ``column``; returns each row's line as csv counts it."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(   # a lone \r must be quoted too
        [["sample", column]] + [[f"s{i}", v] for i, v in enumerate(values)])
    (wf / "samples.csv").write_bytes(buf.getvalue().encode())
    reader = csv.reader(io.StringIO(buf.getvalue(), newline=""))
    next(reader)
    lines = []
    for _ in reader:
        lines.append(reader.line_num)
    return lines


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def assert_no_pwned(root: Path) -> None:
    assert not [p for p in root.rglob("pwned")], "a sample value ran as a command"
    assert not os.path.exists("pwned"), "a sample value ran as a command (in the test's directory)"


VALUE_BATCHFILE = '''\
samples: "samples.csv"
rule all:
    input: expand("out/{sample}.txt")
rule w:
    output: "out/{sample}.txt", "out/{sample}.env"
    environment:
        LABEL: "{label}"
    shell: "printf '%s' {label} > {output[0]}; printf '%s' \\"$LABEL\\" > {output[1]}"
'''


@fuzz_settings(100)
@given(st.lists(hostile_values(), min_size=1, max_size=4))
def test_hostile_values_reach_the_command_byte_for_byte(values):
    note(f"values: {values!r}")
    with workdir() as (root, wf):
        (wf / "Batchfile").write_text(VALUE_BATCHFILE)
        rows = write_sheet(wf, "label", values)
        code, out, err = run_cli(wf, ["run", "-q", "Batchfile"], seconds=60)
        assert "Traceback" not in err
        assert_no_pwned(root)
        if any("\x00" in v for v in values):      # cannot reach a process: must be refused
            assert code in (1, 2) and err.count("s3rules: ") == 1 and "NUL" in err.upper(), err
            return
        assert code == 0, err
        for i, value in enumerate(values):
            assert (wf / f"out/s{i}.txt").read_bytes() == value.encode(), f"row {rows[i]}: the command got another value"
            assert (wf / f"out/s{i}.env").read_bytes() == value.encode(), f"row {rows[i]}: the environment got another value"
        outside = {f for f in files_under(root) if not f.startswith(("wf/out/", "wf/.s3rules/"))}
        assert outside == {"wf/Batchfile", "wf/samples.csv"}


SEGMENT_BATCHFILE = '''\
samples: "samples.csv"
rule all:
    input: expand("out/{label}.txt")
rule w:
    output: "out/{label}.txt"
    shell: "printf '%s' {label} > {output}"
'''


def segment_refused(value: str) -> bool:
    return value in ("", ".", "..") or "/" in value or "\x00" in value


@fuzz_settings(100)
@given(st.lists(hostile_values(max_bytes=200), min_size=1, max_size=4))
def test_hostile_path_segments_stay_in_their_directory(values):
    note(f"values: {values!r}")
    with workdir() as (root, wf):
        (wf / "Batchfile").write_text(SEGMENT_BATCHFILE)
        rows = write_sheet(wf, "label", values)
        code, out, err = run_cli(wf, ["run", "-q", "Batchfile"], seconds=60)
        assert "Traceback" not in err
        assert_no_pwned(root)
        produced = {f for f in files_under(root) if not f.startswith("wf/.s3rules/")}
        assert produced <= {"wf/Batchfile", "wf/samples.csv"} | {f"wf/out/{v}.txt" for v in values}, \
            "a file was written outside out/ or under another name"
        refused = [i for i, v in enumerate(values) if segment_refused(v)]
        if refused:
            assert code == 2, err
            # the refusal names one of the bad rows (a NUL is refused while reading, before the rest)
            assert any(err.startswith(f"{PREFIX}samples.csv:{rows[i]}:label: ") for i in refused), err
            assert err.count(PREFIX) == 1
            assert not (wf / "out").exists(), "a job ran although the sheet was refused"
            return
        assert code == 0, err
        for value in values:
            assert (wf / "out" / f"{value}.txt").read_bytes() == value.encode()


# ---------------------------------------------------------------------------------------------
# Credentials never appear in any output or log

PLANTED = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE1234",
           "AWS_SECRET_ACCESS_KEY": "fakeSecret/Plant3d+KeyValue0000000000xyz",
           "AWS_SESSION_TOKEN": "FAKE-TOKEN-abcdef"}
MARKERS = sorted({m for v in PLANTED.values() for m in (v, urllib.parse.quote(v, safe=""))}
                 | {"Plant3d", "FAKEFAKEFAKE1234", "TOKEN-abcdef"})
UNREACHABLE = "http://127.0.0.1:9"


def s3rules_with_planted_keys(cwd: Path, args: list[str], endpoint: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PLANTED, AWS_ENDPOINT_URL=endpoint, AWS_MAX_ATTEMPTS="1", AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    exe = os.path.join(os.path.dirname(sys.executable), "s3rules")
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def assert_no_secret(proc: subprocess.CompletedProcess, root: Path) -> None:
    for marker in MARKERS:
        assert marker not in proc.stdout and marker not in proc.stderr, f"{marker!r} printed:\n{proc.stderr}"
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for marker in MARKERS:
                assert marker.encode() not in data, f"{marker!r} written to {f.relative_to(root)}"


def _s3_batchfile(bucket: str, batch: bool) -> str:
    default = ('default:\n    executor: batch\n    queue: "s3rules-fuzz-no-queue"\n'
               '    job_definition: "s3rules-fuzz-no-jd"\n') if batch else ""
    return (f'samples: "samples.csv"\n{default}rule all:\n    input: expand("s3://{bucket}/out/{{sample}}.txt")\n'
            f'rule w:\n    output: "s3://{bucket}/out/{{sample}}.txt"\n    shell: "echo {{label}} > {{output}}"\n')


LOCAL_FAILING = '''\
samples: "samples.csv"
rule all:
    input: expand("out/{sample}.txt")
rule w:
    output: "out/{sample}.txt"
    shell: 'test -n "$AWS_SECRET_ACCESS_KEY" && echo "credentials are set; failing on purpose" >&2; exit 3'
'''

# (name, Batchfile, args, expected exit, a fragment stderr must hold (so the path was exercised))
UNREACHABLE_SCENARIOS = [
    ("bad-batchfile", 'rule a:\n    ouptut: "x"\n', ["run", "-n", "Batchfile"], 2, "did you mean 'output'"),
    ("dry-run-s3", _s3_batchfile("s3rules-fuzz-bucket", False), ["run", "-n", "Batchfile"], 2, "cannot reach S3"),
    ("run-s3", _s3_batchfile("s3rules-fuzz-bucket", False), ["run", "Batchfile"], 2, "cannot reach S3"),
    ("executor-batch", _s3_batchfile("s3rules-fuzz-bucket", False), ["run", "--executor", "batch", "Batchfile"], 2,
     "cannot reach S3"),
    ("failing-job", LOCAL_FAILING, ["run", "Batchfile"], 1, "credentials are set; failing on purpose"),
]


@pytest.mark.parametrize("name, batchfile, args, code, fragment", UNREACHABLE_SCENARIOS,
                         ids=[s[0] for s in UNREACHABLE_SCENARIOS])
def test_credentials_never_appear(tmp_path, name, batchfile, args, code, fragment):
    wf = tmp_path / "wf"
    write_files(wf, {"Batchfile": batchfile.encode(), "samples.csv": b"sample,label\ns0,a\ns1,b\n"})
    proc = s3rules_with_planted_keys(wf, args, UNREACHABLE)
    assert proc.returncode == code, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_no_secret(proc, tmp_path)
    if name == "failing-job":
        assert list((wf / ".s3rules" / "logs").rglob("*.log")), "the failing job left no log to check"


MOTO_SCENARIOS = [
    ("missing-bucket", False, ["run", "-n", "Batchfile"], "does not exist"),
    ("batch-missing-queue", True, ["run", "Batchfile"], "does not exist"),
    ("status", True, ["status", "Batchfile"], "does not exist"),
    ("cancel", True, ["cancel", "-y", "Batchfile"], "does not exist"),
    ("logs", True, ["logs", "Batchfile", "s3://s3rules-fuzz-bucket/out/s0.txt"], "does not exist"),
]


@pytest.mark.parametrize("name, batch, args, fragment", MOTO_SCENARIOS, ids=[s[0] for s in MOTO_SCENARIOS])
def test_credentials_never_appear_when_aws_answers(tmp_path, moto_s3, name, batch, args, fragment):
    """A real (moto) endpoint that signs and answers requests: missing bucket, queue, jobs."""
    moto_s3.make_bucket("s3rules-fuzz-bucket")
    bucket = "s3rules-fuzz-missing-bucket" if name == "missing-bucket" else "s3rules-fuzz-bucket"
    wf = tmp_path / "wf"
    write_files(wf, {"Batchfile": _s3_batchfile(bucket, batch).encode(), "samples.csv": b"sample,label\ns0,a\n"})
    proc = s3rules_with_planted_keys(wf, args, moto_s3.endpoint_url)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert_no_secret(proc, tmp_path)


# ---------------------------------------------------------------------------------------------
# Unknown keys: an error with a did-you-mean hint, at the key's line:col

TYPOS = [("ouptut", "output"), ("shel", "shell"), ("inptu", "input"), ("vcpu", "vcpus"), ("memroy", "memory"),
         ("queu", "queue"), ("job_defintion", "job_definition"), ("enviroment", "environment"),
         ("retires", "retries"), ("timout", "timeout")]


def _rule_with(line: str, indent: str = "    ") -> tuple[str, int]:
    text = f'rule a:\n{indent}output: "out/a.txt"\n{indent}shell: "touch {{output}}"\n{indent}{line}\n'
    return text, 4


def _default_with(line: str, indent: str = "    ") -> tuple[str, int]:
    text = f'default:\n{indent}{line}\nrule a:\n    output: "out/a.txt"\n    shell: "touch {{output}}"\n'
    return text, 2


def unknown_key_error(text: str) -> str:
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": text.encode()})
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
    assert code == 2, err
    check_outcome(code, out, err, {"Batchfile": text.encode()})
    return err


@pytest.mark.parametrize("typo, key", TYPOS)
def test_misspelled_key_in_a_rule(typo, key):
    text, line = _rule_with(f"{typo}: 1")
    err = unknown_key_error(text)
    assert err.startswith(f"{PREFIX}Batchfile:{line}:5: unknown key '{typo}' in rule 'a'; did you mean '{key}'?"), err


@pytest.mark.parametrize("typo, key", [(t, k) for t, k in TYPOS if k in SETTING_KEYS])
def test_misspelled_key_in_default(typo, key):
    text, line = _default_with(f"{typo}: 1")
    err = unknown_key_error(text)
    assert err.startswith(f"{PREFIX}Batchfile:{line}:5: unknown key '{typo}' in default; did you mean '{key}'?"), err


@pytest.mark.parametrize("typo, key", [("sampels", "samples"), ("defualt", "default"), ("smaples", "samples")])
def test_misspelled_top_level_key(typo, key):
    err = unknown_key_error(f'{typo}: "x"\nrule a:\n    output: "out/a.txt"\n    shell: "touch {{output}}"\n')
    assert err.startswith(f"{PREFIX}Batchfile:1:1: unknown top-level key '{typo}'; did you mean '{key}'?"), err


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@st.composite
def typos(draw, keys):
    key = draw(st.sampled_from([k for k in keys if len(k) >= 4]))
    kind = draw(st.sampled_from(["delete", "insert", "substitute", "transpose"]))
    i = draw(st.integers(0, len(key) - 1))
    c = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"))
    if kind == "delete":
        typo = key[:i] + key[i + 1:]
    elif kind == "insert":
        typo = key[:i] + c + key[i:]
    elif kind == "substitute":
        typo = key[:i] + c + key[i + 1:]
    else:
        i = min(i, len(key) - 2)
        typo = key[:i] + key[i + 1] + key[i] + key[i + 2:]
    assume(typo != key and typo not in RULE_KEYS + SETTING_KEYS + TOP_LEVEL_KEYS and re.fullmatch(r"[a-z_]\w*", typo))
    return key, typo


@fuzz_settings(150)
@given(st.data(), st.sampled_from(["rule", "default"]), st.sampled_from(["    ", " ", "  ", "\t", "        "]))
def test_any_one_letter_typo_gets_a_hint(data, where, indent):
    keys = RULE_KEYS + SETTING_KEYS if where == "rule" else SETTING_KEYS
    key, typo = data.draw(typos(keys))
    value = data.draw(st.sampled_from(["1", '"x"', "local", 'expand("x")']))
    text, line = (_rule_with if where == "rule" else _default_with)(f"{typo}: {value}", indent)
    err = unknown_key_error(text)
    assert err.startswith(f"{PREFIX}Batchfile:{line}:{len(indent) + 1}: unknown key '{typo}'"), err
    m = re.search(r"did you mean '(\w+)'\?", err)
    assert m, f"no hint for {typo!r} (meant {key!r}):\n{err}"
    assert levenshtein(typo, m[1]) <= levenshtein(typo, key), f"hint {m[1]!r} for {typo!r}, meant {key!r}"


# ---------------------------------------------------------------------------------------------
# Reproducers of open bugs (skipped while listed in KNOWN_BUGS)

def _skip_while_known(name: str) -> None:
    if name in KNOWN_BUGS:
        pytest.skip(f"known bug {name!r}: remove it from KNOWN_BUGS once fixed")


@pytest.mark.parametrize("literal", [r'"\x"', r'"\u12"', r'"\N{nope}"', r'"\U00110000"', '"a\x00b"', '"""\\x"""'])
def test_bad_string_literal_is_a_located_error(literal):
    _skip_while_known("bad-string-literal")
    text = f'rule a:\n    output: "o.txt"\n    shell: {literal}\n'
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": text.encode()})
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
    assert code == 2 and err.startswith(f"{PREFIX}Batchfile:3:12: "), err
    check_outcome(code, out, err, {"Batchfile": text.encode()})


def test_huge_whole_number_is_a_located_error():
    _skip_while_known("huge-int")
    text = 'rule a:\n    output: "o.txt"\n    memory: 1' + "0" * 4300 + '\n    shell: "x"\n'
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": text.encode()})
        code, out, err = run_cli(wf, ["run", "-n", "Batchfile"])
    assert code == 2 and err.startswith(f"{PREFIX}Batchfile:3:13: "), err


@pytest.mark.parametrize("make", [_nested_calls, _nested_blocks])
def test_deep_nesting_is_a_located_error(make):
    _skip_while_known("deep-nesting")
    check_batchfile(make(3000).encode(), BASES[1].files, ["run", "-n", "Batchfile"])


@pytest.mark.parametrize("text", [
    'rule a:\x0c\n    output: "o.txt"\n    shell: "x" ]\n',          # shows line 2 under "3:16"
    'rule a:\x0c\n    output: "o.txt"\n      shell: "x"\n',          # 3:5 (should be 3:7), shows line 2
    'rule a:\n    output: "o\u2028.txt"\n    shell: "x"\n  x: 1\n',  # "5:3" in a file of 4 lines
    'rule a:\n    output: "o\u2028.txt"\n    shell: (\n',            # shows '.txt"' as line 3
])
def test_line_separators_other_than_newline_keep_lines_right(text):
    _skip_while_known("splitlines")
    check_batchfile(text.encode(), {}, ["run", "-n", "Batchfile"])


def test_end_of_block_error_stays_inside_a_file_without_final_newline():
    _skip_while_known("eof-line")
    text = 'rule all:\n    input: "out/x.txt"\nrule x:\n    output: "out/x.txt"\n    shell:'   # 5 lines
    check_batchfile(text.encode(), {}, ["run", "-n", "Batchfile"])     # was: Batchfile:6:1


@pytest.mark.parametrize("text", [
    # both indents look like 8 columns; Lark counts "  \t" as 10 and then dedents to 8 (DedentError),
    # while _inconsistent_dedent_line (expandtabs) sees no inconsistent line
    'rule a:\n  \tinput: "x"\n        output: "y"\n',
    # the locator reads the inside of a triple-quoted string, or a continued line, as an indent of 0
    'rule a:\n        input: """a\nb"""\n    output: "y"\n',
    'rule a:\n        input: "x", \\\n"y"\n    output: "y"\n',
])
def test_inconsistent_dedent_is_located(text):
    _skip_while_known("dedent-unlocated")
    check_batchfile(text.encode(), {}, ["run", "-n", "Batchfile"])   # was: "Batchfile: this line's ..."


@pytest.mark.parametrize("use", ["shell", "environment"])
def test_nul_in_a_sample_value_is_refused(use):
    _skip_while_known("nul-in-command")
    if use == "shell":
        rule = '    shell: "printf \'%s\' {label} > {output}"\n'
    else:
        rule = '    environment:\n        L: "{label}"\n    shell: "printf \'%s\' \\"$L\\" > {output}"\n'
    text = ('samples: "samples.csv"\nrule all:\n    input: expand("out/{sample}.txt")\n'
            'rule w:\n    output: "out/{sample}.txt"\n' + rule)
    with workdir() as (root, wf):
        write_files(wf, {"Batchfile": text.encode(), "samples.csv": b"sample,label\ns0,a\x00b\n"})
        code, out, err = run_cli(wf, ["run", "-q", "Batchfile"])
    assert code in (1, 2) and err.count("s3rules: ") == 1 and "NUL" in err.upper(), err
