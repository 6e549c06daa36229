"""How much a distortion shows in the seed-001 VAE's features at all: a measurement behind the
detection table, not a speed target.

The detectors of the ``detect`` stage train on ONE distortion and are tested on the others,
so a low AUROC can mean "the features do not carry the distortion" or "the detector did not
generalise". This script separates the two. For the training pair and for every distorted
test set at ``--level``, it fits a logistic regression (scikit-learn, standardised inputs) on
clean vs THAT distortion itself, cross-validated over images (a clean image and its
distorted copy always fall in the same fold), and prints the held-out AUROC on ``mu``
(activations) and on the gradients: the ceiling a detector trained on that very distortion
could reach. It also prints the mean absolute pixel change at the VAE's 28 px input and the
AUROC of the VAE's own loss.

    python benchmarks/gradient_separability.py [--level 3] [--folds 3]

Reads ``data/gradients`` and ``data/shards`` of the committed default run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from robust.data.loader import make_loader
from robust.gradient_features.features import Features, load_features
from robust.params import load_params

FEATURES = Path("data/gradients")


def held_out_auroc(clean: np.ndarray, distorted: np.ndarray, folds: int) -> float:
    """Cross-validated AUROC of a logistic regression, clean (0) vs distorted (1), the two
    copies of an image in the same fold."""
    x, y = np.concatenate([clean, distorted]), np.r_[np.zeros(len(clean)), np.ones(len(distorted))]
    groups = np.r_[np.arange(len(clean)), np.arange(len(distorted))]
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
        scores[test] = model.fit(x[train], y[train]).decision_function(x[test])
    return float(roc_auc_score(y, scores))


def pixel_change(clean: Path, distorted: Path, size: int = 28) -> float:
    """Mean |clean - distorted| per pixel after the VAE's antialiased resize, on [0, 1]."""
    total, count = 0.0, 0
    for (a, _), (b, _) in zip(make_loader(clean, 512), make_loader(distorted, 512)):
        resize = lambda t: F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)  # noqa: E731
        total += float((resize(a) - resize(b)).abs().sum())
        count += a.numel() // a.shape[-1] // a.shape[-2] * size * size
    return total / count


def row(name: str, clean: Features, distorted: Features, change: float | None, folds: int) -> str:
    y = np.r_[np.zeros(len(clean.loss)), np.ones(len(distorted.loss))]
    loss = roc_auc_score(y, np.r_[clean.loss, distorted.loss])
    mu, grad = held_out_auroc(clean.mu, distorted.mu, folds), held_out_auroc(clean.gradients, distorted.gradients, folds)
    shown = "-" if change is None else f"{change:.4f}"  # the training pair's pixels are not kept (generated in the stage)
    return f"| {name} | {shown} | {loss:.3f} | {mu:.3f} | {grad:.3f} | {grad - mu:+.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", type=int, default=3, help="the level of every test distortion")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    p = load_params("params.yaml")["gradients"]
    train_name = f"{p['train_distortion']}/{p['train_level']}"
    print(f"held-out AUROC of a logistic regression trained on clean vs the distortion itself ({args.folds}-fold, by image)")
    print("| set | pixel change at 28 px | VAE loss AUROC | activations (mu) | gradients | gradients - mu |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    clean_train = load_features(FEATURES / "clean" / "train.npz")
    print(row(f"{train_name} (train split)", clean_train, load_features(FEATURES / train_name / "train.npz"), None, args.folds))
    clean_test = load_features(FEATURES / "clean" / "test.npz")
    for folder in sorted(FEATURES.glob(f"*/{args.level}")):
        if not (folder / "test.npz").is_file():
            continue
        change = pixel_change(Path("data/shards/clean/test"), Path("data/shards/corrupt") / folder.parent.name / str(args.level) / "test")
        print(row(f"{folder.parent.name}/{args.level}", clean_test, load_features(folder / "test.npz"), change, args.folds))


if __name__ == "__main__":
    main()
