"""Stage ``report``: metrics/eval/*.json -> metrics/summary.json, metrics/report.md, metrics/plots/severity/."""

import sys

from robust.errors import run_step
from robust.params import load_params
from robust.report import write_report

if __name__ == "__main__":
    sys.exit(run_step(lambda: write_report(load_params("params.yaml"), "metrics/eval", "metrics")))
