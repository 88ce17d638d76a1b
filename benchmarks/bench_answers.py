"""Batched answer generation vs FastChat's one-question-at-a-time loop, same model, greedy.

    python benchmarks/bench_answers.py [--scale full|small] [--repeats 3] [--json OUT]

Two models, both GPT-NeoX (Pythia's architecture) with random weights and a tokenizer trained
on the questions: ``tiny`` (config/config.yaml's ``model.tiny``, what the default experiment
trains) and ``pythia-100m`` (Pythia-160M's shape -- 12 layers, width 768, 12 heads, rotary on a
quarter of each head, parallel residual, untied output embedding -- with an 8192-token
vocabulary: about 98M parameters).

The baseline is FastChat's own code: ``fastchat.llm_judge.gen_model_answer.get_model_answers``
(fschat 0.2.36), called as it is with three things patched for CPU and for a like-for-like
comparison: its ``load_model`` returns the already loaded model (loading is not timed on either
side), its ``get_conversation_template`` returns a FastChat ``Conversation`` that renders
``prefsweep.data.prompts.render_prompt``'s prompt (the script checks the two prompts are equal), and
the ``.cuda()`` it calls on the input ids becomes ``.to(device)``. It then generates one
question at a time exactly as FastChat does (``torch.manual_seed``, temperature 0 for the
``reasoning`` category so ``do_sample=False``, one ``model.generate`` per question, special
tokens removed, answers appended to its answer file), and the answers are read back from that
file. The other side is ``prefsweep.eval.generate.generate_completions`` (left padding, batches
longest first). Both outputs go through ``strip_completion`` and must be identical (a
difference fails the benchmark); the two sides run in turn for each repeat and the speed-up is
taken repeat by repeat. Target >= 10x. The label also gives the ceiling any batching has on the
machine (:func:`decode_step_seconds`): a decoding step of the batch against one of a single
sequence. On a GPU a step is bound by reading the weights and the ceiling is about the batch
size; on 2 CPU cores the 100M model's batch-16 step is bound by arithmetic, and no batched
generator can reach 10x there. ``--device cuda`` runs both sides on a GPU (``auto``: CUDA where
torch sees one; the default is the CPU, where the figures in RESULTS.md come from).

Weights are drawn with std ``--init-std`` (0.2): at GPT-NeoX's default 0.02 a random model's
top two next-token logits differ by ~0.01 and float32 rounding differences between any two
equivalent computations (another batch shape, an attention mask or not) flip greedy tokens.
Peaked distributions, like a trained model's, make the comparison test the algorithm.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Figure, emit, fmt_s, median, paired, parser, ratios, spread, target

FIGURES = ("answers.tiny", "answers.pythia-100m")
TARGET = 10.0

#: Greedy decoding as the default experiment generates (eval.generation).
GREEDY = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "seed": 0}
TOPICS = ["bread", "tomatoes", "a bicycle", "the garden", "python code", "a letter", "tea", "the budget"]
ASKS = ["How do I fix {t}?", "What is the best way to plan {t}, please?",
        "Can you explain, with 3 examples, how {t} works and why it matters so much?",
        "Quick one: {t}?", "I need detailed, step by step advice about {t} for my family. Thanks!"]

#: Pythia-160M's shape with a smaller vocabulary (GPTNeoXConfig keys).
PYTHIA_100M = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
               "vocab_size": 8192, "max_position_embeddings": 2048, "rotary_pct": 0.25,
               "use_parallel_residual": True, "tie_word_embeddings": False}

#: (questions, new tokens, batch size) per model and scale.
SCALES = {
    "full": {"tiny": (64, 48, 32), "pythia-100m": (16, 16, 16)},
    "small": {"tiny": (8, 8, 8), "pythia-100m": (4, 4, 4)},
}


def prompt_format() -> dict:
    from prefsweep.config import load_config

    return load_config()["prompt_format"]


def make_questions(n: int) -> list[dict]:
    """``n`` FastChat questions of varying length, category ``reasoning`` (greedy in FastChat)."""
    return [{"question_id": f"bench-{i:04d}", "category": "reasoning",
             "turns": [ASKS[i % len(ASKS)].format(t=TOPICS[(i // len(ASKS)) % len(TOPICS)])]}
            for i in range(n)]


def build_model(kind: str, questions: list[dict], fmt: dict, init_std: float, device: str = "cpu"):
    """(model, tokenizer) of ``kind``, random weights of std ``init_std`` (drawn on the CPU, so
    every device gets the same ones), on ``device``, set up for generation."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from prefsweep.config import load_config
    from prefsweep.data.prompts import render_prompt
    from prefsweep.train.tiny import tiny_config, train_tokenizer

    texts = [render_prompt(q["turns"][0], fmt) for q in questions] * 4
    if kind == "tiny":
        tiny = load_config(check=False)["model"]["tiny"]  # config/config.yaml over the schema's defaults
        tok = train_tokenizer(texts, vocab_size=tiny["vocab_size"])
        config = tiny_config(tok, tiny)
    else:
        tok = train_tokenizer(texts, vocab_size=1024)
        config = GPTNeoXConfig(**PYTHIA_100M, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id)
    config.initializer_range = init_std
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config).to(device).eval()
    tok.padding_side = "left"
    return model, tok


def hh_conversation():
    """A FastChat Conversation whose prompt is prefsweep's ``hh`` prompt (``ADD_COLON_SINGLE``,
    no system message, no separator: "\\n\\nHuman: {q}\\n\\nAssistant:")."""
    from fastchat.conversation import Conversation, SeparatorStyle

    return Conversation(name="prefsweep-hh", system_message="", roles=("\n\nHuman", "\n\nAssistant"),
                        sep_style=SeparatorStyle.ADD_COLON_SINGLE, sep="", messages=[])


def fastchat_answers(model, tokenizer, questions: list[dict], max_new_token: int, work: Path) -> list[str]:
    """FastChat 0.2.36 ``get_model_answers`` itself, on ``model``; its answers, question order."""
    from fastchat.llm_judge import gen_model_answer

    device = next(model.parameters()).device
    answer_file = work / f"fastchat-{len(list(work.glob('*.jsonl')))}.jsonl"
    with mock.patch.object(gen_model_answer, "load_model", lambda *a, **k: (model, tokenizer)), \
            mock.patch.object(gen_model_answer, "get_conversation_template", lambda model_id: hh_conversation()), \
            mock.patch.object(torch.Tensor, "cuda", lambda self, *a, **k: self.to(device)), \
            mock.patch.object(gen_model_answer, "tqdm", lambda xs, **k: xs):
        gen_model_answer.get_model_answers(
            "in-memory", "bench", questions, str(answer_file), max_new_token, num_choices=1,
            num_gpus_per_model=1, max_gpu_memory=None, dtype=None, revision="main")
    got = {r["question_id"]: r["choices"][0]["turns"][0]
           for r in map(json.loads, answer_file.read_text().splitlines())}
    return [got[q["question_id"]] for q in questions]


def decode_step_seconds(model, tok, prompts: list[str], batch: int, steps: int = 8) -> float:
    """Median seconds of one greedy decoding step (KV cache, after the prompt's forward) of
    ``batch`` sequences: what batching can gain on this machine is ``batch`` x the step of 1
    over the step of ``batch`` (1:1 where a step is bound by reading the weights, as on a GPU;
    far less where it is bound by arithmetic, as on a few CPU cores)."""
    import time

    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    enc = tok(prompts[:batch], return_tensors="pt", padding=True).to(device)
    times = []
    with torch.inference_mode():
        out = model(**enc, use_cache=True)
        mask = enc["attention_mask"]
        for _ in range(steps + 1):
            ids = out.logits[:, -1:].argmax(-1)
            mask = torch.cat([mask, torch.ones_like(ids)], 1)
            sync()
            t0 = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, past_key_values=out.past_key_values, use_cache=True)
            sync()
            times.append(time.perf_counter() - t0)
    return median(times[1:])  # the first step warms up


def bench_model(kind: str, n_questions: int, max_new_tokens: int, batch_size: int, repeats: int,
                init_std: float, device: str = "cpu") -> Figure:
    from prefsweep.eval.generate import generate_completions
    from prefsweep.data.prompts import render_prompt, strip_completion

    fmt = prompt_format()
    questions = make_questions(n_questions)
    model, tok = build_model(kind, questions, fmt, init_std, device)
    prompts = [render_prompt(q["turns"][0], fmt) for q in questions]
    conv = hh_conversation()
    conv.append_message(conv.roles[0], questions[0]["turns"][0])
    conv.append_message(conv.roles[1], None)
    assert conv.get_prompt() == prompts[0], (conv.get_prompt(), prompts[0])
    n_params = sum(p.numel() for p in model.parameters())

    with tempfile.TemporaryDirectory(prefix="bench_answers.") as tmp:
        work = Path(tmp)
        # one warm-up call each, so neither side pays for first-call setup
        generate_completions(model, tok, prompts[:2], max_new_tokens=2, batch_size=2, **GREEDY)
        fastchat_answers(model, tok, questions[:1], 2, work)
        t_ours, t_fc, ours, theirs = paired(
            lambda: generate_completions(model, tok, prompts, max_new_tokens=max_new_tokens,
                                         batch_size=batch_size, **GREEDY),
            lambda: fastchat_answers(model, tok, questions, max_new_tokens, work), repeats)
    ours = [strip_completion(o, fmt) for o in ours]
    theirs = [strip_completion(o, fmt) for o in theirs]
    diff = [(q["question_id"], a, b) for q, a, b in zip(questions, ours, theirs) if a != b]
    for qid, a, b in diff:
        print(f"  {qid}: batched {a!r} != FastChat {b!r}", file=sys.stderr)
    if diff:
        raise SystemExit(f"answers.{kind}: {len(diff)} of {len(ours)} greedy outputs differ from FastChat's")
    r = ratios(t_fc, t_ours)
    step_1, step_b = (decode_step_seconds(model, tok, prompts, b) for b in (1, batch_size))
    ceiling = batch_size * step_1 / step_b
    where = (torch.cuda.get_device_name(model.device) if model.device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    return Figure(
        name=f"answers.{kind}",
        label=(f"answers, {kind} ({n_params / 1e6:.1f}M params, {where}): "
               f"{n_questions} questions x {max_new_tokens} tokens, batch {batch_size}, greedy outputs "
               f"identical {len(ours)}/{len(ours)}; one decoding step of 1 sequence {step_1 * 1e3:.1f} ms, "
               f"of {batch_size} {step_b * 1e3:.1f} ms: batching's ceiling on this machine {ceiling:.1f}x"),
        value=f"batched {fmt_s(median(t_ours))}",
        comparison=f"FastChat get_model_answers {fmt_s(median(t_fc))}",
        ratio=f"{median(r):.1f}x faster",
        spread=spread(r, lambda x: f"{x:.1f}x", "speed-up"),
        target=target(median(r) >= TARGET, f">= {TARGET:g}x"))


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--init-std", type=float, default=0.2, help="init std of the random models")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (CUDA where available)")
    args = p.parse_args(argv)
    from prefsweep.eval.generate import pick_device

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.scale == "full" else 1)
    figures = [bench_model(kind, *SCALES[args.scale][kind], repeats, args.init_std, device)
               for kind in ("tiny", "pythia-100m")]
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
