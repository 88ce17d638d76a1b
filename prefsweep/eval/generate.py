"""Batched answer generation in FastChat's ``model_answer`` format.

FastChat's ``gen_model_answer.get_model_answers`` generates one question at a time on CUDA.
Here questions are generated in batches with left padding (a decoder-only model continues at the
right edge, so every prompt must end at the same position), on CPU or CUDA. Greedy batched
output equals one-at-a-time output (``tests/unit/test_generate.py`` checks it;
``benchmarks/bench_answers.py`` measures the speed-up).

Config (section ``eval.generation``)::

    {"max_new_tokens": int, "do_sample": bool, "temperature": float > 0, "seed": int,
     "batch_size": int, "top_p": float in (0, 1] (optional, default 1.0)}

Sampling is temperature sampling with nucleus ``top_p`` and no top-k, seeded once with ``seed``
before the first batch; prompts are batched longest first, so sampled output depends on ``batch_size``
(greedy output does not).

Input questions (FastChat ``question.jsonl``)::

    {"question_id": str, "category": str, "turns": [raw question text]}

Output records (FastChat ``model_answer/{model_id}.jsonl``), in question-file order::

    {"question_id": str, "answer_id": shortuuid, "model_id": str,
     "choices": [{"index": 0, "turns": [answer text]}], "tstamp": float}

``answer_id`` is derived from ``model_id`` and ``question_id`` (``shortuuid.uuid(name=...)``), so
a rerun writes the same bytes except for ``tstamp``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shortuuid

from prefsweep.data.prompts import render_prompt, strip_completion

GENERATION_KEYS = ("max_new_tokens", "do_sample", "temperature", "top_p", "seed", "batch_size")


def pick_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for ``auto`` and a GPU is visible, else ``"cpu"`` (or as given)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_for_generation(model_dir: str | os.PathLike, device: str = "auto", base: str | os.PathLike | None = None):
    """Model (eval mode, on ``device``) and tokenizer set up for left-padded batches.

    ``model_dir`` is an HF export (``hf/{model_id}``) or, with ``base``, a kept training
    checkpoint: a PEFT adapter is merged into ``base`` in memory (as :mod:`prefsweep.train.convert`
    would write it, so the answers equal those of its merged export), full weights load as they
    are; eos/pad ids are set as an export sets them. No merged copy is written.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if base is not None:
        from prefsweep.train.convert import inspect_source, load_merged, set_generation_ids

        model, tok, _ = load_merged(inspect_source(model_dir), base)
        set_generation_ids(model, tok)
    else:
        from prefsweep import hub

        tok = hub.from_pretrained(AutoTokenizer.from_pretrained, model_dir)
        model = hub.from_pretrained(AutoModelForCausalLM.from_pretrained, model_dir)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.to(pick_device(device)).eval()
    return model, tok


def check_generation_config(gen: dict[str, Any]) -> dict[str, Any]:
    """Validate the ``eval.generation`` section; raise ``KeyError``/``ValueError`` naming the key."""
    missing = [k for k in GENERATION_KEYS if k not in gen]
    if missing:
        raise KeyError(f"eval.generation: missing keys {missing}")
    if int(gen["batch_size"]) < 1:
        raise ValueError(f"eval.generation.batch_size: expected >= 1, got {gen['batch_size']}")
    if int(gen["max_new_tokens"]) < 1:
        raise ValueError(f"eval.generation.max_new_tokens: expected >= 1, got {gen['max_new_tokens']}")
    if gen["do_sample"] and not float(gen["temperature"]) > 0:
        raise ValueError(f"eval.generation.temperature: expected > 0 when sampling, got {gen['temperature']}")
    if not 0 < float(gen["top_p"]) <= 1:
        raise ValueError(f"eval.generation.top_p: expected in (0, 1], got {gen['top_p']}")
    return gen


def generate_completions(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    seed: int,
    batch_size: int,
) -> list[str]:
    """Raw generated continuations of rendered ``prompts`` (special tokens removed), in order.

    Prompts are sorted by token length (longest first) so a batch carries little padding, and
    left-truncated to ``max_position_embeddings - max_new_tokens`` tokens where the model has a
    position limit.
    """
    import torch

    if tokenizer.padding_side != "left":
        raise ValueError("tokenizer.padding_side must be 'left' for batched generation")
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    max_prompt = None if limit is None else int(limit) - int(max_new_tokens)
    if max_prompt is not None and max_prompt < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room in {limit} positions")
    lengths = [len(ids) for ids in tokenizer(list(prompts)).input_ids]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    kwargs: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "do_sample": bool(do_sample),
                              "pad_token_id": tokenizer.pad_token_id}
    if do_sample:
        kwargs.update(temperature=float(temperature), top_k=0, top_p=float(top_p))
    else:
        # The saved generation_config may carry sampling values; greedy ignores them, say so.
        kwargs.update(temperature=None, top_k=None, top_p=None)
    torch.manual_seed(int(seed))
    out: list[str | None] = [None] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), int(batch_size)):
            idx = order[start:start + int(batch_size)]
            enc = tokenizer(
                [prompts[i] for i in idx], return_tensors="pt", padding=True,
                truncation=max_prompt is not None, max_length=max_prompt,
            ).to(device)
            gen = model.generate(**enc, **kwargs)
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, t in zip(idx, texts):
                out[i] = t
    assert all(t is not None for t in out)
    return out  # type: ignore[return-value]


def question_prompt(question: dict[str, Any], fmt: dict[str, Any]) -> str:
    """Rendered prompt of a single-turn FastChat question."""
    turns = question.get("turns") or []
    if len(turns) != 1:
        raise ValueError(
            f"question {question.get('question_id')!r}: {len(turns)} turns; only single-turn questions are supported"
        )
    return render_prompt(turns[0], fmt)


def answer_id(model_id: str, question_id: str) -> str:
    """Deterministic FastChat-style answer id (a shortuuid of ``model_id``/``question_id``)."""
    return shortuuid.uuid(name=f"prefsweep-answer/{model_id}/{question_id}")


def answer_records(
    model_id: str, questions: Sequence[dict[str, Any]], answers: Sequence[str], tstamp: float | None = None
) -> list[dict[str, Any]]:
    """FastChat ``model_answer`` records, one per question, in question order."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    ts = time.time() if tstamp is None else tstamp
    return [
        {
            "question_id": q["question_id"],
            "answer_id": answer_id(model_id, str(q["question_id"])),
            "model_id": model_id,
            "choices": [{"index": 0, "turns": [a]}],
            "tstamp": ts,
        }
        for q, a in zip(questions, answers)
    ]


def answer_questions(
    model_dir: str | os.PathLike,
    model_id: str,
    questions: Sequence[dict[str, Any]],
    config: dict[str, Any],
    device: str = "auto",
    base: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Generate one answer per question with the model in ``model_dir`` (a checkpoint of
    ``base`` when given: :func:`load_for_generation`).

    Reads config sections ``eval.generation`` and ``prompt_format``; answers are the stripped
    completions (:func:`prefsweep.data.prompts.strip_completion`).
    """
    gen = check_generation_config(config["eval"]["generation"])
    fmt = config["prompt_format"]
    ids = [q["question_id"] for q in questions]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"questions: duplicate question ids {dup[:10]}")
    prompts = [question_prompt(q, fmt) for q in questions]
    model, tok = load_for_generation(model_dir, device, base=base)
    raw = generate_completions(
        model, tok, prompts,
        max_new_tokens=gen["max_new_tokens"], do_sample=gen["do_sample"],
        temperature=gen["temperature"], top_p=gen["top_p"], seed=gen["seed"],
        batch_size=gen["batch_size"],
    )
    return answer_records(model_id, questions, [strip_completion(t, fmt) for t in raw])


def read_answers(path: str | os.PathLike) -> dict[str, str]:
    """``{question_id: first turn of choice 0}`` of a FastChat answer file; duplicates are an error."""
    from prefsweep.io import read_jsonl

    out: dict[str, str] = {}
    for rec in read_jsonl(path):
        qid = str(rec["question_id"])
        if qid in out:
            raise ValueError(f"{path}: question {qid!r} answered more than once")
        out[qid] = rec["choices"][0]["turns"][0]
    return out


def model_name(path: str | os.PathLike) -> str:
    """FastChat's model name of an answer file: its file name without ``.jsonl``."""
    name = Path(path).name
    return name[: -len(".jsonl")] if name.endswith(".jsonl") else Path(path).stem
