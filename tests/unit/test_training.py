"""Training stage: config sections -> TRL configs, data checks, checkpoints, the SFT/DPO jobs, wandb.

TRL internals (reference log-probs vs TRL's own, no reference forward, exact resume) are tested in
``test_trl_adapter.py``; kill-and-resume, disk full and determinism in
``tests/reliability/test_training_faults.py``.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prefsweep.config import ConfigError, job_config
from prefsweep.io import atomic_write_parquet
from prefsweep.data.prompts import render_prompt

HH = {"style": "hh"}  # prompt_format of the default config
from prefsweep.train.reflogps import attach_ref_logps, union_pairs
from prefsweep.tracking import finish_wandb, scrub_secrets, secret_values, start_wandb, wandb_dir, wandb_setup
from prefsweep.train.checkpoints import (
    complete_checkpoint_steps, is_complete_checkpoint, last_complete_checkpoint, prepare_checkpoint_dir,
    prune_resume_state, run_fingerprint,
)
from prefsweep.train.training import build_dpo_config, build_lora_config, build_sft_config, resolve_section
from tests.conftest import REPO, load_config
from tests.unit.train_helpers import (
    build_tiny_dir, dpo_argv, load_script, make_pairs, sft_argv, write_pairs_and_manifest, write_sft_corpus,
)

CONFIG = load_config()
SFT = {**CONFIG["sft"], "max_length": 64, "save_steps": 1000, "logging_steps": 1000}
DPO = {k: v for k, v in CONFIG["dpo"].items() if k != "seeds"} | {"max_length": 64, "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_dir(tmp_path_factory.mktemp("tiny"))


def write_config(path: Path, step: str, **section) -> Path:
    """The job slice of ``step`` (schema defaults) with ``section`` values, wandb off, as a file."""
    config = job_config(CONFIG, step)
    config[step].update(section)
    path.write_text(json.dumps(config))
    return path


# ---------------------------------------------------------------------------------------------
# Config sections -> TRL configs: keys from the schema, no defaults of our own
# ---------------------------------------------------------------------------------------------


def test_sections_reject_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match=r"dpo: unknown keys \['learning_rat'\]"):
        resolve_section({**DPO, "learning_rat": 1.0}, "dpo")
    with pytest.raises(ConfigError, match=r"dpo: missing keys \['max_length'\].*python -m prefsweep.config dpo"):
        resolve_section({k: v for k, v in DPO.items() if k != "max_length"}, "dpo")
    with pytest.raises(ConfigError, match=r"sft: unknown keys \['beta'\]"):
        resolve_section({**SFT, "beta": 0.2}, "sft")  # beta is a DPO key only
    with pytest.raises(ConfigError, match=r"sft: missing keys \['seed'\]"):
        resolve_section({k: v for k, v in SFT.items() if k != "seed"}, "sft")
    with pytest.raises(ConfigError, match="warmup_ratio"):
        resolve_section({**DPO, "warmup_ratio": 1.5}, "dpo")
    with pytest.raises(ConfigError, match=r"dpo.lora: unknown keys \['rank'\]"):
        resolve_section({**DPO, "lora": {**DPO["lora"], "rank": 4}}, "dpo")
    with pytest.raises(ConfigError, match=r"sft.lora: missing keys \['r'\]"):
        build_lora_config({k: v for k, v in SFT["lora"].items() if k != "r"}, "sft.lora")
    # dpo.seeds shapes the DAG and is not in a job's slice: allowed, never required, never kept.
    assert "seeds" not in resolve_section({**DPO, "seeds": [1, 2]}, "dpo")
    assert "seeds" not in job_config(CONFIG, "dpo")["dpo"]


def test_every_schema_key_reaches_the_section():
    """Every key but the DAG's (seeds) and the runtime-only ones (logging_steps: from the job's
    environment, not its fingerprint)."""
    from prefsweep.config import RUNTIME_KEYS, schema_properties

    def kept(step):
        return tuple(k for k in schema_properties(step) if k != "seeds" and f"{step}.{k}" not in RUNTIME_KEYS)

    assert tuple(resolve_section(CONFIG["sft"], "sft")) == kept("sft")
    assert tuple(resolve_section(CONFIG["dpo"], "dpo")) == kept("dpo")


def test_no_schema_default_repeated_in_training_modules():
    """No dict of config keys with literal values, no keyword default and no ``.get(key, default)``
    for a config key: the schema is the only home of defaults."""
    from prefsweep.config import schema_properties

    keys = set(schema_properties("sft")) | set(schema_properties("dpo")) | set(schema_properties("sft.lora"))
    keys |= set(schema_properties("model.tiny"))
    for name in ("train/training", "train/checkpoints", "train/jobs", "train/trl_adapter", "train/reflogps",
                 "train/tiny", "eval/pair_accuracy"):
        tree = ast.parse((REPO / "prefsweep" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                literal = {k.value for k, v in zip(node.keys, node.values)
                           if isinstance(k, ast.Constant) and isinstance(v, ast.Constant | ast.List | ast.Dict)}
                assert not literal & keys, f"{name}.py: literal values for config keys {literal & keys}"
            if isinstance(node, ast.arguments):
                defaults = node.args[len(node.args) - len(node.defaults):] + [
                    a for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
                named = {a.arg for a in defaults} & keys
                assert not named, f"{name}.py: keyword defaults for config keys {named}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
                key = node.args[0]
                if isinstance(key, ast.Constant) and key.value in keys and len(node.args) > 1:
                    raise AssertionError(f"{name}.py: .get({key.value!r}, default)")


def test_dpo_config_uses_section_values(tmp_path):
    args = build_dpo_config({**DPO, "warmup_ratio": 0.1, "save_steps": 7, "loss_type": "ipo", "loss_weights": None},
                            output_dir=tmp_path, seed=3, run_name="dpo-maj-prompt-n64-seed3", report_to="none")
    assert args.loss_type == ["ipo"]
    # the default's DPO + NLL of the chosen responses (RPO) reaches TRL as its loss list
    rpo = build_dpo_config(DPO, output_dir=tmp_path, seed=3, run_name="rpo", report_to="none")
    assert (rpo.loss_type, rpo.loss_weights) == (["sigmoid", "sft"], [1.0, 1.0])
    assert args.learning_rate == 3e-3 and args.beta == DPO["beta"] and args.max_length == 64
    assert args.num_train_epochs == DPO["num_train_epochs"]
    assert args.per_device_train_batch_size == DPO["per_device_train_batch_size"]
    assert args.warmup_steps == pytest.approx(0.1)  # transformers 5: a float < 1 is the warmup ratio
    assert args.seed == 3 and args.data_seed == 3
    assert args.save_steps == 7 and args.save_total_limit is None and not args.save_only_model
    assert args.precompute_ref_log_probs is True
    assert args.bf16 is False and args.gradient_checkpointing is False  # TRL defaults would be True
    assert args.report_to in ([], "none", ["none"])
    assert args.output_dir == str(tmp_path) and args.run_name == "dpo-maj-prompt-n64-seed3"


def test_bf16_trains_on_a_cpu_without_a_gpu(tmp_path, monkeypatch):
    """The paper config's bf16: true on a machine without CUDA: transformers refuses bf16 unless
    told to train on the CPU (then CPU bf16 autocast); on a GPU nothing changes."""
    import prefsweep.train.training as training

    monkeypatch.setattr(training, "_cuda_available", lambda: False)
    args = build_dpo_config({**DPO, "bf16": True}, output_dir=tmp_path, seed=1, run_name="r", report_to="none")
    assert args.bf16 is True and args.use_cpu is True
    args = build_dpo_config(DPO, output_dir=tmp_path, seed=1, run_name="r", report_to="none")
    assert args.use_cpu is False


def test_sft_config_completion_only_and_seeded(tmp_path):
    args = build_sft_config({**SFT, "seed": 5}, output_dir=tmp_path, run_name="sft", report_to="none")
    assert args.completion_only_loss is True and args.seed == 5 and args.data_seed == 5 and args.max_length == 64


def test_lora_config():
    from peft import LoraConfig

    lora = CONFIG["dpo"]["lora"]
    assert build_lora_config({**lora, "enabled": False}, "dpo.lora") is None
    cfg = build_lora_config({**lora, "enabled": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                             "target_modules": ["query_key_value"]}, "dpo.lora")
    assert isinstance(cfg, LoraConfig) and cfg.r == 4 and cfg.lora_alpha == 8
    assert set(cfg.target_modules) == {"query_key_value"} and cfg.task_type == "CAUSAL_LM"


def test_schema_resolved_config_is_accepted(tmp_path):
    """Every key the schema allows in sft/dpo/lora is one these builders know."""
    sft = build_sft_config(CONFIG["sft"], output_dir=tmp_path, run_name="sft", report_to="none")
    dpo = build_dpo_config(CONFIG["dpo"], output_dir=tmp_path, seed=1, run_name="d", report_to="none")
    assert sft.max_length == CONFIG["sft"]["max_length"] and dpo.beta == CONFIG["dpo"]["beta"]
    assert sft.seed == CONFIG["sft"]["seed"]
    for section in ("sft", "dpo"):
        build_lora_config(CONFIG[section]["lora"], f"{section}.lora")
        build_lora_config({**CONFIG[section]["lora"], "enabled": True}, f"{section}.lora")


# ---------------------------------------------------------------------------------------------
# Reference log-probs tables
# ---------------------------------------------------------------------------------------------


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
    fp = run_fingerprint({"dpo": DPO}, {"seed": 1}, {"pairs": data})
    ckpt = tmp_path / "checkpoints"
    assert prepare_checkpoint_dir(ckpt, fp) is None  # fresh: fingerprint written
    fake_checkpoint(ckpt, 10)
    fake_checkpoint(ckpt, 20)
    fake_checkpoint(ckpt, 30, complete=False)  # killed while saving
    assert prepare_checkpoint_dir(ckpt, fp) == ckpt / "checkpoint-20"
    assert not (ckpt / "checkpoint-30").exists()

    # Same everything: same fingerprint. Other data, config or seed: start over, cleanly.
    assert run_fingerprint({"dpo": DPO}, {"seed": 1}, {"pairs": data})["sha256"] == fp["sha256"]
    other_seed = run_fingerprint({"dpo": DPO}, {"seed": 2}, {"pairs": data})
    other_cfg = run_fingerprint({"dpo": {**DPO, "beta": 0.5}}, {"seed": 1}, {"pairs": data})
    data.write_bytes(b"v2")
    other_data = run_fingerprint({"dpo": DPO}, {"seed": 1}, {"pairs": data})
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


# ---------------------------------------------------------------------------------------------
# The jobs (scripts): errors before training, outputs, run_info
# ---------------------------------------------------------------------------------------------


def dpo_inputs(root: Path, tiny_dir: Path, pairs: pd.DataFrame, **section) -> list[str]:
    """pairs, manifest, config (dpo slice) and reference log-probs (ref_logps script) in ``root``."""
    config = write_config(root / "config.json", "dpo", **{**DPO, **section})
    pairs_path, manifest = write_pairs_and_manifest(root, pairs)
    return dpo_argv(root, config=config, model=tiny_dir, pairs=pairs_path, manifest=manifest,
                    ref_logps=root / "ref.parquet", n_pairs=len(pairs), out=root / "final",
                    checkpoints=root / "ckpt")


def test_dpo_script_missing_ref_logps_is_an_error(tiny_dir, tmp_path):
    argv = dpo_inputs(tmp_path, tiny_dir, make_pairs(6))
    ref = pd.DataFrame({"pair_id": [f"q{i}|a>b" for i in range(4)], "ref_chosen_logps": -1.0,
                        "ref_rejected_logps": -2.0})
    atomic_write_parquet(tmp_path / "ref.parquet", ref)
    with pytest.raises(SystemExit, match=r"ref.parquet: 2 of 6 pairs have no reference log-probs"):
        load_script("dpo").main(argv)
    assert not (tmp_path / "final").exists()


def test_dpo_script_trains_and_records_its_run(tiny_dir, tmp_path):
    argv = dpo_inputs(tmp_path, tiny_dir, make_pairs(8), num_train_epochs=1, per_device_train_batch_size=4,
                      save_steps=1)
    load_script("ref_logps").main(["--config-json", str(tmp_path / "config.json"), "--model", str(tiny_dir),
                                   "--pairs", str(tmp_path / "pairs.parquet"), "--out", str(tmp_path / "ref.parquet"),
                                   "--threads", "1"])
    load_script("dpo").main(argv)
    info = json.loads((tmp_path / "final" / "run_info.json").read_text())
    assert info["step"] == "dpo" and info["global_step"] == 2 and info["resumed_from"] is None
    assert info["job"] == {"arm": "maj", "matching": "shared", "size": 8, "seed": 1}
    assert info["n_pairs"] == info["n_examples"] == info["n_examples_trained"] == 8
    assert set(info["inputs"]) == {"model", "pairs"} and info["adapter"] is False
    assert complete_checkpoint_steps(tmp_path / "ckpt") == [1, 2]
    assert (tmp_path / "final" / "model.safetensors").exists()


def long_prompt_pairs() -> pd.DataFrame:
    pairs = make_pairs(6)
    for i in (1, 4):
        pairs.loc[i, "prompt"] = render_prompt("Tell me everything about this. " * 12, HH)
    return pairs


def test_prompt_longer_than_max_length_stops_sft(tiny_dir, tmp_path):
    corpus = tmp_path / "sft.jsonl"
    pairs = long_prompt_pairs()
    corpus.write_text("".join(json.dumps({"prompt": p, "completion": c, "prompt_id": i}) + "\n"
                              for p, c, i in zip(pairs["prompt"], pairs["chosen"], pairs["prompt_id"])))
    argv = sft_argv(config=write_config(tmp_path / "c.json", "sft", **SFT), model=tiny_dir, corpus=corpus,
                    out=tmp_path / "out", checkpoints=tmp_path / "ckpt")
    with pytest.raises(SystemExit) as exc:
        load_script("sft").main(argv)
    msg = str(exc.value)
    assert msg.startswith(f"{corpus}: 2 of 6 prompts have at least sft.max_length=64 tokens")
    assert "prompt_id 'q1' (" in msg and "prompt_id 'q4' (" in msg and "raise sft.max_length" in msg
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()  # stopped before training


def test_prompt_longer_than_max_length_stops_ref_logps_and_dpo(tiny_dir, tmp_path):
    argv = dpo_inputs(tmp_path, tiny_dir, long_prompt_pairs())
    with pytest.raises(SystemExit, match=r"pairs.parquet: 2 of 6 prompts have at least dpo.max_length=64 tokens.*"
                                         r"pair_id 'q1\|a>b' \(\d+ tokens\), pair_id 'q4\|a>b'"):
        load_script("ref_logps").main(["--config-json", str(tmp_path / "config.json"), "--model", str(tiny_dir),
                                       "--pairs", str(tmp_path / "pairs.parquet"),
                                       "--out", str(tmp_path / "ref.parquet")])
    assert not (tmp_path / "ref.parquet").exists()
    ref = pd.DataFrame({"pair_id": [f"q{i}|a>b" for i in range(6)], "ref_chosen_logps": -1.0,
                        "ref_rejected_logps": -2.0})
    atomic_write_parquet(tmp_path / "ref.parquet", ref)
    with pytest.raises(SystemExit, match=r"pairs.parquet: 2 of 6 prompts .*dpo.max_length=64.*prompt_id 'q1'"):
        load_script("dpo").main(argv)
    assert not (tmp_path / "final").exists() and not (tmp_path / "ckpt").exists()


def test_max_length_beyond_the_model_context_is_an_error(tiny_dir, tmp_path):
    corpus = write_sft_corpus(tmp_path / "sft.jsonl", 4)
    argv = sft_argv(config=write_config(tmp_path / "c.json", "sft", **{**SFT, "max_length": 1000}), model=tiny_dir,
                    corpus=corpus, out=tmp_path / "out", checkpoints=tmp_path / "ckpt")
    with pytest.raises(SystemExit, match=r"sft.max_length: 1000 exceeds the context of .*max_position_embeddings 256"):
        load_script("sft").main(argv)


def test_sft_corpus_errors_name_file_and_record(tiny_dir, tmp_path):
    corpus = tmp_path / "sft.jsonl"
    corpus.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    argv = sft_argv(config=write_config(tmp_path / "c.json", "sft", **SFT), model=tiny_dir, corpus=corpus,
                    out=tmp_path / "out", checkpoints=tmp_path / "ckpt")
    with pytest.raises(SystemExit, match=r"sft.jsonl: record 2: \['completion'\] missing"):
        load_script("sft").main(argv)
    corpus.write_text("")
    with pytest.raises(SystemExit, match="sft.jsonl: empty SFT corpus"):
        load_script("sft").main(argv)
    write_sft_corpus(corpus, 4)
    (tmp_path / "c.json").write_text(json.dumps({"sft": {**SFT, "lr": 1}}))
    with pytest.raises(SystemExit, match=r"sft: unknown keys \['lr'\]"):
        load_script("sft").main(argv)


def test_sft_corpus_from_jsonl_or_an_arms_pairs(tmp_path):
    from prefsweep.io import atomic_write_jsonl
    from prefsweep.train.jobs import read_sft_corpus

    atomic_write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "P", "completion": " a", "prompt_id": "p1"}])
    assert read_sft_corpus(tmp_path / "sft.jsonl") == ([{"prompt": "P", "completion": " a", "prompt_id": "p1"}],
                                                       "prompt_id")
    pairs = pd.DataFrame({"prompt_id": ["p", "p", "q"], "prompt": ["P", "P", "Q"], "chosen": [" a", " a", " b"],
                          "rejected": [" x", " y", " z"]})
    pairs.to_parquet(tmp_path / "pairs.parquet")
    records, _ = read_sft_corpus(tmp_path / "pairs.parquet")  # each distinct (prompt, chosen) once
    assert records == [{"prompt": "P", "completion": " a", "prompt_id": "p"},
                       {"prompt": "Q", "completion": " b", "prompt_id": "q"}]


def test_sft_script_with_lora_writes_merged_model(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    corpus = write_sft_corpus(tmp_path / "sft.jsonl", 8)
    section = {**SFT, "num_train_epochs": 2, "per_device_train_batch_size": 4, "learning_rate": 3e-3,
               "lora": {**SFT["lora"], "enabled": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                        "target_modules": None}}
    os.environ["OPENAI_API_KEY"] = "sk-test-do-not-log-0001"
    try:
        config = {**job_config(CONFIG, "sft"), "sft": section, "eval": {"judge": {"api_key": "sk-inline-secret"}}}
        (tmp_path / "config.json").write_text(json.dumps(config))
        load_script("sft").main(sft_argv(config=tmp_path / "config.json", model=tiny_dir, corpus=corpus,
                                         out=tmp_path / "sft", checkpoints=tmp_path / "ckpt"))
    finally:
        del os.environ["OPENAI_API_KEY"]
    out = tmp_path / "sft"
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    key = "gpt_neox.layers.0.attention.query_key_value.weight"
    assert not torch.equal(merged.state_dict()[key], base.state_dict()[key])
    info = json.loads((out / "run_info.json").read_text())
    assert info["lora_merged"] and not info["adapter"] and info["global_step"] == 4
    assert info["config"]["eval"]["judge"]["api_key"] == "<redacted>"
    assert info["seed"] == CONFIG["sft"]["seed"] and set(info["inputs"]) == {"model", "corpus"}
    assert b"sk-test-do-not-log-0001" not in (out / "run_info.json").read_bytes()
    assert (tmp_path / "ckpt" / "fingerprint.json").exists()


# ---------------------------------------------------------------------------------------------
# wandb (prefsweep.tracking)
# ---------------------------------------------------------------------------------------------


def test_wandb_setup_env_and_names(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    cfg = {"wandb": {"mode": "offline", "project": "proj"}}
    s = wandb_setup(cfg, group="maj-prompt-n64", name="dpo-maj-prompt-n64-seed2", job_type="dpo", run_id="r1",
                    directory=tmp_path / "wandb")
    assert s.env["WANDB_MODE"] == "offline" and s.env["WANDB_PROJECT"] == "proj"
    assert s.env["WANDB_DIR"] == str(tmp_path / "wandb") and s.env["WANDB_RUN_GROUP"] == "maj-prompt-n64"
    assert s.report_to == "wandb" and s.name == "dpo-maj-prompt-n64-seed2"
    # No config, no environment: the schema's defaults.
    schema = CONFIG["wandb"]
    bare = wandb_setup({}, group="g", name="n", job_type="dpo", run_id="r", directory=None)
    assert (bare.mode, bare.project, bare.entity) == (schema["mode"], schema["project"], schema["entity"])
    assert "WANDB_DIR" not in bare.env
    # the workflow passes wandb settings through the environment (config slices have none)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_setup({}, group="g", name="n", job_type="dpo", run_id="r", directory=None).report_to == "none"
    off = wandb_setup({"wandb": {"mode": "disabled"}}, group="g", name="n", job_type="dpo", run_id="r", directory=None)
    assert off.report_to == "none"
    with pytest.raises(ValueError, match="wandb.mode"):
        wandb_setup({"wandb": {"mode": "sometimes"}}, group="g", name="n", job_type="dpo", run_id="r", directory=None)
    with pytest.raises(KeyError, match="unknown"):
        wandb_setup({"wandb": {"mode": "offline", "team": "x"}}, group="g", name="n", job_type="dpo", run_id="r",
                    directory=None)
    team = wandb_setup({"wandb": {"entity": "lab", "project": "p"}}, group="g", name="n", job_type="dpo", run_id="r",
                       directory=None)
    assert team.entity == "lab" and team.env["WANDB_ENTITY"] == "lab"
    assert wandb_dir({"WANDB_DIR": "results/x/wandb"}) == Path("results/x/wandb") and wandb_dir({}) is None


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
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-424242")
    setup = wandb_setup({"wandb": {"mode": "offline", "project": "p"}}, group="maj-size-n64",
                        name="dpo-maj-size-n64-seed1", job_type="dpo", run_id="test-run-1",
                        directory=tmp_path / "exp" / "wandb")
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
