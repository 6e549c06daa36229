"""The paper-scale experiments (experiments/<name>/): each runs end to end with `dvc repro` on tiny
fixtures in the real datasets' on-disk layouts, with the full-size architectures at the seed's input
size and weights files in the torch hub cache layout made from random initialisation.

What a CI run changes in an experiment's committed params.yaml, and nothing else: the roots point at
the fixtures, the sizes are a handful of images, every training is one short epoch (ANT's fresh
generator: 2 steps), the bootstrap is small, and the long lists are cut to a few entries (every
method kind and stage kind still runs). The committed dvc.yaml runs unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import formats

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("generate", ROOT / "experiments" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)

IMAGENET_CLASSES = ("n01440764", "n01443537")


def dvc(folder: Path, *args: str, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=folder, capture_output=True, text=True, env=full)
    if ok:
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def random_weights(arch: str, path: Path) -> None:
    """A torchvision state-dict file of ``arch`` from random initialisation (what the real file holds, other values)."""
    from torchvision.models import get_model

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(get_model(arch, weights=None).state_dict(), path)


def hub_weights(torch_home: Path, archs: list[str]) -> None:
    """torchvision's weights files for ``archs`` where torch.hub keeps them (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    from torchvision.models import get_model_weights

    for arch in archs:
        random_weights(arch, torch_home / "hub" / "checkpoints" / get_model_weights(arch).DEFAULT.url.rsplit("/", 1)[1])


def project(tmp: Path, name: str, params: dict[str, Any]) -> Path:
    """A git repository holding the project's code and the experiment folder (its committed
    dvc.yaml, these params), the experiment a DVC project of its own, as in a clone."""
    repo = tmp / "project"
    for folder in ("stages", "robust"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "constraints.txt", repo / "constraints.txt")
    exp = repo / "experiments" / name
    shutil.copytree(ROOT / "experiments" / name, exp, ignore=shutil.ignore_patterns("data", "dvc.lock", "tmp", "cache"))
    (exp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "test"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "clone"], cwd=repo, check=True)
    return exp


def committed(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "experiments" / name / "params.yaml").read_text())


def short(params: dict[str, Any], *, epochs: int = 1, batch: int = 4) -> dict[str, Any]:
    """Tiny sizes: one short epoch everywhere, small batches and bootstraps, no worker processes."""
    params["data"].update(train_size=None, val_size=2, test_size=None, shard_size=8, workers=1)
    params.setdefault("train", {}).update(epochs=epochs, batch_size=batch, workers=0)
    for spec in params.get("models", {}).values():
        if isinstance(spec.get("train"), dict) and spec["train"].get("epochs"):
            spec["train"]["epochs"] = epochs
    if "evaluate" in params:
        params["evaluate"].update(bootstrap=100, batch_size=8, workers=0)
    if "corrupt" in params:
        params["corrupt"]["workers"] = 1
    return params


def report_rows(exp: Path) -> list[str]:
    text = (exp / "metrics" / "report.md").read_text()
    assert "## Published beside ours" in text
    section = text.split("## Published beside ours", 1)[1]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line and "quantity" not in line]


def test_committed_pipelines_are_the_generated_ones():
    """Each experiment's dvc.yaml is what experiments/generate.py writes from the project's dvc.yaml."""
    assert generate.main(["--check"]) == 0


def test_every_experiment_is_its_own_dvc_project_with_a_published_table():
    for name in generate.EXPERIMENTS:
        folder = ROOT / "experiments" / name
        assert (folder / ".dvc" / "config").is_file(), f"{name}: run dvc init --subdir there"
        params = committed(name)
        assert params.get("published", {}).get("rows"), f"{name}: no published: rows"


def test_generation_rules_reach_the_code_and_drop_what_the_experiment_does_not_make(tmp_path, monkeypatch):
    """Code deps and commands get ../../; a data/ dep no kept stage writes and a params key the
    experiment lacks are dropped; every stage depends on the inputs check."""
    root = {"stages": {
        "make": {"cmd": "python stages/make.py", "deps": ["stages/make.py", "robust/x.py", "constraints.txt"], "params": ["a.b", "missing.key"],
                 "outs": ["data/made"]},
        "use": {"foreach": "${items}", "do": {"cmd": "python stages/use.py ${item}", "deps": ["data/made", "data/not_made", "metrics/other.json",
                                                                                          "${item}"], "params": ["items"], "outs": ["data/used/${item}"]}},
        "skipped": {"cmd": "python stages/skipped.py", "outs": ["data/not_made"]}}}
    monkeypatch.setattr(generate, "HERE", tmp_path)
    monkeypatch.setitem(generate.EXPERIMENTS, "toy", ("make", "use"))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "params.yaml").write_text("a: {b: 1}\nitems: [x]\n")
    stages = generate.experiment_pipeline("toy", root)["stages"]
    assert list(stages) == ["inputs", "make", "use"]
    assert stages["make"]["cmd"] == "python ../../stages/make.py"
    assert stages["make"]["deps"] == ["../../stages/make.py", "../../robust/x.py", "../../constraints.txt", "data/inputs.json"]
    assert stages["make"]["params"] == ["a.b"]
    assert stages["use"]["do"]["deps"] == ["data/made", "${item}", "data/inputs.json"]
    assert stages["use"]["foreach"] == "${items}"


def test_published_section_prints_each_number_beside_ours_or_not_run():
    from robust.errors import ParamError
    from robust.report.published import published_lines

    spec = {"source": "a paper", "rows": [{"label": "clean top-1", "published": 76.1, "ours": "report:models.m.clean_top1", "percent": True},
                                          {"label": "mCE", "published": 76.7, "ours": "report:models.m.mce"},
                                          {"label": "SROCC", "published": 0.865, "ours": "iqa:indices.gradient.srocc"}]}
    lines = published_lines(spec, {"report": {"models": {"m": {"clean_top1": 0.75, "mce": 80.0}}}, "iqa": None})
    assert "| clean top-1 | 76.10 | 75.00 | -1.10 |" in lines and "| mCE | 76.70 | 80.00 | +3.30 |" in lines
    assert "| SROCC | 0.865 | not run | |" in lines
    assert published_lines(None, {}) == []
    with pytest.raises(ParamError, match="published.rows\\[0\\]"):
        published_lines({"rows": [{"label": "x", "published": 1, "ours": "elsewhere:key"}]}, {})


def test_missing_inputs_stop_the_run_before_any_work(tmp_path):
    """On a machine without the data, `dvc repro` stops at the inputs stage with one line per
    missing input (the dataset, the released set, each weights file) and makes nothing else."""
    exp = project(tmp_path, "seed004-imagenet", committed("seed004-imagenet"))
    result = dvc(exp, "repro", env={"TORCH_HOME": str(tmp_path / "empty-hub")}, ok=False)
    assert result.returncode != 0
    missing = [line for line in result.stderr.splitlines() if line.startswith("error: missing input")]
    assert any("data.root = /datasets/imagenet" in line for line in missing)
    assert any("corrupt.root = /datasets/ImageNet-C" in line for line in missing)
    assert any("models.resnet50_imagenet.pretrained" in line and "resnet50" in line for line in missing)
    assert len(missing) == 3, missing
    assert not (exp / "data" / "shards").exists()


def test_published_alexnet_errors_give_the_mce_only_when_no_normaliser_model_is_named():
    from robust.report.summary import summarise

    published = {"mce": 70.0, "relative_mce": None, "mce_extra": None, "ce": {}, "mce_over": [], "relative_mce_over": []}
    result = {"clean": {"top1": 0.5, "top5": 0.9, "error": 0.5}, "distortions": {}, "published_alexnet": published}
    assert summarise({"m": result}, None)["models"]["m"]["mce"] == 70.0  # seed 004's protocol: no normaliser model
    assert "mce" not in summarise({"m": result}, "alexnet_b")["models"]["m"]  # a named normaliser not evaluated: no silent substitute


def test_inputs_check_names_each_missing_released_level_training_folder_and_photo_folder(tmp_path):
    """The check reads what the readers read: a CURE-TSR root holding cure-tsr/ is accepted, one deleted
    challenge level and the detectors' training folders are each named, a folder without images is not
    a patch source."""
    from robust.inputs import check_inputs

    root = formats.write_cure_tsr_challenges(tmp_path, ctypes=(7, 1), signs=(1,), per_split=1)  # tmp_path/cure-tsr
    params = committed("seed001-cure-tsr")
    params["data"]["root"] = str(tmp_path)  # the folder holding cure-tsr/
    params["corrupt"].update(root=str(tmp_path))
    params["corrupt"]["suites"]["cure_tsr"] = ["cure_decolorization", "cure_gaussian_blur"]
    assert [i.line() for i in check_inputs(params) if i.problem] == []
    shutil.rmtree(root / "RealChallenge" / "01_03" / "test")
    shutil.rmtree(root / "RealChallenge" / "07_01" / "val")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "README.txt").write_text("no image here")
    params["iqa"] = {"autoencoder": {"patches_root": str(photos)}}
    missing = [i.line() for i in check_inputs(params) if i.problem]
    assert len(missing) == 3, missing
    assert any("01_03/test" in m and "cure_decolorization level 3" in m for m in missing)
    assert any("07_01/val" in m for m in missing) and any(m.startswith("iqa.autoencoder.patches_root") for m in missing)


def test_seed004_imagenet(tmp_path):
    """ResNet-50 at 224 px from (random) weights in the seed's V1 file; Gauss and ANT 3x3, scored on
    released ImageNet-C against AlexNet's published errors; the report prints the seed's table beside."""
    imagenet = formats.write_image_folder(tmp_path / "imagenet", classes=IMAGENET_CLASSES, per_class={"train": 4, "val": 2})
    corruptions = ["contrast"]
    formats.write_tiny_imagenet_c(tmp_path / "ImageNet-C", wnids=IMAGENET_CLASSES, per_class=1, names=tuple(corruptions), size=224)
    params = short(committed("seed004-imagenet"))
    params["data"]["root"] = str(imagenet)
    params["corrupt"].update(root=str(tmp_path / "ImageNet-C"))
    params["corrupt"]["suites"]["imagenet_c"] = corruptions
    params["models"] = {k: v for k, v in params["models"].items() if k in ("resnet50_imagenet", "gauss", "ant3x3")}
    params["evaluate"]["control"] = None
    params["methods"]["ant"]["fresh_steps"] = 2
    exp = project(tmp_path, "seed004-imagenet", params)
    random_weights("resnet50", exp / params["models"]["resnet50_imagenet"]["pretrained"])  # the V1 file, in the experiment's weights/
    dvc(exp, "repro", env={"TORCH_HOME": str(tmp_path / "torch")})
    summary = json.loads((exp / "metrics" / "summary.json").read_text())
    assert set(summary["models"]) == {"resnet50_imagenet", "gauss", "ant3x3"}
    for row in summary["models"].values():
        assert row["mce"] is not None  # against AlexNet's published ImageNet-C errors (no normaliser model)
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 9  # vanilla, Gauss and ANT 3x3: clean top-1, ImageNet-C top-1, mCE
    assert any(r.startswith("| Vanilla ResNet-50: mCE | 76.70 |") for r in rows)
    info = json.loads((exp / "data" / "shards" / "clean" / "test" / "info.json").read_text())
    assert info["image_size"] == 224


def test_seed000_imagenet_alexnet(tmp_path):
    """torchvision's AlexNet at 224 px: ranked, corrected with CW units and fine-tuned for AWGN."""
    imagenet = formats.write_image_folder(tmp_path / "imagenet", classes=IMAGENET_CLASSES, per_class={"train": 4, "val": 2})
    hub_weights(tmp_path / "torch", ["alexnet"])
    params = short(committed("seed000-imagenet-alexnet"))
    params["data"]["root"] = str(imagenet)
    params["corrupt"]["suites"]["deepcorrect"] = ["dc_awgn"]
    params["distortions"]["dc_awgn"]["imagenet"] = [20, 60]  # two of the six levels (the ranking runs a pass per filter and level)
    params["models"] = {k: v for k, v in params["models"].items() if k in ("alexnet_imagenet", "deepcorrect-alexnet-dc_awgn", "finetune-alexnet-dc_awgn")}
    ranking = params["methods"]["deepcorrect"]["ranking"]
    ranking.update(runs={"alexnet_imagenet-dc_awgn": {"base": "alexnet_imagenet", "distortion": "dc_awgn"}}, per_class={"alexnet_imagenet": 1},
                   layers={"alexnet_imagenet": 1}, curves=[50])
    params["methods"]["deepcorrect"].update(layers=1, fraction=[0.75])
    exp = project(tmp_path, "seed000-imagenet-alexnet", params)
    dvc(exp, "repro", env={"TORCH_HOME": str(tmp_path / "torch")})
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 4  # clean top-1, and AWGN's baseline, fine-tuning and DeepCorrect
    summary = json.loads((exp / "metrics" / "summary.json").read_text())
    assert summary["models"]["alexnet_imagenet"]["parameters"]["total"] > 57_000_000  # the full AlexNet, new 2-class head


def test_seed000_cifar100(tmp_path):
    """The seed's CIFAR-100 network at full width, trained from scratch and fine-tuned for blur. Its DeepCorrect
    entries and their ranking are cut here: a ranking set of 1 image per class is 100 images, and ranking the
    96 filters of the full-width first layer on them takes minutes on 2 cores; ranking and correction run in
    the AlexNet experiment's test."""
    cifar = formats.write_cifar(tmp_path, "cifar100", n_train=40, n_test=10)
    params = short(committed("seed000-cifar100"))
    params["data"]["root"] = str(cifar["path"])
    params["corrupt"]["suites"]["deepcorrect"] = ["dc_blur"]
    params["models"]["deepcorrect_net"]["train"].update(epochs=1, batch_size=8)
    params["models"] = {k: v for k, v in params["models"].items() if k in ("deepcorrect_net", "finetune-dc_blur")}
    params["methods"]["deepcorrect"]["ranking"].update(bases=[], runs={})
    exp = project(tmp_path, "seed000-cifar100", params)
    dvc(exp, "repro", env={})
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 3  # clean top-1, the blur baseline and fine-tuning
    summary = json.loads((exp / "metrics" / "summary.json").read_text())
    assert summary["models"]["deepcorrect_net"]["parameters"]["total"] > 1_300_000  # the seed's 1.39 M (100 classes)


def test_seed001_cure_tsr(tmp_path):
    """The VAE on CURE-TSR's own folders at 28 px; detectors trained on Gaussian blur level 1, tested on decolorization."""
    root = formats.write_cure_tsr_challenges(tmp_path, ctypes=(7, 1), signs=(1, 5, 14), per_split=3)
    params = short(committed("seed001-cure-tsr"))
    params["data"].update(root=str(root), val_size=None)
    params["corrupt"].update(root=str(root))
    params["corrupt"]["suites"]["cure_tsr"] = ["cure_decolorization", "cure_gaussian_blur"]
    params["methods"]["vae"]["train"].update(epochs=1, batch_size=8)
    params["gradients"].update(epochs=2, per_class=4, batch_size=16, bootstrap=20)
    exp = project(tmp_path, "seed001-cure-tsr", params)
    dvc(exp, "repro", env={})
    info = json.loads((exp / "data" / "gradients" / "info.json").read_text())
    # 3 signs x 3 images per split; challenge 07 level 1's train / val are CURE-TSR's own folders
    assert info["sets"]["cure_gaussian_blur/1/train"] == 9 and info["sets"]["cure_gaussian_blur/1/val"] == 9
    assert info["sets"]["cure_decolorization/5/test"] == 9 and info["sets"]["clean/train"] == 9
    summary = json.loads((exp / "metrics" / "gradients" / "summary.json").read_text())
    assert set(summary["distortions"]) == {"cure_decolorization"}  # every OTHER type than the training one
    assert set(summary["levels"]["cure_decolorization"]) == {"1", "2", "3", "4", "5"}
    assert "| features | DE | mean |" in (exp / "metrics" / "report.md").read_text()  # CURE-TSR's types by the seed's names
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 2  # decolorization: activations and gradients
    assert sum("not run" in r for r in rows) == 10     # the other published types were not built here


@pytest.mark.parametrize("database", ["tid2013", "livemd"])
def test_seed001_iqa(tmp_path, database):
    """The autoencoder on a folder of natural images; the four indices scored on the database."""
    db = tmp_path / database
    (formats.write_tid2013 if database == "tid2013" else formats.write_livemd)(db)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, ref in enumerate(formats.iqa_pairs(n_refs=3)["refs"]):
        formats.Image.fromarray(ref).save(photos / f"photo{i}.png")
    params = committed(f"seed001-iqa-{database}")
    params["iqa"].update(root=str(db), bootstrap=20)
    params["iqa"]["autoencoder"].update(patches_root=str(photos), patches=1000, train={"optimizer": "lbfgs", "lbfgs_iterations": 5, "epochs": 2})
    exp = project(tmp_path, f"seed001-iqa-{database}", params)
    dvc(exp, "repro", env={})
    rows = report_rows(exp)
    assert len(rows) == 3 and all("not run" not in r for r in rows)


def test_seed002_imagenet(tmp_path):
    """The seed's SRResNet for x4 SR at 224 px in its four modes with ResNet-18 as R, scored by R (the transfer
    recognisers cut: scoring by several recognisers is the same code, tested in tests/methods/test_ra.py)."""
    imagenet = formats.write_image_folder(tmp_path / "imagenet", classes=IMAGENET_CLASSES, per_class={"train": 4, "val": 2})
    hub_weights(tmp_path / "torch", ["resnet18"])
    params = short(committed("seed002-imagenet"))
    params["data"]["root"] = str(imagenet)
    params["models"] = {k: v for k, v in params["models"].items() if k == "resnet18_imagenet"}
    params["study_models"] = {k: v for k, v in params["study_models"].items() if k.startswith("ra-sr-")}  # the four modes
    params["methods"]["ra"]["train"].update(epochs=1, batch_size=4, schedule="constant", milestones=[])
    params["restoration"].update(recognisers=["resnet18_imagenet"], bootstrap=100, batch_size=8)
    exp = project(tmp_path, "seed002-imagenet", params)
    dvc(exp, "repro", env={"TORCH_HOME": str(tmp_path / "torch")})
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 3  # SR plain / RA / unsupervised scored by R (the transfer recognisers cut)


def test_seed003_tinyimagenet(tmp_path):
    """ResNet-18 at 224 px from (random) hub weights, _b and _c on Tiny ImageNet, scored on released Tiny-ImageNet-C
    (the fixture: as many images per level as the clean test split)."""
    tiny = formats.write_tiny_imagenet(tmp_path, per_class=4, n_val=6)
    corruptions = ["fog"]
    formats.write_tiny_imagenet_c(tmp_path / "Tiny-ImageNet-C", wnids=tuple(tiny["wnids"]), per_class=2, names=tuple(corruptions))
    hub_weights(tmp_path / "torch", ["resnet18"])
    params = short(committed("seed003-tinyimagenet"))
    params["data"]["root"] = str(tiny["path"])
    params["corrupt"]["root"] = str(tmp_path / "Tiny-ImageNet-C")
    params["corrupt"]["suites"]["imagenet_c"] = corruptions
    params["study_models"] = {k: v for k, v in params["study_models"].items() if k == "resnet_imagenet"}
    params["models"] = {k: v for k, v in params["models"].items() if k in ("resnet_b", "resnet_c")}
    params["evaluate"]["normaliser"] = "resnet_b"  # AlexNet's two runs cut: mCE against the remaining _b run
    params["methods"]["corruption"].update(workers=0)
    params["methods"]["corruption"]["train"].update(epochs=1, batch_size=4)
    exp = project(tmp_path, "seed003-tinyimagenet", params)
    dvc(exp, "repro", env={"TORCH_HOME": str(tmp_path / "torch")})
    rows = report_rows(exp)
    assert sum("not run" not in r for r in rows) == 2  # resnet_b and resnet_c clean top-1
    summary = json.loads((exp / "metrics" / "summary.json").read_text())
    assert summary["normaliser"] == "resnet_b" and summary["models"]["resnet_c"]["mce"] is not None


def test_inputs_check_finds_a_runs_pretrained_architecture_through_its_base_in_the_other_section(tmp_path, monkeypatch):
    """A seed 003 run (models:) whose base is a study_models: entry: its torchvision weights are its base's
    architecture's, as robust.methods.corruption.start_weights reads them."""
    from robust.inputs import check_inputs

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    params = {"study_models": {"resnet_imagenet": {"method": "baseline", "start": "data/shards/clean", "arch": "resnet18"}},
              "models": {"resnet_b": {"method": "corruption", "start": "data/models/resnet_imagenet/model.pt", "base": "resnet_imagenet",
                                      "pretrained": "torchvision"}}}
    (missing,) = [i for i in check_inputs(params) if i.problem]
    assert missing.param == "models.resnet_b.pretrained" and missing.what == "resnet18 weights"
    assert "torchvision's weights for resnet18 are not in the local cache" in missing.problem
