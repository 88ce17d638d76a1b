"""Hold out the eval prompts, select the topics and fix the experiment's training prompt order.

    python scripts/split.py --config-json "$(python -m prefsweep.config split)" \
        --ballots results/default/data/ballots.jsonl --out results/default/data/split.json

Writes ``{"seed", "topics", "eval_prompt_ids", "train_order"}`` (see :func:`prefsweep.data.series.make_split`):
eval prompts are split off first, before any training file exists.
"""

from __future__ import annotations

import argparse

from prefsweep.data.ballot_table import read_ballots_table
from prefsweep.data.ballots import BallotError
from prefsweep.io import atomic_write_json, fail_clearly, load_config_json
from prefsweep.data.series import make_split


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'split' (JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--out", required=True, help="output data/split.json")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    with fail_clearly(BallotError):
        records = read_ballots_table(args.ballots, ["prompt_id", "topic", "prompt"])
    split = make_split(records, config["data"])
    atomic_write_json(args.out, split)
    topics = set(split["topics"])
    in_topics = sum(t in topics for t in records.column("topic").to_pylist())
    dropped = in_topics - len(split["eval_prompt_ids"]) - len(split["train_order"])
    print(f"topics {split['topics']}: {len(split['eval_prompt_ids'])} eval prompts, "
          f"{len(split['train_order'])} training prompts ({dropped} dropped: same text as an eval "
          f"prompt) of {records.num_rows} -> {args.out}")


if __name__ == "__main__":
    main()
