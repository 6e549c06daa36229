"""Robustness metrics: top-k accuracy, corruption error (CE), mCE and relative mCE.

Definitions (Hendrycks & Dietterich, 2019), errors as fractions:

* ``E(model, c, s)``: top-1 error on corruption ``c`` at severity ``s``;
* ``CE_c = sum_s E(model, c, s) / sum_s E(baseline, c, s)``;
* ``relative CE_c = sum_s (E(model, c, s) - E_clean(model)) / sum_s (E(baseline, c, s) - E_clean(baseline))``;
* mCE / relative mCE: the mean over the 15 common corruptions (``mce_extra`` over the 4
  extra ones). Reported in percent, like the papers (AlexNet = 100).

The baseline is AlexNet. For ImageNet-C its published errors are built in
(:data:`ALEXNET_IMAGENET_C`); for any other data the pipeline's own AlexNet evaluated on the
same shards is the baseline. A corruption given as one mean error instead of per-severity
errors is treated as the mean over severities (the same ratio).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA
from robust.errors import RobustError

Errors = float | Sequence[float]

#: AlexNet's published ImageNet-C top-1 errors per severity 1..5 (full 50k val set)
ALEXNET_IMAGENET_C: dict[str, Any] = {
    "clean": 0.4348,
    "corruptions": {
        "gaussian_noise": [0.69528, 0.82542, 0.93554, 0.98138, 0.99452],
        "shot_noise": [0.71224, 0.85108, 0.93574, 0.98182, 0.99146],
        "impulse_noise": [0.78374, 0.89808, 0.94870, 0.98720, 0.99548],
        "defocus_blur": [0.65624, 0.73202, 0.85036, 0.91364, 0.94714],
        "glass_blur": [0.64308, 0.75054, 0.88806, 0.91622, 0.93344],
        "motion_blur": [0.58430, 0.70048, 0.82108, 0.89750, 0.92638],
        "zoom_blur": [0.70008, 0.76992, 0.80784, 0.84198, 0.87198],
        "snow": [0.71726, 0.88392, 0.86468, 0.91870, 0.94952],
        "frost": [0.61390, 0.79734, 0.88790, 0.89942, 0.93430],
        "fog": [0.67474, 0.76050, 0.84378, 0.87260, 0.94500],
        "brightness": [0.45140, 0.48502, 0.54048, 0.62166, 0.72440],
        "contrast": [0.64548, 0.76150, 0.88874, 0.97760, 0.99270],
        "elastic_transform": [0.52596, 0.70116, 0.55686, 0.64076, 0.80554],
        "pixelate": [0.52218, 0.54620, 0.73728, 0.87092, 0.91262],
        "jpeg_compression": [0.51002, 0.54718, 0.57294, 0.65458, 0.74778],
        # the extra four are published as means over severities only
        "speckle_noise": 0.845388,
        "gaussian_blur": 0.787108,
        "spatter": 0.717512,
        "saturate": 0.658248,
    },
}


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """Per sample and k, whether the label is among the top-k scores: bool ``[batch, len(ks)]``
    (k capped at the class count)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return torch.stack([hits[:, : min(k, logits.shape[1])].any(dim=1) for k in ks], dim=1)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many of the batch have their label among the top-k scores, for each k (k capped at the class count)."""
    return [int(v) for v in topk_hits(logits, labels, ks).sum(dim=0)]


def _check(name: str, errors: Errors) -> list[float]:
    values = [float(errors)] if isinstance(errors, (int, float)) else [float(e) for e in errors]
    if not values or any(not 0.0 <= e <= 1.0 for e in values):
        raise RobustError(f"Errors of {name} must be fractions in [0, 1], got {errors!r}.", "give top-1 errors as fractions (0.25, not 25).")
    return values


def _pair(name: str, model: Errors, baseline: Errors) -> tuple[list[float], list[float]]:
    """Model and baseline errors on the same footing: both per severity, or both means."""
    m, b = _check(name, model), _check(name, baseline)
    if len(m) == len(b):
        return m, b
    return [sum(m) / len(m)], [sum(b) / len(b)]


def corruption_error(model: Errors, baseline: Errors, name: str = "corruption") -> float:
    """CE of one corruption (a fraction; x100 for the usual percent)."""
    m, b = _pair(name, model, baseline)
    if sum(b) == 0:
        raise RobustError(f"The baseline's error on {name} is 0, so CE is undefined.", "use a baseline that makes errors.")
    return sum(m) / sum(b)


def relative_corruption_error(model: Errors, baseline: Errors, clean: float, baseline_clean: float, name: str = "corruption") -> float | None:
    """Relative CE of one corruption; None when the baseline loses nothing to it (undefined)."""
    m, b = _pair(name, model, baseline)
    denominator = sum(e - baseline_clean for e in b)
    if denominator <= 0:
        return None
    return sum(e - clean for e in m) / denominator


def mce_report(errors: Mapping[str, Any], baseline: Mapping[str, Any] = ALEXNET_IMAGENET_C) -> dict[str, Any]:
    """CE per corruption, mCE (15 common), mCE over the 4 extras and relative mCE, in percent.

    ``errors`` and ``baseline`` are ``{"clean": error or None, "corruptions": {name: mean
    error or [per-severity errors]}}``, errors as fractions in [0, 1] (anything else is an
    error). Corruptions the baseline lacks are an error; mCE is over the common corruptions
    present (``mce_over`` lists them, ``mce_partial`` says fewer than 15), relative mCE over
    those where it is defined (``relative_mce_over``, ``relative_mce_partial``).
    """
    model_c = dict(errors.get("corruptions") or {})
    base_c = dict(baseline.get("corruptions") or {})
    if not model_c:
        raise RobustError("The errors file lists no corruption.", 'give {"clean": e, "corruptions": {"<name>": e or [e1..e5]}}.')
    missing = sorted(set(model_c) - set(base_c))
    if missing:
        raise RobustError(f"The baseline has no errors for {', '.join(missing)}.", "drop them or use a baseline that has them.")
    ce = {name: 100 * corruption_error(model_c[name], base_c[name], name) for name in model_c}
    clean, base_clean = errors.get("clean"), baseline.get("clean")
    for what, value in (("the clean split", clean), ("the baseline's clean split", base_clean)):
        if value is not None:
            _check(what, value)  # a clean error of 2 (not 0.02) once gave a relative mCE of -390
    relative = None
    if clean is not None and base_clean is not None:
        relative = {name: relative_corruption_error(model_c[name], base_c[name], float(clean), float(base_clean), name) for name in model_c}
        relative = {name: None if value is None else 100 * value for name, value in relative.items()}

    def mean_over(names: Sequence[str], table: Mapping[str, float | None] | None) -> float | None:
        values = [table[n] for n in names if table and n in table and table[n] is not None]
        return sum(values) / len(values) if values else None  # type: ignore[arg-type]

    common = [n for n in IMAGENET_C if n in model_c]
    relative_over = [n for n in common if relative and relative.get(n) is not None]
    return {
        "ce": ce,
        "mce": mean_over(common, ce),
        "mce_over": common,
        "mce_partial": len(common) < len(IMAGENET_C),  # fewer than the 15: not comparable with a full mCE
        "mce_extra": mean_over([n for n in IMAGENET_C_EXTRA if n in model_c], ce),
        "relative_ce": relative,
        "relative_mce": mean_over(common, relative),
        "relative_mce_over": relative_over,  # relative CE is undefined where the baseline loses nothing
        "relative_mce_partial": len(relative_over) < len(IMAGENET_C),
    }
