"""Win rates against the baseline, arm differences and per-group win rates, from pair judgments.

Input: FastChat pair-judgment records (one file per model, ``{model_id}.jsonl``), one record per
question, each holding both orders: ``g1`` (model under test shown first) and ``g2`` (swapped),
``model_1`` = model under test, ``model_2`` = baseline.

Per question (FastChat ``show_result.display_result_pairwise`` convention):

* a verdict outside ``model_1 | model_2 | tie`` in either order (e.g. ``error``, a *malformed*
  judgment) is an *error*: counted, and left out of ``n`` and the win rate, as FastChat drops
  such rows;
* otherwise the orders agree -> that verdict (win / loss / tie); they disagree -> tie
  (a *position flip*).

``win_rate = (wins + ties / 2) / n`` with ``n = wins + ties + losses`` (FastChat's
``win_rate_adjusted``); its 95% CI is a percentile bootstrap over questions (config
``eval.bootstrap.n`` resamples, seed ``eval.bootstrap.seed``; every model is resampled with the
same question indices). ``flip_rate`` = flips / n.

Validation: every (model, judge) must have exactly one record per question -- each record
holding both orders -- against the one baseline, for the same question set as every other model
of that judge (or the ``questions`` given). Duplicates, gaps, extra questions, a missing order, a
second baseline, an empty judgment file or a model without a single valid verdict raise
:class:`JudgmentError` naming the model and its file, so nothing is counted twice and no row
is a win rate of nothing. A model with *some* malformed judgments is kept (its ``errors``
column counts them) and the log names it.

Model metadata comes from the files the job is given (:class:`ModelInputs`), never from
directory walks: ``kind``/``arm``/``matching``/``size``/``seed``/``step`` from
:func:`prefsweep.paths.parse_model_id`; ``n_pairs`` from the series ``manifest.json`` whose own
fields ``arm``/``matching``/``size`` name the series; a final DPO model's ``step`` is the
``global_step`` of its ``run_info.json`` (whose ``job`` names arm/matching/size/seed), so final
models sit at their real step in the evolution table; ``mean_words`` from the answers file whose
stem is the model id (FastChat's convention; the reference answers are ``reference.jsonl``).

Output tables (CSV; the column tuples below are the one definition, :mod:`prefsweep.plotting`
imports them). ``evolution.csv``, ``evolution_groups.csv`` and ``evolution_differences.csv`` are
the same three tables over checkpoints and final DPO models (the same writer).

``win_rates.csv`` (:data:`WIN_RATE_COLUMNS`) -- one row per model, judge and line::

    model_id, kind, init, arm, matching, size, n_pairs, seed, step, zero_point, baseline, judge,
    judge_prompt, wins, ties, losses, errors, n, win_rate, ci_low, ci_high, flip_rate,
    lc_win_rate, lc_ci_low, lc_ci_high, mean_words, baseline_mean_words, well_formed,
    baseline_well_formed

``step``: the checkpoint's step, or a final DPO model's ``global_step``; empty for other models.
``init``: the model a DPO model or checkpoint was trained from (``sft`` or ``base``, from its id
when ``dpo.init`` is a list, else ``dpo.init``), and the init of a zero-point row's line; empty
for models off the lines. The zero point of each init (the init model itself) appears once per
(init, arm, matching) line of the DPO models, as ``size`` 0 with ``n_pairs`` 0 and ``zero_point``
true. Base and SFT are always in the table: a model that is no init of the experiment is one
row off the lines (``arm`` empty), as baselines are. Under ``eval.baseline: zero`` every model is
judged against the (first) init model of ``dpo.init``; it is not judged against itself: its rows
have win rate 0.5 by definition (all ties, CI [0.5, 0.5], also for the length-controlled win
rate), and with ``dpo.init: [sft, base]`` the base-init lines start at base's win rate vs SFT.
``mean_words`` = mean whitespace word count of the model's answers, ``baseline_mean_words``
that of the baseline's. ``well_formed`` = mean over the model's answers of the share of their
words that are well formed (:func:`prefsweep.synthetic.well_formedness`: inventory phrases in
their order, no repeats; the synthetic world's measure, computed for any answers),
``baseline_well_formed`` that of the baseline's. A checkpoint whose step equals its run's final
step is the final model: only the final model's row is kept.

``lc_win_rate`` is the length-controlled win rate of AlpacaEval 2 (Dubois et al. 2024,
"Length-Controlled AlpacaEval: A Simple Way to Debias Automatic Evaluators", and
``alpaca_eval.metrics.glm_winrate``), without its instruction-difficulty term: per model, the
per-question scores ``y_q`` (1, 1/2, 0) are regressed on the length difference by a logistic
model ``P(win) = sigmoid(theta + phi * tanh(d_q / sd(d)))``, ``d_q`` = words of the model's
answer minus words of the baseline's (AlpacaEval: characters), fitted by maximum likelihood with
the ties as half wins (AlpacaEval's fractional targets) and a weak L2 penalty
``(theta^2 + phi^2) / (2 C)``, ``C`` = :data:`LC_L2_C` (sklearn's convention; it keeps the fit
finite when the verdicts separate, e.g. all wins); ``lc_win_rate = sigmoid(theta)``, the win
rate predicted at zero length difference. ``lc_ci_low``/``lc_ci_high``: the same percentile
bootstrap over questions as ``win_rate`` (the same resample indices), refitting on each
resample with ``sd(d)`` of the full sample.

``arm_differences.csv`` (:data:`DIFF_COLUMNS`) -- per judge, init, non-reference arm (every
rule arm), matching and size > 0: the paired difference in score between the arm and the
reference arm (``data.reference_arm``, stored as matching ``shared``) trained from the same
init::

    judge, baseline, init, arm, matching, ref_arm, size, seeds, n_seeds, n_questions,
    win_rate, ref_win_rate, diff, ci_low, ci_high, seed_sd

``d[s, q] = score_arm[s, q] - score_ref[s, q]`` over the seeds both arms have and questions
without an error in either; ``diff`` = mean of ``d``; the CI bootstraps questions of the
seed-averaged ``d_q`` (pairs kept together); ``seed_sd`` = std (ddof 1) of the per-seed mean
differences, the seed-to-seed spread the question bootstrap does not see.

``win_rates_groups.csv`` (:data:`GROUP_COLUMNS`) -- as ``win_rates.csv`` per voter group
(``group`` column, no answer lengths), from the electorate's ``g1_group_winners`` /
``g2_group_winners``; header only for judges without groups.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prefsweep.config import ConfigError
from prefsweep.paths import dpo_model_id, init_models, model_init, parse_model_id

log = logging.getLogger(__name__)

VERDICTS = ("model_1", "model_2", "tie")
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
#: Inverse L2 strength of the length-controlled win rate's logistic fit (module docstring).
LC_L2_C = 100.0

# ---------------------------------------------------------------------------------------------
# Table schemas: the one definition of every column this module writes
# ---------------------------------------------------------------------------------------------

META_COLUMNS = ("model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point",
                "baseline", "judge", "judge_prompt")
STAT_COLUMNS = ("wins", "ties", "losses", "errors", "n", "win_rate", "ci_low", "ci_high", "flip_rate")
#: The length-controlled win rate and its interval (win_rates.csv only).
LC_COLUMNS = ("lc_win_rate", "lc_ci_low", "lc_ci_high")
#: win_rates.csv and evolution.csv.
WIN_RATE_COLUMNS = META_COLUMNS + STAT_COLUMNS + LC_COLUMNS + (
    "mean_words", "baseline_mean_words", "well_formed", "baseline_well_formed")
#: win_rates_groups.csv and evolution_groups.csv.
GROUP_COLUMNS = META_COLUMNS + ("group",) + STAT_COLUMNS
#: arm_differences.csv and evolution_differences.csv.
DIFF_COLUMNS = ("judge", "baseline", "init", "arm", "matching", "ref_arm", "size", "seeds", "n_seeds", "n_questions",
                "win_rate", "ref_win_rate", "diff", "ci_low", "ci_high", "seed_sd")
#: Integer columns (empty where a model has no such value, e.g. the seed of ``sft``).
INT_COLUMNS = ("size", "n_pairs", "seed", "step", "wins", "ties", "losses", "errors", "n", "n_seeds",
               "n_questions")
#: Text columns (empty string where a model has none, e.g. the arm of ``sft`` off the lines).
TEXT_COLUMNS = ("model_id", "kind", "init", "arm", "matching", "baseline", "judge", "judge_prompt", "group", "ref_arm",
                "seeds", "measure")
#: Boolean columns.
BOOL_COLUMNS = ("zero_point",)


class JudgmentError(ValueError):
    """Judgments that would miscount: duplicates, gaps, a missing order, mixed baselines, no
    valid verdict."""


class InputError(ValueError):
    """A file the tables need (answers, manifest, run_info) is missing or malformed."""


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """The value of config key ``dotted`` (e.g. ``"eval.bootstrap.n"``) in a job's config slice.

    The slice is the validated config (defaults filled by the schema), so a missing key is an
    error naming it, never a silent default.
    """
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(
                f"config key {dotted}: missing from the job's config slice; expected the validated config "
                "(e.g. --config-json \"$(python -m prefsweep.config STEP)\")"
            )
        node = node[part]
    return node


# ---------------------------------------------------------------------------------------------
# Per-question outcomes
# ---------------------------------------------------------------------------------------------

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
    from prefsweep.generate import model_name
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
    """Validate counts and verdicts (module docstring); returns ``{judge: sorted question ids}``.

    Without ``questions`` the expected set of a judge is the union of the questions any of its
    models was judged on. Raises :class:`JudgmentError` with one line per offending model.
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


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def bootstrap_ci(values: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampled with replacement).

    Resample indices depend only on ``(seed, len(values))``, so two models judged on the same
    questions are resampled identically. Empty input gives ``(nan, nan)``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    means = values[bootstrap_indices(values.size, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``[n_boot, n]`` resample indices of :func:`bootstrap_ci` (they depend only on
    ``(seed, n)``), for statistics that are not a mean."""
    return np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``samples`` (NaN when there are none or all are NaN)."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    # Linear interpolation as in bootstrap_ci; between infinite samples (an infinite distortion)
    # it is undefined, so those take the nearest sample.
    method = "linear" if np.isfinite(samples).all() else "nearest"
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], method=method)
    return float(lo), float(hi)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def fit_length_logistic(y: np.ndarray, x: np.ndarray, l2_c: float = LC_L2_C, iterations: int = 100) -> np.ndarray:
    """Penalized logistic fits ``P(y=1) = sigmoid(theta + phi * x)``, one per row.

    ``y``, ``x``: ``[B, n]`` (or ``[n]``) fractional targets in [0, 1] and the covariate.
    Maximizes ``sum_q y log p + (1 - y) log(1 - p) - (theta^2 + phi^2) / (2 l2_c)`` by Newton's
    method (strictly concave: one maximum), all rows at once. Returns ``[B, 2]`` (or ``[2]``):
    ``(theta, phi)``.
    """
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    single = y.ndim == 1
    y, x = np.atleast_2d(y), np.atleast_2d(x)
    beta = np.zeros((y.shape[0], 2))
    ridge = np.eye(2) / l2_c
    for _ in range(iterations):
        p = _sigmoid(beta[:, :1] + beta[:, 1:] * x)
        r = y - p
        grad = np.stack([r.sum(1), (r * x).sum(1)], axis=1) - beta / l2_c
        w = p * (1 - p)
        h = np.empty((y.shape[0], 2, 2))
        h[:, 0, 0], h[:, 0, 1] = w.sum(1), (w * x).sum(1)
        h[:, 1, 0], h[:, 1, 1] = h[:, 0, 1], (w * x * x).sum(1)
        step = np.linalg.solve(h + ridge, grad[:, :, None])[:, :, 0]
        # A damped step: far from the optimum (near-separable verdicts) a full one can overshoot.
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        beta += step * np.minimum(1.0, 4.0 / np.maximum(norm, 1e-300))
        if float(norm.max()) < 1e-10:
            break
    return beta[0] if single else beta


def length_controlled_win_rate(scores: np.ndarray, length_diff: np.ndarray, n_boot: int, seed: int,
                               l2_c: float = LC_L2_C) -> tuple[float, float, float]:
    """``(lc_win_rate, ci_low, ci_high)`` of per-question ``scores`` (1, 1/2, 0) and length
    differences (model minus baseline, in words), as in the module docstring. Empty input
    gives NaNs; a constant length difference carries no length information (``x = 0``)."""
    y = np.asarray(scores, dtype=float)
    d = np.asarray(length_diff, dtype=float)
    if y.shape != d.shape:
        raise ValueError(f"{y.size} scores but {d.size} length differences")
    if y.size == 0:
        return float("nan"), float("nan"), float("nan")
    sd = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    lc = float(_sigmoid(fit_length_logistic(y, x, l2_c)[0]))
    idx = bootstrap_indices(y.size, n_boot, seed)
    lo, hi = percentile_interval(_sigmoid(fit_length_logistic(y[idx], x[idx], l2_c)[:, 0]))
    return lc, lo, hi


def summarize(outcomes: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Counts, win rate, bootstrap CI and flip rate of per-question rows of one model.

    Rows are ordered by question id before resampling, so the CI does not depend on file order.
    """
    o = outcomes.sort_values("question_id")
    valid = o[o["outcome"] != "error"]
    n = len(valid)
    wins, ties, losses = (int((valid["outcome"] == k).sum()) for k in ("win", "tie", "loss"))
    scores = valid["score"].to_numpy(dtype=float)
    lo, hi = bootstrap_ci(scores, n_boot, seed)
    return {
        "wins": wins, "ties": ties, "losses": losses, "errors": int(len(o) - n), "n": n,
        "win_rate": float(scores.mean()) if n else float("nan"), "ci_low": lo, "ci_high": hi,
        "flip_rate": float(valid["flip"].mean()) if n else float("nan"),
    }


def self_match(n: int) -> dict[str, Any]:
    """Statistics of the baseline against itself: all ties, win rate 0.5 by definition."""
    return {"wins": 0, "ties": n, "losses": 0, "errors": 0, "n": n, "win_rate": 0.5,
            "ci_low": 0.5, "ci_high": 0.5, "flip_rate": 0.0}


def lc_summary(outcomes: pd.DataFrame, model: str, baseline: str, inputs: "ModelInputs", n_boot: int,
               seed: int) -> dict[str, float]:
    """The ``lc_*`` columns of one model's per-question rows against ``baseline`` (rows ordered
    by question id, as in :func:`summarize`, so both use the same resamples). A judged question
    without an answer of either model is an :class:`InputError`."""
    o = outcomes.sort_values("question_id")
    valid = o[o["outcome"] != "error"]
    diffs = []
    for qid in valid["question_id"]:
        try:
            diffs.append(inputs.answer_lengths[model][qid] - inputs.answer_lengths[baseline][qid])
        except KeyError:
            raise InputError(f"model {model} (baseline {baseline}): question {qid} has no answer in the --answers "
                             "files of both; expected every judged question answered by both") from None
    lc, lo, hi = length_controlled_win_rate(valid["score"].to_numpy(dtype=float), np.array(diffs, dtype=float),
                                            n_boot, seed)
    return {"lc_win_rate": lc, "lc_ci_low": lo, "lc_ci_high": hi}



# ---------------------------------------------------------------------------------------------
# Model metadata, from the files the job was given
# ---------------------------------------------------------------------------------------------

def _read_json(path: str | os.PathLike, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON {what} ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object ({what})")
    return obj


def answer_texts(path: str | os.PathLike) -> dict[str, str]:
    """``{question_id: first turn of choice 0}`` of a FastChat answer file."""
    from prefsweep.io import read_jsonl

    try:
        return {str(r["question_id"]): r["choices"][0]["turns"][0] for r in read_jsonl(path)}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise InputError(f"{path}: not a FastChat answer file (expected question_id and choices[0].turns[0] text "
                         "in every record)") from None


def mean_words(path: str | os.PathLike) -> float:
    """Mean whitespace word count of the first turn of every answer in a FastChat answer file."""
    lengths = [len(t.split()) for t in answer_texts(path).values()]
    return float(np.mean(lengths)) if lengths else float("nan")


def read_manifest(path: str | os.PathLike) -> tuple[tuple[str, str, int], int]:
    """``((arm, matching, size), n_pairs)`` of a series ``manifest.json``, from its own fields."""
    m = _read_json(path, "series manifest")
    missing = [k for k in ("arm", "matching", "size", "n_pairs") if k not in m]
    if missing:
        raise InputError(f"{path}: series manifest lacks {missing}; expected the manifest.json the series step "
                         "writes (fields arm, matching, size, n_pairs)")
    return (str(m["arm"]), str(m["matching"]), int(m["size"])), int(m["n_pairs"])


@dataclass(frozen=True)
class FinalRun:
    """What a final DPO model's ``run_info.json`` says: its model id, step and wandb run."""

    model_id: str
    step: int
    wandb_run_id: str | None
    source: str


def read_run_info(path: str | os.PathLike) -> FinalRun:
    """A final DPO model's run: id from ``job`` (arm, matching, size, seed), ``global_step``,
    ``wandb_run_id`` (null when wandb was off)."""
    info = _read_json(path, "run_info.json")
    job = info.get("job")
    missing = ([] if isinstance(job, dict) else ["job"]) + (
        [f"job.{k}" for k in ("arm", "matching", "size", "seed") if k not in job] if isinstance(job, dict) else [])
    if "global_step" not in info:
        missing.append("global_step")
    if missing:
        raise InputError(f"{path}: run_info.json lacks {missing}; expected the run_info.json of a final DPO model "
                         "(scripts/dpo.py writes job {arm, matching, size, seed} and global_step)")
    mid = dpo_model_id(str(job["arm"]), str(job["matching"]), int(job["size"]), int(job["seed"]),
                       init=job.get("init"))
    return FinalRun(mid, int(info["global_step"]), info.get("wandb_run_id") or None, str(path))


@dataclass(frozen=True)
class ModelInputs:
    """Metadata of the models of a table, read from the job's declared input files.

    ``answer_words``: model id (answers file stem) -> mean answer length in words;
    ``n_pairs``: (arm, matching, size) -> actual training pairs of the series;
    ``finals``: final DPO model id -> :class:`FinalRun`;
    ``answer_lengths``: model id -> question id -> answer length in words;
    ``well_formed``: model id -> mean well-formed share of its answers.
    """

    answer_words: Mapping[str, float]
    n_pairs: Mapping[tuple[str, str, int], int]
    finals: Mapping[str, FinalRun]
    answer_lengths: Mapping[str, Mapping[str, int]]
    well_formed: Mapping[str, float]

    @classmethod
    def from_files(cls, answers: Sequence[str | os.PathLike], manifests: Sequence[str | os.PathLike],
                   run_infos: Sequence[str | os.PathLike]) -> ModelInputs:
        """Read ``--answers``, ``--manifests`` and ``--run-info`` files; two files for the same
        model or series are an error naming both."""
        from prefsweep.generate import model_name
        from prefsweep.synthetic import well_formedness

        words: dict[str, float] = {}
        lengths: dict[str, dict[str, int]] = {}
        formed: dict[str, float] = {}
        seen: dict[Any, str] = {}

        def once(key: Any, path: str | os.PathLike, what: str) -> None:
            if key in seen:
                raise InputError(f"{path}: {what} given twice (also {seen[key]}); expected one file each")
            seen[key] = str(path)

        for p in answers:
            mid = model_name(p)
            once(("answers", mid), p, f"answers of {mid}")
            texts = answer_texts(p)
            lengths[mid] = {q: len(t.split()) for q, t in texts.items()}
            words[mid] = float(np.mean(list(lengths[mid].values()))) if texts else float("nan")
            formed[mid] = float(np.mean([well_formedness(t) for t in texts.values()])) if texts else float("nan")
        n_pairs: dict[tuple[str, str, int], int] = {}
        for p in manifests:
            cell, n = read_manifest(p)
            once(("manifest", cell), p, "series {}/{}/n{}".format(*cell))
            n_pairs[cell] = n
        finals: dict[str, FinalRun] = {}
        for p in run_infos:
            run = read_run_info(p)
            once(("run_info", run.model_id), p, f"run_info of {run.model_id}")
            finals[run.model_id] = run
        return cls(words, n_pairs, finals, lengths, formed)

    def run_ids(self) -> dict[str, str]:
        """Final DPO model id -> wandb run id of its training run (models with one)."""
        return {m: r.wandb_run_id for m, r in self.finals.items() if r.wandb_run_id}


def model_meta(model_id: str, config: Mapping[str, Any], inputs: ModelInputs) -> dict[str, Any]:
    """Columns that describe a model (module docstring; ``config`` for ``dpo.init``);
    :class:`InputError` naming the model and the flag whose file is missing."""
    cell = parse_model_id(model_id)
    dpo = cell.kind in ("dpo", "checkpoint")
    meta: dict[str, Any] = {"model_id": model_id, "kind": cell.kind,
                            "init": model_init(dict(config), cell) if dpo else None,
                            "arm": cell.arm, "matching": cell.matching,
                            "size": cell.size, "n_pairs": None, "seed": cell.seed, "step": cell.step,
                            "zero_point": False}
    problems = []
    if cell.kind in ("dpo", "checkpoint"):
        key = (cell.arm, cell.matching, cell.size)
        if key in inputs.n_pairs:
            meta["n_pairs"] = inputs.n_pairs[key]
        else:
            problems.append(f"model {model_id}: no series manifest for {cell.arm}/{cell.matching}/n{cell.size} "
                            "among --manifests (expected the manifest.json whose arm, matching and size are these)")
    if cell.kind == "dpo":
        if model_id in inputs.finals:
            meta["step"] = inputs.finals[model_id].step
        else:
            problems.append(f"model {model_id}: no run_info.json among --run-info (expected the final model's "
                            "run_info.json, whose job names this arm, matching, size and seed)")
    if problems:
        raise InputError("\n  ".join(problems))
    return meta


def _lines(meta_rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(init, arm, matching) lines of the DPO models, sorted."""
    return sorted({(m["init"], m["arm"], m["matching"]) for m in meta_rows if m["kind"] in ("dpo", "checkpoint")})


def typed_table(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with exactly ``columns``, integer columns as nullable ``Int64`` and boolean columns
    as ``bool`` (how every table of this module is written)."""
    df = df.reindex(columns=list(columns))
    for c in INT_COLUMNS:
        if c in df:
            df[c] = pd.array(df[c].tolist(), dtype="Int64")
    for c in BOOL_COLUMNS:
        if c in df:
            df[c] = df[c].astype(bool)
    return df


def _run_step(row: Mapping[str, Any]) -> tuple:
    return (row["judge"], row["init"], row["arm"], row["matching"], row["size"], row["seed"], row["step"])


def final_checkpoints(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Checkpoint model id -> final model id, for checkpoints at their run's final step (the
    same weights: one row, the final model's, is kept)."""
    rows = list(rows)
    finals = {_run_step(r): r["model_id"] for r in rows if r["kind"] == "dpo"}
    return {r["model_id"]: finals[_run_step(r)] for r in rows
            if r["kind"] == "checkpoint" and _run_step(r) in finals}


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def win_rate_tables(
    questions_frame: pd.DataFrame,
    groups_frame: pd.DataFrame,
    config: Mapping[str, Any],
    inputs: ModelInputs,
    questions: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(win_rates, win_rates_groups)`` tables (module docstring) from judgment frames.

    Reads config ``eval.baseline``, ``dpo.init`` (the zero point) and ``eval.bootstrap``; the
    baseline of every judgment must be the zero point (``eval.baseline: zero``) or
    ``reference``. Every model in the table (and the baseline) needs its answers in
    ``inputs``; DPO models and checkpoints their series manifest; final DPO models their
    run_info (:class:`InputError` listing every missing one).
    """
    n_boot = int(config_value(config, "eval.bootstrap.n"))
    seed = int(config_value(config, "eval.bootstrap.seed"))
    baseline_kind = config_value(config, "eval.baseline")
    config_value(config, "dpo.init")
    inits = init_models(dict(config))
    zero = inits[0]  # the comparison baseline under eval.baseline zero
    expected = check_judgments(questions_frame, questions, zero if baseline_kind == "zero" else "reference")
    for note in malformed_notes(questions_frame):
        log.warning(note)

    judged = [str(m) for m in sorted(questions_frame["model_id"].unique())]
    self_matched = baseline_kind == "zero" and bool(judged) and zero not in judged
    in_table = judged + ([zero] if self_matched else [])
    metas: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for m in in_table:
        try:
            metas[m] = model_meta(m, config, inputs)
        except InputError as exc:
            problems.append(str(exc))
    baselines = [str(b) for b in sorted(questions_frame["baseline"].unique())]
    for m in dict.fromkeys([*in_table, *baselines]):
        if m not in inputs.answer_words:
            role = ("model {} (the baseline)" if m in baselines else "model {}") if m in in_table else "baseline {}"
            problems.append(f"{role.format(m)}: no answers file {m}.jsonl among --answers (a model's id is its "
                            "answers file's stem; the reference answers are reference.jsonl)")
    if problems:
        raise InputError("missing inputs:\n  " + "\n  ".join(problems))

    rows, grows = [], []
    for (judge, model), mf in questions_frame.groupby(["judge", "model_id"], sort=True):
        base = str(mf["baseline"].iloc[0])
        common = {**metas[str(model)], "baseline": base, "judge": judge, "judge_prompt": mf["judge_prompt"].iloc[0]}
        rows.append({**common, **summarize(mf, n_boot, seed), **lc_summary(mf, str(model), base, inputs, n_boot, seed)})
        gf = groups_frame[(groups_frame["judge"] == judge) & (groups_frame["model_id"] == model)]
        for group, sub in gf.groupby("group", sort=False):
            grows.append({**common, "group": group, **summarize(sub, n_boot, seed)})

    same = final_checkpoints(rows)
    for ckpt, final in sorted(same.items()):
        log.info("checkpoint %s has the final step of %s: the same model, kept once as %s", ckpt, final, final)
    rows = [r for r in rows if r["model_id"] not in same]
    grows = [g for g in grows if g["model_id"] not in same]

    # The zero point of each init: judged like any model, or the baseline itself; once per line.
    out_rows, out_grows = [], []
    for judge in sorted({r["judge"] for r in rows}):
        jrows = [r for r in rows if r["judge"] == judge]
        lines = _lines(jrows)
        jgrows = [g for g in grows if g["judge"] == judge]
        out_rows += [r for r in jrows if r["model_id"] not in inits]
        out_grows += [g for g in jgrows if g["model_id"] not in inits]
        for init in inits:
            zrows = [r for r in jrows if r["model_id"] == init]
            zgrows = [g for g in jgrows if g["model_id"] == init]
            if self_matched and init == zero:
                base_meta = {**metas[zero], "baseline": zero, "judge": judge, "judge_prompt": jrows[0]["judge_prompt"]}
                zrows = [{**base_meta, **self_match(len(expected[judge])),
                          "lc_win_rate": 0.5, "lc_ci_low": 0.5, "lc_ci_high": 0.5}]
                groups = list(dict.fromkeys(g["group"] for g in jgrows))
                zgrows = [{**base_meta, "group": g, **self_match(len(expected[judge]))} for g in groups]
            init_lines = [(a, m) for i, a, m in lines if i == init]
            for arm, matching in init_lines or [(None, None)]:
                line = {"init": init if arm else None, "arm": arm, "matching": matching,
                        "size": 0 if arm else None, "n_pairs": 0 if arm else None, "zero_point": bool(arm)}
                out_rows += [{**r, **line} for r in zrows]
                out_grows += [{**g, **line} for g in zgrows]

    for r in out_rows:
        r["mean_words"] = inputs.answer_words[r["model_id"]]
        r["baseline_mean_words"] = inputs.answer_words[r["baseline"]]
        r["well_formed"] = inputs.well_formed[r["model_id"]]
        r["baseline_well_formed"] = inputs.well_formed[r["baseline"]]
    table = _sort(typed_table(pd.DataFrame(out_rows), WIN_RATE_COLUMNS))
    groups_table = _sort(typed_table(pd.DataFrame(out_grows), GROUP_COLUMNS), extra=["group"])
    return table, groups_table


def _sort(df: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    keys = ["judge", "init", "arm", "matching", "size", "seed", "step", "model_id"] + (extra or [])
    if not len(df):
        return df
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


def arm_differences(questions_frame: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """Paired arm-vs-reference-arm differences per judge, matching and size (module docstring).

    Reads config ``eval.bootstrap``, ``data.reference_arm`` and ``dpo.init``; only final DPO
    models count; an arm is compared with the reference arm trained from the same init.
    """
    n_boot = int(config_value(config, "eval.bootstrap.n"))
    bseed = int(config_value(config, "eval.bootstrap.seed"))
    ref_arm = config_value(config, "data.reference_arm")
    config_value(config, "dpo.init")
    cells = []
    init_of: dict[str, str] = {}
    for model in questions_frame["model_id"].unique():
        cell = parse_model_id(str(model))
        if cell.kind == "dpo":
            cells.append(cell)
            init_of[cell.model_id] = model_init(dict(config), cell)
    rows = []
    # one row per (judge, model, question): check_judgments guarantees it
    scores = questions_frame.set_index(["judge", "model_id", "question_id"])["score"].unstack("question_id")
    for judge in sorted(questions_frame["judge"].unique()):
        jf = questions_frame[questions_frame["judge"] == judge]
        baseline = str(jf["baseline"].iloc[0])
        judged = set(jf["model_id"])
        ref = {(init_of[c.model_id], c.size, c.seed): c.model_id for c in cells
               if c.arm == ref_arm and c.model_id in judged}
        others = sorted({(init_of[c.model_id], c.arm, c.matching, c.size) for c in cells
                         if c.arm != ref_arm and c.model_id in judged})
        for init, arm, matching, size in others:
            pairs = sorted(
                (c.seed, c.model_id, ref[(init, size, c.seed)]) for c in cells
                if (init_of[c.model_id], c.arm, c.matching, c.size) == (init, arm, matching, size)
                and c.model_id in judged and (init, size, c.seed) in ref
            )
            if not pairs:
                continue
            a = np.stack([scores.loc[(judge, m)].to_numpy(dtype=float) for _, m, _ in pairs])
            r = np.stack([scores.loc[(judge, m)].to_numpy(dtype=float) for _, _, m in pairs])
            d = a - r  # [seeds, questions], NaN where either side errored
            ok = ~np.isnan(d)
            d_q = np.array([d[ok[:, j], j].mean() for j in range(d.shape[1]) if ok[:, j].any()])
            per_seed = np.array([d[s, ok[s]].mean() for s in range(d.shape[0]) if ok[s].any()])
            lo, hi = bootstrap_ci(d_q, n_boot, bseed)
            rows.append({
                "judge": judge, "baseline": baseline, "init": init, "arm": arm, "matching": matching,
                "ref_arm": ref_arm,
                "size": size, "seeds": ";".join(str(s) for s, _, _ in pairs), "n_seeds": len(pairs),
                "n_questions": int(d_q.size),
                "win_rate": float(np.nanmean(np.where(ok, a, np.nan))) if ok.any() else float("nan"),
                "ref_win_rate": float(np.nanmean(np.where(ok, r, np.nan))) if ok.any() else float("nan"),
                "diff": float(d[ok].mean()) if ok.any() else float("nan"),
                "ci_low": lo, "ci_high": hi,
                "seed_sd": float(np.std(per_seed, ddof=1)) if per_seed.size > 1 else float("nan"),
            })
    df = typed_table(pd.DataFrame(rows, columns=list(DIFF_COLUMNS)), DIFF_COLUMNS)
    return df.sort_values(["judge", "init", "arm", "matching", "size"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Reading and writing the tables
# ---------------------------------------------------------------------------------------------

def write_table(path: str | os.PathLike, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Write one of this module's tables atomically, exactly ``columns`` in that order (a table
    with nothing in it is its header line)."""
    from prefsweep.io import atomic_write_text

    if tuple(frame.columns) != tuple(columns):
        raise ValueError(f"{path}: table columns {list(frame.columns)} differ from its schema {list(columns)}")
    atomic_write_text(path, frame.to_csv(index=False))


def read_table(path: str | os.PathLike, columns: Sequence[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table`: text columns as ``str`` ('' when empty),
    every other column numeric (NaN when empty). A missing file, a file without a header or a
    header other than ``columns`` is a :class:`InputError` naming the file."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={c: str for c in columns if c in TEXT_COLUMNS}, keep_default_na=False,
                         na_values=[""])
    except FileNotFoundError:
        raise InputError(f"{path}: table not found (expected a CSV written by scripts/win_rates.py)") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, no header (expected the columns {list(columns)})") from None
    if tuple(df.columns) != tuple(columns):
        missing = [c for c in columns if c not in df.columns]
        extra = [c for c in df.columns if c not in columns]
        raise InputError(f"{path}: columns differ from the table's schema (missing {missing}, unexpected {extra}); "
                         "rebuild it with scripts/win_rates.py")
    for c in df.columns:
        if c in TEXT_COLUMNS:
            df[c] = df[c].fillna("").astype(str)
        elif c in BOOL_COLUMNS:
            df[c] = df[c].astype(str).str.lower().eq("true")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df
