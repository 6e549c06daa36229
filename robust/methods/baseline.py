"""Baseline classifiers: a registry model trained from scratch (or fine-tuned from local
weights) on the clean shards with the plain cross-entropy step of the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robust import engine
from robust.data.shards import read_info
from robust.engine import TrainParams
from robust.errors import ParamError
from robust.models import Classifier, create

SPEC_KEYS = ("arch", "pretrained", "train")


def model_spec(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``models.<name>`` entry of a params dict."""
    models = params.get("models") or {}
    if name not in models:
        raise ParamError(f"No model {name!r} in the models: section.", f"use one of: {', '.join(models) or '(none defined)'}.")
    return dict(models[name])


def build(spec: dict[str, Any], clean_dir: str | Path) -> Classifier:
    """The model a ``models.<name>`` entry describes, sized for the clean shards' classes and images.

    ``spec``: ``arch`` (a registry name), optional ``pretrained`` (local file or
    ``torchvision``), optional ``train`` (overrides of the ``train:`` section), and any
    other key as an option of the architecture (``width``...).
    """
    if "arch" not in spec:
        raise ParamError(f"The model entry {spec} has no 'arch'.", "give arch: <registry name> (robust models lists them).")
    info = read_info(Path(clean_dir) / "train")
    options = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    return create(spec["arch"], info["num_classes"], image_size=info["image_size"], pretrained=spec.get("pretrained"), **options)


def train_params(defaults: dict[str, Any], spec: dict[str, Any], name: str) -> TrainParams:
    """The ``train:`` defaults with the model's own ``train:`` overrides."""
    return TrainParams.from_dict({**defaults, **(spec.get("train") or {})}, section=f"models.{name}.train")


def train_baseline(name: str, spec: dict[str, Any], defaults: dict[str, Any], clean_dir: str | Path, out_dir: str | Path, log_dir: str | Path) -> dict[str, Any]:
    """Train ``models.<name>`` on clean train shards, validating on val; returns the history.

    The initial weights come from ``train.seed`` too, so a rerun gives the same model."""
    params = train_params(defaults, spec, name)
    engine.seed_everything(params.seed)
    model = build(spec, clean_dir)
    return engine.train(model, Path(clean_dir) / "train", out_dir, params, val_dir=Path(clean_dir) / "val", log_dir=log_dir, run_id=[name, spec])


def train_from_params(params: dict[str, Any], name: str, clean_dir: str | Path, models_dir: str | Path, logs_dir: str | Path) -> dict[str, Any]:
    """The ``train@<name>`` stage."""
    return train_baseline(name, model_spec(params, name), params.get("train") or {}, clean_dir, Path(models_dir) / name, Path(logs_dir) / name)
