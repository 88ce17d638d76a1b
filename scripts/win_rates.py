"""Win rates against the baseline, arm differences and per-group win rates.

    python scripts/win_rates.py --config-json "$(python -m prefsweep.config win_rates)" \\
        --judgments $(ls results/default/eval/model_judgment/electorate_pair/*.jsonl | grep -v -- -step) \\
        --answers results/default/eval/model_answer/*.jsonl \\
        --manifests results/default/data/*/*/n*/manifest.json \\
        --run-info results/default/train/dpo/*/*/n*/seed*/final/run_info.json \\
        --questions results/default/eval/question.jsonl \\
        --out results/default/eval/win_rates.csv --diff-out results/default/eval/arm_differences.csv \\
        --groups-out results/default/eval/win_rates_groups.csv [--no-wandb] [--wandb-dir results/default/wandb] \\
        [--welfare-out results/default/eval/welfare.csv --ballots results/default/data/ballots.jsonl]

(The shell globs stand for the explicit lists the workflow passes: the final models' judgments,
checkpoints ``...-step<N>`` left out; extra answers, manifests and run_info files are ignored.
Add ``results/default/eval/reference_answer/reference.jsonl`` to ``--answers`` with
``eval.baseline: reference``.) The same command over the judgments of the checkpoints and the
final DPO models, with ``--out .../evolution.csv --diff-out .../evolution_differences.csv
--groups-out .../evolution_groups.csv --no-wandb``, writes the evolution tables.

With the electorate judge (``eval.judge.type: electorate``), ``--welfare-out FILE`` also writes
the welfare table (:mod:`prefsweep.eval.welfare`: utilitarian, egalitarian and per-group welfare and
distortion of every model of the win-rate table, from the voters' utilities of the answers);
it needs ``--ballots`` (the ballots of the eval questions, whose candidates bound the best
achievable welfare) and the electorate's keys in the config slice (``data.source``,
``data.seed``, ``data.synthetic``).

Every file read is on the command line; nothing is looked up in a directory. ``--answers``: the
answers file of every model in the table and of the baseline (a model's id is its file's stem);
``--manifests``: every series ``manifest.json`` (its fields arm/matching/size/n_pairs name the
series); ``--run-info``: the ``run_info.json`` of every final DPO model (``job`` names the run,
``global_step`` is the final model's step, ``wandb_run_id`` its training run). A missing file
for a model in the table stops the job with an error naming the model and the flag.

Every model needs exactly one judgment per question and order against the baseline, and at
least one valid verdict; anything else stops with an error naming the model and its judgment
file. Models with some malformed judgments are kept, and the log names them. Metrics go to wandb
(config ``wandb`` or the WANDB_* environment; off with ``--no-wandb``): into the DPO training run
named by ``wandb_run_id`` when there is one, and into a new eval run with the three tables,
under ``--wandb-dir`` (default: ``$WANDB_DIR``, which the workflow sets). Columns and their
meaning: :mod:`prefsweep.eval.measures` (``python -c "from prefsweep.eval import measures;
print(measures.caption('win_rates'))"``); how they are computed: :mod:`prefsweep.eval.tables`.
"""

from __future__ import annotations

import argparse
import logging

from prefsweep.config import ConfigError
from prefsweep.eval import measures
from prefsweep.eval.generate import model_name
from prefsweep.eval.inputs import InputError, ModelInputs, answer_texts
from prefsweep.eval.judgments import JudgmentError, load_judgments, restrict_questions
from prefsweep.eval.table_io import write_table
from prefsweep.eval.tables import arm_differences, win_rate_tables
from prefsweep.eval.welfare import WELFARE_COLUMNS, welfare_from_files
from prefsweep.io import load_config_json, read_jsonl
from prefsweep.tracking import table_wandb_dir

log = logging.getLogger("win_rates")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--judgments", nargs="+", required=True, help="pair-judgment files, one per model")
    p.add_argument("--answers", nargs="+", required=True,
                   help="answers of every model in the table and of the baseline ({model_id}.jsonl)")
    p.add_argument("--manifests", nargs="*", default=[],
                   help="every series manifest.json (none for a table without DPO models)")
    p.add_argument("--run-info", nargs="*", default=[],
                   help="run_info.json of every final DPO model (none for a table without final DPO models)")
    p.add_argument("--questions", required=True, help="question.jsonl: the questions every model must be judged on")
    p.add_argument("--max-questions", type=int, default=None,
                   help="only the first K questions of --questions (evolution with eval.checkpoints.n_questions)")
    p.add_argument("--out", required=True, help="win_rates.csv (or evolution.csv)")
    p.add_argument("--diff-out", required=True, help="arm_differences.csv (or evolution_differences.csv)")
    p.add_argument("--groups-out", required=True, help="win_rates_groups.csv (or evolution_groups.csv)")
    p.add_argument("--welfare-out", default=None,
                   help="welfare.csv: welfare and distortion of every model (electorate judge only; needs --ballots)")
    p.add_argument("--ballots", default=None, help="data/ballots.jsonl (with --welfare-out)")
    p.add_argument("--no-wandb", action="store_true", help="log nothing to wandb")
    p.add_argument("--wandb-dir", default=None, help="wandb files (default: $WANDB_DIR)")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.welfare_out and not args.ballots:
        parser.error("--welfare-out needs --ballots (the ballots of the eval questions)")
    # INFO from this script and the package only (matplotlib's font subsetting logs at INFO too).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in (log.name, "prefsweep"):
        logging.getLogger(name).setLevel(logging.INFO)
    config = load_config_json(args.config_json)
    wandb_dir = table_wandb_dir(args.wandb_dir, args.no_wandb, "win_rates")
    try:
        inputs = ModelInputs.from_files(args.answers, args.manifests, args.run_info)
        questions = [str(q["question_id"]) for q in read_jsonl(args.questions)][: args.max_questions]
        frame, groups_frame = load_judgments(args.judgments)
        if args.max_questions is not None:
            frame, groups_frame = restrict_questions((frame, groups_frame), questions)
        table, groups = win_rate_tables(frame, groups_frame, config, inputs, questions=questions)
        diffs = arm_differences(frame, config)
        welfare = None
        if args.welfare_out:
            answers = {model_name(p): answer_texts(p) for p in args.answers}
            welfare = welfare_from_files(config, table, read_jsonl(args.questions), answers, args.ballots)
    except (JudgmentError, InputError, ConfigError) as exc:
        raise SystemExit(f"win_rates: {exc}") from None
    except ValueError as exc:  # the electorate's config (prefsweep.data.synthetic)
        raise SystemExit(f"win_rates: {exc}") from None
    write_table(args.out, table, measures.columns(measures.WIN_RATES))
    write_table(args.diff_out, diffs, measures.columns(measures.DIFFERENCES))
    write_table(args.groups_out, groups, measures.columns(measures.GROUPS))
    print(table[["model_id", "arm", "matching", "size", "step", "n", "errors", "win_rate", "ci_low",
                 "ci_high", "lc_win_rate", "well_formed"]].to_string(index=False))
    if welfare is not None:
        write_table(args.welfare_out, welfare, WELFARE_COLUMNS)
        wide = welfare[welfare["measure"].isin(["utilitarian", "egalitarian", "distortion"])].pivot_table(
            index=["model_id", "arm", "matching"], columns="measure", values="value", sort=False)
        print(wide.reset_index().to_string(index=False))
    if not args.no_wandb:
        from prefsweep.tracking import log_win_rates_to_wandb

        logged = log_win_rates_to_wandb(table, diffs, groups, config, wandb_dir=wandb_dir, run_ids=inputs.run_ids(),
                                        metric_columns=measures.logged_columns(measures.WIN_RATES))
        log.info("wandb: attached to %d training run(s); eval run %s", len(logged["attached"]), logged["eval_run"])


if __name__ == "__main__":
    main()
