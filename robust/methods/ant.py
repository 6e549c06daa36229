"""Adversarial noise training, ANT (Rusak et al., ECCV 2020; seed 004).

A noise generator (:mod:`robust.models.noise_generator`) learns the noise the classifier
handles worst, and the classifier trains on it. Per batch:

1. generator step: the classifier in eval mode, the generator maximises its cross-entropy
   on noised images (Adam, ``generator_lr``);
2. classifier step on a mixed batch: ``current`` of it noised by the current generator,
   ``replay`` by one generator saved at an earlier epoch (drawn per batch; while none is
   saved yet the current one stands in), the rest clean.

At the start of every epoch the current generator joins the replay pool (at most
``replay_size``, oldest dropped) and a fresh one is trained for ``fresh_steps`` batches
against the current classifier, then swapped in.

Noise strength: per image the scalar eta with ``||clip(x + eta * delta, 0, 1) - x||_2 =
epsilon``, solved exactly (:func:`solve_eta`); epsilon is given as per-pixel RMS
(``epsilon``), so it scales with the image size: the seed's 135 at 3 x 224 x 224 is 0.35.
**Choice**: eta is a constant of the step (no gradient through the solve); gradients reach
the generator through delta. When epsilon is out of reach the eta at which every pixel
saturates is used.

Classifier recipe: ``methods.ant.train`` uses lr 0.01 (SGD, Nesterov, weight decay 5e-4,
cosine), not the seed's SGD lr 1e-3 constant; :mod:`robust.methods.noise` gives the measured
comparison (the seed's recipe costs as much clean accuracy here; for ANT the two are within
about a point of each other on mCE).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robust.data.loader import make_loader
from robust.errors import ParamError
from robust.methods.common import Context, Run, load_base
from robust.models.noise_generator import VARIANTS, NoiseGenerator
from robust.params import Section, is_int, require


@dataclass(frozen=True)
class AntSettings(Section):
    """``methods.ant`` (+ an entry's overrides, at least ``generator``)."""

    generator: str = "1x1"  # 1x1 | 3x3
    hidden: int = 20  # generator width
    epsilon: float = 0.35  # noise L2 norm as per-pixel RMS (seed: 135 at 3x224x224)
    generator_lr: float = 1e-4
    current: float = 0.3  # share of a classifier batch noised by the current generator
    replay: float = 0.2  # share noised by an earlier generator
    fresh_steps: int = 20  # steps a fresh generator trains each epoch (seed ~1000 on ImageNet)
    replay_size: int = 10  # earlier generators kept

    section: ClassVar[str] = "methods.ant"

    def validate(self, section: str) -> None:
        require(self.generator in VARIANTS, f"{section}.generator", self.generator, " | ".join(VARIANTS))
        for name in ("hidden", "replay_size"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= 1, f"{section}.{name}", getattr(self, name), "an integer >= 1")
        require(is_int(self.fresh_steps) and self.fresh_steps >= 0, f"{section}.fresh_steps", self.fresh_steps, "an integer >= 0")
        for name in ("epsilon", "generator_lr"):
            require(isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0, f"{section}.{name}", getattr(self, name), "a number > 0")
        for name in ("current", "replay"):
            require(isinstance(getattr(self, name), (int, float)) and 0 <= getattr(self, name) <= 1, f"{section}.{name}", getattr(self, name), "a number from 0 to 1")
        require(self.current + self.replay <= 1, f"{section}.current + replay", self.current + self.replay, "shares that add up to at most 1")


# -- the exact norm projection -----------------------------------------------------------------
@torch.no_grad()
def solve_eta(x: torch.Tensor, delta: torch.Tensor, epsilon: torch.Tensor | float) -> torch.Tensor:
    """Per image, the eta >= 0 with ``||clip(x + eta * delta, 0, 1) - x||_2 = epsilon``.

    Pixel i moves by ``eta * d_i`` until it saturates at ``t_i`` (``(1 - x_i) / d_i`` or
    ``x_i / -d_i``), then stays at ``s_i`` (``1 - x_i`` or ``-x_i``). Sorting the t_i, the
    squared norm between breakpoints is ``eta^2 * (sum of d^2 not yet saturated) + (sum of
    s^2 saturated)``: increasing and piecewise quadratic, so cumulative sums find the
    interval and a square root the exact eta. Out of reach (epsilon above the norm with
    every pixel saturated): the largest finite t_i. ``x``, ``delta``: (N, ...); ``epsilon``:
    a number or (N,) L2 norms.
    """
    n = x.shape[0]
    x, d = x.reshape(n, -1).double(), delta.reshape(n, -1).double()
    eps2 = (torch.as_tensor(epsilon, dtype=torch.float64, device=x.device).expand(n)) ** 2
    up, down = d > 0, d < 0  # (selects, not masked assignment: the same values, a third of the time)
    t = torch.where(up, (1 - x) / d, torch.where(down, x / -d, float("inf")))
    s = torch.where(up, 1 - x, torch.where(down, -x, 0.0))
    # stable: pixels with equal breakpoints (t = 0 for every saturated pixel moving outwards is
    # common) are summed in index order; an unstable sort may order ties by the CPU's kernel,
    # and the cumulative sums then round differently from machine to machine
    t, order = torch.sort(t, dim=1, stable=True)
    d2, s2 = (d * d).gather(1, order), (s * s).gather(1, order)
    total = d2.sum(1, keepdim=True)
    before_d2 = torch.cumsum(d2, 1) - d2  # sum of d^2 saturated before breakpoint k
    before_s2 = torch.cumsum(s2, 1) - s2
    finite = torch.isfinite(t)
    # a pixel the direction does not move (d_i = 0) never saturates: its breakpoint is at infinity,
    # where the norm is the plateau of the saturated pixels once every moving pixel has saturated
    moving = total - before_d2
    norm2_at = torch.where(finite, t.clamp_max(1e300) ** 2 * moving + before_s2,
                           torch.where(moving > 0, torch.full_like(t, float("inf")), before_s2))
    reached = norm2_at >= eps2.view(-1, 1)  # monotone in k; the first True bounds the interval
    k = torch.where(reached.any(1), reached.float().argmax(1), torch.full((n,), t.shape[1], device=x.device))
    k_prev = (k - 1).clamp_min(0).view(-1, 1)
    free = torch.where(k.view(-1, 1) > 0, total - before_d2.gather(1, k_prev) - d2.gather(1, k_prev), total).squeeze(1)
    saturated = torch.where(k.view(-1, 1) > 0, before_s2.gather(1, k_prev) + s2.gather(1, k_prev), torch.zeros_like(total)).squeeze(1)
    eta = torch.sqrt(((eps2 - saturated) / free.clamp_min(1e-300)).clamp_min(0))
    largest = torch.where(finite, t, torch.zeros_like(t)).amax(1)
    unreachable = ~reached.any(1)
    eta = torch.where(unreachable, largest, eta)
    return torch.where(total.squeeze(1) > 0, eta, torch.zeros_like(eta)).float()


def project(x: torch.Tensor, delta: torch.Tensor, epsilon_rms: float) -> torch.Tensor:
    """``clip(x + eta * delta, 0, 1)`` with eta from :func:`solve_eta` for the L2 norm
    ``epsilon_rms * sqrt(pixels per image)``; differentiable in ``delta``. Computed in float32
    whatever the generator's dtype (under bf16 autocast, a bf16 eta missed the norm by ~0.5 %)."""
    epsilon = epsilon_rms * x[0].numel() ** 0.5
    delta = delta.float()
    eta = solve_eta(x.detach(), delta.detach(), epsilon)
    return (x.float() + eta.view(-1, *([1] * (x.dim() - 1))) * delta).clamp(0.0, 1.0).to(x.dtype)


# -- the ANT loop ------------------------------------------------------------------------------
def mix_counts(n: int, current: float, replay: float) -> tuple[int, int, int]:
    """(current-generator, replayed, clean) images of an n-image classifier batch."""
    a, b = int(round(current * n)), int(round(replay * n))
    b = min(b, n - a)
    return a, b, n - a - b


class AntState:
    """The generators of one ANT run; the engine calls :meth:`start_epoch` and checkpoints it."""

    def __init__(self, model: nn.Module, settings: AntSettings, train_dir: str | Path, batch_size: int, seed: int) -> None:
        self.model, self.settings = model, settings
        self.train_dir, self.batch_size, self.seed = Path(train_dir), batch_size, seed
        self.generator: NoiseGenerator | None = None  # start_epoch makes each epoch's fresh one
        self.optimizer: torch.optim.Optimizer | None = None
        self.pool: list[NoiseGenerator] = []

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _new_generator(self) -> NoiseGenerator:
        return NoiseGenerator(self.settings.generator, hidden=self.settings.hidden).to(self._device())

    def noise(self, generator: NoiseGenerator, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        return project(images, generator(n, h, w), self.settings.epsilon)

    def generator_step(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One step of the current generator against ``model`` in eval mode (maximise CE)."""
        was_training = model.training
        model.eval()
        loss = -F.cross_entropy(model(self.noise(self.generator, images)), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))
        self.optimizer.step()
        model.train(was_training)
        return -float(loss.detach())

    def mixed_batch(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's batch: current / replayed / clean shares at random positions."""
        a, b, _ = mix_counts(len(images), self.settings.current, self.settings.replay)
        perm = torch.randperm(len(images)).to(images.device)
        out = images.clone()
        with torch.no_grad():
            if a:
                out[perm[:a]] = self.noise(self.generator, images[perm[:a]])
            if b:
                old = self.pool[int(torch.randint(len(self.pool), (1,)))] if self.pool else self.generator
                out[perm[a:a + b]] = self.noise(old, images[perm[a:a + b]])
        return out

    def start_epoch(self, epoch: int) -> None:
        """Keep the current generator for replay and swap in a fresh one trained against the classifier."""
        if epoch > 0:
            self.pool = [*self.pool, copy.deepcopy(self.generator).requires_grad_(False)][-self.settings.replay_size:]
        self.generator = self._new_generator()
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.settings.generator_lr)
        if self.settings.fresh_steps == 0:
            return
        loader = make_loader(self.train_dir, self.batch_size, train=True, seed=self.seed + 104729)
        steps, rounds = 0, 0
        while steps < self.settings.fresh_steps:  # more steps than batches: go round the data again
            loader.dataset.set_epoch(epoch * 1000 + rounds)
            rounds += 1
            for images, labels in loader:
                self.generator_step(self.model, images.to(self._device()), labels.to(self._device()))
                steps += 1
                if steps >= self.settings.fresh_steps:
                    break

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "optimizer": self.optimizer.state_dict(), "pool": [g.state_dict() for g in self.pool]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # the engine restored the RNG state just before: building the modules must not draw from it
        with torch.random.fork_rng(devices=[]):
            self.generator = self._new_generator()
            self.pool = [self._new_generator().requires_grad_(False) for _ in state["pool"]]
        self.generator.load_state_dict(state["generator"])
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.settings.generator_lr)
        self.optimizer.load_state_dict(state["optimizer"])
        for g, saved in zip(self.pool, state["pool"]):
            g.load_state_dict(saved)


def ant_loss(state: AntState):  # -> LossFn
    """ANT's training step: a generator step, then cross-entropy on the mixed batch."""

    def loss_fn(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the generator step runs on the plain module, not through a DDP wrapper (whose forward
        # inside Join adds collectives and hangs with uneven batches); it changes no classifier weight
        state.generator_step(state.model, images, labels)
        logits = net(state.mixed_batch(images))
        return F.cross_entropy(logits, labels), logits

    return loss_fn


def setup(ctx: Context) -> Run:
    """Fine-tune the whole base network with ANT."""
    settings = AntSettings.from_dict(ctx.settings, f"models.{ctx.name}")
    model = load_base(ctx)
    state = AntState(model, settings, ctx.clean_dir / "train", ctx.train.batch_size, ctx.train.seed)
    return Run(model, list(model.parameters()), ant_loss(state), hooks=state)


def noise_samples(settings: AntSettings, checkpoint: str | Path, image: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For the report's figure: ``image`` (uint8 HxWx3) plus the final generator's noise, read
    from the training checkpoint, and plus Gaussian noise of the same L2 norm, both projected
    as in training; HxWx3 float in [0, 1]."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False).get("hooks") or {}
    if "generator" not in state:
        raise ParamError(f"{checkpoint} holds no ANT generator.", "train the ANT model first (dvc repro).")
    generator = NoiseGenerator(settings.generator, hidden=settings.hidden)
    generator.load_state_dict(state["generator"])
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        learned = project(x, generator(1, x.shape[2], x.shape[3], generator=rng), settings.epsilon)
        gaussian = project(x, torch.randn(x.shape, generator=rng), settings.epsilon)
    return learned[0].permute(1, 2, 0).numpy(), gaussian[0].permute(1, 2, 0).numpy()
