"""Stage ``corrupt-<suite>@<distortion>-<level>``: clean shards -> data/shards/corrupt/<distortion>/<level>/."""

import sys

from robust.corrupt import corrupt_from_params
from robust.errors import run_step
from robust.params import load_params

if __name__ == "__main__":
    name, level = sys.argv[1], int(sys.argv[2])
    sys.exit(run_step(lambda: corrupt_from_params(load_params("params.yaml"), name, level, "data/shards/clean", f"data/shards/corrupt/{name}/{level}")))
