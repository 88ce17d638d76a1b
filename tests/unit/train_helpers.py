"""Tiny training data and models shared by the training, adapter, pair-accuracy and fault tests.

Not a test module: ``from tests.unit.train_helpers import make_pairs, build_tiny_dir, ...``.
Everything here is small enough that a full SFT or DPO run takes about a second on one thread.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pandas as pd

from prefsweep.io import atomic_write_parquet, sha256_file
from prefsweep.data.prompts import render_completion, render_prompt

HH = {"style": "hh"}  # prompt_format of the default config

REPO = Path(__file__).resolve().parents[2]

TINY = {"vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 256, "max_position_embeddings": 256}
VERBS = "cook clean fix paint plant wash fold bake".split()
NOUNS = "rice shirt bike fence garden car towel bread".split()
GOOD = "Sure, here is how: {v} the {n} slowly and carefully, step by step."
BAD = "No."


def load_script(name: str):
    """``scripts/{name}.py`` as a module (its ``main(argv)`` is what the rule runs)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
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
            "prompt": render_prompt(f"How do I {v} the {n}?", HH), "chosen": render_completion(GOOD.format(v=v, n=n), HH),
            "rejected": render_completion(BAD, HH), "pair_id": f"q{i}|a>b", "prompt_id": f"q{i}", "topic": "home",
            "chosen_id": "a", "rejected_id": "b", "margin": 1.0, "n_voters": 3, "cycle": False, "tie_broken": False,
            "order": i,
        })
    return pd.DataFrame(rows)


def build_tiny_dir(out: Path, tiny: dict | None = None, n_prompts: int = 32) -> Path:
    """A tiny GPT-NeoX + tokenizer trained on the texts of :func:`make_pairs`, saved at ``out``."""
    from prefsweep.train.tiny import build_tiny_model, train_tokenizer

    tiny = dict(TINY if tiny is None else tiny)
    pairs = make_pairs(n_prompts, seed=1)
    texts = list(pairs["prompt"] + pairs["chosen"]) + list(pairs["prompt"] + pairs["rejected"])
    tok = train_tokenizer(texts, tiny["vocab_size"], model_max_length=tiny["max_position_embeddings"])
    model = build_tiny_model(tok, tiny, seed=0)
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out


def write_sft_corpus(path: Path, n_prompts: int) -> Path:
    """``data/sft.jsonl`` records ``{prompt, completion, prompt_id}`` from :func:`make_pairs`."""
    pairs = make_pairs(n_prompts)
    path.write_text("".join(json.dumps({"prompt": p, "completion": c, "prompt_id": i}) + "\n"
                            for p, c, i in zip(pairs["prompt"], pairs["chosen"], pairs["prompt_id"])))
    return path


def write_pairs_and_manifest(root: Path, pairs: pd.DataFrame) -> tuple[Path, Path]:
    """``pairs.parquet`` and its ``manifest.json`` (cell maj/shared/n{len}) in ``root``."""
    atomic_write_parquet(root / "pairs.parquet", pairs)
    manifest = {"arm": "maj", "matching": "shared", "size": len(pairs), "n_pairs": len(pairs),
                "n_prompts": len(pairs), "topics": {"home": len(pairs)}, "ties_broken": 0, "cycles": 0,
                "sha256": sha256_file(root / "pairs.parquet")}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "pairs.parquet", root / "manifest.json"


def dpo_argv(root: Path, *, config: Path, model: Path, pairs: Path, manifest: Path, ref_logps: Path,
             n_pairs: int, out: Path, checkpoints: Path, seed: int = 1) -> list[str]:
    """The command line of ``scripts/dpo.py`` for the cell of :func:`write_pairs_and_manifest`."""
    return ["--config-json", str(config), "--model", str(model), "--pairs", str(pairs),
            "--manifest", str(manifest), "--ref-logps", str(ref_logps), "--seed", str(seed), "--arm", "maj",
            "--matching", "shared", "--size", str(n_pairs), "--out", str(out), "--checkpoints", str(checkpoints),
            "--threads", "1"]


def sft_argv(*, config: Path, model: Path, corpus: Path, out: Path, checkpoints: Path) -> list[str]:
    """The command line of ``scripts/sft.py``."""
    return ["--config-json", str(config), "--model", str(model), "--corpus", str(corpus), "--out", str(out),
            "--checkpoints", str(checkpoints), "--threads", "1"]
