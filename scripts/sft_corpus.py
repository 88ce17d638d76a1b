"""SFT corpus (``sft.data``): the best response (the ``sc.rule`` winner) of every training
prompt, the lab's own jsonl file or HH-RLHF's chosen responses; with ``--all-candidates`` the
pretraining corpus: every candidate response of every training prompt.

    python scripts/sft_corpus.py --config-json "$(python -m prefsweep.config sft_corpus)" \
        --ballots results/default/data/ballots.jsonl --split results/default/data/split.json \
        --out results/default/data/sft.jsonl [--sft-data my_sft.jsonl] [--all-candidates]

Rows ``{"prompt", "completion", "prompt_id"}`` rendered with :mod:`prefsweep.data.prompts`: for
``best_response`` in train order (see :func:`prefsweep.data.series.sft_corpus` and
:func:`prefsweep.data.series.pretrain_corpus`); for ``jsonl`` (the file ``--sft-data``, which the
workflow sets to ``sft.data.path``) and ``hh`` in file order (:mod:`prefsweep.data.sft_data`), after
checking that no SFT prompt is a held-out eval prompt (the error names their ids).
"""

from __future__ import annotations

import argparse

from prefsweep.data.ballot_table import ballot_field, read_ballots_table
from prefsweep.data.ballots import BallotError
from prefsweep.io import DataFileError, atomic_write_jsonl, fail_clearly, load_config_json, naming, read_json
from prefsweep.data.series import SeriesError, pretrain_corpus, records_in, sft_corpus
from prefsweep.data.sft_data import SFT_SOURCES, SftDataError, external_sft_corpus, sft_source


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True,
                   help="config slice of step 'sft_corpus' ('data' with --all-candidates; JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--split", required=True, help="data/split.json")
    p.add_argument("--sft-data", help="the SFT file of sft.data.source jsonl (sft.data.path); only then")
    p.add_argument("--out", required=True, help="output data/sft.jsonl (data/pretrain.jsonl)")
    p.add_argument("--all-candidates", action="store_true",
                   help="every candidate of every training prompt: the pretraining corpus")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    source = None if args.all_candidates else sft_source(config)
    with fail_clearly(BallotError, DataFileError, SeriesError, SftDataError):
        if args.sft_data is not None and not (source and source.reads_file):
            readers = " or ".join(repr(n) for n, s in SFT_SOURCES.items() if s.reads_file)
            raise SftDataError(f"--sft-data {args.sft_data}: sft.data.source is {config['sft']['data']['source']!r}; "
                               f"the file is read only for sft.data.source {readers}")
        split = read_json(args.split)
        records = read_ballots_table(args.ballots)
        with naming(args.ballots, BallotError):  # a record that skipped validation
            if args.all_candidates:
                rows = pretrain_corpus(records, split, config)
            elif source.examples is None:  # the ballots' best responses
                rows = sft_corpus(records, split, config)
            else:
                ev = records_in(records, split["eval_prompt_ids"])
                eval_prompts = dict(zip(ballot_field(ev, "prompt_id"), ballot_field(ev, "prompt")))
                rows = external_sft_corpus(config, eval_prompts, args.sft_data)
    atomic_write_jsonl(args.out, rows)
    what = "pretraining" if args.all_candidates else f"SFT ({source.name})"
    print(f"wrote {len(rows)} {what} examples -> {args.out}")


if __name__ == "__main__":
    main()
