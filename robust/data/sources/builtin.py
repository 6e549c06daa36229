"""The embedded default dataset: textures cut from photographs that ship inside
scikit-image and scikit-learn, so ``dvc repro`` runs with no download.

How a sample is made (all randomness from ``numpy.random.default_rng([seed, split, index])``,
so every sample is reproducible on its own, in any process):

1. Class ``index % n_classes`` names one photograph (``PHOTOS``, 12 of them). The photo is
   turned into luminance (ITU-R 601 weights), so colour carries no class information.
2. Each photo is cut into a 4x4 grid of cells. A fixed permutation (seeded by ``seed`` and
   the class) gives 12 cells to train, 2 to val and 2 to test, so the three splits come
   from disjoint parts of every photo and the test set is never a re-crop of training
   pixels.
3. A square crop (re-drawn while it is nearly flat, see ``MIN_TEXTURE``) of side 50-100 % of the cell's shorter side is taken at a random place
   inside one of the split's cells, rotated by a multiple of 90 degrees, maybe mirrored,
   and resized to ``image_size`` (PIL bilinear, antialiased).
4. Contrast x0.6-1.4 and brightness +-0.15, then a random duotone: dark pixels map to a
   random dark colour, bright ones to a random light colour.

The task is "which photograph does this texture patch come from". It is learnable from
fine structure (brick courses, gravel grain, grass blades, fur, petals, text-free
photographs only) and, because colour and global brightness are randomised, a classifier
has to rely on exactly the detail that blur and noise destroy.
"""

from __future__ import annotations

import hashlib
import io
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from robust.data.sources.base import Record, Source
from robust.errors import DataError

#: class name -> (package, file inside the package)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage.data", "astronaut.png"),
    "brick": ("skimage.data", "brick.png"),
    "camera": ("skimage.data", "camera.png"),
    "cat": ("skimage.data", "chelsea.png"),
    "coffee": ("skimage.data", "coffee.png"),
    "coins": ("skimage.data", "coins.png"),
    "grass": ("skimage.data", "grass.png"),
    "gravel": ("skimage.data", "gravel.png"),
    "moon": ("skimage.data", "moon.png"),
    "rocket": ("skimage.data", "rocket.jpg"),
    "china": ("sklearn.datasets.images", "china.jpg"),
    "flower": ("sklearn.datasets.images", "flower.jpg"),
}

GRID = 4
#: how many of the GRID*GRID cells each split draws from
CELLS = {"train": 12, "val": 2, "test": 2}
#: a crop whose luminance std is below this is flat (sky, wall) and is drawn again,
#: at most MAX_DRAWS times (the last draw is kept), so few samples are unclassifiable
MIN_TEXTURE = 0.05
MAX_DRAWS = 10
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _photo_bytes(package: str, filename: str) -> bytes:
    try:
        return resources.files(package).joinpath(filename).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DataError(
            f"The embedded dataset needs {filename} from the installed package {package}, which is missing ({exc}).",
            "reinstall the project (pip install -e .), which installs scikit-image and scikit-learn.",
        ) from exc


class BuiltinSource(Source):
    """Deterministic texture-patch dataset; see the module docstring."""

    name = "builtin"

    def __init__(self, sizes: dict[str, int], image_size: int = 32, seed: int = 0) -> None:
        self.sizes = dict(sizes)
        self.image_size = image_size
        self.native_size = image_size
        self.seed = seed

    @property
    def classes(self) -> list[str]:
        return list(PHOTOS)

    @cached_property
    def _photos(self) -> list[np.ndarray]:
        """Luminance of every photo as float32 in [0, 1] (loaded once per process)."""
        out = []
        for package, filename in PHOTOS.values():
            with Image.open(io.BytesIO(_photo_bytes(package, filename))) as image:
                luminance = image.convert("RGB").convert("L")
                out.append(np.asarray(luminance, dtype=np.float32) / 255.0)
        return out

    def _cells(self, label: int, split: str) -> np.ndarray:
        order = np.random.default_rng([self.seed, 1000 + label]).permutation(GRID * GRID)
        start = {"train": 0, "val": CELLS["train"], "test": CELLS["train"] + CELLS["val"]}[split]
        return order[start : start + CELLS[split]]

    def splits(self) -> dict[str, list[Record]]:
        n = len(PHOTOS)
        return {
            split: [
                Record(key=f"{split}_{i:06d}", label=i % n, ref=(split, i), meta={"photo": self.classes[i % n]})
                for i in range(self.sizes[split])
            ]
            for split in ("train", "val", "test")
        }

    def load(self, record: Record) -> np.ndarray:
        split, index = record.ref
        return self.make_sample(record.label, split, index)

    def make_sample(self, label: int, split: str, index: int) -> np.ndarray:
        """The uint8 HxWx3 sample ``index`` of ``split`` (class ``label``)."""
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[split], index])
        photo = self._photos[label]
        height, width = photo.shape
        cell_h, cell_w = height // GRID, width // GRID
        for _ in range(MAX_DRAWS):
            cell = int(rng.choice(self._cells(label, split)))
            row, col = divmod(cell, GRID)
            side = int(rng.uniform(0.5, 1.0) * min(cell_h, cell_w))
            top = row * cell_h + int(rng.integers(0, cell_h - side + 1))
            left = col * cell_w + int(rng.integers(0, cell_w - side + 1))
            patch = photo[top : top + side, left : left + side]
            if patch.std() >= MIN_TEXTURE:
                break
        patch = np.rot90(patch, int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        small = Image.fromarray(np.ascontiguousarray(patch), mode="F").resize(
            (self.image_size, self.image_size), Image.Resampling.BILINEAR
        )
        lum = np.asarray(small, dtype=np.float32)
        mean = float(lum.mean())
        lum = (lum - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-0.15, 0.15)
        lum = np.clip(lum, 0.0, 1.0)[..., None]
        dark = rng.uniform(0.0, 0.3, size=3).astype(np.float32)
        light = rng.uniform(0.7, 1.0, size=3).astype(np.float32)
        rgb = dark + lum * (light - dark)
        return np.round(rgb * 255.0).astype(np.uint8)

    def provenance(self) -> dict[str, Any]:
        photos = {
            name: {"package": pkg, "file": fn, "sha256": hashlib.sha256(_photo_bytes(pkg, fn)).hexdigest()}
            for name, (pkg, fn) in PHOTOS.items()
        }
        return {"source": self.name, "grid": GRID, "cells_per_split": CELLS, "photos": photos}
