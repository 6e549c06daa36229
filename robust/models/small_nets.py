"""Small networks written for this project: the DeepCorrect CIFAR all-conv net and a
small-input AlexNet (the mCE normaliser on 32 / 64 px data)."""

from __future__ import annotations

from torch import nn

from robust.models.registry import register


class ConvBNReLU(nn.Sequential):
    """conv -> BN -> ReLU; ``conv`` (pre-activation) and ``relu`` outputs are what DeepCorrect uses."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int | str = "same") -> None:
        if padding == "same":
            padding = kernel // 2
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)


class DeepCorrectNet(nn.Module):
    """The all-convolutional CIFAR-100 baseline of DeepCorrect (Borkar & Karam, 2019).

    3x3-96, 3x3-96, 3x3-96/2, 3x3-192, 3x3-192, 3x3-192/2, 3x3-192 valid, 1x1-192,
    1x1-classes, global average pool; every conv followed by BN + ReLU (as in the reference,
    the class scores too). 1.39 M parameters at ``width=1`` with 100 classes. ``width``
    scales every hidden layer (0.25 keeps the default CPU pipeline fast).
    """

    def __init__(self, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        a, b = max(8, round(96 * width)), max(8, round(192 * width))
        self.layers = nn.Sequential(
            ConvBNReLU(3, a, 3),
            ConvBNReLU(a, a, 3),
            ConvBNReLU(a, a, 3, stride=2, padding=1),
            ConvBNReLU(a, b, 3),
            ConvBNReLU(b, b, 3),
            ConvBNReLU(b, b, 3, stride=2, padding=1),
            ConvBNReLU(b, b, 3, padding=0),
            ConvBNReLU(b, b, 1),
            ConvBNReLU(b, num_classes, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.layers(x)).flatten(1)


@register("deepcorrect_net")
def deepcorrect_net(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    return DeepCorrectNet(num_classes, width)


class AlexNetSmall(nn.Module):
    """AlexNet's shape (5 conv + 3 FC, ReLU, max-pools, dropout) for 32-64 px inputs.

    conv 5x5-64, pool, conv 5x5-192, pool, conv 3x3-384, 3x3-256, 3x3-256, pool, adaptive
    pool to 3x3, FC 1024, FC 1024, FC classes; ``width`` scales channels and FC sizes. It is
    the normaliser of mCE on datasets without published AlexNet errors, as ImageNet's
    AlexNet is for ImageNet-C.
    """

    def __init__(self, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        c = [max(8, round(v * width)) for v in (64, 192, 384, 256, 256)]
        fc = max(16, round(1024 * width))
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(3)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c[4] * 9, fc), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True),
            nn.Linear(fc, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


@register("alexnet_small")
def alexnet_small(num_classes: int, image_size: int = 32, width: float = 1.0) -> nn.Module:
    return AlexNetSmall(num_classes, width)
