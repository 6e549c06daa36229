"""Seed 001's distortion detectors: one MLP on the VAE's gradients, one on its activations.

Both are :class:`robust.models.gradient_vae.Detector` MLPs trained by the one engine
(:func:`robust.engine.train`) on balanced batches (``gradients.per_class`` clean +
as many distorted, :class:`BalancedBatches`): clean train features (label 0) against the
training distortion at its level (label 1, ``gradients.train_distortion`` /
``train_level``), BCE, Adam, the epoch with the lowest validation loss (clean val + distorted
val) kept. They are tested on the clean test set against every OTHER built distortion at
every level, on balanced sets (the larger side subsampled, seeded, when sizes differ), with
:mod:`robust.evaluation.detection`'s metrics (distorted = positive).

Intervals: a paired bootstrap over test images (``gradients.bootstrap`` resamples). Each
resample draws test-image indices once (:func:`robust.evaluation.bootstrap.resample_indices`, the same
draws for every set of one size) and uses them for the clean set, every distorted copy of
the same images at every level and both detectors, so the gradients - activations
difference and the averages over levels and distortions are paired image by image. The AUROC of a resample is the Mann-Whitney U statistic over n_clean x n_distorted
(scipy, vectorised over resamples; equal to scikit-learn's AUROC, tested), accuracy a mean.

``standardise`` (a parameter, default true) z-scores each input feature with the training
set's mean and standard deviation inside the detector: the raw gradient blocks differ in
scale by orders of magnitude, which the reference's MLP met with raw inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import mannwhitneyu
from torch import nn

from robust.evaluation.bootstrap import difference, interval, resample_indices
from robust.data.shards import atomic_dir, write_csv, write_json
from robust.evaluation.detection import METRICS, detection_metrics
from robust.distortions import configured_names, operation
from robust.engine import TrainParams, seed_everything, train
from robust.gradient_features.features import Features, GradientParams, load_features
from robust.models.gradient_vae import Detector

KINDS = ("activations", "gradients")


def inputs(features: Features, kind: str) -> np.ndarray:
    """The detector input of ``kind``: ``mu`` (activations) or the gradient vector."""
    return features.mu if kind == "activations" else features.gradients


class BalancedBatches:
    """Engine batches of ``per_class`` clean + ``per_class`` distorted feature rows (labels
    0 / 1), each side reshuffled per epoch from ``(seed, epoch)``; an epoch ends when the
    smaller side is used up (the last, partial batch keeps equal halves)."""

    def __init__(self, clean: np.ndarray, distorted: np.ndarray, per_class: int, seed: int) -> None:
        self.clean, self.distorted = torch.from_numpy(clean).float(), torch.from_numpy(distorted).float()
        self.per_class, self.seed, self.epoch = per_class, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-min(len(self.clean), len(self.distorted)) // self.per_class)

    def __iter__(self) -> Any:
        rng = np.random.default_rng([self.seed, self.epoch])
        a, b = rng.permutation(len(self.clean)), rng.permutation(len(self.distorted))
        k = self.per_class
        for i in range(len(self)):
            ia, ib = a[i * k:(i + 1) * k], b[i * k:(i + 1) * k]
            ia, ib = ia[:len(ib)], ib[:len(ia)]  # the last, partial batch stays balanced too
            rows = torch.cat([self.clean[ia], self.distorted[ib]])
            yield rows, torch.cat([torch.zeros(len(ia)), torch.ones(len(ib))])


def detector_loss(model: nn.Module, rows: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, None]:
    return F.binary_cross_entropy_with_logits(model(rows), labels), None


@torch.no_grad()
def scores(model: nn.Module, rows: np.ndarray) -> np.ndarray:
    """The detector's probability that each row is distorted."""
    model.eval()
    return torch.sigmoid(model(torch.from_numpy(rows).float())).numpy().astype(np.float64)


def train_detector(kind: str, clean: dict[str, Features], distorted: dict[str, Features], p: GradientParams, out_dir: Path,
                   log_dir: Path | None) -> tuple[Detector, dict[str, Any]]:
    """One detector on ``kind`` features through the engine; returns it (best epoch) and its history."""
    train_clean, train_dist = inputs(clean["train"], kind), inputs(distorted["train"], kind)
    seed_everything(p.seed)
    model = Detector(train_clean.shape[1])
    if p.standardise:
        rows = np.concatenate([train_clean, train_dist]).astype(np.float64)
        model.set_standardisation(rows.mean(axis=0), rows.std(axis=0))
    val_rows = torch.from_numpy(np.concatenate([inputs(clean["val"], kind), inputs(distorted["val"], kind)])).float()
    val_labels = torch.cat([torch.zeros(len(clean["val"].labels)), torch.ones(len(distorted["val"].labels))])

    def validate(net: nn.Module) -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            return {"loss": float(F.binary_cross_entropy_with_logits(net(val_rows), val_labels))}

    settings = TrainParams(epochs=p.epochs, batch_size=2 * p.per_class, optimizer="adam", lr=p.lr, weight_decay=0.0, schedule="constant",
                           augment="none", seed=p.seed, workers=0, device="cpu", amp=False, channels_last=False)
    history = train(model, BalancedBatches(train_clean, train_dist, p.per_class, p.seed), out_dir / kind, settings, loss_fn=detector_loss,
                    log_dir=log_dir / kind if log_dir is not None else None, run_id=["gradient-detector", kind, p.as_dict()],
                    validate=validate, keep_best="val_loss")
    best = history["kept"]
    return model, {"best_epoch": history["best_epoch"], "val_loss": best["val_loss"], "epochs": len(history["epochs"])}


def balanced(n_clean: int, n_distorted: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of equally many clean and distorted test rows (all when sizes agree). When the
    sizes differ (a released set with images of its own), the rows are subsampled
    independently and no longer pair image by image."""
    n = min(n_clean, n_distorted)
    rng = np.random.default_rng(seed)
    pick = lambda size: np.arange(size) if size == n else np.sort(rng.choice(size, n, replace=False))  # noqa: E731
    return pick(n_clean), pick(n_distorted)


def resampled(clean: np.ndarray, distorted: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """AUROC and accuracy (threshold 0.5) of every resample (rows of ``index``, paired image indices)."""
    c, d = clean[index], distorted[index]
    auroc = mannwhitneyu(d, c, axis=1, method="asymptotic").statistic / (index.shape[1] ** 2)
    accuracy = ((c < 0.5).sum(axis=1) + (d >= 0.5).sum(axis=1)) / (2 * index.shape[1])
    return {"auroc": auroc, "accuracy": accuracy}


def _add_intervals(entry: dict[str, Any], stat: dict[str, dict[str, np.ndarray]]) -> None:
    """``entry["intervals"]`` (kind -> metric -> [low, high]) and ``entry["difference_intervals"]``
    (gradients - activations) from per-resample statistics ``stat`` (kind -> metric -> [B])."""
    entry["intervals"] = {kind: {m: interval(values) for m, values in stat[kind].items()} for kind in KINDS}
    entry["difference_intervals"] = difference(stat["gradients"], stat["activations"])


def detect_from_params(params: dict[str, Any], features_dir: str | Path, detectors_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """The ``detect`` stage: both detectors -> ``detectors_dir/<kind>/model.pt``; results ->
    ``out_dir/summary.json`` and ``out_dir/plots/<distortion>.csv`` (model, level, auroc, accuracy)."""
    p = GradientParams.from_dict(params.get("gradients"))
    features_dir, out_dir = Path(features_dir), Path(out_dir)
    train_name = f"{p.train_distortion}/{p.train_level}"
    clean = {split: load_features(features_dir / "clean" / f"{split}.npz") for split in ("train", "val", "test")}
    distorted = {split: load_features(features_dir / train_name / f"{split}.npz") for split in ("train", "val")}
    order = configured_names(params)  # the columns in the suites' order (CURE-TSR: the seed's)
    built = [(d.parent.name, int(d.name)) for d in features_dir.glob("*/*") if d.name.isdigit() and (d / "test.npz").is_file()]
    # unseen types only: not the training distortion, nor another name for its operation (dc_blur is Gaussian blur too)
    seen = sorted({name for name, _ in built if operation(name) == operation(p.train_distortion)} - {p.train_distortion})
    tests = sorted(((name, level) for name, level in built if operation(name) != operation(p.train_distortion)),
                   key=lambda job: (order.index(job[0]) if job[0] in order else len(order), job[0], job[1]))
    detectors, training = {}, {}
    for kind in KINDS:
        detectors[kind], training[kind] = train_detector(kind, clean, distorted, p, Path(detectors_dir), out_dir / "train")
    clean_scores = {kind: scores(detectors[kind], inputs(clean["test"], kind)) for kind in KINDS}
    n_clean = len(clean["test"].labels)
    levels: dict[str, dict[str, Any]] = {}
    boot: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {}
    for name, level in tests:
        test = load_features(features_dir / name / str(level) / "test.npz")
        ic, idist = balanced(n_clean, len(test.labels), p.seed + level)
        n = len(ic)
        index = resample_indices(n, p.bootstrap, p.bootstrap_seed) if p.bootstrap else None  # the same draws for every set of n
        entry = {}
        for kind in KINDS:
            s_clean, s_dist = clean_scores[kind][ic], scores(detectors[kind], inputs(test, kind))[idist]
            entry[kind] = detection_metrics(np.concatenate([s_clean, s_dist]), np.r_[np.zeros(n), np.ones(n)])
            if index is not None:
                boot.setdefault(name, {}).setdefault(kind, []).append(resampled(s_clean, s_dist, index))
        levels.setdefault(name, {})[str(level)] = entry
    summary = {"train_distortion": p.train_distortion, "train_level": p.train_level, "standardise": p.standardise, "normalise": p.normalise,
               "bce_layer": p.bce_layer, "features": {kind: int(inputs(clean["train"], kind).shape[1]) for kind in KINDS},
               "detectors": training, "bootstrap": p.bootstrap, "same_operation_left_out": seen, "levels": levels, "distortions": {}, "mean": {}}
    means: dict[str, dict[str, list[np.ndarray]]] = {kind: {"auroc": [], "accuracy": []} for kind in KINDS}
    for name, per_level in levels.items():
        row: dict[str, Any] = {kind: {m: float(np.mean([lv[kind][m] for lv in per_level.values()])) for m in METRICS} for kind in KINDS}
        row["difference"] = {m: row["gradients"][m] - row["activations"][m] for m in METRICS}
        if name in boot:
            stat = {kind: {m: np.mean([b[m] for b in boot[name][kind]], axis=0) for m in ("auroc", "accuracy")} for kind in KINDS}
            _add_intervals(row, stat)
            for kind in KINDS:
                for m in ("auroc", "accuracy"):
                    means[kind][m].append(stat[kind][m])
        summary["distortions"][name] = row
    if levels:
        rows = summary["distortions"].values()
        mean: dict[str, Any] = {kind: {m: float(np.mean([r[kind][m] for r in rows])) for m in METRICS} for kind in KINDS}
        mean["difference"] = {m: mean["gradients"][m] - mean["activations"][m] for m in METRICS}
        if boot:
            _add_intervals(mean, {kind: {m: np.mean(means[kind][m], axis=0) for m in means[kind]} for kind in KINDS})
        summary["mean"] = mean
        summary["gradients_better_auroc"] = sorted(n for n, r in summary["distortions"].items() if r["difference"]["auroc"] > 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "summary.json", summary)
    with atomic_dir(out_dir / "plots") as folder:
        for name, per_level in levels.items():
            write_csv(folder / f"{name}.csv", [{"model": kind, "level": int(lv), "auroc": v[kind]["auroc"], "accuracy": v[kind]["accuracy"]}
                                              for lv, v in sorted(per_level.items(), key=lambda kv: int(kv[0])) for kind in KINDS],
                      ["model", "level", "auroc", "accuracy"])
    return summary
