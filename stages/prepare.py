"""Stage ``prepare``: the ``data:`` params -> data/shards/clean/{train,val,test}."""

import sys

from robust.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "--params", "params.yaml", "--out", "data/shards/clean"]))
