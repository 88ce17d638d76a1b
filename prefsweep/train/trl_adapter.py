"""Every private TRL / transformers detail the project relies on, behind one small interface.

TRL and transformers change their internals between minor releases; this module is the only
place that touches them, and ``tests/unit/test_trl_adapter.py`` is the gate for an upgrade: it
checks each function below against the library's own behaviour (reference log-probs equal to
what TRL's own precompute puts in the dataset within 1e-5, the same prompt tokens in SFT, DPO and
generation, no reference forward inside a DPO job, a resumed trainer holding exactly the
checkpoint's weights). Written against transformers 5.24 and TRL 1.16; if those tests pass on a
new version, the project's use of it is unchanged.

What is used, and why
    ``trl.data_utils._tokenize`` / ``common_prefix_length``
        how TRL's ``DPOTrainer._prepare_dataset`` and ``SFTTrainer`` tokenize a prompt and a
        prompt + completion (:func:`tokenize_pair`, :func:`prompt_token_count`).
    ``trl.trainer.dpo_trainer.DataCollatorForPreference``
        TRL's preference collator: padding, truncation to ``max_length`` and the completion mask
        exactly as in training (:func:`preference_batches`).
    ``trl.trainer.utils.add_fused_lm_head``
        TRL's fused log-prob head, the one its DPO loss uses (:func:`completion_logps`).
    ``DPOTrainer._precompute_ref_logps`` and ``trl.trainer.dpo_trainer.hash_module``
        :class:`PrecomputedRefDPOTrainer`: the reference log-probs are dataset columns computed
        once per arm (``prefsweep.train.reflogps``). With ``precompute_ref_log_probs=True`` TRL 1.16
        builds no reference model (``ref_model`` stays ``None``, also with PEFT) and its loss reads
        the columns ``ref_chosen_logps`` / ``ref_rejected_logps``; but its ``__init__`` still calls
        ``_precompute_ref_logps``, which recomputes them unless a datasets cache file named by
        (dataset fingerprint, model hash) exists - never the case for an in-memory dataset, whose
        cache name is random (and the columns it would add clash with ours). The override only
        checks that the columns are there; the hash of every weight, computed to name that cache,
        is skipped; a reference model built anyway (FSDP does) is an error.
    ``transformers.Trainer._load_from_checkpoint`` / ``_issue_warnings_after_load``
        :class:`ExactResumeMixin`. ``save_pretrained`` writes a checkpoint in the model's
        *original* key names (transformers 5 reverts its renamings on save: GPT-NeoX's
        ``lm_head.weight`` is written as ``embed_out.weight``), but ``Trainer`` resumes with a raw
        ``model.load_state_dict(safetensors_file, strict=False)`` that applies no renaming, then
        only *logs* the mismatch (``missing keys ['lm_head.weight']``, ``unexpected keys
        ['embed_out.weight']``) and trains on with the init model's head. The mixin loads full
        checkpoints through ``from_pretrained`` (which applies the renamings) and a strict
        ``load_state_dict``, checks PEFT adapters tensor by tensor against the file, and turns any
        incomplete load into :class:`CheckpointLoadError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Dataset columns TRL's DPO loss reads when ``precompute_ref_log_probs=True``: the summed
#: completion log-probs of the chosen / rejected response under the reference policy.
REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


class CheckpointLoadError(RuntimeError):
    """A checkpoint that cannot be read, or does not fill every weight of the model."""


# --------------------------------------------------------------------------------------------
# Tokenization, collation, log-probs: exactly as TRL trains
# --------------------------------------------------------------------------------------------


def prompt_token_count(tokenizer, prompt: str) -> int:
    """Tokens of a rendered prompt as TRL's SFT and DPO trainers tokenize it (no chat template)."""
    from trl.data_utils import _tokenize

    return len(_tokenize(tokenizer, prompt)["input_ids"])


def tokenize_pair(prompt: str, chosen: str, rejected: str, tokenizer) -> dict[str, list[int]]:
    """Token ids of one non-conversational pair, as TRL 1.16 ``DPOTrainer._prepare_dataset`` makes them.

    The eos token is appended to ``chosen`` / ``rejected`` unless they end with it; ``prompt``,
    ``prompt + chosen`` and ``prompt + rejected`` are tokenized separately and the completion starts
    at the longest common token prefix of the prompt and both full sequences.
    Returns ``{"prompt_ids", "chosen_ids", "rejected_ids"}`` (completions include the eos token).
    """
    from trl.data_utils import _tokenize, common_prefix_length

    eos = tokenizer.eos_token
    if not chosen.endswith(eos):
        chosen = chosen + eos
    if not rejected.endswith(eos):
        rejected = rejected + eos
    prompt_ids = _tokenize(tokenizer, prompt)["input_ids"]
    prompt_chosen_ids = _tokenize(tokenizer, prompt + chosen)["input_ids"]
    prompt_rejected_ids = _tokenize(tokenizer, prompt + rejected)["input_ids"]
    prompt_len = min(common_prefix_length(prompt_ids, prompt_chosen_ids),
                     common_prefix_length(prompt_ids, prompt_rejected_ids))
    return {
        "prompt_ids": prompt_ids[:prompt_len],
        "chosen_ids": prompt_chosen_ids[prompt_len:],
        "rejected_ids": prompt_rejected_ids[prompt_len:],
    }


def preference_batches(examples: Sequence[dict[str, list[int]]], *, pad_token_id: int, max_length: int | None,
                       truncation_mode: str, batch_size: int) -> Iterator[dict[str, Any]]:
    """Batches of :func:`tokenize_pair` outputs through TRL's ``DataCollatorForPreference``.

    Each batch: ``input_ids``, ``attention_mask``, ``completion_mask`` (long tensors of shape
    ``(2 * n, length)``, the chosen rows first, then the rejected ones), each sequence cut to
    ``max_length`` (``keep_start`` cuts the end of the completion, ``keep_end`` the prompt start).
    """
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    collator = DataCollatorForPreference(pad_token_id=pad_token_id, max_length=max_length,
                                         truncation_mode=truncation_mode)
    for start in range(0, len(examples), batch_size):
        yield collator(list(examples[start:start + batch_size]))


def _ensure_fused_head(model) -> None:
    from trl.trainer.utils import add_fused_lm_head

    # add_fused_lm_head wraps model.forward; the plain forward (fused_lm_head=False) is unchanged.
    if not getattr(model, "_prefsweep_fused_lm_head", False):
        add_fused_lm_head(model)
        model._prefsweep_fused_lm_head = True


def completion_logps(model, batch: dict[str, Any], autocast_dtype=None):
    """Summed completion log-probs of a :func:`preference_batches` batch: ``(chosen, rejected)``.

    Float32 CPU tensors of shape ``(n,)``; each completion token is scored by the logits at the
    position before it through TRL's fused log-prob head (the DPO loss's own computation).
    Runs without gradients under ``autocast_dtype`` (e.g. ``torch.bfloat16``) or full precision.
    """
    import torch

    _ensure_fused_head(model)
    device = next(model.parameters()).device
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    ctx = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
           else torch.autocast(device.type, enabled=False))
    with torch.no_grad(), ctx:
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    labels=labels.to(device), use_cache=False, fused_lm_head=True)
    logps = out.log_probs.sum(dim=1).float().cpu()
    chosen, rejected = logps.chunk(2, dim=0)
    return chosen, rejected


# --------------------------------------------------------------------------------------------
# Exact resume
# --------------------------------------------------------------------------------------------


def _what_to_do(checkpoint: Path) -> str:
    return (f"delete {checkpoint} to resume from the previous checkpoint, or its directory "
            f"{checkpoint.parent} to start over")


def load_full_checkpoint(model, checkpoint: str | os.PathLike) -> None:
    """Load a ``save_pretrained`` checkpoint into ``model`` completely, or raise.

    ``from_pretrained`` (safetensors only, no remote code) applies the key renamings
    transformers reverted on save; every tensor must then match a model tensor one to one
    (strict ``load_state_dict``). Costs a second copy of the weights in CPU memory for a moment.
    """
    checkpoint = Path(checkpoint)
    dtype = next(model.parameters()).dtype
    try:
        loaded, info = type(model).from_pretrained(checkpoint, dtype=dtype, use_safetensors=True,
                                                   trust_remote_code=False, output_loading_info=True)
    except Exception as exc:  # safetensors, OSError, ValueError...: the message is what matters
        raise CheckpointLoadError(f"{checkpoint}: its weights cannot be read ({type(exc).__name__}: {exc}); "
                                  f"{_what_to_do(checkpoint)}") from exc
    # from_pretrained's loading info: missing_keys, unexpected_keys, mismatched_keys, error_msgs.
    problems = [f"{kind.replace('_', ' ')} {sorted(map(str, keys))}" for kind, keys in info.items() if keys]
    if problems:
        raise CheckpointLoadError(f"{checkpoint}: does not load completely into {type(model).__name__} "
                                  f"({'; '.join(problems)}); {_what_to_do(checkpoint)}")
    try:
        model.load_state_dict(loaded.state_dict(), strict=True)
    except RuntimeError as exc:
        raise CheckpointLoadError(f"{checkpoint}: does not fit {type(model).__name__} ({exc}); "
                                  f"{_what_to_do(checkpoint)}") from exc


def check_adapter_loaded(model, checkpoint: str | os.PathLike) -> None:
    """Every tensor of the checkpoint's ``adapter_model.safetensors`` equals the model's, and no
    adapter weight of the model is missing from it; else :class:`CheckpointLoadError`."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    path = checkpoint / "adapter_model.safetensors"
    try:
        saved = load_file(path)
    except Exception as exc:
        raise CheckpointLoadError(f"{path}: the adapter weights cannot be read ({type(exc).__name__}: {exc}); "
                                  f"{_what_to_do(checkpoint)}") from exc
    current = get_peft_model_state_dict(model, adapter_name=model.active_adapter)
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    differ = sorted(k for k in set(saved) & set(current) if not torch.equal(saved[k].cpu(), current[k].cpu()))
    if missing or unexpected or differ:
        raise CheckpointLoadError(f"{checkpoint}: the adapter did not load completely (missing keys {missing}, "
                                  f"unexpected keys {unexpected}, not loaded {differ}); {_what_to_do(checkpoint)}")


class ExactResumeMixin:
    """Mixed into a ``transformers.Trainer`` subclass: resume restores the checkpoint exactly.

    Replaces ``Trainer._load_from_checkpoint`` (see the module doc for the bug it avoids):
    full models via :func:`load_full_checkpoint`, PEFT adapters via the Trainer's own
    ``load_adapter`` then :func:`check_adapter_loaded`. FSDP / DeepSpeed / SageMaker loads stay
    the Trainer's, with its missing/unexpected-keys warning turned into an error.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        from peft import PeftModel

        model = self.model if model is None else model
        if self.is_fsdp_enabled or self.is_deepspeed_enabled or model is not self.model:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        if isinstance(model, PeftModel):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            check_adapter_loaded(model, resume_from_checkpoint)
        else:
            load_full_checkpoint(model, resume_from_checkpoint)
        log.info("resumed weights from %s: every tensor loaded", resume_from_checkpoint)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        if load_result.missing_keys or load_result.unexpected_keys:
            raise CheckpointLoadError(f"checkpoint does not load completely: missing keys {load_result.missing_keys}, "
                                      f"unexpected keys {load_result.unexpected_keys}")


# --------------------------------------------------------------------------------------------
# Trainers
# --------------------------------------------------------------------------------------------


@functools.cache
def _sft_trainer_cls():
    from trl import SFTTrainer

    class ExactResumeSFTTrainer(ExactResumeMixin, SFTTrainer):
        """TRL's ``SFTTrainer`` whose resume restores the checkpoint exactly."""

    return ExactResumeSFTTrainer


@functools.cache
def _dpo_trainer_cls():
    from trl import DPOTrainer

    class PrecomputedRefDPOTrainer(ExactResumeMixin, DPOTrainer):
        """``DPOTrainer`` whose reference log-probs are dataset columns, never recomputed.

        Requires ``args.precompute_ref_log_probs=True`` and no ``ref_model``: TRL then keeps
        ``self.ref_model = None`` and its loss reads ``ref_chosen_logps`` / ``ref_rejected_logps``
        from each batch. The precompute hook only checks the columns. Resume is exact.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            training_args = kwargs.get("args")
            if training_args is None or not training_args.precompute_ref_log_probs:
                raise ValueError("PrecomputedRefDPOTrainer needs a DPOConfig with precompute_ref_log_probs=True")
            if kwargs.get("ref_model") is not None or len(args) > 1:
                raise ValueError("PrecomputedRefDPOTrainer takes no ref_model: the reference log-probs are data")
            with _skip_model_hash():
                super().__init__(*args, **kwargs)
            if self.ref_model is not None:  # e.g. FSDP, where TRL loads one for its own precompute
                raise RuntimeError("TRL built a reference model although the reference log-probs are precomputed")

        def _precompute_ref_logps(self, dataset, name, batch_size):
            missing = [c for c in REF_COLUMNS if c not in dataset.column_names]
            if missing:
                raise ValueError(f"{name} dataset lacks the precomputed reference columns {missing}")
            return dataset

    return PrecomputedRefDPOTrainer


@contextlib.contextmanager
def _skip_model_hash() -> Iterator[None]:
    """TRL hashes every weight of the policy to name its precompute cache; we have no cache.

    For a billion-parameter model that is a full device-to-host copy for nothing, so the hash
    function seen by ``trl.trainer.dpo_trainer`` is stubbed while the trainer is built.
    """
    import trl.trainer.dpo_trainer as dpo_module

    original = dpo_module.hash_module
    dpo_module.hash_module = lambda module: "precomputed-ref-logps"
    try:
        yield
    finally:
        dpo_module.hash_module = original


def make_sft_trainer(model, tokenizer, train_dataset, args, *, peft_config=None,
                     callbacks: Iterable[Any] | None = None):
    """TRL ``SFTTrainer`` with exact resume. ``train_dataset``: columns prompt, completion (rendered)."""
    return _sft_trainer_cls()(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer,
                              peft_config=peft_config, callbacks=list(callbacks or []))


def make_dpo_trainer(model, tokenizer, train_dataset, args, *, peft_config=None,
                     callbacks: Iterable[Any] | None = None):
    """A :class:`PrecomputedRefDPOTrainer` with exact resume.

    ``train_dataset``: ``datasets.Dataset`` with columns prompt, chosen, rejected (rendered
    strings) and ref_chosen_logps, ref_rejected_logps (float, summed completion log-probs).
    """
    return _dpo_trainer_cls()(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer,
                              peft_config=peft_config, callbacks=list(callbacks or []))


def __getattr__(name: str):
    # `from prefsweep.train.trl_adapter import PrecomputedRefDPOTrainer` without importing TRL at import.
    if name == "PrecomputedRefDPOTrainer":
        return _dpo_trainer_cls()
    if name == "ExactResumeSFTTrainer":
        return _sft_trainer_cls()
    raise AttributeError(name)
