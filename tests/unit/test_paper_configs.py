"""The shipped configs as overlays (issue 23): config/config.yaml sets only where the embedded
default departs from the schema, config/paper/base.yaml holds what every paper experiment shares,
and config/paper/<source>.yaml only what that source changes.

The overlays must resolve to the values the flat files had before (commit :data:`BEFORE`, read
with ``git show``), every resolved value compared key by key; a difference is allowed only when
:data:`INTENDED` names it with its reason.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import prefsweep.config as config_module
from tests.conftest import REPO

#: A commit before the overlays: it holds config/config.yaml, config/study.yaml and the six
#: config/pythia-2.8b-<source>.yaml paper configs as flat files.
BEFORE = "ce4601b"
SOURCES = ("shp", "multipref", "helpsteer2", "ultrafeedback", "prism", "hh")
PAPER_BASE = "config/paper/base.yaml"

#: ``experiment name -> (config files now, merged over config/config.yaml; the file at BEFORE)``.
SHIPPED: dict[str, tuple[tuple[str, ...], str | None]] = {
    "default": ((), None),
    "study": (("config/study.yaml",), "config/study.yaml"),
    **{f"pythia-2.8b-{s}": ((PAPER_BASE, f"config/paper/{s}.yaml"), f"config/pythia-2.8b-{s}.yaml") for s in SOURCES},
}

_PRICE = ("gpt-4's list price now sits in config/paper/base.yaml beside the judge it prices (only the "
          "SHP config had it): make plan prints every paper experiment's judge cost; a plan-only key, in "
          "no job's config slice, so nothing reruns")
#: ``(experiment, dotted key) -> (value at BEFORE, value now, reason)``.
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    **{(f"pythia-2.8b-{s}", "eval.judge.price_prompt_per_1k"): (None, 0.03, _PRICE) for s in SOURCES if s != "shp"},
    **{(f"pythia-2.8b-{s}", "eval.judge.price_completion_per_1k"): (None, 0.06, _PRICE) for s in SOURCES if s != "shp"},
}


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of a config's leaves (mappings descended, lists kept whole)."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: node}


def git_show(path: str) -> str:
    """The text of ``path`` at :data:`BEFORE`; skips when this checkout lacks that commit."""
    proc = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:{path}"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"git show {BEFORE}:{path} failed (not a git checkout with that commit): {proc.stderr.strip()}")
    return proc.stdout


def resolve_over(default_text: str, files: list[Path], monkeypatch, tmp_path: Path) -> dict:
    """:func:`prefsweep.config.load_config` of ``files`` with ``default_text`` in place of
    config/config.yaml (validated and filled with today's schema, cross-key checks not run)."""
    default = tmp_path / f"default-{len(list(tmp_path.iterdir()))}.yaml"
    default.write_text(default_text, encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.setattr(config_module, "DEFAULT_CONFIG_PATH", default)
        return config_module.load_config(*files, check=False)


def before(name: str, monkeypatch, tmp_path: Path) -> dict:
    """Experiment ``name`` as its flat files at :data:`BEFORE` resolve under today's schema."""
    _, old = SHIPPED[name]
    files = []
    if old:
        files.append(tmp_path / Path(old).name)
        files[0].write_text(git_show(old), encoding="utf-8")
    return resolve_over(git_show("config/config.yaml"), files, monkeypatch, tmp_path)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_configs_resolve_as_before(name, monkeypatch, tmp_path):
    """Every shipped experiment (default, study, the six paper configs as base + source) has the
    values it had as flat files, key by key, except the differences :data:`INTENDED` names."""
    files, _ = SHIPPED[name]
    now = flat(config_module.load_config(*(REPO / f for f in files)))  # cross-key checks pass too
    old = flat(before(name, monkeypatch, tmp_path))
    changed = {key: (old.get(key, "<absent>"), now.get(key, "<absent>"))
               for key in sorted(set(old) | set(now)) if old.get(key, "<absent>") != now.get(key, "<absent>")}
    intended = {key: (was, new) for (exp, key), (was, new, _) in INTENDED.items() if exp == name}
    assert changed == intended
    assert now["experiment"] == name


def layers(name: str) -> list[Path]:
    """The files experiment ``name`` is built from, lowest first (config/config.yaml included)."""
    return [REPO / "config" / "config.yaml", *(REPO / f for f in SHIPPED[name][0])]


def restated(path: Path, beneath: dict) -> dict[str, Any]:
    """The leaves of the config file ``path`` whose value ``beneath`` (the config it is merged
    over, resolved) already has: an overlay should state only what differs."""
    below = flat(beneath)
    mine = flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return {key: value for key, value in mine.items() if key in below and below[key] == value}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_config_file_states_only_what_differs(name, monkeypatch, tmp_path):
    """No shipped file repeats a value it would get anyway: config/config.yaml none of the
    schema's defaults, an overlay none of the files under it (so a changed default reaches it)."""
    files = layers(name)
    # experiment has no default (it is required): a name no shipped file uses
    below_default = resolve_over("experiment: schema-defaults-only\n", [], monkeypatch, tmp_path)
    assert restated(files[0], below_default) == {}
    for i, path in enumerate(files[1:], start=1):
        beneath = config_module.load_config(*files[1:i], check=False)
        assert restated(path, beneath) == {}, f"{path.relative_to(REPO)} restates these values"


def header(path: str) -> str:
    """The comment lines a config file opens with."""
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))])


@pytest.mark.parametrize("source", SOURCES)
def test_each_paper_file_opens_with_the_command_that_runs_it(source):
    """Both files in ONE --configfile option (a second option would replace the first): the
    comment at the top of every source file gives that command, exactly."""
    command = f"snakemake --profile profiles/slurm --configfile {PAPER_BASE} config/paper/{source}.yaml"
    assert f"#   {command}\n" in header(f"config/paper/{source}.yaml") + "\n"


def test_the_paper_base_opens_with_the_commands_that_run_it():
    head = header(PAPER_BASE) + "\n"
    assert f"#   snakemake --profile profiles/slurm --configfile {PAPER_BASE} config/paper/shp.yaml\n" in head
    assert f'#   make plan CONFIG="{PAPER_BASE} config/paper/shp.yaml"\n' in head


def test_the_paper_directory_holds_the_base_and_one_file_per_source():
    """A new source's paper config is one more file here and one more name in SOURCES (then the
    tests above check it too); the flat paper configs are gone."""
    shipped = {p.stem for p in (REPO / "config" / "paper").glob("*.yaml")}
    assert shipped == {"base", *SOURCES}
    assert not list((REPO / "config").glob("pythia-2.8b-*.yaml"))


def test_config_readme_commands_run_on_the_shipped_files():
    """config/README.md (under 2 KB) names only shipped config files, and its command that prints
    a job's slice runs as written, on the paper base + SHP."""
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 2048
    named = set(re.findall(r"config/[\w/]+\.yaml", text))
    assert named and all((REPO / path).is_file() for path in named), named
    [line] = [line.strip() for line in text.splitlines() if line.strip().startswith("python -m prefsweep.config ")]
    argv = shlex.split(line)
    proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=REPO, check=True)
    dpo_slice = json.loads(proc.stdout)
    assert dpo_slice["experiment"] == "pythia-2.8b-shp" and dpo_slice["dpo"]["loss_type"] == "sigmoid"
    assert dpo_slice["model"]["name_or_path"] == "EleutherAI/pythia-2.8b"
