"""Stage ``evaluate@<model>``: data/models/<model>/model.pt on clean + every built distortion -> metrics/eval/<model>.json."""

import sys

from robust.errors import run_step
from robust.evaluation import evaluate_from_params
from robust.params import load_params

if __name__ == "__main__":
    sys.exit(run_step(lambda: evaluate_from_params(load_params("params.yaml"), sys.argv[1], "data/shards/clean", "data/shards/corrupt",
                                                   "data/models", "metrics/eval")))
