"""Stage ``prepare``: the ``data:`` params -> data/shards/clean/{train,val,test}."""

import sys

from robust.data.prepare import prepare
from robust.errors import run_step
from robust.params import DataParams, load_section

if __name__ == "__main__":
    sys.exit(run_step(lambda: prepare(DataParams.from_dict(load_section("params.yaml", "data")), "data/shards/clean")))
