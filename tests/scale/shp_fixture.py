"""A small dataset in Stanford Human Preferences' schema, written as a local ``datasets`` directory.

    write_shp_dir(out, n_posts=60)   # out/train.jsonl: SHP rows, loadable by load_dataset(out, split="train")

Each post (``post_id``, ``domain``, ``history``) has three top-level comments and one row per
pair of them (SHP's row: ``c_root_id_A/B``, ``human_ref_A/B``, ``score_A/B``, ``labels`` = 1 when
A is preferred, and SHP's other columns). Comments are short sentences from a fixed vocabulary;
the preferred one is the one with the higher hidden score, so majority and Borda agree on most
posts. Deterministic in ``seed``.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

DOMAINS = ("askscience_train", "askculinary_train", "explainlikeimfive_train")
SUBJECTS = ("bread", "rust", "tides", "yeast", "magnets", "clouds", "coffee", "glass", "salt", "rain")
ACTIONS = ("explain", "describe", "compare", "fix", "measure", "cook", "store", "clean")
OPENERS = ("Honestly,", "In short,", "From experience,", "Good question:", "Simply put,")
CLAIMS = ("it depends on heat", "water changes everything", "time matters most", "the surface is key",
          "pressure does the work", "it is mostly chemistry", "air gets trapped inside")
ENDINGS = ("Hope that helps.", "Try it and see.", "Source: a textbook.", "That is the short answer.", "")


def write_shp_dir(out: str | Path, n_posts: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(n_posts):
        subject, action = rng.choice(SUBJECTS), rng.choice(ACTIONS)
        history = f"How would you {action} {subject}? I tried twice and it went wrong (post {p})."
        comments = []
        for c in range(3):
            text = f"{rng.choice(OPENERS)} {rng.choice(CLAIMS)} with {subject}. {rng.choice(ENDINGS)}".strip()
            comments.append({"id": f"c{p}_{c}", "text": f"{text} ({c})", "score": rng.randint(1, 60),
                             "t": 1_600_000_000 + 100 * p + c})
        for a, b in itertools.combinations(comments, 2):
            if a["score"] == b["score"]:
                continue
            rows.append({
                "post_id": f"p{p:03d}", "domain": DOMAINS[p % len(DOMAINS)], "upvote_ratio": 0.9,
                "history": history, "c_root_id_A": a["id"], "c_root_id_B": b["id"],
                "created_at_utc_A": a["t"], "created_at_utc_B": b["t"], "score_A": a["score"],
                "score_B": b["score"], "human_ref_A": a["text"], "human_ref_B": b["text"],
                "labels": int(a["score"] > b["score"]), "seconds_difference": float(b["t"] - a["t"]),
                "score_ratio": max(a["score"], b["score"]) / min(a["score"], b["score"]),
            })
    with open(out / "train.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return out
