"""Baseline classifiers: a registry model trained from scratch (or fine-tuned from local
weights) on the clean shards with the plain cross-entropy step of the engine.

A baseline's ``models.<name>`` entry holds ``arch`` (a registry name), optional
``pretrained`` (a local file or ``torchvision``) and any other key as an option of the
architecture (``width``...); ``method: baseline`` and ``start`` (the clean shards) as
every entry does (see :mod:`robust.methods`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robust.data.shards import read_info
from robust.errors import ParamError
from robust.methods.common import Context, Run
from robust.models import Classifier, create

SPEC_KEYS = ("arch", "pretrained", "train", "method", "start")


def model_spec(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``models.<name>`` entry of a params dict."""
    models = params.get("models") or {}
    if name not in models:
        raise ParamError(f"No model {name!r} in the models: section.", f"use one of: {', '.join(models) or '(none defined)'}.")
    return dict(models[name])


def build(spec: dict[str, Any], clean_dir: str | Path) -> Classifier:
    """The network a baseline entry describes, sized for the clean shards' classes and images."""
    if "arch" not in spec:
        raise ParamError(f"The model entry {spec} has no 'arch'.", "give arch: <registry name> (robust models lists them).")
    info = read_info(Path(clean_dir) / "train")
    options = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    return create(spec["arch"], info["num_classes"], image_size=info["image_size"], pretrained=spec.get("pretrained"), **options)


def setup(ctx: Context) -> Run:
    """Every parameter trains, with the engine's cross-entropy step."""
    model = build(ctx.spec, ctx.clean_dir)
    return Run(model, list(model.parameters()))
