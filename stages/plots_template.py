"""Stage ``plots-template``: data/plots/offline.html, the HTML template `dvc plots show` uses (.dvc/config) so its page renders offline."""

import sys
from pathlib import Path

from robust.errors import run_step
from robust.report.figures import offline_plots_template


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(offline_plots_template())
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(run_step(lambda: write(Path("data/plots/offline.html"))))
