"""The DAG as a user sees it: lint and dry-runs of the shipped configs (bad configs are the
reliability suite's, tests/reliability/test_config_errors.py)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.conftest import BIN, REPO


def snakemake_argv(*args: str, cwd, profile: str | None = "local") -> list[str]:
    """The command line of a workflow run in ``cwd``, with ``profiles/<profile>/`` (local: the
    settings `make run` uses; profiles/default/ is loaded by Snakemake itself on every run)."""
    profile_args = ["--profile", str(REPO / "profiles" / profile)] if profile else []
    return [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(cwd),
            *profile_args, *args]


def snakemake_env() -> dict[str, str]:
    # jobs run `python`: the venv's, as after `source .venv/bin/activate`
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def snakemake(*args: str, cwd, check: bool = True, profile: str | None = "local",
              env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(snakemake_argv(*args, cwd=cwd, profile=profile), capture_output=True, text=True,
                          cwd=cwd, env=env or snakemake_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run (:func:`prefsweep.cost.plan.parse_job_stats`); a dry-run
    without one (nothing to do, or an error) fails the test with its output."""
    from prefsweep.cost.plan import parse_job_stats

    assert "Job stats:" in output, f"no 'Job stats' table in:\n{output[-3000:]}"
    return parse_job_stats(output)


def test_lint_is_clean(tmp_path):
    proc = snakemake("--lint", cwd=tmp_path)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_default_config_dry_run_job_counts(tmp_path):
    proc = snakemake("-n", "--quiet", "rules", cwd=tmp_path)
    assert job_counts(proc.stdout) == {
        "ballots": 1, "split": 1, "pool": 2, "sft_corpus": 1, "pretrain_corpus": 1, "eval_questions": 1,
        # 2 sizes x (maj shared + sc prompt + sc size)
        "series": 6,
        "base_model": 1, "sft": 1, "ref_logps": 2,
        # each distinct dataset x 2 seeds: maj is trained once for both matchings
        "dpo": 12,
        # the DAG's one checkpoint: which kept checkpoints get a model id (then planned)
        "evaluated_checkpoints": 1,
        # 12 DPO models + the zero point (the SFT model) + the base model (always evaluated);
        # SFT is the baseline, so not judged
        "convert": 14, "answers": 14, "judge": 13,
        # preference accuracy of every final model on the held-out maj pairs
        "eval_pairs": 1, "pair_accuracy": 14, "pair_accuracy_table": 1,
        # each voter group's majority pairs on the held-out prompts (per-group accuracy)
        "eval_group_pairs": 1,
        "win_rates": 1, "evolution": 1, "plots": 1, "all": 1,
    }


def test_paper_config_dry_run_job_counts(tmp_path, monkeypatch):
    # Planning needs no API key: the key is checked when jobs start (prefsweep.experiment.check_secrets).
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config/paper/base.yaml"),
                     str(REPO / "config/paper/shp.yaml"), cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # 7 sizes (1k..64k) x 3 distinct series x 5 seeds
    assert counts["series"] == 21 and counts["dpo"] == 105
    assert counts["ref_logps"] == 2 and counts["sft"] == 1 and counts["sft_baseline"] == 1
    # sft (zero point) + base + 105 DPO + 2 baselines
    assert counts["convert"] == counts["answers"] == 109
    assert counts["judge"] == 108


@pytest.mark.parametrize("forms, arms, inits", [
    # the original scalar forms: one rule arm named sc, no init in ids or paths
    (["dpo={init: base}", "sc={rule: copeland}"], ["maj", "sc"], [None]),
    # list forms: one arm per rule, named by it; the init in every DPO path and id
    (["dpo={init: [sft, base]}", "sc={rule: [borda, copeland, maximal_lottery]}"],
     ["maj", "borda", "copeland", "maximal_lottery"], ["sft", "base"]),
    (["dpo={init: [base]}", "sc={rule: [schulze]}"], ["maj", "schulze"], ["base"]),
])
def test_list_and_scalar_forms_dry_run(tmp_path, forms, arms, inits):
    from prefsweep.paths import Layout, dpo_model_id

    # -p: every planned job's command, and the job stats table
    shell = snakemake("-n", "-p", "--config", *forms, cwd=tmp_path).stdout
    counts = job_counts(shell)
    rules = len(arms) - 1
    n_series = 2 * (1 + 2 * rules)  # 2 sizes x (maj shared + every rule arm x 2 matchings)
    assert counts["series"] == n_series and counts["pool"] == len(arms)
    assert counts["ref_logps"] == len(arms) * len(inits)
    assert counts["dpo"] == len(inits) * n_series * 2  # x 2 seeds
    # every DPO model + base + SFT (both always evaluated); the baseline (first init) is not judged
    assert counts["convert"] == counts["answers"] == counts["pair_accuracy"] == counts["dpo"] + 2
    assert counts["judge"] == counts["dpo"] + 1
    # the planned files carry the arm and init names
    layout = Layout("default")
    for arm in arms[1:]:
        for init in inits:
            assert layout.dpo_model(arm, "size", 64, 1, init) in shell
            assert f"--model-id {dpo_model_id(arm, 'size', 256, 2, init=init)} " in shell
            assert layout.ref_logps(arm, init) in shell


def test_paper_config_with_two_inits_and_three_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    shell = snakemake("-n", "-p", "--configfile", str(REPO / "config/paper/base.yaml"), str(REPO / "config/paper/shp.yaml"),
                      "--config", "dpo={init: [sft, base]}", "sc={rule: [borda, copeland, schulze]}",
                      cwd=tmp_path).stdout
    counts = job_counts(shell)
    # 7 sizes x (maj shared + 3 rules x 2 matchings) = 49 series; x 2 inits x 5 seeds DPO runs
    assert counts["pool"] == 4 and counts["series"] == 49
    assert counts["ref_logps"] == 4 * 2 and counts["dpo"] == 490
    assert counts["sft"] == 1 and counts["sft_baseline"] == 1
    # base + sft + 490 DPO + 2 baselines; sft (the first init) is the baseline
    assert counts["convert"] == counts["answers"] == 494 and counts["judge"] == 493
    # per rule: 7 sizes x 2 matchings x 2 inits x 5 seeds (maj: shared, one matching)
    per_arm = {arm: len(re.findall(rf"scripts/dpo\.py .*--arm {arm} ", shell)) for arm in ("maj", "borda", "copeland", "schulze")}
    assert per_arm == {"maj": 7 * 2 * 5, "borda": 140, "copeland": 140, "schulze": 140}


@pytest.mark.parametrize("source, n_sizes, judged_zero", [
    ("multipref", 4, False), ("helpsteer2", 3, False), ("ultrafeedback", 7, False), ("prism", 4, False),
    ("hh", 7, True),
])
def test_dataset_source_paper_configs_dry_run(tmp_path, monkeypatch, source, n_sizes, judged_zero):
    """config/paper/base.yaml with config/paper/<source>.yaml (one --configfile) plans without the
    hub or an API key (the data is read by the ballots job, the key is checked when jobs start)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    paper = REPO / "config" / "paper"
    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(paper / "base.yaml"), str(paper / f"{source}.yaml"),
                     cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # sizes > 0 x 3 distinct series x 5 seeds; sft (zero point) + base (always evaluated) + DPO + 2 baselines
    assert counts["series"] == 3 * n_sizes and counts["dpo"] == 15 * n_sizes
    assert counts["ballots"] == counts["eval_group_pairs"] == counts["sft"] == 1
    assert counts["answers"] == 15 * n_sizes + 4
    # eval.baseline reference (hh: the DPO paper's protocol) judges the zero point too
    assert counts["judge"] == counts["answers"] - (0 if judged_zero else 1)


@pytest.mark.parametrize("target, rules", [
    ("data_all", {"ballots", "split", "pool", "series", "sft_corpus", "eval_questions", "eval_group_pairs",
                  "data_all"}),
    ("train_all", {"ballots", "split", "pool", "series", "sft_corpus", "pretrain_corpus", "base_model", "sft",
                   "ref_logps", "dpo", "evaluated_checkpoints", "train_all"}),
])
def test_partial_targets(tmp_path, target, rules):
    proc = snakemake(target, "-n", "--quiet", "rules", cwd=tmp_path)
    assert set(job_counts(proc.stdout)) == rules


def test_study_config_dry_run_job_counts(tmp_path):
    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config/study.yaml"), cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # arms maj, borda, copeland, maximal_lottery; 2 sizes x (maj shared + 3 rules x 2 matchings) = 14 series
    assert counts["pool"] == 4 and counts["series"] == 14
    # x 2 inits x 1 seed; reference log-probs once per arm and init
    assert counts["dpo"] == 28 and counts["ref_logps"] == 8
    # base + sft + 28 DPO models, sft (the first init) is the baseline; no checkpoint evaluation
    assert counts["convert"] == counts["answers"] == counts["pair_accuracy"] == 30 and counts["judge"] == 29
    assert "evolution" not in counts and counts["plots"] == 1
