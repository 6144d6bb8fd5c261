"""The package's shape, as README.md's Development section states it.

Imports point one way (language -> model ... -> cli: a module never imports one of a later
layer, lazily or not, and no two modules import each other in a cycle); no module is over 450
lines; no function is over 50 lines unless its docstring says why ("long because").
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s3rules"

# Each module's layer: a module may import its own layer and earlier ones only.
LAYERS = [
    ("s3rules.errors", "s3rules.settings"),
    ("s3rules.model",),
    ("s3rules.language",),
    ("s3rules.planner",),
    ("s3rules.storage",),
    ("s3rules.ledger",),
    ("s3rules.executors.base", "s3rules.executors.registry", "s3rules.executors.stager"),
    ("s3rules.aws",),
    ("s3rules.executors.local", "s3rules.executors.batch"),
    ("s3rules.runner", "s3rules.progress", "s3rules.views", "s3rules.workspace", "s3rules.reports"),
    ("s3rules.api", "s3rules.cli", "s3rules.__main__", "s3rules"),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def layer(module: str) -> int:
    best = None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{module} is in no layer of tests/test_layout.py"
    return best[0]


def imports(name: str, path: Path) -> set[str]:
    """s3rules modules that ``name`` imports anywhere in its text (lazy imports included)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "s3rules")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "s3rules":
                continue
            known = modules()
            for alias in node.names:   # `from . import batch` imports the module s3rules.cli.batch
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def test_imports_point_one_way():
    known = modules()
    wrong = []
    for name, path in known.items():
        for target in imports(name, path):
            if target in known and layer(target) > layer(name):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports that point to a later layer:\n" + "\n".join(wrong)


def test_no_import_cycles():
    known = modules()
    graph = {name: {t for t in imports(name, path) if t in known and t != name
                    and not name.startswith(t + ".")}   # a submodule may read its package's names
             for name, path in known.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_readable_in_one_sitting(name):
    path = modules()[name]
    lines = path.read_text().count("\n")
    assert lines <= 450, f"{path.relative_to(PACKAGE.parent)} has {lines} lines"
    long = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > 50 and "long because" not in (ast.get_docstring(node) or ""):
                long.append(f"{node.name} ({length} lines)")
    assert not long, f"{path.relative_to(PACKAGE.parent)}: functions over 50 lines without a reason: {long}"


def test_the_layer_table_names_only_real_modules():
    known = modules()
    for names in LAYERS:
        for prefix in names:
            assert any(m == prefix or m.startswith(prefix + ".") for m in known), prefix


def test_every_mutant_still_finds_the_code_it_breaks():
    """tests/mutants.py edits s3rules by exact text: a refactor that moves that text must move the
    mutant with it, or the mutation check would stop checking its promise."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    import mutants
    for m in mutants.MUTANTS:
        path = Path(__file__).resolve().parent.parent / m.path
        assert path.exists() and path.read_text().count(m.old) == 1, (m.name, m.path)
