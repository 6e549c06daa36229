"""torchvision classifiers, adapted to small inputs.

Adaptation for ``image_size <= 64`` (the CIFAR-style changes that keep enough resolution
for 32 / 64 px images):

* ResNet, DenseNet: the 7x7 stride-2 stem becomes a 3x3 stride-1 conv and the stem max-pool
  is removed;
* EfficientNet, SqueezeNet: the first conv's stride 2 becomes 1;
* VGG: the 7x7 adaptive pool becomes 1x1 and the first classifier layer takes 512 inputs;
* AlexNet (torchvision's, >= 64 px only): unchanged; ``alexnet_small`` is the small-input
  AlexNet used as the mCE normaliser.

Pretrained ImageNet weights still load into every layer whose shape did not change.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tv

from robust.errors import ParamError
from robust.models.registry import register

SMALL = 64


def _small(image_size: int) -> bool:
    return image_size <= SMALL


def _restride(conv: nn.Conv2d) -> None:
    conv.stride = (1, 1)


def _resnet(builder, num_classes: int, image_size: int) -> nn.Module:
    net = builder(num_classes=num_classes)
    if _small(image_size):
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


@register("resnet18")
def resnet18(num_classes: int, image_size: int = 32) -> nn.Module:
    """ResNet-18 (He et al., 2016)."""
    return _resnet(tv.resnet18, num_classes, image_size)


@register("resnet50")
def resnet50(num_classes: int, image_size: int = 32) -> nn.Module:
    """ResNet-50 (He et al., 2016), the backbone of seed 004."""
    return _resnet(tv.resnet50, num_classes, image_size)


@register("densenet121")
def densenet121(num_classes: int, image_size: int = 32) -> nn.Module:
    """DenseNet-121 (Huang et al., 2017)."""
    net = tv.densenet121(num_classes=num_classes)
    if _small(image_size):
        net.features.conv0 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
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


@register("squeezenet1_1")
def squeezenet1_1(num_classes: int, image_size: int = 32) -> nn.Module:
    """SqueezeNet 1.1 (Iandola et al., 2016)."""
    net = tv.squeezenet1_1(num_classes=num_classes)
    if _small(image_size):
        _restride(net.features[0])
    return net


@register("alexnet")
def alexnet(num_classes: int, image_size: int = 224) -> nn.Module:
    """torchvision's AlexNet (Krizhevsky et al., 2012); needs inputs of at least 64 px."""
    if image_size < 64:
        raise ParamError(f"alexnet needs images of at least 64 px, got {image_size}.", "use alexnet_small for small images.")
    return tv.alexnet(num_classes=num_classes)


def _efficientnet(variant: str):
    builder = getattr(tv, f"efficientnet_{variant}")

    def build(num_classes: int, image_size: int = 32) -> nn.Module:
        net = builder(num_classes=num_classes)
        if _small(image_size):
            _restride(net.features[0][0])
        return net

    build.__doc__ = f"EfficientNet-{variant.upper()} (Tan & Le, 2019), compared in seed 003."
    return build


for _variant in ("b0", "b1", "b2", "b3", "b4"):
    register(f"efficientnet_{_variant}")(_efficientnet(_variant))
