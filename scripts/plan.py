"""Print what an experiment will cost before anything runs: jobs, GPU memory, GPU-hours, judge calls, disk.

    python scripts/plan.py --configfile config/paper/base.yaml config/paper/shp.yaml [--gpu h100-80gb] [--json]
    make plan CONFIG="config/paper/base.yaml config/paper/shp.yaml" GPU=h100-80gb

Run it where the workflow runs (the repository root): jobs come from ``snakemake -n`` there, so
finished jobs are not counted and cached judge responses under
``results/<experiment>/eval/judge_cache/`` are subtracted. ``--config KEY=VALUE ...`` is passed
to Snakemake and merged into the config as Snakemake merges it. The GPU defaults to
$PREFSWEEP_GPU_MODEL (the Slurm profile's GPU model) when it names a known type, else
a100-80gb. See :mod:`prefsweep.cost.plan` for the memory model and the throughput figures.
"""

from __future__ import annotations

import argparse
import os

from prefsweep.config import load_config
from prefsweep.cost.hardware import DEFAULT_GPU, GPUS
from prefsweep.cost.plan import dry_run_jobs, format_plan, make_plan


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    p.add_argument("--config", nargs="*", default=[], help="KEY=VALUE overrides, as snakemake --config takes them")
    env_gpu = (os.environ.get("PREFSWEEP_GPU_MODEL") or "").lower()
    p.add_argument("--gpu", default=env_gpu if env_gpu in GPUS else DEFAULT_GPU, choices=sorted(GPUS),
                   help="GPU type whose memory and throughput the plan uses")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def resolved_config(configfiles: list[str], overrides: list[str]) -> dict:
    """The config Snakemake would see: files merged over the default, then --config values
    parsed and merged as Snakemake does (``snakemake.cli.parse_config``), typed by the schema."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    from prefsweep.config import coerce_cli_strings, load_schema, validate_config
    from prefsweep.experiment import check_experiment

    config = load_config(*configfiles, check=False)
    update_config(config, parse_config(overrides))
    coerce_cli_strings(config, load_schema())
    validate_config(config)
    check_experiment(config)
    return config


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = resolved_config(args.configfile, args.config)
    jobs = dry_run_jobs(args.configfile, extra=["--config", *args.config] if args.config else None)
    plan = make_plan(config, jobs, args.gpu)
    print(plan.to_json() if args.json else format_plan(plan))


if __name__ == "__main__":
    main()
