"""The ``prepare`` stage: any source -> clean webdataset shards for train / val / test.

Split mapping (the same rule for every source):

* ``test`` is the source's labelled test split, or its val split when it has no labelled
  test (CIFAR has test; Tiny ImageNet and ImageNet-style folders use val, as their
  corruption benchmarks do);
* ``val`` is the source's val split when it also has a test split, otherwise a
  class-stratified, seeded ``data.val_fraction`` of train, held out (removed from train).

``data.<split>_size`` then keeps a class-stratified, seeded subset (null keeps all); the
kept samples stay in the source's order. Images are fitted to ``image_size`` (shorter side
to ``resize_shorter`` then center crop, or a plain stretch) and stored losslessly as PNG
unless ``data.format: jpg``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robust.data.shards import INFO, Skipped, atomic_dir, chunk, make_sample, software_versions, write_decoded, write_json, write_shards
from robust.data.sources import Record, Source, create_source
from robust.errors import BadImageError, DataError
from robust.params import DataParams

SPLITS = ("train", "val", "test")


def fit_image(image: np.ndarray | Image.Image, size: int, resize_shorter: int | None = None, mode: str = "center-crop") -> np.ndarray:
    """Resize to ``size`` x ``size`` uint8 RGB: shorter side to ``resize_shorter`` (default
    ``size``) then center crop, or ``mode="stretch"`` to ignore the aspect ratio.

    PIL bilinear with antialiasing, as torchvision's ``Resize`` on PIL images. An image
    that already has the target size is returned unchanged.
    """
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    pil = pil.convert("RGB")
    if pil.size == (size, size):
        return np.asarray(pil)
    if mode == "stretch":
        return np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    shorter = resize_shorter or size
    width, height = pil.size
    scale = shorter / min(width, height)
    new_w, new_h = max(shorter, round(width * scale)), max(shorter, round(height * scale))
    pil = pil.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(pil.crop((left, top, left + size, top + size)))


def stratified_order(records: Sequence[Record], seed: int) -> list[int]:
    """Indices of ``records`` in a seeded order that cycles through the classes, so any
    prefix is as class-balanced as possible."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for index in rng.permutation(len(records)):
        by_class[records[index].label].append(int(index))
    queues = [by_class[label] for label in sorted(by_class)]
    order, depth = [], 0
    while len(order) < len(records):
        order.extend(queue[depth] for queue in queues if depth < len(queue))
        depth += 1
    return order


def take(records: Sequence[Record], count: int | None, seed: int) -> list[Record]:
    """A stratified seeded subset of ``count`` records (all when ``count`` is None), in source order."""
    if count is None or count >= len(records):
        return list(records)
    keep = sorted(stratified_order(records, seed)[:count])
    return [records[i] for i in keep]


def assign_splits(native: dict[str, list[Record]], params: DataParams) -> dict[str, list[Record]]:
    """Map a source's native splits onto train / val / test (see the module docstring)."""
    if not native.get("train"):
        raise DataError(f"The {params.source} dataset has no training images.", "check data.root.")
    if native.get("test"):
        test, val, train = native["test"], native.get("val"), native["train"]
    elif native.get("val"):
        test, val, train = native["val"], None, native["train"]
    else:
        raise DataError(
            f"The {params.source} dataset has no labelled val or test split.",
            "add a val/ (or test/) folder next to train/.",
        )
    if not val:
        order = stratified_order(native["train"], params.seed)
        held = set(order[: max(1, round(params.val_fraction * len(order)))])
        val = [r for i, r in enumerate(train) if i in held]
        train = [r for i, r in enumerate(train) if i not in held]
    chosen = {"train": train, "val": val, "test": test}
    return {split: take(chosen[split], getattr(params, f"{split}_size"), params.seed + 1 + i) for i, split in enumerate(SPLITS)}


class CleanShardBuilder:
    """Turns a chunk of records into shard samples (runs inside worker processes)."""

    def __init__(self, source: Source, params: DataParams, split: str) -> None:
        self.source, self.params, self.split = source, params, split

    def __call__(self, records: Sequence[Record]) -> Iterator[dict[str, Any] | Skipped]:
        p = self.params
        for record in records:
            try:
                image = fit_image(self.source.load(record), p.image_size, p.resize_shorter, p.resize_mode)
            except BadImageError as exc:
                if p.on_bad_image == "skip":
                    yield Skipped(record.key, exc.problem)
                    continue
                raise
            meta = {"key": record.key, "source": self.source.name, "split": self.split, "label": record.label, **record.meta}
            yield make_sample(record.key, image, record.label, meta, p.format, p.jpg_quality)


def prepare(params: DataParams, out: str | Path) -> dict[str, dict[str, Any]]:
    """Build ``out/{train,val,test}/`` shards + ``info.json``; returns the three infos.

    ``out`` appears only when all three splits are complete (built in a temporary folder).
    """
    source = create_source(params)
    splits = assign_splits(source.splits(), params)
    infos = {}
    with atomic_dir(Path(out)) as tmp:
        for split in SPLITS:
            records = splits[split]
            if not records:
                raise DataError(f"The {split} split of {params.source} is empty.", f"check data.root and data.{split}_size.")
            folder = tmp / split
            folder.mkdir()
            result = write_shards(
                folder,
                chunk(records, params.shard_size),
                CleanShardBuilder(source, params, split),
                workers=params.workers,
                desc=f"prepare {split}",
            )
            info = {
                "split": split,
                "source": params.source,
                "image_size": params.image_size,
                "format": params.format,
                "num_classes": len(source.classes),
                "classes": source.classes,
                **result,
                "decoded": write_decoded(folder, result["shards"]),
                "params": params.as_dict(),
                "provenance": source.provenance(),
                "software": software_versions(),
            }
            write_json(folder / INFO, info)
            infos[split] = info
    return infos
