"""Reference log-probs of an arm's pairs under the DPO init model, computed once per arm.

    python scripts/ref_logps.py --config-json "$(python -m prefsweep.config ref_logps)" \
        --model results/default/train/sft/final \
        --pairs results/default/data/maj/shared/n256/pairs.parquet \
        --out results/default/ref_logps/maj.parquet

``--pairs`` takes one or more pairs tables (the arm's largest series under each matching); their
union by ``pair_id`` is scored. Output columns: pair_id, ref_chosen_logps, ref_rejected_logps
(float64: summed completion token log-probs, exactly as TRL 1.16 ``DPOTrainer`` computes them,
with ``dpo.max_length``; see :mod:`prefsweep.train.reflogps`). A prompt of ``dpo.max_length`` tokens
or more is an error naming the pairs. With ``dpo.bf16`` the forward runs under bf16 autocast (on
the GPU, or the CPU without one), as it does inside the trainer. Under
``python -m prefsweep.launch --processes N`` (N GPUs) each process scores a share of the pairs
and rank 0 writes the table, equal to that of one process (:mod:`prefsweep.train.reflogps`).
"""

from __future__ import annotations

import argparse
import time


from prefsweep import distributed
from prefsweep.io import atomic_write_parquet, load_config_json, read_parquet
from prefsweep.train.jobs import user_errors
from prefsweep.train.reflogps import compute_ref_logps, union_pairs
from prefsweep.train.training import TRAIN_DTYPE, DataError, check_max_length, configure_runtime, load_model_and_tokenizer


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="DPO init model HF directory (train/sft/final or train/base/final)")
    p.add_argument("--pairs", required=True, nargs="+", help="pairs.parquet tables of the arm")
    p.add_argument("--out", required=True, help="output ref_logps/{arm}.parquet")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    t0 = time.perf_counter()
    config = load_config_json(args.config_json)
    # Only what changes the values: DPO's truncation length and precision (the rule's config
    # slice holds just these, so a new learning rate or beta never recomputes them).
    try:
        max_length, bf16 = config["dpo"]["max_length"], config["dpo"]["bf16"]
    except KeyError as exc:
        raise SystemExit(f"--config-json: missing key dpo.{exc.args[0]} (python -m prefsweep.config ref_logps)")
    with user_errors():  # a truncated or corrupt file: named, with how to rebuild it
        pairs = union_pairs(read_parquet(p) for p in args.pairs)

    import torch

    if distributed.world_size() > 1:
        device = distributed.device()  # this rank's GPU (cuda:{local_rank}), or the CPU
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model_and_tokenizer(args.model, dtype=TRAIN_DTYPE)
    model.to(device)
    # As the DPO trainer runs its forward: bf16 autocast on the GPU or the CPU (prefsweep.train.training).
    autocast = torch.bfloat16 if bf16 else None
    with user_errors():
        check_max_length(model, max_length, "dpo.max_length", args.model)
        try:
            table = compute_ref_logps(model, tokenizer, pairs, max_length=max_length, key="dpo.max_length",
                                      batch_size=args.batch_size, autocast_dtype=autocast)
        except DataError as exc:
            raise DataError(f"{', '.join(args.pairs)}: {exc}") from None
    if not distributed.is_main():
        return
    atomic_write_parquet(args.out, table)
    print(f"reference log-probs of {len(table)} pairs written to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
