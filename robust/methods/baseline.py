"""Baseline classifiers: a registry model trained from scratch (or fine-tuned from local
weights) on the clean shards with the plain cross-entropy step of the engine.

A baseline's ``models.<name>`` entry holds ``arch`` (a registry name), optional
``pretrained`` (a local file or ``torchvision``) and any other key as an option of the
architecture (``width``...); ``method: baseline`` and ``start`` (the clean shards) as
every entry does (see :mod:`robust.methods`).
"""

from __future__ import annotations

from typing import Any

from robust.errors import ParamError
from robust.methods.common import Context, Run, build, model_entries, replicate_parent


def model_spec(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The entry ``name`` of ``models:`` or ``study_models:`` (replicates checked against their entry)."""
    models = model_entries(params)
    if name not in models:
        raise ParamError(f"No model {name!r} in the models: or study_models: sections.", f"use one of: {', '.join(models) or '(none defined)'}.")
    replicate_parent(name, models[name], models)
    return dict(models[name])


def setup(ctx: Context) -> Run:
    """Every parameter trains, with the engine's cross-entropy step."""
    model = build(ctx.spec, ctx.clean_dir)
    return Run(model, list(model.parameters()))
