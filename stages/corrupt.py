"""Stage ``corrupt-<suite>@<distortion>-<level>``: clean shards -> data/shards/corrupt/<distortion>/<level>/."""

import sys

from robust.cli import main

if __name__ == "__main__":
    distortion, level = sys.argv[1], sys.argv[2]
    sys.exit(main(["corrupt", distortion, level, "--params", "params.yaml", "--clean", "data/shards/clean",
                   "--out", f"data/shards/corrupt/{distortion}/{level}"]))
