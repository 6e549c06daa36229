"""Stage ``detect``: seed 001's distortion detectors on gradients and on activations, trained on clean vs the training
distortion and tested on every other -> data/detectors/, metrics/gradients/ (summary.json, per-level plots, curves)."""

from robust.errors import run_step
from robust.gradient_features.detectors import detect_from_params
from robust.params import load_params

if __name__ == "__main__":
    raise SystemExit(run_step(lambda: detect_from_params(load_params("params.yaml"), "data/gradients", "data/detectors", "metrics/gradients")))
