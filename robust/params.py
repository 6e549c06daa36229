"""Typed, validated views of ``params.yaml`` sections.

Stage scripts load a section with :func:`load_section` and build a dataclass from it; the
library below never reads ``params.yaml`` itself. Every invalid value (unknown key, wrong
type, out of range) is a :class:`ParamError` naming the parameter and its allowed values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robust.errors import ParamError

SOURCES = ("builtin", "cifar10", "cifar100", "tinyimagenet", "imagefolder", "cure-tsr")


def load_section(path: str | Path, section: str) -> dict[str, Any]:
    """One top-level section of a params file, as a dict."""
    path = Path(path)
    if not path.is_file():
        raise ParamError(f"Parameter file {path} not found.", "run from the project root, where params.yaml is.")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamError(f"{path} is not valid YAML: {exc}.", "fix the YAML syntax.") from exc
    if section not in params or not isinstance(params[section], dict):
        raise ParamError(f"{path} has no '{section}:' section.", f"add a '{section}:' section (see the README).")
    return params[section]


def _check_keys(section: str, values: dict[str, Any], cls: type) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamError(
            f"Unknown parameter {section}.{unknown[0]}.",
            f"use one of: {', '.join(sorted(known))}.",
        )


def _require(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ParamError(f"Invalid {name}: {value!r}.", f"use {allowed}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DataParams:
    """The ``data:`` section: which dataset, how it is sized, sampled and stored."""

    source: str = "builtin"
    root: str | None = None
    image_size: int = 32
    resize_shorter: int | None = None
    resize_mode: str = "center-crop"
    train_size: int | None = 6000
    val_size: int | None = 1200
    test_size: int | None = 1200
    val_fraction: float = 0.1
    seed: int = 0
    workers: int = 2
    shard_size: int = 1000
    format: str = "png"
    jpg_quality: int = 85
    on_bad_image: str = "error"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataParams":
        _check_keys("data", values, cls)
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        _require(self.source in SOURCES, "data.source", self.source, " | ".join(SOURCES))
        if self.source != "builtin":
            _require(
                isinstance(self.root, str) and bool(self.root),
                "data.root",
                self.root,
                f"the path of the {self.source} dataset on this machine (data.source={self.source} reads local files only)",
            )
        _require(_is_int(self.image_size) and 8 <= self.image_size <= 1024, "data.image_size", self.image_size, "an integer from 8 to 1024")
        _require(
            self.resize_shorter is None or (_is_int(self.resize_shorter) and self.resize_shorter >= self.image_size),
            "data.resize_shorter",
            self.resize_shorter,
            "null (= image_size) or an integer >= data.image_size",
        )
        _require(self.resize_mode in ("center-crop", "stretch"), "data.resize_mode", self.resize_mode, "center-crop | stretch")
        for split in ("train", "val", "test"):
            size = getattr(self, f"{split}_size")
            if self.source == "builtin":
                _require(_is_int(size) and size >= 1, f"data.{split}_size", size, "a positive integer (the builtin source generates that many)")
            else:
                _require(size is None or (_is_int(size) and size >= 1), f"data.{split}_size", size, "null (all) or a positive integer")
        _require(
            isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1,
            "data.val_fraction",
            self.val_fraction,
            "a number between 0 and 1 (exclusive)",
        )
        _require(_is_int(self.seed) and self.seed >= 0, "data.seed", self.seed, "a non-negative integer")
        _require(_is_int(self.workers) and self.workers >= 1, "data.workers", self.workers, "an integer >= 1")
        _require(_is_int(self.shard_size) and self.shard_size >= 1, "data.shard_size", self.shard_size, "an integer >= 1")
        _require(self.format in ("png", "jpg"), "data.format", self.format, "png | jpg")
        _require(_is_int(self.jpg_quality) and 1 <= self.jpg_quality <= 100, "data.jpg_quality", self.jpg_quality, "an integer from 1 to 100")
        _require(self.on_bad_image in ("error", "skip"), "data.on_bad_image", self.on_bad_image, "error | skip")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CorruptParams:
    """The ``corrupt:`` section: which distortions get stages, which splits, how stored."""

    splits: tuple[str, ...] = ("test",)
    seed: int = 0
    format: str = "png"
    jpg_quality: int = 85
    workers: int = 2
    suites: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CorruptParams":
        _check_keys("corrupt", values, cls)
        values = dict(values)
        if "splits" in values:
            _require(isinstance(values["splits"], list), "corrupt.splits", values["splits"], "a list such as [test] or [val, test]")
            values["splits"] = tuple(values["splits"])
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        from robust.distortions import SUITES

        _require(bool(self.splits) and set(self.splits) <= {"train", "val", "test"}, "corrupt.splits", list(self.splits), "a non-empty list of train, val, test")
        _require(_is_int(self.seed) and self.seed >= 0, "corrupt.seed", self.seed, "a non-negative integer")
        _require(self.format in ("png", "jpg"), "corrupt.format", self.format, "png | jpg")
        _require(_is_int(self.jpg_quality) and 1 <= self.jpg_quality <= 100, "corrupt.jpg_quality", self.jpg_quality, "an integer from 1 to 100")
        _require(_is_int(self.workers) and self.workers >= 1, "corrupt.workers", self.workers, "an integer >= 1")
        _require(isinstance(self.suites, dict), "corrupt.suites", self.suites, "a mapping of suite name -> list of distortion names")
        for suite, names in self.suites.items():
            _require(suite in SUITES, "corrupt.suites", suite, f"suite names from {', '.join(SUITES)}")
            _require(isinstance(names, list), f"corrupt.suites.{suite}", names, "a list (empty to skip the suite)")
            for name in names:
                _require(name in SUITES[suite], f"corrupt.suites.{suite} entry", name, f"names of that suite: {', '.join(SUITES[suite])}")


@dataclass(frozen=True)
class TrainParams:
    """How a model is trained (one ``train:`` entry): optimiser, schedule, budget, device."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    step_size: int = 30
    gamma: float = 0.1
    augment: str = "flip-crop"
    label_smoothing: float = 0.0
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any], section: str = "train") -> "TrainParams":
        _check_keys(section, values, cls)
        params = cls(**values)
        params.validate(section)
        return params

    def validate(self, section: str = "train") -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            _require(_is_int(value) and value >= minimum, f"{section}.{name}", value, f"an integer >= {minimum}")

        positive_int("epochs")
        positive_int("batch_size")
        positive_int("step_size")
        positive_int("workers", 0)
        positive_int("seed", 0)
        _require(self.optimizer in ("sgd", "adam"), f"{section}.optimizer", self.optimizer, "sgd | adam")
        _require(self.schedule in ("cosine", "step", "constant"), f"{section}.schedule", self.schedule, "cosine | step | constant")
        _require(self.augment in ("flip-crop", "flip", "none"), f"{section}.augment", self.augment, "flip-crop | flip | none")
        _require(self.device == "auto" or self.device.startswith(("cpu", "cuda")), f"{section}.device", self.device, "auto | cpu | cuda | cuda:N")
        for name in ("lr", "momentum", "weight_decay", "gamma", "label_smoothing"):
            value = getattr(self, name)
            _require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, f"{section}.{name}", value, "a number >= 0")
        _require(self.lr > 0, f"{section}.lr", self.lr, "a number > 0")


@dataclass(frozen=True)
class EvaluateParams:
    """The ``evaluate:`` section: how models are scored and what CE divides by."""

    normaliser: str | None = "alexnet_small"
    baseline: str = "pipeline"
    batch_size: int = 500
    workers: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EvaluateParams":
        _check_keys("evaluate", values, cls)
        params = cls(**values)
        _require(params.baseline in ("pipeline", "alexnet-imagenet-c"), "evaluate.baseline", params.baseline,
                 "pipeline (the normaliser model) | alexnet-imagenet-c (published AlexNet errors, for real ImageNet-C data)")
        _require(params.normaliser is None or isinstance(params.normaliser, str), "evaluate.normaliser", params.normaliser, "a key of models: or null")
        _require(_is_int(params.batch_size) and params.batch_size >= 1, "evaluate.batch_size", params.batch_size, "an integer >= 1")
        _require(_is_int(params.workers) and params.workers >= 0, "evaluate.workers", params.workers, "an integer >= 0")
        return params
