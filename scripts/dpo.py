"""One DPO run: one arm x matching x size series, one seed (TRL ``DPOTrainer``).

    python scripts/dpo.py --config-json results/default/config/dpo.json \
        --model results/default/models/sft \
        --pairs results/default/data/maj/shared/n64/pairs.parquet \
        --manifest results/default/data/maj/shared/n64/manifest.json \
        --ref-logps results/default/ref_logps/maj.parquet \
        --seed 1 --arm maj --matching shared --size 64 \
        --out results/default/dpo/maj/shared/n64/seed1/final \
        --checkpoints results/default/dpo/maj/shared/n64/seed1/checkpoints

The reference log-probs come from ``--ref-logps`` (computed once per arm by
``scripts/ref_logps.py``); no reference model is built or run here (see
:mod:`prefsweep.training`). Every pair needs its values: a missing pair_id is an error.
Hyperparameters: config section ``dpo`` (TRL names); ``--seed`` sets the data order and the LoRA
init. ``--out`` gets the trained policy (a PEFT adapter directory with ``dpo.lora.enabled``,
else a full HF directory) with ``run_info.json`` (config, library versions, manifest sha256),
written atomically. ``checkpoint-{step}`` every ``save_steps`` (all kept) go to
``--checkpoints`` (older ones keep only their weights); a killed run started again with the same
config and inputs resumes from the last one.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from prefsweep.io import atomic_dir, load_config_json, save_run_info, sha256_file, sha256_json
from prefsweep.reflogps import attach_ref_logps, dpo_columns
from prefsweep.tracking import scrub_secrets
from prefsweep.training import (
    DPO_KEYS, TRAIN_DTYPE, build_dpo_config, build_lora_config, configure_runtime, finish_wandb,
    load_model_and_tokenizer, make_dpo_trainer, prepare_checkpoint_dir, prune_resume_state_callback,
    resolve_section, run_fingerprint, start_wandb, wandb_setup,
)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="DPO init model HF directory (models/sft or models/base)")
    p.add_argument("--pairs", required=True, help="series pairs.parquet")
    p.add_argument("--manifest", required=True, help="series manifest.json")
    p.add_argument("--ref-logps", required=True, help="ref_logps/{arm}.parquet")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--arm", required=True)
    p.add_argument("--matching", required=True, help="data matching of the series (shared for the reference arm)")
    p.add_argument("--size", required=True, type=int)
    p.add_argument("--out", required=True, help="output directory dpo/.../seed{seed}/final")
    p.add_argument("--checkpoints", required=True, help="checkpoint directory dpo/.../seed{seed}/checkpoints")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def check_manifest(manifest: dict, pairs_path: str, n_pairs: int, arm: str, matching: str, size: int) -> None:
    """The manifest must describe this pairs file and this cell."""
    actual = sha256_file(pairs_path)
    if manifest.get("sha256") != actual:
        raise SystemExit(f"{pairs_path}: sha256 {actual} differs from its manifest's {manifest.get('sha256')}")
    expected = {"arm": arm, "matching": matching, "size": size, "n_pairs": n_pairs}
    wrong = {k: (manifest.get(k), v) for k, v in expected.items() if manifest.get(k) != v}
    if wrong:
        raise SystemExit(f"manifest does not match this job (manifest value, job value): {wrong}")


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    t0 = time.perf_counter()
    config = load_config_json(args.config_json)
    section = resolve_section(config["dpo"], DPO_KEYS, "dpo")
    peft_config = build_lora_config(section["lora"], "dpo.lora")

    pairs = pd.read_parquet(args.pairs)
    with open(args.manifest, encoding="utf-8") as fh:
        manifest = json.load(fh)
    check_manifest(manifest, args.pairs, len(pairs), args.arm, args.matching, args.size)
    try:
        data = attach_ref_logps(pairs, pd.read_parquet(args.ref_logps))[dpo_columns()]
    except KeyError as exc:
        raise SystemExit(f"{args.ref_logps}: {exc.args[0]}") from None

    from datasets import Dataset

    dataset = Dataset.from_pandas(data, preserve_index=False)

    job = {"arm": args.arm, "matching": args.matching, "size": args.size, "seed": args.seed}
    train_section = {k: v for k, v in section.items() if k != "seeds"}
    fingerprint = run_fingerprint({"dpo": train_section}, {**job, "data": sha256_json(data.to_dict("list"))},
                                  {"model": args.model, "pairs": args.pairs})
    resume = prepare_checkpoint_dir(args.checkpoints, fingerprint)

    group = f"{args.arm}-{args.matching}-n{args.size}"
    name = f"{group}-seed{args.seed}"
    wb = wandb_setup(config, group=group, name=name, job_type="dpo",
                     run_id=f"dpo-{name}-{fingerprint['sha256'][:8]}")
    dpo_args = build_dpo_config(section, output_dir=args.checkpoints, seed=args.seed, run_name=name,
                                report_to=wb.report_to)
    run = start_wandb(wb, config, {"job": job})

    model, tokenizer = load_model_and_tokenizer(args.model, dtype=TRAIN_DTYPE)
    trainer = make_dpo_trainer(model, tokenizer, dataset, dpo_args, peft_config=peft_config,
                               callbacks=[prune_resume_state_callback()])
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    with atomic_dir(args.out) as tmp:
        trainer.save_model(tmp)  # adapter only with LoRA; tokenizer included
        save_run_info(
            tmp, scrub_secrets(config), step="dpo", job=job, init_model=args.model,
            manifest_sha256=sha256_file(args.manifest), pairs_sha256=manifest["sha256"],
            ref_logps_sha256=sha256_file(args.ref_logps), fingerprint=fingerprint["sha256"],
            resumed_from=resume.name if resume else None, global_step=trainer.state.global_step,
            n_pairs=len(pairs), n_pairs_trained=len(trainer.train_dataset), train_metrics=result.metrics,
            adapter=peft_config is not None, wandb_run_id=None if wb.mode == "disabled" else wb.run_id,
        )
    finish_wandb(run)
    print(f"DPO {name}: {trainer.state.global_step} steps, policy written to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
