"""The tiny local model: tokenizer training, model building, save/load, the base_model script."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from prefsweep.data.prompts import render_completion, render_prompt

HH = {"style": "hh"}  # prompt_format of the default config
from prefsweep.config import job_config, schema_properties
from prefsweep.train.tiny import EOS_TOKEN, PAD_TOKEN, TINY_INIT_SEED, build_tiny_model, tiny_keys, train_tokenizer
from tests.conftest import load_config

TINY = {"vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}

TEXTS = [render_prompt(f"How do I {v} the {n}?", HH) + render_completion(f"Just {v} the {n} carefully, {i} times.", HH)
         for i, (v, n) in enumerate([("cook", "rice"), ("wash", "car"), ("fold", "shirt"), ("paint", "fence")] * 5)]


def load_script(repo, name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", repo / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tokenizer_special_tokens_and_roundtrip():
    tok = train_tokenizer(TEXTS, 300)
    assert len(tok) <= 300
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == (EOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
    assert tok.eos_token_id != tok.pad_token_id
    text = "Unseen bytes: café ✓ 42\n\nHuman:"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: nothing is unknown
    # Deterministic: same texts, same vocabulary.
    assert train_tokenizer(TEXTS, 300).get_vocab() == tok.get_vocab()


def test_prompt_is_token_prefix_of_prompt_plus_completion():
    """DPO/SFT split prompt and completion at the token level; the boundary must not merge."""
    tok = train_tokenizer(TEXTS, 400)
    for text in TEXTS[:4]:
        prompt, completion = text.split("Assistant:")
        prompt += "Assistant:"
        ids = tok(prompt)["input_ids"]
        assert tok(prompt + completion + tok.eos_token)["input_ids"][: len(ids)] == ids


def test_build_tiny_model_is_seeded_and_sized():
    tok = train_tokenizer(TEXTS, 300)
    rng_before = torch.random.get_rng_state()
    a = build_tiny_model(tok, TINY, seed=0)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG untouched
    b = build_tiny_model(tok, TINY, seed=0)
    c = build_tiny_model(tok, TINY, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    cfg = a.config
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers) == (512, 32, 1)
    assert (cfg.eos_token_id, cfg.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)


def test_tiny_config_rejects_unknown_and_missing_keys():
    tok = train_tokenizer(TEXTS, 300)
    assert tiny_keys() == schema_properties("model.tiny") and set(TINY) == set(tiny_keys())
    with pytest.raises(KeyError, match="unknown"):
        build_tiny_model(tok, {**TINY, "hidden": 3}, seed=0)
    with pytest.raises(KeyError, match="unknown.*seed"):  # not a config key: the schema has none
        build_tiny_model(tok, {**TINY, "seed": 1}, seed=0)
    with pytest.raises(KeyError, match=r"missing keys \['hidden_size'\]"):
        build_tiny_model(tok, {k: v for k, v in TINY.items() if k != "hidden_size"}, seed=0)
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_model(tok, {**TINY, "vocab_size": 100}, seed=0)


def test_save_and_load_through_auto_classes(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = train_tokenizer(TEXTS, 300, model_max_length=128)
    model = build_tiny_model(tok, TINY, seed=0)
    tok.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert tok2(TEXTS[0])["input_ids"] == tok(TEXTS[0])["input_ids"]
    assert (tok2.eos_token, tok2.pad_token, tok2.model_max_length) == (EOS_TOKEN, PAD_TOKEN, 128)
    ids = torch.tensor([tok(TEXTS[0])["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, model2(ids).logits)


def test_base_model_script_tiny_pretrains_then_hf_copy(repo, tmp_path):
    """preset tiny builds a model and pretrains it (a base model, not noise); preset hf (same
    loading code as a hub id) copies a local dir."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    corpus = tmp_path / "pretrain.jsonl"
    corpus.write_text("".join(json.dumps({"prompt": t.split(" Just")[0], "completion": " Just" + t.split(" Just")[1],
                                          "prompt_id": str(i)}) + "\n" for i, t in enumerate(TEXTS)))
    config = job_config(load_config(), "base_model")  # what the rule passes: schema defaults filled
    config["model"] = {"preset": "tiny", "name_or_path": None, "tiny": {**TINY, "vocab_size": 320}}
    config["pretrain"].update(num_train_epochs=4, per_device_train_batch_size=4, max_length=64)
    cfg_path = tmp_path / "base.json"
    cfg_path.write_text(json.dumps(config))
    script = load_script(repo, "base_model")
    script.main(["--config-json", str(cfg_path), "--pretrain-corpus", str(corpus), "--out", str(tmp_path / "base"),
                 "--checkpoints", str(tmp_path / "ck")])
    info = json.loads((tmp_path / "base" / "run_info.json").read_text())
    assert info["preset"] == "tiny" and info["step"] == "pretrain" and info["global_step"] == 20
    assert info["config"]["model"]["tiny"]["vocab_size"] == 320 and "transformers" in info["versions"]

    # Pretrained from the random model built with TINY_INIT_SEED: it models the corpus far better.
    tok = AutoTokenizer.from_pretrained(tmp_path / "base")
    random_init = build_tiny_model(tok, {**TINY, "vocab_size": 320}, seed=TINY_INIT_SEED).eval()
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base").eval()
    ids = tok(TEXTS[:4], return_tensors="pt", padding=True)
    labels = ids.input_ids.masked_fill(ids.attention_mask == 0, -100)
    with torch.no_grad():
        loss_random = random_init(**ids, labels=labels).loss.item()
        loss_base = base(**ids, labels=labels).loss.item()
    assert loss_base < 0.7 * loss_random, (loss_base, loss_random)

    config["model"] = {"preset": "hf", "name_or_path": str(tmp_path / "base"), "tiny": TINY}
    cfg_path.write_text(json.dumps(config))
    script.main(["--config-json", str(cfg_path), "--out", str(tmp_path / "copy")])
    assert json.loads((tmp_path / "copy" / "run_info.json").read_text())["source"] == str(tmp_path / "base")
    a = base.state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "copy").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ta, tb = AutoTokenizer.from_pretrained(tmp_path / "base"), AutoTokenizer.from_pretrained(tmp_path / "copy")
    assert ta.get_vocab() == tb.get_vocab() and tb.pad_token == PAD_TOKEN
