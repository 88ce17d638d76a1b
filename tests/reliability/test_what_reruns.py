"""What a change reruns, and which outputs a command writes: a logging setting reruns no job,
every make target follows the config it is given, and a cell can be retrained from scratch."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO
from tests.reliability.test_config_errors import job_slices
from tests.test_dag import job_counts, snakemake

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("section", ["dpo", "sft", "pretrain"])
def test_a_logging_setting_reruns_no_job(tmp_path, case, section):
    """Snakemake reruns a finished job when its params change: every job's --config-json must
    stay the same when only how often training logs changes."""
    case.expect(f"{section}.logging_steps 10 -> 5: every job's params unchanged, so nothing reruns")
    path = tmp_path / "log.yaml"
    path.write_text(f"{section}: {{logging_steps: 5}}\n")
    base = job_slices(snakemake("-n", "-p", cwd=tmp_path).stdout)
    changed = job_slices(snakemake("-n", "-p", "--configfile", str(REPO / "config/config.yaml"), str(path),
                                   cwd=tmp_path).stdout)
    differ = sorted(k for k in base if base[k] != changed.get(k))
    case.observe(f"{len(differ)} of {len(base)} jobs' params differ" + (f", e.g. {differ[0]}" if differ else ""))
    assert base and base.keys() == changed.keys()
    assert not differ


def make_n(*args: str) -> str:
    """What ``make -n ARGS`` in the repository would run (nothing runs)."""
    import subprocess

    proc = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def snakemake_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "bin/snakemake " in line]


def option(line: str, name: str) -> str | None:
    """The value of option ``name`` in a shell command line (quotes removed)."""
    import shlex

    words = shlex.split(line)
    return words[words.index(name) + 1] if name in words else None


@pytest.mark.parametrize("how", ["CONFIG", "SNAKEMAKE_ARGS"])
def test_make_report_follows_the_config_it_is_given(tmp_path, case, how):
    """`make report SNAKEMAKE_ARGS="--configfile my/mine.yaml"` wrote mine's report over
    results/default/report.html: the report path came from the default config."""
    case.expect(f"make report with {how} naming experiment mine: report to results/mine/report.html, "
                "with that config")
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiment: mine\n")
    arg = f"CONFIG={mine}" if how == "CONFIG" else f"SNAKEMAKE_ARGS=--configfile {mine}"
    lines = snakemake_lines(make_n("report", arg))
    case.observe(lines[0].split("snakemake ", 1)[-1] if lines else "no snakemake command")
    assert len(lines) == 1 and option(lines[0], "--report") == "results/mine/report.html"
    assert option(lines[0], "--configfile") == str(mine)


def test_every_make_target_runs_the_config_it_is_given(tmp_path, case):
    case.expect("make run/dag/plan/rerun CONFIG=a.yaml b.yaml: every command gets both files in one --configfile; "
                "run's report goes to that experiment")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("experiment: mine\n")
    b.write_text("dpo: {beta: 0.2}\n")
    config = f"CONFIG={a} {b}"
    seen = {}
    for target in ("run", "dag", "plan", "rerun"):
        out = make_n(target, config, "TARGET=dpo")
        commands = [line for line in out.splitlines() if any(w in line for w in ("snakemake ", "plan.py", "rerun_fresh"))]
        seen[target] = commands
        assert commands and all(f"--configfile {a} {b}" in c for c in commands), (target, out)
    case.observe(f"{len(sum(seen.values(), []))} commands, each with --configfile a.yaml b.yaml")
    assert [option(c, "--report") for c in seen["run"] if "--report" in c] == ["results/mine/report.html"]


def test_make_refuses_a_config_given_twice(tmp_path, case):
    import subprocess

    case.expect("CONFIG= and --configfile in SNAKEMAKE_ARGS together: an error saying to give them once, "
                "nothing runs")
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiment: mine\n")
    proc = subprocess.run(["make", "--no-print-directory", "-n", "report", f"CONFIG={mine}",
                           f"SNAKEMAKE_ARGS=--configfile {mine}"], cwd=REPO, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    case.observe(next((line for line in out.splitlines() if "twice" in line), out[-300:]))
    assert proc.returncode != 0 and "config files given twice" in out and "CONFIG=" in out
    assert not snakemake_lines(proc.stdout)


def test_a_cell_can_be_retrained_from_scratch(tmp_path, case):
    """`snakemake -f <run>/final` resumed from the run's checkpoint and wrote the same bytes; the
    documented command moves that run's checkpoints aside first, so the job starts at step 0."""
    import subprocess
    import sys

    from prefsweep.paths import Layout

    case.expect("scripts/rerun_fresh.py <run>/final: that run's checkpoints moved aside (kept), other runs' "
                "untouched, Snakemake forces that job")
    L = Layout("default")
    run, other = "dpo/sc/size/n64/seed1", "dpo/sc/size/n64/seed2"
    for r in (run, other):
        (tmp_path / L.checkpoint(r, 8)).mkdir(parents=True)
        (tmp_path / L.checkpoint(r, 8) / "trainer_state.json").write_text(r)
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "rerun_fresh.py"), L.model(run), "--",
         "--snakefile", str(REPO / "Snakefile"), "--dry-run"],  # Snakemake only plans: nothing trains
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = proc.stdout + proc.stderr
    case.observe(next((line for line in out.splitlines() if "moved aside" in line), out[-300:]))
    assert proc.returncode == 0, out[-3000:]
    aside = tmp_path / f"{L.checkpoints(run)}.before-rerun-1"
    assert (aside / "checkpoint-8" / "trainer_state.json").read_text() == run
    assert not (tmp_path / L.checkpoints(run)).exists()
    assert (tmp_path / L.checkpoint(other, 8) / "trainer_state.json").read_text() == other
    assert job_counts(proc.stdout)["dpo"] == 1  # Snakemake plans that one DPO job (and what it needs)
