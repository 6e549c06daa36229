"""The DVC pipeline itself, run for real in a temporary copy with tiny sizes."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robust.data.shards import read_tar

ROOT = Path(__file__).resolve().parents[1]
# the leaderboard (train@ and evaluate@ each), with a training-seed replicate of the control and of a fine-tuning run,
# and the processor of seed 002 scored on the benchmark
MODELS = ("deepcorrect_net", "alexnet_small", "clean-finetune", "finetune-dc_awgn", "deepcorrect-dc_awgn", "finetune-alexnet-dc_awgn",
          "deepcorrect-alexnet-dc_awgn", "ant1x1", "clean-finetune-s1", "finetune-dc_awgn-s1", "ra-denoise-ra")
CLASSIFIERS = MODELS
ENTRIES = tuple(m for m in MODELS if not m.endswith("-s1"))  # the report's rows: replicates are pooled with their entry
STUDY = ("vae", "ra-sr-plain")  # study_models: train-study@ only (seed 001's VAE, a seed 002 processor off the benchmark)
VAE = {"method": "vae", "start": "data/shards/clean", "arch": "vae"}


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tiny_params(suites: dict[str, list[str]]) -> dict:
    """The project's params.yaml with tiny training and evaluation settings and these suites."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corrupt"]["suites"] = {"imagenet_c": [], "imagenet_c_extra": [], "deepcorrect": [], "restoration": [], "cure_tsr": [], **suites}
    params["methods"]["deepcorrect"]["ranking"]["per_class"] = 1
    params["methods"]["deepcorrect"]["ranking"]["runs"] = {f"{b}-{d}": {"base": b, "distortion": d} for b in ("deepcorrect_net", "alexnet_small")
                                                           for d in suites.get("deepcorrect") or []}
    for method in ("finetune", "deepcorrect", "noise", "ant"):
        params["methods"][method]["train"]["epochs"] = 1
    params["methods"]["vae"]["train"]["epochs"] = 2
    params["train"].update(epochs=1, batch_size=8, workers=0)
    params["evaluate"]["batch_size"] = 5
    params["gradients"].update(train_distortion="gaussian_blur", epochs=3, per_class=4, batch_size=16, bootstrap=20)
    params["iqa"].update(images=4, crop=128, bootstrap=20)
    params["iqa"]["autoencoder"].update(patches=1000, train={"optimizer": "lbfgs", "lbfgs_iterations": 5, "epochs": 2})
    return params


def run_project(repo: Path, params: dict) -> Path:
    """A git + DVC copy of the project in ``repo`` with ``params``, reproduced and committed."""
    repo.mkdir(exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "robust"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "test"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")  # the severity plot's template
    dvc(repo, "config", "plots.html_template", "../data/plots/offline.html")  # as .dvc/config sets it
    commit(repo, "pipeline")  # as in a clone: DVCLive needs a commit to compare with
    dvc(repo, "repro")
    commit(repo, "first run")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    params = tiny_params({"imagenet_c": ["contrast"], "deepcorrect": ["dc_awgn"], "restoration": ["ra_jpeg"]})
    params["data"].update(train_size=24, val_size=12, test_size=12, shard_size=8)
    clean, base = "data/shards/clean", "data/models/deepcorrect_net/model.pt"
    params["models"] = {
        "deepcorrect_net": {"method": "baseline", "start": clean, "arch": "deepcorrect_net", "width": 0.25},
        "alexnet_small": {"method": "baseline", "start": clean, "arch": "alexnet_small", "width": 0.1},
        "clean-finetune": {"method": "finetune", "start": base, "base": "deepcorrect_net", "fraction": 0.0},
        "finetune-dc_awgn": {"method": "finetune", "start": base, "base": "deepcorrect_net", "distortion": "dc_awgn"},
        "deepcorrect-dc_awgn": {"method": "deepcorrect", "start": "metrics/deepcorrect/deepcorrect_net/dc_awgn/ranking.json", "base": "deepcorrect_net",
                                "distortion": "dc_awgn"},
        # seed 000's AlexNet setting (no batch norm): ranked through its adapter, CW units on 5 conv layers, and its fine-tuning twin
        "finetune-alexnet-dc_awgn": {"method": "finetune", "start": "data/models/alexnet_small/model.pt", "base": "alexnet_small", "distortion": "dc_awgn"},
        "deepcorrect-alexnet-dc_awgn": {"method": "deepcorrect", "start": "metrics/deepcorrect/alexnet_small/dc_awgn/ranking.json", "base": "alexnet_small",
                                        "distortion": "dc_awgn", "layers": 5, "fraction": [0.75, 0.75, 0.5, 0.5, 0.5], "unit": "cw"},
        "ant1x1": {"method": "ant", "start": base, "base": "deepcorrect_net", "generator": "1x1", "fresh_steps": 2},
        "clean-finetune-s1": {"method": "finetune", "start": base, "base": "deepcorrect_net", "fraction": 0.0, "replicate": 1},
        "finetune-dc_awgn-s1": {"method": "finetune", "start": base, "base": "deepcorrect_net", "distortion": "dc_awgn", "replicate": 1},
        "ra-denoise-ra": {"method": "ra", "start": base, "base": "deepcorrect_net", "task": "denoise", "mode": "ra", "benchmark": "imagenet_c"},
    }
    params["study_models"] = {"vae": VAE, "ra-sr-plain": {"method": "ra", "start": base, "base": "deepcorrect_net", "task": "sr", "mode": "plain"}}
    params["restoration"]["recognisers"] = ["deepcorrect_net", "alexnet_small"]
    params["restoration"]["bootstrap"] = 100
    return run_project(tmp_path_factory.mktemp("pipeline"), params)


def commit(repo: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True)


def test_one_corrupt_stage_per_distortion_writing_every_level(repo):
    stages = [line.split()[0] for line in dvc(repo, "stage", "list").splitlines() if line.strip()]
    expected = (["prepare", "corrupt-imagenet-c@contrast", "corrupt-deepcorrect@dc_awgn", "corrupt-restoration@ra_jpeg"]
                + [f"train@{model}" for model in MODELS] + [f"train-study@{model}" for model in STUDY]
                + ["activations@deepcorrect_net", "activations@alexnet_small", "rank@deepcorrect_net-dc_awgn",
                                                       "rank@alexnet_small-dc_awgn"] + [f"evaluate@{model}" for model in MODELS]
                + ["gradients", "detect", "iqa-autoencoder", "iqa", "ra", "report", "plots-template"])
    assert stages == expected
    for level in range(1, 7):
        info = json.loads((repo / f"data/shards/corrupt/dc_awgn/{level}/test/info.json").read_text())
        assert info["num_samples"] == 12 and info["distortion"]["value"] == [5, 10, 15, 20, 25, 30][level - 1]
        assert info["decoded"]["shape"] == [12, 32, 32, 3]  # what evaluation reads instead of decoding the tars
    assert sorted(p.name for p in (repo / "data/shards/corrupt/contrast").iterdir()) == ["1", "2", "3", "4", "5"]


def test_models_are_trained_evaluated_and_reported(repo):
    for model in (*MODELS, *STUDY):
        assert (repo / f"data/models/{model}/model.pt").is_file()
        assert (repo / f"metrics/train/{model}/plots/metrics/train/loss.tsv").is_file()
    for model in CLASSIFIERS:
        result = json.loads((repo / f"metrics/eval/{model}.json").read_text())
        # P -> R: the mCE corruptions only; every classifier: evaluate.suites (not seed 002's restoration tasks, which only its own stage reads)
        expected = {"contrast"} if model.startswith("ra-") else {"contrast", "dc_awgn"}
        assert set(result["distortions"]) == expected and result["n"] == 12
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert summary["normaliser"] == "alexnet_small" and summary["models"]["alexnet_small"]["mce"] == 100.0
    assert set(summary["models"]["deepcorrect_net"]["ce"]) == {"contrast"}
    report = (repo / "metrics/report.md").read_text()
    assert "| Model | mCE | Contrast |" in report
    assert "| dc_awgn | DeepCorrect | deepcorrect-dc_awgn |" in report and "| dc_awgn | fine-tuning | finetune-dc_awgn |" in report
    # the AlexNet rows: its own baseline and fine-tuning twin, no control of another base
    assert "| dc_awgn | baseline | alexnet_small |" in report and "| dc_awgn | fine-tuning | finetune-alexnet-dc_awgn |" in report
    alex_rows = [line for line in report.splitlines() if line.startswith("| dc_awgn |") and "alexnet" in line]
    assert len(alex_rows) == 3 and all(line.rstrip().endswith("| - |") for line in alex_rows)
    assert "deepcorrect-alexnet-dc_awgn - finetune-alexnet-dc_awgn" in summary["pairs"]
    assert "| ant1x1 | ant 1x1 |" in report  # seed 004's table
    # the control and the paired bootstrap intervals (from data/eval/<model>/correct.npz, a DVC output)
    assert summary["control"] == "clean-finetune" and "| clean-finetune | Vanilla + clean epochs (control) |" in report
    for model in CLASSIFIERS:
        assert (repo / f"data/eval/{model}/correct.npz").is_file()
    for model in ENTRIES:
        low, high = summary["models"][model]["intervals"]["clean_top1"]
        assert low <= summary["models"][model]["clean_top1"] <= high
    # relative mCE is compared only where its interval is defined (at 12 test images, alexnet_small's
    # corrupted-minus-clean error is often <= 0 in a resample: then it has none, issue 32 #6)
    relative = {"relative_mce"} if summary["models"]["ant1x1"]["intervals"].get("relative_mce") else set()
    assert set(summary["models"]["ant1x1"]["vs_control"]) == {"clean_top1", "imagenet_c_top1", "mce"} | relative
    counts = {m: summary["models"][m]["parameters"]["trainable"] for m in ("deepcorrect_net", "finetune-dc_awgn", "deepcorrect-dc_awgn")}
    assert counts["deepcorrect-dc_awgn"] < counts["finetune-dc_awgn"] == counts["deepcorrect_net"]
    assert (repo / "metrics/deepcorrect/deepcorrect_net/dc_awgn/curves.csv").read_text().startswith("percent,conv1,conv2,conv3\n")
    # AlexNet: every one of its 5 conv layers ranked (ranking.layers: all) and corrected
    assert (repo / "metrics/deepcorrect/alexnet_small/dc_awgn/curves.csv").read_text().startswith("percent,conv1,conv2,conv3,conv4,conv5\n")
    alex = json.loads((repo / "metrics/deepcorrect/alexnet_small/dc_awgn/ranking.json").read_text())
    assert alex["base"] == "alexnet_small" and [len(alex["layers"][f"conv{k}"]["order"]) for k in range(1, 6)] == [8, 19, 38, 26, 26]
    corrected = torch.load(repo / "data/models/deepcorrect-alexnet-dc_awgn/model.pt", weights_only=True)
    base_weights = torch.load(repo / "data/models/alexnet_small/model.pt", weights_only=True)
    assert torch.equal(corrected["net.features.0.conv.weight"], base_weights["net.features.0.weight"])  # frozen conv
    assert torch.equal(corrected["net.classifier.1.weight"], base_weights["net.classifier.1.weight"])  # frozen head
    assert corrected["net.features.0.fix"].numel() == 6 and corrected["net.features.6.fix"].numel() == 19  # 75 % of 8; conv3 (features.6): 50 % of 38
    alex_counts = [summary["models"][m]["parameters"]["trainable"] for m in ("deepcorrect-alexnet-dc_awgn", "finetune-alexnet-dc_awgn")]
    assert 0 < alex_counts[0] < alex_counts[1]
    severity = (repo / "metrics/plots/severity/contrast.csv").read_text().splitlines()
    assert severity[0] == "model,level,top1" and len(severity) == 1 + 6 * len(ENTRIES)
    assert [row.split(",")[0] for row in severity[1::6]] == list(ENTRIES)
    # training-seed replicates: pooled into their entry's row (mean of the seeds), two-level intervals, the seed count shown
    assert "clean-finetune-s1" not in summary["models"] and summary["models"]["clean-finetune"]["seeds"] == 2
    runs = [json.loads((repo / f"metrics/eval/{m}.json").read_text())["clean"]["top1"] for m in ("finetune-dc_awgn", "finetune-dc_awgn-s1")]
    assert summary["models"]["finetune-dc_awgn"]["clean_top1"] == pytest.approx(sum(runs) / 2)
    assert summary["models"]["finetune-dc_awgn"]["vs_control"]["mce"]["seeds"] == 2  # paired seed by seed with the control
    assert summary["models"]["ant1x1"]["vs_control"]["mce"]["seeds"] == 2  # one seed against the control's two
    assert "| clean-finetune | 2 |" in report and "Seed-to-seed spread of mCE" in report
    shown = json.loads(dvc(repo, "plots", "show", "--json"))  # the top-level definitions apply to a plain `dvc plots show`
    assert not [e for e in shown.get("errors") or [] if "severity" in e["name"]]
    spec = shown["data"]["metrics/plots/severity/contrast.csv"][0]["content"]
    assert spec["encoding"]["color"]["field"] == "model"  # one line per model, from the template, no model list in dvc.yaml
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checkpoint = next(o for o in stages["train"]["do"]["outs"] if isinstance(o, dict) and "checkpoint.pt" in next(iter(o)))
    assert next(iter(checkpoint.values()))["persist"] is True  # DVC keeps it, so a killed training resumes


def test_metrics_diff_shows_what_a_parameter_change_moved(repo):
    # one method's setting: only its run, its evaluation and the report rerun (a train: change would rerun everything)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["methods"]["ant"]["epsilon"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(repo, "repro")
    diff = json.loads(dvc(repo, "metrics", "diff", "--json"))
    # evaluations, the summary and DVCLive's last training values (each train@ stage's declared metrics)
    assert set(diff) <= {f"metrics/eval/{m}.json" for m in MODELS} | {f"metrics/train/{m}/metrics.json" for m in (*MODELS, *STUDY)} | {"metrics/summary.json",
                                                                                                                                     "metrics/gradients/summary.json",
                                                                                                                                     "metrics/ra/summary.json"}
    moved = [(path, key, change) for path, entries in diff.items() for key, change in entries.items()]
    assert moved and all(change["old"] != change["new"] for _, _, change in moved)  # ANT retrained with another noise norm
    assert {"metrics/eval/ant1x1.json", "metrics/train/ant1x1/metrics.json"} <= set(diff)
    assert not {path for path in diff if path.startswith("metrics/eval/") and path != "metrics/eval/ant1x1.json"}
    subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=repo, check=True)
    dvc(repo, "repro")


def test_rerun_is_a_no_op_and_a_table_edit_reruns_only_its_stages(repo):
    assert "up to date" in dvc(repo, "status")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["distortions"]["dc_awgn"]["cifar"] = [1, 2, 3, 4, 5, 6]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc(repo, "status", "--json")))
    # the table's corrupt stages, and what trains or ranks on the distortion (train@ reads the tables; a
    # baseline rerun reproduces its weights bit for bit, so nothing after it reruns); evaluate@ follows
    assert {s for s in changed if s.startswith("corrupt")} == {"corrupt-deepcorrect@dc_awgn"}
    # (and the gradient features, which read every corrupted test set and the tables of the detectors' training distortion,
    # and the IQA set, which makes every suite's distortion from the distortions: tables itself)
    assert changed - {s for s in changed if s.startswith("corrupt")} <= {"activations@deepcorrect_net", "activations@alexnet_small", "gradients", "iqa"} | {
        f"train@{m}" for m in MODELS} | {f"train-study@{m}" for m in STUDY}


def test_report_figures_page_and_dvc_plots_show_offline(repo):
    from PIL import Image

    for name in ("leaderboard", "severity", "ce_heatmap", "deepcorrect_curves", "distortions", "ant_noise"):
        with Image.open(repo / f"metrics/figures/{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 300, name
        assert f"![{name}](figures/{name}.png)" in (repo / "metrics/report.md").read_text()
    page = (repo / "metrics/report.html").read_text()
    assert "data:image/png;base64," in page and not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "plots_page"], cwd=repo, capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "WARNING" not in shown.stdout + shown.stderr, shown.stdout + shown.stderr  # DVCLive data files only
    rendered = (repo / "plots_page" / "index.html").read_text()
    assert "vegaEmbed(" in rendered and not re.search(r"<script[^>]*src\s*=\s*[\"']?https?://", rendered)
    assert "train/loss.tsv" in rendered and "severity/contrast.csv" in rendered


@pytest.fixture(scope="module")
def cifar_repo(tmp_path_factory):
    """A CIFAR-10 pipeline (two baselines, two ImageNet-C corruptions) with a CIFAR-10-C folder
    beside it, first run on generated corruptions (``constants: auto`` -> cifar)."""
    from formats import write_cifar, write_cifar_c

    base = tmp_path_factory.mktemp("cifar-pipeline")
    truth = write_cifar(base / "raw", "cifar10", n_train=40, n_test=10)
    released = write_cifar_c(base / "CIFAR-10-C", truth["labels"]["test"], truth["images"]["test"], names=("fog", "contrast"))
    params = tiny_params({"imagenet_c": ["fog", "contrast"], "deepcorrect": ["dc_awgn"]})
    params["data"].update(source="cifar10", root=str(truth["path"]), train_size=None, val_size=None, test_size=None, shard_size=8)
    clean = "data/shards/clean"
    params["models"] = {
        "deepcorrect_net": {"method": "baseline", "start": clean, "arch": "deepcorrect_net", "width": 0.25},
        "alexnet_small": {"method": "baseline", "start": clean, "arch": "alexnet_small", "width": 0.1},
    }
    params["study_models"] = {"vae": VAE}
    return {"repo": run_project(base / "repo", params), "truth": truth, "released": released}


def test_released_cifar_10_c_evaluates_through_the_pipeline(cifar_repo):
    repo, released = cifar_repo["repo"], cifar_repo["released"]
    generated = json.loads((repo / "metrics/eval/deepcorrect_net.json").read_text())
    assert generated["constants"] == {"fog": "cifar", "contrast": "cifar", "dc_awgn": None}  # auto at 32 px
    assert json.loads((repo / "data/shards/corrupt/fog/1/test/info.json").read_text())["distortion"]["constants"] == "cifar"
    out = dvc(repo, "exp", "run", "-S", "corrupt.source=released", "-S", f"corrupt.root={released['path']}")
    assert "Running stage 'corrupt-imagenet-c@fog'" in out and "Running stage 'evaluate@deepcorrect_net'" in out
    assert "Running stage 'train@" not in out and "Running stage 'corrupt-deepcorrect@" not in out  # only what reads the released files
    result = json.loads((repo / "metrics/eval/deepcorrect_net.json").read_text())
    assert result["constants"] == {"fog": "released", "contrast": "released", "dc_awgn": None}
    assert [result["distortions"]["fog"]["levels"][str(s)]["n"] for s in range(1, 6)] == [10] * 5
    for level in (1, 5):
        folder = repo / f"data/shards/corrupt/fog/{level}/test"
        info = json.loads((folder / "info.json").read_text())
        assert info["released"]["layout"] == "cifar-c" and info["released"]["root"] == str(released["path"])
        stored = np.load(folder / "images.npy")  # clean test order: the released rows of this severity, in the clean shards' order
        clean = {s["__key__"]: s for shard in json.loads((repo / "data/shards/clean/test/info.json").read_text())["shards"]
                 for s in read_tar(repo / "data/shards/clean/test" / shard["name"])}
        order = [json.loads(clean[key]["json"])["index"] for key in keys(folder)]
        np.testing.assert_array_equal(stored, released["arrays"]["fog"][(level - 1) * 10 + np.array(order)])
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert summary["constants"]["fog"] == "released"
    assert "made with the released corrupted files" in (repo / "metrics/report.md").read_text()
    assert "up to date" in dvc(repo, "status")


def keys(folder: Path) -> list[str]:
    info = json.loads((folder / "info.json").read_text())
    return [s["__key__"] for shard in info["shards"] for s in read_tar(folder / shard["name"])]


def test_no_output_records_wall_clock_time(repo):
    # an output's bytes must depend only on code, params and inputs: a timing field (the gradients stage's
    # info.json once held "seconds") made every rerun's DVC hash differ
    def json_keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from json_keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from json_keys(value)

    timed = {str(path.relative_to(repo)): key for folder in ("data", "metrics") for path in (repo / folder).rglob("*.json")
             for key in json_keys(json.loads(path.read_text())) if re.fullmatch(r"(wall_?)?(seconds|elapsed|duration|time)(_s)?", str(key))}
    assert not timed, timed


def test_gradient_features_detectors_and_their_table(repo):
    info = json.loads((repo / "data/gradients/info.json").read_text())
    assert info["sizes"] == {"kld": 1728, "bce": 144, "mu": 20}
    # clean train / val / test, the training distortion's train / val (generated: no corrupt stage builds gaussian_blur
    # here) and every built distorted test set
    expected = {"clean/train": 24, "clean/val": 12, "clean/test": 12, "gaussian_blur/1/train": 24, "gaussian_blur/1/val": 12}
    expected |= {f"contrast/{lv}/test": 12 for lv in range(1, 6)} | {f"dc_awgn/{lv}/test": 12 for lv in range(1, 7)}
    expected |= {f"ra_jpeg/{lv}/test": 12 for lv in range(1, len(list((repo / "data/shards/corrupt/ra_jpeg").iterdir())) + 1)}
    assert info["sets"] == expected
    with np.load(repo / "data/gradients/contrast/3/test.npz") as arrays:
        assert arrays["gradients"].shape == (12, 1872) and arrays["mu"].shape == (12, 20) and arrays["loss"].shape == (12,)
    summary = json.loads((repo / "metrics/gradients/summary.json").read_text())
    assert summary["train_distortion"] == "gaussian_blur" and set(summary["distortions"]) == {"contrast", "dc_awgn", "ra_jpeg"}
    for kind in ("activations", "gradients"):
        assert (repo / f"data/detectors/{kind}/model.pt").is_file()
        assert (repo / f"metrics/gradients/train/{kind}/plots/metrics/val/loss.tsv").is_file()
        low, high = summary["mean"]["intervals"][kind]["auroc"]
        assert low <= summary["mean"][kind]["auroc"] <= high or abs(low - high) < 1e-9
    plot = (repo / "metrics/gradients/plots/contrast.csv").read_text().splitlines()
    assert plot[0] == "model,level,auroc,accuracy" and len(plot) == 1 + 2 * 5
    report = (repo / "metrics/report.md").read_text()
    assert "## Distortion detection: VAE gradients vs activations (seed 001)" in report
    assert "| features | Contrast | dc_awgn | ra_jpeg | mean |" in report and "| gradients - activations |" in report


def test_iqa_stages_score_the_four_indices_against_the_level(repo):
    info = json.loads((repo / "data/iqa/autoencoder/info.json").read_text())
    assert info["patches"] == 1000 and len(info["loss_per_epoch"]) == 2 and (repo / "metrics/iqa/train/plots/metrics/train/loss.tsv").is_file()
    summary = json.loads((repo / "metrics/iqa/summary.json").read_text())
    # 4 crops of the builtin photographs x (contrast 5 + dc_awgn 6 + ra_jpeg 5 levels), in the suites' order, read at 0.5
    assert summary["pairs"] == 4 * 16 and summary["references"] == 4 and summary["types"] == ["contrast", "dc_awgn", "ra_jpeg"]
    assert summary["protocol"].startswith("agreement with distortion strength") and summary["index_settings"]["scale"] == 0.5
    assert summary["patches_per_image"] == {"min": 64, "max": 64}  # (128 x 0.5 / 8)^2
    assert list(summary["srocc"]) == ["psnr", "ssim", "unique", "gradient"] and summary["gradient_minus_unique"]["interval"] is not None
    assert summary["per_type"]["dc_awgn"]["psnr"]["srocc"] > 0.5  # more noise, lower PSNR
    report = (repo / "metrics/report.md").read_text()
    assert "## Image quality: UNIQUE (activations) vs its gradient version (seed 001), on `pipeline`" in report
    assert "| dc_awgn |" in report and "gradient - unique (mean within-type SROCC)" in report
    assert "Each image gives 64 8 x 8 patches at scale 0.5 (fewer than 192: its own whitening rests on a rank-deficient covariance)." in report


def test_recognition_aware_processors_tables_and_benchmark_rows(repo):
    ra = json.loads((repo / "metrics/ra/summary.json").read_text())
    assert list(ra["tasks"]) == ["sr", "denoise"] and ra["recognisers"] == ["deepcorrect_net", "alexnet_small"]
    assert list(ra["tasks"]["denoise"]["rows"]) == ["none", "ra-denoise-ra", "clean"]
    assert ra["tasks"]["sr"]["task"]["scale"] == 2 and set(ra["tasks"]["sr"]["rows"]["ra-sr-plain"]["top1"]) == {"deepcorrect_net", "alexnet_small"}
    # a processor off the benchmark is a study model: its table row above, no evaluation (nothing would read it)
    assert not (repo / "metrics/eval/ra-sr-plain.json").exists() and not (repo / "data/eval/ra-sr-plain").exists()
    # P -> R on the benchmark: a leaderboard row, paired with R alone
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert "ra-denoise-ra" in summary["models"] and "ra-sr-plain" not in summary["models"]
    assert "ra-denoise-ra - deepcorrect_net" in summary["pairs"]
    report = (repo / "metrics/report.md").read_text()
    assert "## Recognition-aware processing (seed 002)" in report and "### Denoising (sigma 0.1)" in report
    assert "| deepcorrect_net (R alone) |" in report and "| ra-denoise-ra |" in report
    versus = next(line for line in report.splitlines() if line.startswith("DeepCorrect minus fine-tuning"))
    assert "ra-denoise-ra" not in versus  # P -> R against R belongs to the RA table, not seed 000's comparison
    # R's weights inside the trained P -> R are R's own
    state = torch.load(repo / "data/models/ra-denoise-ra/model.pt", weights_only=True)
    base = torch.load(repo / "data/models/deepcorrect_net/model.pt", weights_only=True)
    assert all(torch.equal(state[f"recogniser.{k}"], v) for k, v in base.items())


def test_emptied_suites_leave_a_pipeline_whose_every_dependency_exists_or_is_made(tmp_path):
    """params.yaml invites removing names from corrupt.suites; without DeepCorrect (no ranking)
    the report stage still finds metrics/deepcorrect (kept in git by its README)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corrupt"]["suites"]["deepcorrect"] = []
    params["methods"]["deepcorrect"]["ranking"].update(bases=[], runs={})
    params["models"] = {name: spec for name, spec in params["models"].items() if spec["method"] not in ("deepcorrect", "finetune")}
    params["evaluate"]["control"] = None
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "robust"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "metrics" / "deepcorrect").mkdir(parents=True)
    shutil.copy(ROOT / "metrics" / "deepcorrect" / "README.md", repo / "metrics" / "deepcorrect" / "README.md")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        stages = {stage.name: stage for stage in dvc_repo.index.stages}
        made = [Path(out.fs_path) for stage in stages.values() for out in stage.outs]
        missing = [(name, dep.def_path) for name, stage in stages.items() for dep in stage.deps if not dep.def_path.startswith("params")
                   and not Path(dep.fs_path).exists()
                   and not any(Path(dep.fs_path).is_relative_to(out) or out.is_relative_to(dep.fs_path) for out in made)]  # made by a stage, or a folder of stages' outputs
    assert "report" in stages and not any(name.startswith("rank@") for name in stages)
    assert not missing, missing
