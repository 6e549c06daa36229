"""Stage ``train@<model>``: ``models.<model>`` (its method) + ``methods:`` + ``train:`` -> data/models/<model>/model.pt, metrics/train/<model>/."""

import sys

from robust.errors import run_step
from robust.methods import train_from_params
from robust.params import load_params

if __name__ == "__main__":
    sys.exit(run_step(lambda: train_from_params(load_params("params.yaml"), sys.argv[1], "data/shards/clean", "data/models", "metrics/train")))
