"""The synthetic electorate as a pairwise judge, in FastChat's pair-judgment format.

For each question the electorate (:class:`prefsweep.data.synthetic.Electorate`, the same voters that
cast the training ballots, built from config ``data`` with its ``data.seed``) scores the answer
of the model under test (``model_1``) and the baseline's answer (``model_2``) with its voters'
noise-free utilities ``u[v, t | q]`` of each answer *to that question* (the utility the ballots
were cast with: well formed, answers the question, length and style; see
:mod:`prefsweep.data.synthetic`). Voter ``v`` prefers the answer with the higher utility (equal
utilities: indifferent). The verdict is a weighted majority (every voter weighs 1 unless
weights are given)::

    W_1 = sum of weights of voters preferring model_1, W_2 likewise
    winner = "model_1" if W_1 > W_2, "model_2" if W_2 > W_1, else "tie"

and the same within every voter group. Game ``g1`` shows the answers in the order
(model_1, model_2), game ``g2`` swapped, as FastChat's ``play_a_match_pair`` does; the electorate
is order-invariant, so the two agree, but each is computed from its own utilities call.

Output records (one per question, in question order; FastChat 0.2.36 ``*_pair.jsonl`` keys,
readable by ``fastchat.llm_judge`` ``load_pairwise_model_judgments``/``show_result``)::

    {"question_id", "model_1", "model_2",
     "g1_winner", "g2_winner": "model_1" | "model_2" | "tie",
     "judge": ["electorate", "weighted-majority"],
     "g1_user_prompt", "g1_judgment", "g2_user_prompt", "g2_judgment": str,
     "turn": 1, "tstamp": float,
     "g1_group_winners", "g2_group_winners": {group: "model_1" | "model_2" | "tie"},
     "g1_vote_share", "g2_vote_share": {"model_1": float, "model_2": float, "tie": float}}

Vote shares are shares of the total voter weight (they sum to 1). The judgment texts end with
FastChat's verdict marker (``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie) in the game's order.
:func:`judge_files` is the job (``scripts/judge.py`` with ``eval.judge.type: electorate``): it
reads the config slice's ``data`` (source, seed, synthetic) and writes one file atomically.
Registered as :class:`ElectorateJudge`: it knows every voter's utility (the welfare table), calls
no API and takes seconds per model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from prefsweep.config import ConfigError
from prefsweep.data.sources.registry import electorate_sources, get_source
from prefsweep.eval.generate import model_name, read_answers
from prefsweep.eval.judges.base import Judge, JudgeJob, UtilityModel, register
from prefsweep.io import atomic_write_jsonl, read_jsonl

JUDGE = ["electorate", "weighted-majority"]
WINNERS = ("model_1", "model_2", "tie")
#: Minutes of an electorate judge job (scoring texts with the voters' utilities: seconds).
RUNTIME_MIN = 5


class ElectorateLike(Protocol):
    """What the judge needs of an electorate (``prefsweep.data.synthetic.Electorate`` has it)."""

    @property
    def groups(self) -> list[str]: ...

    def utilities(self, texts: Sequence[str], questions: str) -> np.ndarray: ...


def pair_verdict(
    util: np.ndarray, groups: Sequence[str], weights: np.ndarray | None = None
) -> tuple[str, dict[str, float], dict[str, str], dict[str, tuple[float, float]]]:
    """Verdict on two texts from utilities ``util`` of shape ``[n_voters, 2]``.

    Returns ``(winner, vote_share, group_winners, group_votes)`` with winner ``"first"``,
    ``"second"`` or ``"tie"``; ``vote_share = {"first", "second", "tie"}`` as shares of total
    weight; ``group_votes[g] = (W_first, W_second)``.
    """
    util = np.asarray(util, dtype=float)
    if util.ndim != 2 or util.shape[1] != 2:
        raise ValueError(f"utilities: expected shape [n_voters, 2], got {util.shape}")
    n = util.shape[0]
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} voters")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("voter weights: expected n_voters non-negative weights with a positive sum")
    first, second = util[:, 0] > util[:, 1], util[:, 1] > util[:, 0]

    def winner(mask: np.ndarray) -> tuple[str, float, float]:
        w1, w2 = float(w[mask & first].sum()), float(w[mask & second].sum())
        return ("first" if w1 > w2 else "second" if w2 > w1 else "tie"), w1, w2

    everyone = np.ones(n, dtype=bool)
    verdict, w1, w2 = winner(everyone)
    total = float(w.sum())
    share = {"first": w1 / total, "second": w2 / total, "tie": (total - w1 - w2) / total}
    labels = np.asarray(groups)
    group_winners, group_votes = {}, {}
    for g in dict.fromkeys(groups):  # groups in voter order
        gv, g1, g2 = winner(labels == g)
        group_winners[g], group_votes[g] = gv, (g1, g2)
    return verdict, share, group_winners, group_votes


_MARK = {"first": "[[A]]", "second": "[[B]]", "tie": "[[C]]"}


def judgment_text(verdict: str, share: Mapping[str, float], group_winners: Mapping[str, str],
                  group_votes: Mapping[str, tuple[float, float]]) -> str:
    """A readable account of one game, ending in FastChat's verdict marker."""
    letter = {"first": "A", "second": "B", "tie": "tie"}
    groups = "; ".join(
        f"{g}: {letter[v]} ({a:g} for A, {b:g} for B)" for (g, v), (a, b) in
        zip(group_winners.items(), group_votes.values())
    )
    return (
        f"Electorate vote shares: A {share['first']:.3f}, B {share['second']:.3f}, "
        f"indifferent {share['tie']:.3f}. Groups: {groups}. Verdict: {_MARK[verdict]}"
    )


def pair_user_prompt(question: str, answer_a: str, answer_b: str) -> str:
    """What the electorate was shown in one game: the question and both answers."""
    return f"[Question]\n{question}\n\n[Answer A]\n{answer_a}\n\n[Answer B]\n{answer_b}"


def judge_pairs(
    electorate: ElectorateLike,
    questions: Sequence[Mapping[str, Any]],
    answers_1: Mapping[str, str],
    answers_2: Mapping[str, str],
    model_1: str,
    model_2: str,
    weights: np.ndarray | None = None,
    tstamp: float | None = None,
) -> list[dict[str, Any]]:
    """Pair-judgment records (module docstring) for every question, in question order.

    ``answers_*`` map question id to answer text; a question without an answer in either raises
    ``ValueError`` naming the model and the first missing ids.
    """
    for name, answers in ((model_1, answers_1), (model_2, answers_2)):
        missing = [str(q["question_id"]) for q in questions if str(q["question_id"]) not in answers]
        if missing:
            raise ValueError(f"{name}: no answer to {len(missing)} question(s), e.g. {missing[:5]}")
    groups = list(electorate.groups)
    ts = time.time() if tstamp is None else tstamp
    # g1 maps the game's first/second answer to model_1/model_2; g2 the other way round.
    maps = {"g1": {"first": "model_1", "second": "model_2", "tie": "tie"},
            "g2": {"first": "model_2", "second": "model_1", "tie": "tie"}}
    records = []
    for q in questions:
        qid = str(q["question_id"])
        text, a1, a2 = q["turns"][0], answers_1[qid], answers_2[qid]
        rec: dict[str, Any] = {"question_id": q["question_id"], "model_1": model_1, "model_2": model_2}
        games = {}
        for game, (a, b) in (("g1", (a1, a2)), ("g2", (a2, a1))):
            # The utilities depend on the question (does the answer answer it?), not on the order.
            verdict, share, gw, gvotes = pair_verdict(electorate.utilities([a, b], text), groups, weights)
            m = maps[game]
            games[game] = {
                "winner": m[verdict],
                "user_prompt": pair_user_prompt(text, a, b),
                "judgment": judgment_text(verdict, share, gw, gvotes),
                "group_winners": {g: m[v] for g, v in gw.items()},
                "vote_share": {m[k]: v for k, v in sorted(share.items(), key=lambda kv: m[kv[0]])},
            }
        rec.update(
            g1_winner=games["g1"]["winner"], g2_winner=games["g2"]["winner"], judge=list(JUDGE),
            g1_user_prompt=games["g1"]["user_prompt"], g1_judgment=games["g1"]["judgment"],
            g2_user_prompt=games["g2"]["user_prompt"], g2_judgment=games["g2"]["judgment"],
            turn=1, tstamp=ts,
            g1_group_winners=games["g1"]["group_winners"], g2_group_winners=games["g2"]["group_winners"],
            g1_vote_share=games["g1"]["vote_share"], g2_vote_share=games["g2"]["vote_share"],
        )
        records.append(rec)
    return records


def electorate_from_config(config: dict[str, Any]):
    """The electorate that cast the ballots: ``Electorate.from_config(config, data.seed)``."""
    from prefsweep.data.synthetic import Electorate

    data = config.get("data") or {}
    missing = [f"data.{k}" for k in ("source", "seed", "synthetic") if k not in data]
    if missing:
        raise ValueError(f"{', '.join(missing)}: missing from the judge job's config slice (the electorate "
                         "reads data.source, data.seed and data.synthetic)")
    if not get_source(data["source"]).electorate:
        raise ValueError("eval.judge.type 'electorate' needs a data.source whose electorate is known "
                         f"({', '.join(electorate_sources())}), not {data['source']!r}")
    return Electorate.from_config(config, data["seed"])


def judge_files(config: dict[str, Any], *, answers_path: str | os.PathLike, baseline_path: str | os.PathLike,
                questions_path: str | os.PathLike, out_path: str | os.PathLike,
                echo: Callable[[str], None] = print, max_questions: int | None = None) -> list[dict[str, Any]]:
    """Judge one answer file against the baseline's and write ``out_path`` atomically
    (the first ``max_questions`` questions only when given: eval.checkpoints.n_questions).

    Model names are the answer files' names without ``.jsonl`` (FastChat's convention).
    """
    records = judge_pairs(
        electorate_from_config(config),
        read_jsonl(questions_path)[:max_questions],
        read_answers(answers_path),
        read_answers(baseline_path),
        model_name(answers_path),
        model_name(baseline_path),
    )
    atomic_write_jsonl(out_path, records)
    wins = sum(r["g1_winner"] == "model_1" for r in records)
    losses = sum(r["g1_winner"] == "model_2" for r in records)
    echo(f"wrote {len(records)} judgments to {out_path}: {wins} wins, {losses} losses, "
         f"{len(records) - wins - losses} ties")
    return records


@register
class ElectorateJudge(Judge):
    """The synthetic electorate: the voters that cast the ballots judge the answers."""

    name = "electorate"
    record_name = JUDGE[0]
    measures_welfare = True
    quick = True

    def judge(self, job: JudgeJob) -> list[dict[str, Any]]:
        # The electorate keeps no cache and needs no client settings: job.cache is unused.
        return judge_files(dict(job.config), answers_path=job.answers, baseline_path=job.baseline,
                           questions_path=job.questions, out_path=job.out, echo=job.echo,
                           max_questions=job.max_questions)

    def runtime_minutes(self, config: Mapping[str, Any], questions: int) -> int:
        return RUNTIME_MIN

    def check_config(self, config: Mapping[str, Any]) -> None:
        if not get_source(config["data"]["source"]).electorate:
            raise ConfigError(
                f"eval.judge.type: 'electorate' needs data.source {' or '.join(map(repr, electorate_sources()))} "
                "(only a synthetic electorate can score new text); use 'llm' for other sources"
            )

    def utility_model(self, config: Mapping[str, Any]) -> UtilityModel:
        return electorate_from_config(dict(config))
