"""The registry of dataset sources: ``data.source`` name -> reader of that on-disk format."""

from __future__ import annotations

from collections.abc import Callable

from robust.data.sources.base import NATIVE_SPLITS, Record, Source
from robust.data.sources.builtin import BuiltinSource
from robust.data.sources.caltech import CaltechSource
from robust.data.sources.cifar import CifarSource
from robust.data.sources.curetsr import CureTsrSource
from robust.data.sources.imagefolder import ImageFolderSource
from robust.data.sources.sun397 import Sun397Source
from robust.data.sources.tinyimagenet import TinyImageNetSource
from robust.errors import ParamError
from robust.params import DataParams

#: name -> factory(params) -> Source
SOURCES: dict[str, Callable[[DataParams], Source]] = {
    "builtin": lambda p: BuiltinSource(
        {"train": p.train_size, "val": p.val_size, "test": p.test_size}, image_size=p.image_size, seed=p.seed  # type: ignore[dict-item]
    ),
    "cifar10": lambda p: CifarSource(p.root, "cifar10"),  # type: ignore[arg-type]
    "cifar100": lambda p: CifarSource(p.root, "cifar100"),  # type: ignore[arg-type]
    "tinyimagenet": lambda p: TinyImageNetSource(p.root),  # type: ignore[arg-type]
    "imagefolder": lambda p: ImageFolderSource(p.root),  # type: ignore[arg-type]
    "cure-tsr": lambda p: CureTsrSource(p.root),  # type: ignore[arg-type]
    "caltech101": lambda p: CaltechSource(p.root, 101, p.train_per_class, p.exclude_classes, p.seed),  # type: ignore[arg-type]
    "caltech256": lambda p: CaltechSource(p.root, 256, p.train_per_class, p.exclude_classes, p.seed),  # type: ignore[arg-type]
    "sun397": lambda p: Sun397Source(p.root, p.partition, p.exclude_classes),  # type: ignore[arg-type]
}


def create_source(params: DataParams) -> Source:
    """The source named by ``params.source``, opened on ``params.root``."""
    if params.source not in SOURCES:
        raise ParamError(f"Unknown data.source {params.source!r}.", f"use one of: {', '.join(SOURCES)}.")
    return SOURCES[params.source](params)


__all__ = ["NATIVE_SPLITS", "SOURCES", "Record", "Source", "create_source"]
