"""What every dataset source provides: class names, labelled records per split, a loader."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robust.errors import BadImageError, DataError

#: The split names a source may provide natively. ``prepare`` maps them onto the
#: pipeline's train / val / test (see :func:`robust.data.prepare.assign_splits`).
NATIVE_SPLITS = ("train", "val", "test")

_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]")


def safe_key(text: str) -> str:
    """A webdataset ``__key__`` made from ``text``: webdataset cuts keys at the first dot,
    so dots, slashes and other characters become ``_``."""
    return _KEY_BAD.sub("_", text)


@dataclass(frozen=True)
class Record:
    """One labelled sample of a source, not yet loaded.

    ``key`` is unique within the source and stable across runs (it becomes the shard
    ``__key__`` and pairs clean with corrupted copies); ``ref`` is what :meth:`Source.load`
    needs (a path, an array index); ``meta`` is provenance written to the sample's json.
    """

    key: str
    label: int
    ref: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Source(ABC):
    """A dataset in its own on-disk format.

    Sources are picklable (they travel to worker processes) and do no image work in
    ``__init__`` beyond listing files, so listing a huge dataset stays cheap.
    """

    #: registry name, as typed in ``data.source``
    name: str = ""
    #: the source's own image size when every image has it (CIFAR 32, Tiny ImageNet 64)
    native_size: int | None = None

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """Class names, index = label."""

    @abstractmethod
    def splits(self) -> dict[str, list[Record]]:
        """The labelled native splits present (subset of ``NATIVE_SPLITS``), in a fixed order."""

    @abstractmethod
    def load(self, record: Record) -> np.ndarray | Image.Image:
        """The record's image; raises :class:`DataError` when it cannot be read."""

    def provenance(self) -> dict[str, Any]:
        """What identifies the source's content, written into ``info.json``."""
        return {"source": self.name}


def require_dir(path: Path, what: str, fix: str) -> Path:
    """``path`` if it is a directory, else a :class:`DataError` naming ``what`` and ``fix``."""
    if not path.is_dir():
        raise DataError(f"{what} not found: {path} does not exist or is not a folder.", fix)
    return path


def open_image_file(path: Path) -> Image.Image:
    """Decode an image file fully to RGB, or raise :class:`DataError` naming the file.

    ``Image.open`` is lazy; ``load()`` forces a full decode so a truncated file fails
    here, not later inside a worker.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(
            f"Unreadable or truncated image {path}: {exc}.",
            "replace or delete the file, or set data.on_bad_image: skip to leave it out (it is counted in info.json).",
        ) from exc


#: file endings read as images by the folder-based sources (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (a fixed order on every machine)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class FileSource(Source):
    """A source whose samples are image files under ``self.root``; ``Record.ref`` is the
    path relative to the root, which is also the sample's key and provenance."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def file_record(self, path: Path, label: int, **meta: Any) -> Record:
        relative = path.relative_to(self.root).as_posix()
        return Record(key=safe_key(relative.rsplit(".", 1)[0]), label=label, ref=relative, meta={"file": relative, **meta})

    def load(self, record: Record) -> Image.Image:
        return open_image_file(self.root / record.ref)

    def provenance(self) -> dict[str, Any]:
        return {"source": self.name, "root": str(self.root)}
