"""Preference accuracy on held-out pairs: how often a model ranks the chosen response first.

    python scripts/pair_accuracy.py score --config-json C --model results/default/hf/sft \
        --model-id sft --pairs results/default/data/eval_pairs/maj.parquet \
        --out results/default/eval/pair_accuracy/sft.json
    python scripts/pair_accuracy.py table --inputs results/default/eval/pair_accuracy/*.json \
        --out results/default/eval/pair_accuracy.csv

``score``: for every pair of the held-out eval prompts (never in any training file), the summed
log-probability of the chosen and of the rejected completion under the model, exactly as DPO
scores them (``prefsweep.reflogps.compute_ref_logps``, truncated at ``dpo.max_length``);
accuracy = share of pairs with ``log p(chosen) > log p(rejected)``. ``table``: one row per model.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from prefsweep.io import atomic_write_json, atomic_write_text, load_config_json
from prefsweep.paths import parse_model_id


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="accuracy of one model")
    s.add_argument("--config-json", required=True, help="config slice (inline JSON or a file)")
    s.add_argument("--model", required=True, help="HF directory (hf/{model_id})")
    s.add_argument("--model-id", required=True)
    s.add_argument("--pairs", required=True, help="data/eval_pairs/{arm}.parquet")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--out", required=True, help="eval/pair_accuracy/{model_id}.json")
    t = sub.add_parser("table", help="collect per-model results into one CSV")
    t.add_argument("--inputs", nargs="+", required=True)
    t.add_argument("--out", required=True)
    return p


def score(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefsweep.reflogps import compute_ref_logps

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config_json(args.config_json)
    pairs = pd.read_parquet(args.pairs)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    with torch.no_grad():
        logps = compute_ref_logps(model, tokenizer, pairs, max_length=config["dpo"]["max_length"])
    margin = logps["ref_chosen_logps"] - logps["ref_rejected_logps"]
    result = {
        "model_id": args.model_id,
        "pairs": args.pairs,
        "n_pairs": int(len(pairs)),
        "accuracy": float((margin > 0).mean()) if len(pairs) else float("nan"),
        "mean_logp_margin": float(margin.mean()) if len(pairs) else float("nan"),
    }
    atomic_write_json(args.out, result)
    print(json.dumps(result))


def table(args: argparse.Namespace) -> None:
    rows = []
    for path in args.inputs:
        with open(path, encoding="utf-8") as fh:
            r = json.load(fh)
        cell = parse_model_id(r["model_id"])
        rows.append({**r, "kind": cell.kind, "arm": cell.arm, "matching": cell.matching,
                     "size": cell.size, "seed": cell.seed})
    df = pd.DataFrame(rows).sort_values(["kind", "arm", "matching", "size", "seed"], na_position="first")
    atomic_write_text(args.out, df.to_csv(index=False))
    print(df[["model_id", "n_pairs", "accuracy"]].to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    score(args) if args.command == "score" else table(args)


if __name__ == "__main__":
    main()
