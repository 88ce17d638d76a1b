"""Supervised fine-tuning of the base model on the SFT corpus (TRL ``SFTTrainer``).

    python scripts/sft.py --config-json "$(python -m prefsweep.config sft)" \
        --model results/default/train/base/final --corpus results/default/data/sft.jsonl \
        --out results/default/train/sft/final --checkpoints results/default/train/sft/checkpoints

Prompt/completion data (``{prompt, completion, prompt_id}``, both rendered with
:mod:`prefsweep.data.prompts`; or a series ``pairs.parquet`` for a baseline's SFT on an arm's chosen
responses), loss on completion tokens only (TRL appends the eos token to each completion).
Hyperparameters: config section ``sft`` (TRL names, see :mod:`prefsweep.train.training`); ``sft.seed``
sets the data order. With ``sft.lora.enabled`` the adapter is merged, so ``--out`` is always a
full HF directory, with ``run_info.json`` (see :mod:`prefsweep.train.jobs`), written atomically.
Checkpoints every ``save_steps`` go to ``--checkpoints`` (older ones keep only their weights); a
killed run started again with the same config and inputs resumes from the last one and ends
with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefsweep.io import load_config_json
from prefsweep.train.jobs import TrainingJob, read_sft_corpus, run_training_job, user_errors
from prefsweep.train.training import configure_runtime


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="base model HF directory (train/base/final)")
    p.add_argument("--corpus", required=True,
                   help="data/sft.jsonl, or a series pairs.parquet (SFT on the chosen responses)")
    p.add_argument("--out", required=True, help="output HF directory (train/sft/final)")
    p.add_argument("--checkpoints", required=True, help="checkpoint directory (train/sft/checkpoints)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    from datasets import Dataset

    with user_errors():
        config = load_config_json(args.config_json)
        records, id_name = read_sft_corpus(args.corpus)
        dataset = Dataset.from_dict({"prompt": [r["prompt"] for r in records],
                                     "completion": [r["completion"] for r in records]})
        info = run_training_job(TrainingJob(
            step="sft", config=config, init_model=Path(args.model), dataset=dataset,
            record_ids=[r["prompt_id"] for r in records], id_name=id_name, data_source=args.corpus,
            inputs={"corpus": Path(args.corpus)}, job={"step": "sft"}, seed=None, run_name="sft",
            wandb_group="sft", out=Path(args.out), checkpoints=Path(args.checkpoints),
        ))
    print(f"SFT: {info['global_step']} steps, model written to {args.out}")


if __name__ == "__main__":
    main()
