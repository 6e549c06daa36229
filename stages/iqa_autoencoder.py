"""Stage ``iqa-autoencoder``: the sparse autoencoder of the IQA indices, trained on natural-image
patches -> data/iqa/autoencoder/ (seed 001's IQA application; robust/gradient_features/iqa/train.py)."""

from robust.errors import run_step
from robust.gradient_features.iqa.train import train_autoencoder
from robust.params import load_params

if __name__ == "__main__":
    raise SystemExit(run_step(lambda: train_autoencoder(load_params("params.yaml"), "data/iqa/autoencoder", log_dir="metrics/iqa/train")))
