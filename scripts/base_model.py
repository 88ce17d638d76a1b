"""Build the base model: the tiny model made and pretrained here, or a saved copy of a HF model.

    python scripts/base_model.py --config-json "$(python -m prefsweep.config base_model)" \
        --pretrain-corpus results/default/data/pretrain.jsonl \
        --out results/default/train/base/final --checkpoints results/default/train/base/checkpoints

Config ``model.preset``:
  tiny  train a byte-level BPE tokenizer (``model.tiny.vocab_size``) on the pretraining corpus
        (every candidate response of the training prompts, chosen or not, after its prompt; see
        ``data/pretrain.jsonl``), build a random GPT-NeoX sized by ``model.tiny`` (weights seeded
        with ``prefsweep.train.tiny.TINY_INIT_SEED``, :mod:`prefsweep.train.tiny`), then pretrain it: language
        modelling with loss on every token (config section ``pretrain``, TRL names), so the base
        model writes fluent text that nobody selected: a base model, not noise. Checkpoints and
        resume as for SFT (:mod:`prefsweep.train.jobs`).
  hf    ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(model.name_or_path)`` (a hub
        id or a local directory; safetensors weights only, no remote code) and save a copy, a
        pad token added if it has none. It is pretrained already: no corpus is read. A hub id
        comes from the local HF cache when it is there, else the hub must answer within
        ``PREFSWEEP_HUB_TIMEOUT`` s (:mod:`prefsweep.hub`); download it on the login node first.
Writes a HF directory (config, weights, tokenizer) with ``run_info.json``, atomically.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prefsweep.io import atomic_dir, load_config_json, save_run_info
from prefsweep.train.jobs import TrainingJob, read_sft_corpus, run_training_job, user_errors
from prefsweep.tracking import scrub_secrets
from prefsweep.train.training import configure_runtime, load_model_and_tokenizer, n_parameters


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--pretrain-corpus", default=None,
                   help="tiny: data/pretrain.jsonl {prompt, completion, prompt_id}, rendered")
    p.add_argument("--out", required=True, help="output HF directory, train/base/final")
    p.add_argument("--checkpoints", default=None, help="tiny: pretraining checkpoints, train/base/checkpoints")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def pretrain_tiny(config: dict, corpus: str, out: Path, checkpoints: Path) -> dict:
    """Tokenizer and random tiny GPT-NeoX from ``corpus``, then pretraining on it (see module doc)."""
    from datasets import Dataset

    from prefsweep.train.tiny import TINY_INIT_SEED, build_tiny_model, train_tokenizer

    tiny = config["model"]["tiny"]
    records, id_name = read_sft_corpus(corpus)
    texts = [r["prompt"] + r["completion"] for r in records]
    tokenizer = train_tokenizer(texts, int(tiny["vocab_size"]), model_max_length=int(tiny["max_position_embeddings"]))
    model = build_tiny_model(tokenizer, tiny, seed=TINY_INIT_SEED)
    dataset = Dataset.from_dict({"prompt": [r["prompt"] for r in records],
                                 "completion": [r["completion"] for r in records]})
    with tempfile.TemporaryDirectory(prefix="tiny-init-") as init:
        # The random init is a pure function of corpus and config: its content (not this
        # temporary path) is what the run's fingerprint hashes, so a rerun resumes.
        model.save_pretrained(init)
        tokenizer.save_pretrained(init)
        return run_training_job(TrainingJob(
            step="pretrain", config=config, init_model=Path(init), dataset=dataset,
            record_ids=[r["prompt_id"] for r in records], id_name=id_name, data_source=corpus,
            inputs={"corpus": Path(corpus)}, job={"step": "pretrain"}, seed=None, run_name="base",
            wandb_group="base", out=out, checkpoints=checkpoints,
            run_info={"preset": "tiny", "n_parameters": n_parameters(model), "tokenizer_size": len(tokenizer)},
        ))


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    t0 = time.perf_counter()
    with user_errors():
        config = load_config_json(args.config_json)
        preset = config["model"]["preset"]
        if preset == "tiny":
            if not (args.pretrain_corpus and args.checkpoints):
                raise SystemExit("model.preset tiny: --pretrain-corpus and --checkpoints are required")
            info = pretrain_tiny(config, args.pretrain_corpus, Path(args.out), Path(args.checkpoints))
            print(f"base model (tiny, {info['n_parameters']} parameters, pretrained {info['global_step']} steps) "
                  f"written to {args.out} in {time.perf_counter() - t0:.1f} s")
            return
        if preset != "hf":
            raise SystemExit(f"model.preset: expected tiny or hf, got {preset!r}")
        source = config["model"]["name_or_path"]
        if not source:
            raise SystemExit("model.preset is hf but model.name_or_path is not set")
        model, tokenizer = load_model_and_tokenizer(source)
        extra = {"step": "base_model", "preset": preset, "source": str(source), "n_parameters": n_parameters(model)}
        with atomic_dir(args.out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_run_info(tmp, scrub_secrets(config), **extra)
    print(f"base model (hf, {extra['n_parameters']} parameters) written to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
