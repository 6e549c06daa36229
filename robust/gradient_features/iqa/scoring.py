"""How the field scores a quality index against subjective scores: SROCC, KROCC, PLCC, RMSE.

SROCC and KROCC are rank correlations (scipy), signed so that positive = agreement whatever
the score's direction (a DMOS, or a distortion level, is negated). PLCC and RMSE come after
the 5-parameter logistic of VQEG / Sheikh et al. 2006,
``b1 (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5``, fitted by scipy's ``curve_fit`` from the
index to the subjective score (the authors' released code has the fit commented out; the
field reports it). When the fit does not converge, a straight line is fitted instead and
``fit`` says ``linear``. RMSE is in the subjective score's units.

Intervals: a bootstrap over reference images (all the pairs of a drawn reference come
along), the same draws for every index, so the ``gradient - unique`` difference is paired.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from robust.evaluation.bootstrap import difference, interval, resample_indices


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -50, 50)))) + b4 * x + b5


def fit_logistic(objective: np.ndarray, subjective: np.ndarray) -> tuple[np.ndarray, str]:
    """The subjective scores predicted from the index by the fitted logistic (on the index
    standardised, for conditioning), and which fit was used (``logistic`` | ``linear``)."""
    x = (objective - objective.mean()) / (objective.std() or 1.0)
    y = subjective
    sign = 1.0 if stats.spearmanr(x, y).statistic >= 0 else -1.0
    start = [sign * (y.max() - y.min() or 1.0), 1.0, 0.0, 0.0, y.mean()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            beta, _ = optimize.curve_fit(logistic5, x, y, p0=start, maxfev=20_000)
        predicted = logistic5(x, *beta)
        if np.all(np.isfinite(predicted)):
            return predicted, "logistic"
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        pass
    slope, intercept = np.polyfit(x, y, 1)
    return slope * x + intercept, "linear"


def agreement(objective: Sequence[float], subjective: Sequence[float], higher_is_better: bool = True) -> dict[str, Any]:
    """``{srocc, krocc, plcc, rmse, fit, n}`` of one index's scores against subjective scores."""
    x, y = np.asarray(objective, dtype=float), np.asarray(subjective, dtype=float)
    sign = 1.0 if higher_is_better else -1.0
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:  # rank correlations undefined
        return {"srocc": None, "krocc": None, "plcc": None, "rmse": None, "fit": None, "n": int(len(x))}
    predicted, fit = fit_logistic(x, y)
    plcc = stats.pearsonr(predicted, y).statistic if np.ptp(predicted) > 0 else float("nan")
    return {"srocc": float(sign * stats.spearmanr(x, y).statistic), "krocc": float(sign * stats.kendalltau(x, y).statistic),
            "plcc": None if np.isnan(plcc) else float(plcc), "rmse": float(np.sqrt(np.mean((predicted - y) ** 2))), "fit": fit,
            "n": int(len(x))}


def srocc(objective: np.ndarray, subjective: np.ndarray, higher_is_better: bool) -> float:
    value = stats.spearmanr(objective, subjective).statistic if np.ptp(objective) > 0 and np.ptp(subjective) > 0 else float("nan")
    return float(value if higher_is_better else -value)


def mean_within_type(objective: np.ndarray, subjective: np.ndarray, kinds: np.ndarray, higher_is_better: bool) -> float:
    """The mean over distortion types of the SROCC inside each type."""
    return float(np.nanmean([srocc(objective[kinds == k], subjective[kinds == k], higher_is_better) for k in np.unique(kinds)]))


Statistic = Callable[[np.ndarray, np.ndarray, np.ndarray, bool], float]


def bootstrap(scores: Mapping[str, np.ndarray], subjective: np.ndarray, kinds: np.ndarray, groups: np.ndarray, higher_is_better: bool,
              statistic: Statistic, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Per index, ``statistic`` on ``resamples`` bootstrap draws of the reference images
    (``groups``; the same draws for every index)."""
    names, members = np.unique(groups, return_inverse=True)
    by_group = [np.flatnonzero(members == g) for g in range(len(names))]
    draws = resample_indices(len(names), resamples, seed)
    out = {name: np.empty(resamples) for name in scores}
    for b, draw in enumerate(draws):
        rows = np.concatenate([by_group[g] for g in draw])
        for name, values in scores.items():
            out[name][b] = statistic(values[rows], subjective[rows], kinds[rows], higher_is_better)
    return out


def with_interval(value: float, resampled: np.ndarray | None) -> dict[str, Any]:
    """``{value, interval}`` (the 95 % percentile interval, None without resamples)."""
    return {"value": value, "interval": interval(resampled) if resampled is not None else None}


def paired_difference(a: np.ndarray, b: np.ndarray, value: float) -> dict[str, Any]:
    """``a - b`` per resample (:func:`robust.evaluation.bootstrap.difference`): the value, its interval and
    whether the interval excludes 0."""
    return {"value": value, **difference({"x": a}, {"x": b})["x"]}
