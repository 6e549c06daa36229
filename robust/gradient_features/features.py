"""Backpropagated-gradient features of the seed-001 VAE, per sample and batched.

For every image, ONE forward pass of the VAE (eval mode, z = mu) gives the per-image BCE
and KLD; the backward passes of that one forward give

* the KLD gradient w.r.t. the last encoder conv's weight (1,728 values) and
* the BCE gradient w.r.t. a decoder weight (``bce_layer``: ``last``, 144 values, or
  ``first``, 1,728; see :data:`robust.models.gradient_vae.DECODER_WEIGHTS`),

concatenated (KLD block first) into the gradient feature; the latent ``mu`` (20 values) is
the activation baseline. The original took the two gradients in two separate passes over
shuffled loaders, so a sample's KLD and BCE blocks came from different images (a bug this
code cannot have: both come from the same forward pass). ``normalise`` is the per-block L2
normalisation the reference leaves ambiguous: ``none`` (raw, the released detector
script), ``bce`` (the BCE block only, an older version) or ``both`` (each block).

Per-sample gradients are computed batched (one batched forward and backward to the two
layers' outputs, then ``torch.func.vmap`` over each layer's weight backward), not with a
batch-size-1 loop: ``benchmarks/gradients.py`` measures the ratio and checks the values
against the loop's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import vmap
from tqdm import tqdm

from robust.data.loader import make_loader
from robust.data.shards import atomic_dir, read_info, sha256_file, write_json
from robust.distortions import built_test_sets
from robust.engine import pick_device
from robust.errors import DataError, ParamError
from robust.models.gradient_vae import DECODER_WEIGHTS, ENCODER_WEIGHT
from robust.params import Section, is_int, require

NORMALISE = ("none", "bce", "both")


@dataclass
class Features:
    """One set's per-sample features: ``gradients`` [N, D], ``mu`` [N, 20], ``loss`` [N]
    (BCE + KLD, the VAE's own score) and ``labels`` [N] (class labels of the images)."""

    gradients: np.ndarray
    mu: np.ndarray
    loss: np.ndarray
    labels: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"gradients": self.gradients, "mu": self.mu, "loss": self.loss, "labels": self.labels}


def _vae(model: nn.Module) -> nn.Module:
    """The bare VAE of a registry model (``Classifier`` wraps it with ``normalise=False``)."""
    return getattr(model, "net", model)


def _normalised(block: torch.Tensor) -> torch.Tensor:
    return block / block.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _weight_gradient(layer: nn.Conv2d | nn.ConvTranspose2d) -> Any:
    """``(inputs [N, ...], output_grads [N, ...]) -> [N, weight.numel()]``: each sample's
    gradient of ``layer``'s weight, a ``vmap`` over the layer's own weight backward
    (``aten.convolution_backward``, the op autograd runs: no forward is recomputed, which
    ``vmap`` over ``vjp`` did, at 4x the cost for the last decoder layer)."""
    weight = layer.weight.detach()
    transposed = isinstance(layer, nn.ConvTranspose2d)
    output_padding = list(layer.output_padding) if transposed else [0, 0]

    def one(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        _, grad_weight, _ = torch.ops.aten.convolution_backward(g.unsqueeze(0), a.unsqueeze(0), weight, None, list(layer.stride), list(layer.padding),
                                                                list(layer.dilation), transposed, output_padding, layer.groups, [False, True, False])
        return grad_weight.flatten()

    return vmap(one)


def per_sample_features(model: nn.Module, images: torch.Tensor, *, bce_layer: str = "last", normalise: str = "none") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gradients [N, D], mu [N, 20], loss [N]) of ``images`` (in [0, 1], any size; the VAE
    resizes them).

    ONE batched forward pass (eval mode: no sample affects another, there is no batch norm),
    so the gradient of the summed KLD (BCE) w.r.t. a layer's output is, row by row, each
    sample's own; each sample's weight gradient is then the layer's weight backward for that
    row, ``vmap``-ed over the batch. Equal to per-image autograd (:func:`loop_features`, checked
    in the tests and the benchmark) at a fraction of the cost."""
    if bce_layer not in DECODER_WEIGHTS:
        raise ValueError(f"bce_layer must be one of {list(DECODER_WEIGHTS)}, got {bce_layer!r}")
    if normalise not in NORMALISE:
        raise ValueError(f"normalise must be one of {NORMALISE}, got {normalise!r}")
    vae = _vae(model).eval()
    modules = dict(vae.named_modules())
    encoder, decoder = modules[ENCODER_WEIGHT.rsplit(".", 1)[0]], modules[DECODER_WEIGHTS[bce_layer].rsplit(".", 1)[0]]
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(name: str) -> Any:
        def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen[name] = (inputs[0].detach(), output)

        return hook

    handles = [encoder.register_forward_hook(keep("encoder")), decoder.register_forward_hook(keep("decoder"))]
    try:
        with torch.enable_grad():
            bce, kld, mu = vae(images)  # the one forward pass
            (kld_out,) = torch.autograd.grad(kld.sum(), seen["encoder"][1], retain_graph=True)
            (bce_out,) = torch.autograd.grad(bce.sum(), seen["decoder"][1])
    finally:
        for handle in handles:
            handle.remove()
    kld_grad = _weight_gradient(encoder)(seen["encoder"][0], kld_out)
    bce_grad = _weight_gradient(decoder)(seen["decoder"][0], bce_out)
    if normalise in ("bce", "both"):
        bce_grad = _normalised(bce_grad)
    if normalise == "both":
        kld_grad = _normalised(kld_grad)
    return torch.cat([kld_grad, bce_grad], dim=1).detach(), mu.detach(), (bce + kld).detach()


def loop_features(model: nn.Module, images: torch.Tensor, *, bce_layer: str = "last") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same raw features with plain autograd, one image at a time (two backward passes
    of one forward each): the reference :func:`per_sample_features` is checked against."""
    vae = _vae(model).eval()
    params = dict(vae.named_parameters())
    encoder, decoder = params[ENCODER_WEIGHT], params[DECODER_WEIGHTS[bce_layer]]
    grads, mus, losses = [], [], []
    for image in images:
        bce, kld, mu = vae(image.unsqueeze(0))
        (kld_grad,) = torch.autograd.grad(kld.sum(), encoder, retain_graph=True)
        (bce_grad,) = torch.autograd.grad(bce.sum(), decoder)
        grads.append(torch.cat([kld_grad.flatten(), bce_grad.flatten()]))
        mus.append(mu[0].detach())
        losses.append((bce + kld)[0].detach())
    return torch.stack(grads), torch.stack(mus), torch.stack(losses)


def feature_sizes(model: nn.Module, bce_layer: str = "last") -> dict[str, int]:
    """The length of each block: ``kld`` (encoder weight), ``bce`` (decoder weight), ``mu``."""
    params = dict(_vae(model).named_parameters())
    return {"kld": params[ENCODER_WEIGHT].numel(), "bce": params[DECODER_WEIGHTS[bce_layer]].numel(), "mu": params["mu.weight"].shape[0]}


def describe(bce_layer: str, normalise: str) -> dict[str, Any]:
    """What the feature files hold (written beside them)."""
    return {"gradients": f"[KLD grad of {ENCODER_WEIGHT}, BCE grad of {DECODER_WEIGHTS[bce_layer]}]", "normalise": normalise,
            "activations": "mu (eval mode, z = mu)", "loss": "BCE + KLD per image"}


# -- the gradients: section and the extraction stage --------------------------------------------
@dataclass(frozen=True)
class GradientParams(Section):
    """The ``gradients:`` section: the VAE entry, the features and the detectors (seed 001)."""

    model: str = "vae"                     # the study_models: entry of the VAE (method: vae)
    train_distortion: str = "frost"  # the detectors' one training distortion (the seed: gaussian_blur; CURE-TSR: cure_gaussian_blur)
    train_level: int = 1                   # ... at its lowest level
    bce_layer: str = "last"                # last (144 values, the reference) | first (1,728; the authors' detector script)
    normalise: str = "none"                # per-block L2 normalisation: none (raw) | bce | both
    batch_size: int = 1024                 # images per batched extraction
    standardise: bool = True               # z-score each feature with the training set's mean / std inside the detector
    epochs: int = 30                       # detector epochs (the best by validation loss is kept)
    lr: float = 1.0e-3                     # detector Adam rate
    per_class: int = 64                    # detector batch: this many clean + this many distorted
    seed: int = 0
    bootstrap: int = 200                   # paired bootstrap resamples of the test images (0: no intervals)
    bootstrap_seed: int = 0

    section: ClassVar[str] = "gradients"

    def validate(self, section: str = "gradients") -> None:
        require(isinstance(self.model, str) and bool(self.model), f"{section}.model", self.model, "the name of a study_models: entry with method: vae")
        require(isinstance(self.train_distortion, str) and bool(self.train_distortion), f"{section}.train_distortion", self.train_distortion,
                "a distortion name (robust distortions lists them)")
        require(is_int(self.train_level) and self.train_level >= 1, f"{section}.train_level", self.train_level, "a level >= 1")
        require(self.bce_layer in DECODER_WEIGHTS, f"{section}.bce_layer", self.bce_layer, " | ".join(DECODER_WEIGHTS))
        require(self.normalise in NORMALISE, f"{section}.normalise", self.normalise, " | ".join(NORMALISE))
        require(isinstance(self.standardise, bool), f"{section}.standardise", self.standardise, "true | false")
        for name in ("batch_size", "epochs", "per_class"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= 1, f"{section}.{name}", getattr(self, name), "an integer >= 1")
        for name in ("seed", "bootstrap", "bootstrap_seed"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= 0, f"{section}.{name}", getattr(self, name), "an integer >= 0")
        require(isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and self.lr > 0, f"{section}.lr", self.lr, "a number > 0")


def extract_folder(model: nn.Module, folder: Path, p: GradientParams, device: torch.device) -> Features:
    """The features of every image of a shard folder, in the folder's order."""
    grads, mus, losses, labels = [], [], [], []
    for images, batch_labels in make_loader(folder, p.batch_size):
        g, mu, loss = per_sample_features(model, images.to(device), bce_layer=p.bce_layer, normalise=p.normalise)
        grads.append(g.cpu().numpy())
        mus.append(mu.cpu().numpy())
        losses.append(loss.cpu().numpy())
        labels.append(batch_labels.numpy())
    return Features(np.concatenate(grads).astype(np.float32), np.concatenate(mus).astype(np.float32), np.concatenate(losses), np.concatenate(labels))


def save_features(path: Path, features: Features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **features.as_dict())


def load_features(path: str | Path) -> Features:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Gradient features {path} not found.", "run the gradients stage first (dvc repro gradients).")
    with np.load(path) as data:
        return Features(data["gradients"], data["mu"], data["loss"], data["labels"])


def train_sets(params: dict[str, Any], p: GradientParams, clean: Path, corrupt_root: Path, scratch: Path) -> Path:
    """The folder holding ``train/`` and ``val/`` of the training distortion at its level:
    the corrupt stage's own when ``corrupt.splits`` built them (or a released set has
    them), else generated here into ``scratch`` with the corrupt stage's code and seeds."""
    from robust.distortions.corrupt import corrupt
    from robust.distortions.settings import CorruptParams
    from robust.distortions import RELEASED_ONLY, configured

    built = corrupt_root / p.train_distortion / str(p.train_level)
    if all((built / split / "info.json").is_file() for split in ("train", "val")):
        return built
    if p.train_distortion in RELEASED_ONLY:
        from robust.distortions.released import write_released_splits

        settings = CorruptParams.from_dict((params.get("corrupt") or {}))
        write_released_splits(clean, scratch, p.train_distortion, p.train_level, Path(str(settings.root)), settings, ("train", "val"))
        return scratch
    corrupt_section = dict(params.get("corrupt") or {})
    settings = CorruptParams.from_dict({**corrupt_section, "splits": ["train", "val"]})
    image_size = int(read_info(clean / "train")["image_size"])
    distortion = configured(p.train_distortion, (params.get("distortions") or {}).get(p.train_distortion), image_size, settings.constants)
    if p.train_level > distortion.levels:
        raise ParamError(f"gradients.train_level is {p.train_level}, but {p.train_distortion} has {distortion.levels} levels.", f"use a level from 1 to {distortion.levels}.")
    corrupt(clean, scratch, distortion, p.train_level, settings)
    return scratch


def extract_from_params(params: dict[str, Any], clean: str | Path, corrupt_root: str | Path, models_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """The ``gradients`` stage: the VAE's per-sample features -> ``out/<set>/<split>.npz``.

    Sets: ``clean/{train,val,test}``; ``<train_distortion>/<train_level>/{train,val}`` (the
    detectors' distorted half); ``<distortion>/<level>/test`` for every built distorted test
    set of the configured suites. ``out/info.json`` says what the arrays are. ``out`` appears only when complete."""
    import time

    from robust.methods import is_classifier, load_model
    from robust.methods.common import model_entries

    p = GradientParams.from_dict(params.get("gradients"))
    clean, corrupt_root, out = Path(clean), Path(corrupt_root), Path(out)
    if p.model not in model_entries(params) or is_classifier(params, p.model):
        raise ParamError(f"gradients.model is {p.model!r}, which is not a study_models: entry with method: vae.", "add study_models.vae (method: vae, arch: vae) and name it here.")
    weights = Path(models_dir) / p.model / "model.pt"
    model, _ = load_model(params, p.model, clean, weights)
    device = pick_device((params.get("evaluate") or {}).get("device", "auto"))
    model.to(device).eval()
    start = time.perf_counter()
    counts: dict[str, int] = {}
    with atomic_dir(out) as tmp:
        with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".train-distortion-") as scratch:
            distorted = train_sets(params, p, clean, corrupt_root, Path(scratch) / "sets")
            jobs = [("clean", clean / split) for split in ("train", "val", "test")]
            jobs += [(f"{p.train_distortion}/{p.train_level}", distorted / split) for split in ("train", "val")]
            jobs += [(f"{name}/{level}", corrupt_root / name / str(level) / "test") for name, level in built_test_sets(params, corrupt_root)]
            for name, folder in tqdm(jobs, desc="gradients", unit="set", disable=None):
                features = extract_folder(model, folder, p, device)
                save_features(tmp / name / f"{folder.name}.npz", features)
                counts[f"{name}/{folder.name}"] = len(features.labels)
        info = {"params": p.as_dict(), "features": describe(p.bce_layer, p.normalise), "sizes": feature_sizes(model, p.bce_layer),
                "vae": {"weights": str(weights), "sha256": sha256_file(weights)}, "sets": counts, "samples": sum(counts.values())}
        write_json(tmp / "info.json", info)  # no timing in it: an output's bytes depend only on code, params and inputs
    print(f"gradients: {info['samples']} samples in {time.perf_counter() - start:.1f} s")
    return info
