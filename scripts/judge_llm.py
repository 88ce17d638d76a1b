"""Judge one model's answers with an LLM over an OpenAI-compatible API (eval.judge.type: llm).

Pairwise against a baseline (the model under test is model_1 / assistant A in game g1, the
baseline model_2; every question is judged in both orders), or single-answer grading:

    python scripts/judge_llm.py --config-json results/default/config.resolved.json \\
        --mode pairwise \\
        --questions results/default/eval/question.jsonl \\
        --answers results/default/eval/model_answer/dpo-maj-shared-n64-seed1.jsonl \\
        --baseline-answers results/default/eval/model_answer/sft.jsonl \\
        --cache results/default/eval/judge_cache \\
        --out results/default/eval/model_judgment/gpt-4_pair/dpo-maj-shared-n64-seed1.jsonl

    python scripts/judge_llm.py --config-json C --mode single --questions Q --answers A \\
        --cache results/default/eval/judge_cache \\
        --out results/default/eval/model_judgment/gpt-4_single/sft.jsonl

The baseline may be another model's answer file or eval/reference_answer/reference.jsonl.
Settings come from the config section ``eval.judge`` (see ``prefsweep.judge_llm.JudgeSettings``);
the API key from the environment variable it names (default OPENAI_API_KEY), the API base from
``eval.judge.api_base`` or OPENAI_API_BASE. Before any request the script prints how many
calls it will make ("judge: 96 comparisons, 40 cached, 56 API calls"). Responses are cached
under --cache; a failed run leaves no output file and a rerun pays only for what is missing.
The output is read by ``python -m fastchat.llm_judge.show_result --input-file OUT
--mode pairwise-baseline --baseline-model BASELINE`` (or ``--mode single``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from prefsweep.io import load_config_json
from prefsweep.judge_llm import JudgeError, JudgeSettings, judge_answers


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config-json", required=True, help="resolved experiment config (reads eval.judge)")
    p.add_argument("--mode", choices=["pairwise", "single"],
                   help="default: eval.judge.mode of the config, else pairwise")
    p.add_argument("--questions", required=True, help="FastChat question.jsonl")
    p.add_argument("--answers", required=True, help="answers of the model under test (model_1)")
    p.add_argument("--baseline-answers", help="baseline answers (model_2); required for pairwise")
    p.add_argument("--cache", required=True, help="request cache directory (shared between runs)")
    p.add_argument("--out", required=True, help="judgment file to write (FastChat *_pair/*_single schema)")
    p.add_argument("--model-id", help="model_1 name (default: answers file name without .jsonl)")
    p.add_argument("--baseline-id", help="model_2 name (default: baseline file name without .jsonl)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config_json(args.config_json)
    judge_cfg = (config.get("eval") or {}).get("judge") or {}
    mode = args.mode or judge_cfg.get("mode") or "pairwise"
    if mode == "pairwise" and not args.baseline_answers:
        parser.error("pairwise judging needs --baseline-answers")
    try:
        settings = JudgeSettings.from_config(judge_cfg)
        judge_answers(settings, mode=mode, questions_path=args.questions,
                      answers_path=args.answers, baseline_path=args.baseline_answers,
                      cache_dir=args.cache, out_path=args.out, model_id=args.model_id,
                      baseline_id=args.baseline_id,
                      echo=lambda line: print(line, flush=True))
    except JudgeError as exc:
        print(f"judge_llm: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
