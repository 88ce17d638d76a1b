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
    """Parse the 'Job stats' table of a dry-run."""
    table = output.split("Job stats:")[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m[1] != "total":
            counts[m[1]] = int(m[2])
    return counts


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
        # 12 DPO models + the zero point (the SFT model); it is the baseline, so not judged
        "convert": 13, "answers": 13, "judge": 12,
        # preference accuracy of every final model on the held-out maj pairs
        "eval_pairs": 1, "pair_accuracy": 13, "pair_accuracy_table": 1,
        # each voter group's majority pairs on the held-out prompts (per-group accuracy)
        "eval_group_pairs": 1,
        "win_rates": 1, "evolution": 1, "plots": 1, "all": 1,
    }


def test_paper_config_dry_run_job_counts(tmp_path, monkeypatch):
    # Planning needs no API key: the key is checked when jobs start (prefsweep.config.check_secrets).
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config/pythia-2.8b-shp.yaml"), cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # 7 sizes (1k..64k) x 3 distinct series x 5 seeds
    assert counts["series"] == 21 and counts["dpo"] == 105
    assert counts["ref_logps"] == 2 and counts["sft"] == 1 and counts["sft_baseline"] == 1
    # sft (zero point) + 105 DPO + 2 baselines
    assert counts["convert"] == counts["answers"] == 108
    assert counts["judge"] == 107


@pytest.mark.parametrize("source, n_sizes, judged_zero", [
    ("multipref", 4, False), ("helpsteer2", 3, False), ("ultrafeedback", 7, False), ("prism", 4, False),
    ("hh", 7, True),
])
def test_dataset_source_paper_configs_dry_run(tmp_path, monkeypatch, source, n_sizes, judged_zero):
    """config/pythia-2.8b-<source>.yaml plans without the hub or an API key (the data is read by
    the ballots job, the key is checked when jobs start)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = REPO / "config" / f"pythia-2.8b-{source}.yaml"
    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(path), cwd=tmp_path)
    counts = job_counts(proc.stdout)
    # sizes > 0 x 3 distinct series x 5 seeds; sft (zero point) + DPO + 2 baselines
    assert counts["series"] == 3 * n_sizes and counts["dpo"] == 15 * n_sizes
    assert counts["ballots"] == counts["eval_group_pairs"] == counts["sft"] == 1
    assert counts["answers"] == 15 * n_sizes + 3
    # eval.baseline reference (hh: the DPO paper's protocol) judges the zero point too
    assert counts["judge"] == counts["answers"] - (0 if judged_zero else 1)


@pytest.mark.parametrize("target, rules", [
    ("data_all", {"ballots", "split", "pool", "series", "sft_corpus", "eval_questions", "eval_group_pairs",
                  "data_all"}),
    ("train_all", {"ballots", "split", "pool", "series", "sft_corpus", "pretrain_corpus", "base_model", "sft",
                   "ref_logps", "dpo", "train_all"}),
])
def test_partial_targets(tmp_path, target, rules):
    proc = snakemake(target, "-n", "--quiet", "rules", cwd=tmp_path)
    assert set(job_counts(proc.stdout)) == rules
