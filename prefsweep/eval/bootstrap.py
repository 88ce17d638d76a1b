"""Percentile bootstrap over eval questions: the intervals of every table.

Resample indices depend only on ``(seed, number of questions)`` (config ``eval.bootstrap.n``
resamples, seed ``eval.bootstrap.seed``), so every model judged on the same questions is
resampled with the same indices and two models' intervals are paired.
"""

from __future__ import annotations

import numpy as np


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``[n_boot, n]`` resample indices of :func:`bootstrap_ci` (they depend only on
    ``(seed, n)``), for statistics that are not a mean."""
    return np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))


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
