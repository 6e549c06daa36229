"""SRResNet: the processing model P of recognition-aware image processing (seed 002).

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network" (CVPR 2017), in the slimmed form that Liu et al., "Exploring Simple and Transferable
Recognition-Aware Image Processing" (TPAMI 2022), use as their default P:

9x9 conv 3->C + PReLU; ``blocks`` residual blocks (3x3 conv, BN, PReLU, 3x3 conv, BN, skip);
3x3 conv + PReLU (no BN) plus the long skip from the first conv's output; log2(scale)
upsampling blocks (3x3 conv C->4C, PixelShuffle(2), PReLU); 9x9 conv C->3; output
(tanh(x) + 1) / 2 in (0, 1). Scale 1 (denoising, JPEG deblocking) has no upsampling block.

The seed's P is C = 64 with 5 blocks; the CPU default narrows it (``methods.ra.processor``).

``residual=True`` (not the seed's; the CPU default's choice, see the README) adds a global skip:
the output is ``clamp(base + tail, 0, 1)`` where ``base`` is the input (scale 1) or its bicubic
upsampling, and the last conv starts at zero, so P starts as the no-processing baseline and
learns a correction; its output is then clamped to [0, 1] instead of (tanh + 1) / 2 (which could
not pass the input through unchanged). The ``sr`` base is torch's bicubic interpolation (a = -0.75),
not PIL's (a = -0.5) that the tables' no-processing row uses: an untrained residual P is close
to, not equal to, that row. From scratch, the seed's P needs far more steps than a CPU budget gives
before it even matches its own input.
It takes and returns [0, 1] images (registered ``normalise=False``: a recogniser normalises
P's output inside its own graph, so gradients reach P).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robust.errors import ParamError
from robust.models.registry import register


class ResidualBlock(nn.Module):
    """3x3 conv, BN, PReLU, 3x3 conv, BN, plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """P: ``scale`` x upsampling (1 = same size) of a [0, 1] image (see the module doc)."""

    def __init__(self, scale: int = 1, width: int = 64, blocks: int = 5, residual: bool = False) -> None:
        super().__init__()
        if scale not in (1, 2, 4, 8):
            raise ParamError(f"srresnet scale is {scale!r}.", "use 1 (denoising, JPEG), 2, 4 or 8 (super-resolution).")
        if not (isinstance(width, int) and width >= 1 and isinstance(blocks, int) and blocks >= 0):
            raise ParamError(f"srresnet width {width!r} / blocks {blocks!r}.", "width: an integer >= 1 (64 in the seed); blocks: an integer >= 0 (5).")
        if not isinstance(residual, bool):
            raise ParamError(f"srresnet residual is {residual!r}.", "true (global skip, starts as the identity / bicubic) or false (the seed's P).")
        self.scale, self.residual = scale, residual
        self.head = nn.Sequential(nn.Conv2d(3, width, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.PReLU())
        self.upsample = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU())
            for _ in range(int(math.log2(scale)))
        ])  # fmt: skip
        self.tail = nn.Conv2d(width, 3, 9, padding=4)
        if residual:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.head(x)
        features = self.fuse(self.blocks(first)) + first
        out = self.tail(self.upsample(features))
        if not self.residual:
            return (torch.tanh(out) + 1) / 2
        base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return (base + out).clamp(0, 1)


@register("srresnet", normalise=False, classifier=False)
def srresnet(num_classes: int = 0, image_size: int = 32, scale: int = 1, width: int = 64, blocks: int = 5, residual: bool = False) -> nn.Module:
    """The seed's P (``num_classes`` / ``image_size`` are ignored: P is not a classifier)."""
    return SRResNet(scale, width, blocks, residual)
