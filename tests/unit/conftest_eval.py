"""Fixtures of the eval tests (conversion, answers, judges, win rates).

Not a conftest.py (that one belongs to the whole suite): test modules import the fixtures they
use, e.g. ``from conftest_eval import tiny_model_dir  # noqa: F401``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCES = [
    "Human: how do I bake bread? Assistant: Mix flour, water and yeast, then bake it.",
    "Please be polite and thank you kindly for the detailed answer.",
    "Fun fact: why did the chicken cross the road? To get to the other side, haha!",
    "Short answer. Long detailed explanation with 3 examples, for example this one.",
    "Great question, happy to help. Hope this helps, good luck!",
]

#: A model small enough to build, save and generate with in well under a second.
TINY = {
    "vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 128,
}


#: Init std of the test model. At GPT-NeoX's default 0.02 a random model's top two next-token
#: logits differ by ~0.01, so float32 rounding differences between equivalent kernels (attention
#: mask passed or not, batch shape) flip greedy tokens; 0.2 gives peaked distributions like a
#: trained model's, and greedy comparisons test the algorithm rather than rounding.
INIT_STD = 0.2


def make_tiny(seed: int = 0):
    """(model, tokenizer) of the tiny GPT-NeoX: byte-level BPE (vocab 300) + random weights."""
    import torch
    from transformers import GPTNeoXForCausalLM

    from prefsweep.tiny import tiny_config, train_tokenizer

    tok = train_tokenizer(SENTENCES * 4, vocab_size=TINY["vocab_size"])
    config = tiny_config(tok, TINY)
    config.initializer_range = INIT_STD
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTNeoXForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def save_tiny(path: Path, seed: int = 0) -> Path:
    model, tok = make_tiny(seed)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny HF model directory (config, safetensors, tokenizer)."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def load_script(name: str):
    """Import ``scripts/{name}.py`` as a module (scripts/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"prefsweep_script_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
