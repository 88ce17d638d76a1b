"""Batched answer generation vs FastChat's one-question-at-a-time loop, on the same tiny model.

    python benchmarks/bench_answers.py [--n-questions 64] [--max-new-tokens 48] [--batch-size 32] \
        [--model DIR] [--device auto] [--require-speedup 10]

The baseline reproduces ``fastchat.llm_judge.gen_model_answer.get_model_answers`` (fschat
0.2.36) for one choice and one turn: ``torch.manual_seed(0)``, temperature from FastChat's
``temperature_config`` by question category (the questions here are ``reasoning``: 0.0, so
``do_sample=False``), ``tokenizer([prompt]).input_ids``, one ``model.generate`` call per question
with only ``do_sample``, ``temperature`` and ``max_new_tokens``, the prompt tokens cut off,
``decode(spaces_between_special_tokens=False)``, special-token strings removed, ``strip()``. Its
``.cuda()`` becomes ``.to(device)`` so it runs on CPU too, and the conversation template is
replaced by ``prefsweep.prompts.render_prompt`` so both loops see the same prompt.

The batched side is ``prefsweep.generate.generate_completions`` (left padding, longest first).
Both outputs go through ``strip_completion`` and must be identical; the script prints both wall
times and the speed-up (target >= 10x) and exits non-zero on any difference (or a speed-up
below ``--require-speedup``). Without ``--model`` it builds the tiny model of
``config/config.yaml`` (``model.tiny``) with a tokenizer trained on the questions, its weights
drawn with std ``--init-std`` (0.2): at GPT-NeoX's default 0.02 a random model's top two
next-token logits differ by ~0.01, and float32 rounding differences between any two equivalent
computations (an attention mask passed or not, another batch shape) flip a few greedy tokens --
even batch size 1 vs the loop. Peaked distributions, like a trained model's, make the
comparison test the generation algorithm rather than rounding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from prefsweep.config import load_config
from prefsweep.generate import generate_completions, load_for_generation
from prefsweep.prompts import render_prompt, strip_completion

FMT = load_config()["prompt_format"]
#: Greedy decoding as the default experiment generates (eval.generation); FastChat's loop is
#: greedy for the benchmark's categories too.
GREEDY = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "seed": 0}

REPO = Path(__file__).resolve().parents[1]
TOPICS = ["bread", "tomatoes", "a bicycle", "the garden", "python code", "a letter", "tea", "the budget"]
ASKS = ["How do I fix {t}?", "What is the best way to plan {t}, please?",
        "Can you explain, with 3 examples, how {t} works and why it matters so much?",
        "Quick one: {t}?", "I need detailed, step by step advice about {t} for my family. Thanks!"]


def make_questions(n: int) -> list[dict]:
    """``n`` FastChat questions of varying length, category ``reasoning`` (greedy in FastChat)."""
    return [{"question_id": f"bench-{i:04d}", "category": "reasoning",
             "turns": [ASKS[i % len(ASKS)].format(t=TOPICS[(i // len(ASKS)) % len(TOPICS)])]}
            for i in range(n)]


def build_tiny(path: Path, questions: list[dict], init_std: float) -> Path:
    """The config's tiny GPT-NeoX (``model.tiny``), weights drawn with std ``init_std``."""
    import yaml
    from transformers import GPTNeoXForCausalLM

    from prefsweep.tiny import tiny_config, train_tokenizer

    tiny = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["model"]["tiny"]
    texts = [render_prompt(q["turns"][0], FMT) for q in questions] * 4
    tok = train_tokenizer(texts, vocab_size=tiny["vocab_size"])
    config = tiny_config(tok, tiny)
    config.initializer_range = init_std
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@torch.inference_mode()
def fastchat_loop(model, tokenizer, questions: list[dict], max_new_token: int, device: str) -> list[str]:
    """FastChat 0.2.36 ``get_model_answers``' per-question loop (num_choices=1, one turn)."""
    from fastchat.llm_judge.common import temperature_config

    outputs = []
    for question in questions:
        temperature = temperature_config.get(question["category"], 0.7)
        torch.manual_seed(0)
        prompt = render_prompt(question["turns"][0], FMT)
        input_ids = tokenizer([prompt]).input_ids
        do_sample = temperature >= 1e-4
        output_ids = model.generate(
            torch.as_tensor(input_ids).to(device),
            do_sample=do_sample,
            temperature=temperature,
            max_new_tokens=max_new_token,
        )
        output_ids = output_ids[0][len(input_ids[0]):]
        output = tokenizer.decode(output_ids, spaces_between_special_tokens=False)
        for special_token in tokenizer.special_tokens_map.values():
            if isinstance(special_token, list):
                for special_tok in special_token:
                    output = output.replace(special_tok, "")
            else:
                output = output.replace(special_token, "")
        outputs.append(output.strip())
    return outputs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-questions", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", default=None, help="HF model dir (default: build the tiny model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--init-std", type=float, default=0.2, help="init std of the built tiny model")
    p.add_argument("--require-speedup", type=float, default=0.0, help="fail below this speed-up")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    questions = make_questions(args.n_questions)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_tiny(Path(tmp) / "tiny", questions, args.init_std)
        model, tok = load_for_generation(model_dir, args.device)
        device = str(next(model.parameters()).device)
        prompts = [render_prompt(q["turns"][0], FMT) for q in questions]
        # one warm-up call each, so neither side pays for first-call setup
        generate_completions(model, tok, prompts[:2], max_new_tokens=4, batch_size=2, **GREEDY)
        fastchat_loop(model, tok, questions[:1], 4, device)

        t0 = time.perf_counter()
        ours = generate_completions(model, tok, prompts, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, **GREEDY)
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = fastchat_loop(model, tok, questions, args.max_new_tokens, device)
        t_loop = time.perf_counter() - t0

    ours = [strip_completion(o, FMT) for o in ours]
    theirs = [strip_completion(o, FMT) for o in theirs]
    same = sum(a == b for a, b in zip(ours, theirs))
    speedup = t_loop / t_batched
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters on {device}, {torch.get_num_threads()} threads")
    print(f"{args.n_questions} questions x {args.max_new_tokens} new tokens, batch size {args.batch_size}")
    print(f"FastChat per-question loop: {t_loop:8.2f} s")
    print(f"batched (prefsweep):        {t_batched:8.2f} s")
    print(f"speed-up: {speedup:.1f}x (target >= 10x: {'met' if speedup >= 10 else 'NOT met'})")
    print(f"identical greedy outputs: {same}/{len(ours)}")
    if same != len(ours):
        for q, a, b in zip(questions, ours, theirs):
            if a != b:
                print(f"  {q['question_id']}: batched {a!r} != loop {b!r}")
        return 1
    if speedup < args.require_speedup:
        print(f"speed-up below --require-speedup {args.require_speedup}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
