"""The noise generator of adversarial noise training (Rusak et al., "A simple way to make
neural networks robust against diverse image corruptions", ECCV 2020; seed 004).

It ignores the image: it maps z ~ N(0, 1) of the image's shape to a noise pattern,
``net(z) + z``. ``1x1``: four 1x1 convs (3 -> 20 -> 20 -> 20 -> 3, ReLU between), so the
noise is independent per pixel but may correlate across colour channels; ``3x3``: the
second conv is a 3x3 without padding, so the noise is spatially correlated; z is then
sampled 1 px larger on each side (2 px in total, what one unpadded 3x3 conv removes) and
the residual is z cropped back. Weights start at N(0, 0.01) and biases at 0, so at
initialisation the output is very nearly z: Gaussian noise.
"""

from __future__ import annotations

import torch
from torch import nn

VARIANTS = ("1x1", "3x3")


class NoiseGenerator(nn.Module):
    """``generator(n, height, width)`` -> n noise patterns of shape (n, channels, height, width)."""

    def __init__(self, variant: str = "1x1", channels: int = 3, hidden: int = 20) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"noise generator variant must be one of {VARIANTS}, got {variant!r}")
        self.variant, self.channels = variant, channels
        middle = 3 if variant == "3x3" else 1
        self.margin = (middle - 1) // 2
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, middle), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )  # fmt: skip
        for module in self.net:
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
        m = self.margin
        device = self.net[0].weight.device
        z = torch.randn(n, self.channels, height + 2 * m, width + 2 * m, generator=generator, device="cpu" if generator is not None else device).to(device)
        residual = z[:, :, m:m + height, m:m + width] if m else z
        return self.net(z) + residual
