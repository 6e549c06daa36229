"""Evaluation on every built distortion, the report's CE tables, and ``robust benchmark``."""

import json
import subprocess
import sys

import pytest
import torch

from robust import distortions as D
from robust.distortions.corrupt import corrupt
from robust.data.prepare import prepare
from robust.evaluation.scoring import built_levels, errors_of, evaluate_model
from robust.models import create
from robust.distortions.settings import CorruptParams
from robust.params import DataParams
from robust.report import markdown
from robust.report.summary import severity_curves, summarise


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(DataParams(train_size=24, val_size=12, test_size=20, shard_size=10, workers=1), root / "clean")
    for name, levels in (("fog", (1, 2, 3, 4, 5)), ("dc_blur", (1, 2, 3, 4, 5, 6))):
        for level in levels:
            corrupt(root / "clean", root / "corrupt" / name / str(level), D.get(name), level, CorruptParams(workers=1))
    return root


def test_evaluate_model_scores_clean_and_every_built_level(data):
    torch.manual_seed(0)
    model = create("deepcorrect_net", 12, width=0.1)
    assert built_levels(data / "corrupt", "fog") == [1, 2, 3, 4, 5] and built_levels(data / "corrupt", "snow") == []
    correct = {}
    result = evaluate_model(model, data / "clean", data / "corrupt", ["fog", "snow", "dc_blur"], batch_size=8, correct=correct)
    assert result["n"] == 20 and set(result["distortions"]) == {"fog", "dc_blur"}
    # per-image correctness for the bootstrap: one bool per test image per set, agreeing with the counts
    assert set(correct) == {"clean"} | {f"fog@{i}" for i in range(1, 6)} | {f"dc_blur@{i}" for i in range(1, 7)}
    assert correct["clean"].dtype == bool and len(correct["clean"]) == 20 and correct["clean"].mean() == pytest.approx(result["clean"]["top1"])
    assert correct["fog@3"].mean() == pytest.approx(result["distortions"]["fog"]["levels"]["3"]["top1"])
    assert result["constants"] == {"fog": "imagenet", "dc_blur": None} and result["num_classes"] == 12
    fog = result["distortions"]["fog"]
    assert sorted(fog["levels"], key=int) == ["1", "2", "3", "4", "5"]
    assert fog["mean_top1"] == pytest.approx(sum(v["top1"] for v in fog["levels"].values()) / 5)
    assert result["imagenet_c_top1"] == pytest.approx(fog["mean_top1"])  # fog is the only common corruption built
    dc = result["distortions"]["dc_blur"]["levels"]
    assert result["deepcorrect"]["dc_blur"] == pytest.approx((result["clean"]["top1"] + sum(v["top1"] for v in dc.values())) / 7)
    errors = errors_of(result)
    assert list(errors["corruptions"]) == ["fog"] and len(errors["corruptions"]["fog"]) == 5


def test_per_image_correctness_round_trips_through_its_file(tmp_path):
    import numpy as np

    from robust.evaluation.scoring import load_correct, save_correct

    correct = {"clean": np.array([True, False, True]), "fog@1": np.array([False, False, True])}
    save_correct(tmp_path / "m" / "correct.npz", correct)
    loaded = load_correct(tmp_path / "m" / "correct.npz")
    assert set(loaded) == set(correct) and all(np.array_equal(loaded[k], correct[k]) for k in correct)
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["correct.npz"]  # no temporary file left


def _result(clean, fog, blur=None):
    """An evaluation result with given clean top-1 and per-level top-1 on fog (and dc_blur)."""
    distortions = {"fog": {"levels": {str(i + 1): {"top1": v, "top5": 1.0} for i, v in enumerate(fog)}}}
    if blur:
        distortions["dc_blur"] = {"levels": {str(i + 1): {"top1": v, "top5": 1.0} for i, v in enumerate(blur)}}
    for entry in distortions.values():
        entry["mean_top1"] = sum(v["top1"] for v in entry["levels"].values()) / len(entry["levels"])
    return {"clean": {"top1": clean, "top5": 1.0, "error": 1 - clean}, "distortions": distortions, "imagenet_c_top1": distortions["fog"]["mean_top1"],
            "deepcorrect": {"dc_blur": 0.5} if blur else {}}


def test_report_divides_by_the_normaliser_and_fills_the_tables():
    evals = {"net": _result(0.9, [0.8, 0.7, 0.6, 0.5, 0.4], blur=[0.5] * 6), "alex": _result(0.6, [0.4, 0.4, 0.3, 0.2, 0.2])}
    summary = summarise(evals, "alex")
    net = summary["models"]["net"]
    # net errors sum 0.2+0.3+0.4+0.5+0.6 = 2.0; alex 0.6+0.6+0.7+0.8+0.8 = 3.5
    assert net["ce"]["fog"] == pytest.approx(100 * 2.0 / 3.5) and net["mce"] == pytest.approx(100 * 2.0 / 3.5)
    assert net["relative_mce"] == pytest.approx(100 * (2.0 - 0.5) / (3.5 - 2.0))
    assert summary["models"]["alex"]["mce"] == pytest.approx(100.0)
    text = markdown(summary, evals)
    assert "| net | 1 | 90.0 |" in text and "| Model | mCE | Fog |" in text and "| net | 0.57 | 0.57 |" in text
    assert "| net | 0.9000 | 0.5000 | - |" in text  # DeepCorrect averages
    curves = severity_curves(evals)
    # long rows (model, level, top1): the plot template colours by model, so dvc.yaml lists no model names
    assert curves["fog"][0] == {"model": "net", "level": 0, "top1": 0.9}
    assert curves["fog"][6] == {"model": "alex", "level": 0, "top1": 0.6} and curves["fog"][11] == {"model": "alex", "level": 5, "top1": 0.2}
    assert summarise(evals, "missing")["models"]["net"].get("mce") is None


def test_benchmark_command_scores_a_local_weights_file(data, tmp_path):
    model = create("deepcorrect_net", 12, width=0.1)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    command = [sys.executable, "-m", "robust.cli", "benchmark", "deepcorrect_net", "--weights", str(tmp_path / "weights.pt"),
               "--option", "width", "0.1", "--clean", str(data / "clean"), "--corrupt", str(data / "corrupt"), "--baseline", "alexnet-imagenet-c"]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "not ImageNet-C-like: the images are 32 px" in refused.stderr
    assert "force_baseline" in refused.stderr and refused.stdout == ""
    out = subprocess.run(command + ["--force-baseline"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "comparing with ImageNet-C's published AlexNet errors on other data" in out.stderr
    result = json.loads(out.stdout)
    assert result["n"] == 20 and set(result["distortions"]) == {"fog", "dc_blur"}
    assert set(result["mce"]["ce"]) == {"fog"} and result["mce"]["mce"] > 0
    assert result["mce"]["warning"].startswith("forced on data unlike ImageNet-C") and result["constants"] == {"fog": "imagenet", "dc_blur": None}


def test_published_alexnet_baseline_needs_imagenet_c_like_data():
    from robust.evaluation.scoring import imagenet_c_mismatch

    def level(constants="imagenet", fmt="jpg", quality=85, **extra):
        return {"distortion": {"name": "fog", "level": 1, "constants": constants}, "format": fmt, "params": {"jpg_quality": quality}, **extra}

    assert imagenet_c_mismatch({"image_size": 224}, {"fog": [level()]}) == []
    released = level(constants=None, released={"layout": "imagenet-c"}, source="imagefolder")
    assert imagenet_c_mismatch({"image_size": 224}, {"fog": [released]}) == []
    assert imagenet_c_mismatch({"image_size": 224}, {"fog": [{**released, "source": "tinyimagenet"}]}) == [
        "fog level 1 is a released tinyimagenet set, not ImageNet-C"]
    problems = imagenet_c_mismatch({"image_size": 32}, {"fog": [level("cifar")], "snow": [level(fmt="png")], "frost": [level(quality=90)]})
    assert problems == ["the images are 32 px, not 224", "fog was made with the cifar constants, not imagenet (corrupt.constants)",
                        "snow is stored as png, not JPEG q85 (corrupt.format, corrupt.jpg_quality)",
                        "frost is stored as jpg q90, not JPEG q85 (corrupt.format, corrupt.jpg_quality)"]


def test_report_names_the_constants_and_warns_about_distortions_at_chance():
    from robust.report.summary import at_chance, chance_band, no_signal

    # 12 classes, 1,200 images: chance 8.3 %, band 8.3 + 1.96 x 0.80 = 9.9 %
    assert chance_band(12, 1200) == pytest.approx(1 / 12 + 1.96 * (1 / 12 * 11 / 12 / 1200) ** 0.5)
    assert 0.098 < chance_band(12, 1200) < 0.100
    # the old benchmark's fog: 12.1 % at severity 5 is above the one-level band, the pooled mean is chance
    old_fog = [(0.058, 1200), (0.07, 1200), (0.08, 1200), (0.09, 1200), (0.121, 1200)]
    assert old_fog[-1][0] > chance_band(12, 1200) and at_chance(old_fog, 12)
    assert not at_chance([(0.2, 1200)] + old_fog[1:], 12)
    net, alex = _result(0.9, [0.08, 0.09, 0.095, 0.07, 0.08]), _result(0.6, [0.058, 0.07, 0.08, 0.09, 0.121])
    for result in (net, alex):
        result.update(n=1200, num_classes=12)
        result["distortions"]["fog"]["constants"] = "imagenet"
    assert no_signal({"net": net, "alex": alex}) == ["fog"]
    summary = summarise({"net": net, "alex": alex}, "alex")
    assert summary["no_signal"] == ["fog"] and summary["constants"] == {"fog": "imagenet"}
    text = markdown(summary, {"net": net, "alex": alex})
    assert "**Warning: no signal.** Every model is at chance on `fog`" in text
    assert "`fog` made with ImageNet-C's 224 px constants and formulas (Hendrycks' make_imagenet_c.py) (`imagenet`)" in text
    net["distortions"]["fog"]["levels"]["1"]["top1"] = 0.3  # one model with signal: the distortion separates models
    assert no_signal({"net": net, "alex": alex}) == []
    assert "no signal" not in markdown(summarise({"net": net, "alex": alex}, "alex"), {"net": net, "alex": alex})


def test_level_captions_name_the_constants_table():
    from robust.report.figures import level_caption

    assert level_caption({"distortion": {"value": [0.2, 3], "constants": "cifar"}}) == "cifar: 0.2,3"
    assert level_caption({"distortion": {"value": [1.0, 1.01, 1.02, 1.03, 1.04], "constants": "cifar"}}) == "cifar: [1..1.04]"
    assert level_caption({"distortion": {"value": 5, "constants": None}}) == "value 5"
    assert level_caption({"distortion": {}, "released": {"layout": "cifar-c"}}) == "released"


def test_seed_003_tables_pair_each_c_run_with_its_b_run_and_rank_the_architectures():
    from robust.report import comparison_pairs
    from robust.report.corruption import corruption_tables

    base = {"method": "corruption", "start": "s"}
    models = {"alex": {"method": "baseline"},
              "r_b": {**base, "base": "r", "data": "clean"}, "r_c": {**base, "base": "r", "data": "corrupted"},
              "r_h": {**base, "base": "r", "data": "corrupted", "protocol": "held_out"},
              "d_b": {**base, "base": "d", "data": "clean"}, "d_c": {**base, "base": "d", "data": "corrupted"},
              "s_b": {**base, "base": "s", "data": "clean"}, "s_c": {**base, "base": "s", "data": "corrupted"}}
    assert set(comparison_pairs(models, None)) == {("r_c", "r_b"), ("r_h", "r_b"), ("r_h", "r_c"), ("d_c", "d_b"), ("s_c", "s_b")}
    evals = {"alex": _result(0.5, [0.4, 0.3, 0.3, 0.2, 0.1]), "r_b": _result(0.9, [0.6] * 5), "r_c": _result(0.88, [0.7] * 5),
             "r_h": _result(0.89, [0.65] * 5), "d_b": _result(0.8, [0.62] * 5), "d_c": _result(0.79, [0.6] * 5),
             "s_b": _result(0.6, [0.5] * 5), "s_c": _result(0.55, [0.55] * 5)}
    summary = summarise(evals, "alex")
    significant = {"interval": [-9.0, -1.0], "significant": True}
    summary["pairs"] = {"r_c - r_b": {"mce": significant}, "d_c - d_b": {"mce": {"interval": [-3.0, 2.0], "significant": False}},
                        "s_c - s_b": {"mce": significant}, "r_h - r_b": {"mce": significant}, "r_h - r_c": {"mce": {"interval": [1.0, 8.0], "significant": True}}}
    text = "\n".join(corruption_tables(summary, models))
    assert "| r_c | `r` | corrupted (_c), the 19 (seed protocol) |" in text and "| r_h | `r` | corrupted (_c), held out: none of the 15 |" in text
    # fog: r_b's errors sum 5 x 0.4 = 2.0, alex's 0.6 + 0.7 + 0.7 + 0.8 + 0.9 = 3.7: CE 0.54
    assert "| alex | 1.00 | 1.00 |" in text and "| r_b | 0.54 | 0.54 |" in text  # seed 003's shape: the normaliser = 1.00
    assert "-13.5 [-9.0, -1.0] (1 seed) vs `r_b` |" in text and "`r_h` - `r_c` +6.8 [+1.0, +8.0] (1 seed)" in text  # paired, held out against seed too
    assert "significantly): 2 of 3 architectures; not: `d_c` (+2.7 n.s.)." in text  # d_c is not below d_b
    # _b: clean r > d > s; mCE d (0.38 error) < r (0.40) < s (0.50): not the same order
    assert "_b runs: by clean top-1 `r_b` ~ `d_b` ~ `s_b`; by mCE `d_b` ~ `r_b` ~ `s_b`: a different order, but only between runs whose separate (unpaired) intervals overlap" in text  # no intervals: unordered
    assert "_c runs (seed protocol): by clean top-1 `r_c` ~ `d_c` ~ `s_c`; by mCE `r_c` ~ `d_c` ~ `s_c`: the same order" in text
    summary["models"]["d_b"]["intervals"] = {"mce": [37.0, 52.0]}  # overlaps r_b's
    summary["models"]["r_b"]["intervals"] = {"mce": [50.0, 58.0]}
    summary["models"]["s_b"]["intervals"] = {"mce": [60.0, 70.0]}  # apart from r_b's
    text = "\n".join(corruption_tables(summary, models))
    assert "by mCE `d_b` ~ `r_b` < `s_b`: a different order, but only between runs whose separate (unpaired) intervals overlap" in text
    summary["models"]["d_b"]["intervals"] = {"mce": [37.0, 39.0], "clean_top1": [0.79, 0.81]}
    summary["models"]["r_b"]["intervals"] = {"mce": [40.0, 42.0], "clean_top1": [0.89, 0.91]}  # r_b more accurate, d_b more robust: both resolved
    assert "by mCE `d_b` < `r_b` < `s_b`: a different order where the intervals separate the runs, against the seed's finding" in "\n".join(corruption_tables(summary, models))
    assert corruption_tables(summary, {"alex": models["alex"]}) == []
    bare = summarise({k: v for k, v in evals.items() if k != "alex"}, None)  # no normaliser: no mCE, no ranking, no crash
    assert "No normaliser was evaluated" in "\n".join(corruption_tables(bare, models))


def test_a_pair_without_an_mce_interval_is_said_not_crashed_on():
    # no normaliser evaluated (no mCE), or too many undefined resamples: the held-out line says so
    from robust.report.cells import pair_cell

    summary = {"models": {"a": {"mce": None}, "b": {"mce": None}}, "pairs": {"a - b": {"clean_top1": {"interval": [0.0, 0.1]}}}}
    assert "no interval" in pair_cell(summary, "a - b")
    summary = {"models": {"a": {"mce": 80.0}, "b": {"mce": 90.0}}, "pairs": {"a - b": {"mce": {"interval": None, "significant": False}}}}
    assert "no interval" in pair_cell(summary, "a - b")
    summary["pairs"]["a - b"]["mce"] = {"interval": [-15.0, -5.0], "significant": True}
    assert pair_cell(summary, "a - b").startswith("`a` - `b` -10.0 [-15.0, -5.0]")


def test_the_published_section_is_the_reports_last_and_leaves_the_rest_unchanged():
    net, alex = _result(0.9, [0.5, 0.4, 0.3, 0.2, 0.1]), _result(0.6, [0.4, 0.3, 0.2, 0.1, 0.05])
    summary = summarise({"net": net, "alex": alex}, "alex")
    spec = {"source": "a paper", "rows": [{"label": "clean top-1", "published": 76.1, "ours": "report:models.net.clean_top1", "percent": True}]}
    plain, with_published = markdown(summary, {"net": net, "alex": alex}), markdown(summary, {"net": net, "alex": alex}, published=spec)
    assert with_published.startswith(plain.rstrip() + "\n\n## Published beside ours\n")  # one blank line, nothing else changed
    assert with_published.endswith("| clean top-1 | 76.10 | 90.00 | +13.90 |\n")
