"""The ``corrupt`` stage: clean shards -> distorted copies for one (distortion, level).

Output: ``<out>/<split>/shard-*.tar`` + ``info.json`` for each split in ``corrupt.splits``,
one output shard per clean shard, same keys, labels and order, so clean and distorted
samples pair up by key. Each sample's json adds ``distortion``, ``level``, ``value`` (the
level's table entry, for the project's own distortions), ``seed`` (its 32-bit seed from
:func:`robust.distortions.sample_seed`) and, for package corruptions, ``np_random_seed``
(what was given to ``np.random.seed``), so any stored sample can be regenerated alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from robust.data.prepare import software_versions
from robust.data.shards import (
    IMAGE_FORMATS,
    INFO,
    atomic_dir,
    decode_image,
    make_sample,
    read_info,
    read_tar,
    write_json,
    write_shards,
)
from robust.distortions import Distortion, package_seed, sample_seed
from robust.errors import DataError
from robust.params import CorruptParams

MIN_PACKAGE_SIZE = 32  # imagecorruptions refuses smaller images


class CorruptShardBuilder:
    """Distorts the samples of one clean shard (runs inside worker processes)."""

    def __init__(self, distortion: Distortion, level: int, params: CorruptParams) -> None:
        self.distortion, self.level, self.params = distortion, level, params
        if distortion.origin == "imagecorruptions":
            import imagecorruptions  # noqa: F401  (import once, before workers fork)

    def __call__(self, shard_path: str) -> Iterator[dict[str, Any]]:
        d, level, p = self.distortion, self.level, self.params
        for sample in read_tar(shard_path):
            key = sample["__key__"]
            fmt = next(f for f in IMAGE_FORMATS if f in sample)
            seed = sample_seed(p.seed, d.name, level, key)
            meta = {**_json(sample), "distortion": d.name, "level": level, "seed": seed}
            if d.table is not None:
                meta["value"] = d.table[level - 1]
            if d.origin == "imagecorruptions":
                meta["np_random_seed"] = package_seed(np.random.default_rng(seed))
            image = d(decode_image(sample[fmt]), level, np.random.default_rng(seed))
            yield make_sample(key, image, int(sample["cls"]), meta, p.format, p.jpg_quality)


def _json(sample: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(sample["json"]) if "json" in sample else {}


def corrupt(clean: str | Path, out: str | Path, distortion: Distortion, level: int, params: CorruptParams) -> dict[str, dict[str, Any]]:
    """Write ``out/<split>/`` for every split in ``params.splits``; returns their infos.

    ``out`` appears only when every split is complete.
    """
    clean = Path(clean)
    if not 1 <= level <= distortion.levels:
        raise DataError(f"Level {level} is out of range for {distortion.name}, which has {distortion.levels} levels.", "fix the level list of its stage in dvc.yaml or its table in params.yaml.")
    infos = {}
    with atomic_dir(Path(out)) as tmp:
        for split in params.splits:
            clean_info = read_info(clean / split)
            if distortion.origin == "imagecorruptions" and clean_info["image_size"] < MIN_PACKAGE_SIZE:
                raise DataError(
                    f"{distortion.name} (imagecorruptions) needs images of at least {MIN_PACKAGE_SIZE} px; the clean shards are {clean_info['image_size']} px.",
                    f"set data.image_size >= {MIN_PACKAGE_SIZE}, or drop the imagenet_c suites in corrupt.suites.",
                )
            folder = tmp / split
            folder.mkdir()
            result = write_shards(
                folder,
                [str(clean / split / s["name"]) for s in clean_info["shards"]],
                CorruptShardBuilder(distortion, level, params),
                workers=params.workers,
                total=clean_info["num_samples"],
                desc=f"{distortion.name}@{level} {split}",
            )
            info = {
                "split": split,
                "source": clean_info["source"],
                "image_size": clean_info["image_size"],
                "format": params.format,
                "num_classes": clean_info["num_classes"],
                "classes": clean_info["classes"],
                "distortion": {"name": distortion.name, "level": level, "levels": distortion.levels, "origin": distortion.origin,
                               "family": distortion.family, "value": distortion.table[level - 1] if distortion.table else None},
                **result,
                "clean_shards_sha256": [s["sha256"] for s in clean_info["shards"]],
                "params": {k: v for k, v in vars(params).items() if k != "suites"} | {"splits": list(params.splits)},
                "software": software_versions() | {"imagecorruptions-imaug": _version("imagecorruptions-imaug")},
            }
            write_json(folder / INFO, info)
            infos[split] = info
    return infos


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
