"""Distortion-detection metrics against hand-computed cases, and ``robust detect-metrics``."""

import json
import subprocess
import sys

import numpy as np
import pytest

from robust.cli import main
from robust.evaluation.detection import detection_metrics
from robust.errors import DataError


def test_perfectly_separated_scores():
    m = detection_metrics(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert m == {"accuracy": 1.0, "auroc": 1.0, "fpr95": 0.0, "fpr95_seed": 0.0, "detection_error": 0.0, "aupr_in": 1.0, "aupr_out": 1.0}


def test_hand_computed_case():
    # clean (0): 0.1, 0.4, 0.6 ; distorted (1): 0.3, 0.7, 0.8, 0.9
    scores = np.array([0.1, 0.4, 0.6, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    m = detection_metrics(scores, labels)
    # accuracy at 0.5: clean right 0.1, 0.4 (2 of 3); distorted right 0.7, 0.8, 0.9 (3 of 4)
    assert m["accuracy"] == pytest.approx(5 / 7)
    # AUROC: pairs (d > c): 0.3 beats 0.1 only (1); 0.7, 0.8, 0.9 beat all three (9) -> 10 / 12
    assert m["auroc"] == pytest.approx(10 / 12)
    # TPR >= 95 % needs every distorted sample, i.e. threshold 0.3: clean above it 0.4, 0.6 -> FPR 2/3
    assert m["fpr95"] == pytest.approx(2 / 3)
    # the seed's (clean positive): keeping 95 % of the clean images as clean needs all three, i.e. every score
    # up to 0.6 passes as clean; the distorted ones among them: 0.3 -> 1/4
    assert m["fpr95_seed"] == pytest.approx(1 / 4)
    # best threshold 0.7: P_in(s >= t) = 0, P_out(s < t) = 1/4 -> 1/8
    assert m["detection_error"] == pytest.approx(1 / 8)
    # AUPR-out (distorted positive), ranks by score: 0.9 d, 0.8 d, 0.7 d, 0.6 c, 0.4 c, 0.3 d, 0.1 c
    assert m["aupr_out"] == pytest.approx((1 + 1 + 1 + 4 / 6) / 4)
    # AUPR-in (clean positive, scores negated): 0.1 c, 0.3 d, 0.4 c, 0.6 c, ...
    assert m["aupr_in"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_fpr95_with_tied_scores_is_read_at_the_first_threshold_reaching_95_percent():
    # 20 images whose clean and distorted copies score alike: TPR = FPR at every threshold,
    # so 95 % TPR comes with 95 % FPR (a collinear ROC, whose middle points must not be dropped)
    scores = np.r_[np.arange(20), np.arange(20)].astype(float)
    m = detection_metrics(scores, np.r_[np.zeros(20), np.ones(20)])
    assert m["fpr95"] == pytest.approx(0.95) and m["auroc"] == pytest.approx(0.5)


def test_reversed_scores_give_the_mirrored_auroc():
    rng = np.random.default_rng(0)
    scores, labels = rng.random(50), np.r_[np.zeros(25), np.ones(25)]
    assert detection_metrics(-scores, labels)["auroc"] == pytest.approx(1 - detection_metrics(scores, labels)["auroc"])


@pytest.mark.parametrize(("scores", "labels", "match"), [
    ([0.1, 0.2], [1, 1], "only one class"),
    ([0.1, float("nan")], [0, 1], "NaN or infinite"),
    ([0.1, 0.2], [0, 2], "labels must be 0"),
    ([0.1, 0.2, 0.3], [0, 1], "3 scores but 2 labels"),
])
def test_bad_scores_are_refused(scores, labels, match):
    with pytest.raises(DataError, match=match):
        detection_metrics(np.array(scores), np.array(labels))


def test_cli_prints_the_metrics_as_json(tmp_path, capsys):
    path = tmp_path / "scores.csv"
    path.write_text("score,label\n0.1,0\n0.4,0\n0.6,0\n0.3,1\n0.7,1\n0.8,1\n0.9,1\n")
    assert main(["detect-metrics", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"accuracy", "auroc", "fpr95", "fpr95_seed", "detection_error", "aupr_in", "aupr_out"}
    assert out["auroc"] == pytest.approx(10 / 12) and out["detection_error"] == pytest.approx(1 / 8)


@pytest.mark.parametrize(("text", "match"), [
    ("score,lbl\n0.1,0\n0.9,1\n", "no column label"),
    ("score,label\n0.1,1\n0.9,1\n", "only one class"),
    ("score,label\n0.1,0\nnan,1\n", "the score is NaN"),
    ("score,label\n0.1,0\nhigh,1\n", "is not a number"),
    ("score,label\n", "holds no rows"),
])
def test_cli_errors_are_one_clear_line(tmp_path, text, match):
    path = tmp_path / "scores.csv"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "robust.cli", "detect-metrics", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0] and "Fix:" in lines[0] and "Traceback" not in result.stderr


def test_cli_missing_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "robust.cli", "detect-metrics", str(tmp_path / "none.csv")], capture_output=True, text=True)
    assert result.returncode == 2 and "not found" in result.stderr


def test_the_two_fpr95_definitions_differ_and_follow_their_own_positive_class():
    rng = np.random.default_rng(3)
    clean, distorted = rng.normal(0.0, 1.0, 2000), rng.normal(1.5, 1.5, 2000)
    m = detection_metrics(np.r_[clean, distorted], np.r_[np.zeros(2000), np.ones(2000)])
    # OpenOOD: the threshold catches 95 % of the distorted images; FPR = clean images at or above it
    catch = np.sort(distorted)[int(np.floor(0.05 * 2000))]
    assert m["fpr95"] == pytest.approx(np.mean(clean >= catch), abs=1e-3)
    # the seed's cal_metric.py: the threshold keeps 95 % of the clean images below it; FPR = distorted images below it
    keep = np.sort(clean)[int(np.ceil(0.95 * 2000)) - 1]
    assert m["fpr95_seed"] == pytest.approx(np.mean(distorted <= keep), abs=1e-3)
    assert abs(m["fpr95"] - m["fpr95_seed"]) > 0.05  # not the same number under another name
