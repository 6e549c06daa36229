"""The ``robust`` command and the stage script: help, success, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robust.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_the_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for command in ("prepare", "sources", "info"):
        assert command in out


def test_prepare_and_info_commands(tmp_path, capsys):
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = {**defaults["data"], "train_size": 24, "val_size": 12, "test_size": 12, "workers": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": data}))
    assert main(["prepare", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "clean")]) == 0
    assert "train: 24 samples" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "clean" / "val")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_samples"] == 12 and summary["num_classes"] == 12


def test_user_errors_print_one_line_and_exit_2(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "cifar10", "root": str(tmp_path / "nope")}}))
    result = subprocess.run(
        [sys.executable, "-m", "robust.cli", "prepare", "--params", "params.yaml", "--out", "out"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0] and "Fix:" in lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_default_params_are_valid_and_the_pipeline_declares_them():
    from robust.params import DataParams

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = DataParams.from_dict(params["data"])
    assert data.source == "builtin" and data.train_size >= 3000 and data.val_size >= 600 and data.test_size >= 600  # docs/performance.md: why this size
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["prepare"]["params"] == ["data"] and "data/shards/clean" in stages["prepare"]["outs"]


def test_distortions_command_lists_every_suite_with_its_tables(capsys):
    from robust.distortions import SUITES

    assert main(["distortions"]) == 0
    out = capsys.readouterr().out
    for suite, names in SUITES.items():
        assert f"{suite}:" in out and all(f"  {name} " in out for name in names)
    assert "fog                weather  5 levels  (imagenet-c)  constants: corrupt.constants" in out
    assert "cure_haze          weather  5 levels  (released only" in out
    assert "dc_blur            blur     6 levels  (deepcorrect)  table [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]" in out


def _startup_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("startup_benchmark", ROOT / "benchmarks" / "startup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: stage script -> its arguments, from the start-up benchmark (which times the same stop)
STAGE_ARGS = _startup_benchmark().STAGES


@pytest.mark.parametrize("script", sorted(STAGE_ARGS))
def test_every_stage_without_its_inputs_prints_one_error_line_and_exits_2(tmp_path, script):
    # the stages' arguments are the start-up benchmark's, which times this same stop; a missing input
    # is one "error: ... Fix: ..." line, never a traceback (rank.py once raised a raw FileNotFoundError)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="cifar10", root=str(tmp_path / "missing"))
    params["iqa"]["autoencoder"]["patches_root"] = str(tmp_path / "missing")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, str(ROOT / "stages" / script), *STAGE_ARGS[script]],
                            cwd=tmp_path, capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "it/s]" not in line]
    assert result.returncode == 2, result.stderr[-2000:]
    # the experiments' inputs check names every missing input (here the dataset and the patch photographs), then stops
    assert "Traceback" not in result.stderr and len(lines) == (3 if script == "inputs.py" else 1), lines
    assert all(line.startswith("error: ") and "Fix:" in line for line in lines), lines
