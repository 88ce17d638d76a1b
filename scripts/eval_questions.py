"""FastChat eval questions and reference answers for the held-out eval prompts.

    python scripts/eval_questions.py --config-json "$(python -m prefsweep.config data)" \
        --ballots results/default/data/ballots.jsonl --split results/default/data/split.json \
        --questions results/default/eval/question.jsonl \
        --reference results/default/eval/reference_answer/reference.jsonl

Questions ``{"question_id", "category", "turns"}``; reference answers in FastChat's answer
format with ``model_id`` ``reference`` and the best (``sc.rule`` winner) response (see
:func:`prefsweep.data.series.eval_questions`). Both are computed before either file is written.
"""

from __future__ import annotations

import argparse

from prefsweep.data.ballot_table import read_ballots_table
from prefsweep.data.ballots import BallotError
from prefsweep.io import DataFileError, atomic_write_jsonl, fail_clearly, load_config_json, naming, read_json
from prefsweep.data.series import SeriesError, eval_questions


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'data' (JSON or a JSON file)")
    p.add_argument("--ballots", required=True, help="data/ballots.jsonl")
    p.add_argument("--split", required=True, help="data/split.json")
    p.add_argument("--questions", required=True, help="output eval/question.jsonl")
    p.add_argument("--reference", required=True, help="output eval/reference_answer/reference.jsonl")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    with fail_clearly(BallotError, DataFileError, SeriesError):
        split = read_json(args.split)
        records = read_ballots_table(args.ballots)
        with naming(args.ballots, BallotError):  # a record that skipped validation
            questions, answers = eval_questions(records, split, config)
    atomic_write_jsonl(args.questions, questions)
    atomic_write_jsonl(args.reference, answers)
    print(f"wrote {len(questions)} questions -> {args.questions}, reference answers -> {args.reference}")


if __name__ == "__main__":
    main()
