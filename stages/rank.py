"""Stage ``rank@<base>-<distortion>``: correction priority of every cached layer's filters -> metrics/deepcorrect/<base>/<distortion>/{ranking.json, curves.csv}."""

import sys

from robust.errors import run_step
from robust.methods.deepcorrect import rank_from_params
from robust.params import load_params

if __name__ == "__main__":
    base, distortion = sys.argv[1], sys.argv[2]
    sys.exit(run_step(lambda: rank_from_params(load_params("params.yaml"), distortion, "data/shards/clean", f"data/deepcorrect/{base}/activations",
                                               f"metrics/deepcorrect/{base}/{distortion}")))
