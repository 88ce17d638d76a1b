"""SFT corpus: the best response (the ``sc.rule`` winner) of every training prompt; with
``--all-candidates`` the pretraining corpus: every candidate response of every training prompt.

    python scripts/sft_corpus.py --config-json "$(python -m prefsweep.config data)" \
        --ballots results/default/data/ballots.jsonl --split results/default/data/split.json \
        --out results/default/data/sft.jsonl [--all-candidates]

Rows ``{"prompt", "completion", "prompt_id"}`` rendered with :mod:`prefsweep.prompts`, in train
order (see :func:`prefsweep.series.sft_corpus` and :func:`prefsweep.series.pretrain_corpus`).
"""

from __future__ import annotations

import argparse

from prefsweep.ballots import BallotError, read_ballots_table
from prefsweep.io import DataFileError, atomic_write_jsonl, fail_clearly, load_config_json, naming, read_json
from prefsweep.series import SeriesError, pretrain_corpus, sft_corpus


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'data' (JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--split", required=True, help="data/split.json")
    p.add_argument("--out", required=True, help="output data/sft.jsonl (data/pretrain.jsonl)")
    p.add_argument("--all-candidates", action="store_true",
                   help="every candidate of every training prompt: the pretraining corpus")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    with fail_clearly(BallotError, DataFileError, SeriesError):
        split = read_json(args.split)
        records = read_ballots_table(args.ballots)
        with naming(args.ballots, BallotError):  # a record that skipped validation
            rows = (pretrain_corpus if args.all_candidates else sft_corpus)(records, split, config)
    atomic_write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} {'pretraining' if args.all_candidates else 'SFT'} examples -> {args.out}")


if __name__ == "__main__":
    main()
