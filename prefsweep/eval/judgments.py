"""FastChat pair judgments -> per-question outcome frames, validated so nothing is counted twice.

Input: pair-judgment records (one file per model, ``{model_id}.jsonl``), one record per question
holding both orders: ``g1_winner`` (model under test shown first) and ``g2_winner`` (swapped),
``model_1`` = the model under test, ``model_2`` = the baseline. Per question (FastChat
``show_result.display_result_pairwise``): a verdict outside ``model_1 | model_2 | tie`` in either
order is an *error* (counted, left out of ``n``); else agreeing orders give that verdict and
disagreeing orders a tie (a *position flip*). The rules and the checks are explained in
``docs/design/win_rate_tables.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

VERDICTS = ("model_1", "model_2", "tie")
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


class JudgmentError(ValueError):
    """Judgments that would miscount: duplicates, gaps, a missing order, mixed baselines, no
    valid verdict."""


def outcome(g1: Any, g2: Any) -> str:
    """``win | loss | tie | error`` of one question judged in both orders (model_1's view)."""
    if g1 not in VERDICTS or g2 not in VERDICTS:
        return "error"
    if g1 != g2:
        return "tie"
    return {"model_1": "win", "model_2": "loss", "tie": "tie"}[g1]


def _judge_name(judge: Any) -> tuple[str, str]:
    if isinstance(judge, (list, tuple)) and judge:
        return str(judge[0]), str(judge[1]) if len(judge) > 1 else ""
    return str(judge), ""


def judgment_frames(records: Iterable[Mapping[str, Any]], source: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-question rows ``(questions, groups)`` from pair-judgment records.

    ``questions``: question_id, model_id, baseline, judge, judge_prompt, g1, g2, outcome, score
    (NaN for errors), flip, source. ``groups``: the same keys plus ``group``, from
    ``g{1,2}_group_winners``. A record without both orders raises :class:`JudgmentError`.
    """
    rows, grows = [], []
    for rec in records:
        model = rec.get("model_1")
        if "g1_winner" not in rec or "g2_winner" not in rec or rec["g1_winner"] is None or rec["g2_winner"] is None:
            raise JudgmentError(
                f"model {model}: question {rec.get('question_id')!r} in {source or 'judgments'} lacks "
                "g1_winner or g2_winner; expected one judgment per question and order (pairwise mode)"
            )
        judge, prompt = _judge_name(rec.get("judge"))
        key = {"question_id": str(rec["question_id"]), "model_id": model, "baseline": rec.get("model_2"),
               "judge": judge, "judge_prompt": prompt}
        o = outcome(rec["g1_winner"], rec["g2_winner"])
        rows.append({**key, "g1": rec["g1_winner"], "g2": rec["g2_winner"], "outcome": o,
                     "score": SCORE.get(o, np.nan), "flip": o == "tie" and rec["g1_winner"] != rec["g2_winner"],
                     "source": source})
        g1g, g2g = rec.get("g1_group_winners"), rec.get("g2_group_winners")
        if g1g is not None or g2g is not None:
            g1g, g2g = g1g or {}, g2g or {}
            for group in dict.fromkeys([*g1g, *g2g]):
                go = outcome(g1g.get(group), g2g.get(group))
                grows.append({**key, "group": group, "g1": g1g.get(group), "g2": g2g.get(group), "outcome": go,
                              "score": SCORE.get(go, np.nan),
                              "flip": go == "tie" and g1g.get(group) != g2g.get(group)})
    cols = ["question_id", "model_id", "baseline", "judge", "judge_prompt"]
    q = pd.DataFrame(rows, columns=cols + ["g1", "g2", "outcome", "score", "flip", "source"])
    g = pd.DataFrame(grows, columns=cols + ["group", "g1", "g2", "outcome", "score", "flip"])
    return q, g


def load_judgments(paths: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`judgment_frames` of several judgment files (concatenated).

    A file without a single record is a :class:`JudgmentError` naming it and its model (the
    file's stem, FastChat's convention), listed with every model that has no valid verdict.
    """
    from prefsweep.eval.generate import model_name
    from prefsweep.io import read_jsonl

    if not paths:
        raise JudgmentError("no judgment files given (--judgments)")
    qs, gs, empty = [], [], []
    for p in paths:
        records = read_jsonl(p)
        if not records:
            empty.append(f"no valid verdicts for model {model_name(p)} in {p}: the file holds no judgments "
                         "(expected one per question)")
            continue
        q, g = judgment_frames(records, source=str(p))
        qs.append(q)
        gs.append(g)
    q = pd.concat(qs, ignore_index=True) if qs else judgment_frames([])[0]
    g = pd.concat(gs, ignore_index=True) if gs else judgment_frames([])[1]
    if empty:
        raise JudgmentError("invalid judgments:\n  " + "\n  ".join(empty + no_valid_verdicts(q)))
    return q, g


def restrict_questions(frames: Sequence[pd.DataFrame], questions: Sequence[str]) -> list[pd.DataFrame]:
    """The rows of ``frames`` (:func:`load_judgments`' two) on ``questions`` only: an evolution
    table over checkpoints judged on the first k questions (eval.checkpoints.n_questions)
    compares the final models on those k too."""
    keep = {str(q) for q in questions}
    return [f[f["question_id"].astype(str).isin(keep)].reset_index(drop=True) for f in frames]


def _sources(mf: pd.DataFrame) -> str:
    names = sorted({s for s in mf["source"] if s}) if "source" in mf else []
    return ", ".join(names) or "judgments"


def no_valid_verdicts(frame: pd.DataFrame) -> list[str]:
    """One line per (judge, model) whose every judgment is malformed (outcome ``error``)."""
    problems = []
    for (judge, model), mf in frame.groupby(["judge", "model_id"], sort=True):
        if (mf["outcome"] == "error").all():
            problems.append(f"no valid verdicts for model {model} in {_sources(mf)}: {len(mf)} of {len(mf)} "
                            f"judgments malformed (judge {judge}; expected model_1, model_2 or tie in both orders)")
    return problems


def malformed_notes(frame: pd.DataFrame) -> list[str]:
    """One line per (judge, model) with some, not all, malformed judgments (left out of n)."""
    notes = []
    for (judge, model), mf in frame.groupby(["judge", "model_id"], sort=True):
        bad = int((mf["outcome"] == "error").sum())
        if 0 < bad < len(mf):
            notes.append(f"model {model} (judge {judge}): {bad} of {len(mf)} judgments malformed in "
                         f"{_sources(mf)}; left out of n and the win rate")
    return notes


def check_judgments(
    frame: pd.DataFrame,
    questions: Iterable[str] | None = None,
    baseline: str | None = None,
) -> dict[str, list[str]]:
    """Validate counts and verdicts; returns ``{judge: sorted question ids}``.

    Every (model, judge) must have exactly one record per question against the one
    ``baseline``, on the same question set as every other model of that judge (or
    ``questions``), and at least one valid verdict. Without ``questions`` the expected set of a
    judge is the union of the questions any of its models was judged on. Raises
    :class:`JudgmentError` with one line per offending model.
    """
    problems: list[str] = []
    expected: dict[str, list[str]] = {}
    given = None if questions is None else {str(q) for q in questions}
    for judge, jf in frame.groupby("judge", sort=True):
        exp = given if given is not None else set(jf["question_id"])
        expected[str(judge)] = sorted(exp)
        for model, mf in jf.groupby("model_id", sort=True):
            bases = sorted(map(str, mf["baseline"].unique()))
            if len(bases) > 1:
                problems.append(f"model {model} (judge {judge}): judged against several baselines {bases}")
            elif baseline is not None and bases[0] != baseline:
                problems.append(
                    f"model {model} (judge {judge}): judged against {bases[0]!r}, expected baseline {baseline!r}")
            counts = mf["question_id"].value_counts()
            dup = sorted(counts[counts > 1].index)
            missing = sorted(exp - set(counts.index))
            extra = sorted(set(counts.index) - exp)
            parts = []
            if dup:
                parts.append(f"{len(dup)} question(s) judged more than once, e.g. "
                             + ", ".join(f"{q} ({counts[q]}x)" for q in dup[:5]))
            if missing:
                parts.append(f"{len(missing)} question(s) not judged, e.g. {missing[:5]}")
            if extra:
                parts.append(f"{len(extra)} unexpected question(s), e.g. {extra[:5]}")
            if parts:
                problems.append(f"model {model} (judge {judge}, in {_sources(mf)}): " + "; ".join(parts)
                                + f" (expected exactly one judgment per question and order against the baseline, "
                                  f"{len(exp)} questions)")
    problems += no_valid_verdicts(frame)
    if problems:
        raise JudgmentError("invalid judgments:\n  " + "\n  ".join(problems))
    return expected
