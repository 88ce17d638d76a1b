"""Conversion of full models, LoRA adapters, Trainer checkpoints and policy.pt to HF dirs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest_eval import load_script, make_tiny, tiny_model_dir  # noqa: F401
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefsweep.train.convert import (
    StateDictMismatch,
    convert,
    hub_source,
    import_policy,
    inspect_source,
    set_generation_ids,
)
from prefsweep.io import sha256_json

CONFIG = {"experiment": "t", "model": {"preset": "tiny"}}
PROBE = torch.tensor([[5, 17, 42, 99, 3, 250]])


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(PROBE).logits


def load(path):
    return AutoModelForCausalLM.from_pretrained(str(path)).eval()


def test_full_model_becomes_self_contained_dir(tiny_model_dir, tmp_path):
    out = convert(tiny_model_dir, tmp_path / "hf" / "sft", "sft", config=CONFIG)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "provenance.json"} <= names
    assert "tokenizer.json" in names
    assert not any(n.startswith(".") for n in (tmp_path / "hf").iterdir() if n.name != "sft")
    torch.testing.assert_close(logits(load(out)), logits(load(tiny_model_dir)), rtol=0, atol=0)
    gen = json.loads((out / "generation_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(out))
    assert gen["eos_token_id"] == tok.eos_token_id and gen["pad_token_id"] == tok.pad_token_id
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["model_id"] == "sft"
    assert prov["config_sha256"] == sha256_json(CONFIG)
    assert prov["source"] == str(tiny_model_dir) and prov["source_kind"] == "full"
    assert prov["step"] is None and prov["checkpoint"] is False
    assert prov["versions"]["transformers"]


def _lora_adapter(base_dir, adapter_dir):
    from peft import LoraConfig, get_peft_model

    base = load(base_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query_key_value"]))
    torch.manual_seed(3)
    with torch.no_grad():  # lora_B starts at zero; make the adapter change the model
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(str(adapter_dir))
    return model.eval()


@pytest.mark.parametrize("pass_base", [False, True])
def test_lora_adapter_is_merged(tiny_model_dir, tmp_path, pass_base):
    peft_model = _lora_adapter(tiny_model_dir, tmp_path / "adapter")
    expected = logits(peft_model)
    assert not torch.allclose(expected, logits(load(tiny_model_dir)))
    out = convert(tmp_path / "adapter", tmp_path / "hf", "dpo-maj-shared-n4-seed1", config=CONFIG,
                  base=tiny_model_dir if pass_base else None)
    assert not (out / "adapter_config.json").exists()
    merged = load(out)
    assert not any("lora" in k for k in merged.state_dict())
    torch.testing.assert_close(logits(merged), expected, rtol=1e-4, atol=1e-5)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["source_kind"] == "adapter" and prov["base"] == str(tiny_model_dir)


def test_adapter_without_base_asks_for_one(tiny_model_dir, tmp_path):
    _lora_adapter(tiny_model_dir, tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = None
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="--base"):
        convert(tmp_path / "adapter", tmp_path / "hf", "x")
    assert not (tmp_path / "hf").exists()


def test_checkpoint_records_step_and_run_info(tiny_model_dir, tmp_path):
    run = tmp_path / "dpo" / "maj" / "shared" / "n4" / "seed1"
    ckpt = run / "checkpoints" / "checkpoint-7"
    shutil.copytree(tiny_model_dir, ckpt)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 7}))
    (run / "final").mkdir()
    (run / "final" / "run_info.json").write_text(json.dumps(
        {"config": {}, "dataset_manifest_sha256": "abc123", "wandb_run_id": "run-xyz"}))
    assert inspect_source(ckpt).checkpoint
    out = convert(ckpt, tmp_path / "hf", "dpo-maj-shared-n4-seed1-step7", config=CONFIG,
                  run_info=run / "final" / "run_info.json")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["checkpoint"] is True and prov["step"] == 7
    assert prov["dataset_manifest_sha256"] == "abc123" and prov["wandb_run_id"] == "run-xyz"
    assert prov["run_info"].endswith("final/run_info.json")


def test_hub_ids_are_hub_sources_only_when_said(tmp_path, monkeypatch):
    assert hub_source("EleutherAI/pythia-70m").kind == "hub"
    assert hub_source("gpt2").name == "gpt2"
    with pytest.raises(ValueError, match="hub model id"):
        hub_source("../models/x")
    # A local path is never taken for a hub id, and a hub id never for a local path, whatever
    # the working directory holds (a `make run` leaves results/default/... behind).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="--hub-id"):
        inspect_source("results/default/train/sft/final")
    (tmp_path / "gpt2").mkdir()
    assert hub_source("gpt2").kind == "hub"


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert(tmp_path / "nope", tmp_path / "hf", "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        convert(tmp_path / "empty", tmp_path / "hf", "x")


def test_failed_conversion_keeps_previous_output(tiny_model_dir, tmp_path, monkeypatch):
    out = convert(tiny_model_dir, tmp_path / "hf", "sft", config=CONFIG)
    before = sorted(p.name for p in out.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("transformers.PreTrainedTokenizerBase.save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        convert(tiny_model_dir, tmp_path / "hf", "sft", config=CONFIG)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]


def test_pad_token_defaults_to_eos(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tok.pad_token = None
    model = load(tiny_model_dir)
    set_generation_ids(model, tok)
    assert tok.pad_token_id == tok.eos_token_id == model.generation_config.pad_token_id


def _policy_pt(path, state, step=123):
    torch.save({"step_idx": step, "state": state, "metrics": {"loss/train": 0.5}}, str(path))
    return path


def test_import_policy_loads_weights_into_base(tiny_model_dir, tmp_path):
    trained, _ = make_tiny(seed=1)  # different weights, same architecture
    pt = _policy_pt(tmp_path / "policy.pt", trained.state_dict())
    out = import_policy(pt, tiny_model_dir, tmp_path / "hf" / "baseline-ref", config=CONFIG)
    torch.testing.assert_close(logits(load(out)), logits(trained.eval()), rtol=0, atol=0)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["model_id"] == "baseline-ref" and prov["step"] == 123
    assert prov["metrics"] == {"loss/train": 0.5} and prov["source_kind"] == "policy_pt"


def test_import_policy_script_accepts_legacy_keys(tiny_model_dir, tmp_path):
    """A policy.pt from transformers 4.x: ``embed_out`` head and causal-mask buffers."""
    trained, _ = make_tiny(seed=1)
    state = dict(trained.state_dict())
    state["embed_out.weight"] = state.pop("lm_head.weight")
    state["gpt_neox.layers.0.attention.bias"] = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    state["gpt_neox.layers.0.attention.masked_bias"] = torch.tensor(-1e9)
    pt = _policy_pt(tmp_path / "policy.pt", state)
    load_script("import_policy").main(
        ["--policy", str(pt), "--base", str(tiny_model_dir), "--out", str(tmp_path / "out"), "--model-id", "m"])
    torch.testing.assert_close(logits(load(tmp_path / "out")), logits(trained.eval()), rtol=0, atol=0)
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["model_id"] == "m"


def test_import_policy_strict_keys(tiny_model_dir, tmp_path):
    trained, _ = make_tiny(seed=1)
    state = dict(trained.state_dict())
    del state["lm_head.weight"]
    state["transformer.h.0.mlp.weight"] = torch.zeros(2)
    state["gpt_neox.layers.1.mlp.dense_4h_to_h.bias"] = torch.zeros(5)
    pt = _policy_pt(tmp_path / "policy.pt", state)
    with pytest.raises(StateDictMismatch) as err:
        import_policy(pt, tiny_model_dir, tmp_path / "out")
    msg = str(err.value)
    assert "missing keys: lm_head.weight" in msg
    assert "unexpected keys: transformer.h.0.mlp.weight" in msg
    assert "mismatched shapes: gpt_neox.layers.1.mlp.dense_4h_to_h.bias (policy (5,), model (32,))" in msg
    assert not (tmp_path / "out").exists()


def test_import_policy_refuses_pickled_objects(tiny_model_dir, tmp_path):
    import argparse  # any class outside torch's weights_only allow-list

    torch.save({"step_idx": 1, "state": {}, "metrics": argparse.Namespace(lr=1.0)}, str(tmp_path / "policy.pt"))
    with pytest.raises(ValueError, match="weights_only=True"):
        import_policy(tmp_path / "policy.pt", tiny_model_dir, tmp_path / "out")


def test_convert_script(tiny_model_dir, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(CONFIG))
    load_script("convert").main(["--config-json", str(cfg), "--source", str(tiny_model_dir),
                                 "--out", str(tmp_path / "hf" / "base"), "--model-id", "base"])
    prov = json.loads((tmp_path / "hf" / "base" / "provenance.json").read_text())
    assert prov["model_id"] == "base" and prov["config_sha256"] == sha256_json(CONFIG)
