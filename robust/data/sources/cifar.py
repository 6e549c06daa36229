"""CIFAR-10 / CIFAR-100, official "python version": the tarball or its extracted folder.

Accepted ``data.root`` values: ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``,
the extracted ``cifar-10-batches-py/`` / ``cifar-100-python/`` folder, or a folder holding
either. Batches are pickles of ``{b"data": uint8[N, 3072] (R plane, G plane, B plane),
b"labels" | b"fine_labels": [...], b"filenames": [...]}``. CIFAR-100 uses the 100 fine
labels. CIFAR has no labelled val split: ``prepare`` holds one out of train.

A batch file is all-or-nothing (one pickle), so ``data.on_bad_image: skip`` cannot apply:
a corrupt batch is always an error.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from robust.data.sources.base import Record, Source
from robust.errors import DataError

_LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "tarball": "cifar-10-python.tar.gz",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "names_key": b"label_names",
        "labels_key": b"labels",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "tarball": "cifar-100-python.tar.gz",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "names_key": b"fine_label_names",
        "labels_key": b"fine_labels",
    },
}


class CifarSource(Source):
    """CIFAR-10 or CIFAR-100 read from the official python pickles."""

    native_size = 32

    def __init__(self, root: str | Path, variant: str = "cifar10") -> None:
        self.name = variant
        self.layout = _LAYOUT[variant]
        self.root = Path(root)
        self._arrays: dict[str, tuple[np.ndarray, list[int]]] = {}
        self._digest = hashlib.sha256()
        self._classes = self._read_all()

    # -- reading -------------------------------------------------------------------
    def _members(self) -> dict[str, bytes]:
        """Raw bytes of the meta and batch files, from a folder or the tarball."""
        layout = self.layout
        wanted = [layout["meta"], *layout["train"], *layout["test"]]
        fix = (
            f"point data.root at {layout['tarball']} or at the extracted {layout['folder']}/ folder "
            "(the official CIFAR 'python version')."
        )
        root = self.root
        if not root.exists():
            raise DataError(f"data.root {root} does not exist.", fix)
        if root.is_dir() and (root / layout["folder"]).is_dir():
            root = root / layout["folder"]
        elif root.is_dir() and (root / layout["tarball"]).is_file():
            root = root / layout["tarball"]
        if root.is_dir():
            missing = [name for name in wanted if not (root / name).is_file()]
            if missing:
                raise DataError(f"{root} is not a {self.name} python folder: missing {', '.join(missing)}.", fix)
            return {name: (root / name).read_bytes() for name in wanted}
        try:
            with tarfile.open(root) as tar:
                found = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [name for name in wanted if name not in found]
                if missing:
                    raise DataError(f"{root} is not a {self.name} python tarball: missing {', '.join(missing)}.", fix)
                return {name: tar.extractfile(found[name]).read() for name in wanted}  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{root} is not a readable tarball or folder ({exc}).", fix) from exc

    def _unpickle(self, name: str, raw: bytes) -> dict[bytes, Any]:
        try:
            obj = pickle.loads(raw, encoding="bytes")
        except Exception as exc:  # a truncated pickle raises many different types
            raise DataError(
                f"{self.name} file {name} is corrupt or truncated ({type(exc).__name__}: {exc}).",
                "re-extract or re-download the official CIFAR python archive.",
            ) from exc
        if not isinstance(obj, dict):
            raise DataError(f"{self.name} file {name} does not hold a dict.", "use the official CIFAR python version.")
        return obj

    def _read_all(self) -> list[str]:
        layout = self.layout
        members = self._members()
        for name in sorted(members):
            self._digest.update(name.encode() + hashlib.sha256(members[name]).digest())
        meta = self._unpickle(layout["meta"], members[layout["meta"]])
        if layout["names_key"] not in meta:
            raise DataError(f"{layout['meta']} has no {layout['names_key']!r}.", "use the official CIFAR python version.")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[layout["names_key"]]]
        for split in ("train", "test"):
            images, labels = [], []
            for name in layout[split]:
                batch = self._unpickle(name, members[name])
                try:
                    data = np.asarray(batch[b"data"], dtype=np.uint8)
                    batch_labels = [int(v) for v in batch[layout["labels_key"]]]
                except KeyError as exc:
                    raise DataError(f"{self.name} file {name} lacks the key {exc}.", "use the official CIFAR python version.") from exc
                if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != data.shape[0]:
                    raise DataError(
                        f"{self.name} file {name} has data of shape {data.shape} with {len(batch_labels)} labels; "
                        "expected (N, 3072) and N labels.",
                        "re-extract the official CIFAR python archive.",
                    )
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.extend(batch_labels)
            self._arrays[split] = (np.concatenate(images), labels)
        return classes

    # -- Source API ------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return self._classes

    def splits(self) -> dict[str, list[Record]]:
        return {
            split: [
                Record(key=f"{split}_{i:06d}", label=label, ref=(split, i), meta={"index": i, "split": split})
                for i, label in enumerate(labels)
            ]
            for split, (_, labels) in self._arrays.items()
        }

    def load(self, record: Record) -> np.ndarray:
        split, index = record.ref
        return self._arrays[split][0][index]

    def provenance(self) -> dict[str, Any]:
        return {"source": self.name, "root": str(self.root), "files_sha256": self._digest.hexdigest()}
