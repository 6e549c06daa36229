"""The 19 ImageNet-C corruptions (Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019), written from the published
formulas and parameterised by a constants table and by the image size.

Why our own implementation: the ``imagecorruptions`` package (Michaelis et al., 2019) hard-codes
the ImageNet (224 px) constants. On 32 px images those are far too strong (fog and defocus blur
leave every model at chance), while the community's small-image benchmarks were made with
milder constants: CIFAR-10-C (``make_cifar_c.py``) and Tiny-ImageNet-C
(``make_tinyimagenet_c.py``, = ``make_imagenet_64_c.py``). Four tables (:data:`CONSTANTS`):

* ``imagenet``: ImageNet-C itself, Hendrycks' ``make_imagenet_c.py`` for 224 px images (what
  ``auto`` picks above 64 px): the package's constants where the two agree, and the script's
  formulas where the maintained package fork departs from them: the frost picture is one of
  the first 5 (``np.random.randint(5)``; ImageNet-C never used ``frost6``) cropped at its own
  size, and elastic is the script's random affine + smooth displacement field with its
  constants in pixels (``244 * 2``, ``244 * 0.7``, ``244 * 0.1`` at severity 1; the 244 is the
  script's own, "should have been 224"), scaled by ``side / 224`` on other sizes; the zoom crop
  is centred and pixelate upsamples with a box filter, as the script does;
* ``imagecorruptions``: the package's own constants AND the package fork's
  (``imagecorruptions-imaug``) variant of each formula: frost fitted to the image x 1.1 with
  bicubic resampling and drawn from all 6 pictures, elastic as a size-generic smooth field
  (alpha = 250 x k px, sigma = 1 %, bound 0.5 % of the size, no affine; on one 224 px photo at
  severity 1 its mean change is about a sixth of the script's), the zoom's top-left crop, nearest
  pixelate. With it, :func:`corrupt` equals ``imagecorruptions.corrupt`` called after
  ``np.random.seed(seed)`` (and with ``seed=seed`` for impulse noise and glass blur) bit for
  bit, for all 19 at any size (``tests/test_imagenet_c.py`` checks 32, 64 and 224 px);
* ``tinyimagenet`` (64 px) and ``cifar`` (32 px): the constants of Hendrycks' scripts, and
  their variant of the formulas where it differs from the package, listed per table in
  :class:`Constants`: the zoom crop is centred, the frost picture is resized by 0.2 / 0.3 and
  one of the first 5 pictures drawn, pixelate upsamples with a box filter, and elastic is the
  scripts' random affine + smooth field with (alpha, sigma, affine) as fractions of the image size.

Deviations from the scripts, chosen and documented: motion blur (and the blur of the snow
layer) uses the package's own shift-and-add kernel instead of ImageMagick's MotionBlurImage,
as the reference asks (so the snow layer is quantised to 8 bit after that blur, not before
it as in the scripts); the arithmetic (float32 plasma map, float64 colour layers) is the
package's for every table, which differs from the scripts' own only in the last float bits;
impulse noise is seeded (the scripts' scikit-image noise was not). Size-dependent values follow
the image: the plasma map is the next power of two of the longer side (= the image at 32 and
64 px), glass blur's pixel loop runs over the image, the frost crop and snow layer take the
image's size, pixelate resizes to ``size x c``.

Randomness: every draw comes from ``numpy.random.RandomState(seed)`` (the stream that
``np.random.seed(seed)`` gives the package), scikit-image's ``random_noise(rng=seed)`` for
impulse noise, and numba's generator seeded with ``seed`` for glass blur's pixel shuffle (the
package's fork draws those there too), so a corruption is a pure function of
(image, name, severity, constants, seed).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)  # fmt: skip
CONSTANTS_CHOICES = ("auto", "imagenet", "imagecorruptions", "tinyimagenet", "cifar")
#: ``constants: auto`` takes ``cifar`` up to this size, ``tinyimagenet`` up to the next, else ``imagenet``
AUTO_SIZES = ((32, "cifar"), (64, "tinyimagenet"))


@dataclass(frozen=True)
class Constants:
    """One constants table: five severities per corruption, and the formula variants it uses.

    ``zoom_anchor``: which part of a zoomed image is kept (``top-left``: the package,
    ``center``: Hendrycks' scripts). ``frost_scale``: ``None`` fits the frost picture to the
    image (x 1.1, bicubic; the package) or a resize factor at the table's size (bilinear; the
    scripts; 1: the picture at its own size, as ``make_imagenet_c.py`` crops it).
    ``frost_pictures``: how many of the six pictures are drawn from. ``pixelate_up``: PIL filter
    of the upsampling. ``elastic``: ``package``, ``scripts`` (constants as fractions of the
    side) or ``script-px`` (constants in pixels at the table's size; ``make_imagenet_c.py``).
    """

    name: str
    size: int  # the image size the table was made for
    values: dict[str, tuple[Any, ...]]
    zoom_anchor: str
    frost_scale: float | None
    frost_pictures: int
    pixelate_up: str
    elastic: str

    def level(self, corruption: str, severity: int) -> Any:
        return self.values[corruption][severity - 1]


def _zoom_ranges(*ends_and_steps: tuple[float, float]) -> tuple[np.ndarray, ...]:
    return tuple(np.arange(1, end, step) for end, step in ends_and_steps)


_CIFAR_ZOOM = _zoom_ranges((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01))

PACKAGE = Constants(
    name="imagecorruptions",
    size=224,
    values={
        "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
        "shot_noise": (60, 25, 12, 5, 3),
        "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
        "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
        "gaussian_blur": (1, 2, 3, 4, 6),
        "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
        "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
        "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
        "zoom_blur": _zoom_ranges((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
        "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
        "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
        "snow": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                 (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
        "spatter": ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                    (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
        "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
        "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
        "jpeg_compression": (25, 18, 15, 10, 7),
        "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
        # package form: (alpha in px, sigma and bound of the uniform field as fractions of the size)
        "elastic_transform": tuple((250 * k, 0.01, 0.005) for k in (0.05, 0.065, 0.085, 0.1, 0.12)),
    },
    zoom_anchor="top-left",
    frost_scale=None,
    frost_pictures=6,
    pixelate_up="nearest",
    elastic="package",
)

#: make_imagenet_c.py's elastic constants: (alpha, sigma, affine jitter) in pixels at 224 px
_SCRIPT_ELASTIC = ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2), (244 * 0.05, 244 * 0.01, 244 * 0.02),
                   (244 * 0.07, 244 * 0.01, 244 * 0.02), (244 * 0.12, 244 * 0.01, 244 * 0.02))

IMAGENET = Constants(
    name="imagenet",
    size=224,
    values={**PACKAGE.values, "elastic_transform": _SCRIPT_ELASTIC},
    zoom_anchor="center",
    frost_scale=1.0,
    frost_pictures=5,
    pixelate_up="box",
    elastic="script-px",
)

TINYIMAGENET = Constants(
    name="tinyimagenet",
    size=64,
    values={
        "gaussian_noise": (0.04, 0.08, 0.12, 0.15, 0.18),
        "shot_noise": (250, 100, 50, 30, 15),
        "impulse_noise": (0.01, 0.02, 0.05, 0.08, 0.14),
        "speckle_noise": (0.15, 0.2, 0.25, 0.3, 0.35),
        "gaussian_blur": (0.5, 0.75, 1, 1.25, 1.5),
        "glass_blur": ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
        "defocus_blur": ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
        "motion_blur": ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
        "zoom_blur": _CIFAR_ZOOM,
        "fog": ((0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
        "frost": ((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
        "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)),
        "spatter": ((0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
                    (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
        "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
        "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
        "jpeg_compression": (65, 58, 50, 40, 25),
        "pixelate": (0.9, 0.8, 0.7, 0.6, 0.5),
        # scripts' form: (alpha, sigma, affine range) as fractions of the image size
        "elastic_transform": ((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)),
    },
    zoom_anchor="center",
    frost_scale=0.3,
    frost_pictures=5,
    pixelate_up="box",
    elastic="scripts",
)

CIFAR = Constants(
    name="cifar",
    size=32,
    values={
        "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
        "shot_noise": (500, 250, 100, 75, 50),
        "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
        "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
        "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
        "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
        "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
        "zoom_blur": _CIFAR_ZOOM,
        "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
        "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
        "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
        "spatter": ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                    (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
        "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
        "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
        "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        "jpeg_compression": (80, 65, 58, 50, 40),
        "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
        "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    },
    zoom_anchor="center",
    frost_scale=0.2,
    frost_pictures=5,
    pixelate_up="box",
    elastic="scripts",
)

CONSTANTS: dict[str, Constants] = {c.name: c for c in (IMAGENET, PACKAGE, TINYIMAGENET, CIFAR)}


def choose_constants(setting: str, image_size: int) -> Constants:
    """The table for ``corrupt.constants``: ``auto`` picks ``cifar`` up to 32 px,
    ``tinyimagenet`` up to 64 px and ``imagenet`` above."""
    if setting == "auto":
        setting = next((name for limit, name in AUTO_SIZES if image_size <= limit), "imagenet")
    if setting not in CONSTANTS:
        raise KeyError(f"unknown constants table {setting!r}; use one of {', '.join(CONSTANTS_CHOICES)}")
    return CONSTANTS[setting]


# -- helpers ---------------------------------------------------------------------------------
def _unit(image: np.ndarray) -> np.ndarray:
    return image / 255.0


def _gaussian(image: np.ndarray, sigma: Any, **kwargs: Any) -> np.ndarray:
    from skimage.filters import gaussian

    return gaussian(image, sigma=sigma, **kwargs)


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """A normalised disk of ``radius`` px (on a grid of at least 17 x 17), anti-aliased by a
    small Gaussian blur: the defocus point-spread function."""
    import cv2

    half = 8 if radius <= 8 else radius
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    size = 3 if radius <= 8 else 5
    return cv2.GaussianBlur(disk, ksize=(size, size), sigmaX=alias_blur)


def _zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """The centre ``1/factor`` of ``image`` magnified by ``factor`` (bilinear), untrimmed."""
    from scipy.ndimage import zoom

    height, width = image.shape[:2]
    crop_h, crop_w = int(np.ceil(height / float(factor))), int(np.ceil(width / float(factor)))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return zoom(image[top : top + crop_h, left : left + crop_w], (factor, factor, 1), order=1)


def _trim(image: np.ndarray, height: int, width: int, anchor: str) -> np.ndarray:
    """``height x width`` of a zoomed image: its top-left corner (the package) or its centre."""
    if anchor == "center":
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        return image[top : top + height, left : left + width]
    return image[:height, :width]


def _motion_blur(image: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Shift-and-add motion blur along ``angle`` degrees: ``2 radius + 1`` copies of the image,
    shifted by up to ``2 radius + 1`` px with the border pixels repeated, weighted by a
    half-Gaussian of ``sigma`` (the package's replacement for ImageMagick's MotionBlurImage).
    The shifted copies are views into one edge-padded image (no copy per shift)."""
    width = radius * 2 + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    weights = weights / np.sum(weights)
    step_y, step_x = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    length = math.hypot(step_y, step_x)
    height, breadth = image.shape[:2]
    pad = width + 1
    padded = np.pad(image, ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2), mode="edge")
    blurred = np.zeros_like(image, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * step_y) / length) - 0.5)
        dx = -math.ceil(((i * step_x) / length) - 0.5)
        if abs(dy) >= height or abs(dx) >= breadth:
            break  # the motion left the image
        blurred = blurred + weights[i] * padded[pad - dy : pad - dy + height, pad - dx : pad - dx + breadth]
    return blurred


def _plasma_fractal(size: int, decay: float, rs: np.random.RandomState) -> np.ndarray:
    """A ``size x size`` (power of two) height map in [0, 1] by the diamond-square algorithm:
    each pass sets the centres of squares, then of diamonds, to the mean of their corners plus
    uniform noise whose amplitude shrinks by ``decay`` per pass."""
    heights = np.empty((size, size), dtype=np.float32)
    heights[0, 0] = 0
    step, wibble = size, 100.0

    def perturbed_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rs.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = heights[0:size:step, 0:size:step]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        heights[half:size:step, half:size:step] = perturbed_mean(squares)
        centres = heights[half:size:step, half:size:step]
        corners = heights[0:size:step, 0:size:step]
        heights[0:size:step, half:size:step] = perturbed_mean((centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1)))
        heights[half:size:step, 0:size:step] = perturbed_mean((centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0)))
        step //= 2
        wibble /= decay
    heights -= heights.min()
    return heights / heights.max()


@functools.lru_cache(maxsize=6)
def _frost_picture(index: int) -> np.ndarray:
    """Frost picture ``index`` (0-5) as BGR uint8: the six photographs that ship with the
    ``imagecorruptions`` package (read once per process)."""
    import importlib.resources

    import cv2

    names = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
    ref = importlib.resources.files("imagecorruptions") / "frost" / names[index]
    with importlib.resources.as_file(ref) as path:
        picture = cv2.imread(str(path))
    if picture is None:
        raise FileNotFoundError(f"frost picture {ref} could not be read; reinstall imagecorruptions-imaug")
    return picture


@functools.lru_cache(maxsize=64)
def _frost_resized(index: int, height: int, width: int, scale: float | None, table_size: int) -> np.ndarray:
    """The frost picture resized for a ``height x width`` image: fitted x 1.1 with bicubic
    resampling (``scale`` None, the package) or by the factor ``scale`` (bilinear, the scripts).

    The scripts' factor was made for their ``table_size`` (0.2 at 32 px, 0.3 at 64 px); on
    another size it grows with the image (``scale x side / table_size``), so the frost texture
    keeps its size relative to the image, and it is enlarged if the picture would still be too
    small to crop the image from (exactly the scripts' factor at their own size)."""
    import cv2

    picture = _frost_picture(index)
    if scale is not None:
        factor = scale * max(height, width) / table_size
        factor = max(factor, (height + 1) / picture.shape[0], (width + 1) / picture.shape[1])
        return picture if factor == 1 else cv2.resize(picture, (0, 0), fx=factor, fy=factor)
    fit = 1.0
    if picture.shape[0] < height or picture.shape[1] < width:
        fit = max(height / picture.shape[0] if picture.shape[0] < height else 0, width / picture.shape[1] if picture.shape[1] < width else 0)
    fit *= 1.1
    size = (int(np.ceil(picture.shape[1] * fit)), int(np.ceil(picture.shape[0] * fit)))
    return cv2.resize(picture, dsize=size, interpolation=cv2.INTER_CUBIC)


def _hsv_channel(image: np.ndarray, channel: int, scale: float, shift: float) -> np.ndarray:
    """Image in [0, 1] with HSV ``channel`` replaced by ``clip(channel * scale + shift)``."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(image)
    hsv[:, :, channel] = np.clip(hsv[:, :, channel] * scale + shift, 0, 1)
    return hsv2rgb(hsv)


# -- the corruptions: (uint8 image, level value, table, RandomState, seed) -> float image on 0..255
Corruption = Callable[[np.ndarray, Any, Constants, np.random.RandomState, int], np.ndarray]


def gaussian_noise(image, c, table, rs, seed):
    x = _unit(image)
    return np.clip(x + rs.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(image, c, table, rs, seed):
    return np.clip(rs.poisson(_unit(image) * c) / float(c), 0, 1) * 255


def impulse_noise(image, c, table, rs, seed):
    from skimage.util import random_noise

    return np.clip(random_noise(_unit(image), mode="s&p", rng=seed, amount=c), 0, 1) * 255


def speckle_noise(image, c, table, rs, seed):
    x = _unit(image)
    return np.clip(x + x * rs.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(image, c, table, rs, seed):
    return np.clip(_gaussian(_unit(image), c, channel_axis=-1), 0, 1) * 255


def glass_blur(image, c, table, rs, seed):
    sigma, max_delta, iterations = c
    blurred = np.uint8(_gaussian(_unit(image), sigma, channel_axis=-1) * 255)
    shuffled = _shuffle_pixels(blurred, max_delta, iterations, seed)
    return np.clip(_gaussian(shuffled / 255.0, sigma, channel_axis=-1), 0, 1) * 255


def defocus_blur(image, c, table, rs, seed):
    import cv2

    x = _unit(image)
    kernel = _disk_kernel(*c)
    channels = np.array([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]).transpose((1, 2, 0))
    return np.clip(channels, 0, 1) * 255


def motion_blur(image, c, table, rs, seed):
    return np.clip(_motion_blur(image, c[0], c[1], rs.uniform(-45, 45)), 0, 255)


def zoom_blur(image, c, table, rs, seed):
    x = _unit(image).astype(np.float32)
    height, width = x.shape[:2]
    total = np.zeros_like(x)
    for factor in c:
        layer = _trim(_zoom(x, factor), height, width, table.zoom_anchor)
        total[: layer.shape[0], : layer.shape[1]] += layer
    return np.clip((x + total) / (len(c) + 1), 0, 1) * 255


def snow(image, c, table, rs, seed):
    import cv2

    mean, std, zoom, threshold, radius, sigma, blend = c
    x = np.array(image, dtype=np.float32) / 255.0
    height, width = x.shape[:2]
    layer = _zoom(rs.normal(size=(height, width), loc=mean, scale=std)[..., np.newaxis], zoom)
    if table.zoom_anchor == "center":  # the scripts trim the zoomed layer before blurring it
        layer = _trim(layer, height, width, "center")
    layer[layer < threshold] = 0
    layer = _motion_blur(np.clip(layer.squeeze(), 0, 1), radius, sigma, rs.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[..., np.newaxis][:height, :width, :]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(height, width, 1)
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def frost(image, c, table, rs, seed):
    index = rs.randint(table.frost_pictures)
    height, width = image.shape[:2]
    picture = _frost_resized(index, height, width, table.frost_scale, table.size)
    top, left = rs.randint(0, picture.shape[0] - height), rs.randint(0, picture.shape[1] - width)
    crop = picture[top : top + height, left : left + width][..., [2, 1, 0]]
    return np.clip(c[0] * image + c[1] * crop, 0, 255)


def fog(image, c, table, rs, seed):
    strength, decay = c
    height, width = image.shape[:2]
    map_size = 1 << (max(height, width) - 1).bit_length()
    x = _unit(image)
    peak = x.max()
    x += strength * _plasma_fractal(map_size, decay, rs)[:height, :width][..., np.newaxis]
    return np.clip(x * peak / (peak + strength), 0, 1) * 255


def spatter(image, c, table, rs, seed):
    import cv2

    mean, std, sigma, threshold, intensity, mud = c
    x = np.array(image, dtype=np.float32) / 255.0
    liquid = _gaussian(rs.normal(size=x.shape[:2], loc=mean, scale=std), sigma)
    liquid[liquid < threshold] = 0
    if mud:
        mask = _gaussian(np.where(liquid > threshold, 1, 0).astype(np.float32), intensity)
        mask[mask < 0.8] = 0
        brown = np.concatenate([v / 255.0 * np.ones_like(image[..., :1]) for v in (63, 42, 20)], axis=2) * mask[..., np.newaxis]
        return np.clip(x * (1 - mask[..., np.newaxis]) + brown, 0, 1) * 255
    # water: drops outlined by their distance to the liquid layer's edges, in pale turquoise
    liquid = (liquid * 255).astype(np.uint8)
    dist = cv2.distanceTransform(255 - cv2.Canny(liquid, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    water = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
    peak = np.max(water, axis=(0, 1))  # (B, G, R, alpha = 1)
    if peak[0] == 0:
        # no drop fell (an empty layer, frequent on small images): the formula's 0/0 would
        # give NaN everywhere (a package bug); the image stays as it was
        return image.astype(np.float64)
    water = water / peak * intensity
    turquoise = cv2.cvtColor(np.concatenate([v / 255.0 * np.ones_like(water[..., :1]) for v in (175, 238, 238)], axis=2), cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(np.clip(cv2.cvtColor(x, cv2.COLOR_BGR2BGRA) + water * turquoise, 0, 1), cv2.COLOR_BGRA2BGR) * 255


def contrast(image, c, table, rs, seed):
    x = _unit(image)
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(image, c, table, rs, seed):
    return np.clip(_hsv_channel(_unit(image), 2, 1, c), 0, 1) * 255


def saturate(image, c, table, rs, seed):
    return np.clip(_hsv_channel(_unit(image), 1, c[0], c[1]), 0, 1) * 255


def jpeg_compression(image, c, table, rs, seed):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=c)
    with Image.open(buffer) as decoded:
        return np.array(decoded)


def pixelate(image, c, table, rs, seed):
    from PIL import Image

    height, width = image.shape[:2]
    up = Image.Resampling.NEAREST if table.pixelate_up == "nearest" else Image.Resampling.BOX
    small = Image.fromarray(image).resize((int(width * c), int(height * c)), Image.Resampling.BOX)
    return np.array(small.resize((width, height), up))


def elastic_transform(image, c, table, rs, seed):
    from scipy.ndimage import map_coordinates

    x = np.array(image, dtype=np.float32) / 255.0
    shape = x.shape
    if table.elastic == "package":
        alpha, sigma, bound = c[0], np.array(shape[:2]) * c[1], shape[0] * c[2]
    elif table.elastic == "script-px":  # make_imagenet_c.py: pixels at 224, scaled with the side elsewhere
        scale = shape[0] / table.size
        alpha, sigma, bound = c[0] * scale, c[1] * scale, 1
        x = _random_affine(x, c[2] * scale, rs)
    else:
        size = shape[0]
        alpha, sigma, bound = size * c[0], size * c[1], 1
        x = _random_affine(x, size * c[2], rs)
    dx = (_gaussian(rs.uniform(-bound, bound, size=shape[:2]), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (_gaussian(rs.uniform(-bound, bound, size=shape[:2]), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    cols, rows, chans = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = (np.reshape(rows + dy[..., np.newaxis], (-1, 1)), np.reshape(cols + dx[..., np.newaxis], (-1, 1)), np.reshape(chans, (-1, 1)))
    return np.clip(map_coordinates(x, indices, order=1, mode="reflect").reshape(shape), 0, 1) * 255


def _random_affine(x: np.ndarray, jitter: float, rs: np.random.RandomState) -> np.ndarray:
    """The scripts' random affine warp: three points around the centre moved by up to
    ``jitter`` px each, mirrored borders."""
    import cv2

    centre = np.float32(x.shape[:2]) // 2
    third = min(x.shape[:2]) // 3
    points = np.float32([centre + third, [centre[0] + third, centre[1] - third], centre - third])
    moved = points + rs.uniform(-jitter, jitter, size=points.shape).astype(np.float32)
    return cv2.warpAffine(x, cv2.getAffineTransform(points, moved), x.shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)


@functools.lru_cache(maxsize=1)
def _shuffle_kernel() -> Callable[..., np.ndarray]:
    """Glass blur's local pixel shuffle, compiled with numba (a pure-Python loop takes seconds
    per 224 px image); numba's generator is seeded inside, as the package's is. The compiled
    code is cached on disk (``__pycache__``), so only the first process of a run compiles it
    (about 3 s on the 2-core machine) and every later stage loads it."""
    from numba import njit

    @njit(cache=True)
    def shuffle(x, max_delta, iterations, seed):  # pragma: no cover - compiled
        np.random.seed(seed)
        height, width = x.shape[0], x.shape[1]
        for _ in range(iterations):
            for h in range(height - max_delta, max_delta, -1):
                for w in range(width - max_delta, max_delta, -1):
                    dx, dy = np.random.randint(-max_delta, max_delta, size=(2,))
                    hp, wp = h + dy, w + dx
                    x[h, w], x[hp, wp] = x[hp, wp], x[h, w]
        return x

    return shuffle


def _shuffle_pixels(x: np.ndarray, max_delta: int, iterations: int, seed: int) -> np.ndarray:
    return _shuffle_kernel()(x, max_delta, iterations, seed)


CORRUPTION_FNS: dict[str, Corruption] = {name: globals()[name] for name in CORRUPTIONS}
#: the random stream, reseeded per call (``seed`` on a kept RandomState takes ~1 us; building
#: a new one ~70 us, which was a third of a 32 px corruption); one per process
_STREAM = np.random.RandomState(0)


def corrupt(image: np.ndarray, name: str, severity: int, table: Constants, seed: int) -> np.ndarray:
    """``image`` (uint8 HxWx3) with corruption ``name`` at ``severity`` (1-5) of ``table``,
    drawing its randomness from ``seed`` (see the module doc). Float results are truncated to
    uint8, as the package does."""
    fn = CORRUPTION_FNS[name]
    _STREAM.seed(seed)
    out = fn(np.asarray(image, dtype=np.uint8), table.level(name, severity), table, _STREAM, seed)
    return np.uint8(out)


def level_values(table: Constants, name: str) -> list[Any]:
    """The five level values of ``name`` in ``table``, JSON-friendly (for info.json)."""
    return [np.round(v, 6).tolist() if isinstance(v, np.ndarray) else (list(v) if isinstance(v, Sequence) else v) for v in table.values[name]]
