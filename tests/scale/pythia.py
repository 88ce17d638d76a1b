"""A local Hugging Face directory shaped like EleutherAI/pythia-2.8b, at a size a CPU trains in
seconds: the files a hub download of Pythia holds, with a tokenizer trained here and random weights.

    write_pythia_dir(out, texts, hidden_size=64, num_hidden_layers=2, num_attention_heads=4)

What is Pythia's and kept (from the hub's ``config.json`` / tokenizer files of the Pythia suite):

* ``config.json`` in Pythia's own keys (transformers 4.24 wrote it): ``rotary_pct: 0.25``,
  ``rotary_emb_base: 10000``, ``use_parallel_residual: true``, ``tie_word_embeddings: false``
  (an untied ``embed_out``), ``bos_token_id = eos_token_id = 0``, no ``pad_token_id``,
  ``torch_dtype: float16``, ``intermediate_size = 4 * hidden_size``, gelu;
* the embedding padded as Pythia's: 50277 tokens in 50304 rows (the next multiple of 128), here
  ``len(tokenizer)`` rounded up to a multiple of 128, so some rows belong to no token;
* ``tokenizer.json``: byte-level BPE with an NFC normalizer, ``<|endoftext|>`` (id 0) and
  ``<|padding|>`` (id 1) as special tokens of the base vocabulary, the 23 multi-space tokens
  (24 spaces down to 2) added after it, and a post-processor that adds nothing;
* ``tokenizer_config.json`` / ``special_tokens_map.json``: class ``GPTNeoXTokenizer``; bos, eos
  and unk are ``<|endoftext|>``; **no pad token** (the hub files name none);
* weights in ``model.safetensors``, float16.

The vocabulary is trained on ``texts`` (``base_vocab`` merges at most), the weights drawn with
``seed``; everything else is fixed, so the directory is a pure function of its arguments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<|padding|>"
#: Pythia pads its embedding to a multiple of this (50277 tokens -> 50304 rows).
VOCAB_MULTIPLE = 128
#: Pythia's added multi-space tokens: 24 spaces down to 2, ids right after the base vocabulary.
MULTI_SPACES = tuple(" " * n for n in range(24, 1, -1))


def padded_vocab_size(n_tokens: int, multiple: int = VOCAB_MULTIPLE) -> int:
    return -(-n_tokens // multiple) * multiple


def pythia_tokenizer(texts: Iterable[str], base_vocab: int):
    """A ``tokenizers.Tokenizer`` built as Pythia's (module doc), trained on ``texts``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.TemplateProcessing(single="$A", pair="$A:0 $B:1", special_tokens=[])
    trainer = trainers.BpeTrainer(vocab_size=base_vocab, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.add_tokens([AddedToken(s, normalized=True, special=False) for s in MULTI_SPACES])
    return tok


#: Pythia-2.8B's config.json, less its sizes (filled per fixture).
PYTHIA_CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"],
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "gelu",
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048,
    "model_type": "gpt_neox",
    "rotary_emb_base": 10000,
    "rotary_pct": 0.25,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.24.0",
    "use_cache": True,
    "use_parallel_residual": True,
}

TOKENIZER_CONFIG = {
    "add_bos_token": False,
    "add_eos_token": False,
    "add_prefix_space": False,
    "bos_token": EOS,
    "clean_up_tokenization_spaces": True,
    "eos_token": EOS,
    "tokenizer_class": "GPTNeoXTokenizer",
    "unk_token": EOS,
}

SPECIAL_TOKENS_MAP = {"bos_token": EOS, "eos_token": EOS, "unk_token": EOS}


def write_pythia_dir(out: str | Path, texts: Iterable[str], *, hidden_size: int, num_hidden_layers: int,
                     num_attention_heads: int, base_vocab: int = 2000, seed: int = 0,
                     vocab_size: int | None = None) -> Path:
    """Write the Pythia-shaped directory (module doc) to ``out``; returns ``out``.

    ``vocab_size``: embedding rows (e.g. Pythia's 50304, for a head as large as the suite's);
    default ``len(tokenizer)`` padded as Pythia's. Rows past the tokenizer belong to no token.
    """
    import torch
    from transformers import AutoConfig, GPTNeoXForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = pythia_tokenizer(texts, base_vocab)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS_MAP, indent=2) + "\n")
    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    config = {**PYTHIA_CONFIG, "hidden_size": hidden_size, "intermediate_size": 4 * hidden_size,
              "num_attention_heads": num_attention_heads, "num_hidden_layers": num_hidden_layers,
              "vocab_size": vocab_size or padded_vocab_size(n_tokens)}
    if config["vocab_size"] < n_tokens:
        raise ValueError(f"vocab_size {vocab_size} < the tokenizer's {n_tokens} tokens")
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTNeoXForCausalLM(AutoConfig.from_pretrained(out)).to(torch.float16)
    model.save_pretrained(out)  # model.safetensors (and generation_config.json, as the hub has)
    # save_pretrained rewrote config.json in transformers 5's keys: put Pythia's file back.
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out
