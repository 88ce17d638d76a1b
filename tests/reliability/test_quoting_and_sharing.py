"""Shell quoting and shared results, as a user meets them (issue 22, findings 1-5).

The workflow runs from a checkout whose folder name holds a space, a quote and parentheses, in
a working directory whose name holds ``$( )``, with config strings holding command
substitutions, backticks, quotes and semicolons (tests/hostile.py): nothing is executed, every
job succeeds, and every file it writes has the mode the user's umask gives (a lab mate can read
it; a second user can share ``judge_cache/``). The whole DAG under the same conditions is the
local run of the Slurm test (tests/slurm/test_slurm.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from prefsweep import io
from prefsweep.paths import Layout
from tests.conftest import BIN, E2E_CONFIG
from tests.hostile import CLONE_NAME, WANDB, WORKDIR_NAME, copy_checkout, modes, pwned_files

pytestmark = pytest.mark.reliability

EXPERIMENT = "hostile"
#: The ballots file's name in the user's folder "my data/".
BALLOTS_NAME = "$(touch pwned4) `touch pwned5` 'q' (v2).jsonl"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """(checkout, working directory) with hostile names, and the user's ballots file there."""
    root = tmp_path_factory.mktemp("hostile")
    clone = copy_checkout(root / CLONE_NAME)
    work = root / WORKDIR_NAME
    (work / "my data").mkdir(parents=True)
    with open(work / "my data" / BALLOTS_NAME, "w", encoding="utf-8") as fh:
        for i in range(60):
            cands = [{"id": c, "text": f"Answer {c} to question {i}: " + " ".join(["word"] * (3 + j))}
                     for j, c in enumerate("abc")]
            order = ["abc", "bca", "cab"]
            votes = [{"ranking": [[x] for x in order[(i + v) % 3]], "voter": f"v{v}", "group": f"g{v % 2}"}
                     for v in range(3)]
            fh.write(json.dumps({"prompt_id": f"p{i}", "prompt": f"Question number {i}?", "topic": "t",
                                 "candidates": cands, "votes": votes}) + "\n")
    return root, clone, work


def run(clone: Path, work: Path, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    """snakemake from ``clone`` in ``work``, as a user with ``umask`` and the venv activated."""
    cmd = [str(BIN / "snakemake"), "--snakefile", str(clone / "Snakefile"), "--directory", str(work),
           "--profile", str(clone / "profiles" / "local"), *args]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OPENAI_API_KEY": "unused"}
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(umask))


def overlay(work: Path, **sections) -> Path:
    path = work / f"overlay-{len(list(work.glob('overlay-*')))}.yaml"
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_data_stage_from_hostile_paths_runs_nothing_and_shares(hostile, case, umask):
    """Findings 1-3 and 5: a clone folder with a space and a quote, a ballots path with
    ``$( )`` and backticks, wandb strings with both; the data stage runs, reads the right file,
    executes nothing, and its files and folders get the umask's modes."""
    root, clone, work = hostile
    case.expect(f"umask {umask:04o}: data stage from '{CLONE_NAME}' with hostile config strings: "
                f"jobs succeed, nothing executed, files {0o666 & ~umask:o} / dirs {0o777 & ~umask:o}")
    experiment = f"{EXPERIMENT}{umask:o}"
    config = overlay(work, experiment=experiment, wandb={**WANDB, "mode": "disabled"},
                     data={"source": "jsonl", "jsonl": {"path": f"my data/{BALLOTS_NAME}"}},
                     eval={"judge": {"type": "llm"}})
    layout = Layout(experiment)
    proc = run(clone, work, "--cores", "2", layout.pool("maj"), "--configfile", str(config), umask=umask)
    case.observe(f"rc {proc.returncode}; pwned files: {pwned_files(root) or 'none'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not pwned_files(root, Path.home())
    ballots = io.read_jsonl(work / layout.ballots())
    assert [r["prompt_id"] for r in ballots] == [f"p{i}" for i in range(60)]
    seen = modes(work / layout.root)
    case.observe(f"file modes {sorted(oct(m) for m in seen['files'])}, dir modes {sorted(oct(m) for m in seen['dirs'])}")
    assert seen["files"] == {0o666 & ~umask}, seen
    assert seen["dirs"] == {0o777 & ~umask}, seen


def test_every_command_of_the_dag_parses_to_its_arguments(hostile, case):
    """Finding 3 over the whole DAG: each job's command (``-n -p``) splits into words in which the
    scripts' paths (with their space and quote) are single arguments, and nothing else of the
    checkout's path is left loose."""
    _, clone, work = hostile
    case.expect("every printed job command: each script path one argument, no word holding a fragment of it")
    config = overlay(work, wandb={**WANDB, "mode": "disabled"})
    proc = run(clone, work, "-n", "-p", "--configfile", str(E2E_CONFIG), str(config))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    commands = [shlex.split(c) for c in re.findall(r"^Shell command: (.*)$", proc.stdout, re.M)]
    scripts = [w for words in commands for w in words if w.endswith(".py")]
    fragments = [w for words in commands for w in words if "my" == w or w.startswith(("clone's", "(v2)"))]
    case.observe(f"{len(commands)} commands, {len(scripts)} script arguments, {len(fragments)} stray fragments")
    assert len(commands) > 20
    assert scripts and all(s.startswith(str(clone / "scripts")) for s in scripts), scripts[:3]
    assert not fragments


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_atomic_outputs_get_the_umask_modes(tmp_path, case, umask):
    """Finding 5 at the source: every atomic writer (text, JSON, Parquet, a model directory)."""
    import pandas as pd

    case.expect(f"umask {umask:04o}: atomic files {0o666 & ~umask:o}, atomic directories {0o777 & ~umask:o}")
    old = os.umask(umask)
    try:
        io.atomic_write_text(tmp_path / "a.txt", "x")
        io.atomic_write_json(tmp_path / "b.json", {"a": 1})
        io.atomic_write_parquet(tmp_path / "c.parquet", pd.DataFrame({"a": [1]}))
        with io.atomic_dir(tmp_path / "model") as d:
            (d / "weights.bin").write_bytes(b"0")
            os.chmod(d / "weights.bin", 0o600)  # as transformers writes model.safetensors
    finally:
        os.umask(old)
    got = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    got["model/weights.bin"] = (tmp_path / "model" / "weights.bin").stat().st_mode & 0o777
    case.observe(", ".join(f"{k} {v:o}" for k, v in sorted(got.items())))
    assert got == {"a.txt": 0o666 & ~umask, "b.json": 0o666 & ~umask, "c.parquet": 0o666 & ~umask,
                   "model": 0o777 & ~umask, "model/weights.bin": 0o666 & ~umask}


def test_text_that_utf8_cannot_encode_names_the_file(tmp_path, case):
    """Finding 12's last line of defence: a lone surrogate reaching a writer names the file."""
    case.expect("a lone surrogate written: an error naming the file and line, nothing written")
    with pytest.raises(io.DataFileError) as err:
        io.atomic_write_jsonl(tmp_path / "out.jsonl", [{"t": "ok"}, {"t": "bad \ud800"}])
    case.observe(err.value)
    assert "out.jsonl" in str(err.value) and "line 2" in str(err.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("key, section", [
    ("eval.baselines[0].name_or_path", {"eval": {"baselines": [{"name": "pythia", "name_or_path": "EleutherAI/$(touch pwned6)"}]}}),
    ("model.name_or_path", {"model": {"preset": "hf", "name_or_path": "`touch pwned7`"}}),
])
def test_a_model_name_that_is_no_path_nor_hub_id_is_refused(hostile, case, key, section):
    """Finding 4: a model name reaches ``--hub-id`` / ``from_pretrained``; one that is neither a
    local directory nor a hub id stops the plan, naming the key, and runs nothing."""
    root, clone, work = hostile
    case.expect(f"{key} holding shell syntax: the config check refuses it before any job, naming the key")
    proc = run(clone, work, "-n", "-p", "--configfile", str(E2E_CONFIG), str(overlay(work, **section)))
    message = proc.stdout + proc.stderr
    case.observe(next((line for line in message.splitlines() if key in line), message[-300:]))
    assert proc.returncode != 0 and f"{key}: " in message and "neither a local directory nor a hub id" in message
    assert not pwned_files(root, Path.home())
