"""Paired bootstrap intervals over test images for the report's numbers.

Every model is scored on the same test images, so the images are resampled once and the
same resamples serve every model (Efron & Tibshirani's paired bootstrap): a difference
between two models is computed per resample, and its interval reflects only the images'
sampling variation, not the seed's. ``resamples`` draws of n images with replacement
(multinomial counts, seeded by ``(seed, n)``); each test set of n images (the clean split and
every distortion level, which pair with it image by image) is weighted by the same counts.
A set of another size (a released set that does not pair with the clean images) gets its own
resamples of its size.

Statistics per resample, exactly as the report's point estimates: clean top-1, ImageNet-C
top-1 (mean over the common corruptions present of their mean over levels), and, against the
normaliser's resampled errors, mCE and relative mCE (percent, :func:`robust.metrics.mce_report`'s
formulas). Intervals are the 2.5 / 97.5 percentiles. A difference from the control is
significant when its interval excludes 0.

What the interval does not hold: training-seed variation (one seed per model; see
``replicas`` in the issue tracker) and the choice of test images beyond resampling them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from robust.distortions import IMAGENET_C

STATISTICS = ("clean_top1", "imagenet_c_top1", "mce", "relative_mce")
LEVEL_SEP = "@"


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n`` images is drawn in each of ``resamples`` resamples (float32 ``[B, n]``)."""
    rng = np.random.default_rng([seed, n])
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float32)


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """The drawn image indices of each of ``resamples`` resamples (int ``[B, n]``), seeded by
    ``(seed, n)`` like :func:`resample_counts`: every set of ``n`` images gets the same draws,
    so statistics averaged over sets (levels, distortions) stay paired image by image."""
    return np.random.default_rng([seed, n]).integers(0, n, size=(resamples, n))


def resampled_top1(correct: Mapping[str, np.ndarray], resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Test set -> top-1 per resample ``[B]`` (the same resamples for every set of one size)."""
    counts: dict[int, np.ndarray] = {}
    out = {}
    for key, hits in correct.items():
        n = len(hits)
        if n not in counts:
            counts[n] = resample_counts(n, resamples, seed)
        out[key] = counts[n] @ hits.astype(np.float32) / n
    return out


def _levels(top1: Mapping[str, np.ndarray], name: str) -> list[np.ndarray]:
    prefix = name + LEVEL_SEP
    keys = sorted((k for k in top1 if k.startswith(prefix)), key=lambda k: int(k[len(prefix):]))
    return [top1[k] for k in keys]


def model_statistics(top1: Mapping[str, np.ndarray], normaliser: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Per-resample statistics of one model (each ``[B]``); mCE and relative mCE only with the
    normaliser's resampled top-1 (the same resamples)."""
    common = [n for n in IMAGENET_C if _levels(top1, n)]
    stats: dict[str, np.ndarray] = {"clean_top1": top1["clean"]}
    if common:
        stats["imagenet_c_top1"] = np.mean([np.mean(_levels(top1, n), axis=0) for n in common], axis=0)
    if normaliser is None:
        return stats
    paired = [n for n in common if len(_levels(normaliser, n)) == len(_levels(top1, n))]
    if not paired:
        return stats
    ce, relative = [], []
    clean_error, base_clean_error = 1 - top1["clean"], 1 - normaliser["clean"]
    for name in paired:
        errors = 1 - np.stack(_levels(top1, name))  # [levels, B]
        base = 1 - np.stack(_levels(normaliser, name))
        denominator = base.sum(axis=0)
        ce.append(np.where(denominator > 0, errors.sum(axis=0) / np.where(denominator > 0, denominator, 1), np.nan))
        rel_denominator = (base - base_clean_error).sum(axis=0)
        rel = (errors - clean_error).sum(axis=0) / np.where(rel_denominator > 0, rel_denominator, 1)
        relative.append(np.where(rel_denominator > 0, rel, np.nan))
    with warnings.catch_warnings():  # a resample where every relative CE is undefined: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        stats["mce"] = 100 * np.nanmean(np.stack(ce), axis=0)
        stats["relative_mce"] = 100 * np.nanmean(np.stack(relative), axis=0)
    return stats


def interval(values: np.ndarray) -> list[float] | None:
    """The 95 % percentile interval of a resampled statistic (None when undefined)."""
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) * 0.95:
        return None
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]


def difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per statistic both have: the interval of ``a - b`` per resample and whether it excludes 0."""
    out = {}
    for key in a:
        if key in b:
            bounds = interval(a[key] - b[key])
            out[key] = {"interval": bounds, "significant": bounds is not None and (bounds[0] > 0 or bounds[1] < 0)}
    return out


def intervals(correct: Mapping[str, Mapping[str, np.ndarray]], normaliser: str | None, control: str | None,
              resamples: int = 1000, seed: int = 0, pairs: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """``models``: per model, ``intervals`` (statistic -> [low, high]) and, when a control model
    is given, ``vs_control`` (statistic -> ``{"interval": [low, high], "significant": bool}`` of
    model minus control, per resample); ``pairs``: the same for each ``(a, b)`` asked, keyed
    ``"a - b"``. Statistics are fractions for top-1 and percent for (relative) mCE."""
    top1 = {model: resampled_top1(sets, resamples, seed) for model, sets in correct.items()}
    norm = top1.get(normaliser) if normaliser else None
    stats = {model: model_statistics(values, norm) for model, values in top1.items()}
    models: dict[str, dict[str, Any]] = {}
    for model, values in stats.items():
        models[model] = {"intervals": {k: interval(v) for k, v in values.items()}}
        if control in stats and model != control:
            models[model]["vs_control"] = difference(values, stats[control])
    return {"models": models, "pairs": {f"{a} - {b}": difference(stats[a], stats[b]) for a, b in pairs if a in stats and b in stats}}
