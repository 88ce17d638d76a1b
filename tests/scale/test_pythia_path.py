"""The paper-scale code path on a Pythia-shaped model, on CPU, through a real Snakemake run.

A local HF directory with Pythia's architecture and files (tests/scale/pythia.py: rotary_pct
0.25, parallel residual, untied embed_out, the embedding padded to a multiple of 128, a
GPTNeoXTokenizer with no pad token in its files, fp16 weights) at 64 wide and 2 layers, data in
SHP's schema (tests/scale/shp_fixture.py), and config/paper/{base,shp}.yaml at toy sizes
(tests/scale/config.yaml): base copy, SFT, reference log-probs, DPO with LoRA on
[query_key_value, dense] and checkpoints, adapter merging, sampled answers, the LLM judge on the
loopback server, win rates. Then what a user does next on the same run: full DPO instead of LoRA
for one cell (only that cell's jobs rerun).

``benchmarks/scale_stages.py`` runs the same experiment at a larger width and measures it.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from prefsweep.paths import Layout, dpo_model_id
from tests.fixtures.judge_server import JudgeServer
from tests.scale.pythia import EOS, MULTI_SPACES, VOCAB_MULTIPLE, write_pythia_dir
from tests.scale.run import CONFIGS, run_env
from tests.test_dag import job_counts, snakemake

pytestmark = pytest.mark.scale

L = Layout("scale")
MAJ = dpo_model_id("maj", "shared", 24, 1)
SC = dpo_model_id("sc", "size", 24, 1)
TEXT = "How would you  fix rust?\n\nAssistant: Honestly,    it depends on heat." + EOS


def load_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def logits(model, tokenizer, text=TEXT):
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


# -- the fixture is Pythia's shape (no workflow) -----------------------------------------------

def test_fixture_loads_as_pythia(tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoTokenizer

    from prefsweep.train.training import load_model_and_tokenizer

    d = write_pythia_dir(tmp_path / "p", ["a b c", "fix rust  now"] * 20, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=4, base_vocab=300)
    assert "pad_token" not in json.loads((d / "tokenizer_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(d)
    assert type(tok).__name__ == "GPTNeoXTokenizer"
    # Pythia's files through transformers 5: the ids of tokenizer.json itself, multi-space tokens too.
    ids = Tokenizer.from_file(str(d / "tokenizer.json")).encode(TEXT).ids
    assert tok(TEXT).input_ids == ids and tok.convert_tokens_to_ids(MULTI_SPACES[-1]) in ids
    config = AutoConfig.from_pretrained(d)
    assert config.rope_parameters["partial_rotary_factor"] == 0.25 and config.use_parallel_residual
    assert not config.tie_word_embeddings and config.pad_token_id is None
    assert config.vocab_size % VOCAB_MULTIPLE == 0 and config.vocab_size > len(tok)
    # The pad token the whole workflow uses: GPTNeoXTokenizer's <|padding|> (id 1), not eos,
    # and model config and generation config agree with it.
    model, tok = load_model_and_tokenizer(d, dtype="float32")
    assert tok.pad_token == "<|padding|>" and tok.pad_token_id == 1 != tok.eos_token_id
    assert model.config.pad_token_id == model.generation_config.pad_token_id == 1


# -- the run -----------------------------------------------------------------------------------

def test_every_stage_ran(scale_run):
    d, requests = scale_run.dir, len(scale_run.requests)
    table = pd.read_csv(d / L.table("win_rates"))
    dpo = table[table["kind"] == "dpo"].set_index("model_id")
    assert sorted(dpo.index) == sorted([MAJ, SC])
    assert (dpo["judge"] == "gpt-4").all() and (dpo["n"] == 8).all() and (dpo["errors"] == 0).all()
    # at most: 2 DPO models + 2 kept checkpoints, 8 questions, both orders (the cache saves repeats)
    assert 0 < requests <= 4 * 8 * 2
    evolution = pd.read_csv(d / L.table("evolution"))
    assert {2, 3} <= set(evolution["step"].dropna().astype(int))
    for model_id in ("sft", MAJ, SC, f"{MAJ}-step2", f"{SC}-step2"):
        answers = [json.loads(line) for line in open(d / L.answers(model_id))]
        assert len(answers) == 8 and all(a["choices"][0]["turns"][0] for a in answers), model_id


def test_exports_keep_pythia_architecture_and_tokenizer(scale_run):
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    d = scale_run.dir
    fixture = json.loads((d / "pythia/config.json").read_text())
    raw = Tokenizer.from_file(str(d / "pythia/tokenizer.json"))
    for model_id in ("sft", MAJ):
        out = d / L.export(model_id)
        config, tok = AutoConfig.from_pretrained(out), AutoTokenizer.from_pretrained(out)
        assert config.rope_parameters["partial_rotary_factor"] == fixture["rotary_pct"], model_id
        assert config.use_parallel_residual and not config.tie_word_embeddings
        assert config.vocab_size == fixture["vocab_size"]  # the padded rows are kept
        assert tok(TEXT).input_ids == raw.encode(TEXT).ids
        gen = GenerationConfig.from_pretrained(out)
        assert config.pad_token_id == gen.pad_token_id == tok.pad_token_id == 1
        assert config.eos_token_id == gen.eos_token_id == tok.eos_token_id == 0
    model = load_model(d / L.export(MAJ))
    # untied: embed_out (transformers 5 calls it lm_head) is its own tensor
    assert not torch.equal(model.get_input_embeddings().weight, model.get_output_embeddings().weight)


def test_reference_logps_equal_the_policy_at_step_zero(scale_run):
    """The reference log-probs (ref_logps job) and the DPO policy's own at step 0 come from the
    same model under the same bf16 autocast: the first logged rewards are 0 (with a fp32
    reference and a bf16 policy they are not)."""
    d = scale_run.dir
    state = json.loads((d / L.checkpoint(L.dpo_run("maj", "shared", 24, 1), 2) / "trainer_state.json").read_text())
    first = state["log_history"][0]
    assert first["step"] == 1
    assert abs(first["rewards/chosen"]) < 1e-6 and abs(first["rewards/rejected"]) < 1e-6


def test_lora_changes_exactly_its_target_modules(scale_run):
    """target_modules [query_key_value, dense]: the merged DPO model differs from the SFT model
    in every layer's attention.query_key_value and attention.dense, and nowhere else ("dense"
    is not mlp.dense_h_to_4h / dense_4h_to_h)."""
    d = scale_run.dir
    adapter = json.loads((d / L.dpo_model("maj", "shared", 24, 1) / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["dense", "query_key_value"]
    sft, dpo = load_model(d / L.export("sft")).state_dict(), load_model(d / L.export(MAJ)).state_dict()
    changed = {k for k in sft if not torch.equal(sft[k], dpo[k])}
    n_layers = load_model(d / L.export("sft")).config.num_hidden_layers
    expected = {f"gpt_neox.layers.{i}.attention.{m}.weight" for i in range(n_layers)
                for m in ("query_key_value", "dense")}
    assert changed == expected, sorted(changed ^ expected)


def test_merged_exports_equal_base_plus_adapter(scale_run):
    """The hf/ export of the final adapter computes what base + adapter computes (PEFT,
    unmerged); a kept adapter checkpoint is answered from base + adapter and gets no merged
    export of its own (disk), and it is not the final model."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    d = scale_run.dir
    tok = AutoTokenizer.from_pretrained(d / L.export("sft"))
    run = L.dpo_run("maj", "shared", 24, 1)
    final = logits(load_model(d / L.export(MAJ)), tok)
    unmerged = PeftModel.from_pretrained(load_model(d / L.model("sft")), str(d / L.dpo_model("maj", "shared", 24, 1))).eval()
    assert torch.allclose(final, logits(unmerged, tok), atol=1e-4)
    assert not (d / L.export(f"{MAJ}-step2")).exists()
    step2 = PeftModel.from_pretrained(load_model(d / L.model("sft")), str(d / L.checkpoint(run, 2))).eval()
    assert not torch.allclose(final, logits(step2, tok), atol=1e-4)


def test_full_dpo_reruns_only_its_cell(scale_run):
    """dpo.lora.enabled false on the same run, for one cell: its DPO job trains every weight
    (a full HF directory, no adapter), and only that cell's jobs run again."""
    d, config = scale_run.dir, scale_run.config
    full = d / "full.yaml"
    full.write_text(yaml.safe_dump({"dpo": {"lora": {"enabled": False}}}))
    with JudgeServer() as server:
        # api_base is a client setting: a new port reruns nothing
        override = yaml.safe_load(open(config))
        override["eval"]["judge"]["api_base"] = server.api_base
        with open(config, "w") as fh:
            yaml.safe_dump(override, fh)
        # the target first: --configfile takes every argument after it
        proc = snakemake(L.judgment("llm", MAJ), "--cores", "2", "--configfile", *CONFIGS, config, str(full),
                         cwd=d, env=run_env())
        requests = server.n_requests
    assert job_counts(proc.stdout + proc.stderr) == {"dpo": 1, "convert": 1, "answers": 1, "judge": 1}
    assert 0 < requests <= 8 * 2
    out = d / L.dpo_model("maj", "shared", 24, 1)
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    info = json.loads((out / "run_info.json").read_text())
    assert info["adapter"] is False and info["global_step"] == 3
    sft, dpo = load_model(d / L.export("sft")).state_dict(), load_model(d / L.export(MAJ)).state_dict()
    changed = {k for k in sft if not torch.equal(sft[k], dpo[k])}
    assert changed == set(sft)  # every tensor trains, the untied output embedding and the MLPs too
    prov = json.loads((d / L.export(MAJ) / "provenance.json").read_text())
    assert prov["source_kind"] == "full" and prov["base"] is None
