"""Stage ``iqa-autoencoder``: the sparse autoencoder of UNIQUE / the gradient index, trained on
8 x 8 YGCr patches of natural images, with the training patches' mean and ZCA stored in the
weights file.

Patches (``iqa.autoencoder``): ``patches`` random 8 x 8 patches (seeded), drawn evenly from
the colour photographs the builtin dataset is cut from (the photos whose channels differ;
the grey ones are left out), or from every image under ``patches_root`` (any folder, searched
recursively). The original drew 100,000 patches from ~1,000 natural images and ran 200 L-BFGS
iterations; the CPU default draws 10,000 and runs 10 x 20 (about 35 s here). Training is the
one engine's, with ``optimizer: lbfgs`` (one full batch per epoch, ``lbfgs_iterations`` per
epoch), L-BFGS as the original's ``fminlbfgs`` (whose memory and evaluation limits differ);
``optimizer: adam`` with a batch size works too.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from robust.data.shards import atomic_dir, write_json
from robust.engine import CHECKPOINT, MODEL, TrainParams, train
from robust.errors import DataError
from robust.gradient_features.iqa.autoencoder import PATCH, SparseAutoencoder, sparse_autoencoder_loss
from robust.gradient_features.iqa.indices import ygcr, zca_matrix
from robust.params import Section, is_int, require

#: the CPU default's training settings (full batch: batch_size is at least ``patches``)
DEFAULT_TRAIN = {"optimizer": "lbfgs", "lr": 1.0, "lbfgs_iterations": 20, "epochs": 10, "batch_size": 1_000_000,
                 "weight_decay": 0.0, "schedule": "constant", "augment": "none", "workers": 0, "amp": False}


@dataclass(frozen=True)
class AutoencoderParams(Section):
    """``iqa.autoencoder``: the training patches and the sparse autoencoder's loss."""

    patches_root: str | None = None   # a folder of natural images (null: the builtin dataset's colour photographs)
    patches: int = 10_000             # random 8 x 8 patches (the original: 100,000)
    hidden: int = 400
    sparsity: float = 0.035           # target mean activation rho
    beta: float = 5.0                 # weight of the KL sparsity penalty
    decay: float = 3e-3               # weight decay (in the loss)
    epsilon: float = 0.1              # ZCA regulariser of the training patches
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)   # overrides of DEFAULT_TRAIN (the engine's train: keys)

    section: ClassVar[str] = "iqa.autoencoder"

    def validate(self, section: str = "iqa.autoencoder") -> None:
        require(self.patches_root is None or isinstance(self.patches_root, str), f"{section}.patches_root", self.patches_root,
                "null or the path of a folder of images")
        for name in ("patches", "hidden"):
            require(is_int(getattr(self, name)) and getattr(self, name) >= 1, f"{section}.{name}", getattr(self, name), "an integer >= 1")
        require(is_int(self.seed) and self.seed >= 0, f"{section}.seed", self.seed, "an integer >= 0")
        require(isinstance(self.sparsity, (int, float)) and 0 < self.sparsity < 1, f"{section}.sparsity", self.sparsity, "a number in (0, 1)")
        for name in ("beta", "decay"):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0, f"{section}.{name}", value, "a number >= 0")
        require(isinstance(self.epsilon, (int, float)) and self.epsilon > 0, f"{section}.epsilon", self.epsilon, "a number > 0")
        require(isinstance(self.train, dict), f"{section}.train", self.train, "a mapping of train: keys")
        self.train_params()

    def train_params(self) -> TrainParams:
        return TrainParams.from_dict({**DEFAULT_TRAIN, **self.train}, f"{self.section}.train")


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def colour_photographs() -> list[np.ndarray]:
    """The builtin dataset's colour photographs at their own size (uint8 RGB; the grey ones left
    out): the autoencoder's default patches and the pipeline IQA set's references."""
    from robust.data.sources.builtin import PHOTOS, _photo_bytes

    photos = []
    for package, filename in PHOTOS.values():
        with Image.open(io.BytesIO(_photo_bytes(package, filename))) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return [p for p in photos if not (np.array_equal(p[..., 0], p[..., 1]) and np.array_equal(p[..., 1], p[..., 2]))]


def image_files(root: Path) -> list[Path]:
    """The image files under ``root`` (any depth, sorted): what a ``patches_root`` offers."""
    from robust.data.sources.base import IMAGE_SUFFIXES

    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def natural_images(patches_root: str | None) -> list[np.ndarray]:
    """The images patches are drawn from, as float RGB arrays in [0, 1] (see the module doc)."""
    if patches_root is None:
        return [photo.astype(np.float32) / 255.0 for photo in colour_photographs()]
    from robust.data.sources.base import IMAGE_SUFFIXES, open_image_file

    root = Path(patches_root)
    if not root.is_dir():
        raise DataError(f"iqa.autoencoder.patches_root {root} does not exist or is not a folder.",
                        "give a folder of natural images, or null for the builtin dataset's photographs.")
    images = [_rgb(open_image_file(path)) for path in tqdm(image_files(root), desc="patch images", disable=None)]
    images = [i for i in images if min(i.shape[:2]) >= PATCH]
    if not images:
        raise DataError(f"No image of at least {PATCH} x {PATCH} px under {root}.",
                        f"put natural images ({', '.join(IMAGE_SUFFIXES)}) in it, or set iqa.autoencoder.patches_root: null.")
    return images


def sample_patches(images: list[np.ndarray], count: int, seed: int) -> torch.Tensor:
    """``count`` random 8 x 8 YGCr patches as 192-vectors ``[count, 192]`` (Y block first), the
    images taken in turn, positions uniform (seeded: the same patches on every run)."""
    rng = np.random.default_rng(seed)
    cut = np.empty((count, PATCH, PATCH, 3), dtype=np.float32)
    for k in range(count):
        image = images[k % len(images)]
        top, left = rng.integers(0, image.shape[0] - PATCH + 1), rng.integers(0, image.shape[1] - PATCH + 1)
        cut[k] = image[top : top + PATCH, left : left + PATCH]
    return ygcr(torch.from_numpy(cut).permute(0, 3, 1, 2)).reshape(count, -1)


class PatchBatches:
    """The engine's batch source: whitened patches in batches (one full batch by default),
    reshuffled per epoch when there is more than one; labels are unused zeros."""

    def __init__(self, patches: torch.Tensor, batch_size: int, seed: int) -> None:
        self.patches, self.batch_size, self.seed, self.epoch = patches, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Any:
        n = len(self.patches)
        order = torch.arange(n) if self.batch_size >= n else torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        for start in range(0, n, self.batch_size):
            batch = self.patches[order[start : start + self.batch_size]]
            yield batch, torch.zeros(len(batch), dtype=torch.long)

    def __len__(self) -> int:
        return -(-len(self.patches) // self.batch_size)


def train_autoencoder(params: dict[str, Any], out: str | Path, log_dir: str | Path | None = None) -> dict[str, Any]:
    """The stage: sample, whiten, train; ``out/model.pt`` (weights + ``mean_patch`` + ``zca``)
    and ``out/info.json``. ``out`` appears only when complete."""
    p = AutoencoderParams.from_dict(((params.get("iqa") or {}).get("autoencoder")))
    tp = p.train_params()
    start = time.perf_counter()
    columns = sample_patches(natural_images(p.patches_root), p.patches, p.seed)
    mean_patch = columns.mean(dim=0)
    zca = zca_matrix((columns - mean_patch).T, p.epsilon)
    whitened = (columns - mean_patch) @ zca.T
    torch.manual_seed(tp.seed)
    model = SparseAutoencoder(hidden=p.hidden)
    model.set_whitening(mean_patch, zca)

    def loss_fn(net: torch.nn.Module, x: torch.Tensor, _: torch.Tensor) -> tuple[torch.Tensor, None]:
        return sparse_autoencoder_loss(net, x, sparsity=p.sparsity, beta=p.beta, decay=p.decay), None  # type: ignore[arg-type]

    out = Path(out)
    with atomic_dir(out) as tmp:
        history = train(model, PatchBatches(whitened, tp.batch_size, tp.seed), tmp, tp, loss_fn=loss_fn, log_dir=log_dir,
                        run_id={"iqa.autoencoder": p.as_dict()})
        (tmp / CHECKPOINT).unlink(missing_ok=True)  # not resumed (tens of seconds); keeps the L-BFGS history out of the cache
        with torch.no_grad():
            final = float(sparse_autoencoder_loss(model.cpu(), whitened, sparsity=p.sparsity, beta=p.beta, decay=p.decay))
        info = {"params": p.as_dict(), "train": tp.as_dict(), "patches": p.patches, "final_loss": final,
                "loss_per_epoch": [round(e["train_loss"], 6) for e in history["epochs"] if "train_loss" in e],  # none at 0 epochs
                "weights": MODEL}  # no timing: the same params give the same folder, so the iqa stage does not rerun
        write_json(tmp / "info.json", info)
    print(f"iqa-autoencoder: {time.perf_counter() - start:.1f} s, final loss {final:.4f}")
    return info


def load_autoencoder(folder: str | Path) -> SparseAutoencoder:
    """The trained autoencoder of ``folder`` (``model.pt``), in eval mode on the CPU."""
    path = Path(folder) / MODEL
    if not path.is_file():
        raise DataError(f"The IQA sparse autoencoder {path} was not found.", "train it first: dvc repro iqa-autoencoder.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = SparseAutoencoder(hidden=state["encoder.weight"].shape[0])
    model.load_state_dict(state)
    return model.eval()
