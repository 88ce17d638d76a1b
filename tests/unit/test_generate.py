"""Batched answer generation and the FastChat model_answer records."""

from __future__ import annotations

import json

import pytest
import torch
from conftest_eval import load_script, tiny_model_dir  # noqa: F401

from prefsweep.eval.generate import (
    answer_id,
    answer_questions,
    answer_records,
    generate_completions,
    load_for_generation,
)
from prefsweep.data.prompts import render_prompt

GEN = {"max_new_tokens": 12, "do_sample": False, "temperature": 1.0, "top_p": 1.0, "seed": 0, "batch_size": 4}
HH = {"style": "hh"}
CONFIG = {"experiment": "t", "prompt_format": HH, "eval": {"generation": GEN}}
GREEDY = {k: v for k, v in GEN.items() if k not in ("max_new_tokens", "batch_size")}
QUESTIONS = [
    {"question_id": f"q{i}", "category": "cooking", "turns": [text]}
    for i, text in enumerate([
        "How do I bake bread?",
        "Thanks!",
        "Please give a detailed answer with 3 examples, for example about flour, water and yeast.",
        "Why did the chicken cross the road?",
        "Hope this helps",
        "Great question: short or long?",
        "A",
    ])
]


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir):
    return load_for_generation(tiny_model_dir, "cpu")


def one_at_a_time(model, tok, prompts, max_new_tokens):
    """The plain loop: one unpadded prompt per generate call."""
    out = []
    with torch.inference_mode():
        for p in prompts:
            ids = tok([p], return_tensors="pt").input_ids
            gen = model.generate(ids, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tok.pad_token_id)
            out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    return out


def test_batched_greedy_equals_one_at_a_time(model_tok):
    model, tok = model_tok
    prompts = [render_prompt(q["turns"][0], HH) for q in QUESTIONS]
    batched = generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=4, **GREEDY)
    assert batched == one_at_a_time(model, tok, prompts, 12)
    assert generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=1, **GREEDY) == batched
    assert len(set(batched)) > 1  # the prompts do steer the model


def test_sampling_is_seeded(model_tok):
    model, tok = model_tok
    prompts = [render_prompt(q["turns"][0], HH) for q in QUESTIONS]
    kw = dict(max_new_tokens=12, do_sample=True, temperature=1.0, top_p=1.0, batch_size=4)
    a = generate_completions(model, tok, prompts, seed=1, **kw)
    assert a == generate_completions(model, tok, prompts, seed=1, **kw)
    assert a != generate_completions(model, tok, prompts, seed=2, **kw)


def test_long_prompt_is_left_truncated(model_tok):
    model, tok = model_tok
    long = render_prompt("bread " * 400, HH)
    out = generate_completions(model, tok, [long, render_prompt("A", HH)], max_new_tokens=12, batch_size=4, **GREEDY)
    assert len(out) == 2


def test_answer_records_are_fastchat_and_deterministic():
    recs = answer_records("sft", QUESTIONS[:2], ["a", "b"], tstamp=1.5)
    assert list(recs[0]) == ["question_id", "answer_id", "model_id", "choices", "tstamp"]
    assert recs[1]["choices"] == [{"index": 0, "turns": ["b"]}]
    assert recs[0]["answer_id"] == answer_id("sft", "q0") != answer_id("sft", "q1") != answer_id("base", "q1")
    assert len(recs[0]["answer_id"]) == 22  # shortuuid length, as FastChat writes


def test_answer_questions_in_question_order(tiny_model_dir):
    recs = answer_questions(tiny_model_dir, "base", QUESTIONS, CONFIG, device="cpu")
    assert [r["question_id"] for r in recs] == [q["question_id"] for q in QUESTIONS]
    assert all(r["model_id"] == "base" and isinstance(r["choices"][0]["turns"][0], str) for r in recs)
    assert all(t == t.strip() and "\n\nHuman:" not in t for r in recs for t in r["choices"][0]["turns"])


@pytest.mark.parametrize("bad, match", [
    ({"turns": ["a", "b"]}, "single-turn"),
    ({"question_id": "q0"}, "duplicate question ids"),
])
def test_bad_questions_rejected(tiny_model_dir, bad, match):
    qs = [QUESTIONS[0], {**QUESTIONS[1], **bad}]
    with pytest.raises(ValueError, match=match):
        answer_questions(tiny_model_dir, "base", qs, CONFIG, device="cpu")


def test_missing_generation_key_named(tiny_model_dir):
    cfg = {**CONFIG, "eval": {"generation": {k: v for k, v in GEN.items() if k != "seed"}}}
    with pytest.raises(KeyError, match="seed"):
        answer_questions(tiny_model_dir, "base", QUESTIONS, cfg, device="cpu")


def test_script_rerun_is_byte_stable_but_tstamp(tiny_model_dir, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    script = load_script("answers")
    outs = []
    for i in range(2):
        out = tmp_path / f"a{i}.jsonl"
        script.main(["--config-json", str(tmp_path / "c.json"), "--model", str(tiny_model_dir),
                     "--model-id", "base", "--questions", str(tmp_path / "q.jsonl"), "--out", str(out)])
        recs = [json.loads(line) for line in out.read_text().splitlines()]
        for r in recs:
            r.pop("tstamp")
        outs.append(recs)
    assert outs[0] == outs[1] and len(outs[0]) == len(QUESTIONS)
