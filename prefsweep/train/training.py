"""SFT and DPO with TRL: trainer configs from the experiment config, checkpoints, data checks.

Config sections ``sft`` and ``dpo`` use TRL's own key names (``SFTConfig`` / ``DPOConfig``); the
keys a section accepts, their types, bounds and defaults are those of
``workflow/schemas/config.schema.yaml`` (``$defs/train`` for sft, ``dpo``, ``$defs/lora``), read
here with :func:`prefsweep.config.schema_properties`. The workflow validates the config and fills
every default before a job starts, so a section reaching this module must have every key: a
missing key is an error naming it, and so is an unknown one. ``dpo.seeds`` shapes the DAG and is
not in a job's slice. ``warmup_ratio`` is the name TRL users know; transformers 5 dropped that
field and reads a float ``warmup_steps`` in [0, 1) as the same ratio, which is what it is mapped
to (likewise ``gradient_checkpointing`` -> ``activation_checkpointing``). ``sft.seed`` is SFT's
data-order seed; a DPO run's seed is its ``seed`` wildcard.

Data checks
    A prompt of ``max_length`` tokens or more leaves no completion token to learn from (TRL's
    ``keep_start`` truncation cuts the completion, then TRL silently drops the example). That is
    an error before training (:func:`check_prompt_lengths`), naming the first few records and
    their lengths; so is a ``max_length`` beyond the model's context.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from prefsweep.config import RUNTIME_KEYS, SHAPE_KEYS, ConfigError, runtime_values, schema_properties

log = logging.getLogger(__name__)

#: Keys of a section that are not TrainingArguments fields (handled here or by the workflow;
#: ``sft.data`` is what the SFT corpus job reads).
NON_TRL_KEYS = ("lora", "warmup_ratio", "init", "seed", "beta", "gradient_checkpointing", "data")



class DataError(ValueError):
    """Training data a job cannot use; the message names the file, the records and what is expected."""


# --------------------------------------------------------------------------------------------
# Config sections -> TRL configs
# --------------------------------------------------------------------------------------------


def _check_keys(section: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The schema keys of section ``name`` that a job slice carries; unknown or missing keys raise
    :class:`~prefsweep.config.ConfigError` naming them."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name}: expected a mapping of keys, got {type(section).__name__}")
    allowed = schema_properties(name)
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ConfigError(f"{name}: unknown keys {unknown} (allowed: {sorted(allowed)})")
    # runtime keys (logging_steps) reach a job in the environment, not its slice (runtime_values)
    required = tuple(k for k in allowed if f"{name}.{k}" not in SHAPE_KEYS + RUNTIME_KEYS)
    missing = [k for k in required if k not in section]
    if missing:
        raise ConfigError(f"{name}: missing keys {missing} (the workflow fills every key from the schema's "
                          f"defaults; for a job run by hand use: python -m prefsweep.config {name})")
    return required


def resolve_section(section: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Training section ``name`` (``sft`` or ``dpo``) of a job's config slice, checked.

    Returns the section's keys in schema order without the DAG-shape keys (``dpo.seeds``) and the
    runtime keys (``logging_steps``, :func:`prefsweep.config.runtime_values`): what the run's
    result depends on. ``lora`` is checked too (:func:`build_lora_config`).
    """
    keys = _check_keys(section, name)
    out = {k: section[k] for k in keys}
    ratio = out["warmup_ratio"]
    if not 0.0 <= float(ratio) < 1.0:
        raise ConfigError(f"{name}.warmup_ratio must be in [0, 1), got {ratio}")
    build_lora_config(out["lora"], f"{name}.lora")
    return out


def build_lora_config(lora: Mapping[str, Any], name: str):
    """``peft.LoraConfig`` for a causal LM from section ``name`` (``sft.lora`` / ``dpo.lora``), or
    ``None`` when ``enabled`` is false. Every schema key must be there (see :func:`resolve_section`).

    ``target_modules: null`` (hand-written slices only; the schema wants a list) lets PEFT pick
    the modules it knows for the architecture (``query_key_value`` for GPT-NeoX). ``lm_head``
    cannot be a target: TRL's fused log-prob head multiplies by ``lm_head.weight`` directly.
    """
    _check_keys(lora, name)
    if not lora["enabled"]:
        return None
    from peft import LoraConfig

    kwargs = {k: v for k, v in lora.items() if k != "enabled" and v is not None}
    return LoraConfig(task_type="CAUSAL_LM", **kwargs)


def _trainer_kwargs(section: dict[str, Any], *, output_dir: str | os.PathLike, seed: int, run_name: str,
                    report_to: str | list[str]) -> dict[str, Any]:
    kwargs = {k: v for k, v in section.items() if k not in NON_TRL_KEYS}
    kwargs.update(
        output_dir=str(output_dir),
        warmup_steps=float(section["warmup_ratio"]),
        # transformers 5 renamed it; setting the new name also overrides TRL's default (True).
        activation_checkpointing=bool(section["gradient_checkpointing"]),
        seed=int(seed),
        data_seed=int(seed),
        run_name=run_name,
        report_to=report_to,
        save_strategy="steps",
        save_total_limit=None,
        save_only_model=False,  # optimizer, scheduler and RNG states too: needed to resume
        logging_first_step=True,
        disable_tqdm=True,  # job logs are files: one line per logging step, no progress bars
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda_available(),
        # Several processes (DDP): every weight that trains is used in every forward, so DDP need
        # not search the graph for unused ones each step (transformers' default does, without
        # gradient checkpointing). Frozen weights (LoRA) are no DDP parameters. Unused with 1 process.
        ddp_find_unused_parameters=False,
    )
    if section.get("bf16") and not _cuda_available():
        # bf16 is mixed precision wherever the job runs: without a GPU, transformers refuses
        # bf16 ("Your setup doesn't support bf16/gpu") unless told to train on the CPU, where it
        # then runs the forward under CPU bf16 autocast. scripts/ref_logps.py does the same, so
        # the reference log-probs match the policy's at step 0 on either device.
        kwargs["use_cpu"] = True
    return kwargs


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_sft_config(section: Mapping[str, Any], *, output_dir: str | os.PathLike, run_name: str,
                     report_to: str | list[str], name: str = "sft"):
    """``trl.SFTConfig`` from config section ``name`` (prompt/completion data); its ``seed`` drives
    data order and adapter init.

    ``sft``: loss on the completion tokens only (the responses). ``pretrain`` (the tiny preset's
    base model): loss on every token, prompt and response: language modelling on text nobody
    selected, so the base model writes fluent but unaligned answers.
    """
    from trl import SFTConfig

    sec = resolve_section(section, name)
    kwargs = _trainer_kwargs({**sec, **runtime_values(section, name)}, output_dir=output_dir, seed=sec["seed"],
                             run_name=run_name, report_to=report_to)
    return SFTConfig(completion_only_loss=name == "sft", **kwargs)


def build_dpo_config(section: Mapping[str, Any], *, output_dir: str | os.PathLike, seed: int, run_name: str,
                     report_to: str | list[str]):
    """``trl.DPOConfig`` from config section ``dpo``; ``seed`` drives data order and adapter init.

    ``precompute_ref_log_probs=True``: reference log-probs come from the dataset
    (:class:`prefsweep.train.trl_adapter.PrecomputedRefDPOTrainer`).
    """
    from trl import DPOConfig

    sec = resolve_section(section, "dpo")
    kwargs = _trainer_kwargs({**sec, **runtime_values(section, "dpo")}, output_dir=output_dir, seed=seed,
                             run_name=run_name, report_to=report_to)
    return DPOConfig(beta=float(sec["beta"]), precompute_ref_log_probs=True, **kwargs)


# --------------------------------------------------------------------------------------------
# Data checks
# --------------------------------------------------------------------------------------------


def too_long_prompts(lengths: Sequence[int], ids: Sequence[str], max_length: int) -> list[tuple[str, int]]:
    """``(id, length)`` of the records whose prompt has ``max_length`` tokens or more."""
    if len(lengths) != len(ids):
        raise ValueError(f"{len(lengths)} prompt lengths for {len(ids)} record ids")
    return [(str(i), int(n)) for i, n in zip(ids, lengths) if n >= max_length]


def prompt_length_message(bad: Sequence[tuple[str, int]], total: int, *, max_length: int, key: str,
                          id_name: str, shown: int = 5) -> str:
    """What :func:`check_prompt_lengths` says: how many, the first few ids with their lengths, the fix."""
    examples = ", ".join(f"{id_name} {i!r} ({n} tokens)" for i, n in bad[:shown])
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return (f"{len(bad)} of {total} prompts have at least {key}={max_length} tokens, so no completion token "
            f"would be left to train on or score: {examples}{more}; shorten these prompts (or drop them) or "
            f"raise {key} (at most the model's context)")


def check_prompt_lengths(tokenizer, prompts: Sequence[str], ids: Sequence[str], *, max_length: int, key: str,
                         id_name: str, source: str | os.PathLike) -> None:
    """Raise :class:`DataError` when a prompt fills ``max_length`` (see the module doc).

    Prompts are tokenized as TRL's trainers do (:func:`prefsweep.train.trl_adapter.prompt_token_count`);
    ``ids`` name the records (e.g. ``prompt_id``), ``source`` the file they come from.
    """
    from prefsweep.train.trl_adapter import prompt_token_count

    bad = too_long_prompts([prompt_token_count(tokenizer, p) for p in prompts], ids, max_length)
    if bad:
        raise DataError(f"{source}: " + prompt_length_message(bad, len(prompts), max_length=max_length, key=key,
                                                              id_name=id_name))


def model_context(model) -> int | None:
    """Positions the model can attend to (``max_position_embeddings``), if its config says."""
    return getattr(model.config.get_text_config(), "max_position_embeddings", None)


def check_max_length(model, max_length: int, key: str, model_path: str | os.PathLike) -> None:
    """``max_length`` must fit the model's context; else :class:`~prefsweep.config.ConfigError`."""
    context = model_context(model)
    if context is not None and max_length > context:
        raise ConfigError(f"{key}: {max_length} exceeds the context of {model_path} "
                          f"(max_position_embeddings {context}); use at most {context}")


# --------------------------------------------------------------------------------------------
# Fingerprints, checkpoints, resume
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Runtime helpers shared by the scripts
# --------------------------------------------------------------------------------------------


def configure_runtime(threads: int | None = None) -> None:
    """Quiet, reproducible job runtime: logging to stderr, no progress bars, torch thread count.

    ``threads``: torch intra-op threads (the rule's ``threads``). Tiny models run fastest with 1;
    several threads on a shared, busy CPU can be many times slower. A process of a multi-process
    job (:mod:`prefsweep.launch`) also picks CPU or GPU here
    (:func:`prefsweep.distributed.setup_processes`) and names its rank in every log line.
    """
    from prefsweep.distributed import rank, setup_processes, world_size

    setup_processes()
    # Several processes of one job share its log: each line says which rank wrote it.
    where = f" rank{rank()}" if world_size() > 1 else ""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import torch

    datasets.disable_progress_bars()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(int(threads))


#: dtype of the weights a training job loads: fp32 master weights, whatever the checkpoint's
#: dtype (``bf16: true`` trains them under bf16 autocast, the mixed precision of the DPO paper's
#: reference code). transformers 5 would otherwise load the checkpoint's dtype (fp16 for Pythia).
TRAIN_DTYPE = "float32"


def load_model_and_tokenizer(name_or_path: str | os.PathLike, **model_kwargs: Any):
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from a hub id or a local HF directory.

    A hub id loads through :mod:`prefsweep.hub` (the local cache with no network when it is
    there; otherwise a bounded wait for the hub, and a :class:`~prefsweep.hub.HubError` saying
    what to do).

    Weights are read from safetensors only (a pickled ``pytorch_model.bin`` can run code; a
    directory without safetensors is an error) and never with ``trust_remote_code``: every model
    the workflow loads is one transformers implements itself. ``model_kwargs`` go to
    ``from_pretrained`` (e.g. ``dtype=TRAIN_DTYPE``; default: the checkpoint's dtype). A tokenizer
    without a padding token gets its eos token as pad (TRL's own fallback), written into the
    model config too so the saved pair agrees.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefsweep import hub

    for key in ("trust_remote_code", "use_safetensors"):
        if key in model_kwargs:
            raise ValueError(f"load_model_and_tokenizer: {key} is fixed (safetensors, no remote code)")
    tokenizer = hub.from_pretrained(AutoTokenizer.from_pretrained, name_or_path, trust_remote_code=False)
    model = hub.from_pretrained(AutoModelForCausalLM.from_pretrained, name_or_path, trust_remote_code=False,
                                use_safetensors=True, **model_kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))
