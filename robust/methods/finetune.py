"""Fine-tuning, DeepCorrect's comparison (seed 000): the baseline's first ``layers`` conv
layers (with their BN, if any; the network's adapter in :mod:`robust.models.correctable`
names them) or ``all`` of it, trained on the same clean / distorted mix and budget as the
correction units. Layers outside the trained ones keep their weights; their BN running
statistics still follow the data, as in a plain ``model.train()`` fine-tune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robust.methods.common import Context, Run, configured_distortion, load_base, mix_loss
from robust.models.correctable import layout
from robust.errors import ParamError
from robust.params import Section, is_int, require


@dataclass(frozen=True)
class FinetuneSettings(Section):
    """``methods.finetune`` (+ the entry's overrides)."""

    distortion: str = "dc_blur"
    fraction: float = 0.5  # share of each batch distorted (seed 000: about half)
    layers: int | str = "all"

    section: ClassVar[str] = "methods.finetune"

    def validate(self, section: str) -> None:
        require(isinstance(self.fraction, (int, float)) and 0 <= self.fraction <= 1, f"{section}.fraction", self.fraction, "a number from 0 to 1")
        require(self.layers == "all" or (is_int(self.layers) and self.layers >= 1), f"{section}.layers", self.layers, "all or an integer >= 1")


def setup(ctx: Context) -> Run:
    settings = FinetuneSettings.from_dict(ctx.settings, f"models.{ctx.name}")
    model = load_base(ctx)
    if settings.layers == "all":
        parameters = list(model.parameters())
    else:
        layers = layout(model.net).layers
        if settings.layers > len(layers):
            raise ParamError(f"models.{ctx.name}.layers is {settings.layers}, but the network has {len(layers)} conv layers.", f"use at most {len(layers)}, or all.")
        paths = [path for layer in layers[: settings.layers] for path in (layer.conv, layer.norm) if path]
        parameters = [p for path in paths for p in model.net.get_submodule(path).parameters()]
    chosen = {id(p) for p in parameters}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return Run(model, parameters, mix_loss(configured_distortion(ctx, settings.distortion), settings.fraction))
