"""Tiny ImageNet in its official ``tiny-imagenet-200/`` layout.

```
tiny-imagenet-200/
  wnids.txt                      200 WordNet ids, one per line
  words.txt                      "<wnid>\t<names>" for all of WordNet (names are looked up here)
  train/<wnid>/images/<wnid>_<i>.JPEG
  val/images/val_<i>.JPEG
  val/val_annotations.txt        "<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>"
  test/images/test_<i>.JPEG      unlabelled: not used
```
Labels follow the sorted wnids (the ImageFolder convention, so a torchvision-style
Tiny ImageNet checkpoint lines up). The official test set has no labels, so the official
val split is this pipeline's ``test`` (as in seed 003 and Tiny-ImageNet-C) and ``val`` is held
out of train.
"""

from __future__ import annotations

from pathlib import Path

from robust.data.sources.base import FileSource, Record, list_images, require_dir
from robust.errors import DataError

FIX = "point data.root at the extracted tiny-imagenet-200/ folder (with wnids.txt, words.txt, train/ and val/)."


class TinyImageNetSource(FileSource):
    """Tiny ImageNet (200 classes, 64x64)."""

    name = "tinyimagenet"
    native_size = 64

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if root.is_dir() and not (root / "wnids.txt").exists() and (root / "tiny-imagenet-200").is_dir():
            root = root / "tiny-imagenet-200"
        super().__init__(root)
        require_dir(root, "Tiny ImageNet folder (data.root)", FIX)
        for needed in ("wnids.txt", "words.txt", "val/val_annotations.txt"):
            if not (root / needed).is_file():
                raise DataError(f"{root} is not a Tiny ImageNet folder: {needed} is missing.", FIX)
        require_dir(root / "train", "Tiny ImageNet train/ folder", FIX)
        self.wnids = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
        if not self.wnids:
            raise DataError(f"{root / 'wnids.txt'} lists no class.", FIX)
        words = {}
        for line in (root / "words.txt").read_text(encoding="utf-8").splitlines():
            wnid, _, names = line.partition("\t")
            words[wnid.strip()] = names.strip()
        self._classes = [words.get(wnid, wnid) for wnid in self.wnids]

    @property
    def classes(self) -> list[str]:
        return self._classes

    def splits(self) -> dict[str, list[Record]]:
        index = {wnid: i for i, wnid in enumerate(self.wnids)}
        train = []
        for wnid in self.wnids:
            folder = require_dir(self.root / "train" / wnid / "images", f"train images of class {wnid}", FIX)
            train += [self.file_record(p, index[wnid], wnid=wnid) for p in list_images(folder)]
        val = []
        for n, line in enumerate((self.root / "val" / "val_annotations.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise DataError(
                    f"val/val_annotations.txt line {n} is not '<file>\\t<wnid>...' with a wnid from wnids.txt: {line!r}.",
                    FIX,
                )
            val.append(self.file_record(self.root / "val" / "images" / fields[0], index[fields[1]], wnid=fields[1]))
        val.sort(key=lambda r: r.ref)
        return {"train": train, "val": val}
