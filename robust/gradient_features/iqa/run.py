"""Stage ``iqa`` and ``robust iqa``: the four indices scored on one IQA set.

``iqa.source``:

* ``pipeline`` (the default): no human scores exist for the builtin data, so the set is built
  from full-resolution photographs, as the seed's databases are: ``iqa.images`` crops of
  ``iqa.crop`` px (non-overlapping, taken in turn from the builtin dataset's colour photographs
  at their own size: 256 px by default, against TID2013's 512 x 384) and their copies under
  every distortion of ``corrupt.suites`` that is a function (not the released-only CURE-TSR
  types) at every level, made here with the tables for that size (``auto``: the ImageNet table)
  and per-image seeds. Read at ``index.scale`` 0.5 as on TID2013, a 256 px crop gives 256 8 x 8
  patches, so each image's own 192-dimensional whitening rests on a full-rank covariance (the
  32 px test images gave 16). The "subjective" score is the distortion LEVEL (higher = worse),
  and an index is scored by its rank agreement with it within each distortion type
  (``mean_within_type_srocc``, the headline) and pooled. This is agreement with distortion
  strength, not with human opinion, and the summary says so. The photographs are also the
  autoencoder's default patch source (``iqa.autoencoder.patches_root: null``): the index's
  training patches and its test references come from the same six photographs.
* ``tid2013`` | ``livemd`` | ``csv`` at ``iqa.root``: a real database
  (:mod:`robust.gradient_features.iqa.databases`); the headline is the pooled SROCC, as the field reports it.

``index.scale: auto`` is the original's 0.5 everywhere (the pipeline set is full-resolution too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from robust.data.shards import write_json
from robust.errors import DataError, ParamError
from robust.gradient_features.iqa import scoring
from robust.gradient_features.iqa.autoencoder import SparseAutoencoder
from robust.gradient_features.iqa.databases import FORMATS, Database, Pair, batches, read_database
from robust.gradient_features.iqa.indices import INDICES, IndexSettings
from robust.params import Section, is_int, require

SOURCES = ("pipeline", *FORMATS)

#: seed 001's published SROCC / PLCC (Kwon et al. 2019, Table 1; UNIQUE's from the same table)
PUBLISHED = {"tid2013": {"gradient": {"srocc": 0.865}, "unique": {"srocc": 0.860, "plcc": 0.870}},
             "livemd": {"gradient": {"srocc": 0.887}, "unique": {"srocc": 0.867, "plcc": 0.897}}}
PIPELINE_PROTOCOL = "agreement with distortion strength (the level), not with human opinion"
FIT = "PLCC and RMSE after a 5-parameter logistic fit (scipy curve_fit) of the subjective score on the index"


@dataclass(frozen=True)
class IQAParams(Section):
    """The ``iqa:`` section (``autoencoder:`` is read by :mod:`robust.gradient_features.iqa.train`)."""

    source: str = "pipeline"          # pipeline | tid2013 | livemd | csv
    root: str | None = None           # the database folder (the CSV file for csv)
    images: int = 6                   # pipeline: reference crops (each with every distortion x level)
    crop: int = 256                   # pipeline: their side in px (256: full-resolution patches, as the seed's databases; at least 64, for tests)
    batch_size: int = 64              # pairs per batch
    bootstrap: int = 200              # resamples of the reference images for the intervals (0: none)
    bootstrap_seed: int = 0
    index: dict[str, Any] = field(default_factory=dict)        # IndexSettings keys; scale: auto | a number
    autoencoder: dict[str, Any] = field(default_factory=dict)  # robust.gradient_features.iqa.train.AutoencoderParams

    section: ClassVar[str] = "iqa"

    def validate(self, section: str = "iqa") -> None:
        require(self.source in SOURCES, f"{section}.source", self.source, " | ".join(SOURCES))
        if self.source != "pipeline":
            require(isinstance(self.root, str) and bool(self.root), f"{section}.root", self.root, f"the path of the {self.source} database")
        for name, minimum in (("images", 1), ("crop", 64), ("batch_size", 1), ("bootstrap", 0), ("bootstrap_seed", 0)):
            value = getattr(self, name)
            require(is_int(value) and value >= minimum, f"{section}.{name}", value, f"an integer >= {minimum}")
        require(isinstance(self.index, dict), f"{section}.index", self.index, "a mapping")
        self.index_settings()

    def index_settings(self) -> IndexSettings:
        values = dict(self.index)
        if values.get("scale", "auto") == "auto":
            values["scale"] = 0.5
        return IndexSettings.from_dict(values, f"{self.section}.index")


@dataclass
class ScoredSet:
    """One IQA set's per-pair arrays: the indices' scores, the subjective score, the type, the reference."""

    name: str
    scores: dict[str, np.ndarray]
    subjective: np.ndarray
    kinds: np.ndarray
    groups: np.ndarray
    higher_is_better: bool
    seconds: dict[str, float]
    patches: dict[str, int] = field(default_factory=dict)  # 8 x 8 patches per image after the resize: min and max over the references


def _score_batches(batch_iter: Any, n: int, model: SparseAutoencoder, settings: IndexSettings, desc: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    scores = {name: np.full(n, np.nan) for name in INDICES}
    seconds = dict.fromkeys(INDICES, 0.0)
    with tqdm(total=n, desc=desc, unit="pair", disable=None) as bar:
        for indices, refs, dists in batch_iter:
            for name, index in INDICES.items():
                start = time.perf_counter()
                scores[name][indices] = index(refs, dists, model, settings).double().numpy()
                seconds[name] += time.perf_counter() - start
            bar.update(len(indices))
    return scores, {k: round(v, 2) for k, v in seconds.items()}


def score_database(db: Database, model: SparseAutoencoder, settings: IndexSettings, batch_size: int) -> ScoredSet:
    """The four indices on every pair of a database."""
    from PIL import Image

    scores, seconds = _score_batches(batches(db.pairs, batch_size), len(db.pairs), model, settings, f"iqa {db.name}")
    sizes = []
    for reference in dict.fromkeys(p.reference for p in db.pairs):
        with Image.open(reference) as image:  # the header only
            sizes.append(patch_count(image.height, image.width, settings.scale))
    return ScoredSet(db.name, scores, np.array([p.score for p in db.pairs]), np.array([p.kind for p in db.pairs]),
                     np.array([p.group for p in db.pairs]), db.higher_is_better, seconds, {"min": min(sizes), "max": max(sizes)})


def patch_count(height: int, width: int, scale: float) -> int:
    """How many 8 x 8 patches an image gives after the index's resize by ``scale``."""
    return int(round(height * scale)) // 8 * (int(round(width * scale)) // 8)


def reference_crops(count: int, side: int) -> list[np.ndarray]:
    """``count`` non-overlapping ``side`` px crops (uint8 RGB) of the builtin dataset's colour
    photographs at their own size, taken from each photograph in turn (its crops row by row)."""
    from robust.gradient_features.iqa.train import colour_photographs

    tiles = [[photo[top:top + side, left:left + side] for top in range(0, photo.shape[0] - side + 1, side)
              for left in range(0, photo.shape[1] - side + 1, side)] for photo in colour_photographs()]
    crops = [tile[k] for k in range(max(len(t) for t in tiles)) for tile in tiles if k < len(tile)]
    if len(crops) < count:
        raise DataError(f"The builtin photographs give {len(crops)} crops of {side} px, fewer than iqa.images = {count}.",
                        f"set iqa.images to at most {len(crops)} or a smaller iqa.crop.")
    return crops[:count]


def score_pipeline(params: dict[str, Any], p: IQAParams, model: SparseAutoencoder, settings: IndexSettings) -> ScoredSet:
    """The default set (module doc): full-resolution crops x every generated distortion x level."""
    from robust.distortions import RELEASED_ONLY, configured, configured_names, sample_seed

    corrupt = params.get("corrupt") or {}
    names = [n for n in configured_names(params) if n not in RELEASED_ONLY]
    if not names:
        raise DataError("corrupt.suites lists no distortion that can be generated for the IQA set.",
                        "add one (e.g. the deepcorrect suite) or score a database with iqa.source: tid2013 | livemd | csv.")
    crops = reference_crops(p.images, p.crop)
    references = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    jobs = []
    for name in tqdm(names, desc="iqa set", unit="distortion", disable=None):
        distortion = configured(name, (params.get("distortions") or {}).get(name), p.crop, corrupt.get("constants", "auto"))
        for level in range(1, distortion.levels + 1):
            made = [distortion(crop, level, np.random.default_rng(sample_seed(int(corrupt.get("seed", 0)), name, level, f"iqa-{i}")))
                    for i, crop in enumerate(crops)]
            jobs.append((name, level, torch.from_numpy(np.stack(made)).permute(0, 3, 1, 2).float() / 255.0))
    n_images = len(crops)
    total = n_images * len(jobs)

    def batch_iter() -> Any:
        offset = 0
        for _, _, distorted in jobs:
            for start in range(0, n_images, p.batch_size):
                stop = min(start + p.batch_size, n_images)
                yield list(range(offset + start, offset + stop)), references[start:stop], distorted[start:stop]
            offset += n_images

    scores, seconds = _score_batches(batch_iter(), total, model, settings, "iqa pipeline")
    count = patch_count(p.crop, p.crop, settings.scale)
    return ScoredSet("pipeline", scores, np.repeat([float(level) for _, level, _ in jobs], n_images),
                     np.repeat([name for name, _, _ in jobs], n_images), np.tile(np.arange(n_images), len(jobs)), False, seconds,
                     {"min": count, "max": count})


def summarise(scored: ScoredSet, p: IQAParams, settings: IndexSettings) -> dict[str, Any]:
    """``metrics/iqa/summary.json``: per index the four metrics pooled and per type, the
    headline SROCC with its bootstrap interval and the paired ``gradient - unique`` difference."""
    pipeline = scored.name == "pipeline"
    hib = scored.higher_is_better
    overall = {name: scoring.agreement(values, scored.subjective, hib) for name, values in scored.scores.items()}
    per_type = {kind: {name: scoring.agreement(values[scored.kinds == kind], scored.subjective[scored.kinds == kind], hib)
                       for name, values in scored.scores.items()} for kind in dict.fromkeys(scored.kinds.tolist())}
    statistic = scoring.mean_within_type if pipeline else (lambda x, y, _k, h: scoring.srocc(x, y, h))
    values = {name: statistic(v, scored.subjective, scored.kinds, hib) for name, v in scored.scores.items()}
    resampled = (scoring.bootstrap(scored.scores, scored.subjective, scored.kinds, scored.groups, hib, statistic, p.bootstrap, p.bootstrap_seed)
                 if p.bootstrap else None)
    headline = {name: scoring.with_interval(values[name], resampled[name] if resampled else None) for name in scored.scores}
    difference = (scoring.paired_difference(resampled["gradient"], resampled["unique"], values["gradient"] - values["unique"])
                  if resampled else {"value": values["gradient"] - values["unique"], "interval": None, "significant": None})
    return {
        "database": scored.name,
        "protocol": PIPELINE_PROTOCOL if pipeline else f"human opinion ({'MOS' if hib else 'DMOS, higher = worse; correlations sign-corrected'})",
        "headline": "mean within-type SROCC" if pipeline else "SROCC over all pairs",
        "fit": FIT,
        "pairs": int(len(scored.subjective)),
        "references": int(len(np.unique(scored.groups))),
        "types": list(per_type),
        "index_settings": settings.as_dict(),
        "patches_per_image": scored.patches,
        "bootstrap": {"resamples": p.bootstrap, "seed": p.bootstrap_seed, "over": "reference images"},
        "srocc": headline,
        "gradient_minus_unique": difference,
        "indices": overall,
        "per_type": per_type,
        "published": PUBLISHED,
    }


def run_from_params(params: dict[str, Any], autoencoder: str | Path, out: str | Path) -> dict[str, Any]:
    """The ``iqa`` stage: score ``iqa.source`` and write the summary JSON to ``out``."""
    from robust.gradient_features.iqa.train import load_autoencoder

    p = IQAParams.from_dict(params.get("iqa"))
    settings = p.index_settings()
    model = load_autoencoder(autoencoder)
    if p.source == "pipeline":
        scored = score_pipeline(params, p, model, settings)
    else:  # database images are large (TID2013 512 x 384, LIVE-MD 1280 x 720): at most 8 pairs per batch
        scored = score_database(read_database(str(p.root), p.source), model, settings, min(p.batch_size, 8))
    summary = summarise(scored, p, settings)
    write_json(Path(out), summary)  # no timings in the metrics file: the same params give the same file
    print("seconds per index: " + ", ".join(f"{name} {s}" for name, s in scored.seconds.items()))
    return summary


def score_root(root: str | Path, fmt: str, autoencoder: str | Path, *, scale: float | None = None, bootstrap: int = 0,
               batch_size: int = 16) -> dict[str, dict[str, Any]]:
    """``robust iqa``: ``{index: {srocc, krocc, plcc, rmse}}`` of the four indices on a database."""
    from robust.gradient_features.iqa.train import load_autoencoder

    if fmt not in FORMATS:
        raise ParamError(f"Unknown IQA database format {fmt!r}.", f"use one of: {', '.join(FORMATS)}.")
    p = IQAParams.from_dict({"source": fmt, "root": str(root), "bootstrap": bootstrap, "batch_size": batch_size,
                             "index": {} if scale is None else {"scale": scale}})
    settings = p.index_settings()
    summary = summarise(score_database(read_database(root, fmt), load_autoencoder(autoencoder), settings, batch_size), p, settings)
    return {name: {key: m[key] for key in ("srocc", "krocc", "plcc", "rmse")} for name, m in summary["indices"].items()}


__all__ = ["IQAParams", "Pair", "run_from_params", "score_root", "summarise"]
