"""HelpSteer2 (``data.source: helpsteer2``): nvidia/HelpSteer2 as ballots.

One prompt per ``prompt`` text (its rated responses), one voter (and group) per attribute
(helpfulness, ...) ranking the responses by its rating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefsweep.data.ballots import BallotRecord, gc_paused
from prefsweep.data.sources.hf_dataset import (
    Builder, dataset_rows, dataset_source, load_hf, parse_rating, rating_tiers, require_columns, row_error, split_where,
    text_id,
)
from prefsweep.data.sources.registry import register

#: HelpSteer2 (nvidia/HelpSteer2 card: columns prompt, response and five attributes, each an
#: integer rating 0-4; splits train and validation).
HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER2_RANGE = (0, 4)


def load_helpsteer2(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """nvidia/HelpSteer2 (splits ``train``, ``validation``): rows are (prompt, response, five
    0-4 ratings); the rows of one ``prompt`` text are one prompt (id from its text, topic
    ``helpsteer2``: the data have none), its responses the candidates. Each attribute of
    ``spec["attributes"]`` is one voter (and its own group) whose ranking orders the responses
    by that rating (equal ratings tied). The card's rows keep no annotator ids: per-attribute
    voters are the finest individual preferences the data hold."""
    ds = load_hf(spec, "helpsteer2", None, cache_dir)
    where = split_where(spec)
    attrs = list(spec["attributes"])
    require_columns(ds, ("prompt", "response", *attrs), where, "HelpSteer2")
    b = Builder(where, spec["max_prompts"])
    ratings: dict[str, dict[str, dict[str, float]]] = {}
    lo, hi = HELPSTEER2_RANGE
    with gc_paused():
        for row, r in dataset_rows(ds, ("prompt", "response", *attrs)):
            for key in ("prompt", "response"):
                if not isinstance(r[key], str) or not r[key].strip():
                    raise row_error(where, row, "prompt", str(r["prompt"])[:40], key, f"expected a non-empty string, got {r[key]!r}")
            pid = text_id("hs2", r["prompt"])
            rec = b.prompt(pid, r["prompt"], "helpsteer2")
            if rec is None:
                continue
            n_before = len(rec["cands"])
            cid = b.candidate(rec, r["response"])
            if len(rec["cands"]) == n_before:
                b.dropped_votes += 1  # the same response text again: its first ratings stand
                continue
            per = ratings.setdefault(pid, {})
            for attr in attrs:
                per.setdefault(attr, {})[cid] = parse_rating(r[attr], lo, hi, True, where, row, "prompt_id", pid, attr)
    for pid, per in ratings.items():
        for attr in attrs:
            b.prompts[pid]["votes"].append({"ranking": rating_tiers(per[attr]), "weight": 1.0, "voter": attr, "group": attr})
    return b.records("HelpSteer2")


register(dataset_source(
    "helpsteer2", load_helpsteer2,
    card="https://huggingface.co/datasets/nvidia/HelpSteer2",
    citation="Wang et al. 2024, HelpSteer2: Open-source dataset for training top-performing reward models",
))
