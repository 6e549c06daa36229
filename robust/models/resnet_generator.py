"""The ResNet generator: the transformer T of "RA with transformer" (seed 002).

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution" (ECCV 2016), as CycleGAN's ``ResnetGenerator`` (Zhu et al., ICCV 2017),
which Liu et al., "Exploring Simple and Transferable Recognition-Aware Image Processing"
(TPAMI 2022), put between P and the recogniser:

7x7 conv 3->C (reflection padding) + norm + ReLU; ``downsamplings`` 3x3 stride-2 convs,
doubling the channels (C -> 4C with two); ``blocks`` residual blocks (reflection pad, 3x3
conv, norm, ReLU, reflection pad, 3x3 conv, norm, skip); as many 3x3 stride-2 transposed
convs back; 7x7 conv to 3; tanh, mapped to [0, 1] as (tanh(x) + 1) / 2 so T's output is an
image the recogniser normalises like any other.

The seed's T is C = 64, two downsamplings, 6 blocks, batch norm (``norm: instance`` is
CycleGAN's other choice); the CPU default narrows it (``methods.ra.transformer``).

``residual=True`` (not the seed's; the CPU default's choice, as for P) adds a global skip: the
output is ``clamp(x + tail, 0, 1)`` with the last conv starting at zero, so T starts as the
identity and learns a change of P's output; from a random start a CPU budget leaves T's
output far from any image a recogniser knows.
"""

from __future__ import annotations

import torch
from torch import nn

from robust.errors import ParamError
from robust.models.registry import register

NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}


class GeneratorBlock(nn.Module):
    """Reflection-padded 3x3 conv, norm, ReLU, 3x3 conv, norm, plus the input."""

    def __init__(self, width: int, norm: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), norm(width), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), norm(width),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """T: a [0, 1] image -> a [0, 1] image of the same size (sides divisible by 2**downsamplings)."""

    def __init__(self, width: int = 64, blocks: int = 6, downsamplings: int = 2, norm: str = "batch", residual: bool = False) -> None:
        super().__init__()
        if not isinstance(residual, bool):
            raise ParamError(f"resnet_generator residual is {residual!r}.", "true (global skip, starts as the identity) or false (the seed's T).")
        if norm not in NORMS:
            raise ParamError(f"resnet_generator norm is {norm!r}.", "use batch (the default) or instance.")
        if not (isinstance(width, int) and width >= 1 and isinstance(blocks, int) and blocks >= 0 and isinstance(downsamplings, int) and downsamplings >= 0):
            raise ParamError(f"resnet_generator width {width!r} / blocks {blocks!r} / downsamplings {downsamplings!r}.",
                             "integers: width >= 1 (64 in the seed), blocks >= 0 (6), downsamplings >= 0 (2).")
        layer = NORMS[norm]
        self.factor = 2**downsamplings
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7, bias=False), layer(width), nn.ReLU(inplace=True)]
        channels = width
        for _ in range(downsamplings):
            layers += [nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False), layer(2 * channels), nn.ReLU(inplace=True)]
            channels *= 2
        layers += [GeneratorBlock(channels, layer) for _ in range(blocks)]
        for _ in range(downsamplings):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                       layer(channels // 2), nn.ReLU(inplace=True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, 3, 7)]
        self.layers = nn.Sequential(*layers)
        self.residual = residual
        if residual:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"resnet_generator needs image sides divisible by {self.factor}, got {tuple(x.shape[-2:])}")
        out = self.layers(x)
        return (x + out).clamp(0, 1) if self.residual else (torch.tanh(out) + 1) / 2


@register("resnet_generator", normalise=False, classifier=False)
def resnet_generator(num_classes: int = 0, image_size: int = 32, width: int = 64, blocks: int = 6, downsamplings: int = 2,
                     norm: str = "batch", residual: bool = False) -> nn.Module:
    """The seed's T (``num_classes`` / ``image_size`` are ignored: T is not a classifier)."""
    return ResnetGenerator(width, blocks, downsamplings, norm, residual)
