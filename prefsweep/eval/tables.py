"""Build the win-rate tables from judgments: win rates, per-group win rates, arm differences.

The same builders make ``win_rates.csv`` / ``win_rates_groups.csv`` / ``arm_differences.csv``
over the final models and ``evolution.csv`` / ``evolution_groups.csv`` /
``evolution_differences.csv`` over checkpoints and final DPO models. Columns and their meaning:
:mod:`prefsweep.eval.measures` (each computed measure fills its own columns); the zero point,
the lines and the checks: ``docs/design/win_rate_tables.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from prefsweep.eval import measures
from prefsweep.eval.inputs import InputError, ModelInputs, config_value
from prefsweep.eval.judgments import check_judgments, malformed_notes
from prefsweep.eval.measures.arm_difference import paired_difference
from prefsweep.eval.table_io import typed_table
from prefsweep.paths import init_models, model_init, parse_model_id

log = logging.getLogger(__name__)


def model_meta(model_id: str, config: Mapping[str, Any], inputs: ModelInputs) -> dict[str, Any]:
    """The ``model`` key columns of a model (``config`` for ``dpo.init``): kind, arm, matching,
    size, seed and step from its id, ``n_pairs`` from its series manifest, a final DPO model's
    step from its run_info; :class:`InputError` naming the model and the flag whose file is missing."""
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


def _run_step(row: Mapping[str, Any]) -> tuple:
    return (row["judge"], row["init"], row["arm"], row["matching"], row["size"], row["seed"], row["step"])


def final_checkpoints(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Checkpoint model id -> final model id, for checkpoints at their run's final step (the
    same weights: one row, the final model's, is kept)."""
    rows = list(rows)
    finals = {_run_step(r): r["model_id"] for r in rows if r["kind"] == "dpo"}
    return {r["model_id"]: finals[_run_step(r)] for r in rows
            if r["kind"] == "checkpoint" and _run_step(r) in finals}


def _check_inputs(in_table: list[str], baselines: list[str], config: Mapping[str, Any],
                  inputs: ModelInputs) -> dict[str, dict[str, Any]]:
    """``model_meta`` of every model of the table; one :class:`InputError` listing every missing file."""
    metas: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for m in in_table:
        try:
            metas[m] = model_meta(m, config, inputs)
        except InputError as exc:
            problems.append(str(exc))
    for m in dict.fromkeys([*in_table, *baselines]):
        if m not in inputs.answer_words:
            role = ("model {} (the baseline)" if m in baselines else "model {}") if m in in_table else "baseline {}"
            problems.append(f"{role.format(m)}: no answers file {m}.jsonl among --answers (a model's id is its "
                            "answers file's stem; the reference answers are reference.jsonl)")
    if problems:
        raise InputError("missing inputs:\n  " + "\n  ".join(problems))
    return metas


def win_rate_tables(
    questions_frame: pd.DataFrame,
    groups_frame: pd.DataFrame,
    config: Mapping[str, Any],
    inputs: ModelInputs,
    questions: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(win_rates, win_rates_groups)`` tables from judgment frames, with the columns of
    ``measures.columns(WIN_RATES)`` and ``measures.columns(GROUPS)``.

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
    baselines = [str(b) for b in sorted(questions_frame["baseline"].unique())]
    metas = _check_inputs(in_table, baselines, config, inputs)

    def sample(outcomes: pd.DataFrame, model: str, base: str, judge: str) -> measures.Sample:
        return measures.Sample(outcomes, model, base, inputs, n_boot, seed, tuple(expected[judge]))

    rows, grows = [], []
    for (judge, model), mf in questions_frame.groupby(["judge", "model_id"], sort=True):
        base = str(mf["baseline"].iloc[0])
        common = {**metas[str(model)], "baseline": base, "judge": judge, "judge_prompt": mf["judge_prompt"].iloc[0]}
        rows.append({**common, **measures.values(measures.WIN_RATES, sample(mf, str(model), base, judge))})
        gf = groups_frame[(groups_frame["judge"] == judge) & (groups_frame["model_id"] == model)]
        for group, sub in gf.groupby("group", sort=False):
            grows.append({**common, "group": group,
                          **measures.values(measures.GROUPS, sample(sub, str(model), base, judge))})

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
                itself = sample(pd.DataFrame(), zero, zero, judge)
                zrows = [{**base_meta, **measures.self_match_values(measures.WIN_RATES, itself)}]
                groups = list(dict.fromkeys(g["group"] for g in jgrows))
                zgrows = [{**base_meta, "group": g, **measures.self_match_values(measures.GROUPS, itself)}
                          for g in groups]
            init_lines = [(a, m) for i, a, m in lines if i == init]
            for arm, matching in init_lines or [(None, None)]:
                line = {"init": init if arm else None, "arm": arm, "matching": matching,
                        "size": 0 if arm else None, "n_pairs": 0 if arm else None, "zero_point": bool(arm)}
                out_rows += [{**r, **line} for r in zrows]
                out_grows += [{**g, **line} for g in zgrows]

    table = _sort(typed_table(pd.DataFrame(out_rows), measures.columns(measures.WIN_RATES)))
    groups_table = _sort(typed_table(pd.DataFrame(out_grows), measures.columns(measures.GROUPS)), extra=["group"])
    return table, groups_table


def _sort(df: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    keys = ["judge", "init", "arm", "matching", "size", "seed", "step", "model_id"] + (extra or [])
    if not len(df):
        return df
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


def arm_differences(questions_frame: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """Paired arm-vs-reference-arm differences per judge, init, matching and size > 0
    (:mod:`prefsweep.eval.measures.arm_difference`), with ``measures.columns(DIFFERENCES)``.

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
            rows.append({
                "judge": judge, "baseline": baseline, "init": init, "arm": arm, "matching": matching,
                "ref_arm": ref_arm, "size": size, "seeds": ";".join(str(s) for s, _, _ in pairs),
                **paired_difference(a, r, n_boot, bseed),
            })
    columns = measures.columns(measures.DIFFERENCES)
    df = typed_table(pd.DataFrame(rows, columns=list(columns)), columns)
    return df.sort_values(["judge", "init", "arm", "matching", "size"], kind="stable").reset_index(drop=True)
