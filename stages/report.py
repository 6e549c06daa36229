"""Stage ``report``: metrics/eval/*.json (+ the shards, the ANT checkpoints, the DeepCorrect curves) -> metrics/summary.json,
metrics/report.md, metrics/report.html, metrics/figures/, metrics/plots/severity/."""

import sys

from robust.errors import run_step
from robust.params import load_params
from robust.report import write_report

if __name__ == "__main__":
    sys.exit(run_step(lambda: write_report(load_params("params.yaml"), "metrics/eval", "metrics", clean_dir="data/shards/clean",
                                           corrupt_dir="data/shards/corrupt", models_dir="data/models", deepcorrect_dir="metrics/deepcorrect")))
