"""Reading shard folders back as PyTorch loaders of ``(image in [0, 1], label)``.

Shards are split by rank (DDP) and then by DataLoader worker, webdataset-style, so each
sample is read exactly once per epoch across all ranks and workers. Training order is a
seeded shuffle of the shard order (per epoch) plus a seeded shuffle buffer; evaluation
order is the shard order. The length per rank is known from ``info.json`` without reading
the tars.

When a folder has a decoded copy (``images.npy`` / ``labels.npy``, see
:mod:`robust.data.shards`), :func:`make_loader` returns a :class:`DecodedLoader`: whole
batches sliced from the memory-mapped arrays in the main process, in exactly the order and
batches that one DataLoader worker reading the tars gives (the same shard shuffle and the
same shuffle buffer, applied to sample indices), so training and evaluation results do not
depend on which path ran. It skips decoding and per-sample collation, which cost as much as
the forward pass of the pipeline's small networks.

``with_index`` adds each sample's index in the folder (shard order), whatever split of
shards across ranks and workers read it: what per-image results are stored by, so they pair
across test sets and across runs with another number of processes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from robust.data.shards import decode_image, image_field, read_info, read_tar
from robust.errors import DataError


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(IterableDataset):
    """An iterable dataset over one shard folder (``shard-*.tar`` + ``info.json``)."""

    def __init__(self, folder: str | Path, *, shuffle: bool = False, seed: int = 0, buffer_size: int = 2000, with_keys: bool = False,
                 by_rank: bool = True, with_index: bool = False) -> None:
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        self.shuffle, self.seed, self.buffer_size, self.with_keys = shuffle, seed, buffer_size, with_keys
        self.with_index = with_index
        self.by_rank = by_rank  # False: every rank reads every shard (one process scoring a whole folder)
        self.epoch = 0

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle is used (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def rank_shards(self) -> list[dict[str, Any]]:
        """The shards this rank reads in the current epoch."""
        shards = list(self.info["shards"])
        if self.shuffle:
            random.Random(f"{self.seed}-{self.epoch}").shuffle(shards)
        rank, world = _rank_world() if self.by_rank else (0, 1)
        if world > len(shards):
            raise DataError(
                f"{self.folder} has {len(shards)} shards for {world} ranks: every rank needs at least one shard.",
                "rebuild with a smaller data.shard_size, or use fewer processes.",
            )
        return shards[rank::world]

    def __len__(self) -> int:
        return sum(s["num_samples"] for s in self.rank_shards())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        rank, _ = _rank_world()
        worker = torch.utils.data.get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        shards = self.rank_shards()[worker_id::num_workers]
        offsets = self._offsets()
        samples: Iterator[tuple[int, dict[str, Any]]] = (
            (offsets[s["name"]] + position, sample)
            for s in shards
            for position, sample in enumerate(wds.tariterators.tarfile_samples([{"url": str(self.folder / s["name"])}]))
        )
        if self.shuffle:
            samples = _buffer_shuffle(samples, self.buffer_size, random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker_id}"))
        for index, sample in samples:
            yield self._decode(sample, index)

    def _offsets(self) -> dict[str, int]:
        """Shard name -> index of its first sample in the folder."""
        shards = self.info["shards"]
        return dict(zip((s["name"] for s in shards), itertools.accumulate((s["num_samples"] for s in shards), initial=0)))

    def sample_order(self) -> np.ndarray:
        """Indices (into the folder's shard order) of the samples this rank reads this epoch,
        in the order a single worker reading the tars yields them."""
        offsets = self._offsets()
        indices: Iterator[int] = itertools.chain.from_iterable(range(offsets[s["name"]], offsets[s["name"]] + s["num_samples"]) for s in self.rank_shards())
        if self.shuffle:
            rank, _ = _rank_world()
            indices = _buffer_shuffle(indices, self.buffer_size, random.Random(f"{self.seed}-{self.epoch}-{rank}-0"))
        return np.fromiter(indices, dtype=np.int64)

    def decoded_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The folder's decoded copy (memory-mapped images, labels), or None when it has none."""
        decoded = self.info.get("decoded")
        if not decoded:
            return None
        paths = [self.folder / decoded[k] for k in ("images", "labels")]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{self.folder} lacks {', '.join(missing)}, which its info.json lists.", "rebuild the shards (dvc repro).")
        images, labels = np.load(paths[0], mmap_mode="r"), np.load(paths[1])
        if len(images) != self.info["num_samples"] or len(labels) != len(images):
            raise DataError(f"{self.folder}: the decoded copy has {len(images)} images, info.json {self.info['num_samples']} samples.",
                            "rebuild the shards (dvc repro).")
        return images, labels

    def _decode(self, sample: dict[str, Any], index: int) -> tuple[Any, ...]:
        fmt = image_field(sample, self.folder)
        image = torch.from_numpy(decode_image(sample[fmt])).permute(2, 0, 1).float().div_(255.0)
        item: tuple[Any, ...] = (image, int(sample["cls"]))
        if self.with_keys:
            item += (sample["__key__"],)
        return item + (index,) if self.with_index else item


def _buffer_shuffle(samples: Iterator[dict[str, Any]], size: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    buffer: list[dict[str, Any]] = []
    for sample in samples:
        buffer.append(sample)
        if len(buffer) >= size:
            index = rng.randrange(len(buffer))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


class DecodedLoader:
    """Batches ``(images float32 [B, 3, H, W] in [0, 1], labels int64 [B])`` sliced from a
    folder's decoded arrays, in :meth:`ShardDataset.sample_order` (see the module doc).

    It has what the engine uses of a DataLoader: iteration, ``len`` (batches) and
    ``dataset`` (the :class:`ShardDataset`: ``set_epoch``, ``len`` = samples).
    """

    def __init__(self, dataset: ShardDataset, batch_size: int, arrays: tuple[np.ndarray, np.ndarray]) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.images, self.labels = arrays
        self.pin = torch.cuda.is_available()

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # a DataLoader draws its workers' base seed from the global RNG on every iteration; so do we,
        # so that what else draws from it (dropout, the methods' per-batch randomness) sees the same stream
        torch.empty((), dtype=torch.int64).random_()
        order = self.dataset.sample_order()
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            if bool(np.all(np.diff(index) == 1)):
                pixels, labels = self.images[index[0]:index[-1] + 1], self.labels[index[0]:index[-1] + 1]  # a plain slice: no gather
            else:
                pixels, labels = self.images[index], self.labels[index]
            # NCHW-contiguous uint8, then float / 255: the same values and layout as decoding each image
            images = torch.from_numpy(np.array(pixels)).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
            labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
            batch = (images.pin_memory(), labels.pin_memory()) if self.pin else (images, labels)
            yield batch + (torch.from_numpy(np.asarray(index, dtype=np.int64)),) if self.dataset.with_index else batch


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """float [N, 3, H, W] in [0, 1] -> uint8 [N, H, W, 3], rounded as the shards store images
    (what the registry's distortions take): the loader's conversion, reversed."""
    return (images.detach().permute(0, 2, 3, 1).cpu().numpy() * 255.0).round().clip(0, 255).astype(np.uint8)


def from_pixels(pixels: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> [N, 3, H, W] in [0, 1], on ``like``'s device and dtype."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).to(like.device, like.dtype) / 255.0


def make_loader(
    folder: str | Path,
    batch_size: int,
    *,
    train: bool = False,
    seed: int = 0,
    workers: int = 0,
    buffer_size: int = 2000,
    with_keys: bool = False,
    by_rank: bool = True,
    with_index: bool = False,
) -> DataLoader | DecodedLoader:
    """A loader over a shard folder: seeded shuffle when ``train``, fixed order otherwise.

    Folders with a decoded copy are read from it (:class:`DecodedLoader`, in the main
    process; ``workers`` is then unused and the order is that of one worker); otherwise, or
    ``with_keys``, a DataLoader decodes the tars in ``workers`` processes. Call
    ``loader.dataset.set_epoch(e)`` each epoch for a new (reproducible) order. Under torchrun
    each rank reads its share of the shards unless ``by_rank`` is False (all of them);
    ``with_index`` appends each sample's index in the folder to every item / batch.
    """
    dataset = ShardDataset(folder, shuffle=train, seed=seed, buffer_size=buffer_size, with_keys=with_keys, by_rank=by_rank, with_index=with_index)
    arrays = None if with_keys else dataset.decoded_arrays()
    if arrays is not None:
        return DecodedLoader(dataset, batch_size, arrays)
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=False, pin_memory=torch.cuda.is_available())


def read_samples(folder: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every sample of a shard folder in shard order: keys, uint8 images ``(N, H, W, 3)`` and
    labels, the pixels from the decoded copy when there is one (same order), else decoded from
    the tars. For building a whole derived training set in memory (seed 003's corrupted copy)."""
    dataset = ShardDataset(folder, by_rank=False)
    arrays = dataset.decoded_arrays()
    keys: list[str] = []
    images: list[np.ndarray] = []
    labels: list[int] = []
    for shard in dataset.info["shards"]:
        for sample in read_tar(dataset.folder / shard["name"]):
            keys.append(sample["__key__"])
            labels.append(int(sample["cls"]))
            if arrays is None:
                images.append(decode_image(sample[image_field(sample, dataset.folder)]))
    if arrays is not None:
        if [int(v) for v in arrays[1]] != labels:
            raise DataError(f"{folder}: the decoded copy's labels differ from the shards'.", "rebuild the shards (dvc repro).")
        return keys, np.ascontiguousarray(arrays[0]), np.asarray(arrays[1], dtype=np.int64)
    return keys, np.stack(images), np.asarray(labels, dtype=np.int64)
