"""Seed 002's image-processing tasks and the image-quality scores of their outputs.

A :class:`Task` turns clean images (float ``[N, 3, H, W]`` in [0, 1], exact uint8 values as
the shards store them) into the degraded inputs a processor P restores:

* ``sr``: PIL bicubic downsampling by ``scale`` (antialiased), stored as uint8, as the seed
  made its 56 px inputs from 224 px crops. The seed's factor is 4 at 224 px; on the 32 px
  default it is 2 (16 px inputs), ``methods.ra.tasks.sr.scale``. P upsamples by the same factor.
* ``denoise``: ``clamp(y + N(0, sigma^2), 0, 1)``, unquantised float (sigma 0.1 on [0, 1]).
* ``jpeg``: JPEG at ``quality`` (10) with PIL, decoded back.

Randomness (only ``denoise`` draws) comes from one seed per sample, so a degradation does not
depend on the batch it falls in: training draws the seeds from the engine's seeded torch
stream (a rerun and a resume repeat every epoch); evaluation derives them from the sample's
index in its split (:func:`eval_seeds`), so every evaluation sees the same inputs.

:meth:`Task.baseline` is the seed's no-processing row (bicubic upsampling back to the clean
size for ``sr``, the degraded input itself otherwise); :meth:`Task.sensor` is what a composed
``P -> R`` classifier does to any image before P: ``sr`` downsamples it (P needs its small
input); the others pass it unchanged (on the corruption benchmark the corruption is the
degradation, not JPEG q10 or noise on top of it).

PSNR and SSIM come from scikit-image (:func:`quality`): PSNR = 10 log10(1 / MSE) on [0, 1]
RGB, SSIM with an 11 x 11 Gaussian window (sigma 1.5, Wang et al.'s constants, population
covariance), averaged over the three channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from robust.data.loader import from_pixels, to_pixels
from robust.distortions import bicubic_resize, jpeg_roundtrip, sample_seed
from robust.errors import ParamError
from robust.params import Section, is_int, require

TASKS = ("sr", "denoise", "jpeg")
PSNR_CAP = 100.0  # dB: the PSNR of an exact copy (infinite) is counted as this


@dataclass(frozen=True)
class TaskParams(Section):
    """``methods.ra.tasks``: the degradation of each task."""

    sr: dict[str, Any] | None = None  # {scale: 2}
    denoise: dict[str, Any] | None = None  # {sigma: 0.1}
    jpeg: dict[str, Any] | None = None  # {quality: 10}

    section: ClassVar[str] = "methods.ra.tasks"

    def task(self, name: str, section: str = "methods.ra") -> "Task":
        """The configured :class:`Task` ``name`` (errors name ``section``, the entry or ``methods.ra``)."""
        if name not in TASKS:
            raise ParamError(f"{section}.task is {name!r}.", f"use one of: {', '.join(TASKS)}.")
        settings = getattr(self, name) or {}
        allowed = {"sr": {"scale"}, "denoise": {"sigma"}, "jpeg": {"quality"}}[name]
        require(isinstance(settings, dict), f"{section}.tasks.{name}", settings, f"a mapping of {', '.join(sorted(allowed))}")
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ParamError(f"Unknown setting {section}.tasks.{name}.{unknown[0]}.", f"{name} takes: {', '.join(sorted(allowed))}.")
        task = Task(name, **settings)
        task.validate(section)
        return task


@dataclass(frozen=True)
class Task:
    """One of seed 002's degradations (see the module doc)."""

    name: str
    scale: int = 2
    sigma: float = 0.1
    quality: int = 10

    def validate(self, section: str = "methods.ra") -> None:
        where = f"{section}.tasks.{self.name}"
        require(self.name in TASKS, f"{section}.task", self.name, " | ".join(TASKS))
        require(is_int(self.scale) and self.scale in (2, 4, 8), f"{where}.scale", self.scale, "2, 4 or 8 (2 at 32 px; the seed's 4 at 224 px)")
        require(isinstance(self.sigma, (int, float)) and not isinstance(self.sigma, bool) and 0 < self.sigma <= 1, f"{where}.sigma", self.sigma,
                "a number in (0, 1] on [0, 1] images (the seed: 0.1)")
        require(is_int(self.quality) and 1 <= self.quality <= 95, f"{where}.quality", self.quality, "an integer from 1 to 95 (the seed: 10)")

    @property
    def upscale(self) -> int:
        """P's upsampling factor: ``scale`` for super-resolution, 1 for the others."""
        return self.scale if self.name == "sr" else 1

    def degrade(self, images: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """P's inputs for clean ``images``, one seed per image (used by ``denoise`` only)."""
        if len(seeds) != len(images):
            raise ValueError(f"{len(seeds)} seeds for {len(images)} images")
        if self.name == "denoise":
            noise = torch.stack([torch.randn(images.shape[1:], generator=torch.Generator().manual_seed(int(s))) for s in seeds])
            return (images + self.sigma * noise.to(images)).clamp(0, 1)
        if self.name == "jpeg":
            return from_pixels(np.stack([jpeg_roundtrip(p, self.quality) for p in to_pixels(images)]), images)
        return self.sensor(images)

    def sensor(self, images: torch.Tensor) -> torch.Tensor:
        """What a ``P -> R`` classifier does to any image before P: ``sr`` downsamples by
        ``scale`` (P needs its small input); the others pass the image unchanged."""
        if self.name != "sr":
            return images
        pixels = to_pixels(images)
        height, width = pixels.shape[1:3]
        if height % self.scale or width % self.scale:
            raise ParamError(f"Images of {height}x{width} px cannot be downsampled by {self.scale}.",
                             "use a methods.ra.tasks.sr.scale that divides data.image_size.")
        return from_pixels(np.stack([bicubic_resize(p, width // self.scale, height // self.scale) for p in pixels]), images)

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The no-processing output: bicubic upsampling for ``sr``, the input itself otherwise."""
        if self.name != "sr":
            return inputs
        pixels = to_pixels(inputs)
        height, width = pixels.shape[1:3]
        return from_pixels(np.stack([bicubic_resize(p, width * self.scale, height * self.scale) for p in pixels]), inputs)


def eval_seeds(seed: int, task: str, indices: Sequence[int]) -> list[int]:
    """Per-sample seeds of an evaluation: a hash of (seed, task, index in the split)."""
    return [sample_seed(seed, f"ra-{task}", 0, str(int(i))) for i in indices]


def quality(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR (dB, capped at :data:`PSNR_CAP`) and SSIM of ``outputs`` against
    ``targets`` (both [N, 3, H, W] in [0, 1]), from scikit-image (see the module doc)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    out = outputs.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().double().numpy()
    ref = targets.detach().permute(0, 2, 3, 1).cpu().double().numpy()
    psnr = np.empty(len(out))
    ssim = np.empty(len(out))
    for i, (o, r) in enumerate(zip(out, ref)):
        psnr[i] = min(PSNR_CAP, peak_signal_noise_ratio(r, o, data_range=1.0)) if not np.array_equal(o, r) else PSNR_CAP
        ssim[i] = structural_similarity(r, o, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    return psnr, ssim
