"""Caltech-101 and Caltech-256 as they ship (seed 000's other datasets).

```
101_ObjectCategories/<class>/image_0001.jpg      102 folders, BACKGROUND_Google included
256_ObjectCategories/NNN.<name>/NNN_0001.jpg     257 folders, 257.clutter included
```
``data.root`` is that folder or the one holding it. Class names are the folder names,
sorted (``BACKGROUND_Google`` / ``257.clutter`` are classes unless listed in
``data.exclude_classes``). Neither dataset has an official split, so the field's protocol
is used: a seeded, class-stratified draw of ``data.train_per_class`` images per class (30
for Caltech-101) is the train split and every other image of the class is the test split.
As for every source without a val split, ``prepare`` then holds ``data.val_fraction`` of
train out as val (set it small, e.g. 0.001, to train on all 30 images per class).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from robust.data.sources.base import FileSource, Record, list_images, require_dir
from robust.errors import DataError


class CaltechSource(FileSource):
    """Caltech-101 (``variant`` 101) or Caltech-256 (256) with a seeded per-class split."""

    def __init__(self, root: str | Path, variant: int, train_per_class: int = 30, exclude: tuple[str, ...] = (), seed: int = 0) -> None:
        folder = f"{variant}_ObjectCategories"
        fix = f"point data.root at the extracted {folder}/ folder (one sub-folder of .jpg images per class) or the folder holding it."
        root = Path(root)
        if root.is_dir() and (root / folder).is_dir():
            root = root / folder
        super().__init__(root)
        require_dir(self.root, f"Caltech-{variant} folder (data.root)", fix)
        self.name, self.variant, self.train_per_class, self.seed, self.exclude = f"caltech{variant}", variant, train_per_class, seed, tuple(exclude)
        present = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not present:
            raise DataError(f"{self.root} holds no class folder.", fix)
        unknown = sorted(set(exclude) - set(present))
        if unknown:
            raise DataError(f"data.exclude_classes names {', '.join(unknown)}, which {self.root} does not have.",
                            f"use folder names as they are on disk (e.g. {present[0]}).")
        self._classes = [c for c in present if c not in set(exclude)]

    @property
    def classes(self) -> list[str]:
        return self._classes

    def splits(self) -> dict[str, list[Record]]:
        train: list[Record] = []
        test: list[Record] = []
        for label, name in enumerate(self._classes):
            files = list_images(self.root / name)
            if len(files) <= self.train_per_class:
                raise DataError(f"{self.root / name} has {len(files)} images, not more than data.train_per_class = {self.train_per_class}, so none is left to test on.",
                                f"lower data.train_per_class, or list {name} in data.exclude_classes.")
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])  # per class: one class's split does not depend on the others
            chosen = set(rng.permutation(len(files))[: self.train_per_class].tolist())
            for i, path in enumerate(files):
                (train if i in chosen else test).append(self.file_record(path, label))
        return {"train": train, "test": test}

    def provenance(self) -> dict[str, object]:
        return {**super().provenance(), "train_per_class": self.train_per_class, "split_seed": self.seed, "classes": len(self._classes),
                "excluded": list(self.exclude)}
