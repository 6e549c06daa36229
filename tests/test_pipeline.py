"""The DVC pipeline itself, run for real in a temporary copy with tiny sizes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("pipeline")
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "robust"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(train_size=24, val_size=12, test_size=12, shard_size=8)
    params["corrupt"]["suites"] = {"imagenet_c": ["contrast"], "imagenet_c_extra": [], "deepcorrect": ["dc_awgn"], "restoration": ["ra_jpeg"]}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "repro")
    return repo


def test_one_corrupt_stage_per_distortion_and_level(repo):
    stages = [line.split()[0] for line in dvc(repo, "stage", "list").splitlines() if line.strip()]
    expected = (["prepare"] + [f"corrupt-imagenet-c@contrast-{i}" for i in range(1, 6)]
                + [f"corrupt-deepcorrect@dc_awgn-{i}" for i in range(1, 7)] + [f"corrupt-restoration@ra_jpeg-{i}" for i in range(1, 6)])
    assert stages == expected
    for level in range(1, 7):
        info = json.loads((repo / f"data/shards/corrupt/dc_awgn/{level}/test/info.json").read_text())
        assert info["num_samples"] == 12 and info["distortion"]["value"] == [5, 10, 15, 20, 25, 30][level - 1]


def test_rerun_is_a_no_op_and_a_table_edit_reruns_only_its_stages(repo):
    assert "up to date" in dvc(repo, "status")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["distortions"]["dc_awgn"]["cifar"] = [1, 2, 3, 4, 5, 6]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc(repo, "status", "--json")))
    assert changed == {f"corrupt-deepcorrect@dc_awgn-{i}" for i in range(1, 7)}
