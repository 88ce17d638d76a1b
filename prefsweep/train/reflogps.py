"""Reference log-probs of preference pairs, computed once per arm and reused by every DPO run.

DPO's loss (Rafailov et al. 2023, eq. 7) needs, for each pair, the summed log-probability of
the chosen and of the rejected completion under the reference policy (the DPO init model):

    ref_chosen_logps   = sum_t log pi_ref(y_w,t | x, y_w,<t)
    ref_rejected_logps = sum_t log pi_ref(y_l,t | x, y_l,<t)

They depend only on the reference model and the pair, not on the DPO run, so one forward pass
per pair of the arm's largest series serves every size, matching and seed. The computation is
TRL 1.16 ``DPOTrainer``'s own (``_prepare_dataset`` + ``DataCollatorForPreference`` +
``compute_ref_log_probs``, reached through :mod:`prefsweep.train.trl_adapter`), so the values equal
those TRL would compute itself:

1. the eos token is appended to ``chosen`` / ``rejected`` unless they already end with it;
2. ``prompt``, ``prompt + chosen`` and ``prompt + rejected`` are tokenized separately (no extra
   special tokens for a tokenizer without a template: ``tokenizer(text=...)``); the completion
   starts at the longest common token prefix of the prompt and both full sequences;
3. ``prompt + completion`` is cut to ``max_length`` tokens (``truncation_mode`` keep_start cuts the
   end of the completion, keep_end the start of the prompt), so only the kept completion tokens
   count;
4. the sum runs over completion tokens (labels other than -100), each scored by the logits at
   the position before it, via TRL's fused log-prob head.

A pair whose prompt alone has ``max_length`` tokens or more has no completion token left (TRL's
DPO would drop it silently): that is a :class:`~prefsweep.train.training.DataError` naming the pairs.

With several processes (:mod:`prefsweep.distributed`) each scores a contiguous share of the
pairs and every process gets the whole table, in the order of the pairs (rank 0 writes it).

Table format (``ref_logps/{arm}.parquet``): ``pair_id`` (str), ``ref_chosen_logps``,
``ref_rejected_logps`` (float64), one row per distinct pair_id.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

# REF_COLUMNS and tokenize_pair are TRL's (the adapter's); re-exported as this module's table format.
from prefsweep.train.trl_adapter import REF_COLUMNS, completion_logps, preference_batches, tokenize_pair

__all__ = ["REF_COLUMNS", "TEXT_COLUMNS", "attach_ref_logps", "compute_ref_logps", "dpo_columns", "tokenize_pair",
           "union_pairs"]

TEXT_COLUMNS = ("prompt", "chosen", "rejected")


def compute_ref_logps(model, tokenizer, pairs: pd.DataFrame, *, max_length: int, key: str, batch_size: int,
                      autocast_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Summed completion log-probs of ``chosen`` and ``rejected`` under ``model`` for every pair.

    ``pairs``: columns pair_id, prompt, chosen, rejected (rendered strings, as in pairs.parquet).
    ``max_length``: that of the DPO runs (config ``dpo.max_length``, named ``key`` in errors);
    truncation is TRL's default ``keep_start``, as in the DPO runs.
    ``autocast_dtype``: e.g. ``torch.bfloat16`` to mirror a ``bf16`` DPO run on GPU.
    Returns the ref-logps table (module doc), rows in the order of ``pairs``. ``model`` gets
    TRL's fused log-prob head added to its forward (plain calls are unaffected) and is put in
    eval mode. Raises :class:`~prefsweep.train.training.DataError` for prompts that fill ``max_length``
    (checked over all pairs on every process, before any forward pass).
    With several processes each scores its share (:func:`prefsweep.distributed.shard_bounds`)
    and the shares are gathered: every process returns the whole table.
    """
    from prefsweep import distributed
    from prefsweep.train.training import DataError, prompt_length_message, too_long_prompts

    missing = [c for c in ("pair_id", *TEXT_COLUMNS) if c not in pairs.columns]
    if missing:
        raise KeyError(f"pairs table lacks columns {missing}")
    if tokenizer.pad_token is None:  # as DPOTrainer does
        tokenizer.pad_token = tokenizer.eos_token
    examples = [tokenize_pair(p, c, r, tokenizer)
                for p, c, r in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"])]
    bad = too_long_prompts([len(e["prompt_ids"]) for e in examples], pairs["pair_id"].astype(str).tolist(), max_length)
    if bad:
        raise DataError(prompt_length_message(bad, len(examples), max_length=max_length, key=key, id_name="pair_id"))
    model.eval()
    chosen_out: list[np.ndarray] = []
    rejected_out: list[np.ndarray] = []
    start, stop = distributed.shard_bounds(len(examples))
    for batch in preference_batches(examples[start:stop], pad_token_id=tokenizer.pad_token_id,
                                    max_length=max_length, truncation_mode="keep_start", batch_size=batch_size):
        chosen, rejected = completion_logps(model, batch, autocast_dtype)
        chosen_out.append(chosen.numpy())
        rejected_out.append(rejected.numpy())
    mine = (np.concatenate(chosen_out).astype(np.float64) if chosen_out else np.zeros(0),
            np.concatenate(rejected_out).astype(np.float64) if rejected_out else np.zeros(0))
    shares = distributed.gather([mine])  # one (chosen, rejected) per rank, in rank order
    return pd.DataFrame({
        "pair_id": pairs["pair_id"].astype(str).to_numpy(),
        "ref_chosen_logps": np.concatenate([c for c, _ in shares]),
        "ref_rejected_logps": np.concatenate([r for _, r in shares]),
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
