"""SUN-397 with its official partitions (seed 000's scene dataset).

```
SUN397/<letter>/<class>[/<subclass>]/sun_<id>.jpg      the images (397 classes)
Partitions/ClassName.txt                               "/a/abbey" ... (optional: the class list)
Partitions/Training_01.txt ... Training_10.txt         "/a/abbey/sun_aaalbzqrimafwbiv.jpg", 50 per class
Partitions/Testing_01.txt  ... Testing_10.txt          50 per class
```
``data.root`` is the folder holding ``SUN397/`` and ``Partitions/`` (or ``SUN397/`` with
``Partitions/`` inside it). ``data.partition`` picks the list pair (1-10). A class is the
folder path under ``SUN397/`` without the letter (``abbey``, ``apartment_building/outdoor``);
labels follow ``ClassName.txt`` when present, else the sorted classes of the lists. Val is
held out of train by ``prepare`` (``data.val_fraction``).
"""

from __future__ import annotations

from pathlib import Path

from robust.data.sources.base import FileSource, Record, require_dir
from robust.errors import DataError

FIX = "point data.root at the folder holding SUN397/ (the images) and Partitions/ (Training_01.txt ... Testing_10.txt)."


def class_of(line: str) -> str:
    """``/a/apartment_building/outdoor/sun_x.jpg`` -> ``apartment_building/outdoor``."""
    parts = line.strip().strip("/").split("/")
    return "/".join(parts[1:-1])


class Sun397Source(FileSource):
    """SUN-397 read through one official Training / Testing list pair."""

    name = "sun397"

    def __init__(self, root: str | Path, partition: int = 1, exclude: tuple[str, ...] = ()) -> None:
        root = Path(root)
        require_dir(root, "SUN397 folder (data.root)", FIX)
        if (root / "SUN397").is_dir():
            images, lists = root / "SUN397", root / "Partitions"
            if not lists.is_dir() and (images / "Partitions").is_dir():
                lists = images / "Partitions"
        elif (root / "Partitions").is_dir():  # data.root is SUN397/ itself
            images, lists = root, root / "Partitions"
        else:
            raise DataError(f"{root} holds neither SUN397/ nor Partitions/.", FIX)
        require_dir(lists, "SUN397 partition lists", FIX)
        super().__init__(images)
        self.lists, self.partition, self.exclude = lists, partition, tuple(exclude)
        self._files = {split: self._read_list(lists / f"{name}_{partition:02d}.txt") for split, name in (("train", "Training"), ("test", "Testing"))}
        listed = sorted({class_of(line) for lines in self._files.values() for line in lines})
        names = lists / "ClassName.txt"
        order = [class_of(line + "/x") for line in names.read_text().split() if line.strip()] if names.is_file() else listed
        missing = sorted(set(listed) - set(order))
        if missing:
            raise DataError(f"The partition lists name classes that {names} lacks: {', '.join(missing[:3])}.", "use the official ClassName.txt and lists.")
        unknown = sorted(set(exclude) - set(order))
        if unknown:
            raise DataError(f"data.exclude_classes names {', '.join(unknown)}, which SUN397 does not have.", "use class names such as abbey or apartment_building/outdoor.")
        self._classes = [c for c in order if c not in set(exclude)]

    @staticmethod
    def _read_list(path: Path) -> list[str]:
        if not path.is_file():
            raise DataError(f"SUN397 partition list {path} not found.", "set data.partition to 1-10 and keep the official Partitions/ files.")
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not lines or not all(line.startswith("/") and line.count("/") >= 3 for line in lines):
            raise DataError(f"{path} is not a SUN397 partition list (lines like /a/abbey/sun_aaalbzqrimafwbiv.jpg).", FIX)
        return lines

    @property
    def classes(self) -> list[str]:
        return self._classes

    def splits(self) -> dict[str, list[Record]]:
        label = {name: i for i, name in enumerate(self._classes)}
        out: dict[str, list[Record]] = {}
        for split, lines in self._files.items():
            records = []
            for line in lines:
                name = class_of(line)
                if name not in label:
                    continue  # excluded
                path = self.root / line.lstrip("/")
                if not path.is_file():
                    raise DataError(f"{path} (listed in {self.lists}) is missing.", "extract the whole SUN397 archive beside Partitions/.")
                records.append(self.file_record(path, label[name]))
            out[split] = records
        return out

    def provenance(self) -> dict[str, object]:
        return {**super().provenance(), "partition": self.partition, "excluded": list(self.exclude)}
