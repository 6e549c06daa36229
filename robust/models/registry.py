"""One factory for every network: ``create(name, num_classes, **options)`` (timm style).

Every classifier is wrapped in :class:`Classifier`, which takes images in [0, 1] and
normalises inside its forward (ImageNet mean / std), so pixel-space methods (noise
training, recognition-aware processing) work on the raw image.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robust.errors import ParamError, RobustError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_RAW_INPUT: set[str] = set()  # networks that take the [0, 1] image itself (the gradient VAE)
_NOT_CLASSIFIERS: set[str] = set()  # networks whose forward gives no class logits (the gradient VAE)
_FAMILIES: dict[str, str] = {}  # name -> module that registers it when imported (see register_family)


def register(name: str, normalise: bool = True, classifier: bool = True) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: add a network builder ``fn(num_classes, image_size, **options)`` under
    ``name``; ``normalise=False`` for a network that takes the [0, 1] image unnormalised,
    ``classifier=False`` for one whose forward does not return class logits."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name} registered twice")
        _REGISTRY[name] = fn
        if not normalise:
            _RAW_INPUT.add(name)
        if not classifier:
            _NOT_CLASSIFIERS.add(name)
        return fn

    return add


def register_family(module: str, *names: str) -> None:
    """Declare that importing ``module`` registers ``names``; it is imported the first time one
    of them is built. torchvision's own import costs about 1.3 s (it pulls in ``torch._dynamo``),
    so only the stages that build a torchvision network pay it."""
    for name in names:
        _FAMILIES[name] = module


def _load_family(name: str) -> None:
    if name not in _REGISTRY and name in _FAMILIES:
        importlib.import_module(_FAMILIES[name])
        if name not in _REGISTRY:
            raise ValueError(f"{_FAMILIES[name]} was declared to register {name} but did not")


def available(classifiers_only: bool = False) -> list[str]:
    """The registered model names (only those giving class logits with ``classifiers_only``)."""
    return sorted(n for n in {*_REGISTRY, *_FAMILIES} if not (classifiers_only and n in _NOT_CLASSIFIERS))


class Classifier(nn.Module):
    """``net((x - mean) / std)`` for images ``x`` in [0, 1]; ``net`` is the bare network.
    With ``normalise=False`` (a network registered so, such as the gradient VAE) it is
    ``net(x)`` unchanged: one wrapper, so weights, training and loading are shared."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD, normalise: bool = True,
                 input_size: int | None = None) -> None:
        super().__init__()
        self.net, self.normalise, self.input_size = net, normalise, input_size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> Any:
        if self.input_size is not None:  # no shape test: torch.fx traces it for the folded evaluation forward
            # seed 003's upsampling of the stored images to the network's input size (bilinear, as
            # torchvision's Resize on tensors), in the forward so training and evaluation both see it
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=False)
        return self.net((x - self.mean) / self.std) if self.normalise else self.net(x)


def create(name: str, num_classes: int, *, image_size: int = 32, pretrained: str | None = None, input_size: int | None = None,
           **options: Any) -> Classifier:
    """Build a registered network for ``num_classes`` classes and ``image_size`` inputs.

    ``input_size``: the side the network runs at when it differs from the stored images'
    (seed 003 upsamples 64 px Tiny ImageNet to 224, or 380 for EfficientNet-B4): every input
    is resized to it inside the forward, and the network is built for that size (a 224 px
    network keeps torchvision's stem, so ImageNet weights fit every layer but the head).

    ``pretrained``: a local state-dict file (of the bare network, or of a ``Classifier``),
    or ``"torchvision"`` for the torchvision ImageNet weights already in the local torch hub
    cache. Nothing is ever downloaded; a missing file is a :class:`RobustError`. Tensors
    whose shape does not fit (a new head, a small-input stem) are left at their
    initialisation and listed in ``model.skipped_weights``.
    """
    _load_family(name)
    if name not in _REGISTRY:
        raise ParamError(f"Unknown model {name!r}.", f"use one of: {', '.join(available())}.")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ParamError(f"num_classes must be an integer >= 2, got {num_classes!r}.", "check the dataset's class list.")
    if input_size is not None and not (isinstance(input_size, int) and not isinstance(input_size, bool) and input_size >= 8):
        raise ParamError(f"input_size is {input_size!r}.", "give the network's input side in pixels (e.g. 224), or null to run at the stored size.")
    if input_size == image_size:
        input_size = None
    net = _REGISTRY[name](num_classes=num_classes, image_size=input_size or image_size, **options)
    model = Classifier(net, normalise=name not in _RAW_INPUT, input_size=input_size)
    model.skipped_weights = []  # type: ignore[assignment]
    if pretrained:
        model.skipped_weights = load_weights(model, weights_file(name, pretrained))  # type: ignore[assignment]
    return model


def weights_file(name: str, pretrained: str) -> Path:
    if pretrained != "torchvision":
        path = Path(pretrained)
        if not path.is_file():
            raise RobustError(f"Pretrained weights file {path} not found.", "give the path of a local state-dict file (.pt/.pth); nothing is downloaded.")
        return path
    from torchvision.models import get_model_weights

    try:
        url = get_model_weights(name).DEFAULT.url
    except (ValueError, KeyError) as exc:
        raise RobustError(f"torchvision has no pretrained weights for {name}.", "use a local state-dict file instead.") from exc
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not path.is_file():
        raise RobustError(
            f"torchvision's weights for {name} are not in the local cache ({path}).",
            f"copy {url.rsplit('/', 1)[1]} there (or pass its path as pretrained); this project never downloads.",
        )
    return path


def load_weights(model: Classifier, path: Path) -> list[str]:
    """Load a state dict into ``model.net`` where shapes fit; returns the keys left out."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-torch file raises many types
        raise RobustError(f"Cannot read weights from {path}: {exc}.", "give a state dict saved with torch.save.") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # an engine checkpoint
    if not isinstance(state, dict):
        raise RobustError(f"{path} does not hold a state dict.", "save model.state_dict() with torch.save.")
    if any(k.startswith("net.") for k in state):
        state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    own = model.net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise RobustError(f"No tensor in {path} fits the network.", "check that the file was saved from the same architecture.")
    model.net.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))
