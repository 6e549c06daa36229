"""Full-reference quality indices, one function each, one signature.

``index(reference, distorted, model, settings) -> scores``: ``reference`` and ``distorted``
are batches ``[B, 3, H, W]`` in [0, 1] (pairs of one size), the result is ``[B]`` with
higher = better quality. :data:`INDICES` is the registry (``psnr``, ``ssim``, ``unique``,
``gradient``); ``model`` is the trained :class:`~robust.gradient_features.iqa.autoencoder.SparseAutoencoder`
(unused by ``psnr`` / ``ssim``).

* ``psnr``: scikit-image's PSNR over the three channels (data range 1), capped at
  :data:`PSNR_CAP` dB so identical pairs stay finite for the logistic fit.
* ``ssim``: scikit-image's SSIM on BT.601 luma, Gaussian window sigma 1.5 (11 x 11), sample
  covariance off (Wang et al.'s window and constants; their ``ssim.m`` also first downsamples
  by ``round(min(H, W) / 256)``, 2 on TID2013, which is not done here).
* ``unique`` (Temel et al. 2016, the activation baseline) and ``gradient`` (Kwon et al. 2019,
  seed 001) follow the authors' released MATLAB code as ``../shared/reference/gradient-features.md``
  describes it: both images resized by ``scale`` (bicubic, antialiased, as MATLAB's
  ``imresize``), converted to "YGCr" (MATLAB's ``rgb2ycbcr`` with Cb replaced by G), cut into
  non-overlapping 8 x 8 patches (192-vectors, Y block first), mean-subtracted and
  ZCA-whitened (epsilon 0.1) with each image's OWN patch covariance (``whitening: own``, the
  code's) or with the training patches' (``trained``, a choice for images with few patches).
  UNIQUE compares the encoder activations; the gradient index compares the projections of
  both images on the reference's decoder-weight gradient (:func:`decoder_gradient`).
  Both: values below ``threshold`` (0.025) set to 0, score ``|Spearman(ref, dist)| ** exponent``
  (exponent 10).

Choices the reference leaves open, taken here and documented in the README: the gradient
features are weighted (kurtosis) before the 0.025 threshold, in the order the reference lists
them (and as the released code does); a Spearman correlation that is undefined (a constant
feature vector) scores 0, unless both vectors are identical (1); MATLAB's rounding to uint8
after ``imresize`` and ``rgb2ycbcr`` is not reproduced (float throughout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from robust.gradient_features.iqa.autoencoder import PATCH, SparseAutoencoder
from robust.params import Section, require

PSNR_CAP = 100.0
Y_ROWS = PATCH * PATCH  # the Y block of a 192-vector patch
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class IndexSettings(Section):
    """How UNIQUE and the gradient index read an image pair (the ``iqa:`` keys they use)."""

    scale: float = 0.5            # resize factor before patching (the original's 0.5)
    whitening: str = "own"        # own (each image's patch covariance, the original) | trained
    epsilon: float = 0.1          # ZCA regulariser
    threshold: float = 0.025      # feature values below it are set to 0
    exponent: float = 10.0        # score = |Spearman| ** exponent

    section: ClassVar[str] = "iqa"

    def validate(self, section: str = "iqa") -> None:
        for name in ("scale", "epsilon", "exponent"):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, f"{section}.{name}", value, "a number > 0")
        require(isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool) and self.threshold >= 0,
                f"{section}.threshold", self.threshold, "a number >= 0")
        require(self.whitening in ("own", "trained"), f"{section}.whitening", self.whitening, "own | trained")


# -- preprocessing -------------------------------------------------------------------------------
def ygcr(images: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` of [0, 1] RGB (Y in [16, 235] / 255, Cr in [16, 240] / 255) with the
    Cb channel replaced by G: channels (Y, G, Cr)."""
    r, g, b = images[:, 0], images[:, 1], images[:, 2]
    y = (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cr = (128.0 + 112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return torch.stack([y, g, cr], dim=1)


def resize(images: torch.Tensor, scale: float) -> torch.Tensor:
    """Bicubic, antialiased resize by ``scale`` (MATLAB ``imresize``), clamped to [0, 1]."""
    if scale == 1:
        return images
    return F.interpolate(images, scale_factor=scale, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def patches(images: torch.Tensor) -> torch.Tensor:
    """Non-overlapping 8 x 8 patches of YGCr images as columns ``[B, 192, N]`` (Y block first;
    a border that does not fill a patch is dropped)."""
    if min(images.shape[-2:]) < PATCH:
        raise ValueError(f"images of {tuple(images.shape[-2:])} px hold no {PATCH} x {PATCH} patch")
    return F.unfold(images, kernel_size=PATCH, stride=PATCH)


def zca_matrix(columns: torch.Tensor, epsilon: float) -> torch.Tensor:
    """ZCA whitening matrix ``U diag(1 / sqrt(s + eps)) U^T`` of mean-free columns ``[..., D, N]``."""
    covariance = columns @ columns.transpose(-1, -2) / columns.shape[-1]
    eigenvalues, vectors = torch.linalg.eigh(covariance.double())
    scale = (eigenvalues.clamp_min(0) + epsilon).rsqrt()
    return ((vectors * scale.unsqueeze(-2)) @ vectors.transpose(-1, -2)).to(columns.dtype)


def whitened_patches(images: torch.Tensor, model: SparseAutoencoder, settings: IndexSettings) -> torch.Tensor:
    """Resize, YGCr, patches, mean-subtraction and ZCA: ``[B, 192, N]``."""
    columns = patches(ygcr(resize(images, settings.scale)))
    if settings.whitening == "trained":
        return model.zca @ (columns - model.mean_patch.view(1, -1, 1))
    return zca_whiten(columns - columns.mean(dim=-1, keepdim=True), settings.epsilon)


def zca_whiten(columns: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``zca_matrix(columns) @ columns`` without forming the matrix: with the thin SVD
    ``X = U S V^T`` it is ``U diag(s / sqrt(s^2 / N + eps)) V^T`` (exact; cheap when an image
    has fewer patches than 192)."""
    u, s, vh = torch.linalg.svd(columns.double(), full_matrices=False)
    gain = s / (s.square() / columns.shape[-1] + epsilon).sqrt()
    return ((u * gain.unsqueeze(-2)) @ vh).to(columns.dtype)


# -- rank agreement ------------------------------------------------------------------------------
def spearman_rows(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman correlation of each row pair of ``[B, L]`` arrays (scipy's tie-averaged ranks,
    then Pearson); undefined -> 0, identical rows -> 1."""
    a_np, b_np = a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()
    ra, rb = stats.rankdata(a_np, axis=1), stats.rankdata(b_np, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denominator > 0, (ra * rb).sum(axis=1) / denominator, 0.0)
    rho[np.all(a_np == b_np, axis=1)] = 1.0
    return rho


def _agreement(ref_features: torch.Tensor, dist_features: torch.Tensor, settings: IndexSettings) -> torch.Tensor:
    ref_features = torch.where(ref_features < settings.threshold, 0.0, ref_features).flatten(1)
    dist_features = torch.where(dist_features < settings.threshold, 0.0, dist_features).flatten(1)
    return torch.from_numpy(np.abs(spearman_rows(ref_features, dist_features)) ** settings.exponent)


# -- the indices ---------------------------------------------------------------------------------
def _numpy_images(images: torch.Tensor) -> np.ndarray:
    return images.detach().cpu().double().permute(0, 2, 3, 1).numpy()


def psnr(reference: torch.Tensor, distorted: torch.Tensor, model: SparseAutoencoder | None = None,
         settings: IndexSettings | None = None) -> torch.Tensor:
    """PSNR in dB (scikit-image), capped at :data:`PSNR_CAP`."""
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(r, d, data_range=1.0) for r, d in zip(_numpy_images(reference), _numpy_images(distorted))]
    return torch.tensor(np.minimum(values, PSNR_CAP))


def ssim(reference: torch.Tensor, distorted: torch.Tensor, model: SparseAutoencoder | None = None,
         settings: IndexSettings | None = None) -> torch.Tensor:
    """SSIM (scikit-image) of the BT.601 luma, Gaussian 11 x 11 window, sigma 1.5, no downsampling."""
    weights = np.array(LUMA)
    values = [structural_similarity(r @ weights, d @ weights, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
              for r, d in zip(_numpy_images(reference), _numpy_images(distorted))]
    return torch.tensor(values)


@torch.no_grad()
def unique(reference: torch.Tensor, distorted: torch.Tensor, model: SparseAutoencoder | None = None,
           settings: IndexSettings | None = None) -> torch.Tensor:
    """UNIQUE: rank agreement of the encoder activations ``sigmoid(W1 x + b1)`` of all patches."""
    settings = settings or IndexSettings()
    model = _need(model, "unique")
    ref, dist = (model.encode(whitened_patches(x, model, settings).transpose(1, 2)) for x in (reference, distorted))
    return _agreement(ref, dist, settings)


def decoder_gradient(model: SparseAutoencoder, columns: torch.Tensor) -> torch.Tensor:
    """Per image, the gradient of the reconstruction loss ``1/(2m) sum ||x_hat - x||^2`` of its
    whitened patches ``columns`` [B, 192, m] w.r.t. the decoder weight W2: ``(x_hat - x) a^T / m``,
    ``[B, 192, 400]`` (no sparsity or weight-decay term, as the released code)."""
    a = model.encode(columns.transpose(1, 2))                       # [B, m, 400]
    residual = model.decoder(a).transpose(1, 2) - columns          # [B, 192, m]
    return residual @ a / columns.shape[-1]


def unit_weights(gradient: torch.Tensor) -> torch.Tensor:
    """Per hidden unit, 2 when the kurtosis of its normalised Y rows of the gradient is above 3
    (heavier-tailed than a Gaussian), else 1: ``[B, 400]``. Normalised as the released
    ``mslCompute_Gradients.m``: the Y block (64 x 400) minus its overall mean, each of the 64
    rows divided by its largest absolute value over the units; MATLAB's ``kurtosis(., 0, 2)``
    (bias-corrected, not excess) over each unit's 64 values."""
    y_block = gradient[:, :Y_ROWS, :].detach().cpu().double()
    y_block = y_block - y_block.mean(dim=(1, 2), keepdim=True)
    y_block = y_block / y_block.abs().amax(dim=2, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    kurtosis = stats.kurtosis(y_block.numpy(), axis=1, fisher=False, bias=False)
    return torch.from_numpy(np.where(kurtosis > 3, 2.0, 1.0)).to(gradient.dtype)


def gradient_features(projection: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``log(y / (1 - y))`` of the projections ``y`` [B, 400, N] taken as complex numbers, as
    (abs, angle) pairs weighted per unit: ``[B, 2, 400, N]``."""
    projection = projection.double()
    ratio = projection / (1 - projection)
    ratio = torch.where(ratio == 0, torch.finfo(torch.float64).tiny, ratio)      # log 0
    ratio = torch.where(torch.isinf(ratio), torch.finfo(torch.float64).max, ratio)  # y = 1
    logit = torch.log(torch.complex(ratio, torch.zeros_like(ratio)))
    w = weights.double().unsqueeze(-1)
    return torch.stack([logit.abs() * w, logit.angle() * w], dim=1).float()


@torch.no_grad()
def gradient(reference: torch.Tensor, distorted: torch.Tensor, model: SparseAutoencoder | None = None,
             settings: IndexSettings | None = None) -> torch.Tensor:
    """Seed 001's index: both images' whitened patches projected on the reference's decoder
    gradient (``y = W2grad^T x``), compared as :func:`gradient_features`."""
    settings = settings or IndexSettings()
    model = _need(model, "gradient")
    ref_columns, dist_columns = (whitened_patches(x, model, settings) for x in (reference, distorted))
    grad = decoder_gradient(model, ref_columns)
    weights = unit_weights(grad)
    ref, dist = (gradient_features(grad.transpose(1, 2) @ columns, weights) for columns in (ref_columns, dist_columns))
    return _agreement(ref, dist, settings)


def _need(model: SparseAutoencoder | None, name: str) -> SparseAutoencoder:
    if model is None:
        raise ValueError(f"the {name} index needs the trained sparse autoencoder")
    return model


IndexFn = Callable[[torch.Tensor, torch.Tensor, "SparseAutoencoder | None", "IndexSettings | None"], torch.Tensor]

#: name -> index; the report's and ``robust iqa``'s order
INDICES: dict[str, IndexFn] = {"psnr": psnr, "ssim": ssim, "unique": unique, "gradient": gradient}
