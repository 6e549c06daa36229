"""Scoring one model on the clean test split and every built distorted copy of it.

The result (``metrics/eval/<model>.json``) holds, in fractions:

* ``clean``: top-1 / top-5 accuracy and top-1 error;
* ``distortions.<name>``: per level top-1 / top-5, and the means over levels;
* ``mean_corruption_error``: mean top-1 error over the common ImageNet-C corruptions x
  severities present (the CIFAR-C convention, no normaliser);
* ``imagenet_c_top1``: mean top-1 over the same (seed 004's "ImageNet-C top-1");
* ``deepcorrect``: for ``dc_blur`` / ``dc_awgn``, the mean top-1 over clean + every level
  (7 values, the seed's "averaged over all levels");
* ``published_alexnet`` (only with ``baseline: alexnet-imagenet-c``, i.e. real ImageNet-C
  data): CE / mCE / relative mCE against AlexNet's published errors;
* ``constants``: per distortion, the ImageNet-C constants table its shards were made with
  (``imagenet`` / ``tinyimagenet`` / ``cifar``), ``released`` for a released set, None for the
  project's own distortions; ``num_classes`` and per-level ``n`` (for chance-level checks).

``baseline: alexnet-imagenet-c`` compares with errors measured on ImageNet-C itself, so it is
refused (:func:`imagenet_c_mismatch`) unless the data are ImageNet-C-like: 224 px images, the
ImageNet-C corruptions made with the ``imagenet`` constants and stored as JPEG quality 85, or
the released ImageNet-C files. ``evaluate.force_baseline: true`` compares anyway, with a
warning in the log and in the result.

CE / mCE against the pipeline's own AlexNet need that model's errors too, so the ``report``
stage computes them from every model's file (``metrics/summary.json``).

Beside the JSON the stage keeps each test image's top-1 correctness per test set
(``data/eval/<model>/correct.npz``: key ``clean`` or ``<distortion>@<level>``, bool arrays in
the shards' order), a DVC output rather than a metric: the report resamples it for paired
bootstrap intervals (:mod:`robust.evaluation.bootstrap`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robust.data.shards import built_levels, read_info, write_json  # noqa: F401 -- built_levels: used here and re-exported
from robust.distortions import IMAGENET_C, SUITES, configured_names
from robust.engine import evaluate, inference_model, init_distributed, pick_device
from robust.methods import benchmark_distortions, is_classifier, load_model
from robust.evaluation.metrics import ALEXNET_IMAGENET_C, mce_report
from robust.errors import ParamError
from robust.params import Section, is_int, require

IMAGENET_C_SIZE = 224  # ImageNet-C's images: 224 x 224 centre crops
IMAGENET_C_QUALITY = 85  # ... stored as JPEG quality 85


@dataclass(frozen=True)
class EvaluateParams(Section):
    """The ``evaluate:`` section: how models are scored and what CE divides by."""

    normaliser: str | None = "alexnet_small"
    suites: tuple[str, ...] = ("imagenet_c", "deepcorrect", "cure_tsr")  # of corrupt.suites: what classifiers are scored on
    baseline: str = "pipeline"
    force_baseline: bool = False
    control: str | None = None  # the models: entry trained like the methods on clean data only
    bootstrap: int = 1000  # paired bootstrap resamples over test images for the report's intervals (0: none)
    bootstrap_seed: int = 0
    batch_size: int = 128
    workers: int = 0
    device: str = "auto"
    amp: bool = False

    section: ClassVar[str] = "evaluate"
    tuple_fields: ClassVar[tuple[str, ...]] = ("suites",)

    def validate(self, section: str = "evaluate") -> None:
        require(isinstance(self.suites, tuple) and set(self.suites) <= set(SUITES), f"{section}.suites", self.suites,
                f"a list of suites of corrupt.suites ({', '.join(SUITES)})")
        require(self.baseline in ("pipeline", "alexnet-imagenet-c"), f"{section}.baseline", self.baseline,
                "pipeline (the normaliser model) | alexnet-imagenet-c (published AlexNet errors, for real ImageNet-C data)")
        require(isinstance(self.force_baseline, bool), f"{section}.force_baseline", self.force_baseline,
                "false (refuse alexnet-imagenet-c on data unlike ImageNet-C) | true (compare anyway, with a warning)")
        require(self.normaliser is None or isinstance(self.normaliser, str), f"{section}.normaliser", self.normaliser, "a key of models: or null")
        require(self.control is None or isinstance(self.control, str), f"{section}.control", self.control, "a key of models: or null")
        require(is_int(self.bootstrap) and (self.bootstrap == 0 or self.bootstrap >= 100), f"{section}.bootstrap", self.bootstrap,
                "0 (no intervals) or an integer >= 100 (1000 is the usual)")
        require(is_int(self.bootstrap_seed) and self.bootstrap_seed >= 0, f"{section}.bootstrap_seed", self.bootstrap_seed, "a non-negative integer")
        require(is_int(self.batch_size) and self.batch_size >= 1, f"{section}.batch_size", self.batch_size, "an integer >= 1")
        require(is_int(self.workers) and self.workers >= 0, f"{section}.workers", self.workers, "an integer >= 0")
        require(isinstance(self.amp, bool), f"{section}.amp", self.amp, "true (bf16 autocast on CUDA) | false (float32, comparable with the CPU)")


def level_constants(info: dict[str, Any]) -> str | None:
    """The constants table a distorted test set was made with, from its ``info.json``:
    ``imagenet`` / ``tinyimagenet`` / ``cifar``, ``released`` for a released set, None for
    the project's own distortions."""
    if "released" in info:
        return "released"
    return (info.get("distortion") or {}).get("constants")


def imagenet_c_mismatch(clean_info: dict[str, Any], level_infos: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Why the data are not ImageNet-C-like (empty when they are): what the published
    AlexNet errors were measured on is 224 px images, the 19 corruptions with the ImageNet
    constants, stored as JPEG quality 85 (or the released ImageNet-C files themselves)."""
    problems = []
    if clean_info.get("image_size") != IMAGENET_C_SIZE:
        problems.append(f"the images are {clean_info.get('image_size')} px, not {IMAGENET_C_SIZE}")
    for name, infos in level_infos.items():
        for info in infos:
            level = (info.get("distortion") or {}).get("level")
            if "released" in info:
                if info["released"].get("layout") != "imagenet-c" or info.get("source") == "tinyimagenet":
                    problems.append(f"{name} level {level} is a released {info.get('source')} set, not ImageNet-C")
                    break
                continue
            constants = level_constants(info)
            if constants != "imagenet":
                problems.append(f"{name} was made with the {constants} constants, not imagenet (corrupt.constants)")
                break
            quality = (info.get("params") or {}).get("jpg_quality")
            if info.get("format") != "jpg" or quality != IMAGENET_C_QUALITY:
                problems.append(f"{name} is stored as {info.get('format')}" + (f" q{quality}" if info.get("format") == "jpg" else "")
                                + f", not JPEG q{IMAGENET_C_QUALITY} (corrupt.format, corrupt.jpg_quality)")
                break
    return problems


def evaluate_model(
    model: nn.Module,
    clean_dir: str | Path,
    corrupt_root: str | Path,
    distortions: list[str],
    *,
    split: str = "test",
    batch_size: int = 256,
    workers: int = 0,
    device: torch.device | None = None,
    baseline: str = "pipeline",
    force_baseline: bool = False,
    amp: bool = False,
    correct: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Accuracy on the clean split and on every built level of ``distortions`` (see module doc);
    a ``correct`` dict is filled with each test set's per-image top-1 correctness
    (``clean``, ``<distortion>@<level>``)."""
    corrupt_root = Path(corrupt_root)
    clean_info = read_info(Path(clean_dir) / split)
    jobs = [(name, level) for name in distortions for level in built_levels(corrupt_root, name, split)]
    infos = {job: read_info(corrupt_root / job[0] / str(job[1]) / split) for job in jobs}
    mismatch = []
    if baseline == "alexnet-imagenet-c":
        published = {name: [infos[(n, lv)] for n, lv in jobs if n == name] for name in ALEXNET_IMAGENET_C["corruptions"]}
        mismatch = imagenet_c_mismatch(clean_info, {name: levels for name, levels in published.items() if levels})
        if mismatch and not force_baseline:
            raise ParamError(
                "evaluate.baseline: alexnet-imagenet-c compares with AlexNet's errors on ImageNet-C, but these data are not "
                f"ImageNet-C-like: {'; '.join(mismatch)}.",
                "use evaluate.baseline: pipeline (the pipeline's own normaliser model), or build ImageNet-C-like data "
                "(224 px, corrupt.constants: imagenet, corrupt.format: jpg, jpg_quality: 85, or corrupt.source: released), "
                "or set evaluate.force_baseline: true to compare anyway with a warning.",
            )
        if mismatch:
            warnings.warn(f"evaluate.force_baseline: comparing with ImageNet-C's published AlexNet errors on other data: {'; '.join(mismatch)}", stacklevel=2)
    model = inference_model(model, device)  # prepared once for every test set
    keep = correct is not None
    clean = evaluate(model, Path(clean_dir) / split, batch_size=batch_size, workers=workers, device=device, desc=False, amp=amp, per_image=keep,
                     distributed=True)
    if correct is not None:
        correct["clean"] = clean["correct"]
    result: dict[str, Any] = {"split": split, "n": clean["n"], "num_classes": clean_info["num_classes"],
                              "clean": {"top1": clean["top1"], "top5": clean["top5"], "error": 1 - clean["top1"]}}
    per: dict[str, dict[str, Any]] = {}
    for name, level in tqdm(jobs, desc="evaluate", unit="set", disable=None):
        scores = evaluate(model, corrupt_root / name / str(level) / split, batch_size=batch_size, workers=workers, device=device, desc=False,
                          amp=amp, per_image=keep, distributed=True)
        if correct is not None:
            correct[f"{name}@{level}"] = scores["correct"]
        entry = per.setdefault(name, {"constants": level_constants(infos[(name, level)]), "levels": {}})
        entry["levels"][str(level)] = {"top1": scores["top1"], "top5": scores["top5"], "n": scores["n"]}
    for name, entry in per.items():
        top1 = [v["top1"] for v in entry["levels"].values()]
        entry["mean_top1"] = sum(top1) / len(top1)
        entry["mean_top5"] = sum(v["top5"] for v in entry["levels"].values()) / len(top1)
        entry["mean_error"] = 1 - entry["mean_top1"]
    result["distortions"] = per
    result["constants"] = {name: entry["constants"] for name, entry in per.items()}
    common = [n for n in IMAGENET_C if n in per]
    if common:
        result["imagenet_c_top1"] = sum(per[n]["mean_top1"] for n in common) / len(common)
        result["mean_corruption_error"] = 1 - result["imagenet_c_top1"]
    result["deepcorrect"] = {
        name: (clean["top1"] + sum(v["top1"] for v in per[name]["levels"].values())) / (1 + len(per[name]["levels"]))
        for name in ("dc_blur", "dc_awgn")
        if name in per
    }
    if baseline == "alexnet-imagenet-c":
        result["published_alexnet"] = mce_report(errors_of(result), ALEXNET_IMAGENET_C)
        if mismatch:
            result["published_alexnet"]["warning"] = "forced on data unlike ImageNet-C: " + "; ".join(mismatch)
    return result


def errors_of(result: dict[str, Any], names: list[str] | None = None) -> dict[str, Any]:
    """The ``robust mce`` input (clean error, per-severity errors) from an evaluation result:
    the distortions in ``names``, or by default those with published AlexNet errors."""
    corruptions = {}
    for name, entry in result.get("distortions", {}).items():
        if name in (names if names is not None else ALEXNET_IMAGENET_C["corruptions"]):
            levels = sorted(entry["levels"], key=int)
            corruptions[name] = [1 - entry["levels"][lv]["top1"] for lv in levels]
    return {"clean": result["clean"]["error"], "corruptions": corruptions}


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Named arrays to ``path`` (.npz, compressed), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def save_correct(path: Path, correct: dict[str, np.ndarray]) -> None:
    """Per-image correctness (test set -> bool array) to ``path`` (.npz), atomically."""
    save_arrays(path, {key: np.asarray(value, dtype=bool) for key, value in correct.items()})


def load_correct(path: Path) -> dict[str, np.ndarray]:
    """What :func:`save_correct` wrote."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def evaluate_from_params(params: dict[str, Any], name: str, clean: str | Path, corrupt_root: str | Path, models_dir: str | Path, out_dir: str | Path,
                         correct_dir: str | Path | None = None) -> dict[str, Any]:
    """The ``evaluate@<name>`` stage: the trained model on clean + every distortion of the
    selected suites -> ``out_dir/<name>.json`` (and ``correct_dir/<name>/correct.npz``)."""
    settings = EvaluateParams.from_dict(params.get("evaluate"))
    if name not in (params.get("models") or {}) or not is_classifier(params, name):
        raise ParamError(f"{name} is not a leaderboard classifier of models: (a study model, or an ra entry without benchmark), so it has no evaluation.",
                         "score classifiers only; put models that a study's own stage reads in study_models: (an ra entry needs benchmark: imagenet_c to be a row).")
    model, counts = load_model(params, name, clean, Path(models_dir) / name / "model.pt")
    device = pick_device(settings.device)
    names = benchmark_distortions(params, name, configured_names(params, settings.suites))
    rank, _ = init_distributed(device)  # under torchrun: each rank scores its shards, counts are summed
    model.to(device)
    correct: dict[str, np.ndarray] | None = {} if correct_dir is not None else None
    result = {"model": name, "parameters": counts, **evaluate_model(model, clean, corrupt_root, names, batch_size=settings.batch_size,
                                              workers=settings.workers, device=device, baseline=settings.baseline,
                                              force_baseline=settings.force_baseline, amp=settings.amp, correct=correct)}
    if rank == 0:
        if correct_dir is not None and correct is not None:
            save_correct(Path(correct_dir) / name / "correct.npz", correct)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_json(Path(out_dir) / f"{name}.json", result)
    return result
