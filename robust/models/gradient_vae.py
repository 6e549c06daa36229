"""The VAE and the distortion detector of backpropagated-gradient features (Kwon,
Prabhushankar, Temel & AlRegib, "Distorted Representation Space Characterization Through
Backpropagated Gradients", ICIP 2019; seed 001).

The VAE is trained on clean images only. Its input is a 28 x 28 RGB image in [0, 1] (no
normalisation): the shards' images are resized to ``image_size`` inside its own forward
(:meth:`GradientVAE.prepare`, antialiased bilinear, as PIL's resize of the original code), so
any shard size works and training and gradient extraction resize the same way. The decoder
ends at ``16 s - 20`` pixels for an encoder output of side ``s``, so only sides 12, 28, 44,
60, ... (12 + 16 k) are built; any other is refused (:func:`check_side`).

Encoder: four conv 4x4 / stride 2 / padding 2 with ReLU, channels 3 -> 3 -> 6 -> 9 -> 12
(28 -> 15 -> 8 -> 5 -> 3), flatten 108, ``mu`` and ``logvar`` = Linear(108, 20) each.
Decoder: Linear(20, 108) -> (12, 3, 3) (no activation, as the authors' ``VAECURECNN``), four transposed convs 4x4 / stride 2 with
paddings 2, 1, 2, 1 (3 -> 4 -> 8 -> 14 -> 28), channels 12 -> 9 -> 6 -> 3 -> 3, ReLU between,
sigmoid at the end. Loss per image = BCE(reconstruction, x) summed over pixels + KLD summed
over the latent. In eval mode z = mu (the original's extraction); in train mode z is sampled.

Which weights give the features (:data:`ENCODER_WEIGHT`, :data:`DECODER_WEIGHTS`): the KLD
gradient w.r.t. the LAST encoder conv's weight (12 x 9 x 4 x 4 = 1,728 values) and the BCE
gradient w.r.t. the LAST decoder layer's weight (3 x 3 x 4 x 4 = 144 values).

:class:`Detector` is the paper's MLP: Linear(D, 40) - ReLU - Linear(40, 20) - ReLU -
Linear(20, 1), one logit (the sigmoid is inside the BCE-with-logits loss and the score).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robust.models.registry import register

LATENT = 20
ENCODER_WEIGHT = "encoder.6.weight"  # the last encoder conv (the original's ``down_6``)
#: ``gradients.bce_layer`` -> the decoder weight the BCE gradient is taken of. ``last`` (3 x 3 x 4 x 4 =
#: 144 values; the reference and the authors' extraction script, ``up_6``) or ``first`` (12 x 9 x 4 x 4 =
#: 1,728; what the authors' detector-training script loads, ``up_0``: their code disagrees with itself)
DECODER_WEIGHTS = {"last": "decoder.6.weight", "first": "decoder.0.weight"}


def valid_sides(up_to: int = 512) -> list[int]:
    """The input sides the VAE's decoder reproduces exactly: 12 + 16 k."""
    return list(range(12, up_to + 1, 16))


def check_side(image_size: int) -> int:
    """``image_size`` if the VAE is built for it (:func:`valid_sides`), else a :class:`ParamError`."""
    from robust.errors import ParamError

    if not (isinstance(image_size, int) and not isinstance(image_size, bool) and image_size >= 12 and (image_size - 12) % 16 == 0):
        raise ParamError(f"The VAE cannot be built for {image_size!r} px inputs: its decoder ends at 12 + 16 k px.",
                         f"use one of {', '.join(map(str, valid_sides(76)))}, ... (28, the reference's).")
    return image_size


class GradientVAE(nn.Module):
    """The reference VAE; ``forward(x)`` -> (bce, kld, mu) per image, ``reconstruct(x)`` ->
    (reconstruction, mu, logvar) (see the module doc)."""

    def __init__(self, image_size: int = 28, latent: int = LATENT) -> None:
        super().__init__()
        self.image_size = check_side(image_size)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 3, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(3, 6, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(6, 9, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(9, 12, 4, 2, 2), nn.ReLU(),
        )  # fmt: skip
        side = image_size
        for _ in range(4):
            side = side // 2 + 1  # (side + 2 * 2 - 4) // 2 + 1
        self.side = side
        flat = 12 * side * side
        self.mu = nn.Linear(flat, latent)
        self.logvar = nn.Linear(flat, latent)
        self.project = nn.Linear(latent, flat)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(12, 9, 4, 2, 2), nn.ReLU(),
            nn.ConvTranspose2d(9, 6, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(6, 3, 4, 2, 2), nn.ReLU(),
            nn.ConvTranspose2d(3, 3, 4, 2, 1),
        )  # fmt: skip

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] at the VAE's input size (antialiased bilinear resize when needed)."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return x

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x).flatten(1)
        return self.mu(h), self.logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.project(z).view(-1, 12, self.side, self.side))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(bce, kld, mu) per image: what training minimises and the gradients differentiate."""
        x = self.prepare(x)
        mu, logvar = self.encode(x)
        logits = self.decode_logits(self._latent(mu, logvar))
        bce = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none").flatten(1).sum(1)
        kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).float().sum(1)
        return bce, kld, mu

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction in [0, 1] at the VAE's size, mu, logvar)."""
        mu, logvar = self.encode(self.prepare(x))
        return torch.sigmoid(self.decode_logits(self._latent(mu, logvar))), mu, logvar

    def _latent(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu


class Detector(nn.Module):
    """The paper's distortion detector on a feature vector: D -> 40 -> 20 -> 1 logit, after
    an optional fixed per-feature standardisation (``(x - shift) / scale``, identity until
    :meth:`set_standardisation`), kept in the state dict so the saved detector is complete."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        self.net = nn.Sequential(nn.Linear(features, 40), nn.ReLU(), nn.Linear(40, 20), nn.ReLU(), nn.Linear(20, 1))

    def set_standardisation(self, mean: Any, std: Any) -> None:
        """z-score inputs with these statistics (a constant feature keeps scale 1)."""
        std = torch.as_tensor(std, dtype=torch.float32)
        self.shift.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.shift) / self.scale).squeeze(-1)


@register("vae", normalise=False, classifier=False)
def vae(num_classes: int, image_size: int = 32, side: int = 28) -> nn.Module:
    """The seed-001 VAE (labels unused) for ``side`` px inputs (``methods.vae.image_size``): it
    resizes the shards' ``image_size`` images itself (:meth:`GradientVAE.prepare`)."""
    return GradientVAE(image_size=side)
