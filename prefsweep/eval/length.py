"""The length-controlled win rate of AlpacaEval 2, without its instruction-difficulty term.

Per model, the per-question scores ``y_q`` (1, 1/2, 0) are regressed on the length difference
by ``P(win) = sigmoid(theta + phi * tanh(d_q / sd(d)))``, ``d_q`` = words of the model's answer
minus words of the baseline's, fitted by maximum likelihood (ties as half wins) with the L2
penalty ``(theta^2 + phi^2) / (2 C)``, ``C`` = :data:`LC_L2_C`; ``lc_win_rate = sigmoid(theta)``,
the win rate predicted at zero length difference. Its interval: the percentile bootstrap over
questions (:mod:`prefsweep.eval.bootstrap`), refitting on each resample with ``sd(d)`` of the
full sample. Sources and choices: ``docs/design/win_rate_tables.md``.
"""

from __future__ import annotations

import numpy as np

from prefsweep.eval.bootstrap import bootstrap_indices, percentile_interval

#: Inverse L2 strength of the logistic fit (sklearn's convention; it keeps the fit finite when
#: the verdicts separate, e.g. all wins).
LC_L2_C = 100.0


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
