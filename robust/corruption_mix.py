"""Seed 003's corrupted training set: every image carries ONE corruption drawn at random from
a list, at a uniformly drawn severity, under one of two protocols (issue 15).

* ``seed``: the 19 ImageNet-C corruptions (the 15 that mCE averages + the 4 extra), as seed 003
  trained, i.e. on the corruptions it then tests on, which the ImageNet-C protocol forbids;
* ``held_out``: only corruptions outside the 15 mCE averages (default: the 4 extra ones), so
  the benchmark's corruptions stay unseen.

The draw of an image depends only on (seed, the image's key), never on the order, batch or
worker that asks for it, so a corrupted training set rebuilds byte for byte. Not wired into a
stage yet: issue 15's training stages will use it (see its closing note).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA, Distortion, get, sample_seed
from robust.errors import ParamError

PROTOCOLS = ("seed", "held_out")


def training_corruptions(protocol: str, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The corruptions a ``protocol`` trains on: ``names`` when given, else its default list.
    ``held_out`` refuses any corruption that mCE averages."""
    if protocol not in PROTOCOLS:
        raise ParamError(f"protocol is {protocol!r}.", f"use one of: {' | '.join(PROTOCOLS)}.")
    chosen = tuple(names) if names is not None else (IMAGENET_C + IMAGENET_C_EXTRA if protocol == "seed" else IMAGENET_C_EXTRA)
    if not chosen:
        raise ParamError(f"The {protocol} protocol's corruption list is empty.", "give at least one corruption.")
    for name in chosen:
        get(name)  # an unknown name is one clear error
    seen = sorted(set(chosen) & set(IMAGENET_C))
    if protocol == "held_out" and seen:
        raise ParamError(f"The held_out protocol would train on {', '.join(seen)}, which mCE averages.",
                         f"train on corruptions outside the 15 (e.g. {', '.join(IMAGENET_C_EXTRA)}) or use protocol seed.")
    return chosen


def draw(seed: int, key: str, names: Sequence[str], levels: int = 5) -> tuple[str, int]:
    """The one corruption (uniform over ``names``) and severity (uniform over 1..``levels``) of
    the training image ``key``."""
    rng = np.random.default_rng(sample_seed(seed, "corruption-mix", 0, key))
    return names[int(rng.integers(len(names)))], 1 + int(rng.integers(levels))


def corrupt(image: np.ndarray, seed: int, key: str, distortions: dict[str, Distortion]) -> tuple[np.ndarray, str, int]:
    """``image`` (uint8 HxWx3) with its drawn corruption applied (``distortions``: name ->
    the configured :class:`~robust.distortions.Distortion`, with the dataset's constants), and
    what was drawn. The corruption's own noise is seeded by the same key."""
    names = list(distortions)
    name, level = draw(seed, key, names, min(d.levels for d in distortions.values()))
    rng = np.random.default_rng(sample_seed(seed, name, level, key))
    return distortions[name](image, level, rng), name, level
