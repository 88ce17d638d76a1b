"""Measures that use the synthetic world's ground truth: welfare and distortion of every model.

In the synthetic world every voter's utility of any answer is known
(:meth:`prefsweep.data.synthetic.Electorate.utilities`, the utility the ballots were cast with and the
electorate judge votes with), so a model can be scored by what its answers are worth to the
electorate, not only by how often they win a pairwise vote. For a model ``m`` with answer
``a_m(q)`` to eval question ``q`` and voter ``v``, ``u[v, q] = u_v(a_m(q) | q)``:

* **utilitarian welfare**: ``W = mean_q mean_v u[v, q]`` (every voter counts once, so larger
  groups weigh more);
* **group welfare**: ``W_g = mean_q mean_{v in g} u[v, q]``;
* **egalitarian welfare**: ``min_g W_g``, the worst-off group's mean (Rawls' maximin over
  groups);
* **distortion**: how far the model's answers fall short of the best achievable welfare. For a
  question, the best achievable answer is the best of the candidates of its ballot and of the
  answers of every evaluated model. Distortion in social choice (Procaccia & Rosenschein 2006,
  "The distortion of cardinal preferences in voting"; Anshelevich et al. 2018, "Approximating
  optimal social choice under metric preferences", for its metric-cost form) is the ratio of the
  optimal social welfare to the welfare of the chosen outcome, ``>= 1``, defined for
  *non-negative* utilities. Ours can be negative, so each voter's utilities on a question are
  shifted so that the voter's worst candidate of the ballot is worth 0, and an answer the voter
  likes less than every candidate is worth 0 too (it is at the bottom of the scale)::

      s[v, q](a) = max(0, u_v(a | q) - min_{c in ballot(q)} u_v(c | q)),   S_q(a) = mean_v s[v, q](a)
      distortion(m) = sum_q max_{a in A_q} S_q(a) / sum_q S_q(a_m(q))

  with ``A_q`` the ballot's candidates and the evaluated answers. Summing over questions treats
  the eval set as one decision whose welfare adds up over its questions (a per-question ratio
  is infinite as soon as one answer is at every voter's bottom). 1 = the best achievable
  answer to every question; ``inf`` = every answer is at the bottom for every voter.

Intervals: percentile bootstrap over questions, ``eval.bootstrap.n`` resamples with seed
``eval.bootstrap.seed``, the resample indices of :func:`prefsweep.eval.winrate.bootstrap_indices`
(those of the win rates), recomputing each measure (a minimum, a ratio) on every resample.
``vs_zero`` = the measure minus the zero point's (the model's DPO init model, ``sft`` or
``base``; for models off the lines the first init of ``dpo.init``),
with a paired bootstrap interval (the same resampled questions for both).

Output table ``welfare.csv`` (:data:`WELFARE_COLUMNS`), written by ``scripts/win_rates.py
--welfare-out`` when the judge is the electorate: one row per model of the win-rate table, line
(the zero point once per arm x matching line, as there) and measure::

    model_id, kind, init, arm, matching, size, n_pairs, seed, step, zero_point, measure, group,
    n_questions, value, ci_low, ci_high, vs_zero, vs_zero_ci_low, vs_zero_ci_high

``measure`` is ``utilitarian``, ``egalitarian``, ``group`` (one row per voter group, ``group``
its name; '' otherwise) or ``distortion``; ``value`` is the welfare (mean utility) or the
distortion.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from prefsweep.eval.bootstrap import bootstrap_indices, percentile_interval
from prefsweep.eval.inputs import InputError
from prefsweep.eval.table_io import typed_table

#: The meta columns of the win-rate table that describe a model and its line.
MODEL_COLUMNS = ("model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point")
WELFARE_COLUMNS = MODEL_COLUMNS + ("measure", "group", "n_questions", "value", "ci_low", "ci_high", "vs_zero",
                                   "vs_zero_ci_low", "vs_zero_ci_high")
MEASURES = ("utilitarian", "egalitarian", "group", "distortion")


# ---------------------------------------------------------------------------------------------
# The measures on utility matrices
# ---------------------------------------------------------------------------------------------

def group_means(util: np.ndarray, groups: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """``[len(names), n_questions]``: the mean utility of each group's voters per question
    (``util``: ``[n_voters, n_questions]``, ``groups``: the group of every voter)."""
    labels = np.asarray(groups)
    missing = [g for g in names if not (labels == g).any()]
    if missing:
        raise ValueError(f"groups {missing} have no voters")
    return np.stack([util[labels == g].mean(axis=0) for g in names])


def shifted_welfare(util: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``S_q`` of the module docstring, ``[n_questions]``: the mean over voters of
    ``max(0, util - floor)`` (``util``, ``floor``: ``[n_voters, n_questions]``, ``floor`` each
    voter's utility of its worst ballot candidate)."""
    return np.maximum(np.asarray(util, dtype=float) - floor, 0.0).mean(axis=0)


def ballot_floor_and_best(cand_util: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """From each question's candidate utilities (``[n_voters, K_q]``), the voters' worst
    candidate utility ``[n_voters, n_questions]`` and the best candidate's shifted welfare
    ``[n_questions]``."""
    floor = np.stack([np.asarray(c, dtype=float).min(axis=1) for c in cand_util], axis=1)
    best = np.array([(np.asarray(c, dtype=float) - floor[:, [q]]).mean(axis=0).max()
                     for q, c in enumerate(cand_util)])
    return floor, best


def ratio_of_sums(best: np.ndarray, achieved: np.ndarray) -> np.ndarray:
    """``sum best / sum achieved`` over the last axis: ``inf`` when only ``achieved`` sums to
    0, NaN when both do."""
    num, den = np.asarray(best, dtype=float).sum(axis=-1), np.asarray(achieved, dtype=float).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, np.nan))


def _measures(util: np.ndarray, groups: Sequence[str], names: Sequence[str], achieved: np.ndarray,
              best: np.ndarray, idx: np.ndarray | None) -> dict[tuple[str, str], np.ndarray]:
    """Every measure of one model, on the questions (``idx`` None: scalars) or on each bootstrap
    resample (``idx`` ``[B, n]``: arrays ``[B]``)."""
    gm = group_means(util, groups, names)  # [G, Q]
    per_q = util.mean(axis=0)
    if idx is None:
        pick = lambda a: a  # noqa: E731
    else:
        pick = lambda a: a[..., idx]  # noqa: E731 -- [.., B, n]
    group_w = pick(gm).mean(axis=-1)  # [G] or [G, B]
    out = {("utilitarian", ""): pick(per_q).mean(axis=-1), ("egalitarian", ""): group_w.min(axis=0)}
    for g, w in zip(names, group_w):
        out[("group", g)] = w
    out[("distortion", "")] = ratio_of_sums(pick(best), pick(achieved))
    return out


def welfare_rows(
    utilities: Mapping[str, np.ndarray],
    cand_util: Sequence[np.ndarray],
    groups: Sequence[str],
    names: Sequence[str],
    zero: str | Mapping[str, str] | None,
    n_boot: int,
    seed: int,
) -> dict[str, list[dict[str, Any]]]:
    """The measures of every model (module docstring): model id -> rows ``{measure, group,
    n_questions, value, ci_low, ci_high, vs_zero, vs_zero_ci_low, vs_zero_ci_high}``.

    ``utilities``: model id -> ``[n_voters, n_questions]`` utilities of its answers, the same
    question order for all, every evaluated model (their answers also bound the best achievable
    welfare); ``cand_util``: per question the ``[n_voters, K_q]`` utilities of its ballot's
    candidates; ``zero``: the zero point's model id (a key of ``utilities``), a mapping model id
    -> its zero point's id (several inits), or None.
    """
    zero_of = zero if isinstance(zero, Mapping) else dict.fromkeys(utilities, zero)
    floor, best_ballot = ballot_floor_and_best(cand_util)
    achieved = {m: shifted_welfare(u, floor) for m, u in utilities.items()}
    best = np.max(np.stack([best_ballot, *achieved.values()]), axis=0)
    n_q = len(cand_util)
    idx = bootstrap_indices(n_q, n_boot, seed)
    point = {m: _measures(u, groups, names, achieved[m], best, None) for m, u in utilities.items()}
    boot = {m: _measures(u, groups, names, achieved[m], best, idx) for m, u in utilities.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    for m in utilities:
        rows = []
        for (measure, group), value in point[m].items():
            lo, hi = percentile_interval(boot[m][(measure, group)])
            row = {"measure": measure, "group": group, "n_questions": n_q, "value": float(value),
                   "ci_low": lo, "ci_high": hi}
            zero = zero_of.get(m)
            if zero is None or zero not in utilities:
                row.update(vs_zero=float("nan"), vs_zero_ci_low=float("nan"), vs_zero_ci_high=float("nan"))
            elif m == zero:  # itself, also where its value is infinite
                row.update(vs_zero=0.0, vs_zero_ci_low=0.0, vs_zero_ci_high=0.0)
            else:
                with np.errstate(invalid="ignore"):  # inf - inf: NaN
                    diff = boot[m][(measure, group)] - boot[zero][(measure, group)]
                    value_diff = float(value - point[zero][(measure, group)])
                dlo, dhi = percentile_interval(diff)
                row.update(vs_zero=value_diff, vs_zero_ci_low=dlo, vs_zero_ci_high=dhi)
            rows.append(row)
        out[m] = rows
    return out


# ---------------------------------------------------------------------------------------------
# The table, from the win-rate table and the job's files
# ---------------------------------------------------------------------------------------------

def welfare_table(win_rates: pd.DataFrame, rows: Mapping[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """``welfare.csv``: the measures ``rows`` (:func:`welfare_rows`) of every model of the
    win-rate table, one row per model, line and measure, in the win-rate table's order."""
    models = win_rates.drop_duplicates(["model_id", "init", "arm", "matching", "size"])
    out = []
    for _, r in models.iterrows():
        meta = {c: r[c] for c in MODEL_COLUMNS}
        if meta["model_id"] not in rows:
            raise InputError(f"model {meta['model_id']}: no welfare computed (expected its answers among --answers)")
        # A zero-point row is its line's init model, measured against itself.
        same = dict(vs_zero=0.0, vs_zero_ci_low=0.0, vs_zero_ci_high=0.0) if meta["zero_point"] else {}
        out += [{**meta, **m, **same} for m in rows[meta["model_id"]]]
    return typed_table(pd.DataFrame(out, columns=list(WELFARE_COLUMNS)), WELFARE_COLUMNS)


def ballot_candidates(path: str | os.PathLike, question_ids: Sequence[str]) -> list[list[str]]:
    """The candidate texts of each question's ballot (a question id is its prompt id), read from
    the workflow's ``data/ballots.jsonl``; a question without a ballot is an :class:`InputError`
    naming it and the file."""
    from prefsweep.data.ballot_table import read_ballots_table
    from prefsweep.data.ballots import BallotError

    try:
        table = read_ballots_table(path, ["prompt_id", "candidates"])
    except (BallotError, FileNotFoundError, OSError) as exc:
        raise InputError(f"{path}: cannot read the ballots ({exc})") from None
    by_id = dict(zip(table.column("prompt_id").to_pylist(), table.column("candidates").to_pylist()))
    missing = [q for q in question_ids if q not in by_id]
    if missing:
        raise InputError(f"{path}: no ballot for {len(missing)} eval question(s), e.g. {missing[:5]}; expected the "
                         "ballots the questions were drawn from (a question id is its prompt id)")
    return [[c["text"] for c in by_id[q]] for q in question_ids]


def model_utilities(electorate: Any, questions: Sequence[Mapping[str, Any]], answers: Mapping[str, str],
                    model: str) -> np.ndarray:
    """``[n_voters, n_questions]`` utilities of a model's answers (``answers``: question id ->
    text); a question without an answer is an :class:`InputError` naming the model."""
    qids = [str(q["question_id"]) for q in questions]
    missing = [q for q in qids if q not in answers]
    if missing:
        raise InputError(f"model {model}: no answer to {len(missing)} eval question(s), e.g. {missing[:5]} "
                         f"(in {model}.jsonl among --answers)")
    return electorate.utilities([answers[q] for q in qids], [q["turns"][0] for q in questions])


def welfare_from_files(
    config: Mapping[str, Any],
    win_rates: pd.DataFrame,
    questions: Sequence[Mapping[str, Any]],
    answers: Mapping[str, Mapping[str, str]],
    ballots_path: str | os.PathLike,
) -> pd.DataFrame:
    """The welfare table of the models of ``win_rates`` (rows of a judge that knows the voters'
    utilities, :attr:`prefsweep.eval.judges.Judge.measures_welfare`: the electorate).

    ``config``: the win_rates job's slice (``data.source``/``data.seed``/``data.synthetic`` for
    the electorate, ``eval.bootstrap``, ``dpo.init``); ``questions``: question.jsonl records;
    ``answers``: model id -> question id -> answer, for every model of the table and the
    baseline (all of them bound the best achievable welfare); ``ballots_path``:
    ``data/ballots.jsonl``.
    """
    from prefsweep.eval.judges import judge_of_records, welfare_judges
    from prefsweep.paths import model_init, parse_model_id, zero_point_id
    from prefsweep.eval.inputs import config_value

    n_boot = int(config_value(config, "eval.bootstrap.n"))
    seed = int(config_value(config, "eval.bootstrap.seed"))
    config_value(config, "dpo.init")
    for key in ("data.source", "data.seed", "data.synthetic"):
        config_value(config, key)
    judges = sorted(set(win_rates["judge"]))
    judge = judge_of_records(judges[0]) if len(judges) == 1 else None
    if judge is None or not judge.measures_welfare:
        raise InputError(f"welfare: the win-rate table is judged by {judges}; welfare needs a judge that knows the "
                         f"voters' utilities (eval.judge.type: {' or '.join(welfare_judges())})")
    electorate = judge.utility_model(config)
    qids = [str(q["question_id"]) for q in questions]
    cands = ballot_candidates(ballots_path, qids)
    prompts = [q["turns"][0] for q in questions]
    cand_util = [electorate.utilities(c, p) for c, p in zip(cands, prompts)]
    table_models = list(dict.fromkeys(win_rates["model_id"]))
    missing = [m for m in table_models if m not in answers]
    if missing:
        raise InputError(f"welfare: no answers for model(s) {missing} among --answers")
    utilities = {m: model_utilities(electorate, questions, a, m) for m, a in answers.items()}
    first = zero_point_id(dict(config))
    zero_of = {}
    for m in utilities:
        try:
            cell = parse_model_id(m)
        except ValueError:  # the reference answers
            zero_of[m] = first
            continue
        zero_of[m] = model_init(dict(config), cell) if cell.kind in ("dpo", "checkpoint") else first
    rows = welfare_rows(utilities, cand_util, electorate.groups, electorate.group_names, zero_of, n_boot, seed)
    return welfare_table(win_rates, rows)
