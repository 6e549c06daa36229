"""DeepCorrect (Borkar & Karam, "DeepCorrect: Correcting DNN models against image
distortions", IEEE TIP 2019; seed 000): rank the filters of a frozen network's first conv
layers by how much their distorted output hurts recognition, put small residual
"correction units" on the top-ranked ones, and train only the units.

Three steps, three stages, for each ranked network (``ranking.bases``) and each listed
(network, distortion) pair (``ranking.runs``):

1. ``activations@<base>``: for a class-balanced ranking subset of the train split, the post-ReLU
   output of each ranked layer for the clean images and every level of each DeepCorrect
   distortion (:func:`build_activation_cache`; fp16 by default). Only these are stored:
   ranking one layer needs that layer's clean and distorted maps, nothing else.
2. ``rank@<key>`` (one per ``ranking.runs`` entry, a base and a distortion): correction priority per filter (:func:`rank_layer`): replace
   channel j of the distorted activation by the clean one (:func:`swap_channels`), run
   the rest of the network, and compare top-1 errors with no replacement:
   ``tau_j = sum_i |e_ji - e_base_i| / e_base_i`` over the levels i. **Choice**: absolute
   change by default (the original code; it reproduces its stored rankings), the paper's
   signed gain ``(e_base_i - e_ji) / e_base_i`` with ``priority: signed``; a level with no
   error at all divides by ``1 / N`` instead of 0. Many filters share one forward pass
   (``filters_per_pass``; ``auto`` = one on a CPU, where measured batching gains nothing
   (``benchmarks/ranking.py``), every filter of the layer on a GPU). Also the "ideal correction" curves: top-1 when the top X % of a
   layer's ranked channels get their clean activations.
3. ``train@<entry>``: :func:`setup` wraps the first ``layers`` conv layers in a
   :class:`CorrectedConv`: the top ``fraction`` of ranked channels (one number, or one per
   layer: the seed's AlexNet 75 / 75 / 50 / 50 / 50 %) go through ``y = x + unit(x)``
   (pre-activation, the unit's last conv zero-initialised, so the corrected network equals
   the baseline before training), then their own BN when the network has one (now
   trainable), are put back in the original channel order, then the layer's own
   activation. Only units and those BN channels train (without BN, as in AlexNet, only the
   units), with an L1 penalty on the unit convs (1e-5).

Which conv layers exist and what each feeds come from the network's adapter
(:mod:`robust.models.correctable`): ``deepcorrect_net`` (conv -> BN -> ReLU), ``alexnet_small``,
torchvision's ``alexnet`` and the VGGs (conv [-> BN] -> ReLU, pools between).

**Choice** (``frozen_bn``): ``eval`` (default) keeps every frozen BN on its running
statistics, so frozen really means frozen; ``batch`` reproduces the original old-Keras
behaviour, where "frozen" BN layers normalised with batch statistics and kept updating
their running statistics during correction training.

Unit variants (``unit``): ``cifar`` (BN, 1x1 C->w, 3x3 w->w, 3x3 w->w, 1x1 w->C, with BN +
ReLU between, bias-free hidden convs; w = ``unit_width``, 64 in the seed, scaled with a
narrowed network), ``cw`` (the AlexNet "CW" unit: 1x1 C->C, kxk, kxk, 1x1 C->C with bias,
BN + ReLU between, no input BN; k from ``unit_kernels``, the seed's 5 for conv1 and 3 after)
and ``bottleneck`` (the same shape at width C/2 with three 3x3). The ``cw`` layout is the one
whose count reproduces the seed's 2,816,848 trainable parameters exactly, on the original
(Caffe) AlexNet's 96 / 256 / 384 / 384 / 256 filters; torchvision's AlexNet has 64 / 192 /
384 / 256 / 256 filters, so the same units count 1,933,568 there (tested).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robust import distortions
from robust.data.loader import from_pixels, make_loader, to_pixels
from robust.data.shards import atomic_dir, read_info, write_csv, write_json
from robust.distortions import Distortion, sample_seed
from robust.engine import pick_device
from robust.errors import DataError, ParamError
from robust.methods.common import Context, Run, configured_distortion, load_base, load_trained, mix_loss
from robust.models import Classifier
from robust.models.correctable import CorrectionWrapper, layout, replace, run_steps
from robust.params import Section, is_int, require

CURVE_PERCENTS = (10, 25, 50, 75, 90)


# -- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankingSettings(Section):
    """``methods.deepcorrect.ranking``: the activation cache and the ranking stages."""

    bases: tuple[str, ...] = ("deepcorrect_net",)  # the models: entries that are ranked (and corrected): one activations@<base> each
    runs: dict[str, dict[str, str]] = field(default_factory=dict)  # rank@<key>: {base, distortion} pairs (only what a model needs is ranked)
    per_class: int | dict[str, int] = 10  # ranking subset: images per class from the train split (seed: 10 for CIFAR, 5 for ImageNet), or one per base
    layers: int | str | dict[str, int | str] = 3  # rank the first this many conv layers (all: every one), or one value per base
    fp16: bool = True  # store the cached activations as float16
    priority: str = "absolute"  # absolute (original code) | signed (paper text)
    filters_per_pass: int | str = "auto"  # swapped filters per forward pass; auto: 1 on a CPU, all on a GPU
    batch_size: int = 120  # ranking images per forward pass
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    curves: tuple[int, ...] = CURVE_PERCENTS

    section: ClassVar[str] = "methods.deepcorrect.ranking"
    tuple_fields: ClassVar[tuple[str, ...]] = ("curves", "bases")

    def validate(self, section: str) -> None:
        require(is_int(self.batch_size) and self.batch_size >= 1, f"{section}.batch_size", self.batch_size, "an integer >= 1")
        require(isinstance(self.bases, tuple) and all(isinstance(b, str) and b for b in self.bases), f"{section}.bases", self.bases, "a list of models: entries")
        for name in ("per_class", "layers"):
            value = getattr(self, name)
            require(not isinstance(value, dict) or set(value) == set(self.bases), f"{section}.{name}", value,
                    f"one value, or a mapping with exactly the bases as keys ({', '.join(self.bases)})")
        sizes = self.per_class.values() if isinstance(self.per_class, dict) else [self.per_class]
        require(all(is_int(n) and n >= 1 for n in sizes), f"{section}.per_class", self.per_class, "an integer >= 1, or a mapping of base -> one")
        require(isinstance(self.runs, dict) and all(isinstance(r, dict) and set(r) == {"base", "distortion"} and r["base"] in self.bases
                                                    and isinstance(r["distortion"], str) for r in self.runs.values()),
                f"{section}.runs", self.runs, "a mapping of stage key -> {base: one of ranking.bases, distortion: a DeepCorrect distortion}")
        unranked = sorted(set(self.bases) - {r["base"] for r in self.runs.values()}) if self.runs else []
        require(not unranked, f"{section}.bases", self.bases, f"only networks some ranking.runs entry ranks ({', '.join(unranked)} has none)")
        counts = self.layers.values() if isinstance(self.layers, dict) else [self.layers]
        require(all(c == "all" or (is_int(c) and c >= 1) for c in counts), f"{section}.layers", self.layers,
                "an integer >= 1, all, or a mapping of base -> either")
        require(self.filters_per_pass == "auto" or (is_int(self.filters_per_pass) and self.filters_per_pass >= 1),
                f"{section}.filters_per_pass", self.filters_per_pass, "auto or an integer >= 1")
        require(self.device == "auto" or self.device.startswith(("cpu", "cuda")), f"{section}.device", self.device, "auto | cpu | cuda | cuda:N")
        require(self.priority in ("absolute", "signed"), f"{section}.priority", self.priority, "absolute | signed")
        require(isinstance(self.curves, tuple) and all(isinstance(c, (int, float)) and 0 < c < 100 for c in self.curves),
                f"{section}.curves", self.curves, "a list of percentages between 0 and 100")

    def per_class_of(self, base: str) -> int:
        """Ranking images per class for ``base``."""
        return int(self.per_class[base] if isinstance(self.per_class, dict) else self.per_class)

    def layers_of(self, base: str, available: int) -> int:
        """How many conv layers of ``base`` (which has ``available``) are ranked."""
        count = self.layers[base] if isinstance(self.layers, dict) else self.layers
        if count == "all":
            return available
        if count > available:
            raise ParamError(f"methods.deepcorrect.ranking.layers asks for {count} conv layers of {base}, which has {available}.",
                             f"set it to at most {available} (or all).")
        return int(count)

    def per_pass(self, channels: int, device: torch.device) -> int:
        """Swapped filters per forward pass on ``device`` for a layer of ``channels`` filters."""
        if self.filters_per_pass == "auto":
            return channels if device.type == "cuda" else 1
        return int(self.filters_per_pass)


@dataclass(frozen=True)
class DeepCorrectSettings(Section):
    """``methods.deepcorrect`` (+ an entry's overrides): what is corrected and how."""

    distortion: str = "dc_blur"
    layers: int = 3  # correct the first L conv layers
    fraction: float | tuple[float, ...] = 0.5  # share of each corrected layer's filters (CIFAR: 0.5; AlexNet: 0.75, 0.75, 0.5, 0.5, 0.5)
    unit: str = "cifar"  # cifar | cw | bottleneck
    unit_width: int = 16  # hidden width of the cifar unit (64 in the seed, for a 4x wider net)
    unit_kernels: tuple[int, ...] = (5, 3)  # cw middle kernels per layer, the last repeating (seed: 5 for conv1, 3 after); bottleneck: always 3x3
    frozen_bn: str = "eval"  # eval | batch (see the module doc)
    l1: float = 1e-5  # L1 penalty on the unit conv weights
    distorted: float = 0.5  # share of each training batch distorted
    ranking: dict[str, Any] = field(default_factory=dict)

    section: ClassVar[str] = "methods.deepcorrect"
    tuple_fields: ClassVar[tuple[str, ...]] = ("fraction", "unit_kernels")

    def validate(self, section: str) -> None:
        require(is_int(self.layers) and self.layers >= 1, f"{section}.layers", self.layers, "an integer >= 1")
        fractions = self.fraction if isinstance(self.fraction, tuple) else (self.fraction,)
        require(all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in fractions) and len(fractions) >= 1,
                f"{section}.fraction", self.fraction, "a number in (0, 1], or a list of them (one per corrected layer)")
        require(not isinstance(self.fraction, tuple) or len(self.fraction) == self.layers, f"{section}.fraction", self.fraction,
                f"one value per corrected layer ({self.layers}: methods.deepcorrect.layers)")
        require(isinstance(self.unit_kernels, tuple) and len(self.unit_kernels) >= 1 and all(is_int(k) and k >= 1 and k % 2 for k in self.unit_kernels),
                f"{section}.unit_kernels", self.unit_kernels, "a list of odd kernel sizes (the last repeats for later layers)")
        require(self.unit in UNITS, f"{section}.unit", self.unit, " | ".join(UNITS))
        require(is_int(self.unit_width) and self.unit_width >= 1, f"{section}.unit_width", self.unit_width, "an integer >= 1")
        require(self.frozen_bn in ("eval", "batch"), f"{section}.frozen_bn", self.frozen_bn, "eval | batch")
        require(isinstance(self.l1, (int, float)) and self.l1 >= 0, f"{section}.l1", self.l1, "a number >= 0")
        require(isinstance(self.distorted, (int, float)) and 0 <= self.distorted <= 1, f"{section}.distorted", self.distorted, "a number from 0 to 1")

    def fraction_of(self, layer: int) -> float:
        """The share of conv layer ``layer``'s (0-based) filters that is corrected."""
        return float(self.fraction[layer] if isinstance(self.fraction, tuple) else self.fraction)

    def kernel_of(self, layer: int) -> int:
        """The cw unit's middle kernel size at conv layer ``layer`` (0-based)."""
        return self.unit_kernels[min(layer, len(self.unit_kernels) - 1)]


# -- correction units --------------------------------------------------------------------------
def _conv_bn_relu(cin: int, cout: int, kernel: int, bias: bool) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _unit(hidden: list[tuple[int, int]], channels: int, input_bn: bool = True, bias: bool = False) -> nn.Sequential:
    """[BN(x)], then (width, kernel) conv -> BN -> ReLU stages, then a zero-initialised 1x1 back to C."""
    layers: list[nn.Module] = [nn.BatchNorm2d(channels)] if input_bn else []
    cin = channels
    for width, kernel in hidden:
        layers += _conv_bn_relu(cin, width, kernel, bias)
        cin = width
    last = nn.Conv2d(cin, channels, 1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


UNITS = {
    "cifar": lambda c, k, w: _unit([(w, 1), (w, 3), (w, 3)], c),
    "cw": lambda c, k, w: _unit([(c, 1), (c, k), (c, k)], c, input_bn=False, bias=True),
    "bottleneck": lambda c, k, w: _unit([(max(1, c // 2), 1), (max(1, c // 2), 3), (max(1, c // 2), 3), (max(1, c // 2), 3)], c, input_bn=False, bias=True),
}


def correction_unit(variant: str, channels: int, kernel: int = 3, width: int = 64) -> nn.Sequential:
    """A residual correction unit for ``channels`` pre-activation maps (the last conv is
    zero-initialised, so ``x + unit(x) == x`` at first)."""
    if variant not in UNITS:
        raise ParamError(f"Unknown correction unit {variant!r}.", f"use one of: {', '.join(UNITS)}.")
    return UNITS[variant](channels, kernel, width)


def _bn_slice(bn: nn.BatchNorm2d, index: torch.Tensor) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(len(index), eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        out.weight.copy_(bn.weight[index])
        out.bias.copy_(bn.bias[index])
        out.running_mean.copy_(bn.running_mean[index])
        out.running_var.copy_(bn.running_var[index])
        out.num_batches_tracked.copy_(bn.num_batches_tracked)
    return out


class CorrectedConv(CorrectionWrapper):
    """A frozen conv (and its BN, if any) whose ``fix`` channels get ``x + unit(x)`` on their
    pre-activation before their own BN slice (trainable); the other channels go through the
    frozen BN. It takes the place of the conv, the BN's place becomes an identity, and the
    layer's own activation follows unchanged. The corrected channels are written back at
    their own indices (``index_copy``), so the channel order is the original one."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None, fix: list[int], unit: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("fix", torch.tensor(sorted(fix), dtype=torch.long))
        self.norm = norm if norm is not None else nn.Identity()  # frozen: normalises the uncorrected channels
        self.bn_fix = _bn_slice(norm, self.fix) if norm is not None else nn.Identity()
        self.unit = unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        zc = z.index_select(1, self.fix)
        return self.norm(z).index_copy(1, self.fix, self.bn_fix(zc + self.unit(zc)))

    @torch.no_grad()
    def inference_form(self) -> nn.Module:
        """The same function in eval mode without gathering or scattering channels (for
        :func:`robust.engine.inference_model`). Every batch norm is an affine map, so with
        ``z' = scale * conv(x) + shift`` (the frozen BN, and the corrected channels' own BN, folded
        into the conv) the layer is ``z' + unit'(z')``: ``unit'`` is the unit with its first conv
        reading all C channels of ``z'`` (zero weights on the uncorrected ones; the cifar unit's
        input BN and the un-scaling of ``z'`` folded in) and its last conv writing all C
        channels (zero rows elsewhere, the corrected channels' BN scale folded in). Exact up to
        float rounding (tested)."""
        channels = self.conv.out_channels
        scale, shift = _affine(self.norm, channels)
        fix_scale, fix_shift = _affine(self.bn_fix, len(self.fix))
        if bool((fix_scale == 0).any()):  # z' cannot be un-scaled: keep the gathering form
            return self
        scale[self.fix], shift[self.fix] = fix_scale, fix_shift
        conv = copy.deepcopy(self.conv)
        bias = conv.bias if conv.bias is not None else torch.zeros(channels)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bias * scale + shift)
        layers = [copy.deepcopy(m) for m in self.unit]
        in_scale, in_shift = 1 / fix_scale, -fix_shift / fix_scale  # z_fix = (z'_fix - shift) / scale
        if isinstance(layers[0], nn.BatchNorm2d):  # the cifar unit's input BN, applied to z_fix
            bn_scale, bn_shift = _affine(layers.pop(0), len(self.fix))
            in_scale, in_shift = in_scale * bn_scale, in_shift * bn_scale + bn_shift
        first = layers[0]
        if first.kernel_size != (1, 1):
            raise ValueError("an affine input folds exactly only into a 1x1 conv (a shift would be zero-padded at the borders)")
        first.bias = nn.Parameter(first.weight.flatten(1) @ in_shift + (first.bias if first.bias is not None else 0))
        first.weight.mul_(in_scale.view(1, -1, 1, 1))
        layers[0] = _widen(first, self.fix, channels, inputs=True)
        layers[-1] = _widen(layers[-1], self.fix, channels, inputs=False, scale=fix_scale)
        return FoldedCorrection(conv, nn.Sequential(*layers)).eval()


def _affine(norm: nn.Module, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch norm (eval mode) as ``scale * z + shift`` per channel; an identity as (1, 0)."""
    if isinstance(norm, nn.BatchNorm2d):
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        return scale.detach().clone(), (norm.bias - norm.running_mean * scale).detach().clone()
    return torch.ones(channels), torch.zeros(channels)


def _widen(conv: nn.Conv2d, fix: torch.Tensor, channels: int, inputs: bool, scale: torch.Tensor | None = None) -> nn.Conv2d:
    """``conv`` over (``inputs``) or onto all ``channels``, its weights at the ``fix`` positions and
    zeros elsewhere; output rows (and bias) multiplied by ``scale`` when given."""
    cin, cout = (channels, conv.out_channels) if inputs else (conv.in_channels, channels)
    wide = nn.Conv2d(cin, cout, conv.kernel_size, conv.stride, conv.padding, bias=True)
    wide.weight.zero_()
    wide.bias.zero_()
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    if inputs:
        wide.weight[:, fix] = conv.weight
        wide.bias.copy_(bias)
    else:
        factor = scale if scale is not None else torch.ones(len(fix))
        wide.weight[fix] = conv.weight * factor.view(-1, 1, 1, 1)
        wide.bias[fix] = bias * factor
    return wide


class FoldedCorrection(nn.Module):
    """:meth:`CorrectedConv.inference_form`: ``conv(x) + unit(conv(x))``, both batch norms folded in."""

    def __init__(self, conv: nn.Conv2d, unit: nn.Sequential) -> None:
        super().__init__()
        self.conv, self.unit = conv, unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        return z + self.unit(z)


# -- activation cache --------------------------------------------------------------------------
def ranking_subset(split_dir: str | Path, per_class: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The first ``per_class`` images of each class in shard order (class-balanced,
    deterministic): images in [0, 1], labels, keys."""
    info = read_info(split_dir)
    wanted = {c: per_class for c in range(info["num_classes"])}
    images, labels, keys = [], [], []
    for image, label, key in make_loader(split_dir, 1, with_keys=True).dataset:
        if wanted.get(label, 0) > 0:
            wanted[label] -= 1
            images.append(image), labels.append(label), keys.append(key)
        if not any(wanted.values()):
            break
    short = {c: n for c, n in wanted.items() if n}
    if short:
        raise DataError(f"{split_dir} has fewer than {per_class} images of {len(short)} classes (e.g. class {next(iter(short))}).",
                        "lower methods.deepcorrect.ranking.per_class.")
    return torch.stack(images), torch.tensor(labels), keys


@torch.no_grad()
def layer_outputs(model: Classifier, images: torch.Tensor, layers: int, batch_size: int = 256) -> list[torch.Tensor]:
    """The post-activation outputs of the first ``layers`` conv layers (eval mode)."""
    plan = layout(model.net)
    model.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in range(layers)]
    for start in range(0, len(images), batch_size):
        h = (images[start:start + batch_size].to(model.mean.device) - model.mean) / model.std
        done = 0
        for k in range(1, layers + 1):
            steps = plan.upto(k)
            h = run_steps(model.net, steps[done:], h)
            done = len(steps)
            outs[k - 1].append(h.detach().to("cpu", copy=True))  # a copy: no later in-place step can touch it
    return [torch.cat(o) for o in outs]


def distort_images(images: torch.Tensor, keys: list[str], distortion: Distortion, level: int, seed: int) -> torch.Tensor:
    """``images`` with ``distortion`` at ``level``, each seeded as the corrupt stages seed it."""
    out = [distortion(img, level, np.random.default_rng(sample_seed(seed, distortion.name, level, key))) for img, key in zip(to_pixels(images), keys)]
    return from_pixels(np.stack(out), images)


def file_md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def build_activation_cache(model: Classifier, split_dir: str | Path, dists: list[Distortion], out_dir: str | Path, settings: RankingSettings,
                           *, base: str = "deepcorrect_net", seed: int = 0, base_weights: str | Path | None = None) -> dict[str, Any]:
    """Write ``layer<k>/<version>.npy`` (version ``clean`` or ``<distortion>-<level>``),
    ``labels.npy`` and ``info.json`` (subset keys, shapes, bytes on disk) to ``out_dir``
    for the network ``model`` (the ``models:`` entry ``base``)."""
    layers = settings.layers_of(base, len(layout(model.net).layers))
    per_class = settings.per_class_of(base)
    images, labels, keys = ranking_subset(split_dir, per_class)
    versions: list[tuple[str, torch.Tensor]] = [("clean", images)]
    for dist in dists:
        versions += [(f"{dist.name}-{level}", distort_images(images, keys, dist, level, seed)) for level in range(1, dist.levels + 1)]
    dtype = np.float16 if settings.fp16 else np.float32
    with atomic_dir(out_dir) as folder:
        np.save(folder / "labels.npy", labels.numpy())
        for version, batch in tqdm(versions, desc="activations", unit="version", disable=None):
            for k, act in enumerate(layer_outputs(model, batch, layers), start=1):
                (folder / f"layer{k}").mkdir(exist_ok=True)
                np.save(folder / f"layer{k}" / f"{version}.npy", act.numpy().astype(dtype))
        size = sum(p.stat().st_size for p in folder.rglob("*.npy"))
        info = {"base": base, "base_weights": str(base_weights) if base_weights else None,
                "base_md5": file_md5(base_weights) if base_weights else None, "layers": layers, "per_class": per_class,
                "num_images": len(keys), "keys": keys, "dtype": np.dtype(dtype).name, "seed": seed,
                "distortions": {d.name: list(d.table or range(1, d.levels + 1)) for d in dists},
                "shapes": {f"layer{k}": list(np.load(folder / f"layer{k}" / "clean.npy", mmap_mode="r").shape) for k in range(1, layers + 1)},
                "bytes": size}
        write_json(folder / "info.json", info)
    return info


def load_activations(cache_dir: str | Path, layer: int, version: str) -> torch.Tensor:
    path = Path(cache_dir) / f"layer{layer}" / f"{version}.npy"
    if not path.is_file():
        raise DataError(f"No cached activations {path}.", "rerun the activations@<base> stage (dvc repro) with these ranking settings.")
    return torch.from_numpy(np.load(path).astype(np.float32))


# -- ranking -----------------------------------------------------------------------------------
def swap_channels(distorted: torch.Tensor, clean: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The swapped variants: for each row of ``masks`` (V x C, bool), ``distorted`` with the
    masked channels taken from ``clean``; output (V * N, C, H, W), variant-major."""
    mask = masks.view(masks.shape[0], 1, masks.shape[1], 1, 1)
    return torch.where(mask, clean.unsqueeze(0), distorted.unsqueeze(0)).flatten(0, 1)


@torch.no_grad()
def suffix_errors(model: Classifier, steps: tuple[str | nn.Module, ...], activations: torch.Tensor, labels: torch.Tensor, variants: int) -> torch.Tensor:
    """Top-1 error of each of ``variants`` stacked copies of the ranking set, run through
    ``steps`` (what follows a conv layer's activation) to the class scores."""
    logits = run_steps(model.net, steps, activations)
    wrong = logits.argmax(1).view(variants, -1) != labels.view(1, -1)
    return wrong.float().mean(1)


@torch.no_grad()
def variant_errors(model: Classifier, layer: int, clean: torch.Tensor, distorted: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor,
                   *, per_pass: int = 8, batch_size: int = 120) -> torch.Tensor:
    """Top-1 error for each channel-replacement mask (V x C), ``per_pass`` masks x
    ``batch_size`` images per forward pass, on the model's device."""
    model.eval()
    device = model.mean.device
    steps = layout(model.net).after(layer)  # once: the same suffix serves every pass
    errors = torch.zeros(masks.shape[0], device=device)
    for i in range(0, len(labels), batch_size):
        c, d, y = (t[i:i + batch_size].to(device) for t in (clean, distorted, labels))
        for v in range(0, masks.shape[0], per_pass):
            chunk = masks[v:v + per_pass].to(device)
            errors[v:v + len(chunk)] += suffix_errors(model, steps, swap_channels(d, c, chunk), y, len(chunk)) * len(y)
    return (errors / len(labels)).cpu()


def priority(swap_errors: torch.Tensor, base_errors: torch.Tensor, mode: str = "absolute", num_images: int = 1) -> torch.Tensor:
    """Correction priority per filter from ``swap_errors`` (levels x filters) and
    ``base_errors`` (levels): sum over levels of the absolute (or signed: gain) error change
    relative to the unswapped error (a zero error divides by ``1 / num_images``)."""
    base = torch.where(base_errors > 0, base_errors, torch.full_like(base_errors, 1.0 / num_images)).view(-1, 1)
    change = base_errors.view(-1, 1) - swap_errors
    return (change.abs() if mode == "absolute" else change).div(base).sum(0)


def rank_layer(model: Classifier, cache_dir: str | Path, layer: int, distortion: str, levels: int, settings: RankingSettings) -> dict[str, Any]:
    """Priority and order of block ``layer``'s filters for one distortion, with the ideal-correction curve."""
    labels = torch.from_numpy(np.load(Path(cache_dir) / "labels.npy"))
    clean = load_activations(cache_dir, layer, "clean")
    channels = clean.shape[1]
    single = torch.eye(channels, dtype=torch.bool)
    base_err, swap_err, distorted = [], [], []
    for level in range(1, levels + 1):
        d = load_activations(cache_dir, layer, f"{distortion}-{level}")
        distorted.append(d)
        none = torch.zeros(1, channels, dtype=torch.bool)
        base_err.append(float(variant_errors(model, layer, clean, d, labels, none, batch_size=settings.batch_size)[0]))
        per_pass = settings.per_pass(channels, model.mean.device)
        swap_err.append(variant_errors(model, layer, clean, d, labels, single, per_pass=per_pass, batch_size=settings.batch_size))
    tau = priority(torch.stack(swap_err), torch.tensor(base_err), settings.priority, len(labels))
    order = sorted(range(channels), key=lambda j: (-float(tau[j]), j))
    percents = [0, *settings.curves, 100]
    masks = torch.zeros(len(percents), channels, dtype=torch.bool)
    for row, pct in enumerate(percents):
        masks[row, order[: math.ceil(pct / 100 * channels)]] = True
    curve = {str(p): {} for p in percents}
    for level, d in enumerate(distorted, start=1):
        errs = variant_errors(model, layer, clean, d, labels, masks, per_pass=settings.per_pass(len(percents), model.mean.device), batch_size=settings.batch_size)
        for p, e in zip(percents, errs.tolist()):
            curve[str(p)][str(level)] = 1 - e
    return {"order": order, "priority": tau.tolist(), "base_error": base_err, "swap_error": [e.tolist() for e in swap_err],
            "curve": {p: {**levels_, "mean": sum(levels_.values()) / len(levels_)} for p, levels_ in curve.items()}}


def rank(model: Classifier, cache_dir: str | Path, distortion: str, settings: RankingSettings) -> dict[str, Any]:
    """Every cached layer ranked for ``distortion`` (see :func:`rank_layer`)."""
    info = json.loads((Path(cache_dir) / "info.json").read_text())
    if distortion not in info["distortions"]:
        raise DataError(f"The activation cache has no {distortion} (it has {', '.join(info['distortions'])}).", "add it to corrupt.suites.deepcorrect and rerun.")
    levels = len(info["distortions"][distortion])
    result: dict[str, Any] = {"distortion": distortion, "base": info["base"], "base_weights": info["base_weights"], "base_md5": info["base_md5"],
                              "priority_mode": settings.priority, "num_images": info["num_images"], "layers": {}}
    for layer in tqdm(range(1, info["layers"] + 1), desc=f"rank {distortion}", unit="layer", disable=None):
        result["layers"][f"conv{layer}"] = rank_layer(model, cache_dir, layer, distortion, levels, settings)
    return result


def curve_rows(ranking: dict[str, Any]) -> list[dict[str, Any]]:
    """Plot rows ``{"percent": p, "conv1": mean top-1, ...}`` of the ideal-correction curves."""
    layers = ranking["layers"]
    percents = list(next(iter(layers.values()))["curve"])
    return [{"percent": int(p), **{name: layer["curve"][p]["mean"] for name, layer in layers.items()}} for p in percents]


# -- the corrected network ---------------------------------------------------------------------
def correct(model: Classifier, ranking: dict[str, Any], settings: DeepCorrectSettings) -> list[nn.Parameter]:
    """Freeze ``model`` and put correction units on its first ``settings.layers`` conv layers
    (in place); returns the parameters that train (units + the corrected channels' BN)."""
    plan = layout(model.net)
    available = len(ranking["layers"])
    if settings.layers > available:
        raise ParamError(f"methods.deepcorrect.layers is {settings.layers} but only {available} layers were ranked.",
                         f"set methods.deepcorrect.ranking.layers >= {settings.layers}.")
    trainable: list[nn.Parameter] = []
    for k in range(settings.layers):
        layer = plan.layers[k]
        conv = model.net.get_submodule(layer.conv)
        norm = model.net.get_submodule(layer.norm) if layer.norm else None
        order = ranking["layers"][f"conv{k + 1}"]["order"]
        fix = sorted(order[: max(1, round(settings.fraction_of(k) * len(order)))])
        unit = correction_unit(settings.unit, len(fix), settings.kernel_of(k), settings.unit_width)
        corrected = CorrectedConv(conv, norm, fix, unit)
        replace(model.net, layer.conv, corrected)
        if layer.norm:
            replace(model.net, layer.norm, nn.Identity())
        trainable += [*corrected.unit.parameters(), *corrected.bn_fix.parameters()]
    chosen = {id(p) for p in trainable}
    for p in model.parameters():  # the frozen BN of the uncorrected channels stays frozen
        p.requires_grad_(id(p) in chosen)
    return trainable


def read_ranking(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Ranking {path} not found.", "run the rank stage first (dvc repro), or fix the entry's start: path.")
    return json.loads(path.read_text())


def setup(ctx: Context) -> Run:
    """The corrected baseline: ``start`` is the ranking of the entry's distortion."""
    settings = DeepCorrectSettings.from_dict(ctx.settings, f"models.{ctx.name}")
    ranking = read_ranking(ctx.start)
    base = ctx.spec.get("base")
    if ranking["base"] != base:
        raise ParamError(f"{ctx.start} ranks {ranking['base']}, but models.{ctx.name}.base is {base!r}.", "rank the same network that is corrected.")
    if ranking["distortion"] != settings.distortion:
        raise ParamError(f"{ctx.start} is the ranking for {ranking['distortion']}, not {settings.distortion}.", "point start: at the ranking of the entry's distortion.")
    weights = Path(ranking["base_weights"])
    if not weights.is_file() or file_md5(weights) != ranking["base_md5"]:
        raise DataError(f"{weights} is missing or not the network {ctx.start} was ranked on.", "rerun the activations and rank stages (dvc repro).")
    model = load_base(ctx, weights)
    parameters = correct(model, ranking, settings)
    frozen_bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and not m.weight.requires_grad]
    penalty_weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad]
    mixed = mix_loss(configured_distortion(ctx, settings.distortion), settings.distorted,
                     penalty=(lambda: settings.l1 * sum(w.abs().sum() for w in penalty_weights)) if settings.l1 else None)

    def loss_fn(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if settings.frozen_bn == "eval":
            for bn in frozen_bns:
                bn.eval()
        return mixed(net, images, labels)

    return Run(model, parameters, loss_fn)


def ranking_settings(params: dict[str, Any]) -> RankingSettings:
    """``methods.deepcorrect.ranking`` of a params dict."""
    section = ((params.get("methods") or {}).get("deepcorrect") or {}).get("ranking")
    return RankingSettings.from_dict(section)


def activations_from_params(params: dict[str, Any], base: str, clean_dir: str | Path, models_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """The ``activations@<base>`` stage: the network's cached activations for ranking."""
    from robust.methods.baseline import model_spec

    settings = ranking_settings(params)
    if base not in settings.bases:
        raise ParamError(f"{base} is not in methods.deepcorrect.ranking.bases ({', '.join(settings.bases)}).", "add it there.")
    weights = Path(models_dir) / base / "model.pt"
    model = load_trained(model_spec(params, base), clean_dir, weights).to(pick_device(settings.device))
    size = read_info(Path(clean_dir) / "train")["image_size"]
    names = ((params.get("corrupt") or {}).get("suites") or {}).get("deepcorrect") or []
    dists = [distortions.configured(n, (params.get("distortions") or {}).get(n), size) for n in names]
    seed = int((params.get("corrupt") or {}).get("seed", 0))
    return build_activation_cache(model, Path(clean_dir) / "train", dists, out_dir, settings, base=base, seed=seed, base_weights=weights)


def rank_from_params(params: dict[str, Any], distortion: str, clean_dir: str | Path, cache_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """The ``rank@<base>-<distortion>`` stage (``cache_dir``: that base's activations) ->
    ``out_dir/ranking.json`` and ``out_dir/curves.csv``."""
    from robust.methods.baseline import model_spec

    settings = ranking_settings(params)
    info_file = Path(cache_dir) / "info.json"
    if not info_file.is_file():
        base = Path(cache_dir).parent.name
        raise DataError(f"No activation cache {cache_dir} (its info.json is missing).", f"run the activations@{base} stage first (dvc repro activations@{base}).")
    info = json.loads(info_file.read_text())
    model = load_trained(model_spec(params, info["base"]), clean_dir, info["base_weights"]).to(pick_device(settings.device))
    result = rank(model, cache_dir, distortion, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "ranking.json", result)
    write_csv(out_dir / "curves.csv", curve_rows(result))
    return result
