"""One DPO run: one arm x matching x size series, one seed (TRL ``DPOTrainer``).

    python scripts/dpo.py --config-json "$(python -m prefsweep.config dpo)" \
        --model results/default/train/sft/final \
        --pairs results/default/data/maj/shared/n64/pairs.parquet \
        --manifest results/default/data/maj/shared/n64/manifest.json \
        --ref-logps results/default/ref_logps/maj.parquet \
        --seed 1 --arm maj --matching shared --size 64 \
        --out results/default/train/dpo/maj/shared/n64/seed1/final \
        --checkpoints results/default/train/dpo/maj/shared/n64/seed1/checkpoints

The reference log-probs come from ``--ref-logps`` (computed once per arm by
``scripts/ref_logps.py``); no reference model is built or run here (see
:mod:`prefsweep.train.trl_adapter`). Every pair needs its values: a missing pair_id is an error.
Hyperparameters: config section ``dpo`` (TRL names); ``--seed`` sets the data order and the LoRA
init. ``--out`` gets the trained policy (a PEFT adapter directory with ``dpo.lora.enabled``,
else a full HF directory) with ``run_info.json`` (config, library versions, manifest sha256; see
:mod:`prefsweep.train.jobs`), written atomically. ``checkpoint-{step}`` every ``save_steps`` (all
kept) go to ``--checkpoints`` (older ones keep only their weights); a killed run started again
with the same config and inputs resumes from the last one and ends with the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefsweep.io import load_config_json, sha256_file
from prefsweep.train.jobs import TrainingJob, read_dpo_data, run_training_job, user_errors
from prefsweep.paths import INITS, dpo_model_id
from prefsweep.train.training import configure_runtime


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="DPO init model HF directory (train/sft/final or train/base/final)")
    p.add_argument("--pairs", required=True, help="series pairs.parquet")
    p.add_argument("--manifest", required=True, help="series manifest.json")
    p.add_argument("--ref-logps", required=True, help="ref_logps/{arm}.parquet")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--arm", required=True)
    p.add_argument("--matching", required=True, help="data matching of the series (shared for the reference arm)")
    p.add_argument("--size", required=True, type=int)
    p.add_argument("--init", choices=INITS, default=None,
                   help="the init model's name when dpo.init is a list (it is then part of the model id)")
    p.add_argument("--out", required=True, help="output directory dpo/.../seed{seed}/final")
    p.add_argument("--checkpoints", required=True, help="checkpoint directory dpo/.../seed{seed}/checkpoints")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    cell = {"arm": args.arm, "matching": args.matching, "size": args.size}
    job = {**cell, "seed": args.seed, **({"init": args.init} if args.init else {})}
    with user_errors():
        config = load_config_json(args.config_json)
        pairs, dataset = read_dpo_data(args.pairs, args.manifest, args.ref_logps, cell)
        model_id = dpo_model_id(args.arm, args.matching, args.size, args.seed, init=args.init)
        info = run_training_job(TrainingJob(
            step="dpo", config=config, init_model=Path(args.model), dataset=dataset,
            record_ids=pairs["prompt_id"].astype(str).tolist(), id_name="prompt_id", data_source=args.pairs,
            # The reference log-probs enter through the data hash, not as a file: the rule reads
            # the arm's file as ancient(), and a larger size added later rewrites it.
            inputs={"pairs": Path(args.pairs)}, job=job, seed=args.seed,
            run_name=model_id, wandb_group=model_id.rsplit("-seed", 1)[0][len("dpo-"):],
            out=Path(args.out), checkpoints=Path(args.checkpoints),
            run_info={"manifest_sha256": sha256_file(args.manifest), "pairs_sha256": sha256_file(args.pairs),
                      "ref_logps_sha256": sha256_file(args.ref_logps), "n_pairs": len(pairs)},
        ))
    print(f"DPO {model_id}: {info['global_step']} steps, policy written to {args.out}")


if __name__ == "__main__":
    main()
