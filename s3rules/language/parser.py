"""Batchfile text -> positioned syntax tree.

Only syntax lives here: the Lark grammar, the indenter, and the one place that turns Lark's
exceptions into a ``BatchfileError`` with file:line:col and a caret. Meaning (which keys exist,
what a wildcard is) is checked later by ``loader``, so this module stays a faithful tree builder.
"""
from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import DedentError, Indenter

from ..errors import BatchfileError


@dataclass(frozen=True)
class Source:
    """Where a node came from; ``locate`` turns it into an error."""

    path: str
    text: str = field(repr=False)

    @property
    def lines(self) -> list[str]:
        """The file's lines as Lark counts them: split at "\n" only."""
        lines = self.text.split("\n")
        if lines and lines[-1] == "" and len(lines) > 1:
            lines.pop()
        return [line.rstrip("\r") for line in lines]

    def line_text(self, line: int) -> str:
        lines = self.lines
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def error(self, message: str, line: int | None, column: int | None) -> BatchfileError:
        source_line = self.line_text(line) if line else None
        return BatchfileError(message, self.path, line, column, source_line)


@dataclass(frozen=True)
class Value:
    """A literal or a call such as ``expand("...")``. ``raw`` is the token as written."""

    # "string" | "number" | "word" (a bare name, maybe dotted) | "call" (args) | "list" (args) |
    # "keyword" (``name=value`` in a call: value is the name, args the value) |
    # "expr" (value is the operator: "==", "!=", "in", "not in", "and", "or", "not"; args)
    kind: str
    value: object
    line: int
    column: int
    raw: str = ""
    args: tuple["Value", ...] = ()

    def offset_position(self, offset_in_raw: int) -> tuple[int, int]:
        """Line and column of a character inside the raw token (for pointing into strings)."""
        before = self.raw[:offset_in_raw]
        newlines = before.count("\n")
        if newlines:
            return self.line + newlines, offset_in_raw - before.rfind("\n")
        return self.line, self.column + offset_in_raw


    def walk(self):
        """This value and every value inside it."""
        yield self
        for arg in self.args:
            yield from arg.walk()


@dataclass(frozen=True)
class Setting:
    """``name: values`` or ``name:`` + an indented block of settings and/or value lines.

    ``label`` is the second word of ``sheet units: ...``; ``order`` lists the block's entries as
    written (settings and value lines interleaved), for the keys where positions matter.
    """

    name: str
    line: int
    column: int
    values: tuple[Value, ...] = ()
    children: tuple["Setting", ...] = ()
    is_block: bool = False
    label: str | None = None
    order: tuple = ()


@dataclass(frozen=True)
class Assign:
    name: str
    line: int
    column: int
    value: Value


@dataclass(frozen=True)
class RuleNode:
    name: str
    line: int
    column: int
    settings: tuple[Setting, ...]


@dataclass(frozen=True)
class Document:
    source: Source
    items: tuple[Setting | Assign | RuleNode, ...]


class _BatchfileIndenter(Indenter):
    """Python-style blocks; remembers the newline it is handling, to locate a bad dedent."""

    last_newline: Token | None = None

    def handle_NL(self, token: Token):
        self.last_newline = token
        yield from super().handle_NL(token)

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@lru_cache(maxsize=1)
def _lark() -> Lark:
    # cache=True keeps Lark's grammar analysis in a temp file keyed by the grammar's hash:
    # it saves most of the 80 ms that building the LALR tables takes on every run.
    return Lark.open("grammar.lark", rel_to=__file__, parser="lalr", postlex=_BatchfileIndenter(),
                     propagate_positions=True, maybe_placeholders=False, cache=True)


@v_args(inline=True)
class _ToNodes(Transformer):
    """Builds the dataclasses; never validates (errors raised here would come back wrapped)."""

    def string(self, tok: Token) -> Value:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # "\d" keeps its backslash, as in Python
                text = ast.literal_eval(tok.value)
        except (ValueError, SyntaxError, MemoryError) as exc:
            why = getattr(exc, "msg", None) or str(exc)
            raise _BadToken(tok, f"this string is not valid: {why}") from None
        return Value("string", text, tok.line, tok.column, tok.value)

    def number(self, tok: Token) -> Value:
        text = tok.value
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise _BadToken(tok, "this number is too long") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise _BadToken(tok, "this number is too large") from None
        return Value("number", number, tok.line, tok.column, text)

    def word(self, *names: Token) -> Value:
        text = ".".join(n.value for n in names)
        return Value("word", text, names[0].line, names[0].column, text)

    def call(self, name: Token, args=None) -> Value:
        return Value("call", name.value, name.line, name.column, name.value, tuple(args or ()))

    def args(self, *args: Value) -> tuple[Value, ...]:
        return args

    def keyword(self, name: Token, value: Value) -> Value:
        return Value("keyword", name.value, name.line, name.column, name.value, (value,))

    @v_args(meta=True)
    def list(self, meta, children) -> Value:
        items = children[0] if children and children[0] is not None else ()
        return Value("list", None, meta.line, meta.column, "[", tuple(items))

    def compare(self, left: Value, op: Token, right: Value) -> Value:
        return _expr(op.value, op, left, right)

    def in_(self, left: Value, right: Value) -> Value:
        return _expr("in", left, left, right)

    def not_in(self, left: Value, op: Token, right: Value) -> Value:
        return _expr("not in", op, left, right)

    def and_(self, left: Value, right: Value) -> Value:
        return _expr("and", left, left, right)

    def or_(self, left: Value, right: Value) -> Value:
        return _expr("or", left, left, right)

    def not_(self, op: Token, operand: Value) -> Value:
        return _expr("not", op, operand)

    def values(self, *values: Value) -> tuple[Value, ...]:
        return values

    def body(self, *entries) -> tuple[tuple[Setting, ...], tuple[Value, ...], tuple]:
        settings = tuple(e for e in entries if isinstance(e, Setting))
        values = tuple(v for e in entries if isinstance(e, tuple) for v in e)
        order = tuple(v for e in entries for v in (e if isinstance(e, tuple) else (e,)))
        return settings, values, order

    body_only = body

    def inline_setting(self, name: Token, values) -> Setting:
        return Setting(name.value, name.line, name.column, tuple(values))

    def block_setting(self, name: Token, body) -> Setting:
        children, values, order = body
        return Setting(name.value, name.line, name.column, values, children, is_block=True, order=order)

    def labelled_setting(self, name: Token, label: Token, values) -> Setting:
        return Setting(name.value, name.line, name.column, tuple(values), label=label.value)

    def labelled_block(self, name: Token, label: Token, values, body) -> Setting:
        children, _, order = body
        return Setting(name.value, name.line, name.column, tuple(values), children, label=label.value,
                       order=order)

    def assign(self, name: Token, value: Value) -> Assign:
        return Assign(name.value, name.line, name.column, value)

    def rule(self, name: Token, body) -> RuleNode:
        children, values, _ = body
        if values:
            # A bare value line directly in a rule body: report it like a syntax error.
            raise _BareValue(values[0])
        return RuleNode(name.value, name.line, name.column, children)

    def start(self, *items):
        return tuple(items)


def _expr(op: str, where, *operands: Value) -> Value:
    """An operator node, placed where its operator (or its first operand) is."""
    return Value("expr", op, where.line, where.column, op, operands)


class _BareValue(Exception):
    """A value line directly in a rule; raised in ``_ToNodes``, located by ``parse``."""

    def __init__(self, value: Value):
        self.value = value


class _BadToken(Exception):
    """A string or number token Python cannot read; raised in ``_ToNodes``, located by ``parse``."""

    def __init__(self, token: Token, message: str):
        self.token, self.message = token, message


MAX_DEPTH = 100   # brackets or blocks nested deeper than this are refused, not a RecursionError


_EXPECTED_NAMES = {
    "_NL": "end of line", "_INDENT": "an indented block", "_DEDENT": "end of block",
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "SIGNED_NUMBER": "a number",
    "COLON": "':'", "COMMA": "','", "LPAR": "'('", "RPAR": "')'", "EQUAL": "'='", "RULE": "'rule'",
    "LSQB": "'['", "RSQB": "']'", "DOT": "'.'", "COMPARE": "'==' or '!='", "NOT": "'not'", "IN": "'in'",
    "AND": "'and'", "OR": "'or'",
}


def _describe_expected(expected) -> str:
    names = sorted({_EXPECTED_NAMES.get(e, e) for e in expected})
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def parse(text: str, path: str = "<Batchfile>") -> Document:
    """Parse Batchfile ``text``; raise ``BatchfileError`` located at the first syntax error."""
    source = Source(path, text)
    if not text.endswith("\n"):
        text += "\n"
    try:
        items = _ToNodes().transform(_lark().parse(text))
    except Exception as exc:
        error = _syntax_error(exc, source, text)
        if error is None:
            raise
        raise error from None
    return Document(source, items)


def _syntax_error(exc: Exception, source: Source, text: str) -> BatchfileError | None:
    """The located error for what Lark or ``_ToNodes`` raised; None for anything else (a bug)."""
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        hint = " (unterminated string?)" if char in "\"'" else ""
        return source.error(f"unexpected character {char!r}{hint}", exc.line, exc.column)
    if isinstance(exc, UnexpectedToken):
        return _unexpected_token(exc, source, text)
    if isinstance(exc, UnexpectedEOF):
        return _eof_error(source, text)
    if isinstance(exc, DedentError):
        nl = _lark().options.postlex.last_newline
        line, column = (nl.end_line, nl.end_column) if nl is not None else (None, None)
        return source.error("this line's indentation matches no enclosing block", line, column)
    if isinstance(exc, RecursionError):
        return _too_deep(source, text)
    if isinstance(exc, UnexpectedInput):   # any other Lark complaint, still located
        return source.error(str(exc).splitlines()[0], exc.line, exc.column)
    bare = getattr(exc, "orig_exc", None)   # raised inside _ToNodes, wrapped by Lark
    if isinstance(bare, RecursionError):
        return _too_deep(source, text)
    if isinstance(bare, _BadToken):
        return source.error(bare.message, bare.token.line, bare.token.column)
    if isinstance(bare, _BareValue):
        v = bare.value
        return source.error("a value without a key; write `key: value` (input:, output:, shell: ...)",
                            v.line, v.column)
    return None


def _unexpected_token(exc: UnexpectedToken, source: Source, text: str) -> BatchfileError:
    """Lark names the token it stopped at; say it the way the Batchfile's writer sees it."""
    tok = exc.token
    if tok.type == "$END":
        return _eof_error(source, text)
    if {"RPAR", "RSQB"} & set(exc.expected) and tok.type in ("_DEDENT", "_NL", "$END"):
        opened = _unclosed_paren(text)
        if opened is not None:
            return source.error(f"this '{opened[0]}' is never closed", *opened[1:])
    line, column = tok.line, tok.column
    if tok.type in ("_NL", "_INDENT", "_DEDENT"):
        line, column = _position_after_token(source, tok)
    if tok.type == "_INDENT" and source.line_text(line - 1).split("#")[0].rstrip().endswith(","):
        message = ("a list does not continue on the next line after a trailing ','; write the key alone "
                   "and every value on its own indented line below it (`input:` then `\"a\",` ...), or "
                   "keep the values on one line")
    elif tok.type == "_INDENT":
        message = "unexpected indentation"
    elif exc.expected == {"_NL"} and source.line_text(line - 1).rstrip().endswith(":"):
        message = "expected an indented block after the line ending with ':'"
    else:
        what = {"_NL": "end of line", "_DEDENT": "end of block"}.get(tok.type, repr(tok.value))
        message = f"unexpected {what}; expected {_describe_expected(exc.expected)}"
    return source.error(message, line, column)


def _too_deep(source: Source, text: str) -> BatchfileError:
    line, column = _deepest(text)
    return source.error(f"nested more than {MAX_DEPTH} levels deep", line, column)


def _position_after_token(source: Source, tok: Token) -> tuple[int, int]:
    """Newline and indent tokens start at the end of the previous line: point there, or at the next line."""
    last = max(len(source.lines), 1)
    if tok.type == "_INDENT" or tok.type == "_DEDENT":
        line = (tok.end_line or tok.line or 1)
        if line > last:   # the end of the file: point just after its last character
            return last, len(source.line_text(last)) + 1
        text = source.line_text(line)
        return line, len(text) - len(text.lstrip()) + 1
    line = min(tok.line or 1, last)
    return line, min(max(tok.column or 1, 1), len(source.line_text(line)) + 1)


# A string or a comment (skipped whole), else a bracket (group 1): one regex scan finds the
# brackets outside strings and comments, fast enough for the deepest file an error reports on.
_BRACKET = re.compile(r'''""".*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|([()\[\]])''',
                      re.S)


def _brackets(text: str):
    """Positions and characters of the brackets outside strings and comments."""
    for m in _BRACKET.finditer(text):
        if m.group(1):
            yield m.start(), m.group(1)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _unclosed_paren(text: str) -> tuple[str, int, int] | None:
    """The last '(' or '[' left open, with its line and column."""
    stack = []
    for pos, char in _brackets(text):
        if char in "([":
            stack.append((pos, char))
        elif stack:
            stack.pop()
    if not stack:
        return None
    pos, char = stack[-1]
    return (char, *_line_col(text, pos))


def _eof_error(source: Source, text: str) -> BatchfileError:
    opened = _unclosed_paren(text)
    if opened is not None:
        return source.error(f"this '{opened[0]}' is never closed", *opened[1:])
    lines = source.lines or [""]
    return source.error("unexpected end of file (an unclosed bracket or string?)",
                        len(lines), len(lines[-1]) + 1)


def _deepest(text: str) -> tuple[int, int]:
    """Where brackets or indentation first nest deeper than MAX_DEPTH (strings skipped)."""
    depth = 0
    for pos, char in _brackets(text):
        depth += 1 if char in "([" else -1
        if depth > MAX_DEPTH:
            return _line_col(text, pos)
    levels = [0]
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        while indent < levels[-1]:
            levels.pop()
        if indent > levels[-1]:
            levels.append(indent)
        if len(levels) > MAX_DEPTH:
            return number, indent + 1
    return 1, 1
