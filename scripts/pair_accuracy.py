"""Preference accuracy on held-out pairs: how often a model ranks the chosen response first.

    python scripts/pair_accuracy.py score --config-json "$(python -m prefsweep.config pair_accuracy)" \
        --model results/default/hf/sft --model-id sft \
        --pairs results/default/data/eval_pairs/maj.parquet \
        [--group-pairs results/default/data/eval_pairs/by_group.parquet] \
        --out results/default/eval/pair_accuracy/sft.json
    python scripts/pair_accuracy.py table --inputs results/default/eval/pair_accuracy/*.json \
        --out results/default/eval/pair_accuracy.csv [--groups-out results/default/eval/pair_accuracy_groups.csv]

``score``: the accuracy of one model on the pairs of the held-out eval prompts, truncated at
``dpo.max_length`` (metric and record format: :mod:`prefsweep.eval.pair_accuracy`), and with
``--group-pairs`` per voter group on each group's majority pairs. ``table``: one row per model
(and, with ``--groups-out``, one per model and group).
"""

from __future__ import annotations

import argparse
import json


from prefsweep.io import atomic_write_json, atomic_write_text, load_config_json, read_parquet
from prefsweep.train.jobs import user_errors
from prefsweep.eval.pair_accuracy import (
    accuracy_table, group_accuracy_table, read_results, result_record, score_model, score_model_with_groups,
)
from prefsweep.train.training import DataError, configure_runtime


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="accuracy of one model")
    s.add_argument("--config-json", required=True, help="config slice (inline JSON or a file)")
    s.add_argument("--model", required=True, help="HF directory (hf/{model_id})")
    s.add_argument("--model-id", required=True)
    s.add_argument("--pairs", required=True, help="data/eval_pairs/{arm}.parquet")
    s.add_argument("--group-pairs", help="data/eval_pairs/by_group.parquet: per-group accuracy too")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--out", required=True, help="eval/pair_accuracy/{model_id}.json")
    t = sub.add_parser("table", help="collect per-model results into one CSV")
    t.add_argument("--inputs", nargs="+", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--groups-out", help="eval/pair_accuracy_groups.csv: one row per model and group")
    return p


def score(args: argparse.Namespace) -> None:
    configure_runtime(args.threads)
    config = load_config_json(args.config_json)
    with user_errors():  # a truncated or corrupt file: named, with how to rebuild it
        pairs = read_parquet(args.pairs)
        group_pairs = read_parquet(args.group_pairs) if args.group_pairs else None
    groups = None
    with user_errors():
        try:
            if group_pairs is None:
                metrics = score_model(args.model, pairs, max_length=config["dpo"]["max_length"])
            else:
                metrics, groups = score_model_with_groups(args.model, pairs, group_pairs,
                                                          max_length=config["dpo"]["max_length"])
        except DataError as exc:
            raise DataError(f"{args.pairs}{' or ' + args.group_pairs if args.group_pairs else ''}: {exc}") from None
    result = result_record(args.model_id, args.pairs, metrics, groups)
    atomic_write_json(args.out, result)
    print(json.dumps(result))


def table(args: argparse.Namespace) -> None:
    results = read_results(args.inputs)
    df = accuracy_table(results)
    atomic_write_text(args.out, df.to_csv(index=False))
    if args.groups_out:
        groups = group_accuracy_table(results)
        atomic_write_text(args.groups_out, groups.to_csv(index=False))
        print(f"{len(groups)} per-group rows ({groups['group'].nunique()} groups) -> {args.groups_out}")
    print(df[["model_id", "n_pairs", "accuracy"]].to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    score(args) if args.command == "score" else table(args)


if __name__ == "__main__":
    main()
