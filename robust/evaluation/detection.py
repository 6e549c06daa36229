"""Distortion-detection metrics, one implementation (scikit-learn's ROC / PR code).

Convention (OpenOOD's): the DISTORTED (out-of-distribution) sample is the positive class,
label 1, and a HIGHER score means "more likely distorted"; clean (in-distribution) is label
0. All values are fractions.

* ``accuracy``: share of samples on the right side of the threshold 0.5 (the detector's
  sigmoid output), on balanced sets as the seed reports it;
* ``auroc``: area under the ROC curve;
* ``fpr95``: the false-positive rate (clean called distorted) at the first threshold whose
  true-positive rate (distorted called distorted) reaches 95 %: OpenOOD's convention, with the
  distorted sample as the positive class;
* ``fpr95_seed``: the seed's own definition (its ``cal_metric.py``, as ODIN's and the
  Mahalanobis detector's code): the threshold keeps 95 % of the CLEAN images as clean (TPR on
  the in-distribution class) and the value is the share of DISTORTED images that pass as clean.
  On the same scores the two differ (one example in the tests: 0.086 against 0.159), so the
  report names which is which;
* ``detection_error``: min over thresholds t of (P_in(s >= t) + P_out(s < t)) / 2, i.e. the
  best balanced error, from the ROC curve's points;
* ``aupr_in``: average precision with CLEAN as the positive class (scores negated);
* ``aupr_out``: average precision with DISTORTED as the positive class.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from robust.errors import DataError

METRICS = ("accuracy", "auroc", "fpr95", "fpr95_seed", "detection_error", "aupr_in", "aupr_out")


def check_scores(scores: np.ndarray, labels: np.ndarray, what: str = "the scores") -> tuple[np.ndarray, np.ndarray]:
    """Float scores and 0/1 labels of equal length, both classes present, no NaN / inf."""
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise DataError(f"{what}: {scores.size} scores but {labels.size} labels.", "give one label per score.")
    if not np.isfinite(scores).all():
        raise DataError(f"{what}: {int((~np.isfinite(scores)).sum())} scores are NaN or infinite.", "remove or fix those rows.")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{what}: labels must be 0 (clean) or 1 (distorted); found {sorted(set(labels.tolist()) - {0, 1})[:5]}.",
                        "use label 1 for distorted samples and 0 for clean ones.")
    labels = labels.astype(np.int64)
    if labels.min() == labels.max():
        raise DataError(f"{what}: only one class (label {int(labels[0])}) is present.", "give both clean (0) and distorted (1) samples.")
    return scores, labels


def detection_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Every metric of the module doc for ``scores`` (higher = distorted) and ``labels`` (1 = distorted)."""
    scores, labels = check_scores(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)  # every threshold: dropping collinear points could skip the first with TPR >= 95 %
    fpr_in, tpr_in, _ = roc_curve(1 - labels, -scores, drop_intermediate=False)  # clean as the positive class (the seed's cal_metric.py)
    return {
        "accuracy": float(((scores >= threshold).astype(np.int64) == labels).mean()),
        "auroc": float(roc_auc_score(labels, scores)),
        "fpr95": float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
        "fpr95_seed": float(fpr_in[np.searchsorted(tpr_in, 0.95, side="left")]),
        "detection_error": float(np.min((fpr + 1.0 - tpr) / 2.0)),
        "aupr_in": float(average_precision_score(1 - labels, -scores)),
        "aupr_out": float(average_precision_score(labels, scores)),
    }


def read_scores_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``score,label`` rows of a CSV file (a header row naming both columns is required)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Score file {path} not found.", "give the path of a CSV file with columns score,label.")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("score", "label") if c not in columns]
        if missing:
            raise DataError(f"{path} has no column {' or '.join(missing)} (columns: {', '.join(columns) or 'none'}).",
                            "write a header row score,label (label 1 = distorted, higher score = more likely distorted).")
        scores, labels = [], []
        for number, row in enumerate(reader, start=2):
            row = {k.strip(): v for k, v in row.items() if k is not None}
            try:
                score, label = float(row["score"]), float(row["label"])
            except (TypeError, ValueError):
                raise DataError(f"{path} line {number}: score {row.get('score')!r} / label {row.get('label')!r} is not a number.",
                                "every row needs a numeric score and a label 0 or 1.") from None
            if math.isnan(score):
                raise DataError(f"{path} line {number}: the score is NaN.", "remove or fix that row.")
            scores.append(score)
            labels.append(label)
    if not scores:
        raise DataError(f"{path} holds no rows.", "write one row per sample under the score,label header.")
    labels_array = np.asarray(labels)
    if not np.isin(labels_array, (0, 1)).all():
        raise DataError(f"{path}: labels must be 0 (clean) or 1 (distorted).", "use label 1 for distorted samples and 0 for clean ones.")
    return check_scores(np.asarray(scores), labels_array.astype(np.int64), what=str(path))
