"""The whole DAG on the tiny local model, on CPU, as a user runs it.

One real run of a small experiment (tests/e2e/config.yaml over config/config.yaml) in a temp
working directory, then what a user does next: rerun (nothing to do), add a seed or a size
(only the new jobs), change a plot option (only the plots), build the report.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.test_dag import job_counts, snakemake

pytestmark = pytest.mark.e2e

CONFIG = str(REPO / "tests/e2e/config.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    snakemake("--cores", "2", "--configfile", CONFIG, cwd=d)
    return d


def dry_run(run_dir, *config: str) -> dict[str, int]:
    args = ["-n", "--quiet", "rules", "--configfile", CONFIG]
    if config:
        args += ["--config", *config]
    proc = snakemake(*args, cwd=run_dir)
    return job_counts(proc.stdout) if "Job stats:" in proc.stdout else {}


def test_run_produces_tables_and_figures(run_dir):
    res = run_dir / "results/e2e"
    table = pd.read_csv(res / "eval/win_rates.csv")
    dpo = table[table["kind"] == "dpo"]
    # 2 sizes x (maj shared, sc prompt, sc size) x 1 seed
    assert len(dpo) == 6
    assert set(dpo["matching"]) == {"shared", "prompt", "size"}
    assert table["win_rate"].between(0, 1).all()
    assert (table["ci_low"] <= table["win_rate"]).all() and (table["win_rate"] <= table["ci_high"]).all()
    # prompt-matched sc has fewer pairs than its nominal size; size-matched exactly N
    sc = dpo[dpo["arm"] == "sc"].set_index(["matching", "size"])["n_pairs"]
    assert (sc.loc["size"] == sc.loc["size"].index).all()
    assert (sc.loc["prompt"] < sc.loc["prompt"].index).all()
    for name in ("win_rate_vs_pairs", "evolution", "groups", "length"):
        assert (res / f"plots/{name}.png").stat().st_size > 10_000
    assert pd.read_csv(res / "eval/evolution.csv")["step"].notna().any()


def test_every_model_has_provenance(run_dir):
    res = run_dir / "results/e2e"
    for d in (res / "hf").iterdir():
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["model_id"] == d.name
    info = json.loads((res / "dpo/sc/prompt/n48/seed1/final/run_info.json").read_text())
    assert info["config"]["dpo"]["beta"] == 0.1 and info["versions"]["trl"]


def test_rerun_does_nothing(run_dir):
    assert dry_run(run_dir) == {}


def test_added_seed_runs_only_its_jobs(run_dir):
    counts = dry_run(run_dir, "dpo={seeds: [1, 2]}")
    assert counts["dpo"] == 6
    assert {"ballots", "series", "sft", "ref_logps", "base_model"}.isdisjoint(counts)
    assert counts["convert"] == counts["answers"] == counts["judge"] == 6


def test_added_size_runs_only_its_jobs(run_dir):
    counts = dry_run(run_dir, "data={sizes: [0, 24, 36, 48]}")
    assert counts["series"] == 3 and counts["dpo"] == 3
    assert {"ballots", "pool", "sft", "ref_logps"}.isdisjoint(counts)


def test_plot_option_reruns_only_plots(run_dir):
    assert set(dry_run(run_dir, "plots={dpi: 120}")) == {"plots", "all"}


def test_report(run_dir):
    report = run_dir / "report.html"
    snakemake("--report", str(report), "--configfile", CONFIG, cwd=run_dir)
    assert report.stat().st_size > 100_000
