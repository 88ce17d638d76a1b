"""A kept LoRA checkpoint is answered from base + adapter, with no merged copy on disk, and the
answers equal those of its merged export (prefsweep.eval.generate.load_for_generation with base)."""

from __future__ import annotations

import json

import torch
from conftest_eval import load_script, tiny_model_dir  # noqa: F401

from prefsweep.train.convert import convert
from prefsweep.eval.generate import answer_questions

# Sampling, so any difference in the weights or the generation ids shows in the text.
GEN = {"max_new_tokens": 10, "do_sample": True, "temperature": 1.0, "top_p": 1.0, "seed": 7, "batch_size": 3}
CONFIG = {"experiment": "t", "prompt_format": {"style": "hh"}, "eval": {"generation": GEN}}
QUESTIONS = [{"question_id": f"q{i}", "category": "c", "turns": [t]}
             for i, t in enumerate(["How do I bake bread?", "Thanks!", "Why is the sky blue?", "Fix my bike."])]


def lora_checkpoint(base_dir, ckpt_dir):
    """A PEFT adapter as a DPO run's checkpoint-{step} holds it (adapter + trainer_state.json),
    naming its base, with lora_B away from zero so it changes the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base_dir)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["query_key_value", "dense"]))
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(str(ckpt_dir))
    (ckpt_dir / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    return ckpt_dir


def texts(records):
    return [r["choices"][0]["turns"][0] for r in records]


def test_adapter_checkpoint_answers_equal_merged_export_answers(tiny_model_dir, tmp_path):
    ckpt = lora_checkpoint(tiny_model_dir, tmp_path / "checkpoints" / "checkpoint-4")
    assert json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model_dir)
    assert not list(ckpt.glob("model*.safetensors"))  # the checkpoint holds the adapter only
    mid = "dpo-maj-shared-n4-seed1-step4"
    direct = answer_questions(ckpt, mid, QUESTIONS, CONFIG, device="cpu", base=tiny_model_dir)
    export = convert(ckpt, tmp_path / "hf" / mid, mid, base=tiny_model_dir)
    merged = answer_questions(export, mid, QUESTIONS, CONFIG, device="cpu")
    assert texts(direct) == texts(merged)
    base = answer_questions(tiny_model_dir, mid, QUESTIONS, CONFIG, device="cpu")
    assert texts(base) != texts(direct)  # the adapter is applied, not ignored


def test_answers_script_takes_a_checkpoint_and_its_base(tiny_model_dir, tmp_path):
    from prefsweep.io import atomic_write_jsonl, read_jsonl

    ckpt = lora_checkpoint(tiny_model_dir, tmp_path / "checkpoint-4")
    atomic_write_jsonl(tmp_path / "question.jsonl", QUESTIONS)
    out = tmp_path / "answers.jsonl"
    load_script("answers").main([
        "--config-json", json.dumps(CONFIG), "--model", str(ckpt), "--base", str(tiny_model_dir),
        "--model-id", "dpo-maj-shared-n4-seed1-step4", "--questions", str(tmp_path / "question.jsonl"),
        "--out", str(out), "--device", "cpu", "--max-questions", "2"])
    records = read_jsonl(out)
    assert [r["question_id"] for r in records] == ["q0", "q1"]
