"""DeepCorrect (Borkar & Karam, "DeepCorrect: Correcting DNN models against image
distortions", IEEE TIP 2019; seed 000): rank the filters of a frozen network's first conv
layers by how much their distorted output hurts recognition, put small residual
"correction units" on the top-ranked ones, and train only the units.

Three steps, three stages:

1. ``activations``: for a class-balanced ranking subset of the train split, the post-ReLU
   output of each ranked layer for the clean images and every level of each DeepCorrect
   distortion (:func:`build_activation_cache`; fp16 by default). Only these are stored:
   ranking one layer needs that layer's clean and distorted maps, nothing else.
2. ``rank@<distortion>``: correction priority per filter (:func:`rank_layer`): replace
   channel j of the distorted activation by the clean one (:func:`swap_channels`), run
   the rest of the network, and compare top-1 errors with no replacement:
   ``tau_j = sum_i |e_ji - e_base_i| / e_base_i`` over the levels i. **Choice**: absolute
   change by default (the original code; it reproduces its stored rankings), the paper's
   signed gain ``(e_base_i - e_ji) / e_base_i`` with ``priority: signed``; a level with no
   error at all divides by ``1 / N`` instead of 0. Many filters share one forward pass
   (``filters_per_pass``; ``auto`` = one on a CPU, where measured batching gains nothing
   (``benchmarks/ranking.py``), every filter of the layer on a GPU). Also the "ideal correction" curves: top-1 when the top X % of a
   layer's ranked channels get their clean activations.
3. ``train@deepcorrect-<distortion>``: :func:`setup` puts a :class:`CorrectedBlock` on the
   first ``layers`` blocks: the top ``fraction`` of ranked channels go through
   ``y = x + unit(x)`` (pre-activation, the unit's last conv zero-initialised, so the
   corrected network equals the baseline before training), then their own BN (now
   trainable), are put back in the original channel order, then ReLU. Only units and
   those BN channels train, with an L1 penalty on the unit convs (1e-5).

**Choice** (``frozen_bn``): ``eval`` (default) keeps every frozen BN on its running
statistics, so frozen really means frozen; ``batch`` reproduces the original old-Keras
behaviour, where "frozen" BN layers normalised with batch statistics and kept updating
their running statistics during correction training.

Unit variants (``unit``): ``cifar`` (BN, 1x1 C->w, 3x3 w->w, 3x3 w->w, 1x1 w->C, with BN +
ReLU between; w = ``unit_width``, 64 in the seed, scaled with a narrowed network), ``cw``
(the same at width C, the middle kernels the layer's own size: the AlexNet "CW" unit) and
``bottleneck`` (width C/2: 1x1, three 3x3, 1x1). Only networks built of conv -> BN -> ReLU
blocks (``deepcorrect_net``) can be ranked and corrected.
"""

from __future__ import annotations

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
from robust.data.loader import make_loader
from robust.data.shards import atomic_dir, read_info, write_csv, write_json
from robust.distortions import Distortion, sample_seed
from robust.engine import pick_device
from robust.errors import DataError, ParamError
from robust.methods.common import Context, Run, configured_distortion, conv_blocks, from_pixels, load_base, load_trained, mix_loss, to_pixels
from robust.models import Classifier
from robust.models.small_nets import ConvBNReLU
from robust.params import Section, is_int, require

CURVE_PERCENTS = (10, 25, 50, 75, 90)


# -- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankingSettings(Section):
    """``methods.deepcorrect.ranking``: the activation cache and the ranking stages."""

    base: str = "deepcorrect_net"  # the models: entry that is ranked and corrected
    per_class: int = 10  # ranking subset: images per class from the train split (seed: 10 for CIFAR)
    layers: int = 3  # rank the first this many conv blocks
    fp16: bool = True  # store the cached activations as float16
    priority: str = "absolute"  # absolute (original code) | signed (paper text)
    filters_per_pass: int | str = "auto"  # swapped filters per forward pass; auto: 1 on a CPU, all on a GPU
    batch_size: int = 120  # ranking images per forward pass
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    curves: tuple[int, ...] = CURVE_PERCENTS

    section: ClassVar[str] = "methods.deepcorrect.ranking"

    @classmethod
    def convert(cls, values: dict[str, Any]) -> dict[str, Any]:
        if isinstance(values.get("curves"), list):
            values["curves"] = tuple(values["curves"])
        return values

    def validate(self, section: str) -> None:
        for name in ("per_class", "layers", "batch_size"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= 1, f"{section}.{name}", getattr(self, name), "an integer >= 1")
        require(self.filters_per_pass == "auto" or (is_int(self.filters_per_pass) and self.filters_per_pass >= 1),
                f"{section}.filters_per_pass", self.filters_per_pass, "auto or an integer >= 1")
        require(self.device == "auto" or self.device.startswith(("cpu", "cuda")), f"{section}.device", self.device, "auto | cpu | cuda | cuda:N")
        require(self.priority in ("absolute", "signed"), f"{section}.priority", self.priority, "absolute | signed")
        require(isinstance(self.curves, tuple) and all(isinstance(c, (int, float)) and 0 < c < 100 for c in self.curves),
                f"{section}.curves", self.curves, "a list of percentages between 0 and 100")

    def per_pass(self, channels: int, device: torch.device) -> int:
        """Swapped filters per forward pass on ``device`` for a layer of ``channels`` filters."""
        if self.filters_per_pass == "auto":
            return channels if device.type == "cuda" else 1
        return int(self.filters_per_pass)


@dataclass(frozen=True)
class DeepCorrectSettings(Section):
    """``methods.deepcorrect`` (+ an entry's overrides): what is corrected and how."""

    distortion: str = "dc_blur"
    layers: int = 3  # correct the first L conv blocks
    fraction: float = 0.5  # share of each corrected layer's filters (CIFAR: 0.5)
    unit: str = "cifar"  # cifar | cw | bottleneck
    unit_width: int = 16  # hidden width of the cifar unit (64 in the seed, for a 4x wider net)
    frozen_bn: str = "eval"  # eval | batch (see the module doc)
    l1: float = 1e-5  # L1 penalty on the unit conv weights
    distorted: float = 0.5  # share of each training batch distorted
    ranking: dict[str, Any] = field(default_factory=dict)

    section: ClassVar[str] = "methods.deepcorrect"

    def validate(self, section: str) -> None:
        require(is_int(self.layers) and self.layers >= 1, f"{section}.layers", self.layers, "an integer >= 1")
        require(isinstance(self.fraction, (int, float)) and 0 < self.fraction <= 1, f"{section}.fraction", self.fraction, "a number in (0, 1]")
        require(self.unit in UNITS, f"{section}.unit", self.unit, " | ".join(UNITS))
        require(is_int(self.unit_width) and self.unit_width >= 1, f"{section}.unit_width", self.unit_width, "an integer >= 1")
        require(self.frozen_bn in ("eval", "batch"), f"{section}.frozen_bn", self.frozen_bn, "eval | batch")
        require(isinstance(self.l1, (int, float)) and self.l1 >= 0, f"{section}.l1", self.l1, "a number >= 0")
        require(isinstance(self.distorted, (int, float)) and 0 <= self.distorted <= 1, f"{section}.distorted", self.distorted, "a number from 0 to 1")


# -- correction units --------------------------------------------------------------------------
def _conv_bn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _unit(hidden: list[tuple[int, int]], channels: int) -> nn.Sequential:
    """BN(x), then (width, kernel) conv -> BN -> ReLU stages, then a zero-initialised 1x1 back to C."""
    layers: list[nn.Module] = [nn.BatchNorm2d(channels)]
    cin = channels
    for width, kernel in hidden:
        layers += _conv_bn_relu(cin, width, kernel)
        cin = width
    last = nn.Conv2d(cin, channels, 1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


UNITS = {
    "cifar": lambda c, k, w: _unit([(w, 1), (w, 3), (w, 3)], c),
    "cw": lambda c, k, w: _unit([(c, 1), (c, k), (c, k)], c),
    "bottleneck": lambda c, k, w: _unit([(max(1, c // 2), 1), (max(1, c // 2), 3), (max(1, c // 2), 3), (max(1, c // 2), 3)], c),
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


class CorrectedBlock(nn.Module):
    """A frozen conv -> BN -> ReLU block whose ``fix`` channels get ``x + unit(x)`` on their
    pre-activation before their own BN; the channels are put back in the original order."""

    def __init__(self, block: ConvBNReLU, fix: list[int], unit: nn.Module) -> None:
        super().__init__()
        channels = block.conv.out_channels
        keep = [c for c in range(channels) if c not in set(fix)]
        order = torch.tensor(list(fix) + keep)
        self.conv = block.conv
        self.register_buffer("fix", torch.tensor(list(fix), dtype=torch.long))
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.long))
        self.register_buffer("inverse", torch.argsort(order))
        self.bn_fix = _bn_slice(block.bn, self.fix)
        self.bn_keep = _bn_slice(block.bn, self.keep)
        self.unit = unit
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        zc = z.index_select(1, self.fix)
        corrected = self.bn_fix(zc + self.unit(zc))
        kept = self.bn_keep(z.index_select(1, self.keep))
        return self.relu(torch.cat([corrected, kept], 1).index_select(1, self.inverse))


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
    """The post-ReLU outputs of the first ``layers`` conv blocks (eval mode)."""
    blocks = conv_blocks(model)
    model.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in range(layers)]
    for start in range(0, len(images), batch_size):
        h = (images[start:start + batch_size].to(model.mean.device) - model.mean) / model.std
        for k in range(layers):
            h = blocks[k](h)
            outs[k].append(h.cpu())
    return [torch.cat(o) for o in outs]


def distort_images(images: torch.Tensor, keys: list[str], distortion: Distortion, level: int, seed: int) -> torch.Tensor:
    """``images`` with ``distortion`` at ``level``, each seeded as the corrupt stages seed it."""
    out = [distortion(img, level, np.random.default_rng(sample_seed(seed, distortion.name, level, key))) for img, key in zip(to_pixels(images), keys)]
    return from_pixels(np.stack(out), images)


def file_md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def build_activation_cache(model: Classifier, split_dir: str | Path, dists: list[Distortion], out_dir: str | Path, settings: RankingSettings,
                           *, seed: int = 0, base_weights: str | Path | None = None) -> dict[str, Any]:
    """Write ``layer<k>/<version>.npy`` (version ``clean`` or ``<distortion>-<level>``),
    ``labels.npy`` and ``info.json`` (subset keys, shapes, bytes on disk) to ``out_dir``."""
    images, labels, keys = ranking_subset(split_dir, settings.per_class)
    versions: list[tuple[str, torch.Tensor]] = [("clean", images)]
    for dist in dists:
        versions += [(f"{dist.name}-{level}", distort_images(images, keys, dist, level, seed)) for level in range(1, dist.levels + 1)]
    dtype = np.float16 if settings.fp16 else np.float32
    with atomic_dir(out_dir) as folder:
        np.save(folder / "labels.npy", labels.numpy())
        for version, batch in tqdm(versions, desc="activations", unit="version", disable=None):
            for k, act in enumerate(layer_outputs(model, batch, settings.layers), start=1):
                (folder / f"layer{k}").mkdir(exist_ok=True)
                np.save(folder / f"layer{k}" / f"{version}.npy", act.numpy().astype(dtype))
        size = sum(p.stat().st_size for p in folder.rglob("*.npy"))
        info = {"base": settings.base, "base_weights": str(base_weights) if base_weights else None,
                "base_md5": file_md5(base_weights) if base_weights else None, "layers": settings.layers, "per_class": settings.per_class,
                "num_images": len(keys), "keys": keys, "dtype": np.dtype(dtype).name, "seed": seed,
                "distortions": {d.name: list(d.table or range(1, d.levels + 1)) for d in dists},
                "shapes": {f"layer{k}": list(np.load(folder / f"layer{k}" / "clean.npy", mmap_mode="r").shape) for k in range(1, settings.layers + 1)},
                "bytes": size}
        write_json(folder / "info.json", info)
    return info


def load_activations(cache_dir: str | Path, layer: int, version: str) -> torch.Tensor:
    path = Path(cache_dir) / f"layer{layer}" / f"{version}.npy"
    if not path.is_file():
        raise DataError(f"No cached activations {path}.", "rerun the activations stage (dvc repro activations) with these ranking settings.")
    return torch.from_numpy(np.load(path).astype(np.float32))


# -- ranking -----------------------------------------------------------------------------------
def swap_channels(distorted: torch.Tensor, clean: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The swapped variants: for each row of ``masks`` (V x C, bool), ``distorted`` with the
    masked channels taken from ``clean``; output (V * N, C, H, W), variant-major."""
    mask = masks.view(masks.shape[0], 1, masks.shape[1], 1, 1)
    return torch.where(mask, clean.unsqueeze(0), distorted.unsqueeze(0)).flatten(0, 1)


@torch.no_grad()
def suffix_errors(model: Classifier, layer: int, activations: torch.Tensor, labels: torch.Tensor, variants: int) -> torch.Tensor:
    """Top-1 error of each of ``variants`` stacked copies of the ranking set, run from the
    output of block ``layer`` (1-based) to the class scores."""
    logits = model.net.pool(conv_blocks(model)[layer:](activations)).flatten(1)
    wrong = logits.argmax(1).view(variants, -1) != labels.view(1, -1)
    return wrong.float().mean(1)


@torch.no_grad()
def variant_errors(model: Classifier, layer: int, clean: torch.Tensor, distorted: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor,
                   *, per_pass: int = 8, batch_size: int = 120) -> torch.Tensor:
    """Top-1 error for each channel-replacement mask (V x C), ``per_pass`` masks x
    ``batch_size`` images per forward pass, on the model's device."""
    model.eval()
    device = model.mean.device
    errors = torch.zeros(masks.shape[0], device=device)
    for i in range(0, len(labels), batch_size):
        c, d, y = (t[i:i + batch_size].to(device) for t in (clean, distorted, labels))
        for v in range(0, masks.shape[0], per_pass):
            chunk = masks[v:v + per_pass].to(device)
            errors[v:v + len(chunk)] += suffix_errors(model, layer, swap_channels(d, c, chunk), y, len(chunk)) * len(y)
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
    """Freeze ``model`` and put correction units on its first ``settings.layers`` blocks (in
    place); returns the parameters that train (units + the corrected channels' BN)."""
    blocks = conv_blocks(model)
    available = len(ranking["layers"])
    if settings.layers > available:
        raise ParamError(f"methods.deepcorrect.layers is {settings.layers} but only {available} layers were ranked.",
                         f"set methods.deepcorrect.ranking.layers >= {settings.layers}.")
    trainable: list[nn.Parameter] = []
    for k in range(settings.layers):
        block = blocks[k]
        order = ranking["layers"][f"conv{k + 1}"]["order"]
        fix = sorted(order[: max(1, round(settings.fraction * len(order)))])
        unit = correction_unit(settings.unit, len(fix), block.conv.kernel_size[0], settings.unit_width)
        corrected = CorrectedBlock(block, fix, unit)
        blocks[k] = corrected
        trainable += [*corrected.unit.parameters(), *corrected.bn_fix.parameters()]
    chosen = {id(p) for p in trainable}
    for p in model.parameters():  # the kept channels' new BN is as frozen as the rest
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


def activations_from_params(params: dict[str, Any], clean_dir: str | Path, models_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """The ``activations`` stage: the base network's cached activations for ranking."""
    from robust.methods.baseline import model_spec

    settings = ranking_settings(params)
    weights = Path(models_dir) / settings.base / "model.pt"
    model = load_trained(model_spec(params, settings.base), clean_dir, weights).to(pick_device(settings.device))
    size = read_info(Path(clean_dir) / "train")["image_size"]
    names = ((params.get("corrupt") or {}).get("suites") or {}).get("deepcorrect") or []
    dists = [distortions.configured(n, (params.get("distortions") or {}).get(n), size) for n in names]
    seed = int((params.get("corrupt") or {}).get("seed", 0))
    return build_activation_cache(model, Path(clean_dir) / "train", dists, out_dir, settings, seed=seed, base_weights=weights)


def rank_from_params(params: dict[str, Any], distortion: str, clean_dir: str | Path, cache_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """The ``rank@<distortion>`` stage -> ``out_dir/ranking.json`` and ``out_dir/curves.csv``."""
    from robust.methods.baseline import model_spec

    settings = ranking_settings(params)
    info = json.loads((Path(cache_dir) / "info.json").read_text())
    model = load_trained(model_spec(params, info["base"]), clean_dir, info["base_weights"]).to(pick_device(settings.device))
    result = rank(model, cache_dir, distortion, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "ranking.json", result)
    write_csv(out_dir / "curves.csv", curve_rows(result))
    return result
