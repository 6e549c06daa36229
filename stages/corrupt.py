"""Stage ``corrupt-<suite>@<distortion>``: clean shards -> data/shards/corrupt/<distortion>/<level>/ for every level."""

import sys

from robust.distortions.corrupt import corrupt_from_params
from robust.errors import run_step
from robust.params import load_params

if __name__ == "__main__":
    name = sys.argv[1]
    sys.exit(run_step(lambda: corrupt_from_params(load_params("params.yaml"), name, "data/shards/clean", f"data/shards/corrupt/{name}")))
