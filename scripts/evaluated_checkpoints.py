"""The kept checkpoints of finished DPO runs that get their own model id, as JSON.

    python scripts/evaluated_checkpoints.py --runs dpo/maj/shared/n64/seed1 ... \
        --models results/default/train/dpo/maj/shared/n64/seed1/final ... \
        --checkpoints results/default/train/dpo/maj/shared/n64/seed1/checkpoints ... \
        --out results/default/train/evaluated_checkpoints.json

Writes ``{run: [step, ...]}`` atomically: each run's complete ``checkpoint-{step}`` directories
but the one at its last step (``run_info.json``'s ``global_step``; the final model stands for
it). This is the workflow's one Snakemake checkpoint (rule ``evaluated_checkpoints``): the steps
depend on the pairs a prompt-matched series holds, so the conversions, answers and judgments
of the checkpoints join the DAG once every DPO run is done, and everything else is planned from
the start.
"""

from __future__ import annotations

import argparse

from prefsweep.io import atomic_write_json
from prefsweep.train.checkpoints import evaluated_checkpoint_steps


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="*", default=[], help="run names (train/{run}), one per model")
    p.add_argument("--models", nargs="*", default=[], help="each run's final model directory (holds run_info.json)")
    p.add_argument("--checkpoints", nargs="*", default=[], help="each run's checkpoints directory")
    p.add_argument("--out", required=True, help="output JSON {run: [step, ...]}")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    if not len(args.runs) == len(args.models) == len(args.checkpoints):
        raise SystemExit(f"--runs, --models and --checkpoints differ in length: "
                         f"{len(args.runs)}, {len(args.models)}, {len(args.checkpoints)}")
    steps = {run: evaluated_checkpoint_steps(ckpts, f"{model}/run_info.json")
             for run, model, ckpts in zip(args.runs, args.models, args.checkpoints)}
    atomic_write_json(args.out, steps)
    print(f"{sum(map(len, steps.values()))} checkpoint models of {len(steps)} runs -> {args.out}")


if __name__ == "__main__":
    main()
