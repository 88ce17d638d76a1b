"""Supervised fine-tuning of the base model on the SFT corpus (TRL ``SFTTrainer``).

    python scripts/sft.py --config-json results/default/config/sft.json \
        --model results/default/models/base --corpus results/default/data/sft.jsonl \
        --out results/default/models/sft --checkpoints results/default/train/sft/checkpoints

Prompt/completion data (``{prompt, completion, prompt_id}``, both rendered with
:mod:`prefsweep.prompts`), loss on completion tokens only (TRL appends the eos token to each
completion). Hyperparameters: config section ``sft`` (TRL names, see :mod:`prefsweep.training`).
With ``sft.lora.enabled`` the adapter is merged, so ``--out`` is always a full HF directory, with
``run_info.json``. Checkpoints every ``save_steps`` go to ``--checkpoints`` (older ones keep only
their weights); a killed run started again with the same config and inputs resumes from the last.
"""

from __future__ import annotations

import argparse
import time

from prefsweep.io import atomic_dir, load_config_json, read_jsonl, save_run_info
from prefsweep.tracking import scrub_secrets
from prefsweep.training import (
    SFT_KEYS, TRAIN_DTYPE, build_lora_config, build_sft_config, configure_runtime, finish_wandb,
    load_model_and_tokenizer, prepare_checkpoint_dir, prune_resume_state_callback, resolve_section,
    run_fingerprint, start_wandb, wandb_setup,
)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="base model HF directory (models/base)")
    p.add_argument("--corpus", required=True,
                   help="data/sft.jsonl, or a series pairs.parquet (SFT on the chosen responses)")
    p.add_argument("--out", required=True, help="output HF directory (models/sft)")
    p.add_argument("--checkpoints", required=True, help="checkpoint directory (train/sft/checkpoints)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def read_corpus(path: str) -> list[dict]:
    """SFT examples ``{prompt, completion}`` (both rendered) from ``data/sft.jsonl``, or from a
    series ``pairs.parquet`` (a baseline's SFT on an arm's data, ``eval.baselines[].sft_on``):
    each distinct (prompt, chosen) pair once, in file order."""
    if str(path).endswith(".parquet"):
        import pandas as pd

        pairs = pd.read_parquet(path, columns=["prompt", "chosen"]).drop_duplicates()
        return [{"prompt": p, "completion": c} for p, c in zip(pairs["prompt"], pairs["chosen"])]
    return read_jsonl(path)


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    t0 = time.perf_counter()
    config = load_config_json(args.config_json)
    section = resolve_section(config["sft"], SFT_KEYS, "sft")
    peft_config = build_lora_config(section["lora"], "sft.lora")

    from datasets import Dataset

    records = read_corpus(args.corpus)
    if not records:
        raise SystemExit(f"{args.corpus}: empty SFT corpus")
    dataset = Dataset.from_dict({"prompt": [r["prompt"] for r in records],
                                 "completion": [r["completion"] for r in records]})

    fingerprint = run_fingerprint({"sft": section}, {"step": "sft"}, {"model": args.model, "corpus": args.corpus})
    resume = prepare_checkpoint_dir(args.checkpoints, fingerprint)
    wb = wandb_setup(config, group="sft", name="sft", job_type="sft", run_id=f"sft-{fingerprint['sha256'][:12]}")
    sft_args = build_sft_config(section, output_dir=args.checkpoints, run_name="sft", report_to=wb.report_to)
    run = start_wandb(wb, config, {"job": {"step": "sft"}})

    from trl import SFTTrainer

    model, tokenizer = load_model_and_tokenizer(args.model, dtype=TRAIN_DTYPE)
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[prune_resume_state_callback()])
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    final = trainer.model
    if peft_config is not None:
        final = final.merge_and_unload()
    with atomic_dir(args.out) as tmp:
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_run_info(tmp, scrub_secrets(config), step="sft", fingerprint=fingerprint["sha256"],
                      inputs=fingerprint["inputs"], resumed_from=resume.name if resume else None,
                      global_step=trainer.state.global_step, train_metrics=result.metrics,
                      n_examples=len(dataset), lora_merged=peft_config is not None)
    finish_wandb(run)
    print(f"SFT: {trainer.state.global_step} steps, model written to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
