"""Properties the committed default run (``dvc.lock`` + ``metrics/``) must keep: a change of
params.yaml that makes a study say nothing fails here once its rerun is committed."""

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_seed_001_detectors_learn_their_training_distortion():
    # ln 2 is a detector that outputs 0.5 for everything: both must beat it by 0.02 (issue 32)
    summary = json.loads((ROOT / "metrics/gradients/summary.json").read_text())
    for kind in ("activations", "gradients"):
        assert summary["detectors"][kind]["val_loss"] < math.log(2) - 0.02, (kind, summary["detectors"][kind])
