"""Experiment config: the schema, per-job config slices and the config layer's checks.

A value travels from ``config/config.yaml`` (or ``--configfile`` / ``--config key=value``) into
Snakemake's ``config`` dict, is validated and filled with defaults by
``workflow/schemas/config.schema.yaml``, checked again here, and then handed to each job as a
*slice*: the sections that job reads, as a JSON ``params`` value. Snakemake reruns a job when its
params change, so a job reruns when - and only when - a value it uses changes. Keys that shape
the DAG (sizes, matchings, seeds, baselines) are not in any slice: they add or remove jobs
through wildcards instead of rerunning the existing ones. Keys that change only how a job logs
or talks to an API (``RUNTIME_KEYS``, the judge's client keys) are in no slice either: they
reach jobs in environment variables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefsweep.config.checks import check_config, check_model_name
from prefsweep.config.schema import (
    DEFAULT_CONFIG_PATH, REPO, SCHEMA_PATH, ConfigError, coerce_cli_strings, load_schema, schema_node,
    schema_properties, validate_config,
)
from prefsweep.config.slices import (
    JUDGE_CLIENT_KEYS, JUDGE_PLAN_KEYS, ONE_RULE_STEPS, RESOURCE_KEYS, RUNTIME_ENV, RUNTIME_KEYS, SHAPE_KEYS,
    STEP_KEYS, CheckpointEval, checkpoint_eval, job_config, job_config_json, other_source_sections,
    runtime_env_value, runtime_values,
)

__all__ = [
    "DEFAULT_CONFIG_PATH", "JUDGE_CLIENT_KEYS", "JUDGE_PLAN_KEYS", "ONE_RULE_STEPS", "REPO", "RESOURCE_KEYS",
    "RUNTIME_ENV", "RUNTIME_KEYS", "SCHEMA_PATH", "SHAPE_KEYS", "STEP_KEYS", "CheckpointEval", "ConfigError",
    "check_config", "check_model_name", "checkpoint_eval", "coerce_cli_strings", "job_config", "job_config_json",
    "load_config", "load_schema", "main", "other_source_sections", "runtime_env_value", "runtime_values",
    "schema_node", "schema_properties", "validate_config",
]


def load_config(*configfiles: str | Path, check: bool = True) -> dict:
    """``config/config.yaml`` with ``configfiles`` merged over it (Snakemake's order), validated
    and filled with the schema's defaults, then checked (:func:`check_config`, unless ``check``
    is false): the config a workflow job's slice is cut from."""
    import yaml
    from snakemake.utils import update_config

    with open(DEFAULT_CONFIG_PATH, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    for path in configfiles:
        with open(path, encoding="utf-8") as fh:
            update_config(config, yaml.safe_load(fh) or {})
    coerce_cli_strings(config, load_schema())  # learning_rate: 5e-7, as the Snakefile does
    validate_config(config)
    if check:
        check_config(config)
    return config


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m prefsweep.config",
        description="Print the config slice a step's job receives (for running a script by hand: "
        "--config-json \"$(python -m prefsweep.config dpo)\").",
    )
    p.add_argument("step", choices=sorted(STEP_KEYS))
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    print(job_config_json(load_config(*args.configfile), args.step))
