"""Stanford Human Preferences (``data.source: shp``): stanfordnlp/SHP as ballots.

One prompt per post (its comments), one pairwise vote per row; no voters, no groups.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from prefsweep.data.ballots import BallotError, BallotRecord, gc_paused, validate_ballots
from prefsweep.data.sources.hf_dataset import dataset_rows, dataset_source, load_hf, require_columns, split_where
from prefsweep.data.sources.registry import register

log = logging.getLogger(__name__)

#: Stanford Human Preferences columns the adapter reads.
SHP_COLUMNS = (
    "post_id", "domain", "history", "c_root_id_A", "c_root_id_B",
    "human_ref_A", "human_ref_B", "labels",
)


def load_shp(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """Stanford Human Preferences (stanfordnlp/SHP card: post_id, domain, history, c_root_id_A/B,
    human_ref_A/B, score_A/B, labels (1: A preferred)) as ballots, one record per post:
    ``prompt_id`` = ``post_id``, ``prompt`` = ``history``, ``topic`` = ``domain``; candidates =
    the post's distinct comments (``c_root_id``, ``human_ref``); one pairwise vote per row.

    Filters (all optional): ``domains`` keeps those ``domain`` values; ``min_score_ratio`` keeps
    rows whose score ratio max(score_A/score_B, score_B/score_A) is at least that (the DPO
    reference's SHP loader uses 2); ``max_pairs_per_post`` keeps a post's first that many kept
    rows; ``max_posts`` keeps the first that many posts. Candidate texts must differ within a
    post (an error otherwise, naming the post).
    """
    ds = load_hf(spec, "shp", None, cache_dir)
    where = split_where(spec)
    require_columns(ds, SHP_COLUMNS + ("score_A", "score_B"), where, "SHP")
    columns = SHP_COLUMNS + ("score_A", "score_B")
    ds = ds.select_columns(list(columns))
    if spec["domains"]:
        keep = set(spec["domains"])
        ds = ds.filter(lambda batch: [d in keep for d in batch["domain"]], batched=True)
    min_ratio, max_pairs, max_posts = spec["min_score_ratio"], spec["max_pairs_per_post"], spec["max_posts"]
    posts: dict[str, dict[str, Any]] = {}
    filtered = 0
    with gc_paused():
        for row_no, r in dataset_rows(ds, columns):
            pid = str(r["post_id"])
            label = r["labels"]
            if label not in (0, 1):
                raise BallotError(f"{where}: row {row_no} (post_id {pid!r}): labels: expected 1 (A preferred) "
                                  f"or 0 (B preferred), got {label!r}")
            if min_ratio is not None:
                sa, sb = r["score_A"], r["score_B"]
                for key, s in (("score_A", sa), ("score_B", sb)):
                    if not isinstance(s, (int, float)) or isinstance(s, bool) or s < 0:
                        raise BallotError(f"{where}: row {row_no} (post_id {pid!r}): {key}: expected a "
                                          f"score >= 0, got {s!r}")
                lo, hi = min(sa, sb), max(sa, sb)
                if (hi / lo if lo > 0 else math.inf) < min_ratio:
                    filtered += 1
                    continue
            post = posts.get(pid)
            if post is None:
                if max_posts is not None and len(posts) >= max_posts:
                    continue
                post = posts[pid] = {"prompt_id": pid, "prompt": r["history"], "topic": r["domain"],
                                     "candidates": {}, "votes": []}
            if max_pairs is not None and len(post["votes"]) >= max_pairs:
                filtered += 1
                continue
            a, b = str(r["c_root_id_A"]), str(r["c_root_id_B"])
            post["candidates"].setdefault(a, r["human_ref_A"])
            post["candidates"].setdefault(b, r["human_ref_B"])
            post["votes"].append({"pair": [a, b], "winner": a if label == 1 else b, "weight": 1.0})
        records = [
            {**p, "candidates": [{"id": cid, "text": text} for cid, text in p["candidates"].items()]}
            for p in posts.values()
        ]
    if filtered:
        log.warning("%s: %d rows left out by min_score_ratio / max_pairs_per_post", where, filtered)
    return validate_ballots(records, where, unit="post", distinct_texts=True)


def _max_posts(data: Mapping[str, Any]) -> int | None:
    return data["shp"]["max_posts"]


register(dataset_source(
    "shp", load_shp,
    card="https://huggingface.co/datasets/stanfordnlp/SHP",
    citation="Ethayarajh et al. 2022, Understanding Dataset Difficulty with V-Usable Information",
    train_prompts=_max_posts,
))
