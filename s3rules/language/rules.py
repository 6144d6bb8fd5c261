"""A rule node -> a checked ``Rule``.

A rule's keys, inputs (maybe named, maybe ``expand``), outputs (maybe ``temp``/``directory``),
logs, params, condition and command; the wildcards its outputs define; which sheets its jobs
see (``binding``), worked out before the ``Rule`` is built (a ``Rule`` never changes once
made). Every name it uses is checked here (``names``), an unknown one pointed at inside its
string, with a did-you-mean.
"""
from __future__ import annotations

from ..model import Binding, InputSpec, Pattern, Rule, Template
from ..settings import Settings
from .conditions import ConditionCompiler
from .dimensions import Dimensions
from .names import NameChecker
from .parser import RuleNode, Setting, Source, Value
from .values import RULE_KEYS, SNAKEMAKE_KEYS, hint

_WRAPPERS = ("temp", "directory")


class RuleReader(NameChecker):
    """Builds the rules of one Batchfile, against its variables, sheets and lists."""

    def __init__(self, source: Source, base_dir: str, variables: dict[str, str], dims: Dimensions):
        super().__init__(source, base_dir, variables, dims)

    def rule(self, node: RuleNode, index: int, defaults: Settings) -> Rule:
        """Each step needs the ones before it; the binding comes before the (frozen) ``Rule``."""
        by_key = self.keys(node)
        self.condition_constants: list[str] = []
        per_job: list = []
        settings = self.settings(node.settings, defaults, f"rule '{node.name}'", per_job)
        inputs, input_values = self.inputs(by_key.get("input"))
        outputs, output_names, temp, dirs, output_values = self.outputs(by_key.get("output"))
        logs, log_names, log_values = self.logs(by_key.get("log"))
        params = self.params(by_key.get("params"))
        shell_value = self.one(by_key["shell"]) if "shell" in by_key else None
        shell = self.shell(shell_value)
        self.check_parts(node, inputs, outputs, shell, logs)
        wildcards = self.wildcards(node, outputs, output_values)
        namespace, bindings = self.binding(wildcards)
        inputs = [self.expand_source(spec, value, wildcards) for spec, value in zip(inputs, input_values)]
        when = self.when(node, by_key.get("when"), namespace)
        rule = Rule(node.name, index, node.line, tuple(inputs), tuple(outputs), shell, settings, wildcards,
                    namespace=namespace, bindings=bindings, output_names=tuple(output_names),
                    temp=frozenset(temp), directories=frozenset(dirs), logs=tuple(logs),
                    log_names=tuple(log_names), params=tuple((n, t) for n, t, _ in params), when=when,
                    resources=tuple((k, t) for k, t, _ in per_job), path=self.source.path)
        self.check_names(rule, node, input_values, shell_value, by_key, params, per_job, log_values)
        return self.finish(rule, by_key)

    # -- the parts ----------------------------------------------------------------------------
    def keys(self, node: RuleNode) -> dict[str, Setting]:
        by_key: dict[str, Setting] = {}
        for s in node.settings:
            if s.name in by_key:
                raise self.error(f"'{s.name}' is given twice in rule '{node.name}'", s)
            if s.label is not None:
                raise self.error(f"'{s.name} {s.label}:' is not a rule key", s)
            by_key[s.name] = s
        return by_key

    def entries(self, setting: Setting | None) -> list[tuple[str | None, Value]]:
        """(group name or None, value) for each value of ``input:``/``output:``/``log:``, in order:
        on the key's line, on lines below it, or in named groups (``reads: "a", "b"``)."""
        if setting is None:
            return []
        out: list[tuple[str | None, Value]] = [(None, v) for v in setting.values]
        if setting.is_block:
            out = []
            named = None
            for entry in setting.order:
                if isinstance(entry, Setting):
                    if entry.children or entry.label:
                        raise self.error(f"'{setting.name}.{entry.name}' takes values, not a block", entry)
                    if entry.name in SNAKEMAKE_KEYS or entry.name in RULE_KEYS:
                        raise self.error(f"'{entry.name}:' is indented under '{setting.name}:'; a rule's keys "
                                         "line up with each other", entry)
                    if any(n == entry.name for n, _ in out):
                        raise self.error(f"'{setting.name}.{entry.name}' is named twice", entry)
                    named = entry
                    out += [(entry.name, v) for v in entry.values]
                elif named is not None:
                    raise self.error(f"an unnamed {setting.name} after named ones: put unnamed values first "
                                     f"(they are {{{setting.name}[0]}}, ...)", entry)
                else:
                    out.append((None, entry))
        return out

    def inputs(self, setting: Setting | None) -> tuple[list[InputSpec], list[Value]]:
        """The input patterns, and the strings they came from (to point into them later)."""
        specs, values = [], []
        for name, v in self.entries(setting):
            expand = False
            if v.kind == "call":
                if v.value != "expand":
                    raise self.error(f"unknown function '{v.value}'" + hint(v.value, ["expand"])
                                     + " (inputs may use expand(\"pattern\"))", v)
                self.check_expand_call(v)
                expand, v = True, v.args[0]
            elif v.kind != "string":
                raise self.error(f"an input is a quoted path or expand(...), not {v.raw!r}", v)
            specs.append(InputSpec(self.template(v, Pattern, base_dir=self.base_dir), expand, name))
            values.append(v)
        return specs, values

    def check_expand_call(self, v: Value) -> None:
        keywords = [a for a in v.args if a.kind == "keyword"]
        if keywords:
            k = keywords[0]
            raise self.error(f"expand fills {{{k.value}}} itself, from the sheets' columns and the list "
                             f"variables: drop `{k.value}=...` and, for values no sheet holds, write a list "
                             f"variable: {k.value} = [\"a\", \"b\"]", k)
        if len(v.args) != 1 or v.args[0].kind != "string":
            raise self.error("expand takes one string: expand(\"{root}/{sample}.txt\")", v)

    def outputs(self, setting: Setting | None):
        patterns, names, temp, dirs, values = [], [], [], [], []
        for name, v in self.entries(setting):
            wrappers = set()
            while v.kind == "call" and v.value in _WRAPPERS and len(v.args) == 1:
                wrappers.add(v.value)
                v = v.args[0]
            if v.kind == "call":
                raise self.error(f"unknown function '{v.value}'" + hint(v.value, _WRAPPERS)
                                 + " (outputs may be temp(\"path\") or directory(\"path\"))", v)
            if v.kind != "string":
                raise self.error(f"an output is a quoted path, not {v.raw!r}", v)
            pattern = self.template(v, Pattern, base_dir=self.base_dir)
            if pattern.whole:
                raise self.error("an output needs literal text around its wildcard, like "
                                 "\"out/{sample}.txt\"", v)
            if pattern.text in {p.text for p in patterns}:
                raise self.error("this output is listed twice", v)
            if "temp" in wrappers:
                temp.append(len(patterns))
            if "directory" in wrappers:
                dirs.append(len(patterns))
            patterns.append(pattern)
            names.append(name)
            values.append(v)
        return patterns, names, temp, dirs, values

    def logs(self, setting: Setting | None):
        patterns, names, values = [], [], []
        for name, v in self.entries(setting):
            if v.kind != "string":
                raise self.error(f"a log is a quoted path, not {v.raw!r}", v)
            patterns.append(self.template(v, Pattern, base_dir=self.base_dir))
            names.append(name)
            values.append(v)
        return patterns, names, values

    def params(self, setting: Setting | None) -> list[tuple[str, Template, Value]]:
        if setting is None:
            return []
        if not setting.is_block or setting.values:
            raise self.error("params: takes an indented block of `name: \"value\"` lines; the command "
                             "reads them as {params.name}", setting)
        return [(name, self.template(v) if v.kind == "string" else Template(v.raw.replace("{", "{{")), v)
                for name, v in self.mapping(setting)]

    def shell(self, value: Value | None) -> Template | None:
        """The command: checked as written (so errors point into the file), then dedented."""
        if value is None:
            return None
        return Template(_dedent_command(self.template(value).text))

    def check_parts(self, node: RuleNode, inputs, outputs, shell, logs) -> None:
        """A rule either lists targets (inputs only) or makes outputs with a command."""
        if outputs and shell is None:
            raise self.error(f"rule '{node.name}' has outputs but no shell: command to make them", node)
        if shell is not None and not outputs:
            raise self.error(f"rule '{node.name}' has a shell: command but no output: s3rules runs a job "
                             "to make its outputs, and skips it when they exist", node)
        if not outputs and not inputs:
            raise self.error(f"rule '{node.name}' has neither input nor output", node)
        if logs and not outputs:
            raise self.error(f"rule '{node.name}' has a log: but runs nothing", node)

    def wildcards(self, node: RuleNode, outputs: list[Pattern], output_values: list[Value]) -> tuple[str, ...]:
        """The first output's wildcards; a job makes all its outputs, so each must use the same."""
        wildcards = outputs[0].names if outputs else ()
        for pattern, value in zip(outputs, output_values):
            if set(pattern.names) != set(wildcards):
                raise self.error(f"every output of rule '{node.name}' must use the same wildcards: "
                                 f"{{{'}, {'.join(wildcards)}}} vs {{{'}, {'.join(pattern.names)}}}", value)
        return wildcards

    def binding(self, wildcards: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Binding, ...]]:
        """Which sheets the rule's jobs see: each whose key the wildcards cover, unless another
        such sheet already joins it. The namespace is the wildcards, then those rows' columns."""
        chosen = [v for v in self.dims.views if set(v.key_columns) <= set(wildcards)]
        covered = set()
        for view in chosen:
            stack = list(view.joins)
            while stack:
                j = stack.pop()
                covered.add(id(j))
                stack.extend(j.joins)
        chosen = [v for v in chosen if id(v) not in covered]
        namespace = wildcards
        bindings = []
        for view in chosen:
            bindings.append(Binding(view, tuple(wildcards.index(c) for c in view.key_columns)))
            namespace += view.columns
        return namespace, tuple(bindings)

    def expand_source(self, spec: InputSpec, value: Value, wildcards: tuple[str, ...]) -> InputSpec:
        """Where an ``expand`` takes its values: the first-listed sheet holding every column the
        pattern names (joined rows), and each list variable it names (a product)."""
        if not spec.expand:
            return spec
        columns = self.dims.columns()
        names = spec.pattern.names
        lists = tuple(n for n in names if n in self.dims.lists)
        sheet_names = [n for n in names if n in columns and n not in lists]
        for n in names:
            if n not in columns and n not in lists and n not in wildcards:
                known = sorted(set(columns) | set(self.dims.lists))
                raise self.error_in_string(
                    f"expand fills {{{n}}} from sheet columns and list variables, and {n} is neither"
                    + hint(n, known) + f" (it knows: {', '.join(known) or 'nothing: add a sheet or a list'})",
                    value, "{" + n)
        view = None
        if sheet_names:
            view = self.dims.view_holding(sheet_names)
            if view is None:
                where = ", ".join(f"{n} ({columns[n].path})" for n in sheet_names)
                raise self.error(f"expand names columns that no sheet holds together: {where}; join the "
                                 "sheets (a column of one that is the other's key)", value)
        return InputSpec(spec.pattern, True, spec.name, view, lists)

    def when(self, node: RuleNode, setting: Setting | None, namespace: tuple[str, ...]):
        if setting is None:
            return None
        value = self.one(setting, ("expr", "word", "string", "number"))
        positions = {name: i for i, name in enumerate(namespace)}
        constants: dict[str, object] = dict(self.variables)
        lists = self.dims.lists
        for name, lst in lists.items():
            constants[name] = (lambda name=name: lists[name].values) if not lst.ready else lst.values
        compiler = ConditionCompiler(positions, constants,
                                     lambda name, v: self.unknown_in_condition(node, name, v, namespace),
                                     lambda message, v: self.error(message, v))
        text = self.source.line_text(setting.line)[setting.column - 1:].split("#")[0].strip()
        condition = compiler.compile(value, text.partition(":")[2].strip())
        self.condition_constants = compiler.constants_used
        return condition


def _dedent_command(text: str) -> str:
    """Triple-quoted commands are indented like the Batchfile; strip that margin."""
    import textwrap
    if "\n" not in text:
        return text
    return textwrap.dedent(text.lstrip("\n")).strip("\n") + "\n" if text.strip() else ""
