"""Reading ``params.yaml``: the shared validation helpers and the ``data:`` section.

Each other section is a :class:`Section` dataclass beside the code that uses it
(``corrupt:`` in :mod:`robust.distortions.corrupt`, ``train:`` in :mod:`robust.engine`, ``evaluate:`` in
:mod:`robust.evaluation.scoring`), so a stage depends only on the parameters code it runs. Stage
scripts read the file with :func:`load_params` / :func:`load_section`; the library below never
opens ``params.yaml`` itself. Every invalid value (unknown key, wrong type, out of range) is a
:class:`ParamError` naming the parameter and its allowed values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from robust.errors import ParamError

SOURCES = ("builtin", "cifar10", "cifar100", "tinyimagenet", "imagefolder", "cure-tsr", "caltech101", "caltech256", "sun397")


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


def load_params(path: str | Path) -> dict[str, Any]:
    """The whole params file; each stage validates the sections it uses."""
    load_section(path, "data")  # existence and YAML syntax, with the usual clear errors
    return yaml.safe_load(Path(path).read_text()) or {}


def _check_keys(section: str, values: dict[str, Any], cls: type) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamError(
            f"Unknown parameter {section}.{unknown[0]}.",
            f"use one of: {', '.join(sorted(known))}.",
        )


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """A :class:`ParamError` naming parameter ``name`` and its ``allowed`` values unless ``ok``."""
    if not ok:
        raise ParamError(f"Invalid {name}: {value!r}.", f"use {allowed}.")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Section:
    """Base of the params sections (frozen dataclasses): ``from_dict`` rejects unknown keys,
    builds the dataclass and runs ``validate``, so every bad value is one clear error."""

    section: ClassVar[str] = ""
    tuple_fields: ClassVar[tuple[str, ...]] = ()  # fields whose YAML list becomes a tuple (frozen, hashable)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, section: str | None = None):  # type: ignore[no-untyped-def]
        section = section or cls.section
        values = {} if values is None else values
        require(isinstance(values, dict), section, values, "a mapping of parameter names to values")
        _check_keys(section, values, cls)
        params = cls(**cls.convert(dict(values)))
        params.validate(section)
        return params

    @classmethod
    def convert(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Turn YAML values into field types before construction: the lists of ``tuple_fields`` into tuples."""
        return {k: tuple(v) if k in cls.tuple_fields and isinstance(v, list) else v for k, v in values.items()}

    def validate(self, section: str) -> None:
        """Raise :class:`ParamError` for an invalid value."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class DataParams(Section):
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
    shard_size: int = 300
    format: str = "png"
    jpg_quality: int = 85
    on_bad_image: str = "error"
    train_per_class: int = 30  # caltech101 / caltech256 (no official split): training images per class, the rest is test
    exclude_classes: tuple[str, ...] = ()  # caltech101 / caltech256 / sun397: class folders left out (e.g. BACKGROUND_Google, 257.clutter)
    partition: int = 1  # sun397: the official Training_0N / Testing_0N lists (1-10)

    section: ClassVar[str] = "data"
    tuple_fields: ClassVar[tuple[str, ...]] = ("exclude_classes",)

    def validate(self, section: str = "data") -> None:
        require(self.source in SOURCES, "data.source", self.source, " | ".join(SOURCES))
        if self.source != "builtin":
            require(
                isinstance(self.root, str) and bool(self.root),
                "data.root",
                self.root,
                f"the path of the {self.source} dataset on this machine (data.source={self.source} reads local files only)",
            )
        require(is_int(self.image_size) and 8 <= self.image_size <= 1024, "data.image_size", self.image_size, "an integer from 8 to 1024")
        require(
            self.resize_shorter is None or (is_int(self.resize_shorter) and self.resize_shorter >= self.image_size),
            "data.resize_shorter",
            self.resize_shorter,
            "null (= image_size) or an integer >= data.image_size",
        )
        require(self.resize_mode in ("center-crop", "stretch"), "data.resize_mode", self.resize_mode, "center-crop | stretch")
        for split in ("train", "val", "test"):
            size = getattr(self, f"{split}_size")
            if self.source == "builtin":
                require(is_int(size) and size >= 1, f"data.{split}_size", size, "a positive integer (the builtin source generates that many)")
            else:
                require(size is None or (is_int(size) and size >= 1), f"data.{split}_size", size, "null (all) or a positive integer")
        require(
            isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1,
            "data.val_fraction",
            self.val_fraction,
            "a number between 0 and 1 (exclusive)",
        )
        require(is_int(self.seed) and self.seed >= 0, "data.seed", self.seed, "a non-negative integer")
        require(is_int(self.workers) and self.workers >= 1, "data.workers", self.workers, "an integer >= 1")
        require(is_int(self.shard_size) and self.shard_size >= 1, "data.shard_size", self.shard_size, "an integer >= 1")
        require(self.format in ("png", "jpg"), "data.format", self.format, "png | jpg")
        require(is_int(self.jpg_quality) and 1 <= self.jpg_quality <= 100, "data.jpg_quality", self.jpg_quality, "an integer from 1 to 100")
        require(self.on_bad_image in ("error", "skip"), "data.on_bad_image", self.on_bad_image, "error | skip")
        require(is_int(self.train_per_class) and self.train_per_class >= 1, "data.train_per_class", self.train_per_class, "an integer >= 1")
        require(isinstance(self.exclude_classes, tuple) and all(isinstance(c, str) for c in self.exclude_classes),
                "data.exclude_classes", self.exclude_classes, "a list of class folder names")
        require(is_int(self.partition) and 1 <= self.partition <= 10, "data.partition", self.partition, "an integer from 1 to 10 (SUN397's ten partitions)")
