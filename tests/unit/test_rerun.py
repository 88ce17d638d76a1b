"""Retraining from scratch (prefsweep/train/rerun.py): the named run's checkpoints are moved aside,
never deleted, other runs' are untouched, and Snakemake is asked to rerun exactly those jobs."""

from __future__ import annotations

import copy

import pytest

from prefsweep.config import ConfigError
from prefsweep.paths import layout
from prefsweep.train.rerun import move_aside, rerun_fresh, resolve_targets, training_runs

RUN = "dpo/sc/size/n64/seed1"
OTHER = "dpo/sc/size/n64/seed2"


def fake_checkpoints(root, config, runs):
    """A checkpoints directory with one checkpoint per run, each file naming its run."""
    L = layout(config)
    for run in runs:
        ckpt = root / L.checkpoint(run, 8)
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(run)
    return L


@pytest.fixture
def config(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["dpo"]["seeds"] = [1, 2]
    return cfg


def test_one_cell_moves_its_checkpoints_aside_and_forces_its_job(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    L = fake_checkpoints(tmp_path, config, [RUN, OTHER, "sft"])
    monkeypatch.setattr("prefsweep.config.files.experiment_config", lambda files, overrides: config)
    calls = []
    status = rerun_fresh([L.model(RUN)], extra=["--cores", "2"], run=lambda argv: calls.append(argv) or 0,
                         say=lambda _: None)
    assert status == 0
    aside = tmp_path / f"{L.checkpoints(RUN)}.before-rerun-1"
    assert not (tmp_path / L.checkpoints(RUN)).exists()
    assert (aside / "checkpoint-8" / "trainer_state.json").read_text() == RUN  # moved, not deleted
    for run in (OTHER, "sft"):
        assert (tmp_path / L.checkpoint(run, 8) / "trainer_state.json").read_text() == run
    [argv] = calls
    assert argv[1:] == [L.model(RUN), "--force", "--cores", "2"]


def test_a_second_rerun_keeps_the_first_set_aside(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    L = fake_checkpoints(tmp_path, config, [RUN])
    first = move_aside(L.checkpoints(RUN))
    fake_checkpoints(tmp_path, config, [RUN])
    second = move_aside(L.checkpoints(RUN))
    assert (first.name, second.name) == ("checkpoints.before-rerun-1", "checkpoints.before-rerun-2")
    assert move_aside(L.checkpoints(RUN)) is None  # nothing there: nothing done


def test_a_rule_reruns_every_run_of_it_and_nothing_after(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    L = fake_checkpoints(tmp_path, config, [RUN, OTHER, "sft"])
    monkeypatch.setattr("prefsweep.config.files.experiment_config", lambda files, overrides: config)
    calls = []
    rerun_fresh(["dpo"], ["my.yaml"], run=lambda argv: calls.append(argv) or 0, say=lambda _: None)
    assert not (tmp_path / L.checkpoints(RUN)).exists() and not (tmp_path / L.checkpoints(OTHER)).exists()
    assert (tmp_path / L.checkpoint("sft", 8)).is_dir()
    assert calls[0][1:] == ["--forcerun", "dpo", "--until", "dpo", "--configfile", "my.yaml"]
    assert len(training_runs(config)["dpo"]) == 12


def test_a_dry_run_moves_nothing(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    L = fake_checkpoints(tmp_path, config, [RUN])
    monkeypatch.setattr("prefsweep.config.files.experiment_config", lambda files, overrides: config)
    calls = []
    rerun_fresh([L.model(RUN)], dry_run=True, run=lambda argv: calls.append(argv) or 0, say=lambda _: None)
    assert (tmp_path / L.checkpoint(RUN, 8)).is_dir() and calls[0][-1] == "--dry-run"


def test_a_running_snakemake_is_never_disturbed(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    L = fake_checkpoints(tmp_path, config, [RUN])
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("")
    monkeypatch.setattr("prefsweep.config.files.experiment_config", lambda files, overrides: config)
    with pytest.raises(ConfigError, match="another Snakemake is running"):
        rerun_fresh([L.model(RUN)], run=lambda argv: 0, say=lambda _: None)
    assert (tmp_path / L.checkpoint(RUN, 8)).is_dir()


@pytest.mark.parametrize("target, needle", [
    ("results/default/train/dpo/sc/size/n999/seed1/final", "not a training output of experiment 'default'"),
    ("results/other/train/sft/final", "another experiment: pass its config"),
    ("answers", "base_model, sft, sft_baseline, dpo"),
])
def test_a_target_that_is_no_training_output_is_refused(config, target, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve_targets(config, [target])


def test_paths_are_read_like_snakemake_reads_them(tmp_path, config):
    L = layout(config)
    want = {L.model(RUN): [RUN]}
    assert resolve_targets(config, [L.run_dir(RUN) + "/"]) == want
    assert resolve_targets(config, [str(tmp_path / L.model(RUN))], workdir=tmp_path) == want
    with pytest.raises(ConfigError, match="not both"):
        resolve_targets(config, ["dpo", L.model(RUN)])
