"""Reference log-probs of preference pairs, computed once per arm and reused by every DPO run.

DPO's loss (Rafailov et al. 2023, eq. 7) needs, for each pair, the summed log-probability of
the chosen and of the rejected completion under the reference policy (the DPO init model):

    ref_chosen_logps   = sum_t log pi_ref(y_w,t | x, y_w,<t)
    ref_rejected_logps = sum_t log pi_ref(y_l,t | x, y_l,<t)

They depend only on the reference model and the pair, not on the DPO run, so one forward pass
per pair of the arm's largest series serves every size, matching and seed. The computation is
TRL 1.16 ``DPOTrainer``'s own (``_prepare_dataset`` + ``DataCollatorForPreference`` +
``compute_ref_log_probs``), so the values equal those TRL would compute itself:

1. the eos token is appended to ``chosen`` / ``rejected`` unless they already end with it;
2. ``prompt``, ``prompt + chosen`` and ``prompt + rejected`` are tokenized separately (no extra
   special tokens for a tokenizer without a template: ``tokenizer(text=...)``); the completion
   starts at the longest common token prefix of the prompt and both full sequences;
3. ``prompt + completion`` is cut to ``max_length`` tokens (``truncation_mode`` keep_start cuts the
   end of the completion, keep_end the start of the prompt), so only the kept completion tokens
   count;
4. the sum runs over completion tokens (labels other than -100), each scored by the logits at
   the position before it, via TRL's fused log-prob head.

Table format (``ref_logps/{arm}.parquet``): ``pair_id`` (str), ``ref_chosen_logps``,
``ref_rejected_logps`` (float64), one row per distinct pair_id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

log = logging.getLogger(__name__)

REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
TEXT_COLUMNS = ("prompt", "chosen", "rejected")


def tokenize_pair(prompt: str, chosen: str, rejected: str, tokenizer) -> dict[str, list[int]]:
    """Token ids of one non-conversational pair, as TRL 1.16 ``DPOTrainer._prepare_dataset`` makes them.

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


def _ensure_fused_head(model) -> None:
    from trl.trainer.utils import add_fused_lm_head

    # add_fused_lm_head wraps model.forward; the plain forward (fused_lm_head=False) is unchanged.
    if not getattr(model, "_prefsweep_fused_lm_head", False):
        add_fused_lm_head(model)
        model._prefsweep_fused_lm_head = True


@torch.no_grad()
def compute_ref_logps(model, tokenizer, pairs: pd.DataFrame, *, max_length: int | None,
                      truncation_mode: str = "keep_start", batch_size: int = 32,
                      autocast_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Summed completion log-probs of ``chosen`` and ``rejected`` under ``model`` for every pair.

    ``pairs``: columns pair_id, prompt, chosen, rejected (rendered strings, as in pairs.parquet).
    ``max_length`` / ``truncation_mode``: those of the DPO runs (config ``dpo.max_length``).
    ``autocast_dtype``: e.g. ``torch.bfloat16`` to mirror a ``bf16`` DPO run on GPU.
    Returns the ref-logps table (module doc), rows in the order of ``pairs``. ``model`` gets
    TRL's fused log-prob head added to its forward (plain calls are unaffected) and is put in
    eval mode.
    """
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    missing = [c for c in ("pair_id", *TEXT_COLUMNS) if c not in pairs.columns]
    if missing:
        raise KeyError(f"pairs table lacks columns {missing}")
    if tokenizer.pad_token is None:  # as DPOTrainer does
        tokenizer.pad_token = tokenizer.eos_token
    examples = [tokenize_pair(p, c, r, tokenizer)
                for p, c, r in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"])]
    if max_length is not None and truncation_mode == "keep_start":
        n_cut = sum(len(e["prompt_ids"]) >= max_length for e in examples)
        if n_cut:
            log.warning("%d pairs have a prompt of >= max_length=%d tokens: no completion token is left "
                        "(log-prob 0), and DPO drops them", n_cut, max_length)
    collator = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id, max_length=max_length,
                                         truncation_mode=truncation_mode)
    _ensure_fused_head(model)
    model.eval()
    device = next(model.parameters()).device
    chosen_out: list[np.ndarray] = []
    rejected_out: list[np.ndarray] = []
    for start in range(0, len(examples), batch_size):
        batch = collator(examples[start:start + batch_size])
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        ctx = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
               else torch.autocast(device.type, enabled=False))
        with ctx:
            out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                        labels=labels.to(device), use_cache=False, fused_lm_head=True)
        logps = out.log_probs.sum(dim=1).float().cpu()
        c, r = logps.chunk(2, dim=0)
        chosen_out.append(c.numpy())
        rejected_out.append(r.numpy())
    n = len(examples)
    return pd.DataFrame({
        "pair_id": pairs["pair_id"].astype(str).to_numpy(),
        "ref_chosen_logps": np.concatenate(chosen_out).astype(np.float64) if n else np.zeros(0),
        "ref_rejected_logps": np.concatenate(rejected_out).astype(np.float64) if n else np.zeros(0),
    })


def union_pairs(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Distinct pairs of several pairs tables, by ``pair_id`` (first occurrence order).

    A pair_id must mean the same texts everywhere; a conflict raises ``ValueError``.
    """
    frames = [t.loc[:, ["pair_id", *TEXT_COLUMNS]] for t in tables]
    if not frames:
        raise ValueError("no pairs tables given")
    allp = pd.concat(frames, ignore_index=True)
    distinct = allp.drop_duplicates(ignore_index=True)
    dup = distinct["pair_id"].duplicated(keep=False)
    if dup.any():
        bad = distinct.loc[dup, "pair_id"].unique()[:5].tolist()
        raise ValueError(f"pair_id with different texts in different tables: {bad}")
    return distinct


def attach_ref_logps(pairs: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with ``ref_chosen_logps`` / ``ref_rejected_logps`` joined on ``pair_id`` (order kept).

    Every pair must have its reference values: a missing pair_id raises ``KeyError`` naming them.
    """
    if ref["pair_id"].duplicated().any():
        raise ValueError("reference log-probs table has duplicate pair_ids")
    table = ref.set_index("pair_id")
    ids = pairs["pair_id"].astype(str)
    missing = ids[~ids.isin(table.index)]
    if len(missing):
        raise KeyError(f"{len(missing)} of {len(pairs)} pairs have no reference log-probs (computed for another "
                       f"series or model?), e.g. {missing.head(5).tolist()}")
    out = pairs.copy()
    for col in REF_COLUMNS:
        out[col] = table.loc[ids, col].to_numpy(dtype=np.float64)
    if not np.isfinite(out[list(REF_COLUMNS)].to_numpy()).all():
        raise ValueError("reference log-probs contain NaN or inf")
    return out


def dpo_columns() -> list[str]:
    """Columns of a DPO dataset: the texts and the reference log-probs."""
    return [*TEXT_COLUMNS, *REF_COLUMNS]
