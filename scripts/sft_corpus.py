"""SFT corpus: the best response (the ``sc.rule`` winner) of every training prompt.

    python scripts/sft_corpus.py --config-json "$(python -m prefsweep.config data)" \
        --ballots results/default/data/ballots.jsonl --split results/default/data/split.json \
        --out results/default/data/sft.jsonl

Rows ``{"prompt", "completion", "prompt_id"}`` rendered with :mod:`prefsweep.prompts`, in train
order (see :func:`prefsweep.series.sft_corpus`).
"""

from __future__ import annotations

import argparse

from prefsweep.ballots import BallotError, read_ballots_table
from prefsweep.io import DataFileError, atomic_write_jsonl, fail_clearly, load_config_json, naming, read_json
from prefsweep.series import SeriesError, sft_corpus


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'data' (JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--split", required=True, help="data/split.json")
    p.add_argument("--out", required=True, help="output data/sft.jsonl")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    with fail_clearly(BallotError, DataFileError, SeriesError):
        split = read_json(args.split)
        records = read_ballots_table(args.ballots)
        with naming(args.ballots, BallotError):  # a record that skipped validation
            rows = sft_corpus(records, split, config)
    atomic_write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} SFT examples -> {args.out}")


if __name__ == "__main__":
    main()
