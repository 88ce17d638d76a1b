"""Judge one model's answers against a baseline with the synthetic electorate.

    python scripts/judge_electorate.py --config-json results/default/config/judge.json \
        --answers results/default/eval/model_answer/dpo-maj-shared-n64-seed1.jsonl \
        --baseline-answers results/default/eval/model_answer/sft.jsonl \
        --questions results/default/eval/question.jsonl \
        --out results/default/eval/model_judgment/electorate_pair/dpo-maj-shared-n64-seed1.jsonl

``--baseline-answers`` may also be ``eval/reference_answer/reference.jsonl``. Model names are the
answer files' names without ``.jsonl`` (FastChat's convention). Writes FastChat pair-judgment
records plus per-group verdicts and vote shares (see :mod:`prefsweep.judge_electorate`).
"""

from __future__ import annotations

import argparse

from prefsweep.generate import model_name, read_answers
from prefsweep.io import atomic_write_jsonl, load_config_json, read_jsonl
from prefsweep.judge_electorate import electorate_from_config, judge_pairs


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--answers", required=True, help="answers of the model under test (model_1)")
    p.add_argument("--baseline-answers", required=True, help="answers of the baseline (model_2)")
    p.add_argument("--questions", required=True, help="FastChat question.jsonl")
    p.add_argument("--out", required=True, help="output eval/model_judgment/electorate_pair/{model_id}.jsonl")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    records = judge_pairs(
        electorate_from_config(config),
        read_jsonl(args.questions),
        read_answers(args.answers),
        read_answers(args.baseline_answers),
        model_name(args.answers),
        model_name(args.baseline_answers),
    )
    atomic_write_jsonl(args.out, records)
    wins = sum(r["g1_winner"] == "model_1" for r in records)
    losses = sum(r["g1_winner"] == "model_2" for r in records)
    print(f"wrote {len(records)} judgments to {args.out}: {wins} wins, {losses} losses, "
          f"{len(records) - wins - losses} ties")


if __name__ == "__main__":
    main()
