"""Stage ``rank@<base>-<distortion>``: correction priority of every cached layer's filters -> metrics/deepcorrect/<base>/<distortion>/{ranking.json, curves.csv}."""

import sys
from pathlib import Path

from robust.errors import DataError, run_step
from robust.methods.deepcorrect import rank_from_params
from robust.params import load_params


def main(base: str, distortion: str) -> None:
    cache = Path(f"data/deepcorrect/{base}/activations")
    if not (cache / "info.json").is_file():
        raise DataError(f"No activation cache {cache} (its info.json is missing).", f"run the activations@{base} stage first (dvc repro activations@{base}).")
    rank_from_params(load_params("params.yaml"), distortion, "data/shards/clean", cache, f"metrics/deepcorrect/{base}/{distortion}")


if __name__ == "__main__":
    sys.exit(run_step(lambda: main(sys.argv[1], sys.argv[2])))
