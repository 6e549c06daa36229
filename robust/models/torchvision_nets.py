"""torchvision classifiers, adapted to small inputs.

Adaptation for ``image_size <= 64`` (the CIFAR-style changes that keep enough resolution
for 32 / 64 px images):

* ResNet, DenseNet: the 7x7 stride-2 stem becomes a 3x3 stride-1 conv and the stem max-pool
  is removed; ResNet's ``width`` and DenseNet's ``growth_rate`` / ``block_config`` /
  ``init_features`` make CPU-sized members of the same family;
* EfficientNet, SqueezeNet: the first conv's stride 2 becomes 1; SqueezeNet's ``width`` and
  EfficientNet's ``width`` / ``depth`` (on top of the variant's own compound scaling) make
  CPU-sized members of the family;
* VGG: the 7x7 adaptive pool becomes 1x1 and the first classifier layer takes 512 inputs;
* AlexNet (torchvision's, >= 64 px only): unchanged; ``alexnet_small`` is the small-input
  AlexNet used as the mCE normaliser.

Pretrained ImageNet weights still load into every layer whose shape did not change.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tv
from torchvision.models.efficientnet import _efficientnet_conf  # torchvision's compound-scaling table (private, stable since 0.13)
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.squeezenet import Fire

from robust.errors import ParamError
from robust.models.registry import register

SMALL = 64


def _small(image_size: int) -> bool:
    return image_size <= SMALL


def _restride(conv: nn.Conv2d) -> None:
    conv.stride = (1, 1)


class ScaledResNet(tv.ResNet):
    """torchvision's ResNet with every stage's channels times ``width`` (64-128-256-512 at 1,
    16-32-64-128 at 0.25): the same blocks, strides and depth, fewer channels. At ``width=1``
    it has torchvision's layer shapes and parameter count (its random initial draws differ)."""

    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int, width: float = 1.0) -> None:
        if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 < width <= 4):
            raise ParamError(f"resnet width is {width!r}.", "use a number in (0, 4] (1 = torchvision's ResNet; 0.25 for the CPU default).")
        self.width = float(width)
        super().__init__(block, layers, num_classes=num_classes)
        stem = self.channels(64)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.fc = nn.Linear(self.channels(512) * block.expansion, num_classes)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def channels(self, planes: int) -> int:
        return max(4, round(planes * self.width))

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # noqa: ANN001, ANN202 -- torchvision's signature
        if planes == 64:  # the first stage: its input is the (scaled) stem
            self.inplanes = self.channels(64)
        return super()._make_layer(block, self.channels(planes), blocks, stride, dilate)


def _resnet(block: type[nn.Module], layers: list[int], num_classes: int, image_size: int, width: float) -> nn.Module:
    net = ScaledResNet(block, layers, num_classes, width)
    if _small(image_size):
        net.conv1 = nn.Conv2d(3, net.channels(64), kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


@register("resnet18")
def resnet18(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """ResNet-18 (He et al., 2016); ``width`` scales its channels (seed 002's R is ResNet-18)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, image_size, width)


@register("resnet50")
def resnet50(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """ResNet-50 (He et al., 2016), the backbone of seed 004; ``width`` scales its channels."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, image_size, width)


@register("resnet101")
def resnet101(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """ResNet-101 (He et al., 2016), one of seed 002's transfer recognisers; ``width`` scales its channels."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, image_size, width)


@register("densenet121")
def densenet121(num_classes: int, image_size: int = 32, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                init_features: int = 64) -> nn.Module:
    """DenseNet-121 (Huang et al., 2017); torchvision's own ``growth_rate``, ``block_config`` and
    ``num_init_features`` (here ``init_features``) size it down for a CPU, same dense blocks."""
    if not (isinstance(growth_rate, int) and growth_rate >= 1 and isinstance(init_features, int) and init_features >= 1
            and len(block_config) >= 1 and all(isinstance(b, int) and b >= 1 for b in block_config)):
        raise ParamError(f"densenet121 growth_rate {growth_rate!r} / block_config {block_config!r} / init_features {init_features!r}.",
                         "positive integers, e.g. growth_rate 32, block_config [6, 12, 24, 16], init_features 64 (DenseNet-121).")
    net = tv.DenseNet(growth_rate=growth_rate, block_config=tuple(block_config), num_init_features=init_features, num_classes=num_classes)
    if _small(image_size):
        net.features.conv0 = nn.Conv2d(3, init_features, kernel_size=3, stride=1, padding=1, bias=False)
        net.features.pool0 = nn.Identity()
    return net


@register("vgg16_bn")
def vgg16_bn(num_classes: int, image_size: int = 32) -> nn.Module:
    """VGG-16 with batch norm (Simonyan & Zisserman, 2015)."""
    net = tv.vgg16_bn(num_classes=num_classes)
    if _small(image_size):
        net.avgpool = nn.AdaptiveAvgPool2d(1)
        net.classifier[0] = nn.Linear(512, 4096)
    return net


#: SqueezeNet 1.1's fire modules (squeeze, expand per branch), "pool" where a max-pool sits (Iandola et al., 2016)
SQUEEZENET_1_1 = ((16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (48, 192), (48, 192), (64, 256), (64, 256))


def _scaled(channels: int, width: float) -> int:
    return max(4, round(channels * width))


def _check_width(name: str, width: float) -> None:
    if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 < width <= 4):
        raise ParamError(f"{name} width is {width!r}.", "use a number in (0, 4] (1 = torchvision's network).")


@register("squeezenet1_1")
def squeezenet1_1(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """SqueezeNet 1.1 (Iandola et al., 2016), compared in seed 003. ``width`` scales the stem and
    every fire module's squeeze and expand channels (same modules, pools and depth); at 1 it is
    torchvision's network, layer for layer."""
    _check_width("squeezenet1_1", width)
    net = tv.SqueezeNet(version="1_1", num_classes=num_classes)
    if width != 1:
        layers: list[nn.Module] = [nn.Conv2d(3, _scaled(64, width), kernel_size=3, stride=2), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)]
        channels = _scaled(64, width)
        for spec in SQUEEZENET_1_1:
            if spec == "pool":
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
                continue
            squeeze, expand = (_scaled(c, width) for c in spec)
            layers.append(Fire(channels, squeeze, expand, expand))
            channels = 2 * expand
        net.features = nn.Sequential(*layers)
        net.classifier[1] = nn.Conv2d(channels, num_classes, kernel_size=1)
        for m in net.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                if m is net.classifier[1]:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)
    if _small(image_size):
        _restride(net.features[0])
    return net


@register("alexnet")
def alexnet(num_classes: int, image_size: int = 224) -> nn.Module:
    """torchvision's AlexNet (Krizhevsky et al., 2012); needs inputs of at least 64 px."""
    if image_size < 64:
        raise ParamError(f"alexnet needs images of at least 64 px, got {image_size}.", "use alexnet_small for small images.")
    return tv.alexnet(num_classes=num_classes)


#: torchvision's EfficientNet-B0..B4: (width multiplier, depth multiplier, dropout), from Tan & Le (2019)
EFFICIENTNET = {"b0": (1.0, 1.0, 0.2), "b1": (1.0, 1.1, 0.2), "b2": (1.1, 1.2, 0.3), "b3": (1.2, 1.4, 0.3), "b4": (1.4, 1.8, 0.4)}


def _efficientnet(variant: str):  # noqa: ANN202 -- returns a builder
    base_width, base_depth, dropout = EFFICIENTNET[variant]

    def build(num_classes: int, image_size: int = 32, width: float = 1.0, depth: float = 1.0) -> nn.Module:
        for name, value in (("width", width), ("depth", depth)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 4):
                raise ParamError(f"efficientnet_{variant} {name} is {value!r}.", "use a number in (0, 4] (1 = torchvision's network).")
        # the compound scaling itself: the variant's multipliers times ours, over B0's MBConv stages
        # (torchvision's own table; channels rounded to multiples of 8, layers per stage rounded up)
        stages, last_channel = _efficientnet_conf(f"efficientnet_{variant}", width_mult=base_width * width, depth_mult=base_depth * depth)
        net = tv.EfficientNet(stages, dropout, num_classes=num_classes, last_channel=last_channel)
        if _small(image_size):
            _restride(net.features[0][0])
        return net

    build.__doc__ = (f"EfficientNet-{variant.upper()} (Tan & Le, 2019), compared in seed 003. ``width`` / ``depth`` multiply "
                     "its channel and layer multipliers (same MBConv stages, kernels and strides); at 1 it is torchvision's network.")
    return build


for _variant in EFFICIENTNET:
    register(f"efficientnet_{_variant}")(_efficientnet(_variant))
