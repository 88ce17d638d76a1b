"""Win rates against the baseline, arm differences and per-group win rates.

    python scripts/win_rates.py --config-json results/default/config/win_rates.json \
        --judgments results/default/eval/model_judgment/electorate_pair/*.jsonl \
        --answers-dir results/default/eval/model_answer --manifests-dir results/default/data \
        --out results/default/eval/win_rates.csv --diff-out results/default/eval/arm_differences.csv \
        --groups-out results/default/eval/win_rates_groups.csv \
        [--questions results/default/eval/question.jsonl] [--runs-dir results/default/dpo] \
        [--wandb-dir results/default/wandb] [--no-wandb]

Every model needs exactly one judgment per question and order against the baseline; anything
else stops with an error naming the model. Metrics go to wandb (config ``wandb.mode``; off with
``--no-wandb``): into the DPO training run named by ``run_info.json`` ``wandb_run_id`` when
there is one, and into a new eval run with the three tables. Table formats:
:mod:`prefsweep.winrate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefsweep.io import atomic_write_text, load_config_json, read_jsonl
from prefsweep.winrate import arm_differences, load_judgments, log_to_wandb, win_rate_tables


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--judgments", nargs="+", required=True, help="pair-judgment files, one per model")
    p.add_argument("--answers-dir", required=True, help="eval/model_answer (for answer lengths)")
    p.add_argument("--manifests-dir", required=True, help="the experiment's data/ dir (series manifests)")
    p.add_argument("--out", required=True, help="win_rates.csv")
    p.add_argument("--diff-out", required=True, help="arm_differences.csv")
    p.add_argument("--groups-out", required=True, help="win_rates_groups.csv")
    p.add_argument("--questions", default=None,
                   help="question.jsonl: the questions every model must be judged on (default: all judged ones)")
    p.add_argument("--runs-dir", default=None, help="DPO runs dir with run_info.json (default: <manifests-dir>/../dpo)")
    p.add_argument("--wandb-dir", default=None, help="wandb files (default: <dir of --out>/../wandb)")
    p.add_argument("--no-wandb", action="store_true", help="log nothing to wandb")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    questions = [str(q["question_id"]) for q in read_jsonl(args.questions)] if args.questions else None
    frame, groups_frame = load_judgments(args.judgments)
    table, groups = win_rate_tables(frame, groups_frame, config, answers_dir=args.answers_dir,
                                    manifests_dir=args.manifests_dir, questions=questions)
    diffs = arm_differences(frame, config)
    atomic_write_text(args.out, table.to_csv(index=False))
    atomic_write_text(args.diff_out, diffs.to_csv(index=False))
    atomic_write_text(args.groups_out, groups.to_csv(index=False))
    print(table[["model_id", "arm", "matching", "size", "n", "win_rate", "ci_low", "ci_high"]].to_string(index=False))
    if not args.no_wandb:
        runs_dir = args.runs_dir or str(Path(args.manifests_dir).parent / "dpo")
        wandb_dir = args.wandb_dir or str(Path(args.out).resolve().parent.parent / "wandb")
        logged = log_to_wandb(table, diffs, groups, config, wandb_dir=wandb_dir, runs_dir=runs_dir)
        print(f"wandb: attached to {len(logged['attached'])} training run(s); eval run {logged['eval_run']}")


if __name__ == "__main__":
    main()
