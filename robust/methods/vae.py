"""The seed-001 VAE (Kwon et al., ICIP 2019), trained on the clean train split only.

A ``models:`` entry with ``method: vae`` and ``arch: vae``. The VAE takes the shards' images
resized to ``methods.vae.image_size`` (28 in the reference). The step is the per-image
negative ELBO, BCE summed over pixels + KLD summed over the latent, averaged over the
batch (the original summed over the batch too; with Adam only the scale of the logged
loss differs). Validation is the same loss on the clean val split in eval mode (z = mu),
and the epoch with the lowest one is what ``model.pt`` holds, as in the original.
Settings: ``methods.vae.train`` (Adam 1e-3, batch 128, no augmentation, constant rate).

It is a ``study_models:`` entry (``train-study@vae``): not a classifier, no leaderboard row;
the ``gradients`` and ``detect`` stages read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robust.data.loader import make_loader
from robust.methods.common import Context, Run, build
from robust.errors import ParamError
from robust.models.gradient_vae import valid_sides
from robust.params import is_int, require

#: this method's models are not classifiers: no top-1, no leaderboard row
CLASSIFIER = False


def input_size(settings: dict[str, Any]) -> int:
    """``methods.vae.image_size``: the side the VAE resizes its inputs to (28 in the reference).
    It lives in the method's section, not in ``gradients:``, so that editing it reruns
    ``train@vae`` and the gradient stages only (a train@ stage depends on its own method's
    section)."""
    unknown = sorted(set(settings) - {"image_size", "arch"})
    if unknown:
        raise ParamError(f"Unknown setting methods.vae.{unknown[0]}.", "methods.vae takes image_size (and train:).")
    size = settings.get("image_size", 28)
    require(is_int(size) and size >= 12 and (size - 12) % 16 == 0, "methods.vae.image_size", size,
            f"a side the VAE's decoder reproduces, 12 + 16 k: {', '.join(map(str, valid_sides(76)))}, ... (28 in the reference)")
    return int(size)


def loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, None]:
    """Mean per-image negative ELBO; no logits (the engine then counts no top-1)."""
    bce, kld, _ = model(images)
    return (bce + kld).mean(), None


@torch.no_grad()
def mean_loss(model: nn.Module, folder: Path, batch_size: int = 512, device: torch.device | None = None) -> dict[str, Any]:
    """Mean BCE, KLD and their sum over a shard folder in eval mode (z = mu): the VAE's validation loss."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    sums, n = np.zeros(2), 0
    for images, _ in make_loader(folder, batch_size):
        bce, kld, _ = model(images.to(device))
        sums += [float(bce.sum()), float(kld.sum())]
        n += len(images)
    model.train(was_training)
    return {"bce": sums[0] / n, "kld": sums[1] / n, "loss": float(sums.sum() / n), "n": n}


def setup(ctx: Context) -> Run:
    """Every weight of the VAE trains; validation loss picks the kept epoch."""
    # the VAE resizes its inputs itself (GradientVAE.prepare): the same resize in training and in the gradients stage
    model = build({"arch": ctx.spec.get("arch", "vae"), "side": input_size(ctx.settings)}, ctx.clean_dir)
    val = ctx.clean_dir / "val"
    batch = ctx.train.batch_size

    def validate(net: nn.Module) -> dict[str, float]:
        return {"loss": mean_loss(net, val, batch)["loss"]}

    return Run(model, list(model.parameters()), loss_fn=loss_fn, validate=validate, keep_best="val_loss")
