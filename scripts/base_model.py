"""Build the base model directory: the tiny model made here, or a saved copy of a HF model.

    python scripts/base_model.py --config-json "$(python -m prefsweep.config base_model)" \
        --sft-corpus results/default/data/sft.jsonl --out results/default/models/base

Config ``model.preset``:
  tiny  train a byte-level BPE tokenizer (``model.tiny.vocab_size``) on the SFT corpus texts
        (prompt + completion, rendered) and build a random GPT-NeoX sized by ``model.tiny``
        (weights seeded with ``prefsweep.tiny.TINY_INIT_SEED``), see :mod:`prefsweep.tiny`;
  hf    ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(model.name_or_path)`` (a hub
        id or a local directory; safetensors weights only, no remote code) and save a copy, a
        pad token added if it has none.
Writes a HF directory (config, weights, tokenizer) with ``run_info.json``, atomically.
"""

from __future__ import annotations

import argparse
import time

from prefsweep.io import atomic_dir, load_config_json, read_jsonl, save_run_info, sha256_file
from prefsweep.tracking import scrub_secrets
from prefsweep.training import configure_runtime, load_model_and_tokenizer, n_parameters


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--sft-corpus", required=True,
                   help="data/sft.jsonl {prompt, completion, prompt_id}; tiny: the tokenizer's training texts")
    p.add_argument("--out", required=True, help="output HF directory, models/base")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    configure_runtime(args.threads)
    config = load_config_json(args.config_json)
    model_cfg = config["model"]
    preset = model_cfg["preset"]
    t0 = time.perf_counter()
    extra: dict = {"step": "base_model", "preset": preset}
    if preset == "tiny":
        from prefsweep.tiny import TINY_INIT_SEED, build_tiny_model, train_tokenizer

        tiny = model_cfg["tiny"]
        corpus = read_jsonl(args.sft_corpus)
        if not corpus:
            raise SystemExit(f"{args.sft_corpus}: empty corpus, cannot train a tokenizer")
        texts = [r["prompt"] + r["completion"] for r in corpus]
        tokenizer = train_tokenizer(texts, int(tiny["vocab_size"]),
                                    model_max_length=int(tiny["max_position_embeddings"]))
        model = build_tiny_model(tokenizer, tiny, seed=TINY_INIT_SEED)
        extra.update(sft_corpus_sha256=sha256_file(args.sft_corpus), n_tokenizer_texts=len(texts),
                     tokenizer_size=len(tokenizer))
    elif preset == "hf":
        source = model_cfg["name_or_path"]
        if not source:
            raise SystemExit("model.preset is hf but model.name_or_path is not set")
        model, tokenizer = load_model_and_tokenizer(source)
        extra["source"] = str(source)
    else:
        raise SystemExit(f"model.preset: expected tiny or hf, got {preset!r}")
    extra["n_parameters"] = n_parameters(model)
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_run_info(tmp, scrub_secrets(config), **extra)
    print(f"base model ({preset}, {extra['n_parameters']} parameters) written to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
