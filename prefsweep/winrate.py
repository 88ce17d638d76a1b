"""Win rates against the baseline, arm differences and per-group win rates, from pair judgments.

Input: FastChat pair-judgment records (``eval/model_judgment/{judge}_pair/{model_id}.jsonl``),
one per question, each holding both orders: ``g1`` (model under test shown first) and ``g2``
(swapped), ``model_1`` = model under test, ``model_2`` = baseline.

Per question (FastChat ``show_result.display_result_pairwise`` convention):

* a verdict outside ``model_1 | model_2 | tie`` in either order (e.g. ``error``) is an *error*:
  counted, and left out of ``n`` and the win rate, as FastChat drops such rows;
* otherwise the orders agree -> that verdict (win / loss / tie); they disagree -> tie
  (a *position flip*).

``win_rate = (wins + ties / 2) / n`` with ``n = wins + ties + losses`` (FastChat's
``win_rate_adjusted``); its 95% CI is a percentile bootstrap over questions (``eval.bootstrap``
``{n, seed}``: resamples and seed; every model is resampled with the same question indices).
``flip_rate`` = flips / n.

Validation: every (model, judge) must have exactly one record per question -- each record
holding both orders -- against the one baseline, for the same question set as every other model
of that judge (or the ``questions`` given). Duplicates, gaps, extra questions, a missing order or
a second baseline raise :class:`JudgmentError` naming the model, so nothing is counted twice.

Output tables (CSV):

``win_rates.csv`` -- one row per model, judge and line::

    model_id, kind, arm, matching, size, n_pairs, seed, step, zero_point, baseline, judge,
    judge_prompt, wins, ties, losses, errors, n, win_rate, ci_low, ci_high, flip_rate,
    mean_words, baseline_mean_words

``kind``/``arm``/``matching``/``size``/``seed``/``step`` come from
:func:`prefsweep.paths.parse_model_id`; ``n_pairs`` is the series manifest's ``n_pairs``
(``data/{arm}/{matching}/n{size}/manifest.json``). The zero point (``sft`` or ``base``, the DPO
init) appears once per (arm, matching) line of the DPO models, as ``size`` 0 with ``n_pairs`` 0
and ``zero_point`` true. When the baseline *is* the zero point (``eval.baseline: zero``) it is not
judged against itself: its rows have win rate 0.5 by definition (all ties, CI [0.5, 0.5]).
``mean_words`` = mean whitespace word count of the model's answers.

``arm_differences.csv`` -- per judge, matching and size > 0: the paired difference in score
between an arm and the reference arm (``data.reference_arm``, stored as matching ``shared``)::

    judge, baseline, arm, matching, ref_arm, size, seeds, n_seeds, n_questions,
    win_rate, ref_win_rate, diff, ci_low, ci_high, seed_sd

``d[s, q] = score_arm[s, q] - score_ref[s, q]`` over the seeds both arms have and questions
without an error in either; ``diff`` = mean of ``d``; the CI bootstraps questions of the
seed-averaged ``d_q`` (pairs kept together); ``seed_sd`` = std (ddof 1) of the per-seed mean
differences, the seed-to-seed spread the question bootstrap does not see.

``win_rates_groups.csv`` -- as ``win_rates.csv`` per voter group (``group`` column), from the
electorate's ``g1_group_winners``/``g2_group_winners``; empty for judges without groups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prefsweep.paths import parse_model_id, zero_point_id
from prefsweep.tracking import scrub_secrets, wandb_settings

VERDICTS = ("model_1", "model_2", "tie")
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
DEFAULT_BOOTSTRAP = {"n": 2000, "seed": 0}

META_COLUMNS = ["model_id", "kind", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point",
                "baseline", "judge", "judge_prompt"]
STAT_COLUMNS = ["wins", "ties", "losses", "errors", "n", "win_rate", "ci_low", "ci_high", "flip_rate"]
WIN_RATE_COLUMNS = META_COLUMNS + STAT_COLUMNS + ["mean_words", "baseline_mean_words"]
GROUP_COLUMNS = META_COLUMNS + ["group"] + STAT_COLUMNS
DIFF_COLUMNS = ["judge", "baseline", "arm", "matching", "ref_arm", "size", "seeds", "n_seeds", "n_questions",
                "win_rate", "ref_win_rate", "diff", "ci_low", "ci_high", "seed_sd"]
INT_COLUMNS = ["size", "n_pairs", "seed", "step"]


class JudgmentError(ValueError):
    """Judgments that would miscount: duplicates, gaps, a missing order, mixed baselines."""


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
    """:func:`judgment_frames` of several judgment files (concatenated)."""
    from prefsweep.io import read_jsonl

    qs, gs = [], []
    for p in paths:
        q, g = judgment_frames(read_jsonl(p), source=str(p))
        qs.append(q)
        gs.append(g)
    if not qs:
        raise JudgmentError("no judgment files given")
    return pd.concat(qs, ignore_index=True), pd.concat(gs, ignore_index=True)


def check_judgments(
    frame: pd.DataFrame,
    questions: Iterable[str] | None = None,
    baseline: str | None = None,
) -> dict[str, list[str]]:
    """Validate counts (module docstring); returns ``{judge: sorted question ids}``.

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
                problems.append(f"model {model} (judge {judge}): " + "; ".join(parts)
                                + f" (expected exactly one judgment per question and order against the baseline, "
                                  f"{len(exp)} questions)")
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
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(int(n_boot), values.size))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


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


# ---------------------------------------------------------------------------------------------
# Model metadata
# ---------------------------------------------------------------------------------------------

def manifest_path(manifests_dir: str | os.PathLike, arm: str, matching: str, size: int) -> Path:
    return Path(manifests_dir) / arm / matching / f"n{size}" / "manifest.json"


def series_pairs(manifests_dir: str | os.PathLike, arm: str, matching: str, size: int) -> int:
    """``n_pairs`` of a series manifest; a missing manifest is an error naming its path."""
    path = manifest_path(manifests_dir, arm, matching, size)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: series manifest not found (needed for n_pairs of {arm}/{matching}/n{size})")
    return int(json.loads(path.read_text())["n_pairs"])


def mean_words(path: Path) -> float:
    """Mean whitespace word count of the first turn of every answer in a FastChat answer file."""
    from prefsweep.io import read_jsonl

    lengths = [len(r["choices"][0]["turns"][0].split()) for r in read_jsonl(path)]
    return float(np.mean(lengths)) if lengths else float("nan")


def answer_file(answers_dir: str | os.PathLike | None, model_id: str) -> Path | None:
    """A model's answer file; the reference answers live beside ``model_answer/``."""
    if answers_dir is None:
        return None
    d = Path(answers_dir)
    for p in (d / f"{model_id}.jsonl", d.parent / "reference_answer" / f"{model_id}.jsonl"):
        if p.is_file():
            return p
    return None


def model_meta(model_id: str, manifests_dir: str | os.PathLike | None, zero: str | None) -> dict[str, Any]:
    """Columns that describe a model (module docstring); ``n_pairs`` stays empty without manifests."""
    cell = parse_model_id(model_id)
    meta: dict[str, Any] = {"model_id": model_id, "kind": cell.kind, "arm": cell.arm, "matching": cell.matching,
                            "size": cell.size, "n_pairs": None, "seed": cell.seed, "step": cell.step,
                            "zero_point": model_id == zero}
    if cell.kind in ("dpo", "checkpoint") and manifests_dir is not None:
        meta["n_pairs"] = series_pairs(manifests_dir, cell.arm, cell.matching, cell.size)
    return meta


def _lines(meta_rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(arm, matching) lines of the DPO models, sorted."""
    return sorted({(m["arm"], m["matching"]) for m in meta_rows if m["kind"] in ("dpo", "checkpoint")})


def _typed(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    df = df.reindex(columns=columns)
    for c in INT_COLUMNS:
        if c in df:
            df[c] = pd.array(df[c].tolist(), dtype="Int64")
    return df


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def win_rate_tables(
    questions_frame: pd.DataFrame,
    groups_frame: pd.DataFrame,
    config: Mapping[str, Any],
    *,
    answers_dir: str | os.PathLike | None = None,
    manifests_dir: str | os.PathLike | None = None,
    questions: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(win_rates, win_rates_groups)`` tables (module docstring) from judgment frames.

    Reads config ``eval.baseline``, ``dpo.init`` (the zero point) and ``eval.bootstrap``.
    """
    boot = {**DEFAULT_BOOTSTRAP, **(config.get("eval", {}).get("bootstrap") or {})}
    n_boot, seed = int(boot["n"]), int(boot["seed"])
    zero = zero_point_id(config) if "dpo" in config else None
    baseline_kind = config.get("eval", {}).get("baseline", "zero")
    expected_baseline = zero if baseline_kind == "zero" else None
    expected = check_judgments(questions_frame, questions, expected_baseline)

    rows, grows = [], []
    for (judge, model), mf in questions_frame.groupby(["judge", "model_id"], sort=True):
        meta = model_meta(str(model), manifests_dir, zero)
        base = str(mf["baseline"].iloc[0])
        common = {**meta, "baseline": base, "judge": judge, "judge_prompt": mf["judge_prompt"].iloc[0]}
        rows.append({**common, **summarize(mf, n_boot, seed)})
        gf = groups_frame[(groups_frame["judge"] == judge) & (groups_frame["model_id"] == model)]
        for group, sub in gf.groupby("group", sort=False):
            grows.append({**common, "group": group, **summarize(sub, n_boot, seed)})

    # The zero point: judged like any model (reference baseline), or the baseline itself.
    out_rows, out_grows = [], []
    for judge in sorted({r["judge"] for r in rows}):
        jrows = [r for r in rows if r["judge"] == judge]
        lines = _lines(jrows)
        zrows = [r for r in jrows if r["model_id"] == zero]
        zgrows = [g for g in grows if g["judge"] == judge and g["model_id"] == zero]
        if not zrows and zero is not None and baseline_kind == "zero":
            base_meta = {**model_meta(zero, manifests_dir, zero), "baseline": zero, "judge": judge,
                         "judge_prompt": jrows[0]["judge_prompt"]}
            zrows = [{**base_meta, **self_match(len(expected[judge]))}]
            groups = list(dict.fromkeys(g["group"] for g in grows if g["judge"] == judge))
            zgrows = [{**base_meta, "group": g, **self_match(len(expected[judge]))} for g in groups]
        for r in jrows:
            if r["model_id"] != zero:
                out_rows.append(r)
        out_grows += [g for g in grows if g["judge"] == judge and g["model_id"] != zero]
        for arm, matching in lines or [(None, None)]:
            line = {"arm": arm, "matching": matching, "size": 0 if arm else None, "n_pairs": 0 if arm else None}
            out_rows += [{**r, **line} for r in zrows]
            out_grows += [{**g, **line} for g in zgrows]

    table = pd.DataFrame(out_rows)
    if len(table):
        table["mean_words"] = [_words(answers_dir, m) for m in table["model_id"]]
        table["baseline_mean_words"] = [_words(answers_dir, b, required=False) for b in table["baseline"]]
    table = _sort(_typed(table, WIN_RATE_COLUMNS))
    groups_table = _sort(_typed(pd.DataFrame(out_grows), GROUP_COLUMNS), extra=["group"])
    return table, groups_table


def _words(answers_dir, model_id: str, required: bool = True) -> float:
    if answers_dir is None:
        return float("nan")
    path = answer_file(answers_dir, model_id)
    if path is None:
        if required:
            raise FileNotFoundError(f"{Path(answers_dir) / (model_id + '.jsonl')}: answers of {model_id} not found")
        return float("nan")
    return mean_words(path)


def _sort(df: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    keys = ["judge", "arm", "matching", "size", "seed", "step", "model_id"] + (extra or [])
    if not len(df):
        return df
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


def arm_differences(
    questions_frame: pd.DataFrame, config: Mapping[str, Any], ref_arm: str | None = None
) -> pd.DataFrame:
    """Paired arm-vs-reference-arm differences per judge, matching and size (module docstring)."""
    boot = {**DEFAULT_BOOTSTRAP, **(config.get("eval", {}).get("bootstrap") or {})}
    n_boot, bseed = int(boot["n"]), int(boot["seed"])
    ref_arm = ref_arm or config["data"]["reference_arm"]
    cells = []
    for model in questions_frame["model_id"].unique():
        cell = parse_model_id(str(model))
        if cell.kind == "dpo":
            cells.append(cell)
    rows = []
    # one row per (judge, model, question): check_judgments guarantees it
    scores = questions_frame.set_index(["judge", "model_id", "question_id"])["score"].unstack("question_id")
    for judge in sorted(questions_frame["judge"].unique()):
        jf = questions_frame[questions_frame["judge"] == judge]
        baseline = str(jf["baseline"].iloc[0])
        judged = set(jf["model_id"])
        ref = {(c.size, c.seed): c.model_id for c in cells if c.arm == ref_arm and c.model_id in judged}
        others = sorted({(c.arm, c.matching, c.size) for c in cells if c.arm != ref_arm and c.model_id in judged})
        for arm, matching, size in others:
            pairs = sorted(
                (c.seed, c.model_id, ref[(size, c.seed)]) for c in cells
                if (c.arm, c.matching, c.size) == (arm, matching, size) and c.model_id in judged
                and (size, c.seed) in ref
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
                "judge": judge, "baseline": baseline, "arm": arm, "matching": matching, "ref_arm": ref_arm,
                "size": size, "seeds": ";".join(str(s) for s, _, _ in pairs), "n_seeds": len(pairs),
                "n_questions": int(d_q.size),
                "win_rate": float(np.nanmean(np.where(ok, a, np.nan))) if ok.any() else float("nan"),
                "ref_win_rate": float(np.nanmean(np.where(ok, r, np.nan))) if ok.any() else float("nan"),
                "diff": float(d[ok].mean()) if ok.any() else float("nan"),
                "ci_low": lo, "ci_high": hi,
                "seed_sd": float(np.std(per_seed, ddof=1)) if per_seed.size > 1 else float("nan"),
            })
    df = pd.DataFrame(rows, columns=DIFF_COLUMNS)
    df["size"] = pd.array(df["size"].tolist(), dtype="Int64")
    return df.sort_values(["judge", "arm", "matching", "size"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# wandb
# ---------------------------------------------------------------------------------------------

def eval_metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """``eval/{judge}/{stat}`` summary values of one win-rate row (NaN dropped)."""
    out = {}
    for k in STAT_COLUMNS + ["mean_words"]:
        v = row.get(k)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        out[f"eval/{row['judge']}/{k}"] = v.item() if hasattr(v, "item") else v
    return out


def training_run_id(runs_dir: str | os.PathLike | None, model_id: str) -> str | None:
    """wandb run id of a final DPO model's training run (``run_info.json`` key ``wandb_run_id``)."""
    if runs_dir is None:
        return None
    cell = parse_model_id(model_id)
    if cell.kind != "dpo":
        return None
    path = Path(runs_dir) / cell.arm / cell.matching / f"n{cell.size}" / f"seed{cell.seed}" / "final" / "run_info.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("wandb_run_id") or None


def log_to_wandb(
    table: pd.DataFrame,
    diffs: pd.DataFrame,
    groups: pd.DataFrame,
    config: Mapping[str, Any],
    *,
    wandb_dir: str | os.PathLike,
    runs_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Log eval metrics: into each final DPO model's training run where its id is known, and
    into one new eval run (all three tables, plus the metrics of models without a run).

    Settings from :func:`prefsweep.tracking.wandb_settings` (config ``wandb``, else environment). Only the
    scrubbed config (:func:`prefsweep.tracking.scrub_secrets`) and the tables are logged.
    Returns ``{"attached": {model_id: run_id}, "eval_run": run id or None}``.
    """
    settings = wandb_settings(config, wandb_dir)
    if settings["mode"] == "disabled":
        return {"attached": {}, "eval_run": None}
    import wandb

    Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
    common = {"project": settings["project"], "entity": settings["entity"], "dir": settings["dir"],
              "mode": settings["mode"], "settings": wandb.Settings(silent=True)}
    attached: dict[str, str] = {}
    unattached: dict[str, Any] = {}
    for _, row in table.iterrows():
        rid = training_run_id(runs_dir, row["model_id"])
        metrics = eval_metrics(row)
        if rid is None:
            line = "" if pd.isna(row["arm"]) else f"/{row['arm']}-{row['matching']}"
            unattached.update({f"{row['model_id']}{line}/{k}": v for k, v in metrics.items()})
            continue
        run = wandb.init(id=rid, resume="allow", **common)
        run.summary.update(metrics)
        run.finish()
        attached[row["model_id"]] = rid
    run = wandb.init(job_type="eval", name=f"eval-{config.get('experiment', 'default')}",
                     config=scrub_secrets({"prefsweep": dict(config)}), **common)
    run.log({"eval/win_rates": wandb.Table(dataframe=_for_wandb(table)),
             "eval/arm_differences": wandb.Table(dataframe=_for_wandb(diffs)),
             "eval/win_rates_groups": wandb.Table(dataframe=_for_wandb(groups))})
    run.summary.update(unattached)
    eval_id = run.id
    run.finish()
    return {"attached": attached, "eval_run": eval_id}


def _for_wandb(df: pd.DataFrame) -> pd.DataFrame:
    """Nullable ints as floats (wandb tables take plain numpy dtypes)."""
    out = df.copy()
    for c in out.columns:
        if str(out[c].dtype) == "Int64":
            out[c] = out[c].astype("float64")
    return out
