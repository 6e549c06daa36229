"""Webdataset shards: deterministic, atomic, parallel writing and ``info.json``.

A shard folder holds ``shard-00000.tar``, ``shard-00001.tar``, ... and ``info.json``.
Each sample is ``<key>.png`` (or ``.jpg``), ``<key>.cls`` (the label as ASCII digits) and
``<key>.json`` (provenance). Tars are USTAR with a fixed mtime, owner and mode, and members
in sorted order, so the same samples always give the same bytes; ``info.json`` records a
sha256 per shard so a rebuild can be checked.

Writing is split into shard jobs that run in ``workers`` processes; each job is a pure
function of its inputs, so the output does not depend on the number of workers.

Small splits also get a decoded copy: ``images.npy`` (uint8, N x H x W x 3, in shard order,
decoded from the stored PNG / JPEG bytes, so identical to what reading the tars gives) and
``labels.npy`` (int64), listed under ``decoded`` in ``info.json``. The loader reads them
instead of decoding every image again: each of the pipeline's evaluations reads 122 test
sets, and decoding them cost as much as the forward pass. A split whose pixels exceed
:data:`DECODED_MAX_BYTES` (e.g. ImageNet at 224 px) keeps the tars only.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tarfile

import numpy as np
from PIL import Image
from tqdm import tqdm

from robust.errors import DataError

INFO = "info.json"
SHARD_PATTERN = "shard-{:05d}.tar"
IMAGE_FORMATS = ("png", "jpg")
DECODED_IMAGES, DECODED_LABELS = "images.npy", "labels.npy"
DECODED_MAX_BYTES = 1 << 30  # 1 GiB of uint8 pixels: CIFAR's 50k train images are 150 MB, Tiny ImageNet's 100k 1.2 GB
Job = TypeVar("Job")


@dataclass(frozen=True)
class Skipped:
    """A sample left out (``data.on_bad_image: skip``), with the reason."""

    key: str
    reason: str


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 85) -> bytes:
    """uint8 HxWx3 -> PNG (lossless, no metadata) or JPEG bytes (4:2:0, as PIL's default)."""
    buffer = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB")
    if fmt == "png":
        pil.save(buffer, format="PNG", compress_level=6)
    elif fmt == "jpg":
        pil.save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buffer.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 HxWx3."""
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy needs one)


def image_field(sample: dict[str, Any], where: str | Path) -> str:
    """The image extension of a shard sample (``png`` or ``jpg``); a sample without an image
    or a label is a broken shard."""
    fmt = next((f for f in IMAGE_FORMATS if f in sample), None)
    if fmt is None or "cls" not in sample:
        raise DataError(f"Sample {sample.get('__key__')} in {where} has no image or label.", "rebuild the shards (dvc repro).")
    return fmt


def make_sample(key: str, image: np.ndarray, label: int, meta: dict[str, Any], fmt: str, quality: int) -> dict[str, Any]:
    """One webdataset sample with every field already encoded to bytes."""
    return {
        "__key__": key,
        fmt: encode_image(image, fmt, quality),
        "cls": str(int(label)).encode(),
        "json": json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(),
    }


def software_versions(*extra: str) -> dict[str, str]:
    """Versions of the packages whose output bytes end up in shards (``missing`` if absent)."""
    import importlib.metadata

    versions = {}
    for name in ("robust", "numpy", "pillow", *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_tar(path: Path, samples: Iterable[dict[str, Any] | Skipped]) -> tuple[int, list[Skipped]]:
    """Write samples to one deterministic webdataset tar; returns (written, skipped).

    Members are ``<key>.<ext>`` in sorted extension order, USTAR, mtime 0, mode 0444,
    owner ``robust`` (webdataset's own ``TarWriter`` layout with a fixed mtime). Written
    with ``tarfile`` so the stages that write shards need not import webdataset and torch.
    """
    written, skipped = 0, []
    with open(path, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for sample in samples:
            if isinstance(sample, Skipped):
                skipped.append(sample)
                continue
            key = sample["__key__"]
            for ext in sorted(k for k in sample if not k.startswith("_")):
                data = sample[ext]
                member = tarfile.TarInfo(f"{key}.{ext}")
                member.size, member.mtime, member.mode = len(data), 0, 0o444
                member.uname = member.gname = "robust"
                tar.addfile(member, io.BytesIO(data))
            written += 1
    return written, skipped


def read_tar(path: str | Path) -> Iterator[dict[str, Any]]:
    """Samples of one shard in stored order: ``{"__key__": key, ext: bytes, ...}``."""
    sample: dict[str, Any] = {}
    with tarfile.open(path, mode="r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            if sample and sample["__key__"] != key:
                yield sample
                sample = {}
            sample.setdefault("__key__", key)
            sample[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    if sample:
        yield sample


# -- parallel shard writing ------------------------------------------------------------
_BUILD: Callable[[Any], Iterable[dict[str, Any] | Skipped]] | None = None


def _init_worker(build: Callable[[Any], Iterable[dict[str, Any] | Skipped]]) -> None:
    global _BUILD
    _BUILD = build


def _write_job(args: tuple[int, Any, str]) -> tuple[int, int, list[Skipped]]:
    index, job, folder = args
    assert _BUILD is not None
    written, skipped = write_tar(Path(folder) / SHARD_PATTERN.format(index), _BUILD(job))
    return index, written, skipped


def write_shards(
    folder: Path,
    jobs: Sequence[Job],
    build: Callable[[Job], Iterable[dict[str, Any] | Skipped]],
    *,
    workers: int = 1,
    total: int | None = None,
    desc: str = "shards",
    job_size: Callable[[Job], int] = len,  # type: ignore[assignment]
) -> dict[str, Any]:
    """Write ``shard-<i>.tar`` for each job into ``folder`` (which must exist).

    ``build(job)`` yields the samples of one shard (or :class:`Skipped` markers). With
    ``workers > 1`` the jobs run in a process pool; ``build`` travels to each worker once.
    Returns the shard part of ``info.json``: per-shard counts and sha256, totals, skips.
    """
    tasks = [(i, job, str(folder)) for i, job in enumerate(jobs)]
    results: dict[int, tuple[int, list[Skipped]]] = {}
    bar = tqdm(total=total if total is not None else sum(job_size(j) for j in jobs), desc=desc, unit="img", dynamic_ncols=True, disable=None)
    with bar:
        if workers > 1 and len(tasks) > 1:
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(build,)) as pool:
                for index, written, skipped in pool.imap_unordered(_write_job, tasks):
                    results[index] = (written, skipped)
                    bar.update(written + len(skipped))
        else:
            _init_worker(build)
            for task in tasks:
                index, written, skipped = _write_job(task)
                results[index] = (written, skipped)
                bar.update(written + len(skipped))
    shards, skipped_all = [], []
    for index in range(len(tasks)):
        written, skipped = results[index]
        name = SHARD_PATTERN.format(index)
        shards.append({"name": name, "num_samples": written, "sha256": sha256_file(folder / name)})
        skipped_all.extend(skipped)
    return {
        "num_samples": sum(s["num_samples"] for s in shards),
        "shards": shards,
        "num_skipped": len(skipped_all),
        "skipped": [{"key": s.key, "reason": s.reason} for s in skipped_all],
    }


def write_decoded(folder: Path, shards: Sequence[dict[str, Any]], max_bytes: int = DECODED_MAX_BYTES) -> dict[str, Any] | None:
    """Decode the shards of ``folder`` once into ``images.npy`` / ``labels.npy`` (see the
    module doc); returns the ``decoded`` entry of ``info.json``, or None when the split's
    pixels exceed ``max_bytes`` (or it is empty)."""
    total = sum(s["num_samples"] for s in shards)
    if total == 0:
        return None
    first = next(read_tar(folder / shards[0]["name"]))
    shape = decode_image(first[image_field(first, folder)]).shape
    if total * int(np.prod(shape)) > max_bytes:
        return None
    images = np.lib.format.open_memmap(folder / DECODED_IMAGES, mode="w+", dtype=np.uint8, shape=(total, *shape))
    labels = np.empty(total, dtype=np.int64)
    index = 0
    for shard in shards:
        for sample in read_tar(folder / shard["name"]):
            image = decode_image(sample[image_field(sample, folder)])
            if image.shape != shape:
                raise DataError(f"{folder / shard['name']}: sample {sample['__key__']} is {image.shape}, the first one {shape}.",
                                "store every image of a split at one size (data.image_size), then rebuild (dvc repro).")
            images[index], labels[index] = image, int(sample["cls"])
            index += 1
    images.flush()
    del images
    np.save(folder / DECODED_LABELS, labels)
    return {"images": DECODED_IMAGES, "labels": DECODED_LABELS, "shape": [total, *shape],
            "sha256": {name: sha256_file(folder / name) for name in (DECODED_IMAGES, DECODED_LABELS)}}


def chunk(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Consecutive chunks of at most ``size`` items (the shard jobs)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- folders and info.json ---------------------------------------------------------------
@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path``, on error it is removed.

    So an interrupted or failed run never leaves a half-written ``path`` behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename), stable formatting."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fieldnames: Sequence[str] | None = None) -> None:
    """Write ``rows`` as CSV with a header (``fieldnames``, default the first row's keys),
    atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_info(folder: str | Path) -> dict[str, Any]:
    """The ``info.json`` of a shard folder, checked to list shards that exist."""
    folder = Path(folder)
    path = folder / INFO
    if not path.is_file():
        raise DataError(
            f"{folder} is not a shard folder: {INFO} is missing.",
            "build the shards first (dvc repro prepare) or point at data/shards/<...>/<split>.",
        )
    try:
        info = json.loads(path.read_text())
        names = [s["name"] for s in info["shards"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid shard info file ({exc}).", "rebuild the shards (dvc repro).") from exc
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder} lacks shards listed in {INFO}: {', '.join(missing[:3])}.", "rebuild the shards (dvc repro).")
    return info


def built_levels(corrupt_root: Path, name: str, split: str = "test") -> list[int]:
    """The levels of distortion ``name`` whose ``split`` shards exist, ascending."""
    folder = corrupt_root / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / split / "info.json").is_file())
