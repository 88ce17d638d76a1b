"""PRISM (``data.source: prism``): HannahRoseKirk/prism-alignment as ballots.

One prompt per conversation's opening turn (the models' rated answers), one voter per
participant (``user_id``), the group a survey field of the participant (``group_by``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefsweep.data.ballots import BallotError, BallotRecord, gc_paused
from prefsweep.data.sources.hf_dataset import (
    Builder, dataset_rows, dataset_source, load_hf, parse_rating, rating_tiers, require_columns, row_error, split_where,
)
from prefsweep.data.sources.registry import register

#: PRISM (HannahRoseKirk/prism-alignment card: configs ``conversations`` and ``survey``, split
#: train; ``conversation_history`` turns have turn, role ("user"/"model"), content, score; the
#: participant rates the opening turn's model responses from 1 (Terrible) to 100 (Perfect)).
PRISM_RANGE = (1, 100)


def _dotted(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def load_prism(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """HannahRoseKirk/prism-alignment: config ``conversations`` (split ``train``) with the
    participants of config ``survey``. One prompt per conversation (``prompt_id`` =
    ``conversation_id``, topic = ``conversation_type``): the opening turn's user message
    (turn 0) and the models' responses to it, ranked by the participant's ``score`` (1-100,
    equal scores tied) as one vote, voter = ``user_id``, group = the participant's survey
    field ``spec["group_by"]`` (a dotted path into nested fields; a missing answer is the
    group ``unknown``; null: no groups)."""
    conv = load_hf(spec, "prism", "conversations", cache_dir)
    where = split_where(spec, "conversations")
    require_columns(conv, ("conversation_id", "user_id", "conversation_type", "conversation_history"), where, "PRISM conversations")
    group_by = spec.get("group_by")
    groups: dict[str, str] = {}
    if group_by:
        survey = load_hf(spec, "prism", "survey", cache_dir)
        top = group_by.split(".")[0]
        if top not in survey.column_names:
            raise BallotError(f"data.prism.group_by: {group_by!r} is not a survey field (the survey has "
                              f"{', '.join(survey.column_names)})")
        for _, s in dataset_rows(survey, ("user_id", top)):
            v = _dotted({top: s[top]}, group_by)
            groups[str(s["user_id"])] = "unknown" if v is None or v == "" else str(v)
    lo, hi = PRISM_RANGE
    b = Builder(where, spec["max_prompts"])
    with gc_paused():
        for row, r in dataset_rows(conv, ("conversation_id", "user_id", "conversation_type", "conversation_history")):
            cid = str(r["conversation_id"])
            hist = r["conversation_history"]
            if not isinstance(hist, list):
                raise row_error(where, row, "conversation_id", cid, "conversation_history", "expected a list of turns")
            turns = [t.get("turn") for t in hist if isinstance(t, dict) and isinstance(t.get("turn"), int)]
            first = min(turns) if turns else None  # the opening turn (numbered 0 in the card's data)
            opening = [(i, t) for i, t in enumerate(hist) if isinstance(t, dict) and t.get("turn") == first]
            users = [(i, t) for i, t in opening if t.get("role") == "user"]
            models = [(i, t) for i, t in opening if t.get("role") == "model"]
            if len(users) != 1 or not isinstance(users[0][1].get("content"), str) or not users[0][1]["content"].strip():
                raise row_error(where, row, "conversation_id", cid, "conversation_history",
                            f"expected one user message with text in the opening turn {first}, found {len(users)}")
            rec = b.prompt(cid, users[0][1]["content"], r["conversation_type"] or "none")
            if rec is None:
                continue
            scores: dict[str, float] = {}
            for i, t in models:
                f = f"conversation_history[{i}]"
                if not isinstance(t.get("content"), str) or not t["content"].strip():
                    raise row_error(where, row, "conversation_id", cid, f"{f}.content", "expected a model response text")
                n_before = len(rec["cands"])
                cand = b.candidate(rec, t["content"])
                if len(rec["cands"]) == n_before:
                    b.dropped_votes += 1
                    continue
                scores[cand] = parse_rating(t.get("score"), lo, hi, False, where, row, "conversation_id", cid, f"{f}.score")
            user = str(r["user_id"])
            vote: dict[str, Any] = {"ranking": rating_tiers(scores), "weight": 1.0, "voter": user}
            if group_by:
                vote["group"] = groups.get(user, "unknown")
            if scores:
                rec["votes"].append(vote)
    return b.records("PRISM")


register(dataset_source(
    "prism", load_prism,
    card="https://huggingface.co/datasets/HannahRoseKirk/prism-alignment",
    citation="Kirk et al. 2024, The PRISM Alignment Project: What Participatory, Representative and "
             "Individualised Human Feedback Reveals About the Subjective and Multicultural Alignment of "
             "Large Language Models",
))
