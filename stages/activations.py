"""Stage ``activations@<base>``: the ranked network's layer outputs on the ranking subset, clean and at every DeepCorrect distortion level -> data/deepcorrect/<base>/activations/."""

import sys

from robust.errors import run_step
from robust.methods.deepcorrect import activations_from_params
from robust.params import load_params

if __name__ == "__main__":
    base = sys.argv[1]
    sys.exit(run_step(lambda: activations_from_params(load_params("params.yaml"), base, "data/shards/clean", "data/models", f"data/deepcorrect/{base}/activations")))
