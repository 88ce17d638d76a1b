"""UltraFeedback (``data.source: ultrafeedback``): openbmb/UltraFeedback as ballots.

One prompt per ``instruction`` (its 4 completions), one voter (and group) per aspect (honesty,
...) ranking the completions by its rating.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prefsweep.data.ballots import BallotRecord, gc_paused
from prefsweep.data.sources.hf_dataset import (
    Builder, dataset_rows, dataset_source, load_hf, parse_rating, rating_tiers, require_columns, row_error, split_where,
    text_id,
)
from prefsweep.data.sources.registry import register

log = logging.getLogger(__name__)

#: UltraFeedback (openbmb/UltraFeedback card: columns source, instruction, completions; each
#: completion has response, model and annotations[aspect]["Rating"], "1".."5" or "N/A").
ULTRAFEEDBACK_ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
ULTRAFEEDBACK_RANGE = (1, 5)


def load_ultrafeedback(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """openbmb/UltraFeedback (split ``train``): one prompt per ``instruction`` (id from its text,
    topic = ``source``; a repeated instruction keeps its first row), its ``completions`` the
    candidates. Each aspect of ``spec["aspects"]`` is one voter (and group) ranking the
    completions by ``annotations[aspect]["Rating"]`` (1-5). Completions rated "N/A" on an aspect
    are left out of that aspect's vote: it becomes pairwise votes among the rated ones (a
    ranking would put the unrated ones last)."""
    ds = load_hf(spec, "ultrafeedback", None, cache_dir)
    where = split_where(spec)
    require_columns(ds, ("source", "instruction", "completions"), where, "UltraFeedback")
    aspects = list(spec["aspects"])
    lo, hi = ULTRAFEEDBACK_RANGE
    b = Builder(where, spec["max_prompts"])
    repeated = 0
    with gc_paused():
        for row, r in dataset_rows(ds, ("source", "instruction", "completions")):
            text = r["instruction"]
            if not isinstance(text, str) or not text.strip():
                raise row_error(where, row, "instruction", text, "instruction", "expected a non-empty string")
            pid = text_id("uf", text)
            if pid in b.prompts:
                repeated += 1
                continue
            rec = b.prompt(pid, text, r["source"] or "none")
            if rec is None:
                continue
            comps = r["completions"]
            if not isinstance(comps, list):
                raise row_error(where, row, "prompt_id", pid, "completions", f"expected a list, got {type(comps).__name__}")
            per: dict[str, dict[str, float]] = {a: {} for a in aspects}
            for i, c in enumerate(comps):
                f = f"completions[{i}]"
                resp = c.get("response") if isinstance(c, dict) else None
                if not isinstance(resp, str) or not resp.strip():
                    raise row_error(where, row, "prompt_id", pid, f"{f}.response", f"expected a non-empty string, got {resp!r}")
                n_before = len(rec["cands"])
                cid = b.candidate(rec, resp)
                if len(rec["cands"]) == n_before:
                    b.dropped_votes += 1
                    continue
                ann = c.get("annotations")
                for a in aspects:
                    rating = ann.get(a, {}).get("Rating") if isinstance(ann, dict) and isinstance(ann.get(a), dict) else None
                    v = parse_rating(rating, lo, hi, True, where, row, "prompt_id", pid, f"{f}.annotations.{a}.Rating", na=("N/A",))
                    if v is not None:
                        per[a][cid] = v
            for a in aspects:
                rated = per[a]
                if len(rated) == len(rec["cands"]):
                    rec["votes"].append({"ranking": rating_tiers(rated), "weight": 1.0, "voter": a, "group": a})
                    continue
                ids = list(rated)
                for x in range(len(ids)):
                    for y in range(x + 1, len(ids)):
                        i, j = ids[x], ids[y]
                        w = None if rated[i] == rated[j] else (i if rated[i] > rated[j] else j)
                        b.pair(rec, i, j, w, voter=a, group=a)
    if repeated:
        log.warning("%s: %d rows repeat an earlier instruction and were skipped", where, repeated)
    return b.records("UltraFeedback")


register(dataset_source(
    "ultrafeedback", load_ultrafeedback,
    card="https://huggingface.co/datasets/openbmb/UltraFeedback",
    citation="Cui et al. 2023, UltraFeedback: Boosting Language Models with High-quality Feedback",
))
