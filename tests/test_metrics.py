"""CE / mCE / relative mCE against hand-computed values, top-k, and the ``robust mce`` command."""

import json
import subprocess
import sys

import pytest
import torch

from robust.errors import RobustError
from robust.evaluation.metrics import ALEXNET_IMAGENET_C, corruption_error, mce_report, relative_corruption_error, topk_correct


def test_topk_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.1, 0.2, 0.7]])
    labels = torch.tensor([1, 2, 0])
    assert topk_correct(logits, labels, (1, 2, 5)) == [1, 2, 3]  # k capped at 3 classes


def test_builtin_alexnet_table_means_match_the_published_means():
    means = {"gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640, "defocus_blur": 0.819880,
             "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572,
             "fog": 0.819324, "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
             "pixelate": 0.717840, "jpeg_compression": 0.606500}
    for name, mean in means.items():
        assert sum(ALEXNET_IMAGENET_C["corruptions"][name]) / 5 == pytest.approx(mean, abs=1e-6)


def test_hand_computed_mce_and_relative_mce_against_the_published_alexnet():
    errors = {"clean": 0.2, "corruptions": {"gaussian_noise": [0.5] * 5, "fog": [0.4] * 5}}
    report = mce_report(errors)
    # gaussian: 2.5 / (.69528+.82542+.93554+.98138+.99452 = 4.43214); fog: 2.0 / 4.09662
    assert report["ce"]["gaussian_noise"] == pytest.approx(100 * 2.5 / 4.43214)
    assert report["ce"]["fog"] == pytest.approx(100 * 2.0 / 4.09662)
    assert report["mce"] == pytest.approx(100 * (2.5 / 4.43214 + 2.0 / 4.09662) / 2)
    # relative: (2.5 - 5 * 0.2) / (4.43214 - 5 * 0.4348); (2.0 - 1.0) / (4.09662 - 2.174)
    assert report["relative_ce"]["gaussian_noise"] == pytest.approx(100 * 1.5 / 2.25814)
    assert report["relative_mce"] == pytest.approx(100 * (1.5 / 2.25814 + 1.0 / 1.92262) / 2)
    assert report["mce_over"] == ["gaussian_noise", "fog"] and report["mce_extra"] is None
    assert report["mce_partial"] and report["relative_mce_partial"] and report["relative_mce_over"] == ["gaussian_noise", "fog"]


def test_mean_and_per_severity_errors_and_custom_baseline():
    baseline = {"clean": 0.5, "corruptions": {"fog": 0.8, "speckle_noise": [0.6, 0.7, 0.8, 0.9, 1.0]}}
    errors = {"clean": 0.3, "corruptions": {"fog": [0.4, 0.4, 0.5, 0.6, 0.6], "speckle_noise": 0.4}}
    report = mce_report(errors, baseline)
    assert report["ce"]["fog"] == pytest.approx(62.5)  # mean 0.5 / 0.8
    assert report["relative_ce"]["fog"] == pytest.approx(100 * 0.2 / 0.3)
    assert report["ce"]["speckle_noise"] == pytest.approx(50.0)  # 0.4 / mean 0.8
    assert report["mce"] == pytest.approx(62.5) and report["mce_extra"] == pytest.approx(50.0)
    assert corruption_error([0.2, 0.4], [0.4, 0.4]) == pytest.approx(0.75)
    assert relative_corruption_error([0.5], [0.5], clean=0.1, baseline_clean=0.6) is None  # baseline loses nothing
    # relative mCE over the corruptions where it is defined, and says so
    lossless = mce_report({"clean": 0.3, "corruptions": {"fog": 0.5, "snow": 0.4}}, {"clean": 0.5, "corruptions": {"fog": 0.8, "snow": 0.5}})
    assert lossless["relative_mce_over"] == ["fog"] and lossless["mce_over"] == ["snow", "fog"]


def test_a_full_mce_is_not_marked_partial():
    errors = {"clean": 0.2, "corruptions": {name: [0.5] * 5 for name in ALEXNET_IMAGENET_C["corruptions"]}}
    report = mce_report(errors)
    assert len(report["mce_over"]) == 15 and not report["mce_partial"] and not report["relative_mce_partial"]


def test_bad_errors_are_clear():
    with pytest.raises(RobustError, match="fractions"):
        mce_report({"clean": 0.2, "corruptions": {"fog": 45.0}})
    with pytest.raises(RobustError, match="Errors of the clean split must be fractions"):
        mce_report({"clean": 2, "corruptions": {"fog": 0.4}})  # once: relative mCE -390
    with pytest.raises(RobustError, match="Errors of the baseline.s clean split"):
        mce_report({"clean": 0.2, "corruptions": {"fog": 0.4}}, {"clean": -0.1, "corruptions": {"fog": 0.5}})
    with pytest.raises(RobustError, match="no errors for ra_jpeg"):
        mce_report({"clean": 0.2, "corruptions": {"ra_jpeg": 0.3}})


def test_mce_command_prints_json(tmp_path):
    path = tmp_path / "errors.json"
    path.write_text(json.dumps({"clean": 0.2, "corruptions": {"gaussian_noise": [0.5] * 5, "fog": 0.4}}))
    out = subprocess.run([sys.executable, "-m", "robust.cli", "mce", str(path)], capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    assert report["mce"] == pytest.approx(100 * (2.5 / 4.43214 + 0.4 / 0.819324) / 2, rel=1e-5)
    assert set(report) >= {"ce", "mce", "relative_mce"}
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps({"clean": 0.5, "corruptions": {"gaussian_noise": 0.5, "fog": 0.8}}))
    report = json.loads(subprocess.run([sys.executable, "-m", "robust.cli", "mce", str(path), "--baseline", str(baseline)],
                                       capture_output=True, text=True, check=True).stdout)
    assert report["ce"]["fog"] == pytest.approx(50.0)
    bad = subprocess.run([sys.executable, "-m", "robust.cli", "mce", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not found" in bad.stderr
