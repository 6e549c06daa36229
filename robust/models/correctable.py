"""Correctable conv layers: which conv layers of a network DeepCorrect (Borkar & Karam, IEEE
TIP 2019; seed 000) ranks and corrects, and how to run the network in two pieces around one
of them.

One small adapter per network family turns a bare network (``Classifier.net``) into a
:class:`Layout`:

* ``steps``, the network's forward pass as a flat list run one after the other: a string is
  the dotted path of a submodule, an ``nn.Module`` a stateless op (``nn.Flatten``);
* ``layers``, the ordered conv layers: each names its conv, its batch norm (``None`` when the
  network has none, as AlexNet) and the activation its output feeds.

Ranking reads the activation's output (post-ReLU, before pooling / LRN) and runs the steps
after it; a correction unit wraps the conv (pre-activation). Families covered:

* ``DeepCorrectNet`` (conv -> BN -> ReLU blocks in ``layers``);
* ``AlexNetSmall``, torchvision's ``AlexNet`` and ``VGG`` (``features`` of conv [-> BN] -> ReLU
  with pools between, then ``avgpool``, flatten, ``classifier``).

A user adds another family with ``@correctable(TheirNet)`` on a function
``TheirNet -> Layout`` (:func:`features_layout` covers any ``features`` / ``avgpool`` /
``classifier`` network); :func:`check_layout` tells whether the steps reproduce the
network's own forward pass, which a new adapter should be tested with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from robust.errors import ParamError
from robust.models.small_nets import AlexNetSmall, DeepCorrectNet

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)


@dataclass(frozen=True)
class ConvLayer:
    """One correctable conv layer: paths (in the bare network) of the conv, its BN or None, its activation."""

    conv: str
    norm: str | None
    act: str


@dataclass(frozen=True)
class Layout:
    """A network's forward pass as flat ``steps`` and its correctable conv ``layers``, in order."""

    steps: tuple[str | nn.Module, ...]
    layers: tuple[ConvLayer, ...]

    def __post_init__(self) -> None:
        names = [s for s in self.steps if isinstance(s, str)]
        where = [names.index(layer.act) if names.count(layer.act) == 1 else -1 for layer in self.layers]
        if any(w < 0 for w in where) or where != sorted(set(where)):
            raise ValueError("every conv layer's activation must be one step of the layout, once, in forward order")

    def after(self, layer: int) -> tuple[str | nn.Module, ...]:
        """The steps that follow conv layer ``layer``'s activation (1-based)."""
        return self.steps[self.steps.index(self.layers[layer - 1].act) + 1:]

    def upto(self, layer: int) -> tuple[str | nn.Module, ...]:
        """The steps up to and including conv layer ``layer``'s activation (1-based)."""
        return self.steps[: self.steps.index(self.layers[layer - 1].act) + 1]


_ADAPTERS: dict[type | str, Callable[[nn.Module], Layout]] = {}  # a class, or its "module.QualName" (torchvision's, not imported here)


class CorrectionWrapper(nn.Module):
    """Base of a module that has replaced a conv (DeepCorrect's ``CorrectedConv``): a network
    holding one is already corrected and has no layout of its own."""


def correctable(*classes: type | str) -> Callable[[Callable[[nn.Module], Layout]], Callable[[nn.Module], Layout]]:
    """Decorator: register ``fn(net) -> Layout`` as the adapter of the network ``classes`` (a class,
    or the dotted name of one whose library need not be imported, e.g. torchvision's)."""

    def add(fn: Callable[[nn.Module], Layout]) -> Callable[[nn.Module], Layout]:
        for cls in classes:
            _ADAPTERS[cls] = fn
        return fn

    return add


def layout(net: nn.Module) -> Layout:
    """The :class:`Layout` of a bare network, from the adapter of its class (or a base class)."""
    if any(isinstance(m, CorrectionWrapper) for m in net.modules()):
        raise ParamError(f"This {type(net).__name__} already carries correction units.", "rank, correct or fine-tune the baseline it was made from.")
    for cls in type(net).__mro__:
        for key in (cls, f"{cls.__module__}.{cls.__qualname__}"):
            if key in _ADAPTERS:
                return _ADAPTERS[key](net)
    known = ", ".join(sorted(c.rsplit(".", 1)[-1] if isinstance(c, str) else c.__name__ for c in _ADAPTERS))
    raise ParamError(f"DeepCorrect has no adapter for {type(net).__name__}: it cannot tell its conv layers and their activations.",
                     f"use a network it knows ({known}), or register one with @correctable({type(net).__name__}) "
                     "in robust/models/correctable.py (the README's DeepCorrect section shows how).")


def sequential_layers(seq: nn.Sequential, prefix: str) -> list[ConvLayer]:
    """The conv [-> BN] -> activation triples of a flat ``nn.Sequential`` (paths ``prefix.<i>``)."""
    items = list(seq)
    found = []
    for i, module in enumerate(items):
        if not isinstance(module, nn.Conv2d):
            continue
        j = i + 1
        norm = None
        if j < len(items) and isinstance(items[j], nn.BatchNorm2d):
            norm, j = f"{prefix}.{j}", j + 1
        if j >= len(items) or not isinstance(items[j], ACTIVATIONS):
            raise ParamError(f"{prefix}.{i} of {type(seq).__name__} is a conv not followed by [BN ->] an activation.",
                             "write an adapter for this network (robust/models/correctable.py).")
        found.append(ConvLayer(f"{prefix}.{i}", norm, f"{prefix}.{j}"))
    return found


@correctable(AlexNetSmall, "torchvision.models.alexnet.AlexNet", "torchvision.models.vgg.VGG")
def features_layout(net: nn.Module) -> Layout:
    """``features`` (conv [-> BN] -> ReLU, pools between) -> ``avgpool`` -> flatten -> ``classifier``."""
    steps = [f"features.{i}" for i in range(len(net.features))] + ["avgpool", nn.Flatten(1), "classifier"]
    return Layout(tuple(steps), tuple(sequential_layers(net.features, "features")))


@correctable(DeepCorrectNet)
def deepcorrect_net_layout(net: DeepCorrectNet) -> Layout:
    """Every block of ``layers`` is conv -> BN -> ReLU; then the global average pool."""
    layers = tuple(ConvLayer(f"layers.{i}.conv", f"layers.{i}.bn", f"layers.{i}.relu") for i in range(len(net.layers)))
    steps = [path for layer in layers for path in (layer.conv, layer.norm, layer.act)] + ["pool", nn.Flatten(1)]
    return Layout(tuple(steps), layers)  # type: ignore[arg-type]


def run_steps(net: nn.Module, steps: tuple[str | nn.Module, ...], x: torch.Tensor) -> torch.Tensor:
    """``x`` through ``steps`` of ``net`` in order."""
    for step in steps:
        x = (net.get_submodule(step) if isinstance(step, str) else step)(x)
    return x


def replace(net: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at the dotted ``path`` of ``net``."""
    parent, _, name = path.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, name, module)


@torch.no_grad()
def check_layout(net: nn.Module, x: torch.Tensor) -> bool:
    """Whether the adapter's steps give exactly the network's own output on ``x`` (in eval
    mode; the network's mode is restored)."""
    was_training = net.training
    net.eval()
    try:
        return bool(torch.equal(run_steps(net, layout(net).steps, x), net(x)))
    finally:
        net.train(was_training)
