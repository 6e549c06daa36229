"""Distortions and corrupted sets. This module is the one registry of named image distortions
and the suites that group them; beside it: :mod:`~robust.distortions.imagenet_c` (the own
ImageNet-C implementation and its constants tables), :mod:`~robust.distortions.corrupt` (the
``corrupt`` stage: distorted copies of the clean shards), :mod:`~robust.distortions.released`
(released corrupted sets read into the same layout) and :mod:`~robust.distortions.settings`
(the ``corrupt:`` section both read).

Every distortion is ``fn(image uint8 HxWx3, level 1..n, rng numpy Generator) -> uint8 image
of the same size``. Three origins:

* the 19 ImageNet-C corruptions (origin ``imagenet-c``), severities 1..5, by the project's own
  implementation (:mod:`robust.distortions.imagenet_c`) with a constants table: ``imagenet`` (ImageNet-C's
  ``make_imagenet_c.py`` at 224 px), ``imagecorruptions`` (the package fork's variant,
  bit-identical to it), ``tinyimagenet`` (64 px) or ``cifar`` (32 px), chosen by
  ``corrupt.constants`` (``auto``: by image size);
* DeepCorrect's Gaussian blur and AWGN, 6 levels (``dc_blur``, ``dc_awgn``), with the seed's
  CIFAR table for small images or its ImageNet table for large ones (``TABLES``);
* the recognition-aware processing tasks as same-size degradations, 5 levels each, the
  seed's setting at level 3 or 4 (``ra_bicubic``, ``ra_noise``, ``ra_jpeg``).

CURE-TSR's 12 challenge types (``cure_*``) are names only: they exist as released files
(``corrupt.source: released``, :mod:`robust.distortions.released`), not as functions.

Seeding. ``rng`` is the only source of randomness. An ImageNet-C corruption draws one 32-bit
integer from it (:func:`package_seed`) and seeds everything it draws with it (a
``RandomState``, scikit-image's impulse noise, glass blur's compiled shuffle), exactly as the
package is seeded by ``np.random.seed(seed)`` plus its ``seed`` argument. So every distortion
is a pure function of (image, level, rng state) and any stored sample can be regenerated from
the seed recorded beside it.

Package bug handled: on small images ``spatter``'s water layer (levels 1-3) is sometimes
empty and the package divides it by its maximum, 0/0, returning an all-NaN (garbage)
image; the own implementation returns the image unchanged instead (no drops fell), which is
what the formula gives for an empty layer. Seen on 3 of 200 32-px images at level 1.

Storage. Shards hold uint8 images, so the seeds' unclipped / unquantised float noise
(DeepCorrect AWGN, RA denoising) is rounded and clipped to [0, 255]; the ImageNet-C
corruptions truncate their float results (``np.uint8``), as the package does.
"""

from __future__ import annotations

import difflib
import hashlib
import io
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from robust.distortions import imagenet_c
from robust.errors import ParamError

Fn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

IMAGENET_C = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
IMAGENET_C_EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
#: CURE-TSR's 12 challenge types (codes 01-12), read from the released challenge folders only
CURE_TSR = (
    "cure_decolorization", "cure_lens_blur", "cure_codec_error", "cure_darkening", "cure_dirty_lens", "cure_exposure",
    "cure_gaussian_blur", "cure_noise", "cure_rain", "cure_shadow", "cure_snow", "cure_haze",
)  # fmt: skip
FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "dc_awgn", "ra_noise", "cure_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur", "dc_blur", "ra_bicubic",
             "cure_lens_blur", "cure_gaussian_blur"),
    "weather": ("snow", "frost", "fog", "spatter", "cure_dirty_lens", "cure_rain", "cure_shadow", "cure_snow", "cure_haze"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate", "ra_jpeg",
                "cure_decolorization", "cure_codec_error", "cure_darkening", "cure_exposure"),
}
#: distortions that apply the image operation of another distortion (the one named): a model
#: trained on one has seen the other. Seed 001's detectors never test on their training
#: operation under another name, and seed 003's held-out protocol never trains on one the
#: benchmark tests.
SAME_OPERATION: dict[str, str] = {"dc_blur": "gaussian_blur", "cure_gaussian_blur": "gaussian_blur", "dc_awgn": "gaussian_noise",
                                  "ra_noise": "gaussian_noise", "ra_jpeg": "jpeg_compression"}


def operation(name: str) -> str:
    """The image operation a distortion applies, named by its ImageNet-C corruption where one
    does the same (:data:`SAME_OPERATION`), else its own name."""
    return SAME_OPERATION.get(name, name)


#: corruptions whose package randomness is not reached by ``np.random.seed``: the package
#: takes their seed as an argument (what the parity tests give it)
OWN_RNG = ("impulse_noise", "glass_blur")

#: level tables of the project's own distortions; ``dc_*`` have a CIFAR (<= 64 px) and an ImageNet table
TABLES: dict[str, dict[str, tuple[float, ...]]] = {
    # Gaussian blur sigma in px, kernel 4*sigma+1 (seed 000)
    "dc_blur": {"cifar": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0), "imagenet": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)},
    # additive white Gaussian noise sigma on the 0-255 scale (seed 000)
    "dc_awgn": {"cifar": (5, 10, 15, 20, 25, 30), "imagenet": (10, 20, 40, 60, 80, 100)},
    # bicubic down-and-up factor; x4 (level 4) is the seed's super-resolution task
    "ra_bicubic": {"default": (1.5, 2.0, 3.0, 4.0, 6.0)},
    # Gaussian noise sigma on [0, 1]; 0.1 (level 3) is the seed's denoising task
    "ra_noise": {"default": (0.05, 0.075, 0.1, 0.15, 0.2)},
    # JPEG quality; 10 (level 3) is the seed's deblocking task
    "ra_jpeg": {"default": (30, 20, 10, 7, 5)},
}
SMALL_IMAGE = 64  # ``table: auto`` picks the CIFAR table up to this size


@dataclass(frozen=True)
class Distortion:
    """A named distortion: ``self(image, level, rng)`` validates and applies it."""

    name: str
    family: str
    origin: str
    levels: int
    fn: Fn = field(repr=False)
    table: tuple[float, ...] | None = None  # the per-level parameter, for the project's own
    constants: str | None = None  # the ImageNet-C constants table (imagenet | imagecorruptions | tinyimagenet | cifar)

    def __call__(self, image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(level, (int, np.integer)) or not 1 <= level <= self.levels:
            raise ParamError(f"Level {level!r} is out of range for distortion {self.name}.", f"use a level from 1 to {self.levels}.")
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise ValueError(f"{self.name} expects a uint8 HxWx3 image, got {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
        out = self.fn(image, int(level), rng)
        assert out.shape == image.shape and out.dtype == np.uint8, f"{self.name} changed the image shape or dtype"
        return out

    def with_table(self, table: Sequence[float]) -> "Distortion":
        """The same distortion with another level table (the number of levels follows it)."""
        if self.table is None:
            raise ParamError(f"{self.name} is an ImageNet-C corruption; its severities come from a constants table.", "choose the table with corrupt.constants; edit level tables only for dc_* and ra_* distortions.")
        values = tuple(float(v) for v in table)
        if not values:
            raise ParamError(f"The level table of {self.name} is empty.", "give at least one value.")
        return Distortion(self.name, self.family, self.origin, len(values), _table_fn(self.name, values), values)


# -- the package's corruptions -----------------------------------------------------------------
def package_seed(rng: np.random.Generator) -> int:
    """The 32-bit seed a package corruption draws from ``rng`` (its only draw)."""
    return int(rng.integers(0, 2**32))


def _imagenet_c_fn(name: str, constants: imagenet_c.Constants) -> Fn:
    def apply(image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
        return imagenet_c.corrupt(image, name, level, constants, package_seed(rng))

    apply.__name__ = name
    return apply


def with_constants(distortion: Distortion, table: imagenet_c.Constants) -> Distortion:
    """An ImageNet-C corruption with another constants table."""
    if distortion.origin != "imagenet-c":
        raise ParamError(f"{distortion.name} is not an ImageNet-C corruption; it has no constants table.", "set constants only for the 19 ImageNet-C corruptions.")
    return Distortion(distortion.name, distortion.family, distortion.origin, 5, _imagenet_c_fn(distortion.name, table), None, table.name)


# -- the project's own distortions -------------------------------------------------------------
def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a (4*sigma+1)-tap kernel and mirrored borders, as OpenCV's default."""
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0), truncate=2.0, mode="mirror")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _add_noise(image: np.ndarray, sigma255: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma255, size=image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def bicubic_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """PIL's bicubic resize of a uint8 HxWx3 image (antialiased when shrinking): seed 002's
    super-resolution degradation and the bicubic-upsampling baseline."""
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def _bicubic_down_up(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    small = bicubic_resize(image, max(1, round(width / factor)), max(1, round(height / factor)))
    return bicubic_resize(small, width, height)


def jpeg_roundtrip(image: np.ndarray, quality: float) -> np.ndarray:
    """A uint8 HxWx3 image encoded as JPEG at ``quality`` with PIL and decoded back (seed 002's deblocking input)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))


def _table_fn(name: str, table: tuple[float, ...]) -> Fn:
    if name == "dc_blur":
        return lambda image, level, rng: _gaussian_blur(image, table[level - 1])
    if name in ("dc_awgn", "ra_noise"):
        scale = 255.0 if name == "ra_noise" else 1.0
        return lambda image, level, rng: _add_noise(image, table[level - 1] * scale, rng)
    if name == "ra_bicubic":
        return lambda image, level, rng: _bicubic_down_up(image, table[level - 1])
    if name == "ra_jpeg":
        return lambda image, level, rng: jpeg_roundtrip(image, table[level - 1])
    raise KeyError(name)


def family_of(name: str) -> str:
    """The family (noise | blur | weather | digital) of a distortion or CURE-TSR challenge name."""
    return next(family for family, names in FAMILIES.items() if name in names)


def _build() -> dict[str, Distortion]:
    registry = {name: Distortion(name, family_of(name), "imagenet-c", 5, _imagenet_c_fn(name, imagenet_c.IMAGENET), None, "imagenet")
                for name in IMAGENET_C + IMAGENET_C_EXTRA}
    for name, tables in TABLES.items():
        table = tables.get("cifar", tables.get("default"))
        assert table is not None
        origin = "deepcorrect" if name.startswith("dc_") else "recognition-aware"
        registry[name] = Distortion(name, family_of(name), origin, len(table), _table_fn(name, table), table)
    return registry


#: name -> Distortion (ImageNet-C corruptions with the imagenet constants, own distortions with their default / CIFAR table)
DISTORTIONS: dict[str, Distortion] = _build()
#: suite name -> distortion names, as selected in params.yaml
SUITES: dict[str, tuple[str, ...]] = {
    "imagenet_c": IMAGENET_C,
    "imagenet_c_extra": IMAGENET_C_EXTRA,
    "deepcorrect": ("dc_blur", "dc_awgn"),
    "restoration": ("ra_bicubic", "ra_noise", "ra_jpeg"),
    "cure_tsr": CURE_TSR,
}
#: distortions that exist only as released files (``corrupt.source: released``), not as functions
RELEASED_ONLY = frozenset(CURE_TSR)


def get(name: str) -> Distortion:
    """The distortion called ``name``; an unknown name is a :class:`ParamError` with suggestions."""
    if name not in DISTORTIONS:
        close = difflib.get_close_matches(name, DISTORTIONS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ParamError(f"Unknown distortion {name!r}.", f"{hint}known: {', '.join(DISTORTIONS)}.")
    return DISTORTIONS[name]


def configured_names(params: dict[str, Any], only: Sequence[str] | None = None) -> list[str]:
    """The distortion names selected by ``corrupt.suites`` of a params dict, in :data:`SUITES`
    order (the order of test sets, report columns and IQA types); ``only``: of these suites."""
    suites = (params.get("corrupt") or {}).get("suites") or {}
    return [name for suite_name in SUITES if only is None or suite_name in only for name in suites.get(suite_name) or []]


def built_test_sets(params: dict[str, Any], corrupt_root: Path) -> list[tuple[str, int]]:
    """Every (distortion, level) of :func:`configured_names` whose test split is built under
    ``corrupt_root``, in suite order (the sets ``evaluate``, ``gradients`` and ``iqa`` score)."""
    from robust.data.shards import built_levels

    return [(name, level) for name in configured_names(params) for level in built_levels(corrupt_root, name)]


def suite(name: str) -> tuple[str, ...]:
    """The distortion names of a suite."""
    if name not in SUITES:
        raise ParamError(f"Unknown distortion suite {name!r}.", f"use one of: {', '.join(SUITES)}.")
    return SUITES[name]


def configured(name: str, table_params: dict | None, image_size: int, constants: str = "auto") -> Distortion:
    """The distortion with the level table chosen in params.yaml.

    ImageNet-C corruptions take the constants table ``constants`` (``corrupt.constants``:
    ``auto | imagenet | imagecorruptions | tinyimagenet | cifar``; ``auto`` by ``image_size``, see
    :func:`robust.distortions.imagenet_c.choose_constants`). For ``dc_*`` the ``distortions.<name>`` params
    hold ``table: auto | cifar | imagenet`` plus both tables; ``auto`` takes the CIFAR table for
    images up to 64 px. For ``ra_*`` they hold ``levels: [...]``.
    """
    distortion = get(name)
    if distortion.origin == "imagenet-c":
        if constants not in imagenet_c.CONSTANTS_CHOICES:
            raise ParamError(f"corrupt.constants is {constants!r}.", f"use one of: {' | '.join(imagenet_c.CONSTANTS_CHOICES)}.")
        table = imagenet_c.choose_constants(constants, image_size)
        return distortion if table.name == distortion.constants else with_constants(distortion, table)
    if distortion.table is None or not table_params:
        return distortion
    if "table" in table_params:
        choice = table_params["table"]
        if choice == "auto":
            choice = "cifar" if image_size <= SMALL_IMAGE else "imagenet"
        if choice not in ("cifar", "imagenet") or choice not in table_params:
            raise ParamError(f"distortions.{name}.table is {table_params['table']!r}.", "use auto, cifar or imagenet, with both tables given.")
        return distortion.with_table(table_params[choice])
    if "levels" not in table_params:
        raise ParamError(f"distortions.{name} has no 'levels' list.", "give the level table as levels: [...].")
    return distortion.with_table(table_params["levels"])


def sample_seed(seed: int, name: str, level: int, key: str) -> int:
    """The 32-bit seed of one distorted sample: a hash of (seed, distortion, level, key), so
    each sample's noise is independent of order, worker and the other samples."""
    digest = hashlib.sha256(f"{seed}/{name}/{level}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
