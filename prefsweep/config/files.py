"""Which config files a command names, so that every command follows the same experiment.

Snakemake merges ``--configfile A B`` over ``config/config.yaml`` in order; a second
``--configfile`` option *replaces* the first (one option, several files). ``make`` targets take
the files as ``CONFIG="A B"`` or inside ``SNAKEMAKE_ARGS``; both forms are read here with
Snakemake's own option spelling, and giving both is an error rather than a silent choice. The
outputs a command writes (the report, a rerun's checkpoints) then come from
:func:`prefsweep.config.load_config` over exactly those files.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path

from prefsweep.config import ConfigError, load_config
from prefsweep.paths import layout


def snakemake_config_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(configfiles, overrides)`` of a Snakemake command line: the files of its last
    ``--configfile``/``--configfiles`` option (``nargs="+"``: a later option replaces an earlier
    one, as in Snakemake) and the ``KEY=VALUE`` words of its ``--config``/``-C`` option."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--configfile", "--configfiles", nargs="+", default=[])
    p.add_argument("--config", "-C", nargs="*", default=[])
    known, _ = p.parse_known_args(list(argv))
    return list(known.configfile), list(known.config)


def make_configfiles(config: str = "", snakemake_args: str = "") -> list[str]:
    """Config files of a make target: ``CONFIG`` (space-separated) or the ``--configfile`` of
    ``SNAKEMAKE_ARGS``. Both at once is a :class:`~prefsweep.config.ConfigError` saying what to write."""
    from_config = shlex.split(config)
    from_args, _ = snakemake_config_options(shlex.split(snakemake_args))
    if from_config and from_args:
        raise ConfigError(
            f"config files given twice: CONFIG={' '.join(from_config)} and --configfile {' '.join(from_args)} "
            "in SNAKEMAKE_ARGS; give them once, as CONFIG=\"a.yaml b.yaml\" (merged over config/config.yaml in order)")
    return from_config or from_args


def experiment_config(configfiles: Sequence[str | Path], overrides: Sequence[str] = ()) -> dict:
    """The config Snakemake builds from ``--configfile configfiles`` and ``--config overrides``:
    the files merged over ``config/config.yaml``, then the overrides as Snakemake parses them,
    typed by the schema, validated and filled with its defaults (cross-key checks not run)."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    from prefsweep.config import coerce_cli_strings, load_schema, validate_config

    config = load_config(*configfiles, check=False)
    if overrides:
        update_config(config, parse_config(list(overrides)))
        coerce_cli_strings(config, load_schema())
        validate_config(config)
    return config


def report_path(config: dict) -> str:
    """Where the experiment of ``config`` keeps its HTML report: ``results/<experiment>/report.html``."""
    return layout(config).report()


def make_report_path(config: str = "", snakemake_args: str = "") -> str:
    """The report path of a make target's experiment (``CONFIG`` and ``SNAKEMAKE_ARGS``, as
    :func:`make_configfiles` reads them; ``--config experiment=...`` in ``SNAKEMAKE_ARGS`` counts)."""
    _, overrides = snakemake_config_options(shlex.split(snakemake_args))
    return report_path(experiment_config(make_configfiles(config, snakemake_args), overrides))
