"""What every method shares: the run description handed to the engine, the settings merge,
the start model, and the clean / distorted batch mix of DeepCorrect and fine-tuning.

A ``models.<name>`` entry names its ``method`` and its ``start`` (the DVC output it starts
from: the clean shards for a baseline, a baseline's ``model.pt``, a DeepCorrect ranking).
Method settings are the ``methods.<method>`` section, overridden by any other key of the
entry (an ablation is one more entry); ``train:`` overrides merge in the order
``train:`` < ``methods.<method>.train`` < ``models.<name>.train``.

Entries live in two sections (:data:`MODEL_SECTIONS`): ``models:`` (leaderboard rows, a
``train@`` and an ``evaluate@`` stage each) and ``study_models:`` (trained for a study's own
stage, ``train-study@`` only: seed 001's VAE, seed 002's processors outside the benchmark).

**Training-seed replicates.** An entry ``<name>-s<k>`` with ``replicate: k`` and otherwise
exactly ``<name>``'s settings is the same run at training seed ``train.seed + k``: the
initial draw of anything trained from scratch, the data order, the augmentation and every
per-batch draw of the method (noise, distortions, ANT's generators). :func:`replicate_groups`
pools an entry with its replicates for the report's two-level intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robust import distortions
from robust.data.loader import from_pixels, to_pixels
from robust.data.shards import read_info
from robust.engine import LossFn, TrainHooks, TrainParams, Validate
from robust.errors import ParamError, RobustError
from robust.models import Classifier, create, load_weights

#: keys of a models entry that are not method settings
ENTRY_KEYS = ("method", "start", "base", "train", "replicate")
#: the params sections that hold model entries: leaderboard rows, then models only a study's own stage reads
MODEL_SECTIONS = ("models", "study_models")
#: keys of a baseline entry that are not options of its architecture
SPEC_KEYS = ("arch", "pretrained", "train", "method", "start")


@dataclass
class Context:
    """Everything a method's ``setup`` reads: the entry, its merged settings, the paths."""

    name: str
    spec: dict[str, Any]
    settings: dict[str, Any]
    params: dict[str, Any]
    clean_dir: Path
    train: TrainParams

    @property
    def start(self) -> Path:
        return Path(self.spec["start"])

    @property
    def image_size(self) -> int:
        return int(read_info(self.clean_dir / "train")["image_size"])


@dataclass
class Run:
    """What a method hands to :func:`robust.engine.train`: the model, what trains, the step."""

    model: Classifier
    parameters: list[nn.Parameter] | list[dict[str, Any]]  # tensors, or torch parameter groups (own learning rates)
    loss_fn: LossFn | None = None
    hooks: TrainHooks | None = None
    validate: Validate | None = None  # the method's own validation (default: top-1 on the val split)
    keep_best: str | None = None  # keep the epoch with the lowest value of this history key (default: the last)
    train_data: Callable[[], Any] | None = None  # builds the training batches (default: the clean training shards); called only to train
    note: str | None = None  # one line for the training log (where the weights came from, what did not fit)


def model_entries(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every entry of :data:`MODEL_SECTIONS`, in order (a name may appear in only one)."""
    entries: dict[str, dict[str, Any]] = {}
    for section in MODEL_SECTIONS:
        for name, spec in (params.get(section) or {}).items():
            if name in entries:
                raise ParamError(f"{section}.{name} is also an entry of {MODEL_SECTIONS[0]}:.", "give every model one name, in one section.")
            entries[name] = spec if isinstance(spec, dict) else {}
    return entries


def replicate_parent(name: str, spec: dict[str, Any], entries: dict[str, dict[str, Any]]) -> str | None:
    """The entry ``name`` replicates (None for an entry without ``replicate``); a replicate whose
    name or settings do not match its entry is a :class:`ParamError` (the report would pool
    runs that are not the same experiment)."""
    k = spec.get("replicate")
    if k is None:
        return None
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1) or not name.endswith(f"-s{k}"):
        raise ParamError(f"models.{name}.replicate is {k!r}.", "name a replicate <entry>-s<k> and give it replicate: k (an integer >= 1).")
    parent = name[: -len(f"-s{k}")]
    if parent not in entries or "replicate" in entries[parent]:
        raise ParamError(f"models.{name} replicates {parent!r}, which is not an entry without replicate.", "add the entry it repeats, or rename the replicate.")
    differing = sorted(key for key in {*spec, *entries[parent]} - {"replicate"} if spec.get(key) != entries[parent].get(key))
    if differing:
        raise ParamError(f"models.{name} differs from models.{parent} in {', '.join(differing)}: a replicate is the same run at another training seed.",
                         f"give {name} exactly {parent}'s settings plus replicate: {k} (with dvc exp run -S, set the key on both).")
    return parent


def replicate_groups(models: dict[str, Any]) -> dict[str, list[str]]:
    """Entry -> its runs in seed order (itself first, then its replicates ``-s1``, ``-s2``...); an
    entry without replicates maps to itself alone. Replicates are not keys."""
    groups: dict[str, list[str]] = {name: [name] for name, spec in models.items() if "replicate" not in (spec or {})}
    replicas = sorted(((replicate_parent(name, spec, models), spec["replicate"], name) for name, spec in models.items() if "replicate" in (spec or {})),
                      key=lambda item: item[1])
    for parent, _, name in replicas:
        groups[parent].append(name)
    return groups


def trainable(parameters: list[nn.Parameter] | list[dict[str, Any]]) -> int:
    """The number of trainable values (for the reports' parameter counts)."""
    tensors = [q for group in parameters for q in group["params"]] if parameters and isinstance(parameters[0], dict) else parameters
    return sum(p.numel() for p in tensors if p.requires_grad)


def base_spec(ctx: Context) -> tuple[str, dict[str, Any]]:
    """The ``models.<base>`` entry a method starts from."""
    base = ctx.spec.get("base")
    models = model_entries(ctx.params)
    if not isinstance(base, str) or base not in models:
        raise ParamError(f"models.{ctx.name}.base is {base!r}.", f"name the baseline it starts from, one of: {', '.join(models)}.")
    return base, dict(models[base])


def build(spec: dict[str, Any], clean_dir: str | Path) -> Classifier:
    """The network a baseline entry describes, sized for the clean shards' classes and images."""
    if "arch" not in spec:
        raise ParamError(f"The model entry {spec} has no 'arch'.", "give arch: <registry name> (robust models lists them).")
    info = read_info(Path(clean_dir) / "train")
    options = {k: v for k, v in spec.items() if k not in SPEC_KEYS and v is not None}  # null drops an option (-S models.x.width=null)
    return create(spec["arch"], info["num_classes"], image_size=info["image_size"], pretrained=spec.get("pretrained"), **options)


def load_state(model: nn.Module, weights: str | Path) -> nn.Module:
    """Load trained weights into ``model``; every tensor of the network must fit. A
    :class:`~robust.models.Classifier` takes a bare network's weights too; any other module
    (RA's processor + recogniser) takes exactly its own state dict."""
    weights = Path(weights)
    if not weights.is_file():
        raise RobustError(f"Model weights {weights} not found.", "train the model first (dvc repro) or pass the right path.")
    if not isinstance(model, Classifier):
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except (RuntimeError, KeyError) as exc:
            raise RobustError(f"{weights} does not fit the model: {str(exc).splitlines()[0]}", "check the architecture and its options.") from exc
        return model
    skipped = load_weights(model, weights)
    if skipped:
        raise RobustError(f"{weights} does not fit the model: {len(skipped)} tensors missing, e.g. {skipped[0]}.", "check the architecture and its options.")
    return model


def load_trained(spec: dict[str, Any], clean_dir: str | Path, weights: str | Path) -> Classifier:
    """A baseline entry's network with its trained weights."""
    return load_state(build({k: v for k, v in spec.items() if k != "pretrained"}, clean_dir), weights)


def load_base(ctx: Context, weights: Path | None = None) -> Classifier:
    """The base network with trained weights (default: the entry's ``start`` file)."""
    _, spec = base_spec(ctx)
    return load_trained(spec, ctx.clean_dir, weights or ctx.start)


def configured_distortion(ctx: Context, name: str) -> distortions.Distortion:
    """The distortion ``name`` with the level table evaluation uses (``distortions.<name>``, or
    for an ImageNet-C corruption the ``corrupt.constants`` table)."""
    constants = (ctx.params.get("corrupt") or {}).get("constants", "auto")
    return distortions.configured(name, (ctx.params.get("distortions") or {}).get(name), ctx.image_size, constants)


def distort_batch(images: torch.Tensor, distortion: distortions.Distortion, fraction: float, rng: np.random.Generator) -> torch.Tensor:
    """A copy of ``images`` (in [0, 1]) where ``round(fraction * n)`` random images carry
    ``distortion`` at a uniformly drawn level (seed 000's training mix); the rest stay clean.

    The registry function runs on the uint8 image, exactly as the corrupt stages store it,
    so training sees the distortion that evaluation measures.
    """
    n = images.shape[0]
    count = int(round(fraction * n))
    out = images.clone()
    if count == 0:
        return out
    chosen = torch.as_tensor(rng.choice(n, size=count, replace=False))
    distorted = [distortion(img, int(rng.integers(1, distortion.levels + 1)), rng) for img in to_pixels(images[chosen])]
    out[chosen] = from_pixels(np.stack(distorted), images)
    return out


def batch_rng() -> np.random.Generator:
    """A numpy generator drawn from torch's global RNG, which the engine seeds and checkpoints,
    so a method's per-batch randomness is reproducible and resumes exactly."""
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))


def mix_loss(distortion: distortions.Distortion, fraction: float, penalty: Any = None) -> LossFn:
    """Cross-entropy on a batch where ``fraction`` of the images carry ``distortion`` at a
    random level; ``penalty()`` (if given) is added to the loss."""
    import torch.nn.functional as F

    def loss_fn(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(distort_batch(images, distortion, fraction, batch_rng()))
        loss = F.cross_entropy(logits, labels)
        return (loss + penalty() if penalty is not None else loss), logits

    return loss_fn
