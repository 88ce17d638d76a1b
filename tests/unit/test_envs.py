"""Conda stays available per rule but opt-in: env files match pyproject.toml, no profile turns
conda on (``--sdm conda`` does, see docs/cluster.md "What runs where")."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.conftest import REPO

# They run Snakemake on the submit host, not the jobs, so job environments leave them out.
RUNNER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}
RULE_RE = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


def rule_blocks() -> dict[str, tuple[str, str]]:
    """rule name -> (its .smk file, its text up to the next rule)."""
    blocks = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(RULE_RE.finditer(text))
        for m, nxt in zip(starts, starts[1:] + [None]):
            blocks.setdefault(m[1], (smk, text[m.start(): nxt.start() if nxt else len(text)]))
    return blocks


def requirements(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def env_files() -> list:
    files = set()
    for smk, block in rule_blocks().values():
        for rel in re.findall(r"conda:\s*\n?\s*\"([^\"]+)\"", block):
            files.add((smk.parent / rel).resolve())
    return sorted(files)


def test_every_rule_that_runs_a_command_has_a_conda_env():
    missing = [name for name, (_, block) in rule_blocks().items() if "shell:" in block and "conda:" not in block]
    assert not missing, f"rules without conda: {missing}"
    assert env_files(), "no conda: directive found"
    for f in env_files():
        assert f.is_file(), f"conda env {f} named by a rule does not exist"


@pytest.mark.parametrize("env_file", env_files(), ids=lambda p: p.name)
def test_env_matches_pyproject(env_file):
    env = yaml.safe_load(env_file.read_text())
    deps = env["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    project = pyproject()
    assert SpecifierSet(project["requires-python"]).contains(python.split("=", 1)[1]), python

    want = {n: r for n, r in requirements(project["dependencies"]).items() if n not in RUNNER_ONLY}
    have = requirements(pip)
    assert sorted(set(want) - set(have)) == [], f"{env_file.name} lacks packages of pyproject.toml"
    assert sorted(set(have) - set(want)) == [], f"{env_file.name} has packages pyproject.toml does not"
    for name, req in want.items():
        got = have[name]
        assert (got.specifier, got.extras) == (req.specifier, req.extras), (
            f"{env_file.name}: {got} but pyproject.toml says {req}"
        )


def test_no_profile_turns_conda_on():
    for profile in sorted((REPO / "profiles").glob("*/config.yaml")):
        keys = set(yaml.safe_load(profile.read_text()))
        assert not keys & {"software-deployment-method", "sdm", "use-conda"}, profile
