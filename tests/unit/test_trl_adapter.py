"""The gate for a TRL / transformers upgrade: every internal that prefsweep.train.trl_adapter wraps,
checked against the library's own behaviour (see that module's docstring).

If these pass on a new TRL or transformers, the project's use of their internals still holds:
reference log-probs equal TRL's own precompute, the same prompt tokens in SFT, DPO and generation,
no reference forward in a DPO job, and a resumed trainer that holds exactly its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from prefsweep.data.prompts import render_completion, render_prompt

HH = {"style": "hh"}  # prompt_format of the default config
from prefsweep.train.reflogps import attach_ref_logps, compute_ref_logps, dpo_columns
from prefsweep.train.training import build_dpo_config, build_lora_config, build_sft_config, load_model_and_tokenizer
from prefsweep.train.trl_adapter import (
    REF_COLUMNS, CheckpointLoadError, check_adapter_loaded, load_full_checkpoint, make_dpo_trainer, make_sft_trainer,
    prompt_token_count, tokenize_pair,
)
from tests.conftest import load_config
from tests.unit.train_helpers import build_tiny_dir, make_pairs

LORA = {"enabled": True, "r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": ["query_key_value", "dense_h_to_4h", "dense_4h_to_h"]}


def section(step: str, **overrides) -> dict:
    """Config section ``step`` with the schema's defaults, made small for a tiny model."""
    sec = {k: v for k, v in load_config()[step].items() if k != "seeds"}
    sec.update(learning_rate=3e-3, num_train_epochs=4, per_device_train_batch_size=4, warmup_ratio=0.0,
               max_length=64, save_steps=1000, logging_steps=1000)
    sec["lora"] = {**sec["lora"], "enabled": False}
    sec.update(overrides)
    return sec


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_dir(tmp_path_factory.mktemp("tiny"))


def load(tiny_dir):
    return load_model_and_tokenizer(tiny_dir)


# ---------------------------------------------------------------------------------------------
# Tokenization: one prompt string, the same tokens everywhere
# ---------------------------------------------------------------------------------------------


def test_same_prompt_for_sft_dpo_and_generation(tiny_dir, tmp_path):
    """The SFT trainer, the DPO trainer and generation see the same prompt tokens."""
    from datasets import Dataset

    from prefsweep.eval.generate import question_prompt

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
    assert prompt_token_count(tok, sft_prompt) == len(gen_ids)

    corpus = Dataset.from_dict({"prompt": [sft_prompt], "completion": [render_completion("Fold it.", fmt)]})
    sft = make_sft_trainer(model, tok, corpus, build_sft_config(section("sft"), output_dir=tmp_path, run_name="sft",
                                                                report_to="none"))
    row = sft.train_dataset[0]
    n_prompt = sum(1 for label in row["labels"] if label == -100)  # completion-only loss
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert row["input_ids"][:n_prompt] == gen_ids
    assert row["input_ids"][n_prompt:] == dpo_ids["chosen_ids"]  # same completion tokens, eos included


# ---------------------------------------------------------------------------------------------
# Reference log-probs equal TRL's own precompute
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_length", [10_000, 24])
def test_ref_logps_equal_trl_precompute(tiny_dir, tmp_path, max_length):
    """Our table equals what TRL 1.16's own precompute step puts in the dataset (1e-5)."""
    from datasets import Dataset
    from trl import DPOTrainer

    pairs = make_pairs(10)
    pairs.loc[3, "chosen"] = pairs.loc[3, "chosen"] + " And one more long sentence to truncate." * 3
    model, tok = load(tiny_dir)
    ours = compute_ref_logps(model, tok, pairs, max_length=max_length, key="dpo.max_length", batch_size=4)
    assert list(ours.columns) == ["pair_id", *REF_COLUMNS]
    assert ours["ref_chosen_logps"].dtype == np.float64 and (ours["ref_chosen_logps"] < 0).all()

    model, tok = load(tiny_dir)
    args = build_dpo_config(section("dpo", max_length=max_length), output_dir=tmp_path, seed=0, run_name="t",
                            report_to="none")
    trainer = DPOTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=Dataset.from_pandas(pairs[["prompt", "chosen", "rejected"]]))
    theirs = trainer.train_dataset
    assert len(theirs) == len(pairs)
    np.testing.assert_allclose(ours["ref_chosen_logps"], theirs["ref_chosen_logps"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours["ref_rejected_logps"], theirs["ref_rejected_logps"], rtol=0, atol=1e-5)
    if max_length < 100:  # truncation changed the long pair's value
        full = compute_ref_logps(load(tiny_dir)[0], tok, pairs.iloc[[3]], max_length=10_000, key="k", batch_size=1)
        assert full["ref_chosen_logps"][0] < ours["ref_chosen_logps"][3] - 1


def test_trl_drops_what_we_refuse(tiny_dir, tmp_path):
    """TRL silently drops a pair whose prompt fills max_length; we stop with its id instead."""
    from datasets import Dataset
    from trl import DPOTrainer

    from prefsweep.train.training import DataError

    pairs = make_pairs(4)
    pairs.loc[2, "prompt"] = render_prompt("Why? " * 40, HH)
    model, tok = load(tiny_dir)
    args = build_dpo_config(section("dpo", max_length=32), output_dir=tmp_path, seed=0, run_name="t",
                            report_to="none")
    trainer = DPOTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=Dataset.from_pandas(pairs[["prompt", "chosen", "rejected"]]))
    assert len(trainer.train_dataset) == 3  # TRL's behaviour: the pair is gone without a word
    with pytest.raises(DataError, match=r"1 of 4 prompts have at least dpo.max_length=32 tokens.*pair_id 'q2\|a>b'"):
        compute_ref_logps(model, tok, pairs, max_length=32, key="dpo.max_length", batch_size=4)


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
    ref = compute_ref_logps(model, tok, pairs, max_length=64, key="dpo.max_length", batch_size=8)
    data = attach_ref_logps(pairs, ref)[dpo_columns()]

    model, tok = load(tiny_dir)
    calls = {"grad": 0, "no_grad": 0}
    model.gpt_neox.register_forward_hook(
        lambda *_: calls.__setitem__("grad" if torch.is_grad_enabled() else "no_grad",
                                     calls["grad" if torch.is_grad_enabled() else "no_grad"] + 1))
    sec = section("dpo", lora=LORA if lora else {**LORA, "enabled": False})
    if lora:
        sec["learning_rate"] = 1e-2
    args = build_dpo_config(sec, output_dir=tmp_path_factory.mktemp("dpo"), seed=1, run_name="t", report_to="none")

    def forbidden(*a, **k):
        raise AssertionError("reference log-probs recomputed inside the DPO job")

    def hashed(*a, **k):
        raise AssertionError("TRL hashed the model although no precompute cache is used")

    import trl.trainer.dpo_trainer as dpo_module

    orig, orig_hash = DPOTrainer.compute_ref_log_probs, dpo_module.hash_module
    DPOTrainer.compute_ref_log_probs = forbidden
    dpo_module.hash_module = hashed
    try:
        trainer = make_dpo_trainer(model, tok, Dataset.from_pandas(data, preserve_index=False), args,
                                   peft_config=build_lora_config(sec["lora"], "dpo.lora"))
        assert dpo_module.hash_module is hashed  # restored after the trainer was built
        after_init = dict(calls)
        trainer.train()
    finally:
        DPOTrainer.compute_ref_log_probs = orig
        dpo_module.hash_module = orig_hash
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
    now = compute_ref_logps(policy, trainer.processing_class, pairs, max_length=64, key="dpo.max_length",
                            batch_size=8)
    margin_before = (ref["ref_chosen_logps"] - ref["ref_rejected_logps"]).to_numpy()
    margin_after = (now["ref_chosen_logps"] - now["ref_rejected_logps"]).to_numpy()
    # Implicit reward margin (DPO eq. 5 up to beta) grows for (almost) every pair.
    assert (margin_after - margin_before).mean() > 1.0
    assert ((margin_after - margin_before) > 0).mean() >= 0.9


def test_precomputed_trainer_requires_columns_and_no_ref_model(tiny_dir, tmp_path):
    from datasets import Dataset

    from prefsweep.train.trl_adapter import PrecomputedRefDPOTrainer

    model, tok = load(tiny_dir)
    args = build_dpo_config(section("dpo"), output_dir=tmp_path, seed=1, run_name="t", report_to="none")
    with pytest.raises(ValueError, match="ref_chosen_logps"):
        make_dpo_trainer(model, tok, Dataset.from_pandas(make_pairs(4)[["prompt", "chosen", "rejected"]]), args)
    with pytest.raises(ValueError, match="no ref_model"):
        PrecomputedRefDPOTrainer(model=model, ref_model=model, args=args)


# ---------------------------------------------------------------------------------------------
# Exact resume
# ---------------------------------------------------------------------------------------------


def sft_trainer(tiny_dir, out, lora: bool):
    from datasets import Dataset

    pairs = make_pairs(8)
    data = Dataset.from_dict({"prompt": list(pairs["prompt"]), "completion": list(pairs["chosen"])})
    sec = section("sft", num_train_epochs=1, per_device_train_batch_size=2, save_steps=2,
                  lora={**LORA, "lora_dropout": 0.1} if lora else {**LORA, "enabled": False})
    model, tok = load_model_and_tokenizer(tiny_dir, dtype="float32")
    args = build_sft_config(sec, output_dir=out, run_name="sft", report_to="none")
    return make_sft_trainer(model, tok, data, args, peft_config=build_lora_config(sec["lora"], "sft.lora"))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_holds_the_checkpoint_exactly(tiny_dir, tmp_path, lora):
    """What transformers' own Trainer gets wrong for GPT-NeoX (lm_head saved as embed_out)."""
    from peft import get_peft_model_state_dict

    first = sft_trainer(tiny_dir, tmp_path / "a", lora)
    first.train()
    ckpt = tmp_path / "a" / "checkpoint-2"
    second = sft_trainer(tiny_dir, tmp_path / "b", lora)
    second._load_from_checkpoint(str(ckpt))
    if lora:
        saved, now = load_file(ckpt / "adapter_model.safetensors"), get_peft_model_state_dict(second.model)
        assert saved.keys() == now.keys() and all(torch.equal(saved[k], now[k]) for k in saved)
    else:
        saved = load_file(ckpt / "model.safetensors")
        assert "embed_out.weight" in saved and "lm_head.weight" not in saved  # the renaming on save
        now = second.model.state_dict()
        assert torch.equal(now["lm_head.weight"], saved["embed_out.weight"])
        assert all(torch.equal(now[k], saved[k]) for k in saved if k != "embed_out.weight")
        # The Trainer's own load would have kept the init head: that is the bug.
        init = load_model_and_tokenizer(tiny_dir)[0].state_dict()["lm_head.weight"]
        assert not torch.equal(init, saved["embed_out.weight"])


def test_incomplete_checkpoints_raise(tiny_dir, tmp_path):
    trainer = sft_trainer(tiny_dir, tmp_path / "a", lora=False)
    trainer.train()
    ckpt = tmp_path / "a" / "checkpoint-2"
    weights = load_file(ckpt / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k != "embed_out.weight"}, ckpt / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(CheckpointLoadError, match=r"checkpoint-2: does not load completely .*missing keys.*lm_head"):
        load_full_checkpoint(trainer.model, ckpt)
    save_file({**weights, "extra.weight": torch.zeros(2)}, ckpt / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointLoadError, match=r"unexpected keys.*extra.weight"):
        load_full_checkpoint(trainer.model, ckpt)
    (ckpt / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointLoadError, match=r"cannot be read.*delete .*checkpoint-2"):
        load_full_checkpoint(trainer.model, ckpt)
    # Trainer's own warning path (FSDP / sharded loads) is an error too.
    from types import SimpleNamespace

    with pytest.raises(CheckpointLoadError, match="missing keys"):
        trainer._issue_warnings_after_load(SimpleNamespace(missing_keys=["lm_head.weight"], unexpected_keys=[]))


def test_adapter_check_catches_a_partial_adapter(tiny_dir, tmp_path):
    trainer = sft_trainer(tiny_dir, tmp_path / "a", lora=True)
    trainer.train()
    ckpt = tmp_path / "a" / "checkpoint-2"
    resumed = sft_trainer(tiny_dir, tmp_path / "b", lora=True)
    resumed._load_from_checkpoint(str(ckpt))
    check_adapter_loaded(resumed.model, ckpt)  # complete: no error
    saved = load_file(ckpt / "adapter_model.safetensors")
    dropped = sorted(saved)[0]
    save_file({k: v for k, v in saved.items() if k != dropped}, ckpt / "adapter_model.safetensors")
    fresh = sft_trainer(tiny_dir, tmp_path / "c", lora=True)
    with pytest.raises(CheckpointLoadError, match="adapter did not load completely"):
        fresh._load_from_checkpoint(str(ckpt))
