"""Released corrupted test sets -> the shard layout of a generated ``corrupt`` stage.

``corrupt.source: released`` evaluates on the files a benchmark published instead of
regenerating them. :func:`write_released` reads every severity of one corruption and writes
``<out>/<level>/test/shard-*.tar`` + ``info.json`` exactly where and how a generated stage
does, so evaluation reads both the same way. The layout read follows the clean source:

* ``cifar10`` / ``cifar100`` -> CIFAR-10-C / CIFAR-100-C (``"cifar-c"``): ``<root>/<name>.npy``,
  uint8 ``(5 x n, 32, 32, 3)`` = severities 1..5 x the n test images in test-set order, and
  ``<root>/labels.npy``. Row ``(level - 1) x n + i`` is the corrupted copy of clean test
  image ``i``, so every released sample takes the key, label and order of the clean test
  sample with that source index (a ``data.test_size`` subset reads only its indices) and
  the output shards pair one-to-one with the clean shards. The released labels must equal
  the clean ones: a mismatch means another dataset (CIFAR-100-C for CIFAR-10, ...). The
  released pixels are stored losslessly (PNG) whatever ``corrupt.format`` says: re-encoding
  them as JPEG would add a compression the benchmark never had.
* ``tinyimagenet`` / ``imagefolder`` -> Tiny-ImageNet-C / ImageNet-C (``"imagenet-c"``):
  ``<root>/<name>/<level>/<wnid>/*.JPEG`` (``.jpg`` / ``.png`` too, any case). The wnid
  folder gives the label through the clean class list (Tiny ImageNet: its sorted
  ``wnids.txt``, read again from the clean ``data.root``; ImageFolder: the class folder
  names). The files are stored byte for byte (no re-encode, no resize: a second resize is a
  known mistake), so an image of another size than the clean ``image_size`` is an error.
  These images are bounding-box crops (Tiny) or other files than the clean test split: keys
  come from their own path (``<wnid>/<stem>``, the same at every level) and do not pair
  with the clean keys.
* ``cure-tsr`` -> the challenge folders ``<root>/RealChallenge/<TT>_<LL>/test/*.bmp``
  (``"cure-tsr"``), read by :class:`~robust.data.sources.curetsr.CureTsrSource` and fitted
  to the clean size exactly as ``prepare`` fits the clean images, stored in the clean shards'
  own format (``data.format``), as the clean images they pair with.

Every check that needs no image decode (folders, files, shapes, labels, class folders) runs
before anything is written; image-level checks (readable, size) run in the shard workers.
On any error ``out`` is not created (or left as it was): everything is built in temporary
folders (:func:`~robust.data.shards.atomic_dir`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from robust.data.prepare import fit_image
from robust.data.shards import (
    INFO,
    atomic_dir,
    chunk,
    make_sample,
    read_info,
    read_tar,
    sha256_file,
    software_versions,
    write_decoded,
    write_json,
    write_shards,
)
from robust.data.sources.base import Record, safe_key
from robust.distortions import CURE_TSR, IMAGENET_C, IMAGENET_C_EXTRA, family_of
from robust.errors import BadImageError, DataError

if TYPE_CHECKING:
    from robust.distortions.settings import CorruptParams

LEVELS = 5
SPLIT = "test"
#: clean data.source -> the released layout that matches it
LAYOUTS = {"cifar10": "cifar-c", "cifar100": "cifar-c", "tinyimagenet": "imagenet-c", "imagefolder": "imagenet-c", "cure-tsr": "cure-tsr"}
#: what each layout is called in messages
SETS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C", "tinyimagenet": "Tiny-ImageNet-C", "imagefolder": "ImageNet-C", "cure-tsr": "CURE-TSR"}
#: the corruptions the CIFAR-C / ImageNet-C releases hold
IMAGENET_C_NAMES = IMAGENET_C + IMAGENET_C_EXTRA
#: file endings read from Tiny-ImageNet-C / ImageNet-C folders (case-insensitive)
RELEASED_SUFFIXES = (".jpeg", ".jpg", ".png")
_PIL_FORMATS = {"JPEG": "jpg", "PNG": "png"}
CIFAR_SHAPE = (32, 32, 3)
CIFAR_LABELS = "labels.npy"


def cure_tsr_root(root: Path) -> Path:
    """The folder holding ``RealChallenge/`` (or the ``cure-tsr/`` folder inside ``root``)."""
    from robust.data.sources.curetsr import archive_root

    return archive_root(root, "RealChallenge")


def cure_tsr_challenge(name: str, level: int) -> str:
    """CURE-TSR's challenge folder name ``<TT>_<LL>`` of a challenge type and level."""
    return f"{CURE_TSR.index(name) + 1:02d}_{level:02d}"


def level_path(layout: str, root: Path, name: str, level: int, split: str = SPLIT) -> Path:
    """Where a released set keeps corruption ``name`` at ``level``: the one place that knows
    each layout (the readers below and the pipeline's inputs check both use it). CIFAR-C keeps
    all five levels in ``<name>.npy`` (with ``labels.npy`` beside it)."""
    if layout == "cifar-c":
        return root / f"{name}.npy"
    if layout == "cure-tsr":
        return cure_tsr_root(root) / "RealChallenge" / cure_tsr_challenge(name, level) / split
    return root / name / str(level)


def write_released(clean: Path, out: Path, name: str, root: Path, params: CorruptParams) -> dict[int, dict[str, dict[str, Any]]]:
    """Read every severity of released corruption ``name`` under ``root`` and write
    ``out/<level>/test/`` shards + ``info.json`` (the layout a generated corrupt stage
    writes); returns ``{level: {"test": info}}``. ``out`` appears only when complete."""
    clean, out, root = Path(clean), Path(out), Path(root)
    if tuple(params.splits) != (SPLIT,):
        raise DataError(
            f"A released corrupted set holds only the test split; corrupt.splits is {list(params.splits)}.",
            "set corrupt.splits: [test] with corrupt.source: released.",
        )
    clean_info = read_info(clean / SPLIT)
    source = clean_info.get("source")
    _check_name(name, source)
    if not root.is_dir():
        raise DataError(
            f"The released {SETS[source]} folder (corrupt.root) {root} does not exist or is not a folder.",
            f"point corrupt.root at the folder of the released {SETS[source]} set on this machine.",
        )
    layout = LAYOUTS[source]
    plans = {"cifar-c": _plan_cifar_c, "imagenet-c": _plan_imagenet_c, "cure-tsr": _plan_cure_tsr}[layout](clean, clean_info, name, root, params)
    infos: dict[int, dict[str, dict[str, Any]]] = {}
    with atomic_dir(out) as tmp:
        for level, plan in plans.items():
            with atomic_dir(tmp / str(level)) as level_tmp:
                info = _write_split(level_tmp / SPLIT, plan, clean_info, name, level, root, layout, params)
            infos[level] = {SPLIT: info}
    return infos


def write_released_splits(clean: Path, out: Path, name: str, level: int, root: Path, params: CorruptParams, splits: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One level of a CURE-TSR challenge for other splits than test (``out/<split>/``): the
    gradient detectors train on challenge 07 (Gaussian blur) level 1's train / val folders,
    as seed 001 did. Only CURE-TSR ships distorted train / val splits."""
    clean, out, root = Path(clean), Path(out), Path(root)
    clean_info = read_info(clean / "train")
    if clean_info.get("source") != "cure-tsr" or name not in CURE_TSR:
        raise DataError(f"Only CURE-TSR's challenge folders have distorted train / val splits; {name} on {clean_info.get('source')} has none.",
                        "train the detectors on a distortion the pipeline can generate (gradients.train_distortion: gaussian_blur).")
    if not 1 <= level <= LEVELS:
        raise DataError(f"Level {level} is out of range for {name}, which has {LEVELS} levels.", f"use a level from 1 to {LEVELS}.")
    infos = {}
    with atomic_dir(out) as tmp:
        for split in splits:
            plan = _plan_cure_tsr(clean, clean_info, name, root, params, split=split, levels=(level,))[level]
            infos[split] = _write_split(tmp / split, plan, clean_info, name, level, root, "cure-tsr", params, split=split)
    return infos


def _write_split(folder: Path, plan: _Plan, clean_info: dict[str, Any], name: str, level: int, root: Path, layout: str, params: CorruptParams,
                 split: str = SPLIT) -> dict[str, Any]:
    """Write one planned split's shards, decoded copy and ``info.json``; returns the info."""
    folder.mkdir()
    result = write_shards(folder, plan.jobs, plan.builder, workers=params.workers, total=plan.total, desc=f"released {name}@{level} {split}")
    info = {
        "split": split,
        "source": clean_info["source"],
        "image_size": clean_info["image_size"],
        "format": plan.format,
        "num_classes": clean_info["num_classes"],
        "classes": clean_info["classes"],
        "distortion": {"name": name, "level": level, "levels": LEVELS, "origin": "released", "family": family_of(name), "value": None},
        **result,
        "decoded": write_decoded(folder, result["shards"]),
        "clean_shards_sha256": [s["sha256"] for s in clean_info["shards"]],
        "params": {k: v for k, v in params.as_dict().items() if k != "suites"} | {"splits": list(params.splits)},
        "software": software_versions(),
        "released": {"layout": layout, "root": str(root), **plan.provenance, "constants": "released"},
    }
    write_json(folder / INFO, info)
    return info


def _check_name(name: str, source: str | None) -> None:
    """The clean source has a released set, and ``name`` is a corruption of that set."""
    if source not in LAYOUTS:
        raise DataError(
            f"No released corrupted set exists for data.source {source!r} (the clean shards' source).",
            f"use corrupt.source: generate, or prepare one of {', '.join(LAYOUTS)} (CIFAR-10/100-C, Tiny-ImageNet-C, ImageNet-C, CURE-TSR).",
        )
    if source == "cure-tsr":
        if name not in CURE_TSR:
            raise DataError(
                f"{name} is not a CURE-TSR challenge, and the clean shards are CURE-TSR (data.source: cure-tsr).",
                f"with data.source cure-tsr list CURE-TSR challenges ({', '.join(CURE_TSR)}) in corrupt.suites.cure_tsr, or use corrupt.source: generate.",
            )
    elif name not in IMAGENET_C_NAMES:
        what = "a CURE-TSR challenge" if name in CURE_TSR else "not one of the ImageNet-C corruptions the release holds"
        raise DataError(
            f"{name} is {what}; the released set for data.source {source} is {SETS[source]}.",
            f"remove {name} from corrupt.suites, or prepare the matching clean data (CURE-TSR challenges need data.source: cure-tsr).",
        )


class _Plan:
    """What one level writes: shard jobs, the picklable builder, stored format, provenance."""

    def __init__(self, jobs: Sequence[Any], builder: Any, total: int, fmt: str, provenance: dict[str, Any]) -> None:
        self.jobs, self.builder, self.total, self.format, self.provenance = jobs, builder, total, fmt, provenance


def _meta(base: dict[str, Any], name: str, level: int) -> dict[str, Any]:
    """A released sample's provenance: where it was read from, and that it was not generated."""
    return {**base, "distortion": name, "level": level, "released": True}


# -- CIFAR-10-C / CIFAR-100-C ------------------------------------------------------------------
class CifarCBuilder:
    """Samples of one shard job, sliced from the memory-mapped ``<name>.npy`` (in workers)."""

    def __init__(self, path: str, offset: int, name: str, level: int, fmt: str, quality: int) -> None:
        self.path, self.offset, self.name, self.level, self.fmt, self.quality = path, offset, name, level, fmt, quality

    def __call__(self, entries: Sequence[tuple[str, int, int, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        images = np.load(self.path, mmap_mode="r")
        for key, index, label, meta in entries:
            row = self.offset + index
            meta = _meta({**meta, "file": Path(self.path).name, "row": row}, self.name, self.level)
            yield make_sample(key, np.asarray(images[row]), label, meta, self.fmt, self.quality)


def _load_npy(path: Path, what: str, fix: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{what} {path} is missing.", fix)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc}).", "re-extract the file from the released archive.") from exc


def _plan_cifar_c(clean: Path, clean_info: dict[str, Any], name: str, root: Path, params: CorruptParams) -> dict[int, _Plan]:
    source, release = clean_info["source"], SETS[clean_info["source"]]
    fix_missing = f"remove {name} from corrupt.suites, or point corrupt.root at the {release} folder holding {name}.npy and labels.npy."
    if clean_info["image_size"] != CIFAR_SHAPE[0]:
        raise DataError(
            f"{release} images are 32x32 and are used at their own size, but the clean shards are {clean_info['image_size']} px.",
            "set data.image_size to 32 (and rebuild the clean shards).",
        )
    path, labels_path = level_path("cifar-c", root, name, 1), root / CIFAR_LABELS
    images = _load_npy(path, f"The released {release} file of {name}", fix_missing)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != CIFAR_SHAPE or len(images) == 0 or len(images) % LEVELS:
        raise DataError(
            f"{path} holds {images.dtype} of shape {images.shape}; expected uint8 of shape (N, 32, 32, 3) with N = 5 x the test-set size "
            f"(5 severities; (50000, 32, 32, 3) for {release}).",
            f"use the {name}.npy of the released {release} archive.",
        )
    labels = _load_npy(labels_path, f"The released {release} label file", fix_missing)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {labels.dtype} of shape {labels.shape}; expected integers of shape ({len(images)},), one label per row of {path.name}.",
            f"use the labels.npy of the released {release} archive.",
        )
    per_level = len(images) // LEVELS
    # the clean test samples: keys, source indices and labels, in the clean shard order
    shards: list[list[tuple[str, int, int, dict[str, Any]]]] = []
    for shard in clean_info["shards"]:
        entries = []
        for sample in read_tar(clean / SPLIT / shard["name"]):
            meta = json.loads(sample["json"]) if "json" in sample else {}
            index = meta.get("index")
            if not isinstance(index, int):
                raise DataError(f"Sample {sample['__key__']} of {clean / SPLIT / shard['name']} records no source index.", "rebuild the clean shards (dvc repro prepare).")
            entries.append((sample["__key__"], index, int(sample["cls"]), meta))
        shards.append(entries)
    flat = [entry for entries in shards for entry in entries]
    complete = clean_info["params"].get("test_size") is None and not clean_info.get("num_skipped")
    if (complete and per_level != len(flat)) or max((e[1] for e in flat), default=-1) >= per_level:
        size = f"{len(flat)} images" if complete else f"images up to index {max(e[1] for e in flat)}"
        raise DataError(
            f"{path} holds {per_level} images per severity ({len(images)} rows / 5), but the clean {source} test split has {size}.",
            f"point corrupt.root at the {release} folder made from this data.source / data.root ({release} holds 10,000 per severity).",
        )
    indices = np.array([e[1] for e in flat], dtype=np.int64)
    clean_labels = np.array([e[2] for e in flat], dtype=np.int64)
    for level in range(1, LEVELS + 1):
        released = np.asarray(labels[(level - 1) * per_level + indices], dtype=np.int64)
        wrong = np.flatnonzero(released != clean_labels)
        if len(wrong):
            first = int(wrong[0])
            raise DataError(
                f"{labels_path} does not match the clean {source} test labels: {len(wrong)} of {len(flat)} differ at severity {level} "
                f"(first: test image {indices[first]}, released label {released[first]}, clean label {clean_labels[first]}), "
                f"so the released set does not match data.source / data.root.",
                f"point corrupt.root at the {release} folder (CIFAR-100-C for cifar100, CIFAR-10-C for cifar10).",
            )
    sha = {path.name: sha256_file(path), labels_path.name: sha256_file(labels_path)}
    plans = {}
    for level in range(1, LEVELS + 1):
        start = (level - 1) * per_level
        provenance = {"files": [path.name, labels_path.name], "rows": [start, start + per_level], "sha256": sha}
        builder = CifarCBuilder(str(path), start, name, level, "png", params.jpg_quality)  # the released pixels, losslessly
        plans[level] = _Plan(shards, builder, len(flat), "png", provenance)
    return plans


# -- Tiny-ImageNet-C / ImageNet-C ---------------------------------------------------------------
class ReleasedFileBuilder:
    """Samples of one shard job: each released file stored byte for byte (in workers)."""

    def __init__(self, folder: str, prefix: str, image_size: int, name: str, level: int, source: str) -> None:
        self.folder, self.prefix, self.image_size, self.name, self.level, self.source = folder, prefix, image_size, name, level, source

    def __call__(self, entries: Sequence[tuple[str, str, int, str]]) -> Iterator[dict[str, Any]]:
        for key, relative, label, wnid in entries:
            path = Path(self.folder) / relative
            data = path.read_bytes()
            fmt, size = self._check(path, data)
            base = {"key": key, "source": self.source, "split": SPLIT, "label": label, "wnid": wnid, "file": f"{self.prefix}/{relative}", "size": list(size)}
            meta = json.dumps(_meta(base, self.name, self.level), sort_keys=True, separators=(",", ":")).encode()  # as make_sample
            yield {"__key__": key, fmt: data, "cls": str(label).encode(), "json": meta}

    def _check(self, path: Path, data: bytes) -> tuple[str, tuple[int, int]]:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                kind, size = image.format, image.size
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"Unreadable or truncated released image {path}: {exc}.", "re-extract the file from the released archive, or delete it.") from exc
        expected = "png" if path.suffix.lower() == ".png" else "jpg"
        if _PIL_FORMATS.get(kind) != expected:
            raise DataError(f"Released image {path} holds a {kind} image, not what its name says ({expected}).", "re-extract the file from the released archive.")
        if size != (self.image_size, self.image_size):
            fix = (f"set data.image_size to {size[0]} (and rebuild the clean shards): released images are used at their own size, never resized again."
                   if size[0] == size[1] else "use the released archive's images, which are square.")
            raise DataError(f"Released image {path} is {size[0]}x{size[1]} px, the clean shards {self.image_size}x{self.image_size} px.", fix)
        return _PIL_FORMATS[kind], size


def _clean_wnids(clean_info: dict[str, Any]) -> list[str]:
    """The wnid of every clean label: Tiny ImageNet's sorted wnids.txt (from the clean data.root),
    ImageFolder's class folder names."""
    if clean_info["source"] == "imagefolder":
        return list(clean_info["classes"])
    from robust.data.sources.tinyimagenet import TinyImageNetSource

    data_root = (clean_info.get("provenance") or {}).get("root") or clean_info["params"].get("root")
    fix = "keep data.root pointing at the tiny-imagenet-200/ folder the clean shards were made from (its wnids.txt names the classes)."
    if not data_root:
        raise DataError("The clean Tiny ImageNet shards record no data.root, which is needed for the class wnids.", fix)
    try:
        source = TinyImageNetSource(data_root)
    except DataError as exc:
        raise DataError(f"The class wnids of the clean Tiny ImageNet shards are read from data.root, which fails: {exc.problem}", fix) from exc
    if source.classes != list(clean_info["classes"]):
        raise DataError(f"The classes of {data_root} differ from those of the clean shards.", "rebuild the clean shards (dvc repro prepare).")
    return source.wnids


def _plan_imagenet_c(clean: Path, clean_info: dict[str, Any], name: str, root: Path, params: CorruptParams) -> dict[int, _Plan]:
    source, release = clean_info["source"], SETS[clean_info["source"]]
    wnids = _clean_wnids(clean_info)
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    top = root / name
    layout_fix = f"point corrupt.root at the {release} folder holding {name}/1..5/<wnid>/*.JPEG, or remove {name} from corrupt.suites."
    if not top.is_dir():
        raise DataError(f"The released {release} folder of {name} is missing: {top} does not exist.", layout_fix)
    mismatch_fix = f"point corrupt.root at the {release} set made from the clean data (data.source {source}, data.root {clean_info['params'].get('root')})."
    plans = {}
    shard_size = int(clean_info["params"]["shard_size"])
    for level in range(1, LEVELS + 1):
        folder = level_path("imagenet-c", root, name, level)
        if not folder.is_dir():
            raise DataError(f"The severity {level} folder of released {name} is missing: {folder} does not exist.", layout_fix)
        present = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        unknown = [w for w in present if w not in label_of]
        if unknown:
            raise DataError(
                f"{folder} has class folders that the clean {source} classes lack: {', '.join(unknown[:5])}; "
                f"the released set does not match data.source / data.root.", mismatch_fix)
        absent = [w for w in wnids if w not in present]
        if absent:
            raise DataError(
                f"{folder} lacks the folders of clean classes {', '.join(absent[:5])}; the released set does not match data.source / data.root.",
                mismatch_fix)
        entries, keys = [], {}
        for wnid in present:
            for path in sorted(p for p in (folder / wnid).iterdir() if p.is_file() and p.suffix.lower() in RELEASED_SUFFIXES):
                relative = path.relative_to(folder).as_posix()
                key = safe_key(relative.rsplit(".", 1)[0])
                if key in keys:
                    raise DataError(f"{folder}: {keys[key]} and {relative} give the same sample key.", "keep one of the two files.")
                keys[key] = relative
                entries.append((key, relative, label_of[wnid], wnid))
        if not entries:
            raise DataError(f"{folder} holds no .JPEG / .jpg / .png image.", layout_fix)
        formats = sorted({"png" if e[1].lower().endswith(".png") else "jpg" for e in entries})
        builder = ReleasedFileBuilder(str(folder), f"{name}/{level}", clean_info["image_size"], name, level, source)
        provenance = {"folder": f"{name}/{level}", "files": len(entries)}
        plans[level] = _Plan(chunk(entries, shard_size), builder, len(entries), "+".join(formats), provenance)
    return plans


# -- CURE-TSR ------------------------------------------------------------------------------------
class CureBuilder:
    """Samples of one shard job: a challenge image fitted to the clean size (in workers)."""

    def __init__(self, source: Any, image_size: int, resize_shorter: int | None, resize_mode: str, name: str, level: int, fmt: str, quality: int,
                 split: str = SPLIT) -> None:
        self.source, self.image_size, self.resize_shorter, self.resize_mode = source, image_size, resize_shorter, resize_mode
        self.name, self.level, self.fmt, self.quality, self.split = name, level, fmt, quality, split

    def __call__(self, records: Sequence[Record]) -> Iterator[dict[str, Any]]:
        for record in records:
            try:
                image = fit_image(self.source.load(record), self.image_size, self.resize_shorter, self.resize_mode)
            except BadImageError as exc:
                raise DataError(exc.problem, "re-extract the file from the CURE-TSR archive, or delete it.") from exc
            base = {"key": record.key, "source": self.source.name, "split": self.split, "label": record.label, **record.meta}
            yield make_sample(record.key, image, record.label, _meta(base, self.name, self.level), self.fmt, self.quality)


def _plan_cure_tsr(clean: Path, clean_info: dict[str, Any], name: str, root: Path, params: CorruptParams, split: str = SPLIT,
                   levels: Sequence[int] = tuple(range(1, LEVELS + 1))) -> dict[int, _Plan]:
    from robust.data.sources.curetsr import CureTsrSource

    root = cure_tsr_root(root)
    data = clean_info["params"]
    plans = {}
    for level in levels:
        challenge = cure_tsr_challenge(name, level)
        folder = level_path("cure-tsr", root, name, level, split)
        if not folder.is_dir():
            raise DataError(
                f"The CURE-TSR {split} folder of {name} level {level} (challenge {challenge}) is missing: {folder} does not exist.",
                f"point corrupt.root at the cure-tsr/ folder holding RealChallenge/{challenge}/{split}/*.bmp, or remove {name} from corrupt.suites.",
            )
        source = CureTsrSource(root, challenge=challenge)
        if source.classes != list(clean_info["classes"]):
            raise DataError("The CURE-TSR classes differ from those of the clean shards.", "rebuild the clean shards (dvc repro prepare).")
        records = source.splits(need_train=False).get(split) or []
        if not records:
            raise DataError(f"{folder} holds no .bmp image.", f"point corrupt.root at the complete cure-tsr/ folder, or remove {name} from corrupt.suites.")
        fmt, quality = data.get("format", "png"), int(data.get("jpg_quality", params.jpg_quality))  # as the clean images were stored
        builder = CureBuilder(source, data["image_size"], data.get("resize_shorter"), data.get("resize_mode", "center-crop"), name, level, fmt, quality, split)
        provenance = {"folder": f"RealChallenge/{challenge}/{split}", "files": len(records)}
        plans[level] = _Plan(chunk(records, int(data["shard_size"])), builder, len(records), fmt, provenance)
    return plans
