"""IQA databases read as they ship, as lists of (reference, distorted, subjective score) pairs.

* ``tid2013``: ``mos_with_names.txt`` ("MOS name" per line), ``reference_images/I01.BMP`` ..
  ``i25.bmp`` and ``distorted_images/iRR_TT_L.bmp``; names matched case-insensitively (the
  release mixes ``i`` and ``I``). Type = TT (24 types), reference = RR. Higher MOS = better.
* ``livemd``: LIVE Multiply Distorted. Every folder under the root holding ``Imagelists.mat``
  and ``Scores.mat`` is one part (``Part 1/blurjpeg``, ``Part 2/blurnoise``; type = the
  folder's name): ``distimgs`` names the distorted images, ``refimgs`` / ``ref4dist``
  (1-based) their references (or, without them, the distorted name's prefix before "_" +
  ``.bmp``), ``DMOSscores`` their scores. Higher DMOS = worse.
* ``csv``: a file with a header ``reference,distorted,mos`` (or ``dmos``: higher = worse) and
  an optional ``type`` column; paths relative to the file's folder.

Every missing file, a score with no image, and an unreadable image is one :class:`DataError`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robust.errors import DataError

FORMATS = ("tid2013", "livemd", "csv")


@dataclass(frozen=True)
class Pair:
    reference: Path
    distorted: Path
    score: float     # the database's subjective score (MOS or DMOS)
    kind: str        # distortion type
    group: str       # the reference image (bootstrap resamples references)


@dataclass(frozen=True)
class Database:
    name: str
    pairs: list[Pair]
    higher_is_better: bool   # MOS (True) or DMOS (False)


def _need_file(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path} not found.", fix)
    return path


def _by_lower_name(folder: Path, fix: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder} not found or not a folder.", fix)
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


def read_tid2013(root: Path) -> Database:
    fix = "point iqa.root at the TID2013 folder holding mos_with_names.txt, reference_images/ and distorted_images/."
    scores = _need_file(root / "mos_with_names.txt", fix)
    references = _by_lower_name(root / "reference_images", fix)
    distorted = _by_lower_name(root / "distorted_images", fix)
    pairs = []
    for number, line in enumerate(scores.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        match = re.fullmatch(r"i(\d+)_(\d+)_(\d+)\.\w+", fields[-1].lower()) if len(fields) == 2 else None
        try:
            mos = float(fields[0])
        except (ValueError, IndexError):
            match = None
        if match is None:
            raise DataError(f"{scores} line {number} is not 'MOS iRR_TT_L.bmp': {line.strip()!r}.", "restore the file from the TID2013 release.")
        name = fields[-1].lower()
        if name not in distorted:
            raise DataError(f"{scores} line {number} names {fields[-1]}, which is not in {root / 'distorted_images'}.", fix)
        ref_name = f"i{match.group(1)}.bmp"
        if ref_name not in references:
            raise DataError(f"The reference {ref_name} of {fields[-1]} is not in {root / 'reference_images'}.", fix)
        pairs.append(Pair(references[ref_name], distorted[name], mos, match.group(2), match.group(1)))
    if not pairs:
        raise DataError(f"{scores} lists no image.", fix)
    return Database("tid2013", pairs, higher_is_better=True)


def _mat_strings(value: object) -> list[str]:
    """A MATLAB cell array of strings (as scipy.io.loadmat gives it) as a list of str."""
    array = np.asarray(value)
    if array.dtype.kind == "U":  # a char matrix: one space-padded row per name
        return [str(row).strip() for row in array.ravel()]
    return [str(np.asarray(item).ravel()[0]).strip() if np.asarray(item).size else "" for item in array.astype(object).ravel()]


def read_livemd(root: Path) -> Database:
    from scipy.io import loadmat

    fix = "point iqa.root at the LIVE Multiply Distorted folder (Part 1/blurjpeg and Part 2/blurnoise, each with Imagelists.mat and Scores.mat)."
    if not root.is_dir():
        raise DataError(f"{root} not found or not a folder.", fix)
    parts = sorted(p.parent for p in root.rglob("Imagelists.mat"))
    if not parts:
        raise DataError(f"No Imagelists.mat under {root}.", fix)
    pairs = []
    for part in parts:
        try:
            lists = loadmat(part / "Imagelists.mat")
            scores = loadmat(_need_file(part / "Scores.mat", fix))
        except (ValueError, OSError, NotImplementedError) as exc:
            raise DataError(f"Cannot read the .mat files of {part}: {exc}.", "restore them from the LIVE-MD release.") from exc
        if "distimgs" not in lists or "DMOSscores" not in scores:
            raise DataError(f"{part} lacks distimgs (Imagelists.mat) or DMOSscores (Scores.mat).", fix)
        names = _mat_strings(lists["distimgs"])
        dmos = np.asarray(scores["DMOSscores"], dtype=float).ravel()
        if len(names) != len(dmos):
            raise DataError(f"{part}: {len(names)} distorted images but {len(dmos)} DMOS scores.", fix)
        if "refimgs" in lists and "ref4dist" in lists:
            refs = _mat_strings(lists["refimgs"])
            ref4dist = np.asarray(lists["ref4dist"]).ravel()
            if len(ref4dist) != len(names) or not all(float(i).is_integer() and 1 <= i <= len(refs) for i in ref4dist):
                raise DataError(f"{part / 'Imagelists.mat'}: ref4dist must give, for each of the {len(names)} distorted images, "
                                f"a 1-based index into the {len(refs)} refimgs.", "restore the file from the LIVE-MD release.")
            ref_names = [refs[int(i) - 1] for i in ref4dist]
        else:
            ref_names = [name.split("_")[0] + ".bmp" for name in names]
        files = _by_lower_name(part, fix)
        for name, ref_name, score in zip(names, ref_names, dmos):
            for wanted in (name, ref_name):
                if wanted.lower() not in files:
                    raise DataError(f"{part / 'Imagelists.mat'} names {wanted}, which is not in {part}.", fix)
            pairs.append(Pair(files[ref_name.lower()], files[name.lower()], float(score), part.name, ref_name.lower()))  # both parts share the references
    return Database("livemd", pairs, higher_is_better=False)


def read_csv(path: Path) -> Database:
    fix = "give a CSV with the header reference,distorted,mos (or dmos) and an optional type column; paths relative to the CSV."
    _need_file(path, fix)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0]) if rows else set()
    score_column = "mos" if "mos" in columns else "dmos" if "dmos" in columns else None
    if not rows or not {"reference", "distorted"} <= columns or score_column is None:
        raise DataError(f"{path} has no rows with reference, distorted and mos (or dmos) columns (found: {', '.join(sorted(columns)) or 'none'}).", fix)
    pairs = []
    for number, row in enumerate(rows, 2):
        try:
            score = float(row[score_column])
        except (TypeError, ValueError):
            raise DataError(f"{path} line {number}: {score_column} {row[score_column]!r} is not a number.", fix) from None
        if not row.get("reference") or not row.get("distorted"):
            raise DataError(f"{path} line {number} lacks a reference or distorted path.", fix)
        reference, distorted = (path.parent / row[key] for key in ("reference", "distorted"))
        for image in (reference, distorted):
            _need_file(image, f"{fix} (line {number})")
        pairs.append(Pair(reference, distorted, score, row.get("type") or "all", str(reference.resolve())))
    return Database(path.stem, pairs, higher_is_better=score_column == "mos")


def read_database(root: str | Path, fmt: str) -> Database:
    """The pairs of a database in format ``fmt`` (:data:`FORMATS`) at ``root`` (the CSV file for ``csv``)."""
    readers = {"tid2013": read_tid2013, "livemd": read_livemd, "csv": read_csv}
    if fmt not in readers:
        raise DataError(f"Unknown IQA database format {fmt!r}.", f"use one of: {', '.join(FORMATS)}.")
    return readers[fmt](Path(root))


def load_image(path: Path) -> torch.Tensor:
    """An image file as ``[3, H, W]`` float in [0, 1]; an unreadable file is a :class:`DataError`
    (a :class:`~robust.errors.BadImageError`, which is one)."""
    from robust.data.sources.base import open_image_file
    from robust.errors import BadImageError

    try:
        image = open_image_file(path)
    except BadImageError as exc:
        raise DataError(f"Unreadable image {path} in the IQA database.", "replace the file from the database's release.") from exc
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def batches(pairs: list[Pair], batch_size: int) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Consecutive pairs of one image size, loaded: ``(indices, references, distorted)``."""
    cache: dict[Path, torch.Tensor] = {}
    indices: list[int] = []
    refs: list[torch.Tensor] = []
    dists: list[torch.Tensor] = []
    for i, pair in enumerate(pairs):
        if pair.reference not in cache:
            cache.clear()  # pairs of one reference come together in every format's order
            cache[pair.reference] = load_image(pair.reference)
        ref, dist = cache[pair.reference], load_image(pair.distorted)
        if ref.shape != dist.shape:
            raise DataError(f"{pair.distorted} is {tuple(dist.shape[1:])} px but its reference {pair.reference} is {tuple(ref.shape[1:])}.",
                            "a full-reference index needs pairs of one size: fix the score file.")
        if refs and (ref.shape != refs[0].shape or len(refs) == batch_size):
            yield indices, torch.stack(refs), torch.stack(dists)
            indices, refs, dists = [], [], []
        indices.append(i)
        refs.append(ref)
        dists.append(dist)
    if refs:
        yield indices, torch.stack(refs), torch.stack(dists)
