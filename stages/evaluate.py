"""Stage ``evaluate@<model>``: data/models/<model>/model.pt on clean + every built distortion -> metrics/eval/<model>.json
and data/eval/<model>/correct.npz (per-image correctness, for the report's bootstrap intervals)."""

import sys

from robust.errors import run_step
from robust.evaluation.scoring import evaluate_from_params
from robust.params import load_params

if __name__ == "__main__":
    sys.exit(run_step(lambda: evaluate_from_params(load_params("params.yaml"), sys.argv[1], "data/shards/clean", "data/shards/corrupt",
                                                   "data/models", "metrics/eval", "data/eval")))
