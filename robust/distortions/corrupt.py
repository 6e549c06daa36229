"""The ``corrupt`` stages: clean shards -> distorted copies of one distortion at every level.

One stage per distortion (``corrupt-<suite>@<distortion>``) writes ``<out>/<level>/`` for
each level, so editing one distortion's table reruns only that distortion, and the ~1-2 s
that DVC and Python spend starting a stage is paid once per distortion, not once per level.

Output per level: ``<level>/<split>/shard-*.tar`` + ``info.json`` for each split in ``corrupt.splits``,
one output shard per clean shard, same keys, labels and order, so clean and distorted
samples pair up by key. Each sample's json adds ``distortion``, ``level``, ``value`` (the
level's table entry, for the project's own distortions), ``seed`` (its 32-bit seed from
:func:`robust.distortions.sample_seed`) and, for the ImageNet-C corruptions,
``np_random_seed`` (the seed of the corruption's random stream, what the ``imagecorruptions``
package would get from ``np.random.seed``), so any stored sample can be regenerated alone.
Each level's ``info.json`` names the ImageNet-C constants table used (``distortion.constants``)
and that table's five values (``distortion.table``); every sample of a level shares them, so
they are not repeated per sample (which keeps ``constants: imagecorruptions`` shards
byte-identical to those the package made before the project had its own implementation).

``corrupt.source: released`` reads a released corrupted test set instead of generating one
(:mod:`robust.distortions.released`); the output layout is the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from robust.data.shards import (
    INFO,
    atomic_dir,
    decode_image,
    image_field,
    make_sample,
    read_info,
    read_tar,
    software_versions,
    write_decoded,
    write_json,
    write_shards,
)
from robust import distortions
from robust.distortions import RELEASED_ONLY, Distortion, imagenet_c, package_seed, sample_seed
from robust.distortions.released import write_released
from robust.distortions.settings import CorruptParams
from robust.errors import DataError

MIN_IMAGENET_C_SIZE = 8  # smaller images leave the corruptions' kernels and crops no room


class CorruptShardBuilder:
    """Distorts the samples of one clean shard (runs inside worker processes)."""

    def __init__(self, distortion: Distortion, level: int, params: CorruptParams) -> None:
        self.distortion, self.level, self.params = distortion, level, params
        if distortion.origin == "imagenet-c":
            import cv2, scipy.ndimage, skimage.filters  # noqa: F401, E401  (import once, before workers fork)

    def __call__(self, shard_path: str) -> Iterator[dict[str, Any]]:
        d, level, p = self.distortion, self.level, self.params
        for sample in read_tar(shard_path):
            key = sample["__key__"]
            fmt = image_field(sample, shard_path)
            seed = sample_seed(p.seed, d.name, level, key)
            meta = {**_json(sample), "distortion": d.name, "level": level, "seed": seed}
            if d.table is not None:
                meta["value"] = d.table[level - 1]
            if d.origin == "imagenet-c":
                meta["np_random_seed"] = package_seed(np.random.default_rng(seed))
            image = d(decode_image(sample[fmt]), level, np.random.default_rng(seed))
            yield make_sample(key, image, int(sample["cls"]), meta, p.format, p.jpg_quality)


def _json(sample: dict[str, Any]) -> dict[str, Any]:
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
            if distortion.origin == "imagenet-c" and clean_info["image_size"] < MIN_IMAGENET_C_SIZE:
                raise DataError(
                    f"{distortion.name} (ImageNet-C) needs images of at least {MIN_IMAGENET_C_SIZE} px; the clean shards are {clean_info['image_size']} px.",
                    f"set data.image_size >= {MIN_IMAGENET_C_SIZE}, or drop the imagenet_c suites in corrupt.suites.",
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
                               "family": distortion.family, "value": distortion.table[level - 1] if distortion.table else None,
                               **_constants_info(distortion, level)},
                **result,
                "decoded": write_decoded(folder, result["shards"]),
                "clean_shards_sha256": [s["sha256"] for s in clean_info["shards"]],
                "params": {k: v for k, v in params.as_dict().items() if k != "suites"} | {"splits": list(params.splits)},
                "software": software_versions("imagecorruptions-imaug", "scikit-image", "opencv-python", "scipy", "numba"),
            }
            write_json(folder / INFO, info)
            infos[split] = info
    return infos


def _constants_info(distortion: Distortion, level: int) -> dict[str, Any]:
    """The ImageNet-C constants table of a level: its name, the level's value and all five."""
    if distortion.constants is None:
        return {}
    table = imagenet_c.CONSTANTS[distortion.constants]
    values = imagenet_c.level_values(table, distortion.name)
    return {"constants": table.name, "value": values[level - 1], "table": values}


def corrupt_from_params(params: dict[str, Any], name: str, clean: str | Path, out: str | Path) -> dict[int, dict[str, dict[str, Any]]]:
    """The ``corrupt-<suite>@<name>`` stage: every level of ``name`` -> ``out/<level>/``, with
    the ``corrupt:`` settings (constants table, or a released set to read) and the
    ``distortions.<name>`` table from a params dict and the image size from the clean shards.
    ``out`` appears only when every level is complete."""
    settings = CorruptParams.from_dict(params.get("corrupt"))
    released = settings.source == "released" and not name.startswith(("dc_", "ra_"))
    if released:
        return write_released(Path(clean), Path(out), name, Path(str(settings.root)), settings)
    if name in RELEASED_ONLY:
        raise DataError(
            f"{name} is a CURE-TSR challenge: it exists only as released files, it cannot be generated.",
            "set corrupt.source: released and corrupt.root to the CURE-TSR folder, or empty corrupt.suites.cure_tsr.",
        )
    image_size = read_info(Path(clean) / settings.splits[0])["image_size"]
    distortion = distortions.configured(name, (params.get("distortions") or {}).get(name), image_size, settings.constants)
    with atomic_dir(Path(out)) as tmp:
        return {level: corrupt(clean, tmp / str(level), distortion, level, settings) for level in range(1, distortion.levels + 1)}
