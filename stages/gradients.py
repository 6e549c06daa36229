"""Stage ``gradients``: the VAE's per-sample gradient and activation features of clean train / val / test, the detectors'
training distortion (train / val) and every built distorted test set -> data/gradients/ (seed 001)."""

from robust.errors import run_step
from robust.gradient_features.features import extract_from_params
from robust.params import load_params

if __name__ == "__main__":
    raise SystemExit(run_step(lambda: extract_from_params(load_params("params.yaml"), "data/shards/clean", "data/shards/corrupt", "data/models",
                                                          "data/gradients")))
