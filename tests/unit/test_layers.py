"""The package's layers: every import (module level or inside a function) goes down, never up,
and no two modules import each other through any chain.

Layers, bottom first (:data:`LAYERS`): file and process helpers; the output layout; the config;
experiment tracking; then the stages, each importing only the ones below it: data, train, eval;
plots and cost at the top. A module may import any module of a lower layer and modules of its
own subpackage.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "prefsweep"

#: Layer of each top-level unit of the package (a module or a subpackage), bottom first.
LAYERS: list[tuple[str, ...]] = [
    ("io", "hub", "shellquote", "distributed", "launch", "plugins"),
    ("paths",),
    ("config",),
    ("tracking",),
    ("data",),
    ("train",),
    ("eval",),
    ("plots", "cost"),
    ("experiment",),
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """``prefsweep.eval.judges.llm`` -> ``eval``."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path) -> set[str]:
    """Every ``prefsweep`` module ``path`` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("prefsweep."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prefsweep"):
            for a in node.names:  # `from prefsweep.eval import judges` imports a module
                sub = f"{node.module}.{a.name}"
                out.add(sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                        or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else node.module)
    return {m for m in out if m != "prefsweep"}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph()} - {""}
    assert units <= RANK.keys(), f"no layer for {sorted(units - RANK.keys())}: add them to LAYERS"


def test_imports_only_go_down():
    upward = []
    for module, deps in graph().items():
        for dep in deps:
            a, b = unit(module), unit(dep)
            if a and b and a != b and RANK[b] >= RANK[a]:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports that go up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    g = graph()
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
