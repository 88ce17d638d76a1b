"""The whole DAG on the tiny local model, on CPU, as a user runs it.

One real run of a small experiment (tests/e2e/config.yaml over config/config.yaml, the session
fixture ``e2e_run`` of tests/conftest.py) in a temp working directory, then what a user does
next: rerun (nothing to do), add a seed or a size (only the new jobs), change a plot option
(only the plots), build the report, run a script by hand as its docstring shows. The same run
is the reference of tests/reliability/test_workflow_faults.py (a killed and resumed run must
end with the same files).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

import pandas as pd
import pytest

from prefsweep.paths import Layout
from tests.conftest import BIN, E2E_CONFIG, REPO
from tests.test_dag import job_counts, snakemake
from tests.test_docs import doc_commands, layout_patterns, readme_output_patterns

pytestmark = pytest.mark.e2e

CONFIG = str(E2E_CONFIG)
E2E = Layout("e2e")


@pytest.fixture(scope="module")
def run_dir(e2e_run):
    return e2e_run


def dry_run(run_dir, *config: str) -> dict[str, int]:
    args = ["-n", "--quiet", "rules", "--configfile", CONFIG]
    if config:
        args += ["--config", *config]
    proc = snakemake(*args, cwd=run_dir)
    return job_counts(proc.stdout) if "Job stats:" in proc.stdout else {}


def test_run_produces_tables_and_figures(run_dir):
    res = run_dir / E2E.root
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
    for name in ("win_rate_vs_pairs", "evolution", "groups", "length", "rule_comparison"):
        assert (res / f"plots/{name}.png").stat().st_size > 10_000
    assert pd.read_csv(res / "eval/evolution.csv")["step"].notna().any()


def test_training_changes_the_models(run_dir):
    """A test of training must fail when training does nothing: the DPO models answer
    differently from the zero point, the judge sees it, and held-out accuracy moves."""
    res = run_dir / E2E.root
    table = pd.read_csv(res / "eval/win_rates.csv")
    dpo = table[table["kind"] == "dpo"]
    assert (dpo["win_rate"] - 0.5).abs().max() >= 0.1, dpo[["model_id", "win_rate"]]
    zero = [json.loads(line)["choices"][0]["turns"][0] for line in open(run_dir / E2E.answers("sft"))]
    for model_id in dpo["model_id"]:
        answers = [json.loads(line)["choices"][0]["turns"][0] for line in open(run_dir / E2E.answers(model_id))]
        assert sum(a != z for a, z in zip(answers, zero)) >= len(zero) // 4, model_id
    acc = pd.read_csv(res / "eval/pair_accuracy.csv").set_index("model_id")["accuracy"]
    assert (acc.drop("sft") - acc["sft"]).abs().max() > 0.01


def test_per_group_pair_accuracy(run_dir):
    """The synthetic electorate's groups: each model's accuracy on each group's own majority
    pairs of the held-out prompts, with an interval around it."""
    res = run_dir / E2E.root
    groups = pd.read_csv(res / "eval/pair_accuracy_groups.csv")
    assert set(groups["group"]) == {"concise", "thorough", "playful"}
    assert set(groups["model_id"]) == set(pd.read_csv(res / "eval/pair_accuracy.csv")["model_id"])
    assert ((groups["ci_low"] <= groups["accuracy"]) & (groups["accuracy"] <= groups["ci_high"])).all()
    assert (groups["n_pairs"] > 0).all()


def test_every_model_has_provenance(run_dir):
    res = run_dir / E2E.root
    for d in (res / "hf").iterdir():
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["model_id"] == d.name
    info = json.loads((run_dir / E2E.dpo_model("sc", "prompt", 48, 1) / "run_info.json").read_text())
    assert info["config"]["dpo"]["beta"] == 0.1 and info["versions"]["trl"]


def test_last_checkpoint_is_evaluated_once(run_dir):
    """The checkpoint saved at a run's last step is the final model: no export of its own."""
    res = run_dir / E2E.root
    for d in (res / "hf").iterdir():
        prov = json.loads((d / "provenance.json").read_text())
        if prov["checkpoint"]:
            assert prov["step"] != prov["train_global_step"], d.name
    evolution = pd.read_csv(res / "eval/evolution.csv")
    runs = evolution[evolution["kind"].isin(["dpo", "checkpoint"])]
    assert not runs.duplicated(["arm", "matching", "size", "seed", "step"]).any()


def _regex(pattern: str) -> re.Pattern:
    rx = re.escape(pattern).replace(r"\{run\}", ".+").replace(r"\{path\}", ".+")  # several segments
    rx = re.sub(r"\\\{[a-z_ ]+\\\}", "[^/]+", rx)
    return re.compile(rx + (".*" if pattern.endswith("/") else "") + "$")


def test_readme_outputs_table_is_the_layout_and_the_run(run_dir):
    """The README's map of results/<experiment>/ (tests/test_docs.py reads it) is the Layout's,
    and a real run writes exactly the files it lists."""
    patterns, optional = layout_patterns()
    assert readme_output_patterns() == patterns
    res = run_dir / E2E.root
    files = [str(p.relative_to(res)) for p in res.rglob("*") if p.is_file()]
    rxs = {p: _regex(p) for p in patterns}
    unmatched = [f for f in files if not any(rx.match(f) for rx in rxs.values())]
    assert not unmatched, f"files of the run missing from the Outputs table: {unmatched[:10]}"
    unused = [p for p, rx in rxs.items() if p not in optional and not any(rx.match(f) for f in files)]
    assert not unused, f"Outputs rows that the run does not produce: {unused}"


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


def test_judge_client_settings_rerun_nothing(run_dir):
    assert dry_run(run_dir, "eval={judge: {parallel: 8, timeout: 5, max_retries: 1}}") == {}


def test_report(run_dir):
    report = run_dir / "report.html"
    snakemake("--report", str(report), "--configfile", CONFIG, cwd=run_dir)
    assert report.stat().st_size > 100_000


def test_a_docstring_command_runs_by_hand(run_dir, tmp_path):
    """scripts/convert.py's docstring command, on this run's files, as a user types it."""
    import scripts.convert

    doc = scripts.convert.__doc__
    command = doc.split("\n\n")[1].split("[--base")[0].replace("\\\n", " ")
    command = command.replace("results/default/", "results/e2e/").replace("n64", "n48")
    command = command.replace("python -m prefsweep.config convert", f"python -m prefsweep.config convert --configfile {CONFIG}")
    out = tmp_path / "exported"
    command = re.sub(r"--out \S+", f"--out {out}", command)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    command = command.strip().replace("python scripts/", f"python {REPO}/scripts/", 1)
    proc = subprocess.run(["bash", "-c", f"cd {shlex.quote(str(run_dir))} && {command}"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "provenance.json").read_text())["model_id"] == "dpo-maj-shared-n48-seed1"


def test_results_page_comes_from_the_tables(run_dir, tmp_path):
    """docs/results.md and the README's figure are scripts/results_page.py's output over a run:
    every number on the page is a value of the run's tables, and the figure is the run's own."""
    page, figure = tmp_path / "results.md", tmp_path / "figure.png"
    proc = subprocess.run([str(BIN / "python"), str(REPO / "scripts/results_page.py"), "--configfile", CONFIG,
                           "--out", str(page), "--figure", str(figure)],
                          cwd=run_dir, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    table = pd.read_csv(run_dir / E2E.table("win_rates")).set_index("model_id")
    row = table.loc["dpo-sc-size-n48-seed1"]
    assert f"| sc (borda), size-matched | 48 | {row['win_rate']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]" \
        in text
    assert "| zero point (sft) | 0 | 0.50 |" in text and "Condorcet winner in" in text
    assert f"| `dpo-sc-size-n48-seed1` | {row['win_rate']:.2f} | {row['lc_win_rate']:.2f} [" in text
    diff = pd.read_csv(run_dir / E2E.table("arm_differences")).set_index(["matching", "size"]).loc[("size", 48)]
    assert (f"| sc (borda), size-matched − maj | 48 | {diff['diff']:.2f} [{diff['ci_low']:.2f}, "
            f"{diff['ci_high']:.2f}] |") in text
    welfare = pd.read_csv(run_dir / E2E.table("welfare"))
    gain = welfare.query("model_id == 'dpo-maj-shared-n48-seed1' and measure == 'utilitarian'").iloc[0]
    assert f"| `dpo-maj-shared-n48-seed1` | {gain['vs_zero']:.2f} [{gain['vs_zero_ci_low']:.2f}," in text
    assert figure.read_bytes() == (run_dir / E2E.plot("win_rate_vs_pairs", "png")).read_bytes()


def test_docs_show_result_command_reads_the_judgments(run_dir):
    """docs/judges.md's FastChat command, as a user types it on this run (the default run's path
    made the e2e run's): FastChat's own show_result reads our judgment file and gives the wins,
    losses and win rate of eval/win_rates.csv."""
    [command] = [c.text for c in doc_commands() if "fastchat.llm_judge.show_result" in c.text]
    command = command.replace("results/default/", "results/e2e/").replace("-n256-", "-n48-")
    model_id = re.search(r"/([^/ ]+)\.jsonl", command)[1]
    proc = subprocess.run(["bash", "-c", command], cwd=run_dir, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = pd.read_csv(run_dir / E2E.table("win_rates")).set_index("model_id").loc[model_id]
    # FastChat's row: model, win, loss, [tie, win_rate, ...,] win_rate_adjusted (pandas may elide middle columns)
    fields = next(line for line in proc.stdout.splitlines() if line.startswith(f"{model_id} ")).split()
    assert (int(fields[1]), int(fields[2])) == (row["wins"], row["losses"]), proc.stdout
    assert float(fields[-1]) == pytest.approx(row["win_rate"], abs=1e-6)
