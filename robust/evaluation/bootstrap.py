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
normaliser's resampled errors, mCE and relative mCE (percent, :func:`robust.evaluation.metrics.mce_report`'s
formulas). Intervals are the 2.5 / 97.5 percentiles. A difference from the control is
significant when its interval excludes 0.

**Training seeds (two levels).** An entry run at several training seeds (its replicates,
:func:`robust.methods.common.replicate_groups`) is resampled at two levels: each resample
draws the seeds (with replacement, seeded by ``(seed, number of seeds)``) and the images,
and the entry's statistic is the mean over the drawn seeds of each seed's statistic on the
drawn images. Two entries with the same number of seeds are paired seed by seed (seed k of
one with seed k of the other, the same draws), so a difference's interval holds both the
images' and the training seeds' variation. Each difference also says in how many seeds its
verdict holds: for each seed alone, whether that seed's image-level interval gives the same
verdict (significant on the same side, or not significant) as the pooled one. An entry with
one seed is resampled over images only, and its interval does not hold seed variation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robust.distortions import IMAGENET_C

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


def model_statistics(top1: Mapping[str, np.ndarray], normaliser: Mapping[str, np.ndarray] | None,
                     normaliser_point: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Per-resample statistics of one model (each ``[B]``); mCE and relative mCE only with the
    normaliser's resampled top-1 (the same resamples). The corruptions averaged are fixed by
    the point estimate (``normaliser_point``: the normaliser's top-1 on all the images), as in
    :func:`robust.evaluation.metrics.mce_report`: CE where the normaliser has any error, relative CE
    where it loses accuracy to the corruption. A resample in which one of them has no
    positive denominator makes the statistic undefined (NaN) in that resample, rather than
    averaging another set of corruptions; an interval needs 95 % of the resamples defined."""
    common = [n for n in IMAGENET_C if _levels(top1, n)]
    stats: dict[str, np.ndarray] = {"clean_top1": top1["clean"]}
    if common:
        stats["imagenet_c_top1"] = np.mean([np.mean(_levels(top1, n), axis=0) for n in common], axis=0)
    if normaliser is None:
        return stats
    paired = [n for n in common if len(_levels(normaliser, n)) == len(_levels(top1, n))]
    if not paired:
        return stats
    point = normaliser_point or {key: float(np.mean(values)) for key, values in normaliser.items()}
    ce, relative = [], []
    clean_error, base_clean_error = 1 - top1["clean"], 1 - normaliser["clean"]
    for name in paired:
        errors = 1 - np.stack(_levels(top1, name))  # [levels, B]
        base = 1 - np.stack(_levels(normaliser, name))
        base_point = 1 - np.array(_levels(point, name))
        if base_point.sum() > 0:
            denominator = base.sum(axis=0)
            ce.append(np.where(denominator > 0, errors.sum(axis=0) / np.where(denominator > 0, denominator, 1), np.nan))
        if (base_point - (1 - point["clean"])).sum() > 0:
            rel_denominator = (base - base_clean_error).sum(axis=0)
            rel = (errors - clean_error).sum(axis=0) / np.where(rel_denominator > 0, rel_denominator, 1)
            relative.append(np.where(rel_denominator > 0, rel, np.nan))
    if ce:
        stats["mce"] = 100 * np.mean(np.stack(ce), axis=0)  # NaN where a member is undefined: not another set
    if relative:
        stats["relative_mce"] = 100 * np.mean(np.stack(relative), axis=0)
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


def _verdict(entry: dict[str, Any], value: float) -> str:
    """``higher`` / ``lower`` (significant, by the sign of ``value``) or ``none``."""
    return ("higher" if value > 0 else "lower") if entry["significant"] else "none"


def seed_draws(seeds: int, resamples: int, seed: int) -> np.ndarray:
    """Which of ``seeds`` training seeds each resample draws (int ``[B, seeds]``, with replacement),
    seeded by ``(seed, seeds)``: every entry with that many seeds gets the same draws (paired)."""
    return np.random.default_rng([seed, 7919, seeds]).integers(0, seeds, size=(resamples, seeds))


def _pooled(runs: list[dict[str, np.ndarray]], draws: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per resample, the mean over the drawn seeds of each seed's statistic (one seed: itself)."""
    if len(runs) == 1 or draws is None:
        return dict(runs[0])
    out = {}
    for key in runs[0]:
        if all(key in r for r in runs):
            stacked = np.stack([r[key] for r in runs])  # [seeds, B]
            out[key] = np.take_along_axis(stacked, draws.T, axis=0).mean(axis=0)
    return out


def intervals(correct: Mapping[str, Mapping[str, np.ndarray]], normaliser: str | None, control: str | None,
              resamples: int = 1000, seed: int = 0, pairs: tuple[tuple[str, str], ...] = (),
              groups: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """``models``: per entry, ``intervals`` (statistic -> [low, high]), ``seeds`` and, when a control
    model is given, ``vs_control``; ``pairs``: each ``(a, b)`` asked, keyed ``"a - b"``. A
    difference is ``{"interval": [low, high], "significant": bool, "seeds": n, "holds": k}``
    (the verdict holds in k of n seeds; see the module doc). ``groups``: entry -> its runs in
    seed order (default: every run alone). Statistics are fractions for top-1 and percent for
    (relative) mCE. The normaliser's errors are the mean over its runs, resampled over images."""
    groups = {entry: [r for r in runs if r in correct] for entry, runs in (groups or {m: [m] for m in correct}).items()}
    groups = {entry: runs for entry, runs in groups.items() if runs}
    top1 = {run: resampled_top1(sets, resamples, seed) for run, sets in correct.items()}
    norm = norm_point = None
    if normaliser in groups:
        norm_runs = [top1[r] for r in groups[normaliser]]
        norm = {key: np.mean([t[key] for t in norm_runs], axis=0) for key in norm_runs[0]}
        norm_point = {key: float(np.mean([correct[r][key].mean() for r in groups[normaliser]])) for key in norm_runs[0]}
    runs = {run: model_statistics(values, norm, norm_point) for run, values in top1.items()}
    draws = {n: seed_draws(n, resamples, seed) for n in {len(r) for r in groups.values()} if n > 1}
    pooled = {entry: _pooled([runs[r] for r in members], draws.get(len(members))) for entry, members in groups.items()}

    def compare(a: str, b: str) -> dict[str, dict[str, Any]]:
        ra, rb = groups[a], groups[b]
        if len(ra) == len(rb) > 1:  # paired seed by seed, the same seed draws
            diffs = [{k: runs[x][k] - runs[y][k] for k in runs[x] if k in runs[y]} for x, y in zip(ra, rb)]
            out = difference(_pooled(diffs, draws[len(ra)]), {k: 0.0 for k in diffs[0]})
            per_seed = list(zip(ra, rb))
        else:  # unpaired seeds: a one-seed side pairs with each seed of the other; unequal counts pair seed k with seed k
            out = difference(pooled[a], pooled[b])
            per_seed = [(ra[0], y) for y in rb] if len(ra) == 1 else [(x, rb[0]) for x in ra] if len(rb) == 1 else list(zip(ra, rb))
        for key, entry in out.items():
            value = float(np.nanmedian(pooled[a][key] - pooled[b][key]))
            verdicts = [_verdict(difference({key: runs[x][key]}, {key: runs[y][key]})[key], float(np.nanmedian(runs[x][key] - runs[y][key])))
                        for x, y in per_seed]
            entry.update(seeds=len(per_seed), holds=sum(v == _verdict(entry, value) for v in verdicts))
        return out

    models: dict[str, dict[str, Any]] = {}
    for entry, values in pooled.items():
        models[entry] = {"intervals": {k: interval(v) for k, v in values.items()}, "seeds": len(groups[entry])}
        if control in pooled and entry != control:
            models[entry]["vs_control"] = compare(entry, control)
    return {"models": models, "pairs": {f"{a} - {b}": compare(a, b) for a, b in pairs if a in pooled and b in pooled}}
