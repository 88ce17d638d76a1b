"""Job memory and runtime requests (prefsweep.cost.resources) scale with the model and the data."""

from __future__ import annotations

import json

import pytest

from prefsweep.cost import resources as R
from prefsweep.eval.judges import electorate
from tests.conftest import load_config

#: The paper config: the shared base, then SHP (merged in that order).
PAPER = ("config/paper/base.yaml", "config/paper/shp.yaml")


def config(*extra: str, n_params=None) -> dict:
    cfg = load_config(*extra)
    cfg["model"]["n_params"] = n_params  # the explicit override (schema key model.n_params)
    return cfg


@pytest.mark.parametrize("name, n", [
    ("EleutherAI/pythia-2.8b", 2_800_000_000),
    ("EleutherAI/pythia-410m-deduped", 410_000_000),
    ("Qwen/Qwen2.5-0.5B-Instruct", 500_000_000),
    ("meta-llama/Llama-2-7b-hf", 7_000_000_000),
    ("/scratch/models/pythia-6.9b", 6_900_000_000),
    ("gpt2", None),
])
def test_params_from_name(name, n):
    assert R.params_from_name(name) == n


def test_tiny_preset_count_is_the_real_model_count():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = config()
    t = cfg["model"]["tiny"]
    model = GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=t["vocab_size"], hidden_size=t["hidden_size"], num_hidden_layers=t["num_hidden_layers"],
        num_attention_heads=t["num_attention_heads"], intermediate_size=t["intermediate_size"],
        max_position_embeddings=t["max_position_embeddings"],
    ))
    assert R.model_params(cfg) == model.num_parameters()


def test_explicit_override_wins_and_unknown_size_names_the_key(tmp_path):
    cfg = config(*PAPER, n_params=1.4e9)
    assert R.model_params(cfg) == 1_400_000_000
    cfg = config(*PAPER)
    cfg["model"]["name_or_path"] = str(tmp_path / "my-model")
    with pytest.raises(ValueError, match=r"my-model.*model\.n_params"):
        R.model_params(cfg)


def test_local_dir_size_from_its_config_json(tmp_path):
    d = tmp_path / "checkpoint"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(
        {"vocab_size": 50304, "hidden_size": 2560, "num_hidden_layers": 32, "intermediate_size": 10240}
    ))
    cfg = config(*PAPER)
    cfg["model"]["name_or_path"] = str(d)
    # Pythia-2.8B's shape: 2.775e9 parameters (its model card)
    assert R.model_params(cfg) == pytest.approx(2.775e9, rel=0.01)


def test_paper_scale_jobs_ask_for_hours_and_tens_of_gb():
    cfg = config(*PAPER)
    dpo = R.job_resources(cfg, "dpo", n_pairs=64000)
    # fp32 weights twice on the host (2 x 11.2 GB) + base; 6 N tokens of compute at 5e13 FLOP/s
    assert 25000 <= dpo["mem_mb"] <= 40000
    assert 8 * 60 <= dpo["runtime"] <= 16 * 60
    assert R.job_resources(cfg, "convert")["mem_mb"] > dpo["mem_mb"]  # merge holds a third copy


def test_tiny_jobs_ask_for_the_minimum():
    cfg = config("tests/slurm/config.yaml")
    for rule in R.RULES:
        res = R.job_resources(cfg, rule)
        assert res == {"mem_mb": 5000, "runtime": R.RUNTIME_STEP_MIN}, rule


def test_runtime_grows_with_pairs_and_model():
    cfg = config(*PAPER)
    small, large = (R.job_resources(cfg, "dpo", n_pairs=n)["runtime"] for n in (4000, 64000))
    assert large > 4 * small
    big = R.job_resources(cfg, "sft_baseline", name_or_path="EleutherAI/pythia-6.9b")
    assert big["mem_mb"] > R.job_resources(cfg, "sft")["mem_mb"]
    assert big["runtime"] > R.job_resources(cfg, "sft_baseline")["runtime"]


def test_lora_saves_less_than_full_finetuning():
    cfg = config(*PAPER)
    cfg["dpo"]["save_steps"] = 10
    lora = R.job_resources(cfg, "dpo", n_pairs=64000)["runtime"]
    cfg["dpo"]["lora"]["enabled"] = False
    full = R.job_resources(cfg, "dpo", n_pairs=64000)["runtime"]
    assert full > lora


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="judge"):
        R.job_resources(config(), "judge")


def test_resource_function_reads_the_wildcards():
    from snakemake.iocontainers import Wildcards

    cfg = config(*PAPER)
    mem = R.resource_function(cfg, "dpo", "runtime")
    assert mem(Wildcards(fromdict={"arm": "sc", "matching": "size", "size": "1000", "seed": "1"})) == R.job_resources(cfg, "dpo", 1000)["runtime"]
    conv = R.resource_function(cfg, "convert", "mem_mb")
    baseline = conv(Wildcards(fromdict={"model_id": "baseline-pythia-6.9b"}))
    assert baseline == R.job_resources(cfg, "convert", name_or_path="EleutherAI/pythia-6.9b")["mem_mb"]
    assert conv(Wildcards(fromdict={"model_id": "dpo-sc-size-n1000-seed1"})) == R.job_resources(cfg, "convert")["mem_mb"]
    sftb = R.resource_function(cfg, "sft_baseline", "mem_mb")
    assert sftb(Wildcards(fromdict={"name": "pythia-6.9b-sft-maj"})) == R.job_resources(cfg, "sft_baseline", name_or_path="EleutherAI/pythia-6.9b")["mem_mb"]


def test_judge_runtime_follows_the_requests_an_llm_judge_sends():
    paper = config(*PAPER)
    # 500 questions x 2 orders at 10 s, 8 at a time: 1250 s -> 21 min, + 1 to start
    assert R.judge_runtime(paper) == 22
    paper["eval"]["judge"]["parallel"] = 16
    assert R.judge_runtime(paper) == 12
    paper["eval"]["checkpoints"] = {"sizes": None, "n_questions": 100}
    assert R.judge_runtime(paper, checkpoint=True) == 4 and R.judge_runtime(paper) == 12
    # the electorate scores texts locally: a few minutes whatever the questions
    default = config()
    default["data"]["n_eval_prompts"] = 5000
    assert R.judge_runtime(default) == electorate.RUNTIME_MIN
