"""The tiny local model: a byte-level BPE tokenizer trained here and a random GPT-NeoX.

Pythia's architecture at toy scale, so the whole workflow runs on a laptop CPU with no download.
Both are plain Hugging Face objects: once saved with ``save_pretrained`` they load through
``AutoTokenizer`` / ``AutoModelForCausalLM`` and through TRL by path, exactly like a hub model
(preset ``hf``), so nothing downstream knows which preset made them.

Special tokens (as Pythia's tokenizer, plus a real padding token):
    ``<|endoftext|>``  bos = eos, id 0
    ``<|padding|>``    pad, id 1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|padding|>"

#: Seed of the tiny model's random weights. Not a config key (the schema's ``model.tiny`` has
#: none): the base model is fixed by its shape; DPO seeds vary the runs.
TINY_INIT_SEED = 0


def tiny_keys() -> tuple[str, ...]:
    """Keys of the config section ``model.tiny``, from the schema (all required here)."""
    from prefsweep.config import schema_properties

    return schema_properties("model.tiny")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, model_max_length: int | None = None
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2/Pythia style) on ``texts``.

    The 256 byte symbols are always in the vocabulary, so any text - including prompts never seen
    in training - tokenizes without unknown tokens; ``vocab_size`` (> 258) bounds the merges.
    Training is deterministic for the same texts in the same order.
    """
    if vocab_size <= 256 + 2:
        raise ValueError(f"vocab_size must exceed 258 (256 bytes + 2 special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    # add_prefix_space=False: "Assistant:" + " answer" splits at the space exactly as the two
    # strings split alone, so a rendered prompt is a token prefix of prompt + completion.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    kwargs: dict[str, Any] = {}
    if model_max_length is not None:
        kwargs["model_max_length"] = model_max_length
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
        **kwargs,
    )


def tiny_config(tokenizer: PreTrainedTokenizerFast, cfg: Mapping[str, Any]) -> GPTNeoXConfig:
    """``GPTNeoXConfig`` from the config section ``model.tiny`` and the tokenizer's special ids.

    Every schema key of ``model.tiny`` must be there (the workflow fills the defaults); a missing
    or unknown key raises ``KeyError`` naming it.
    """
    keys = tiny_keys()
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KeyError(f"model.tiny: missing keys {missing}")
    unknown = sorted(set(cfg) - set(keys))
    if unknown:
        raise KeyError(f"model.tiny: unknown keys {unknown} (allowed: {list(keys)})")
    if len(tokenizer) > cfg["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but model.tiny.vocab_size is {cfg['vocab_size']}")
    return GPTNeoXConfig(
        vocab_size=int(cfg["vocab_size"]),
        hidden_size=int(cfg["hidden_size"]),
        num_hidden_layers=int(cfg["num_hidden_layers"]),
        num_attention_heads=int(cfg["num_attention_heads"]),
        intermediate_size=int(cfg["intermediate_size"]),
        max_position_embeddings=int(cfg["max_position_embeddings"]),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, cfg: Mapping[str, Any], *, seed: int) -> GPTNeoXForCausalLM:
    """A randomly initialised ``GPTNeoXForCausalLM`` sized by ``cfg`` (= config ``model.tiny``).

    The weights depend only on ``cfg`` and ``seed`` (the workflow uses :data:`TINY_INIT_SEED`);
    the global torch RNG is left as it was.
    """
    config = tiny_config(tokenizer, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = GPTNeoXForCausalLM(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
