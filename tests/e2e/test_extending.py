"""docs/extending.md, followed as a user would: a toy judge and a toy data source, each one
module copied into a checkout's registry package, run through the workflow (data stage, base
model, SFT, answers, judging) with nothing else edited."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from prefsweep.paths import Layout
from tests.conftest import BIN, REPO
from tests.hostile import copy_checkout

pytestmark = pytest.mark.e2e

FIXTURES = REPO / "tests" / "fixtures" / "extending"


def test_a_toy_judge_and_a_toy_source_run_through_the_workflow(tmp_path):
    clone = copy_checkout(tmp_path / "checkout")
    # docs/extending.md: a judge is one module in prefsweep/eval/judges/, a source one module in
    # prefsweep/data/sources/
    shutil.copy(FIXTURES / "longer.py", clone / "prefsweep" / "eval" / "judges" / "longer.py")
    shutil.copy(FIXTURES / "toy_ballots.py", clone / "prefsweep" / "data" / "sources" / "toy_ballots.py")
    work = tmp_path / "run"
    work.mkdir()
    config = work / "toy.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "toy",
        "data": {"source": "toy_ballots", "n_eval_prompts": 8, "sizes": [0, 16], "matchings": ["size"]},
        "eval": {"judge": {"type": "longer"}, "generation": {"max_new_tokens": 16}},
        "sft": {"num_train_epochs": 1},
        "wandb": {"mode": "disabled"},
    }))
    layout = Layout("toy")
    target = layout.judgment("longer", "base")  # base judged against the zero point (SFT)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(clone)}
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(clone / "Snakefile"), "--directory", str(work),
                           "--profile", str(clone / "profiles" / "local"), "--cores", "2", target,
                           "--configfile", str(config)], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    ballots = [json.loads(line) for line in (work / layout.ballots()).read_text().splitlines()]
    assert [r["prompt_id"] for r in ballots] == [f"t{i}" for i in range(60)]
    answers = {m: {str(json.loads(line)["question_id"]): json.loads(line)["choices"][0]["turns"][0]
                   for line in (work / layout.answers(m)).read_text().splitlines()} for m in ("base", "sft")}
    records = [json.loads(line) for line in (work / target).read_text().splitlines()]
    assert len(records) == 8 and {r["judge"][0] for r in records} == {"longer"}
    for r in records:
        base, sft = answers["base"][str(r["question_id"])], answers["sft"][str(r["question_id"])]
        expected = "model_1" if len(base) > len(sft) else "model_2" if len(sft) > len(base) else "tie"
        assert (r["model_1"], r["model_2"], r["g1_winner"], r["g2_winner"]) == ("base", "sft", expected, expected)
    # the verdicts follow the rule, not a constant: both outcomes occur, or the answers all tie in length
    assert len({r["g1_winner"] for r in records}) > 1 or len({len(a) for a in answers["base"].values()}) == 1


def test_an_unregistered_judge_or_source_is_refused_before_any_job(tmp_path):
    """Without the modules, the same names are refused by the plan, naming the key and the
    registered names."""
    for key, overlay, registered in (("data.source", {"data": {"source": "toy_ballots"}}, "'synthetic'"),
                                     ("eval.judge.type", {"eval": {"judge": {"type": "longer"}}}, "'electorate'")):
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump(overlay))
        proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory",
                               str(tmp_path), "-n", "--configfile", str(config)], cwd=tmp_path,
                              capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and key in out and registered in out, out[-2000:]
