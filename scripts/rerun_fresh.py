"""Retrain one training cell (or every job of a training rule) from scratch.

    python scripts/rerun_fresh.py results/default/train/dpo/sc/size/n64/seed1/final -- --cores 2
    python scripts/rerun_fresh.py dpo --configfile config/paper/base.yaml config/paper/shp.yaml -- --profile profiles/slurm
    make rerun TARGET=results/default/train/dpo/sc/size/n64/seed1/final [CONFIG=my.yaml]

A plain ``snakemake -f <run>/final`` (or ``-R dpo``) resumes from the run's checkpoints and ends
with the same weights; this command first moves each named run's checkpoints directory aside to
``checkpoints.before-rerun-<n>`` (nothing is deleted; other runs are untouched), then runs
Snakemake: model paths with ``--force`` (later, a plain ``snakemake`` reruns what depends on
them), rule names (base_model, sft, sft_baseline, dpo) with ``--forcerun RULE --until RULE``.
Options after ``--`` go to Snakemake. ``--dry-run`` moves nothing and passes ``--dry-run``.
Run it in the working directory of the workflow (or give Snakemake's ``--directory``); it
refuses while another Snakemake holds the lock there. See :mod:`prefsweep.train.rerun`.
"""

from __future__ import annotations

import argparse
import sys

from prefsweep.config import ConfigError
from prefsweep.train.rerun import rerun_fresh


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                usage="%(prog)s TARGET ... [--configfile FILE ...] [--dry-run] [-- SNAKEMAKE_OPTIONS]")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="a model directory (…/train/<run>/final) or a "
                   "training rule (base_model, sft, sft_baseline, dpo)")
    p.add_argument("--configfile", nargs="+", default=[], help="config files merged over config/config.yaml (after the targets)")
    p.add_argument("-n", "--dry-run", action="store_true", help="move nothing; show what Snakemake would run")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = make_parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        status = rerun_fresh(args.targets, args.configfile, extra, dry_run=args.dry_run)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    raise SystemExit(status)


if __name__ == "__main__":
    main()
