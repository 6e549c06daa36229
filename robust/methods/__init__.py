"""The methods: one small module each, one registry, one runner on top of the engine.

Every ``train@<name>`` stage runs :func:`train_from_params`: it reads ``models.<name>``,
picks its ``method`` from :data:`METHODS`, merges the settings (see
:mod:`robust.methods.common`), lets the method build its :class:`~robust.methods.common.Run`
(model, what trains, loss step, hooks) and hands that to :func:`robust.engine.train`.
:func:`load_model` rebuilds the same model for ``evaluate@<name>``.

=============  ==========================================================================
method         what it is
=============  ==========================================================================
baseline       a classifier trained on clean data (``train:``)
finetune       a baseline's first L layers (or all) trained on a clean / distorted mix
deepcorrect    correction units on the top-ranked filters of a frozen baseline (seed 000)
noise          Gaussian / Gauss_mult / speckle noise augmentation (seed 004)
ant            adversarial noise training with a learned noise generator (seed 004)
vae            the VAE of backpropagated-gradient features, clean data only (seed 001)
ra             recognition-aware processing: a processor P before a frozen recogniser (seed 002)
corruption     fine-tuning on clean (_b) or corrupted (_c) training images (seed 003)
=============  ==========================================================================

A method module whose ``CLASSIFIER`` is False (``vae``) trains a model that is not a
classifier, and a module may decide per entry with ``is_classifier(settings)`` (``ra``: only
entries with ``benchmark: imagenet_c`` or ``all`` are leaderboard rows). Such models belong in
``study_models:`` (no ``evaluate@`` stage): the study's own stage reads them. A module may
narrow the test sets its entries are scored on with ``benchmark_distortions(settings, names)``
(``ra``, ``corruption``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

from robust import engine
from robust.engine import TrainParams
from robust.errors import ParamError
from robust.methods import ant, baseline, corruption, deepcorrect, finetune, noise, ra, vae
from robust.methods.common import ENTRY_KEYS, Context, Run, load_state, model_entries, trainable
from robust.models import Classifier

METHODS: dict[str, ModuleType] = {"baseline": baseline, "finetune": finetune, "deepcorrect": deepcorrect, "noise": noise, "ant": ant, "vae": vae, "ra": ra, "corruption": corruption}


def method_of(params: dict[str, Any], name: str) -> tuple[ModuleType | None, dict[str, Any]]:
    """The method module of ``models.<name>`` and its merged settings (``methods.<method>``
    overridden by the entry), without validating them."""
    spec = model_entries(params).get(name) or {}
    method = spec.get("method", "baseline")
    section = (params.get("methods") or {}).get(method) or {}
    return METHODS.get(method), merge_settings(section, {k: v for k, v in spec.items() if k not in ENTRY_KEYS})


def is_classifier(params: dict[str, Any], name: str) -> bool:
    """Whether ``models.<name>`` is scored by top-1 on the benchmark (every method but ``vae``,
    and ``ra`` entries only with ``benchmark``)."""
    module, settings = method_of(params, name)
    decide = getattr(module, "is_classifier", None)
    return bool(decide(settings)) if decide is not None else getattr(module, "CLASSIFIER", True)


def benchmark_distortions(params: dict[str, Any], name: str, names: list[str]) -> list[str]:
    """The distortions ``evaluate@<name>`` scores, of the configured ``names``: all, unless the
    method narrows them (``benchmark: imagenet_c`` of ``ra`` and ``corruption``: the 15 that
    mCE averages)."""
    module, settings = method_of(params, name)
    narrow = getattr(module, "benchmark_distortions", None)
    return narrow(settings, names) if narrow is not None else names


def merge_settings(section: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """An entry's settings over its method's section, mappings merged key by key (an entry's
    ``processor: {width: 16}`` keeps the section's other processor options)."""
    merged = dict(section)
    for key, value in overrides.items():
        merged[key] = merge_settings(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def context(params: dict[str, Any], name: str, clean_dir: str | Path) -> tuple[Context, ModuleType]:
    """The merged settings of ``models.<name>`` and its method module."""
    spec = baseline.model_spec(params, name)
    method_name = spec.get("method", "baseline")
    if method_name not in METHODS:
        raise ParamError(f"models.{name}.method is {method_name!r}.", f"use one of: {', '.join(METHODS)}.")
    if "start" not in spec:
        raise ParamError(f"models.{name} has no 'start'.", "give the DVC output it starts from (data/shards/clean for a baseline); dvc.yaml makes it a dependency.")
    method = METHODS[method_name]
    section = dict((params.get("methods") or {}).get(method_name) or {})
    overrides = {} if method_name == "baseline" else {k: v for k, v in spec.items() if k not in ENTRY_KEYS}
    settings = {k: v for k, v in merge_settings(section, overrides).items() if k != "train"}
    train = TrainParams.from_dict({**(params.get("train") or {}), **(section.get("train") or {}), **(spec.get("train") or {})}, section=f"models.{name}.train")
    if spec.get("replicate"):  # a training-seed replicate (robust.methods.common): the same run at another seed
        train = dataclasses.replace(train, seed=train.seed + spec["replicate"])
    return Context(name, spec, settings, params, Path(clean_dir), train), method


def setup(params: dict[str, Any], name: str, clean_dir: str | Path) -> tuple[Context, Run]:
    """The run of ``models.<name>`` before training (seeded, so the initial weights repeat)."""
    ctx, method = context(params, name, clean_dir)
    engine.seed_everything(ctx.train.seed)
    return ctx, method.setup(ctx)


def inputs_fingerprint(start: Path, clean_dir: Path) -> dict[str, Any]:
    """What a run trains from, for its checkpoint's fingerprint: the start file's sha256 (a
    base's weights, a ranking; a folder such as the clean shards is covered by the next) and
    the clean train / val shards' sha256s, so an interrupted run never resumes onto a changed
    base or changed data."""
    from robust.data.shards import read_info, sha256_file

    shards = {split: [s["sha256"] for s in read_info(clean_dir / split)["shards"]] for split in ("train", "val") if (clean_dir / split).is_dir()}
    return {"start": sha256_file(start) if start.is_file() else None, "shards": shards}


def train_from_params(params: dict[str, Any], name: str, clean_dir: str | Path, models_dir: str | Path, logs_dir: str | Path) -> dict[str, Any]:
    """The ``train@<name>`` stage: -> ``models_dir/<name>/model.pt``, DVCLive curves in ``logs_dir/<name>``."""
    ctx, run = setup(params, name, clean_dir)
    clean = Path(clean_dir)
    run_id = [name, ctx.spec, ctx.settings, inputs_fingerprint(ctx.start, clean)]
    if run.note:
        print(run.note, flush=True)
    data = run.train_data() if run.train_data is not None else clean / "train"
    history = engine.train(run.model, data, Path(models_dir) / name, ctx.train, val_dir=clean / "val", loss_fn=run.loss_fn,
                           parameters=run.parameters, log_dir=Path(logs_dir) / name, run_id=run_id, hooks=run.hooks,
                           validate=run.validate, keep_best=run.keep_best)
    return {**history, "trainable_params": trainable(run.parameters)}


def load_model(params: dict[str, Any], name: str, clean_dir: str | Path, weights: str | Path) -> tuple[Classifier, dict[str, int]]:
    """``models.<name>`` with its trained weights, and its parameter counts (total, trainable)."""
    _, run = setup(params, name, clean_dir)
    load_state(run.model, weights)
    counts = {"total": sum(p.numel() for p in run.model.parameters()), "trainable": trainable(run.parameters)}
    return run.model, counts
