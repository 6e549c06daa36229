"""Paired bootstrap intervals: resampling, the statistics' formulas, paired differences, the report's cells."""

import numpy as np
import pytest

from robust.evaluation import bootstrap as B
from robust.evaluation.metrics import mce_report


def hits(n: int, accuracy: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < accuracy


def test_resamples_draw_n_images_with_replacement_deterministically():
    counts = B.resample_counts(50, 200, seed=3)
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, B.resample_counts(50, 200, seed=3))
    assert not np.array_equal(counts, B.resample_counts(50, 200, seed=4))
    assert (counts == 0).mean() == pytest.approx((1 - 1 / 50) ** 50, abs=0.03)  # ~37 % of images left out per resample


def test_every_set_of_one_size_shares_the_resamples():
    a = hits(300, 0.6, 0)
    top1 = B.resampled_top1({"clean": a, "fog@1": a.copy(), "other": hits(200, 0.6, 1)}, 500, seed=0)
    assert np.array_equal(top1["clean"], top1["fog@1"])  # same images, same draws: paired
    assert top1["clean"].mean() == pytest.approx(a.mean(), abs=0.01) and len(top1["other"]) == 500


def test_interval_width_matches_the_binomial_standard_error():
    n, p = 1000, 0.7
    top1 = B.resampled_top1({"clean": hits(n, p, 5)}, 2000, seed=0)["clean"]
    low, high = B.interval(top1)
    assert high - low == pytest.approx(2 * 1.96 * (p * (1 - p) / n) ** 0.5, rel=0.15)


def point(values: dict[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([v]) for k, v in values.items()}


def test_statistics_equal_the_reports_point_formulas():
    model = {"clean": 0.9, "fog@1": 0.8, "fog@2": 0.5, "snow@1": 0.7, "snow@2": 0.6, "dc_blur@1": 0.3}
    norm = {"clean": 0.6, "fog@1": 0.4, "fog@2": 0.3, "snow@1": 0.35, "snow@2": 0.5, "dc_blur@1": 0.2}
    stats = B.model_statistics(point(model), point(norm))
    errors = {"clean": 0.1, "corruptions": {"fog": [0.2, 0.5], "snow": [0.3, 0.4]}}
    base = {"clean": 0.4, "corruptions": {"fog": [0.6, 0.7], "snow": [0.65, 0.5]}}
    expected = mce_report(errors, base)
    assert stats["mce"][0] == pytest.approx(expected["mce"])
    assert stats["relative_mce"][0] == pytest.approx(expected["relative_mce"])  # snow's relative CE is undefined in both
    assert stats["imagenet_c_top1"][0] == pytest.approx((0.65 + 0.65) / 2)  # dc_blur is not an ImageNet-C corruption
    assert stats["clean_top1"][0] == 0.9 and "mce" not in B.model_statistics(point(model), None)


def test_differences_are_paired_and_marked_significant_only_when_the_interval_excludes_zero():
    n = 400
    control = hits(n, 0.6, 0)
    better = control | hits(n, 0.3, 1)  # the control's hits plus more: better on every resample
    noisy = np.where(hits(n, 0.05, 2), ~control, control)  # 5 % of images flipped both ways: no real difference
    models = {name: {"clean": c, "fog@1": c, "fog@2": c} for name, c in (("control", control), ("better", better), ("noisy", noisy))}
    result = B.intervals(models, normaliser=None, control="control", resamples=1000, seed=0, pairs=(("noisy", "better"),))
    out = result["models"]
    assert "vs_control" not in out["control"]
    low, high = out["better"]["vs_control"]["clean_top1"]["interval"]
    assert 0 < low < better.mean() - control.mean() < high and out["better"]["vs_control"]["clean_top1"]["significant"]
    assert not out["noisy"]["vs_control"]["clean_top1"]["significant"]
    # paired: the difference's interval is much narrower than either model's own interval
    own = out["better"]["intervals"]["clean_top1"]
    assert high - low < 0.8 * (own[1] - own[0])
    pair = result["pairs"]["noisy - better"]["clean_top1"]  # any two models, on the same resamples
    assert pair["significant"] and pair["interval"][1] < 0


def test_report_cells_show_intervals_the_control_and_not_significant_changes():
    from robust.report import markdown
    from robust.report.summary import summarise

    def result(clean, fog):
        levels = {str(i + 1): {"top1": v, "top5": 1.0, "n": 400} for i, v in enumerate(fog)}
        return {"n": 400, "num_classes": 12, "clean": {"top1": clean, "top5": 1.0, "error": 1 - clean},
                "distortions": {"fog": {"levels": levels, "mean_top1": sum(fog) / len(fog), "constants": "cifar"}},
                "imagenet_c_top1": sum(fog) / len(fog)}

    n = 400
    base, control = hits(n, 0.8, 0), hits(n, 0.78, 1)
    noise = control | hits(n, 0.2, 2)
    alex = hits(n, 0.5, 3)
    correct = {name: {"clean": c, "fog@1": c & hits(n, 0.8, 9), "fog@2": c & hits(n, 0.6, 10)} for name, c in
               (("net", base), ("clean-finetune", control), ("gauss", noise), ("alex", alex))}
    evals = {name: result(float(c["clean"].mean()), [float(c["fog@1"].mean()), float(c["fog@2"].mean())]) for name, c in correct.items()}
    summary = summarise(evals, "alex", B.intervals(correct, "alex", "clean-finetune", 500, 0), "clean-finetune")
    assert summary["control"] == "clean-finetune" and summary["models"]["gauss"]["vs_control"]["clean_top1"]["significant"]
    specs = {"net": {"method": "baseline"}, "clean-finetune": {"method": "finetune", "base": "net", "fraction": 0.0},
             "gauss": {"method": "noise", "base": "net", "kind": "gauss"}, "alex": {"method": "baseline"}}
    text = markdown(summary, evals, specs)
    assert "95 % paired bootstrap interval" in text
    low, high = summary["models"]["net"]["intervals"]["clean_top1"]
    assert f"| net | 1 | {base.mean() * 100:.1f} [{low * 100:.1f}, {high * 100:.1f}] |" in text
    assert "| clean-finetune | Vanilla + clean epochs (control) |" in text
    gauss_line = next(line for line in text.splitlines() if line.startswith("| gauss | noise gauss |"))
    assert gauss_line.count("[") == 5 and "n.s." not in gauss_line.split("|")[6]  # clean change: significant
    net_line = next(line for line in text.splitlines() if line.startswith("| net | Vanilla |"))
    rows = summary["models"]
    versus = rows["net"]["vs_control"]["mce"]  # the base against the control: its computed interval, verdict and seed count
    expected = (f"{rows['net']['mce'] - rows['clean-finetune']['mce']:+.1f} [{versus['interval'][0]:+.1f}, {versus['interval'][1]:+.1f}]"
                + ("" if versus["significant"] else " n.s.") + " (1 seed)")
    assert net_line.split("|")[7].strip() == expected


def test_deepcorrect_table_compares_with_the_distorted_fine_tuning_not_the_control():
    from robust.report import comparison_pairs, markdown
    from robust.report.summary import summarise

    n = 300
    base = hits(n, 0.8, 0)
    sets = {name: {"clean": c, "fog@1": c & hits(n, 0.7, 7)} for name, c in
            (("net", base), ("clean-finetune", base | hits(n, 0.05, 1)), ("ft", base & hits(n, 0.9, 2)), ("dc", base & hits(n, 0.95, 3)),
             ("alex", hits(n, 0.5, 4)))}
    specs = {"net": {"method": "baseline"}, "alex": {"method": "baseline"},
             "clean-finetune": {"method": "finetune", "base": "net", "fraction": 0.0},
             "ft": {"method": "finetune", "base": "net", "distortion": "dc_blur"},
             "dc": {"method": "deepcorrect", "base": "net", "distortion": "dc_blur"}}
    assert comparison_pairs(specs, "clean-finetune") == (("dc", "ft"),)
    evals = {}
    for name, c in sets.items():
        fog = float(c["fog@1"].mean())
        evals[name] = {"n": n, "num_classes": 12, "clean": {"top1": float(c["clean"].mean()), "top5": 1.0, "error": 1 - float(c["clean"].mean())},
                       "distortions": {"fog": {"levels": {"1": {"top1": fog, "top5": 1.0, "n": n}}, "mean_top1": fog}},
                       "imagenet_c_top1": fog, "deepcorrect": {"dc_blur": 0.5}}
    summary = summarise(evals, "alex", B.intervals(sets, "alex", "clean-finetune", 300, 0, comparison_pairs(specs, "clean-finetune")), "clean-finetune")
    text = markdown(summary, evals, specs)
    assert "| dc_blur | fine-tuning | ft |" in text and "| dc_blur | clean epochs (control) | clean-finetune |" in text
    assert "DeepCorrect minus fine-tuning, mCE (paired 95 % interval): `dc` - `ft` " in text


def test_resample_indices_are_the_same_for_every_set_of_one_size():
    from robust.evaluation.bootstrap import resample_indices

    a, b = resample_indices(50, 7, seed=3), resample_indices(50, 7, seed=3)
    assert a.shape == (7, 50) and np.array_equal(a, b) and 0 <= a.min() and a.max() < 50
    assert not np.array_equal(a, resample_indices(50, 7, seed=4)) and resample_indices(40, 7, seed=3).max() < 40


def test_relative_mce_averages_the_point_estimates_corruptions_in_every_resample():
    """A corruption in relative mCE whose resampled denominator is <= 0 makes that resample
    undefined; it is not dropped from that resample alone (which would average another set)."""
    n = 400
    model_clean, norm_clean = hits(n, 0.9, 1), hits(n, 0.6, 2)
    # fog: the normaliser loses a lot (always defined); contrast: it loses almost nothing (sometimes <= 0 in a resample)
    norm = {"clean": norm_clean, "fog@1": norm_clean & hits(n, 0.5, 3), "contrast@1": norm_clean.copy()}
    norm["contrast@1"][np.flatnonzero(norm_clean)[:3]] = False  # 3 of 400 images lost: the point denominator is > 0
    model = {"clean": model_clean, "fog@1": model_clean & hits(n, 0.8, 4), "contrast@1": model_clean & hits(n, 0.95, 5)}
    resamples = 500
    top1 = B.resampled_top1(model, resamples, 0)
    base = B.resampled_top1(norm, resamples, 0)
    stats = B.model_statistics(top1, base)
    undefined = (1 - base["contrast@1"]) - (1 - base["clean"]) <= 0
    assert undefined.any() and (~undefined).any()  # the case the old nanmean mishandled
    assert np.isnan(stats["relative_mce"][undefined]).all()
    with np.errstate(divide="ignore", invalid="ignore"):  # the undefined resamples divide by 0 here
        rel = {name: ((1 - top1[f"{name}@1"]) - (1 - top1["clean"])) / ((1 - base[f"{name}@1"]) - (1 - base["clean"])) for name in ("fog", "contrast")}
    np.testing.assert_allclose(stats["relative_mce"][~undefined], 100 * (rel["fog"] + rel["contrast"])[~undefined] / 2)
    # a corruption whose point denominator is 0 is left out of every resample (as the point estimate leaves it out)
    norm["contrast@1"] = norm_clean.copy()
    stats = B.model_statistics(top1, B.resampled_top1(norm, resamples, 0))
    np.testing.assert_allclose(stats["relative_mce"], 100 * rel["fog"])


def test_unequal_seed_counts_pair_seed_k_with_seed_k():
    # three seeds against the control's two (a replicate missing): seed k is judged against the control's seed k
    rng = np.random.default_rng(0)
    control_s1 = {"clean": rng.random(400) < 0.5}
    correct = {"a": {"clean": rng.random(400) < 0.95}, "a-s1": control_s1, "a-s2": {"clean": rng.random(400) < 0.95},
               "c": {"clean": rng.random(400) < 0.5}, "c-s1": control_s1}
    result = B.intervals(correct, normaliser=None, control="c", resamples=400, seed=0,
                         groups={"a": ["a", "a-s1", "a-s2"], "c": ["c", "c-s1"]})
    versus = result["models"]["a"]["vs_control"]["clean_top1"]
    # seed 0: 0.95 against 0.5 (higher); seed 1: identical runs (no difference): whichever the pooled verdict, it
    # holds in exactly one of the two (judging seed 0 against each control seed would give 0 or 2)
    assert versus["seeds"] == 2 and versus["holds"] == 1
