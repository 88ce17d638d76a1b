"""Retrain a training cell (or a whole training rule) from scratch.

A training job resumes from the last complete checkpoint in its checkpoints directory whenever
the fingerprint stored there equals its own (same config slice, inputs, data and libraries;
:func:`prefsweep.train.checkpoints.prepare_checkpoint_dir`). That is what a preempted, killed or
resubmitted job must do, and it is also what ``snakemake -f <run>/final`` or ``-R dpo`` does: the
forced job resumes and ends with the same weights. To train again from step 0, the run's
checkpoints directory is first moved aside (to ``checkpoints.before-rerun-<n>`` next to it,
never deleted), then Snakemake reruns the job (``scripts/rerun_fresh.py``, ``make rerun``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from prefsweep import paths as P
from prefsweep.config import ConfigError

#: Training rules whose jobs keep checkpoints, and the runs (``Layout.run_dir``) of each.
TRAINING_RULES = ("base_model", "sft", "sft_baseline", "dpo")
#: Suffix of a moved-aside checkpoints directory: ``checkpoints.before-rerun-1``, ``-2``, ...
ASIDE = ".before-rerun-"


def training_runs(config: dict) -> dict[str, list[str]]:
    """Rule -> the runs its jobs train (``base``, ``sft``, ``baseline-<name>``, DPO runs)."""
    layout = P.layout(config)
    return {
        "base_model": ["base"],
        "sft": ["sft"],
        "sft_baseline": [f"baseline-{b['name']}" for b in config["eval"]["baselines"] if b.get("sft_on")],
        "dpo": [layout.dpo_run(*cell) for cell in P.dpo_cells(config)],
    }


def resolve_targets(config: dict, targets: Sequence[str], workdir: str | os.PathLike = ".") -> dict[str, list[str]]:
    """``{snakemake target: [runs]}`` for rule names of :data:`TRAINING_RULES` and model paths
    (``results/<experiment>/train/<run>/final``, or the run directory; relative to ``workdir`` or
    absolute). Anything else is a :class:`~prefsweep.config.ConfigError` listing what is allowed."""
    layout = P.layout(config)
    runs = training_runs(config)
    by_path = {layout.model(run): run for rule_runs in runs.values() for run in rule_runs}
    by_path.update({layout.run_dir(run): run for run in list(by_path.values())})
    out: dict[str, list[str]] = {}
    for target in targets:
        if target in runs:
            out[target] = runs[target]
            continue
        rel = os.path.normpath(os.path.relpath(target, workdir) if os.path.isabs(target) else target)
        if rel not in by_path:
            example = layout.model(runs["dpo"][0]) if runs["dpo"] else layout.model("sft")
            raise ConfigError(
                f"{target}: not a training output of experiment {config['experiment']!r}; give a model "
                f"directory such as {example} (or its run directory), or a training rule: "
                f"{', '.join(TRAINING_RULES)} (another experiment: pass its config)")
        out[layout.model(by_path[rel])] = [by_path[rel]]
    rules = [t for t in out if t in runs]
    if rules and len(rules) != len(out):
        raise ConfigError(f"give model paths or training rules, not both (got {', '.join(targets)}): "
                          "rerun them with two commands")
    return out


def move_aside(ckpt_dir: str | os.PathLike) -> Path | None:
    """Rename ``ckpt_dir`` to the first free ``<name>.before-rerun-<n>`` beside it; None (and
    nothing done) when it does not exist."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.exists():
        return None
    n = 1
    while (dest := ckpt_dir.with_name(f"{ckpt_dir.name}{ASIDE}{n}")).exists():
        n += 1
    ckpt_dir.rename(dest)
    return dest


def check_no_snakemake_running(workdir: str | os.PathLike) -> None:
    """Moving checkpoints under a running job would break it: refuse while Snakemake holds its
    lock in ``workdir`` (``.snakemake/locks/``)."""
    locks = Path(workdir) / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        raise ConfigError(f"{locks}: another Snakemake is running in {Path(workdir).resolve()}; wait for it (if "
                          "none is, a killed one left its lock: snakemake --unlock), then rerun this command")


def snakemake_argv(targets: Sequence[str], rules: bool, configfiles: Sequence[str], extra: Sequence[str],
                   dry_run: bool = False) -> list[str]:
    """The Snakemake command that reruns ``targets`` once their checkpoints are aside: model
    paths with ``--force`` (those jobs only; what depends on them reruns at the next plain
    ``snakemake``, their inputs being newer), rules with ``--forcerun R --until R`` (every job of
    the rule, nothing after it). Targets come first: Snakemake's list options would take them."""
    exe = Path(sys.executable).with_name("snakemake")
    argv = [str(exe) if exe.exists() else "snakemake"]
    argv += ["--forcerun", *targets, "--until", *targets] if rules else [*targets, "--force"]
    argv += ["--configfile", *configfiles] if configfiles else []
    return argv + list(extra) + (["--dry-run"] if dry_run else [])


def workdir_of(extra: Sequence[str]) -> str:
    """The working directory a Snakemake command line runs in (its ``--directory``, else ``.``)."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--directory", "-d", default=".")
    return p.parse_known_args(list(extra))[0].directory


def rerun_fresh(targets: Sequence[str], configfiles: Sequence[str] = (), extra: Sequence[str] = (),
                dry_run: bool = False, run=None, say=print) -> int:
    """Move the checkpoints of ``targets`` aside, then run Snakemake on them (:func:`snakemake_argv`);
    returns its exit status. ``extra``: further Snakemake options (``--cores 4``, a profile; a
    ``--configfile`` there counts like ``configfiles``, not both). ``dry_run``: move nothing and
    pass ``--dry-run``. ``run``: runs the command (default ``subprocess.call``)."""
    import subprocess

    from prefsweep.config.files import experiment_config, snakemake_config_options

    in_extra, overrides = snakemake_config_options(extra)
    if configfiles and in_extra:
        raise ConfigError(f"config files given twice: --configfile {' '.join(configfiles)} and --configfile "
                          f"{' '.join(in_extra)} among the Snakemake options; give them once")
    config = experiment_config(list(configfiles) or in_extra, overrides)
    workdir = workdir_of(extra)
    resolved = resolve_targets(config, targets, workdir)
    if not dry_run:
        check_no_snakemake_running(workdir)
    layout = P.layout(config)
    for run_name in dict.fromkeys(r for runs in resolved.values() for r in runs):
        ckpt = Path(workdir) / layout.checkpoints(run_name)
        if not ckpt.exists():
            say(f"{ckpt}: no checkpoints; the job starts from scratch anyway")
        elif dry_run:
            say(f"{ckpt}: would be moved aside (dry run: nothing moved)")
        else:
            say(f"{ckpt}: moved aside to {move_aside(ckpt)} (delete it when the new run is good)")
    rules = all(t in TRAINING_RULES for t in resolved)
    argv = snakemake_argv(list(resolved), rules, configfiles, extra, dry_run)
    say("running: " + " ".join(argv))
    return (run or subprocess.call)(argv)
