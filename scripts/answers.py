"""Generate answers to the eval questions with one model (FastChat model_answer format).

    python scripts/answers.py --config-json "$(python -m prefsweep.config answers)" \
        --model results/default/hf/dpo-maj-shared-n64-seed1 --model-id dpo-maj-shared-n64-seed1 \
        --questions results/default/eval/question.jsonl \
        --out results/default/eval/model_answer/dpo-maj-shared-n64-seed1.jsonl \
        [--device auto] [--threads 2]

A kept checkpoint is answered without a merged export: ``--model`` its ``checkpoint-{step}``
directory (a PEFT adapter or full weights) and ``--base`` the model it was trained from
(``results/default/train/sft/final``). ``--max-questions K`` answers the first K questions only
(``eval.checkpoints.n_questions``).

Batched, left-padded generation on CPU or CUDA with config ``eval.generation``
({max_new_tokens, do_sample, temperature, seed, batch_size}); prompts rendered with
``prompt_format``. See :mod:`prefsweep.eval.generate` for the record format.
"""

from __future__ import annotations

import argparse
import time

from prefsweep.eval.generate import answer_questions
from prefsweep.hub import HubError
from prefsweep.io import atomic_write_jsonl, fail_clearly, load_config_json, read_jsonl


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--model", required=True, help="HF model directory (hf/{model_id}), or a checkpoint with --base")
    p.add_argument("--base", default=None, help="init model of a checkpoint given as --model (adapter merged in memory)")
    p.add_argument("--max-questions", type=int, default=None, help="answer the first K questions only")
    p.add_argument("--model-id", required=True, help="model id written into every record")
    p.add_argument("--questions", required=True, help="FastChat question.jsonl")
    p.add_argument("--out", required=True, help="output eval/model_answer/{model_id}.jsonl")
    p.add_argument("--device", default="auto", help="auto (CUDA if visible), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (pass the job's cores: more threads than free cores is very slow)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = load_config_json(args.config_json)
    questions = read_jsonl(args.questions)[: args.max_questions]
    t0 = time.perf_counter()
    with fail_clearly(HubError):  # a hub id not to be had here: one line saying what to do
        records = answer_questions(args.model, args.model_id, questions, config, device=args.device, base=args.base)
    atomic_write_jsonl(args.out, records)
    print(f"wrote {len(records)} answers to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
