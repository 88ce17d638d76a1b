"""The plan (prefsweep/cost/plan.py): memory model, steps and checkpoints, judge calls, cost, disk,
and the two guards it shows (eval.judge.max_api_calls, eval.checkpoints)."""

from __future__ import annotations

import copy
import json

import pytest

from prefsweep import paths as P
from prefsweep.cost import memory as mem
from prefsweep.cost import plan as pl
from prefsweep.config import ConfigError, checkpoint_eval, validate_config
from prefsweep.experiment import check_experiment
from tests.conftest import REPO, load_config

#: The paper config: the shared base, then SHP (merged in that order, as after one --configfile).
PAPER = (REPO / "config" / "paper" / "base.yaml", REPO / "config" / "paper" / "shp.yaml")


@pytest.fixture(scope="module")
def paper():
    return load_config(*PAPER)


@pytest.fixture(autouse=True)
def empty_workdir(tmp_path, monkeypatch):
    """The plan reads results/ under the working directory: an empty one, unless a test fills it."""
    monkeypatch.chdir(tmp_path)


def with_eval(config, **over):
    c = copy.deepcopy(config)
    c["eval"].update(over)
    return c


# --- memory model, on cases computed by hand ------------------------------------------------
SMALL = {"batch": 2, "seq_len": 3, "hidden": 4, "layers": 2, "vocab": 10, "intermediate": 16, "overhead_bytes": 0}


def test_full_fp32_by_hand():
    m = mem.training_memory(1000, dtype="float32", **SMALL)
    # weights 4 x 1000, grads 4 x 1000, AdamW 8 x 1000 bytes
    assert (m.weights, m.grads, m.optimizer) == (4000, 4000, 8000)
    # per token and layer: attention 5 e h = 80, MLP e (h + 2 i) = 144, two fp32 layer norms 8 h = 32
    # -> 256; 6 tokens x 2 layers x 256 = 3072, + final norm 6 x (4 h + e h) = 192
    assert m.activations == 3072 + 192
    # TRL's fused head: one 6 x 10 fp32 tile, and the saved hidden states + their fp32 gradient
    assert m.logits == 6 * 10 * 4 + 6 * 4 * (4 + 4)
    assert m.total == mem.training_memory_bytes(1000, dtype="float32", **SMALL) == 4000 + 4000 + 8000 + 3264 + 432


def test_lora_bf16_by_hand():
    m = mem.training_memory(1000, dtype="bfloat16", lora=True, trainable_params=100, **SMALL)
    # fp32 base + adapters, and autocast's bf16 copy of the 100 trained weights
    assert m.weights == 4 * 1100 + 2 * 100
    assert (m.grads, m.optimizer) == (400, 800)
    # per token and layer: 5 x 2 x 4 + 2 x (4 + 32) + 32 = 144
    assert m.activations == 6 * 2 * 144 + 6 * (16 + 8)
    assert m.logits == 6 * 10 * 2 + 6 * 4 * (2 + 4)


def test_head_is_tiled_as_trls_fused_head():
    # never tokens x vocab: at most 4096 tokens x 32768 columns at once (one bf16 buffer on CUDA)
    big = mem.head_bytes(8192, vocab=50304, hidden=2560, dtype="bfloat16")
    assert big == 4096 * 32768 * 2 + 8192 * 2560 * 6
    assert big < 8192 * 50304 * 2  # smaller than the logits alone
    # the torch fallback (CPU) holds CPU_HEAD_TILES fp32 tiles
    assert mem.head_bytes(6, vocab=10, hidden=4, dtype="float32", device="cpu") == mem.CPU_HEAD_TILES * 240 + 192
    m = mem.training_memory(1000, dtype="float32", device="cpu", **SMALL)
    assert m.logits == mem.CPU_HEAD_TILES * 240 + 192
    with pytest.raises(ValueError, match="device.*cuda or cpu"):
        mem.training_memory(1000, device="tpu", **SMALL)


def test_gradient_checkpointing_keeps_layer_inputs_and_one_layer():
    m = mem.training_memory(1000, dtype="float32", grad_checkpointing=True, **SMALL)
    assert m.activations == 6 * (2 * 4 * 4 + 256) + 192
    assert m.activations < mem.training_memory(1000, dtype="float32", **SMALL).activations


def test_activations_agree_with_korthikanti_less_dropout_with_fp32_layer_norms():
    # Korthikanti et al. 2022, eq. 1: s b h (34 + 5 a s / h) bytes per layer (bf16, dropout, i = 4h).
    # Without dropout (-2 h per token for its masks, -3 a s for its mask and output) and with the
    # layer norms on the fp32 residual stream (+4 h): 36 h + 2 a s per token.
    h, a, s = 2560, 32, 512
    korthikanti = 34 * h + 5 * a * s
    ours = mem.activation_bytes_per_token_layer(h, 4 * h, dtype="bfloat16", heads=a, seq_len=s, attention="eager")
    assert ours == korthikanti - 2 * h - 3 * a * s + 4 * h
    assert mem.activation_bytes_per_token_layer(h, 4 * h) == 36 * h  # SDPA keeps no s x s matrix


def test_lora_needs_trainable_params_and_known_modules():
    with pytest.raises(ValueError, match="trainable_params"):
        mem.training_memory(10, lora=True, **SMALL)
    with pytest.raises(ValueError, match="dpo.lora.target_modules.*c_attn"):
        mem.lora_params(hidden=4, layers=1, r=2, target_modules=["c_attn"])


def test_lora_params_of_the_paper_config(paper):
    # 32 layers x r 64 x ((2560 + 3 x 2560) query_key_value + (2560 + 2560) attention dense)
    lora = paper["dpo"]["lora"]
    assert mem.lora_params(hidden=2560, layers=32, r=lora["r"], target_modules=lora["target_modules"]) == 31_457_280


def test_paper_memory_fits_an_80gb_gpu_and_not_a_40gb_one(paper):
    shape = pl.model_shape(paper)
    assert shape == pl.PYTHIA_SHAPES["pythia-2.8b"]
    fits = {g: pl.make_plan(paper, {}, g).memory for g in ("a100-80gb", "a100-40gb")}
    assert fits["a100-80gb"]["sft"]["fits"] and fits["a100-80gb"]["dpo"]["fits"]
    assert not fits["a100-40gb"]["sft"]["fits"]  # full fine-tuning of 2.8B: 16 bytes a parameter alone
    assert fits["a100-80gb"]["dpo"]["total_gib_other_checkpointing"] < fits["a100-80gb"]["dpo"]["total_gib"]


# --- steps and checkpoints --------------------------------------------------------------------
def test_steps_and_checkpoints_as_trainer_counts_them(paper):
    dpo = paper["dpo"]
    assert pl.train_steps(64000, dpo) == 1000  # 64000 pairs / (8 x 8)
    assert pl.saved_checkpoint_steps(1000, 200) == [200, 400, 600, 800, 1000]
    assert pl.planned_checkpoint_steps(1000, 200) == [200, 400, 600, 800]
    assert pl.train_steps(1000, dpo) == 16 and pl.planned_checkpoint_steps(16, 200) == []
    assert pl.saved_checkpoint_steps(250, 200) == [200, 250]


def test_e2e_config_steps_match_its_comment():
    # tests/e2e/config.yaml: "n48: 12 steps, kept checkpoints at steps 4 and 8"
    e2e = load_config(REPO / "tests" / "e2e" / "config.yaml")
    steps = pl.train_steps(48, e2e["dpo"])
    assert steps == 12 and pl.planned_checkpoint_steps(steps, e2e["dpo"]["save_steps"]) == [4, 8]


def test_checkpoint_models_and_judge_requests_of_the_paper_config(paper):
    ids = pl.planned_checkpoint_ids(paper)
    # 3 series (maj shared, sc prompt, sc size) x 5 seeds x (1 at 16k + 2 at 32k + 4 at 64k)
    assert len(ids) == 105 and "dpo-sc-size-n64000-seed5-step800" in ids
    # base + 2 baselines + 105 DPO finals judged (the zero point is the baseline) + 105 checkpoints,
    # 500 questions, both orders
    assert len(P.judged_model_ids(paper)) == 108  # + base, always evaluated
    assert pl.planned_comparisons(paper, 500) == 2 * 500 * (108 + 105)


def test_eval_checkpoints_names_sizes_and_questions(paper):
    c = with_eval(paper, checkpoints={"sizes": [64000], "n_questions": 100})
    validate_config(c)
    check_experiment(c)
    assert checkpoint_eval(c) == pl.checkpoint_eval(c)
    assert len(pl.planned_checkpoint_ids(c)) == 3 * 5 * 4
    assert pl.planned_comparisons(c, 500) == 2 * (500 * 108 + 100 * 60)
    off = with_eval(paper, checkpoints=False)
    assert pl.planned_checkpoint_ids(off) == [] and pl.planned_comparisons(off, 500) == 2 * 500 * 108
    bad = with_eval(paper, checkpoints={"sizes": [500]})
    with pytest.raises(ConfigError, match=r"eval.checkpoints.sizes: \[500\] not among"):
        check_experiment(bad)


def test_cached_responses_are_subtracted_and_cost_is_priced(paper, tmp_path):
    layout = pl.P.layout(paper)
    cache = tmp_path / layout.judge_cache()
    for key in ("aa01", "aa02", "bb03"):
        (cache / key[:2]).mkdir(parents=True, exist_ok=True)
        (cache / key[:2] / f"{key}.json").write_text("{}")
    (cache / "aa" / "aa04.lock").write_text("")  # a claim, not a response
    assert pl.cached_responses(cache) == 3
    plan = pl.make_plan(paper, {})
    j = plan.judge
    assert (j["planned_calls"], j["cached"], j["api_calls"]) == (213000, 3, 212997)
    assert j["cost"] == pytest.approx(j["prompt_tokens"] / 1000 * 0.03 + j["completion_tokens"] / 1000 * 0.06, abs=0.01)
    assert j["completion_tokens"] == 212997 * pl.JUDGMENT_TOKENS
    assert pl.remaining_calls(5, 9) == 0


def test_disk_both_ways(paper):
    d = pl.make_plan(paper, {}).disk
    # a merged fp32 export of each of the 105 evaluated checkpoints: 105 x 4 bytes x 2.8e9
    assert d["checkpoint_exports_if_merged_gib"] == round(105 * 4 * 2.8e9 / 2**30, 1)
    assert d["total_if_checkpoints_merged_gib"] == pytest.approx(d["total_gib"] + d["checkpoint_exports_if_merged_gib"], abs=0.2)
    fewer = pl.make_plan(with_eval(paper, checkpoints={"sizes": [64000]}), {}).disk
    assert fewer["checkpoint_exports_if_merged_gib"] < d["checkpoint_exports_if_merged_gib"]


def test_guard_shows_in_the_plan(paper):
    c = copy.deepcopy(paper)
    c["eval"]["judge"]["max_api_calls"] = 50_000
    plan = pl.make_plan(c, {})
    assert plan.judge["refused"] and any("max_api_calls = 50000" in n for n in plan.notes)


def test_plan_script_on_the_paper_config(tmp_path, monkeypatch, capsys):
    """A dry run end to end: snakemake -n in an empty directory, the plan printed (one seed, so
    that Snakemake's DAG stays small; tests/test_dag.py dry-runs all five)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from tests.unit.train_helpers import load_script

    load_script("plan").main(["--configfile", *map(str, PAPER), "--json", "--config", "dpo={seeds: [1]}",
                              "eval={checkpoints: {sizes: [64000], n_questions: 100}}"])
    out = json.loads(capsys.readouterr().out)
    # 7 sizes x 3 series; sft + 2 baselines + 21 DPO finals judged
    assert out["jobs"]["dpo"] == 21 and out["jobs"]["judge"] == 24
    # 3 series x 1 seed x 4 checkpoints of the 64k runs
    assert out["jobs"]["answers (checkpoints)"] == 12 == out["checkpoint_models"]
    assert out["judge"]["planned_calls"] == 2 * (500 * 24 + 100 * 12)
    assert out["memory"]["dpo"]["lora"] and out["gpu_hours"]["total"] > 0


def test_gpu_check_fails_clearly_without_cuda(capsys, monkeypatch):
    from tests.unit.train_helpers import load_script

    gpu_check = load_script("gpu_check")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--workdir", "unused"])
    assert exit_.value.code == 2
    assert "gpu-check: no CUDA device visible" in capsys.readouterr().err
    assert not (REPO / "unused").exists()
    cpu = {"win_rates": (("model_id", "win_rate"), 3, ("a", "b")), "evolution": (("model_id",), 5, ("a",))}
    gpu = {"win_rates": (("model_id", "win_rate"), 2, ("a", "c"))}
    assert gpu_check.shape_differences(cpu, gpu) == [
        "evolution: only in the CPU run", "win_rates: 3 rows on CPU, 2 on GPU", "win_rates: model ids differ: ['b', 'c']"]
