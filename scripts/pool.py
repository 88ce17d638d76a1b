"""All pairs of one arm over the training prompts, in the experiment's prompt order.

    python scripts/pool.py --config-json "$(python -m prefsweep.config data)" \
        --ballots results/default/data/ballots.jsonl --split results/default/data/split.json \
        --arm maj --out results/default/data/pool/maj.parquet

``--arm maj``: every strict pairwise-majority pair; ``--arm sc`` (or a rule's name when
``sc.rule`` is a list): the rule's winner against the loser (or everyone, ``sc.pairs``). ``--eval``: the same pairs over the held-out eval prompts
(``data/eval_pairs/{arm}.parquet``). Columns: :data:`prefsweep.data.series.SERIES_COLUMNS`.
``--by-group`` (no ``--arm``): each voter group's majority pairs on the held-out prompts
(``data/eval_pairs/by_group.parquet``, :func:`prefsweep.data.series.build_group_pairs`).
"""

from __future__ import annotations

import argparse
import time

import pyarrow.compute as pc

from prefsweep.data.ballot_table import read_ballots_table
from prefsweep.data.ballots import BallotError
from prefsweep.io import DataFileError, fail_clearly, load_config_json, naming, read_json
from prefsweep.data.series import SeriesError, build_group_pairs, build_pool, write_table


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'data' (JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--split", required=True, help="data/split.json")
    p.add_argument("--arm", help="maj or a rule arm of the config (prefsweep.paths.arm_rules); required unless --by-group")
    p.add_argument("--by-group", action="store_true",
                   help="each voter group's majority pairs on the held-out prompts (data/eval_pairs/by_group.parquet)")
    p.add_argument("--eval", action="store_true",
                   help="pairs of the held-out eval prompts instead (data/eval_pairs/{arm}.parquet)")
    p.add_argument("--out", required=True, help="output data/pool/{arm}.parquet")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    if (args.arm is None) != args.by_group:
        parser.error("give --arm ARM or --by-group")
    t0 = time.perf_counter()
    config = load_config_json(args.config_json)
    with fail_clearly(BallotError, DataFileError, SeriesError):
        records = read_ballots_table(args.ballots)
        split = read_json(args.split)
        if args.by_group:
            with naming(args.ballots, BallotError):
                pairs = build_group_pairs(records, split["eval_prompt_ids"], config)
            write_table(args.out, pairs)
            groups = pc.value_counts(pairs["group"]).to_pylist() if pairs.num_rows else []
            print(f"{pairs.num_rows} group-majority pairs on {len(split['eval_prompt_ids'])} eval prompts: "
                  + (", ".join(f"{g['values']} {g['counts']}" for g in groups) or "the ballots carry no groups")
                  + f" -> {args.out}")
            return
        if args.eval:  # same pair construction, over the held-out prompts (never trained on)
            split = {**split, "train_order": split["eval_prompt_ids"]}
        with naming(args.ballots, BallotError):  # a record that skipped validation
            pool = build_pool(records, split, args.arm, config)
    write_table(args.out, pool)
    ties = pc.sum(pool["tie_broken"]).as_py() or 0
    cycles = pc.sum(pool["cycle"]).as_py() or 0
    print(f"{args.arm}: {pool.num_rows} pairs over {len(pc.unique(pool['prompt_id']))} of "
          f"{len(split['train_order'])} {'eval' if args.eval else 'training'} prompts ({ties} pairs with a broken tie, {cycles} "
          f"from prompts with a majority cycle) -> {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
