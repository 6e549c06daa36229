"""Stage ``ra``: every ``method: ra`` processor (data/models/ra-*/model.pt) on its task's degraded clean test split, scored by
the recognisers of ``restoration:`` and by PSNR / SSIM -> metrics/ra/summary.json (seed 002's tables)."""

import sys

from robust.errors import run_step
from robust.params import load_params
from robust.recognition_aware.tables import tables_from_params

if __name__ == "__main__":
    sys.exit(run_step(lambda: tables_from_params(load_params("params.yaml"), "data/shards/clean", "data/models", "metrics/ra/summary.json")))
