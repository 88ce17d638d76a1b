"""Judge one model's answers against a baseline with the config's judge (eval.judge.type).

The synthetic electorate (``type: electorate``, the default experiment's judge):

    python scripts/judge.py --config-json "$(python -m prefsweep.config judge)" \\
        --answers results/default/eval/model_answer/dpo-maj-shared-n64-seed1.jsonl \\
        --baseline-answers results/default/eval/model_answer/sft.jsonl \\
        --questions results/default/eval/question.jsonl \\
        --out results/default/eval/model_judgment/electorate_pair/dpo-maj-shared-n64-seed1.jsonl

An LLM over an OpenAI-compatible API (``type: llm``; here from a config file ``llm.yaml``
holding ``eval: {judge: {type: llm}}``), which needs ``--cache`` and its client settings:

    export OPENAI_API_KEY=...
    export PREFSWEEP_JUDGE_CLIENT="$(python -m prefsweep.eval.judges.llm --configfile llm.yaml)"
    python scripts/judge.py --config-json "$(python -m prefsweep.config judge --configfile llm.yaml)" \\
        --answers results/default/eval/model_answer/dpo-maj-shared-n64-seed1.jsonl \\
        --baseline-answers results/default/eval/model_answer/sft.jsonl \\
        --questions results/default/eval/question.jsonl \\
        --cache results/default/eval/judge_cache \\
        --out results/default/eval/model_judgment/llm_pair/dpo-maj-shared-n64-seed1.jsonl

``--config-json`` is the job's config slice (step ``judge``): only what changes a verdict, so
that only those values rerun a judge job. The LLM judge's client settings (api_base,
api_key_env, parallel, max_retries, timeout, backoff, backoff_max) come from the environment
variable PREFSWEEP_JUDGE_CLIENT, a JSON object that the workflow exports for every job, or from
``--client-json '{...}'`` (same keys), which wins; every key is required. The API key is read
from the variable that ``api_key_env`` names. ``--cache`` is not used by the electorate.

``--baseline-answers`` may also be ``results/default/eval/reference_answer/reference.jsonl``.
Model names are the answer files' names without ``.jsonl`` (FastChat's convention). The output
is one file of FastChat pair-judgment records (``*_pair.jsonl`` schema, written atomically; see
:mod:`prefsweep.eval.judges`; each judge is registered there).
PREFSWEEP_JUDGE_BUDGET (``{"max_api_calls": N|null, "planned_calls": M}``, exported by the
workflow from ``eval.judge.max_api_calls`` and the plan) stops an LLM judge job before any
request when the experiment's remaining calls exceed N. ``--max-questions K`` judges the first K
questions (``eval.checkpoints.n_questions``). The output is read by
``python -m fastchat.llm_judge.show_result --input-file OUT --mode pairwise-baseline
--baseline-model sft``. The LLM judge prints its plan before any request ("judge: 96
comparisons, 40 cached, 56 API calls"); responses are cached under ``--cache`` as they arrive,
concurrent jobs send each unique request once, and a failed run writes no output file, keeps
what it received and exits with a message naming the questions and the HTTP status.
"""

from __future__ import annotations

import argparse
import logging
import os

from prefsweep.eval.judges import JudgeError, JudgeJob, judge_of
from prefsweep.io import load_config_json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config-json", required=True, help="config slice of this job (step judge): inline JSON or a file")
    p.add_argument("--answers", required=True, help="answers of the model under test (model_1)")
    p.add_argument("--baseline-answers", required=True, help="answers of the baseline (model_2)")
    p.add_argument("--questions", required=True, help="FastChat question.jsonl")
    p.add_argument("--out", required=True, help="judgment file to write (FastChat *_pair.jsonl records)")
    p.add_argument("--cache", help="request cache directory, shared by judge jobs (required by a judge that "
                   "keeps one, the LLM judge)")
    p.add_argument("--client-json", help="LLM client settings as a JSON object (overrides PREFSWEEP_JUDGE_CLIENT)")
    p.add_argument("--max-questions", type=int, default=None,
                   help="judge the first K questions only (eval.checkpoints.n_questions)")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config_json(args.config_json)
    echo = lambda line: print(line, flush=True)  # noqa: E731
    try:
        judge = judge_of(config)
        if judge.needs_cache and not args.cache:
            parser.error(f"--cache is required when eval.judge.type is {judge.name}")
        judge.judge(JudgeJob(config=config, questions=args.questions, answers=args.answers,
                             baseline=args.baseline_answers, out=args.out, cache=args.cache,
                             max_questions=args.max_questions, client_json=args.client_json, env=os.environ,
                             echo=echo))
    except (JudgeError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"judge: error: {exc}") from None


if __name__ == "__main__":
    main()
