"""The paired difference between an arm and the reference arm trained from the same init.

``d[s, q] = score_arm[s, q] - score_ref[s, q]`` over the seeds both arms have and the questions
without an error in either; ``diff`` = mean of ``d``; the CI bootstraps questions of the
seed-averaged ``d_q`` (pairs kept together, :mod:`prefsweep.eval.bootstrap`); ``seed_sd`` = std
(ddof 1) of the per-seed mean differences, the seed-to-seed spread the question bootstrap does
not see. The pairing itself is :func:`prefsweep.eval.tables.arm_differences`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prefsweep.eval.bootstrap import bootstrap_ci
from prefsweep.eval.measures.registry import DIFFERENCES, Column, Measure, register


def paired_difference(a: np.ndarray, r: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """The :data:`ARM_DIFFERENCE` columns of per-question scores ``a`` (the arm) and ``r`` (the
    reference arm), both ``[seeds, questions]``, row ``s`` of both the same seed, NaN where a
    verdict is an error."""
    d = a - r  # [seeds, questions], NaN where either side errored
    ok = ~np.isnan(d)
    d_q = np.array([d[ok[:, j], j].mean() for j in range(d.shape[1]) if ok[:, j].any()])
    per_seed = np.array([d[s, ok[s]].mean() for s in range(d.shape[0]) if ok[s].any()])
    lo, hi = bootstrap_ci(d_q, n_boot, seed)
    return {
        "n_seeds": int(d.shape[0]),
        "n_questions": int(d_q.size),
        "win_rate": float(np.nanmean(np.where(ok, a, np.nan))) if ok.any() else float("nan"),
        "ref_win_rate": float(np.nanmean(np.where(ok, r, np.nan))) if ok.any() else float("nan"),
        "diff": float(d[ok].mean()) if ok.any() else float("nan"),
        "ci_low": lo, "ci_high": hi,
        "seed_sd": float(np.std(per_seed, ddof=1)) if per_seed.size > 1 else float("nan"),
    }


ARM_PAIR = register(Measure("arm_pair", (DIFFERENCES,), (
    Column("judge", "text", "the judge"),
    Column("baseline", "text", "the model both arms were judged against"),
    Column("init", "text", "the DPO init model both arms were trained from"),
    Column("arm", "text", "the aggregation arm compared with the reference arm"),
    Column("matching", "text", "how the arm's series is matched to the reference arm's: prompt or size"),
    Column("ref_arm", "text", "the reference arm (data.reference_arm)"),
    Column("size", "int", "nominal series size N > 0"),
    Column("seeds", "text", "the seeds both arms have, ';'-separated"),
)))

ARM_DIFFERENCE = register(Measure("arm_difference", (DIFFERENCES,), (
    Column("n_seeds", "int", "number of those seeds"),
    Column("n_questions", "int", "questions without an error in either arm, for some seed"),
    Column("win_rate", "float", "the arm's mean score over the paired seeds and questions"),
    Column("ref_win_rate", "float", "the reference arm's mean score over the same"),
    Column("diff", "float", "mean paired score difference, arm minus reference arm"),
    Column("ci_low", "float", "lower end of the 95% percentile bootstrap over questions of the seed-averaged "
                              "difference"),
    Column("ci_high", "float", "upper end of that interval"),
    Column("seed_sd", "float", "sd (ddof 1) of the per-seed mean differences"),
)))
