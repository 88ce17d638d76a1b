"""Training stage: TRL configs, reference log-probs, DPO without a reference pass, resume, wandb."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prefsweep.io import atomic_write_parquet, sha256_file
from prefsweep.prompts import render_completion, render_prompt
from prefsweep.reflogps import attach_ref_logps, compute_ref_logps, dpo_columns, tokenize_pair, union_pairs
from prefsweep.training import (
    DPO_KEYS, SFT_KEYS, build_dpo_config, build_lora_config, build_sft_config, complete_checkpoint_steps,
    is_complete_checkpoint,
    last_complete_checkpoint, make_dpo_trainer, prepare_checkpoint_dir, prune_resume_state, resolve_section,
    run_fingerprint, wandb_setup,
)
from prefsweep.tracking import scrub_secrets, secret_values

TINY = {"vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 256, "max_position_embeddings": 256}
VERBS = "cook clean fix paint plant wash fold bake".split()
NOUNS = "rice shirt bike fence garden car towel bread".split()
GOOD = "Sure, here is how: {v} the {n} slowly and carefully, step by step."
BAD = "No."

DPO_SECTION = {"init": "sft", "seeds": [1], "beta": 0.1, "learning_rate": 3e-3, "num_train_epochs": 4,
               "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "warmup_ratio": 0.0,
               "max_length": 64, "save_steps": 1000, "logging_steps": 1000, "lora": {"enabled": False}}


def load_script(name):
    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(f"script_{name}", repo / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_pairs(n_prompts: int, seed: int = 0) -> pd.DataFrame:
    """Pairs in the pairs.parquet format: a helpful answer beats a curt one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_prompts):
        v, n = rng.choice(VERBS), rng.choice(NOUNS)
        rows.append({
            "prompt": render_prompt(f"How do I {v} the {n}?"), "chosen": render_completion(GOOD.format(v=v, n=n)),
            "rejected": render_completion(BAD), "pair_id": f"q{i}|a>b", "prompt_id": f"q{i}", "topic": "home",
            "chosen_id": "a", "rejected_id": "b", "margin": 1.0, "n_voters": 3, "cycle": False, "tie_broken": False,
            "order": i,
        })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from prefsweep.tiny import build_tiny_model, train_tokenizer

    pairs = make_pairs(32, seed=1)
    texts = list(pairs["prompt"] + pairs["chosen"]) + list(pairs["prompt"] + pairs["rejected"])
    tok = train_tokenizer(texts, TINY["vocab_size"], model_max_length=TINY["max_position_embeddings"])
    model = build_tiny_model(tok, TINY)
    out = tmp_path_factory.mktemp("tiny")
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out


def load(tiny_dir):
    from prefsweep.training import load_model_and_tokenizer

    return load_model_and_tokenizer(tiny_dir)


# ---------------------------------------------------------------------------------------------
# Config sections -> TRL configs
# ---------------------------------------------------------------------------------------------


def test_sections_reject_unknown_and_missing_keys():
    with pytest.raises(KeyError, match="unknown keys \\['learning_rat'\\]"):
        resolve_section({**DPO_SECTION, "learning_rat": 1.0}, DPO_KEYS, "dpo")
    with pytest.raises(KeyError, match="missing required keys \\['max_length'\\]"):
        resolve_section({k: v for k, v in DPO_SECTION.items() if k != "max_length"}, DPO_KEYS, "dpo")
    with pytest.raises(KeyError, match="unknown"):
        resolve_section({**DPO_SECTION, "beta": 0.2}, SFT_KEYS, "sft")  # beta is a DPO key only
    with pytest.raises(ValueError, match="warmup_ratio"):
        resolve_section({**DPO_SECTION, "warmup_ratio": 1.5}, DPO_KEYS, "dpo")
    with pytest.raises(KeyError, match="unknown"):
        build_lora_config({"enabled": True, "rank": 4})


def test_dpo_config_uses_section_values(tmp_path):
    args = build_dpo_config({**DPO_SECTION, "warmup_ratio": 0.1, "save_steps": 7, "loss_type": "ipo"},
                            output_dir=tmp_path, seed=3, run_name="maj-prompt-n64-seed3")
    assert args.loss_type == ["ipo"]
    assert args.learning_rate == 3e-3 and args.beta == 0.1 and args.max_length == 64
    assert args.num_train_epochs == 4 and args.per_device_train_batch_size == 4
    assert args.warmup_steps == pytest.approx(0.1)  # transformers 5: a float < 1 is the warmup ratio
    assert args.seed == 3 and args.data_seed == 3
    assert args.save_steps == 7 and args.save_total_limit is None and not args.save_only_model
    assert args.precompute_ref_log_probs is True
    assert args.bf16 is False and args.gradient_checkpointing is False  # TRL defaults would be True
    assert args.report_to == [] or args.report_to == "none" or args.report_to == ["none"]
    assert args.output_dir == str(tmp_path) and args.run_name == "maj-prompt-n64-seed3"


def test_sft_config_completion_only(tmp_path):
    section = {k: v for k, v in DPO_SECTION.items() if k not in ("init", "seeds", "beta")}
    args = build_sft_config({**section, "seed": 5}, output_dir=tmp_path)
    assert args.completion_only_loss is True and args.seed == 5 and args.max_length == 64


def test_lora_config():
    from peft import LoraConfig

    assert build_lora_config({"enabled": False, "r": 8}) is None
    assert build_lora_config(None) is None
    cfg = build_lora_config({"enabled": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                             "target_modules": ["query_key_value"]})
    assert isinstance(cfg, LoraConfig) and cfg.r == 4 and cfg.lora_alpha == 8
    assert set(cfg.target_modules) == {"query_key_value"} and cfg.task_type == "CAUSAL_LM"


# ---------------------------------------------------------------------------------------------
# One prompt string everywhere
# ---------------------------------------------------------------------------------------------


def test_same_prompt_for_sft_dpo_and_generation(tiny_dir):
    """The SFT trainer, the DPO trainer and generation see the same prompt tokens."""
    from datasets import Dataset
    from trl import SFTTrainer

    from prefsweep.generate import question_prompt

    fmt = {"style": "hh"}
    raw = "How do I fold the towel?"
    sft_prompt = render_prompt(raw, fmt)  # data/sft.jsonl
    dpo_prompt = render_prompt(raw, fmt)  # pairs.parquet
    gen_prompt = question_prompt({"question_id": "q", "turns": [raw]}, fmt)  # eval answers
    assert sft_prompt == dpo_prompt == gen_prompt

    model, tok = load(tiny_dir)
    gen_ids = tok(gen_prompt)["input_ids"]
    dpo_ids = tokenize_pair(dpo_prompt, render_completion("Fold it.", fmt), render_completion("No.", fmt), tok)
    assert dpo_ids["prompt_ids"] == gen_ids

    section = {k: v for k, v in DPO_SECTION.items() if k not in ("init", "seeds", "beta")}
    corpus = Dataset.from_dict({"prompt": [sft_prompt], "completion": [render_completion("Fold it.", fmt)]})
    sft = SFTTrainer(model=model, processing_class=tok, train_dataset=corpus,
                     args=build_sft_config(section, output_dir=str(tiny_dir.parent / "sft_tok")))
    row = sft.train_dataset[0]
    n_prompt = sum(1 for label in row["labels"] if label == -100)  # completion-only loss
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert row["input_ids"][:n_prompt] == gen_ids
    assert row["input_ids"][n_prompt:] == dpo_ids["chosen_ids"]  # same completion tokens, eos included


# ---------------------------------------------------------------------------------------------
# Reference log-probs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_length", [None, 24])
def test_ref_logps_equal_trl_precompute(tiny_dir, tmp_path, max_length):
    """Our table equals what TRL 1.16's own precompute step puts in the dataset (1e-5)."""
    from datasets import Dataset
    from trl import DPOTrainer

    pairs = make_pairs(10)
    pairs.loc[3, "chosen"] = pairs.loc[3, "chosen"] + " And one more long sentence to truncate." * 3
    model, tok = load(tiny_dir)
    ours = compute_ref_logps(model, tok, pairs, max_length=max_length, batch_size=4)
    assert list(ours.columns) == ["pair_id", "ref_chosen_logps", "ref_rejected_logps"]
    assert ours["ref_chosen_logps"].dtype == np.float64 and (ours["ref_chosen_logps"] < 0).all()

    model, tok = load(tiny_dir)
    args = build_dpo_config({**DPO_SECTION, "max_length": max_length or 10_000}, output_dir=tmp_path, seed=0)
    trainer = DPOTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=Dataset.from_pandas(pairs[["prompt", "chosen", "rejected"]]))
    theirs = trainer.train_dataset
    assert len(theirs) == len(pairs)
    np.testing.assert_allclose(ours["ref_chosen_logps"], theirs["ref_chosen_logps"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours["ref_rejected_logps"], theirs["ref_rejected_logps"], rtol=0, atol=1e-5)
    if max_length:  # truncation changed the long pair's value
        full = compute_ref_logps(load(tiny_dir)[0], tok, pairs.iloc[[3]], max_length=None)
        assert full["ref_chosen_logps"][0] < ours["ref_chosen_logps"][3] - 1


def test_union_and_attach():
    a, b = make_pairs(4), make_pairs(6)
    u = union_pairs([a, b])
    assert list(u["pair_id"]) == [f"q{i}|a>b" for i in range(6)]
    bad = b.copy()
    bad.loc[0, "chosen"] = " other"
    with pytest.raises(ValueError, match="different texts"):
        union_pairs([a, bad])
    ref = pd.DataFrame({"pair_id": u["pair_id"][::-1], "ref_chosen_logps": np.arange(6.0)[::-1],
                        "ref_rejected_logps": -np.arange(6.0)[::-1]})
    joined = attach_ref_logps(a, ref)
    assert list(joined["ref_chosen_logps"]) == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(KeyError, match="2 of 6 pairs have no reference log-probs"):
        attach_ref_logps(b, ref.iloc[2:])


# ---------------------------------------------------------------------------------------------
# DPO: no reference forward, and it learns
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["full", "lora"])
def dpo_run(request, tiny_dir, tmp_path_factory):
    """Train on 16 pairs with precomputed reference values, counting every backbone forward."""
    from datasets import Dataset
    from trl import DPOTrainer

    lora = request.param
    pairs = make_pairs(16)
    model, tok = load(tiny_dir)
    ref = compute_ref_logps(model, tok, pairs, max_length=64)
    data = attach_ref_logps(pairs, ref)[dpo_columns()]

    model, tok = load(tiny_dir)
    calls = {"grad": 0, "no_grad": 0}
    model.gpt_neox.register_forward_hook(
        lambda *_: calls.__setitem__("grad" if torch.is_grad_enabled() else "no_grad",
                                     calls["grad" if torch.is_grad_enabled() else "no_grad"] + 1))
    section = {**DPO_SECTION, "lora": {"enabled": lora, "r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                                       "target_modules": ["query_key_value", "dense_h_to_4h", "dense_4h_to_h"]}}
    if lora:
        section["learning_rate"] = 1e-2
    args = build_dpo_config(section, output_dir=tmp_path_factory.mktemp("dpo"), seed=1)

    def forbidden(*a, **k):
        raise AssertionError("reference log-probs recomputed inside the DPO job")

    orig = DPOTrainer.compute_ref_log_probs
    DPOTrainer.compute_ref_log_probs = forbidden
    try:
        trainer = make_dpo_trainer(model, tok, Dataset.from_pandas(data, preserve_index=False), args,
                                   peft_config=build_lora_config(section["lora"]))
        after_init = dict(calls)
        trainer.train()
    finally:
        DPOTrainer.compute_ref_log_probs = orig
    return {"trainer": trainer, "calls": calls, "after_init": after_init, "pairs": pairs, "ref": ref, "lora": lora}


def test_dpo_job_runs_no_reference_forward(dpo_run):
    trainer, calls = dpo_run["trainer"], dpo_run["calls"]
    assert trainer.ref_model is None
    assert dpo_run["after_init"] == {"grad": 0, "no_grad": 0}  # nothing ran while building the trainer
    # One forward per optimizer step (chosen and rejected in one batch), all of them with gradients.
    assert calls == {"grad": trainer.state.global_step, "no_grad": 0}
    assert trainer.state.global_step == 16  # 16 pairs / batch 4 x 4 epochs
    from peft import PeftModel

    assert isinstance(trainer.model, PeftModel) is dpo_run["lora"]


def test_dpo_moves_policy_toward_chosen(dpo_run):
    trainer, pairs, ref = dpo_run["trainer"], dpo_run["pairs"], dpo_run["ref"]
    policy = trainer.model.merge_and_unload() if dpo_run["lora"] else trainer.model
    now = compute_ref_logps(policy, trainer.processing_class, pairs, max_length=64)
    margin_before = (ref["ref_chosen_logps"] - ref["ref_rejected_logps"]).to_numpy()
    margin_after = (now["ref_chosen_logps"] - now["ref_rejected_logps"]).to_numpy()
    # Implicit reward margin (DPO eq. 5 up to beta) grows for (almost) every pair.
    assert (margin_after - margin_before).mean() > 1.0
    assert ((margin_after - margin_before) > 0).mean() >= 0.9


def test_precomputed_trainer_requires_columns(tiny_dir, tmp_path):
    from datasets import Dataset

    model, tok = load(tiny_dir)
    args = build_dpo_config(DPO_SECTION, output_dir=tmp_path, seed=1)
    with pytest.raises(ValueError, match="ref_chosen_logps"):
        make_dpo_trainer(model, tok, Dataset.from_pandas(make_pairs(4)[["prompt", "chosen", "rejected"]]), args)


# ---------------------------------------------------------------------------------------------
# Checkpoints and resume
# ---------------------------------------------------------------------------------------------


def fake_checkpoint(ckpt_dir: Path, step: int, complete: bool = True) -> Path:
    d = ckpt_dir / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"x")
    if complete:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_prepare_checkpoint_dir_resumes_only_same_fingerprint(tmp_path):
    data = tmp_path / "pairs.parquet"
    data.write_bytes(b"v1")
    fp = run_fingerprint({"dpo": DPO_SECTION}, {"seed": 1}, {"pairs": data})
    ckpt = tmp_path / "checkpoints"
    assert prepare_checkpoint_dir(ckpt, fp) is None  # fresh: fingerprint written
    fake_checkpoint(ckpt, 10)
    fake_checkpoint(ckpt, 20)
    fake_checkpoint(ckpt, 30, complete=False)  # killed while saving
    assert prepare_checkpoint_dir(ckpt, fp) == ckpt / "checkpoint-20"
    assert not (ckpt / "checkpoint-30").exists()

    # Same everything: same fingerprint. Other data, config or seed: start over, cleanly.
    assert run_fingerprint({"dpo": DPO_SECTION}, {"seed": 1}, {"pairs": data})["sha256"] == fp["sha256"]
    other_seed = run_fingerprint({"dpo": DPO_SECTION}, {"seed": 2}, {"pairs": data})
    other_cfg = run_fingerprint({"dpo": {**DPO_SECTION, "beta": 0.5}}, {"seed": 1}, {"pairs": data})
    data.write_bytes(b"v2")
    other_data = run_fingerprint({"dpo": DPO_SECTION}, {"seed": 1}, {"pairs": data})
    assert len({fp["sha256"], other_seed["sha256"], other_cfg["sha256"], other_data["sha256"]}) == 4
    assert prepare_checkpoint_dir(ckpt, other_data) is None
    assert sorted(p.name for p in ckpt.iterdir()) == ["fingerprint.json"]
    assert json.loads((ckpt / "fingerprint.json").read_text())["sha256"] == other_data["sha256"]


def test_complete_checkpoint_steps_skip_unfinished_and_other_files(tmp_path):
    """The steps the workflow evaluates: numeric order, complete checkpoints only."""
    for step in (20, 4, 12):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 30, complete=False)
    (tmp_path / "fingerprint.json").write_text("{}")
    assert complete_checkpoint_steps(tmp_path) == [4, 12, 20]
    assert complete_checkpoint_steps(tmp_path / "missing") == []


def test_prune_resume_state_keeps_weights(tmp_path):
    for step in (2, 4):
        d = fake_checkpoint(tmp_path, step)
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
            (d / name).write_bytes(b"s")
    removed = prune_resume_state(tmp_path, tmp_path / "checkpoint-4")
    assert sorted(p.name for p in removed) == ["optimizer.pt", "rng_state.pth", "scheduler.pt"]
    assert sorted(p.name for p in (tmp_path / "checkpoint-2").iterdir()) == ["model.safetensors", "trainer_state.json"]
    assert (tmp_path / "checkpoint-4" / "optimizer.pt").exists()


def test_checkpoints_without_fingerprint_are_discarded(tmp_path):
    ckpt = tmp_path / "checkpoints"
    fake_checkpoint(ckpt, 5)
    (tmp_path / "f").write_text("x")
    assert prepare_checkpoint_dir(ckpt, run_fingerprint({}, {}, {"f": tmp_path / "f"})) is None
    assert not (ckpt / "checkpoint-5").exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert not is_complete_checkpoint(tmp_path / "missing")


def write_dpo_inputs(root: Path, n_prompts: int, section: dict) -> list[str]:
    """pairs.parquet, manifest.json, config.json and argv (without --model / ref logps paths)."""
    pairs = make_pairs(n_prompts)
    atomic_write_parquet(root / "pairs.parquet", pairs)
    manifest = {"arm": "maj", "matching": "shared", "size": len(pairs), "n_pairs": len(pairs),
                "n_prompts": n_prompts, "topics": {"home": len(pairs)}, "ties_broken": 0, "cycles": 0,
                "sha256": sha256_file(root / "pairs.parquet")}
    (root / "manifest.json").write_text(json.dumps(manifest))
    config = {"experiment": "t", "prompt_format": {"style": "hh"}, "dpo": section, "wandb": {"mode": "disabled"}}
    (root / "config.json").write_text(json.dumps(config))
    return ["--config-json", str(root / "config.json"), "--pairs", str(root / "pairs.parquet"),
            "--manifest", str(root / "manifest.json"), "--arm", "maj", "--matching", "shared",
            "--size", str(len(pairs)), "--seed", "1", "--threads", "1"]


def test_dpo_script_missing_ref_logps_is_an_error(tiny_dir, tmp_path):
    argv = write_dpo_inputs(tmp_path, 6, DPO_SECTION)
    ref = pd.DataFrame({"pair_id": [f"q{i}|a>b" for i in range(4)], "ref_chosen_logps": -1.0,
                        "ref_rejected_logps": -2.0})
    atomic_write_parquet(tmp_path / "ref.parquet", ref)
    with pytest.raises(SystemExit, match="2 of 6 pairs have no reference log-probs"):
        load_script("dpo").main([*argv, "--model", str(tiny_dir), "--ref-logps", str(tmp_path / "ref.parquet"),
                                 "--out", str(tmp_path / "final"), "--checkpoints", str(tmp_path / "ckpt")])
    assert not (tmp_path / "final").exists()


def test_dpo_script_resumes_after_kill(tiny_dir, tmp_path):
    """Kill the job after its first checkpoint; the rerun continues from it and finishes."""
    section = {**DPO_SECTION, "num_train_epochs": 25, "per_device_train_batch_size": 2, "save_steps": 4}
    argv = write_dpo_inputs(tmp_path, 8, section)  # 8 pairs / 2 x 25 epochs = 100 steps
    load_script("ref_logps").main(["--config-json", str(tmp_path / "config.json"), "--model", str(tiny_dir),
                                   "--pairs", str(tmp_path / "pairs.parquet"), "--out", str(tmp_path / "ref.parquet")])
    argv += ["--model", str(tiny_dir), "--ref-logps", str(tmp_path / "ref.parquet"),
             "--out", str(tmp_path / "final"), "--checkpoints", str(tmp_path / "checkpoints")]
    script = Path(__file__).resolve().parents[2] / "scripts" / "dpo.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, str(script), *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    first = tmp_path / "checkpoints" / "checkpoint-4"
    deadline = time.monotonic() + 120
    while not is_complete_checkpoint(first):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "final").exists()
    resume_from = last_complete_checkpoint(tmp_path / "checkpoints")
    step = int(resume_from.name.split("-")[1])
    assert 4 <= step < 100
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in resume_from.iterdir()}

    load_script("dpo").main(argv)
    # Resumed, not restarted: the checkpoint it resumed from was read, not written again.
    for name in ("model.safetensors", "trainer_state.json"):
        after = resume_from / name
        assert (after.stat().st_ino, after.stat().st_mtime_ns) == before[name]
    info = json.loads((tmp_path / "final" / "run_info.json").read_text())
    assert info["resumed_from"] == resume_from.name
    assert info["global_step"] == 100
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-100" / "trainer_state.json").read_text())
    assert state["global_step"] == 100
    # The rerun trained only the remaining steps.
    assert info["train_metrics"]["train_runtime"] > 0
    assert info["manifest_sha256"] == sha256_file(tmp_path / "manifest.json")
    assert info["job"] == {"arm": "maj", "matching": "shared", "size": 8, "seed": 1}
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "checkpoints").glob("checkpoint-*"))
    assert steps == list(range(4, 101, 4))
    # Every checkpoint keeps its weights; only the newest keeps the optimizer state.
    ckpts = tmp_path / "checkpoints"
    assert all((ckpts / f"checkpoint-{s}" / "model.safetensors").exists() for s in steps)
    assert [s for s in steps if (ckpts / f"checkpoint-{s}" / "optimizer.pt").exists()] == [100]


# ---------------------------------------------------------------------------------------------
# SFT script (LoRA merged into a full model)
# ---------------------------------------------------------------------------------------------


def test_sft_script_with_lora_writes_merged_model(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    pairs = make_pairs(8)
    corpus = tmp_path / "sft.jsonl"
    corpus.write_text("".join(json.dumps({"prompt": p, "completion": c, "prompt_id": i}) + "\n"
                              for p, c, i in zip(pairs["prompt"], pairs["chosen"], pairs["prompt_id"])))
    section = {k: v for k, v in DPO_SECTION.items() if k not in ("init", "seeds", "beta")}
    section.update(num_train_epochs=2, lora={"enabled": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                                             "target_modules": None})
    os.environ["OPENAI_API_KEY"] = "sk-test-do-not-log-0001"
    try:
        config = {"experiment": "t", "sft": section, "wandb": {"mode": "disabled"},
                  "eval": {"judge": {"api_key": "sk-inline-secret"}}}
        (tmp_path / "config.json").write_text(json.dumps(config))
        load_script("sft").main(["--config-json", str(tmp_path / "config.json"), "--model", str(tiny_dir),
                                 "--corpus", str(corpus), "--out", str(tmp_path / "sft"),
                                 "--checkpoints", str(tmp_path / "ckpt"), "--threads", "1"])
    finally:
        del os.environ["OPENAI_API_KEY"]
    out = tmp_path / "sft"
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    key = "gpt_neox.layers.0.attention.query_key_value.weight"
    assert not torch.equal(merged.state_dict()[key], base.state_dict()[key])
    info = json.loads((out / "run_info.json").read_text())
    assert info["lora_merged"] and info["global_step"] == 4
    assert info["config"]["eval"]["judge"]["api_key"] == "<redacted>"
    assert (tmp_path / "ckpt" / "fingerprint.json").exists()


# ---------------------------------------------------------------------------------------------
# wandb
# ---------------------------------------------------------------------------------------------


def test_wandb_setup_env_and_names(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = {"experiment": "exp1", "wandb": {"mode": "offline", "project": "proj"}}
    s = wandb_setup(cfg, group="maj-prompt-n64", name="maj-prompt-n64-seed2", job_type="dpo", run_id="r1",
                    results_root=tmp_path)
    assert s.env["WANDB_MODE"] == "offline" and s.env["WANDB_PROJECT"] == "proj"
    assert s.env["WANDB_DIR"] == str(tmp_path / "exp1" / "wandb") and s.env["WANDB_RUN_GROUP"] == "maj-prompt-n64"
    assert s.report_to == "wandb" and s.name == "maj-prompt-n64-seed2"
    assert wandb_setup({"experiment": "e"}, group="g", name="n", job_type="dpo", run_id="r").mode == "offline"
    # the workflow passes wandb settings through the environment (config slices have none)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_setup({"experiment": "e"}, group="g", name="n", job_type="dpo", run_id="r").report_to == "none"
    off = wandb_setup({"wandb": {"mode": "disabled"}}, group="g", name="n", job_type="dpo", run_id="r")
    assert off.report_to == "none"
    with pytest.raises(ValueError, match="wandb.mode"):
        wandb_setup({"wandb": {"mode": "sometimes"}}, group="g", name="n", job_type="dpo", run_id="r")
    with pytest.raises(KeyError, match="unknown"):
        wandb_setup({"wandb": {"mode": "offline", "team": "x"}}, group="g", name="n", job_type="dpo", run_id="r")
    team = wandb_setup({"wandb": {"entity": "lab", "project": "p"}}, group="g", name="n", job_type="dpo", run_id="r")
    assert team.entity == "lab" and team.env["WANDB_ENTITY"] == "lab"


def test_scrub_secrets():
    env = {"OPENAI_API_KEY": "sk-abc123456", "WANDB_API_KEY": "wb-0987654321", "HF_TOKEN": "hf_zzzz",
           "HOME": "/root", "MAX_NEW_TOKENS": "48"}
    assert secret_values(env) == ["hf_zzzz", "sk-abc123456", "wb-0987654321"]
    cfg = {"eval": {"judge": {"api_key": "literal", "base_url": "http://x?key=sk-abc123456",
                              "api_key_env": "OPENAI_API_KEY"}, "generation": {"max_new_tokens": 48}},
           "list": ["wb-0987654321", 3], "token": None}
    out = scrub_secrets(cfg, env)
    assert out["eval"]["judge"]["api_key"] == "<redacted>"
    assert out["eval"]["judge"]["base_url"] == "http://x?key=<redacted>"
    assert out["eval"]["judge"]["api_key_env"] == "OPENAI_API_KEY"  # the name of a variable is no secret
    assert out["eval"]["generation"]["max_new_tokens"] == 48
    assert out["list"] == ["<redacted>", 3] and out["token"] is None
    assert cfg["eval"]["judge"]["api_key"] == "literal"  # input untouched


def test_wandb_offline_run_logs_no_secrets(tmp_path, monkeypatch):
    from prefsweep.training import finish_wandb, start_wandb

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-424242")
    setup = wandb_setup({"experiment": "exp", "wandb": {"mode": "offline", "project": "p"}}, group="maj-size-n64",
                        name="maj-size-n64-seed1", job_type="dpo", run_id="test-run-1", results_root=tmp_path)
    for key in setup.env:
        monkeypatch.delenv(key, raising=False)  # restored after the test
    config = {"eval": {"judge": {"api_key": "sk-inline-secret-777", "url": "http://h/?k=sk-env-secret-424242"}}}
    run = start_wandb(setup, config, {"job": {"seed": 1}})
    assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_DIR"] == str(tmp_path / "exp" / "wandb")
    assert run.config["prefsweep"]["eval"]["judge"]["api_key"] == "<redacted>"
    run.log({"x": 1.0})
    finish_wandb(run)
    files = [p for p in (tmp_path / "exp" / "wandb").rglob("*") if p.is_file()]
    assert any("offline-run" in str(p) for p in files)
    for p in files:
        data = p.read_bytes()
        assert b"sk-inline-secret-777" not in data and b"sk-env-secret-424242" not in data, p


def test_schema_resolved_config_is_accepted(default_config, tmp_path):
    """Every key the schema allows in sft/dpo/lora/wandb is one these builders know."""
    sft = build_sft_config(default_config["sft"], output_dir=tmp_path)
    dpo = build_dpo_config(default_config["dpo"], output_dir=tmp_path, seed=1)
    assert sft.max_length == default_config["sft"]["max_length"] and dpo.beta == default_config["dpo"]["beta"]
    for section in ("sft", "dpo"):
        build_lora_config(default_config[section]["lora"], f"{section}.lora")
        build_lora_config({**default_config[section]["lora"], "enabled": True}, f"{section}.lora")
    wandb_setup(default_config, group="g", name="n", job_type="dpo", run_id="r")
