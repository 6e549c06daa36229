"""The one training / evaluation loop that every method uses.

``train`` runs epochs of ``loss_fn`` over a shard folder with the optimiser and schedule of
:class:`TrainParams`, and handles what every method needs once:

* device: CUDA when present (AMP autocast + channels_last there), else CPU;
* DDP when launched with ``torchrun`` (gloo on CPU, NCCL on GPU): shards are split by rank
  (:mod:`robust.data.loader`), uneven last batches are handled with ``Join``, and only rank 0
  writes files;
* a checkpoint after every epoch (model, optimiser, schedule, RNG states), written
  atomically; a later call with the same settings resumes an unfinished run after its last
  finished epoch (DVC keeps the file between runs: ``persist: true`` in ``dvc.yaml``); a
  finished run (marked ``complete``) or one with other settings starts afresh, since DVC
  reruns a finished stage only when its code, data or parameters changed;
* DVCLive curves (``train/loss``, ``train/top1``, ``val/top1`` per epoch) for ``dvc plots``;
* progress bars; seeding of torch, numpy and the shard order.

Settings: :class:`TrainParams` (the ``train:`` section). ``optimizer: lbfgs`` runs
``lbfgs_iterations`` L-BFGS iterations per batch through a closure (full-batch training of
the IQA sparse autoencoder, as UNIQUE's fminlbfgs; one batch per epoch). ``epochs: 0`` trains
nothing and saves the start weights as ``model.pt`` (a pretrained network scored as it is,
e.g. torchvision's ImageNet AlexNet as a paper-scale baseline), logs their validation as DVCLive's step 0
and writes a completed checkpoint, so the stage has its every output. Methods customise the step, not the
loop: ``loss_fn(model, images, labels) -> (loss, logits)`` (``logits`` None for a model that
is not a classifier, such as the gradient VAE: no top-1 is then counted), ``parameters``
(what trains) and, for methods with state of their own (ANT's noise generators), ``hooks``:
an object with ``start_epoch(epoch)``, ``state_dict()`` and ``load_state_dict(state)``,
called at the start of every epoch and saved in / restored from the checkpoint.

What it trains on is a shard folder, or any :class:`BatchSource` (an iterable of
``(inputs, labels)`` batches with ``set_epoch``), such as the gradient detector's balanced
feature batches. Validation is top-1 on ``val_dir`` by default, or a method's own
``validate(model) -> {name: value}`` (logged as ``val_<name>``); with ``keep_best="val_loss"``
the weights of the epoch with the lowest such value are what ``model.pt`` holds (the
original VAE and detector keep their best epoch by validation loss), and they survive a
resume through the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from robust.data.loader import make_loader
from robust.evaluation.metrics import topk_correct, topk_hits
from robust.params import Section, is_int, require

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
Validate = Callable[[nn.Module], dict[str, float]]
CHECKPOINT = "checkpoint.pt"


class BatchSource(Protocol):
    """Training batches other than a shard folder's: iterate ``(inputs, labels)``; ``set_epoch``
    reseeds the order of an epoch (so a resumed run draws the same batches)."""

    def set_epoch(self, epoch: int) -> None: ...
    def __iter__(self) -> Any: ...


class TrainHooks(Protocol):
    """Per-epoch state of a method beyond the model (see the module doc)."""

    def start_epoch(self, epoch: int) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

MODEL = "model.pt"
AUGMENTATIONS = ("flip-crop", "flip", "flip-rotate", "none")


@dataclass(frozen=True)
class TrainParams(Section):
    """How a model is trained (one ``train:`` entry): optimiser, schedule, budget, device."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    step_size: int = 30
    milestones: tuple[int, ...] = ()  # schedule multistep: lr x gamma after each of these epochs (3: from the 4th epoch on)
    gamma: float = 0.1
    augment: str = "flip-crop"
    rotate_degrees: float = 15.0  # augment flip-rotate: rotation uniform in [-d, d] degrees (seed 003: 15)
    label_smoothing: float = 0.0
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    lbfgs_iterations: int = 20  # optimizer lbfgs: L-BFGS iterations per batch (strong-Wolfe line search)

    section: ClassVar[str] = "train"
    tuple_fields: ClassVar[tuple[str, ...]] = ("milestones",)

    def validate(self, section: str = "train") -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            require(is_int(value) and value >= minimum, f"{section}.{name}", value, f"an integer >= {minimum}")

        positive_int("epochs", 0)
        positive_int("batch_size")
        positive_int("step_size")
        positive_int("workers", 0)
        positive_int("seed", 0)
        positive_int("lbfgs_iterations")
        require(self.optimizer in ("sgd", "adam", "lbfgs"), f"{section}.optimizer", self.optimizer, "sgd | adam | lbfgs")
        require(self.optimizer != "lbfgs" or self.weight_decay == 0, f"{section}.weight_decay", self.weight_decay,
                "0 with optimizer lbfgs (put any weight decay in the loss, as the sparse autoencoder does)")
        require(self.schedule in ("cosine", "step", "multistep", "constant"), f"{section}.schedule", self.schedule, "cosine | step | multistep | constant")
        require(isinstance(self.milestones, tuple) and all(is_int(m) and 1 <= m < max(self.epochs, 1) for m in self.milestones)
                and list(self.milestones) == sorted(set(self.milestones)), f"{section}.milestones", self.milestones,
                f"increasing epochs from 1 to epochs - 1 ({self.epochs - 1}) after which lr is multiplied by gamma")
        require((self.schedule == "multistep") == bool(self.milestones), f"{section}.milestones", self.milestones,
                "at least one epoch with schedule multistep, and [] with any other schedule (it would be ignored)")
        require(self.augment in AUGMENTATIONS, f"{section}.augment", self.augment, " | ".join(AUGMENTATIONS))
        require(isinstance(self.rotate_degrees, (int, float)) and not isinstance(self.rotate_degrees, bool) and 0 <= self.rotate_degrees <= 180,
                f"{section}.rotate_degrees", self.rotate_degrees, "a number of degrees from 0 to 180")
        require(self.device == "auto" or self.device.startswith(("cpu", "cuda")), f"{section}.device", self.device, "auto | cpu | cuda | cuda:N")
        for name in ("lr", "momentum", "weight_decay", "gamma", "label_smoothing"):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, f"{section}.{name}", value, "a number >= 0")
        require(self.lr > 0, f"{section}.lr", self.lr, "a number > 0")


# -- environment -------------------------------------------------------------------------------
def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the process's CUDA device under torchrun (``LOCAL_RANK``), else cuda:0, else
    the CPU. A bare ``cuda`` is also the process's own device under torchrun (it once put
    every rank on GPU 0); ``cuda:N`` is taken as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by torchrun; returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    if not torch.distributed.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


# -- pieces ------------------------------------------------------------------------------------
def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """The plain classification step."""

    def loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(images)
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing), logits

    return loss_fn


def augment(images: torch.Tensor, mode: str, generator: torch.Generator, degrees: float = 15.0) -> torch.Tensor:
    """Batched train-time augmentation on the device: horizontal flip (p=0.5) and, for
    ``flip-crop``, a random crop after reflect-padding by 1/8 of the side (4 px at 32 px); for
    ``flip-rotate`` (seed 003's), a rotation uniform in [-``degrees``, ``degrees``] per image
    (torchvision's ``rotate``: nearest neighbour, corners filled with 0, as its
    ``RandomRotation`` by default)."""
    if mode == "none":
        return images
    n, _, h, w = images.shape
    flip = torch.rand(n, generator=generator, device="cpu") < 0.5
    images = torch.where(flip.to(images.device).view(n, 1, 1, 1), images.flip(3), images)
    if mode == "flip-rotate" and degrees > 0:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2.functional import rotate

        angles = (torch.rand(n, generator=generator, device="cpu") * 2 - 1) * degrees
        images = torch.stack([rotate(image, float(angle), interpolation=InterpolationMode.NEAREST) for image, angle in zip(images, angles)])
    if mode == "flip-crop":
        pad = max(1, h // 8)
        padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy.view(n, 1) + torch.arange(h)).to(images.device)
        cols = (dx.view(n, 1) + torch.arange(w)).to(images.device)
        index = torch.arange(n, device=images.device).view(n, 1, 1, 1)
        channel = torch.arange(images.shape[1], device=images.device).view(1, -1, 1, 1)
        images = padded[index, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    return images


def build_optimizer(parameters: Iterable[nn.Parameter] | Iterable[dict[str, Any]], p: TrainParams) -> torch.optim.Optimizer:
    """``p``'s optimiser over the trainable ``parameters``: tensors, or torch parameter groups
    (``{"params": [...], "lr": ...}``) where one part of a model takes its own learning rate."""
    items = list(parameters)
    if items and isinstance(items[0], dict):
        params: list[Any] = [{**g, "params": [q for q in g["params"] if q.requires_grad]} for g in items]
        params = [g for g in params if g["params"]]
        if p.optimizer == "lbfgs" and len(params) > 1:
            raise ValueError("L-BFGS takes one parameter group")
    else:
        params = [q for q in items if q.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay)
    if p.optimizer == "lbfgs":  # full-batch quasi-Newton (the sparse autoencoder; UNIQUE's code calls fminlbfgs): history
        # 100 and up to 3 loss evaluations per iteration (torch's own max_eval, 1.25 per iteration, cuts iterations short)
        return torch.optim.LBFGS(params, lr=p.lr, max_iter=p.lbfgs_iterations, max_eval=3 * p.lbfgs_iterations, history_size=100,
                                 line_search_fn="strong_wolfe")
    return torch.optim.SGD(params, lr=p.lr, momentum=p.momentum, nesterov=p.nesterov and p.momentum > 0, weight_decay=p.weight_decay)


def build_schedule(optimizer: torch.optim.Optimizer, p: TrainParams) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch."""
    if p.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=p.epochs)
    if p.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=p.step_size, gamma=p.gamma)
    if p.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(p.milestones), gamma=p.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def fingerprint(*parts: Any) -> str:
    """A hash of the settings a checkpoint belongs to (resume only into the same run)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _every_rank(obj: Any, world: int) -> list[Any]:
    """``obj`` of every rank, on every rank (a collective: all ranks call it)."""
    if world == 1:
        return [obj]
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


# -- evaluation --------------------------------------------------------------------------------
class InferenceModel(nn.Module):
    """A network prepared for scoring only (see :func:`inference_model`)."""

    def __init__(self, net: nn.Module, channels_last: bool, folded: bool) -> None:
        super().__init__()
        self.net, self.channels_last, self.folded = net, channels_last, folded

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)


def inference_model(model: nn.Module, device: torch.device | None = None) -> InferenceModel:
    """An eval-mode copy of ``model`` on ``device`` for scoring: every submodule with an
    ``inference_form()`` replaced by it (DeepCorrect's corrected layers: the same function
    without gathering channels), batch norm folded into the convolution before it
    (``torch.fx`` fusion) where the network can be traced, and channels_last memory (on the
    CPU and on CUDA), in float32. ``model`` is left untouched.

    On this project's 2-core CPU the default network scores about 2.5x faster this way
    (``benchmarks/evaluation.py``). Folding changes the float rounding of the logits, so a
    top-1 decision between two near-equal scores can flip; the benchmark counts such flips.
    """
    if isinstance(model, InferenceModel):
        return model
    import copy

    from torch.fx.experimental.optimization import fuse

    was_training = model.training
    model.eval()
    net = copy.deepcopy(model)
    model.train(was_training)
    for name, module in list(net.named_modules()):
        if hasattr(module, "inference_form"):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, module.inference_form())
    try:
        net, folded = fuse(net, inplace=True), True
    except Exception:  # noqa: BLE001 -- a network fx cannot trace (data-dependent control flow) is scored unfused
        folded = False
    device = device or next(model.parameters()).device
    net = net.to(device, memory_format=torch.channels_last).eval()
    return InferenceModel(net, channels_last=True, folded=folded).eval()


@torch.inference_mode()
def evaluate(model: nn.Module, folder: str | Path, *, batch_size: int = 256, workers: int = 0, device: torch.device | None = None,
             desc: str | None = None, amp: bool = False, per_image: bool = False, distributed: bool = False) -> dict[str, Any]:
    """Top-1 / top-5 accuracy of ``model`` on a shard folder, scored through
    :func:`inference_model` (pass one in to prepare it once for many folders). Float32
    unless ``amp`` (bf16 autocast on CUDA), so GPU and CPU numbers compare. ``per_image``
    adds ``correct``: each sample's top-1 correctness (bool, by index in the folder), what
    paired bootstrap intervals resample. ``distributed`` (under torchrun): each rank scores
    its share of the shards and the counts (and ``correct``) are summed over the ranks, so
    every rank returns what one process scoring the whole folder returns; otherwise the
    process scores every shard (also rank 0 validating during training)."""
    device = device or next(model.parameters()).device
    world = torch.distributed.get_world_size() if distributed and torch.distributed.is_initialized() else 1
    net = inference_model(model, device)
    loader = make_loader(folder, batch_size, workers=workers, by_rank=world > 1, with_index=True)
    total_samples = int(loader.dataset.info["num_samples"])
    correct = np.zeros(total_samples, dtype=bool)
    correct1 = correct5 = total = 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()
    for images, labels, index in tqdm(loader, desc=desc or f"eval {Path(folder).name}", leave=False, disable=True if desc is False else None):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast:
            logits = net(images)
        hits = topk_hits(logits.float(), labels, (1, 5))
        c1, c5 = (int(v) for v in hits.sum(dim=0))
        correct1, correct5, total = correct1 + c1, correct5 + c5, total + len(labels)
        correct[index.numpy()] = hits[:, 0].cpu().numpy()
    if world > 1:
        correct1, correct5, total = (int(v) for v in _all_reduce([correct1, correct5, total], device))
        summed = torch.from_numpy(correct.astype(np.int64)).to(device)
        torch.distributed.all_reduce(summed)
        correct = summed.cpu().numpy() > 0
    result: dict[str, Any] = {"top1": correct1 / total, "top5": correct5 / total, "n": total}
    if per_image:
        result["correct"] = correct
    return result


# -- training ----------------------------------------------------------------------------------
def _lbfgs_step(optimizer: torch.optim.Optimizer, loss_fn: LossFn, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                autocast: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``lbfgs_iterations`` L-BFGS iterations on one batch (the optimiser re-evaluates the loss
    through a closure); returns the loss and logits at the batch's starting point."""
    first: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss, logits = loss_fn(model, images, labels)
        loss.backward()
        if not first:
            first.append((loss.detach(), None if logits is None else logits.detach()))
        return loss

    optimizer.step(closure)
    return first[0]


def _validation_record(model: nn.Module, validate: Validate | None, val_dir: str | Path | None, p: TrainParams,
                       device: torch.device) -> dict[str, float]:
    """The ``val_*`` entries of an epoch record: the method's own validation, else top-1 on
    ``val_dir``, else none."""
    if validate is not None:
        return {f"val_{name}": float(value) for name, value in validate(model).items()}
    if val_dir is not None:
        return {"val_top1": evaluate(model, val_dir, batch_size=p.batch_size, device=device, desc=False)["top1"]}
    return {}


def _log_live(live: Any, record: dict[str, Any], next_step: bool = True) -> None:
    """Log an epoch record's ``train_*`` / ``val_*`` values to DVCLive (``train/loss``, ...)
    as one step; the 0-epoch record (the start weights) is step 0 and ends no step."""
    if live is None:
        return
    for name, value in record.items():
        if name.startswith(("train_", "val_")):
            live.log_metric(name.replace("_", "/", 1), value)
    if next_step:
        live.next_step()


def train(
    model: nn.Module,
    train_dir: str | Path | BatchSource,
    out_dir: str | Path,
    p: TrainParams,
    *,
    val_dir: str | Path | None = None,
    loss_fn: LossFn | None = None,
    parameters: Iterable[nn.Parameter] | None = None,
    log_dir: str | Path | None = None,
    run_id: Any = None,
    stop_after: int | None = None,
    hooks: TrainHooks | None = None,
    validate: Validate | None = None,
    keep_best: str | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place; writes ``out_dir/model.pt`` (state dict) and a per-epoch
    checkpoint; returns the history ``{"epochs": [...], "resumed_from": int, "best_epoch": int, "kept": record}``
    (``kept``: the record of the epoch whose weights were saved; epoch 0 when ``p.epochs`` is 0;
    None on the other ranks of a 0-epoch DDP run, which validate nothing).

    ``train_dir``: a shard folder or a :class:`BatchSource`. ``validate``: the method's own
    validation (default: top-1 on ``val_dir``). ``keep_best``: a history key (``val_loss``)
    whose lowest epoch's weights are kept (default: the last epoch's). ``run_id`` (anything
    JSON-able, e.g. the model name and options) joins ``p`` in the checkpoint fingerprint.
    ``stop_after`` stops after that many batches of this call (for tests of resuming after an
    interruption).
    """
    out_dir = Path(out_dir)
    device = pick_device(p.device)
    rank, world = init_distributed(device)
    main = rank == 0
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(p.seed + 7919 * rank)  # each rank its own noise / distortion draws (the model is synced by DDP)
    model.to(device)
    cuda = device.type == "cuda"
    if cuda and p.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(parameters if parameters is not None else model.parameters(), p)
    schedule = build_schedule(optimizer, p) if p.epochs else None
    loss_fn = loss_fn or cross_entropy_loss(p.label_smoothing)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and p.amp)
    generator = torch.Generator().manual_seed(p.seed + 7919 * rank)
    history: list[dict[str, float]] = []
    start_epoch = 0
    best: dict[str, Any] | None = None  # {"epoch", "value", "model"} of the best epoch so far (keep_best)
    key = fingerprint(p.__dict__, run_id, world, keep_best)

    checkpoint_path = out_dir / CHECKPOINT
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == key and not state.get("complete"):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            scaler.load_state_dict(state["scaler"])
            own = state["ranks"][rank] if "ranks" in state else {"generator": state["generator"], "rng": state["rng"]}
            generator.set_state(own["generator"])
            _set_rng_state(own["rng"])
            history, start_epoch, best = state["history"], state["epoch"], state.get("best")
            if hooks is not None:
                hooks.load_state_dict(state["hooks"])

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)

    live = None
    if main and log_dir is not None:
        from dvclive import Live

        live = Live(dir=str(log_dir), resume=start_epoch > 0, save_dvc_exp=False, dvcyaml=None, report=None)
        live.step = start_epoch  # one point per finished epoch, also after a resume

    loader = make_loader(train_dir, p.batch_size, train=True, seed=p.seed, workers=p.workers) if isinstance(train_dir, (str, Path)) else train_dir
    set_epoch = loader.dataset.set_epoch if hasattr(loader, "dataset") else loader.set_epoch
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and p.amp else nullcontext()
    batches_done = 0
    for epoch in range(start_epoch, p.epochs):
        set_epoch(epoch)
        if hooks is not None:
            hooks.start_epoch(epoch)
        ddp_model.train()
        sums = [0.0, 0.0, 0.0]  # loss * n, correct, n
        top1_counted = False  # the step returned logits (a classifier)
        join = nn.parallel.distributed.Join([ddp_model]) if world > 1 else nullcontext()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{p.epochs}", leave=False, disable=None if main else True)  # None: off when not a terminal
        with join:
            for images, labels in bar:
                if stop_after is not None and batches_done >= stop_after:
                    raise KeyboardInterrupt(f"stopped after {stop_after} batches (test hook)")
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                images = augment(images, p.augment, generator, p.rotate_degrees)
                if cuda and p.channels_last and images.dim() == 4:
                    images = images.contiguous(memory_format=torch.channels_last)
                if p.optimizer == "lbfgs":
                    loss, logits = _lbfgs_step(optimizer, loss_fn, ddp_model, images, labels, autocast)
                else:
                    with autocast:
                        loss, logits = loss_fn(ddp_model, images, labels)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                batches_done += 1
                n = len(labels)
                sums[0] += float(loss.detach()) * n
                if logits is not None:
                    sums[1] += topk_correct(logits.detach().float(), labels, (1,))[0]
                    top1_counted = True
                sums[2] += n
                bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}")
        schedule.step()
        loss_sum, correct, seen = _all_reduce(sums, device)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "samples_seen": int(seen), "lr": optimizer.param_groups[0]["lr"]}
        if top1_counted:
            record["train_top1"] = correct / seen
        if main:
            record.update(_validation_record(model, validate, val_dir, p, device))
            if validate is not None:
                model.train()  # the method's validation left it in eval mode
        history.append(record)
        if main and keep_best is not None:
            if keep_best not in record:
                raise ValueError(f"keep_best={keep_best!r} is not in the epoch record ({', '.join(record)})")
            if best is None or record[keep_best] < best["value"]:
                best = {"epoch": epoch + 1, "value": record[keep_best], "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        ranks = _every_rank({"generator": generator.get_state(), "rng": _rng_state()}, world)  # resumed per rank
        if main:
            _log_live(live, record)
            state = {"fingerprint": key, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "scaler": scaler.state_dict(), "ranks": ranks,
                     "history": history, "hooks": hooks.state_dict() if hooks is not None else None, "best": best}
            _save_atomic(state, checkpoint_path)
            tqdm.write(f"epoch {epoch + 1}/{p.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in record.items() if isinstance(v, float)))
    if main and p.epochs == 0:  # "0 epochs": the start weights are the model (a pretrained network); their validation is step 0
        record = {"epoch": 0, **_validation_record(model, validate, val_dir, p, device)}
        history.append(record)
        _log_live(live, record, next_step=False)
        _save_atomic({"fingerprint": key, "epoch": 0, "history": history, "complete": True}, checkpoint_path)  # the stage's output, never resumed
    if main:
        if best is not None:
            model.load_state_dict(best["model"])
        _save_atomic(model.state_dict(), out_dir / MODEL)
        if checkpoint_path.is_file():  # a finished run is not resumed: DVC reruns it only when something changed
            _save_atomic({**torch.load(checkpoint_path, map_location="cpu", weights_only=False), "complete": True}, checkpoint_path)
        if live is not None:
            live.end()
    kept = best["epoch"] if best is not None else history[-1]["epoch"] if history else 0  # other DDP ranks of a 0-epoch run have no record
    record = next((r for r in history if r["epoch"] == kept), None)
    return {"epochs": history, "resumed_from": start_epoch, "best_epoch": kept, "kept": record}
