"""Reading shard folders back as PyTorch loaders of ``(image in [0, 1], label)``.

Shards are split by rank (DDP) and then by DataLoader worker, webdataset-style, so each
sample is read exactly once per epoch across all ranks and workers. Training order is a
seeded shuffle of the shard order (per epoch) plus a seeded shuffle buffer; evaluation
order is the shard order. The length per rank is known from ``info.json`` without reading
the tars.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from robust.data.shards import IMAGE_FORMATS, decode_image, read_info
from robust.errors import DataError


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(IterableDataset):
    """An iterable dataset over one shard folder (``shard-*.tar`` + ``info.json``)."""

    def __init__(self, folder: str | Path, *, shuffle: bool = False, seed: int = 0, buffer_size: int = 2000, with_keys: bool = False) -> None:
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        self.shuffle, self.seed, self.buffer_size, self.with_keys = shuffle, seed, buffer_size, with_keys
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
        rank, world = _rank_world()
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
        samples = wds.tariterators.tarfile_samples({"url": str(self.folder / s["name"])} for s in shards)
        if self.shuffle:
            samples = _buffer_shuffle(samples, self.buffer_size, random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker_id}"))
        for sample in samples:
            yield self._decode(sample)

    def _decode(self, sample: dict[str, Any]) -> tuple[Any, ...]:
        fmt = next((f for f in IMAGE_FORMATS if f in sample), None)
        if fmt is None or "cls" not in sample:
            raise DataError(f"Sample {sample.get('__key__')} in {self.folder} has no image or label.", "rebuild the shards (dvc repro).")
        image = torch.from_numpy(decode_image(sample[fmt])).permute(2, 0, 1).float().div_(255.0)
        label = int(sample["cls"])
        return (image, label, sample["__key__"]) if self.with_keys else (image, label)


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


def make_loader(
    folder: str | Path,
    batch_size: int,
    *,
    train: bool = False,
    seed: int = 0,
    workers: int = 0,
    buffer_size: int = 2000,
    with_keys: bool = False,
) -> DataLoader:
    """A DataLoader over a shard folder: seeded shuffle when ``train``, fixed order otherwise.

    Call ``loader.dataset.set_epoch(e)`` each epoch for a new (reproducible) order.
    """
    dataset = ShardDataset(folder, shuffle=train, seed=seed, buffer_size=buffer_size, with_keys=with_keys)
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=False, pin_memory=torch.cuda.is_available())
