"""Defaults live only in the config schema: no package module carries a copy of one.

The schema (workflow/schemas/config.schema.yaml) fills every default before a job starts, and
each job reads its validated slice, so a default written again in code is at best dead and at
worst a second value that drifts (``warmup_ratio`` was 0.0 in code and 0.05 in the schema).
This test finds, in every module of ``prefsweep/``, a schema key given its schema default as
a dict entry, a keyword/argument default, a dataclass field default or a ``.get(key, default)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from prefsweep.config import load_schema

PACKAGE = Path(__file__).resolve().parents[2] / "prefsweep"


def schema_defaults() -> dict[str, set]:
    """Every scalar default of the schema, by key name (a name may have several)."""
    schema = load_schema()
    found: dict[str, set] = {}

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = schema
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                walk(target)
            for key, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "default" in sub and isinstance(sub["default"], (str, int, float, bool)):
                    found.setdefault(key, set()).add(repr(sub["default"]))
                walk(sub)
            for sub in node.values():
                if isinstance(sub, (dict, list)):
                    walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(schema)
    return found


def default_copies(tree: ast.AST, defaults: dict[str, set]) -> list[str]:
    hits = []

    def check(name, value, line):
        if isinstance(value, ast.Constant) and name in defaults and repr(value.value) in defaults[name]:
            hits.append(f"line {line}: {name} = {value.value!r}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    check(k.value, v, node.lineno)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
                check(arg.arg, default, node.lineno)
            for arg, default in zip(args.kwonlyargs, args.kw_defaults):
                if default is not None:
                    check(arg.arg, default, node.lineno)
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                    check(stmt.target.id, stmt.value, stmt.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "setdefault"):
            if len(node.args) == 2 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                check(node.args[0].value, node.args[1], node.lineno)
    return hits


def test_the_scan_finds_a_copy():
    tree = ast.parse('X = {"warmup_ratio": 0.05}\ndef f(beta=0.1): ...\ncfg.get("learning_rate", 2.0e-4)\n')
    assert len(default_copies(tree, schema_defaults())) == 3


@pytest.mark.parametrize("module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")))
def test_no_module_repeats_a_schema_default(module):
    hits = default_copies(ast.parse((PACKAGE / module).read_text()), schema_defaults())
    assert not hits, f"prefsweep/{module} repeats schema defaults (read the validated config instead): {hits}"
