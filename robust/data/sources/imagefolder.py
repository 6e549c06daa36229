"""ImageFolder trees, ImageNet style: ``<root>/train/<class>/*``, ``<root>/val/<class>/*``
and optionally ``<root>/test/<class>/*``.

Class names are the sorted folder names of ``train/`` (torchvision's convention); a val or
test class folder that train lacks is an error. With no ``test/``, ``val/`` becomes the
pipeline's test split (ImageNet-C is made from ImageNet val) and val is held out of train.
Images of any size are resized (shorter side) and center-cropped by ``prepare``.
"""

from __future__ import annotations

from pathlib import Path

from robust.data.sources.base import FileSource, Record, list_images, require_dir
from robust.errors import DataError

FIX = "point data.root at a folder with train/<class>/*.jpg and val/<class>/*.jpg (ImageNet layout)."


class ImageFolderSource(FileSource):
    """Any labelled folder tree of images."""

    name = "imagefolder"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        require_dir(self.root, "ImageFolder root (data.root)", FIX)
        train = require_dir(self.root / "train", f"{self.root}/train", FIX)
        self._classes = sorted(p.name for p in train.iterdir() if p.is_dir())
        if not self._classes:
            raise DataError(f"{train} holds no class folder.", FIX)
        if not (self.root / "val").is_dir():
            raise DataError(f"{self.root}/val is missing: an ImageFolder source needs train/ and val/.", FIX)

    @property
    def classes(self) -> list[str]:
        return self._classes

    def splits(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for split in ("train", "val", "test"):
            folder = self.root / split
            if not folder.is_dir():
                continue
            present = sorted(p.name for p in folder.iterdir() if p.is_dir())
            unknown = sorted(set(present) - set(self._classes))
            if unknown:
                raise DataError(
                    f"{folder} has class folders that train/ lacks: {', '.join(unknown[:5])}.",
                    "use the same class folder names in every split.",
                )
            records = []
            for label, name in enumerate(self._classes):
                if (folder / name).is_dir():
                    records += [self.file_record(p, label) for p in list_images(folder / name)]
            if not records:
                raise DataError(f"{folder} holds no image ({', '.join(s for s in ('.jpg', '.png', '.bmp'))} ...).", FIX)
            out[split] = records
        return out
