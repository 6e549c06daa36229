"""Recognition-aware (RA) image processing (Liu et al., "Exploring Simple and Transferable
Recognition-Aware Image Processing", TPAMI 2022; seed 002).

A processor P (``srresnet``) restores an image degraded by a task (:mod:`robust.recognition_aware.tasks`:
``sr`` / ``denoise`` / ``jpeg``); a fixed recogniser R (the entry's ``base``, a trained
``models:`` classifier) classifies the result. R stays in eval mode and is never updated; it
normalises P's output inside its own graph (:class:`~robust.models.Classifier`), so the
recognition loss reaches P. Modes (``mode``), with the seed's lambdas (``lam``, null = these):

* ``plain``: MSE(P(x), y);
* ``ra``: MSE(P(x), y) + lambda CE(R(P(x)), label), lambda 1e-3;
* ``ra_transformer``: P on MSE only; a transformer T (``resnet_generator``) on
  lambda CE(R(T(P(x).detach())), label), lambda 1e-2. One optimiser holds both as two
  parameter groups (Adam keeps per-parameter state, so this is the seed's two optimisers): P at
  the training lr, T at ``transformer_lr`` (1e-4, the seed's; at the CPU default's 1e-3 T
  drifted and R's top-1 on T's output fell below plain processing's on SR, -10.7 points); the
  detach keeps every recognition gradient out of P. Accuracy is measured on R(T(P(x))), image quality on P(x);
* ``ra_unsupervised``: MSE(P(x), y) + lambda MSE(softmax R(P(x)), softmax R(y)), no labels,
  lambda 10. The seed's MSE is a mean over ImageNet's 1,000 classes; here the squared
  difference is summed over the classes and divided by ``unsupervised_classes`` (1,000,
  :data:`SEED_CLASSES`; null: the mean over this dataset's classes, the seed's code literally), which is
  the seed's term on ImageNet and keeps its weight on 12 classes (a plain mean over 12 classes
  would weigh it about 80x more: measured, P's PSNR fell from 34.6 to 22.2 dB on x2 SR).

The trained model is :class:`ProcessedClassifier`, ``R(T(P(sensor(x))))``: an ``nn.Module``
classifier like any other. With ``benchmark: imagenet_c`` (the default's ``ra`` entries) its
``evaluate@`` stage scores it on the clean test split and the 15 corruptions mCE averages
(``all``: every built test set), so it enters the leaderboard with its mCE; P runs on every
test image there, which is why the default leaves the other suites out. An entry with
``benchmark: false`` is no leaderboard row: it belongs in ``study_models:`` (``train-study@``,
no ``evaluate@``), and seed 002's tables (every mode on several recognisers, PSNR / SSIM) are
the ``ra`` stage's (:mod:`robust.recognition_aware.tables`).

Settings (``methods.ra``, overridden by an entry): ``task``, ``mode``, ``lam``, ``tasks``
(each task's degradation), ``processor`` / ``transformer`` (registry options of P and T;
an entry's mapping is merged key by key into the section's), ``transformer_lr``, ``unsupervised_classes``,
``benchmark``, ``seed`` (the validation inputs' per-sample seeds). CPU defaults: P 8 wide with
2 blocks and T 8 wide with 2 blocks, both with a global skip (``residual``: they start as the
no-processing output), Adam 1e-3 (T 1e-4), batch 32, one epoch. The seed's: P 64 wide with 5
blocks and no skip, T 64 wide with 6 blocks, Adam 1e-4, batch 20, 6 ImageNet epochs, lr x0.1 at
epochs 4 and 5 (see the README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robust.data.loader import make_loader
from robust.distortions import IMAGENET_C
from robust.errors import ParamError
from robust.methods.common import Context, Run, load_base
from robust.models import Classifier, create
from robust.params import Section, is_int, require
from robust.recognition_aware.tasks import Task, TaskParams, eval_seeds, quality

MODES = ("plain", "ra", "ra_transformer", "ra_unsupervised")
#: the seed's lambda of each mode (``plain`` has no recognition term)
LAMBDAS = {"plain": 0.0, "ra": 1e-3, "ra_transformer": 1e-2, "ra_unsupervised": 10.0}
PROCESSOR_OPTIONS = ("width", "blocks", "residual")
TRANSFORMER_OPTIONS = ("width", "blocks", "downsamplings", "norm", "residual")
#: the unsupervised term is summed over classes and divided by ImageNet's 1,000 (the seed's mean over
#: 1,000 softmax outputs), so lambda 10 weighs it as in the seed whatever the number of classes
SEED_CLASSES = 1000


@dataclass(frozen=True)
class RASettings(Section):
    """``methods.ra`` (+ an entry's overrides, at least ``task`` and ``mode``)."""

    task: str = "denoise"
    mode: str = "plain"
    lam: float | None = None  # null: the seed's lambda of the mode
    tasks: dict[str, Any] = field(default_factory=dict)
    processor: dict[str, Any] = field(default_factory=lambda: {"width": 8, "blocks": 2, "residual": True})
    transformer: dict[str, Any] = field(default_factory=lambda: {"width": 8, "blocks": 2, "residual": True})
    transformer_lr: float | None = 1e-4  # T's own learning rate (null: the training lr, as P's)
    unsupervised_classes: int | None = SEED_CLASSES  # ra_unsupervised: squared softmax difference summed over classes / this (null: mean)
    benchmark: bool | str = False  # imagenet_c | all: evaluate@ scores P -> R on those test sets (a leaderboard row); false: off
    seed: int = 0  # per-sample seeds of the validation / evaluation inputs

    section: ClassVar[str] = "methods.ra"

    def validate(self, section: str) -> None:
        require(self.mode in MODES, f"{section}.mode", self.mode, " | ".join(MODES))
        require(self.lam is None or (isinstance(self.lam, (int, float)) and not isinstance(self.lam, bool) and self.lam >= 0),
                f"{section}.lam", self.lam, "null (the seed's lambda of the mode) or a number >= 0")
        require(self.lam is None or self.mode != "plain", f"{section}.lam", self.lam,
                "null with mode plain (MSE only: plain has no recognition term to weigh)")
        require(self.transformer_lr is None or (isinstance(self.transformer_lr, (int, float)) and not isinstance(self.transformer_lr, bool)
                                                and self.transformer_lr > 0), f"{section}.transformer_lr", self.transformer_lr,
                "null (the training lr) or a number > 0")
        require(self.benchmark in (False, "imagenet_c", "all"), f"{section}.benchmark", self.benchmark,
                "false (clean + its own task's distortion, no leaderboard row) | imagenet_c (the 15 mCE corruptions) | all (every test set)")
        require(is_int(self.seed) and self.seed >= 0, f"{section}.seed", self.seed, "a non-negative integer")
        for name, allowed in (("processor", PROCESSOR_OPTIONS), ("transformer", TRANSFORMER_OPTIONS)):
            options = getattr(self, name)
            require(isinstance(options, dict), f"{section}.{name}", options, f"a mapping of {' / '.join(allowed)}")
            unknown = sorted(set(options) - set(allowed))
            if unknown:
                raise ParamError(f"Unknown setting {section}.{name}.{unknown[0]}.", f"{name} takes: {', '.join(allowed)}.")
        require(self.unsupervised_classes is None or (is_int(self.unsupervised_classes) and self.unsupervised_classes >= 2),
                f"{section}.unsupervised_classes", self.unsupervised_classes,
                "an integer >= 2 (1000: the seed's ImageNet weighting) or null (a mean over this dataset's classes, the seed's code literally)")
        self.task_spec(section)

    @property
    def weight(self) -> float:
        """lambda: the entry's ``lam`` or the seed's value for the mode."""
        return float(LAMBDAS[self.mode] if self.lam is None else self.lam)

    def task_spec(self, section: str = "methods.ra") -> Task:
        return TaskParams.from_dict(self.tasks, f"{section}.tasks").task(self.task, section)


class ProcessedClassifier(nn.Module):
    """``R(T(P(sensor(x))))``: a processor in front of a frozen recogniser (T: identity unless
    ``ra_transformer``). ``train()`` leaves R in eval mode: its batch-norm statistics and
    weights never change.

    In eval mode ``forward(x)`` is the classifier (what ``evaluate@`` scores). In train mode
    it takes P's input (already degraded by the step) and returns ``(P(x), logits)``, logits
    None when ``recognise_in_training`` is off (``plain``): the step goes through the module's
    own forward, so DDP synchronises its gradients, and the forward stays free of
    argument-dependent branches, so ``torch.fx`` can fold its batch norms for scoring.
    """

    def __init__(self, processor: nn.Module, recogniser: Classifier, task: Task, transformer: nn.Module | None = None,
                 detach_processor: bool = False, recognise_in_training: bool = True) -> None:
        super().__init__()
        self.processor, self.recogniser, self.task = processor, recogniser, task
        self.transformer = transformer if transformer is not None else nn.Identity()
        self.detach_processor, self.recognise_in_training = detach_processor, recognise_in_training
        self.recogniser.requires_grad_(False)
        self.recogniser.eval()

    def train(self, mode: bool = True) -> "ProcessedClassifier":
        super().train(mode)
        self.recogniser.eval()
        return self

    def restore(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P's output for its inputs, and the image R sees (T's output, or P's)."""
        image = self.processor(inputs)
        return image, self.transformer(image.detach() if self.detach_processor else image)

    def forward(self, x: torch.Tensor) -> Any:
        if not self.training:
            return self.recogniser(self.restore(self.task.sensor(x))[1])
        image, shown = self.restore(x)
        return image, (self.recogniser(shown) if self.recognise_in_training else None)


def ra_loss(settings: RASettings):  # -> LossFn
    """The training step of ``settings.mode`` on P's inputs made from the clean batch."""
    task, mode, lam = settings.task_spec(), settings.mode, settings.weight
    classes = settings.unsupervised_classes

    def loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        seeds = torch.randint(0, 2**31 - 1, (len(images),)).tolist()  # the engine seeds and checkpoints torch's stream
        inputs = task.degrade(images, seeds)
        restored, logits = model(inputs)  # train mode: (P(inputs), R's logits or None)
        loss = F.mse_loss(restored, images)
        if mode in ("ra", "ra_transformer"):
            loss = loss + lam * F.cross_entropy(logits, labels)
        elif mode == "ra_unsupervised":
            with torch.no_grad():
                target = F.softmax(getattr(model, "module", model).recogniser(images), dim=1)
            squared = (F.softmax(logits, dim=1) - target) ** 2
            loss = loss + lam * (squared.mean() if classes is None else squared.sum(dim=1).mean() / classes)
        return loss, logits

    return loss_fn


@torch.no_grad()
def restored_scores(batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]], recognisers: dict[str, nn.Module],
                    make: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> dict[str, np.ndarray]:
    """Per image of ``(inputs, labels, clean)`` batches: each recogniser's top-1 hit on
    ``make(inputs) -> (restored, shown)``, and PSNR / SSIM of ``restored`` against ``clean``
    (when given). The one restore -> recognise -> quality loop of training's validation
    (:func:`task_scores`) and seed 002's tables (:mod:`robust.recognition_aware.tables`)."""
    hits: dict[str, list[np.ndarray]] = {name: [] for name in recognisers}
    psnr, ssim = [], []
    for inputs, labels, clean in batches:
        restored, shown = make(inputs.to(device))
        for name, net in recognisers.items():
            hits[name].append((net(shown).argmax(1).cpu() == labels).numpy())
        if clean is not None:
            p, s = quality(restored.cpu(), clean)
            psnr.append(p)
            ssim.append(s)
    out = {name: np.concatenate(v) for name, v in hits.items()}
    if psnr:
        out["psnr"], out["ssim"] = np.concatenate(psnr), np.concatenate(ssim)
    return out


def task_scores(model: ProcessedClassifier, folder: Path, seed: int, batch_size: int = 256, device: torch.device | None = None) -> dict[str, float]:
    """Mean PSNR / SSIM of P's output and top-1 of R on its task's degraded ``folder`` (the
    validation of every epoch)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    loader = make_loader(folder, batch_size, with_index=True, by_rank=False)  # every rank scores the whole split
    batches = ((model.task.degrade(images, eval_seeds(seed, model.task.name, index.tolist())), labels, images) for images, labels, index in loader)
    scores = restored_scores(batches, {"top1": model.recogniser}, model.restore, device)
    model.train(was_training)
    return {name: float(values.mean()) for name, values in scores.items()}


def _network(ctx: Context, key: str, name: str, options: dict[str, Any]) -> nn.Module:
    """A registry network built from ``models.<entry>.<key>``: its errors name the entry."""
    try:
        return create(name, 2, **options).net
    except ParamError as error:
        raise ParamError(f"models.{ctx.name}.{key} (methods.ra.{key} merged with the entry): {error.problem}", error.fix) from None
    except TypeError as error:
        allowed = PROCESSOR_OPTIONS if key == "processor" else TRANSFORMER_OPTIONS
        raise ParamError(f"models.{ctx.name}.{key} has an invalid option: {error}.", f"{name} takes: {', '.join(allowed)}.") from None


def build_model(ctx: Context, settings: RASettings, recogniser: Classifier | None = None) -> ProcessedClassifier:
    """P (and T) around the entry's trained recogniser ``base``."""
    task = settings.task_spec()
    processor = _network(ctx, "processor", "srresnet", {"scale": task.upscale, **settings.processor})
    transformer = None
    if settings.mode == "ra_transformer":
        transformer = _network(ctx, "transformer", "resnet_generator", settings.transformer)
        side = ctx.image_size
        if side % transformer.factor:
            raise ParamError(f"models.{ctx.name}.transformer: resnet_generator halves {side} px images "
                             f"{transformer.factor.bit_length() - 1} times, which needs sides divisible by {transformer.factor}.",
                             "lower transformer.downsamplings (or use images whose side it divides).")
    return ProcessedClassifier(processor, recogniser if recogniser is not None else load_base(ctx), task, transformer,
                               detach_processor=settings.mode == "ra_transformer", recognise_in_training=settings.mode != "plain")


def settings_of(ctx: Context) -> RASettings:
    return RASettings.from_dict(ctx.settings, f"models.{ctx.name}")


def setup(ctx: Context) -> Run:
    """P trains (and T with ``ra_transformer``); R is frozen. Validation: PSNR / SSIM / top-1 on
    the degraded val split; the last epoch is kept, as in the seed."""
    settings = settings_of(ctx)
    if ctx.train.optimizer == "lbfgs":  # its closure would redraw the degradation at every loss evaluation of the line search
        raise ParamError(f"models.{ctx.name}.train.optimizer is lbfgs.", "use adam (the seed's) or sgd for a processor.")
    model = build_model(ctx, settings)
    parameters: list[Any] = [{"params": list(model.processor.parameters())}]
    if settings.mode == "ra_transformer":
        parameters.append({"params": list(model.transformer.parameters()),
                           **({} if settings.transformer_lr is None else {"lr": float(settings.transformer_lr)})})
    val = ctx.clean_dir / "val"

    def validate(net: nn.Module) -> dict[str, float]:
        return task_scores(net, val, settings.seed, ctx.train.batch_size)  # type: ignore[arg-type]

    return Run(model, parameters, ra_loss(settings), validate=validate)


def is_classifier(settings: dict[str, Any]) -> bool:
    """Whether an entry's ``evaluate@`` is a leaderboard evaluation (``benchmark`` not false)."""
    return settings.get("benchmark", False) not in (False, None)


def benchmark_distortions(settings: dict[str, Any], names: list[str]) -> list[str]:
    """``benchmark: imagenet_c``: only the 15 corruptions mCE averages (P runs on every test
    image, so the other suites are left out to fit the budget); ``all``: every configured one."""
    return [n for n in names if n in IMAGENET_C] if settings.get("benchmark") == "imagenet_c" else names
