"""Stage ``iqa`` and ``robust iqa``: the four indices scored on one IQA set.

``iqa.source``:

* ``pipeline`` (the default): no human scores exist for the builtin data, so the set is built
  from the first ``iqa.images`` clean test images and their copies in every built distorted
  test set of ``corrupt.suites`` (every distortion x level). The "subjective" score is the
  distortion LEVEL (higher = worse), and an index is scored by its rank agreement with it
  within each distortion type (``mean_within_type_srocc``, the headline) and pooled. This is
  agreement with distortion strength, not with human opinion, and the summary says so.
* ``tid2013`` | ``livemd`` | ``csv`` at ``iqa.root``: a real database
  (:mod:`robust.iqa.databases`); the headline is the pooled SROCC, as the field reports it.

``index.scale: auto`` is the original's 0.5 on a real database and 1 on the pipeline's small
shards (32 px halved would leave four 8 x 8 patches per image).
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
from robust.iqa import scoring
from robust.iqa.autoencoder import SparseAutoencoder
from robust.iqa.databases import FORMATS, Database, Pair, batches, read_database
from robust.iqa.indices import INDICES, IndexSettings
from robust.params import Section, is_int, require

SOURCES = ("pipeline", *FORMATS)

#: seed 001's published SROCC / PLCC (Kwon et al. 2019, Table 1; UNIQUE's from the same table)
PUBLISHED = {"tid2013": {"gradient": {"srocc": 0.865}, "unique": {"srocc": 0.860, "plcc": 0.870}},
             "livemd": {"gradient": {"srocc": 0.887}, "unique": {"srocc": 0.867, "plcc": 0.897}}}
PIPELINE_PROTOCOL = "agreement with distortion strength (the level), not with human opinion"
FIT = "PLCC and RMSE after a 5-parameter logistic fit (scipy curve_fit) of the subjective score on the index"


@dataclass(frozen=True)
class IQAParams(Section):
    """The ``iqa:`` section (``autoencoder:`` is read by :mod:`robust.iqa.train`)."""

    source: str = "pipeline"          # pipeline | tid2013 | livemd | csv
    root: str | None = None           # the database folder (the CSV file for csv)
    images: int = 100                 # pipeline: clean test images (each with every distortion x level)
    batch_size: int = 64              # pairs per batch
    bootstrap: int = 200              # resamples of the reference images for the intervals (0: none)
    bootstrap_seed: int = 0
    index: dict[str, Any] = field(default_factory=dict)        # IndexSettings keys; scale: auto | a number
    autoencoder: dict[str, Any] = field(default_factory=dict)  # robust.iqa.train.AutoencoderParams

    section: ClassVar[str] = "iqa"

    def validate(self, section: str = "iqa") -> None:
        require(self.source in SOURCES, f"{section}.source", self.source, " | ".join(SOURCES))
        if self.source != "pipeline":
            require(isinstance(self.root, str) and bool(self.root), f"{section}.root", self.root, f"the path of the {self.source} database")
        for name, minimum in (("images", 1), ("batch_size", 1), ("bootstrap", 0), ("bootstrap_seed", 0)):
            value = getattr(self, name)
            require(is_int(value) and value >= minimum, f"{section}.{name}", value, f"an integer >= {minimum}")
        require(isinstance(self.index, dict), f"{section}.index", self.index, "a mapping")
        self.index_settings()

    def index_settings(self) -> IndexSettings:
        values = dict(self.index)
        if values.get("scale", "auto") == "auto":
            values["scale"] = 1.0 if self.source == "pipeline" else 0.5
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
    skipped: list[str] = field(default_factory=list)  # pipeline: test sets not paired with the clean images by key


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
    scores, seconds = _score_batches(batches(db.pairs, batch_size), len(db.pairs), model, settings, f"iqa {db.name}")
    return ScoredSet(db.name, scores, np.array([p.score for p in db.pairs]), np.array([p.kind for p in db.pairs]),
                     np.array([p.group for p in db.pairs]), db.higher_is_better, seconds)


def _first_images(folder: Path, count: int) -> tuple[torch.Tensor, list[str]]:
    """The first ``count`` images of a shard folder and their keys."""
    from robust.data.loader import make_loader

    images, keys = [], []
    for batch, _, batch_keys in make_loader(folder, min(count, 256), with_keys=True):
        images.append(batch)
        keys += list(batch_keys)
        if len(keys) >= count:
            break
    return torch.cat(images)[:count], keys[:count]


def score_pipeline(params: dict[str, Any], p: IQAParams, clean: Path, corrupt_root: Path, model: SparseAutoencoder,
                   settings: IndexSettings) -> ScoredSet:
    """The default set (module doc): clean test images x every built distortion x level."""
    from robust.distortions import built_test_sets

    sets = built_test_sets(params, corrupt_root)
    if not sets:
        raise DataError(f"No distorted test set under {corrupt_root} for the IQA set.", "build the corrupt stages first (dvc repro), or set iqa.source to a database.")
    references, keys = _first_images(clean / "test", p.images)
    n_images = len(references)
    jobs, skipped = [], []
    for name, level in sets:
        folder = corrupt_root / name / str(level) / "test"
        distorted, distorted_keys = _first_images(folder, n_images)
        if distorted_keys != keys or distorted.shape != references.shape:  # released sets (CURE-TSR, ImageNet-C) keep their own keys
            skipped.append(f"{name}/{level}")
            continue
        jobs.append((name, level, distorted))
    if skipped:
        print(f"iqa: {len(skipped)} test sets are not distorted copies of the clean test images (other keys or sizes) and are left out: "
              + ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    if not jobs:
        raise DataError(f"No test set under {corrupt_root} pairs with the clean test images by key (released sets keep their own keys), "
                        "so there is no full-reference pair to score.",
                        "add a generated suite (corrupt.suites, e.g. deepcorrect) or score a database with iqa.source: tid2013 | livemd | csv.")
    total = n_images * len(jobs)

    def batch_iter() -> Any:
        offset = 0
        for _, _, distorted in jobs:
            for start in range(0, n_images, p.batch_size):
                stop = min(start + p.batch_size, n_images)
                yield list(range(offset + start, offset + stop)), references[start:stop], distorted[start:stop]
            offset += n_images

    scores, seconds = _score_batches(batch_iter(), total, model, settings, "iqa pipeline")
    return ScoredSet("pipeline", scores, np.repeat([float(level) for _, level, _ in jobs], n_images),
                     np.repeat([name for name, _, _ in jobs], n_images), np.tile(np.arange(n_images), len(jobs)), False, seconds, skipped)


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
        "skipped_unpaired_sets": scored.skipped,
        "bootstrap": {"resamples": p.bootstrap, "seed": p.bootstrap_seed, "over": "reference images"},
        "srocc": headline,
        "gradient_minus_unique": difference,
        "indices": overall,
        "per_type": per_type,
        "published": PUBLISHED,
    }


def run_from_params(params: dict[str, Any], clean: str | Path, corrupt_root: str | Path, autoencoder: str | Path, out: str | Path) -> dict[str, Any]:
    """The ``iqa`` stage: score ``iqa.source`` and write the summary JSON to ``out``."""
    from robust.iqa.train import load_autoencoder

    p = IQAParams.from_dict(params.get("iqa"))
    settings = p.index_settings()
    model = load_autoencoder(autoencoder)
    if p.source == "pipeline":
        scored = score_pipeline(params, p, Path(clean), Path(corrupt_root), model, settings)
    else:  # database images are large (TID2013 512 x 384, LIVE-MD 1280 x 720): at most 8 pairs per batch
        scored = score_database(read_database(str(p.root), p.source), model, settings, min(p.batch_size, 8))
    summary = summarise(scored, p, settings)
    write_json(Path(out), summary)  # no timings in the metrics file: the same params give the same file
    print("seconds per index: " + ", ".join(f"{name} {s}" for name, s in scored.seconds.items()))
    return summary


def score_root(root: str | Path, fmt: str, autoencoder: str | Path, *, scale: float | None = None, bootstrap: int = 0,
               batch_size: int = 16) -> dict[str, dict[str, Any]]:
    """``robust iqa``: ``{index: {srocc, krocc, plcc, rmse}}`` of the four indices on a database."""
    from robust.iqa.train import load_autoencoder

    if fmt not in FORMATS:
        raise ParamError(f"Unknown IQA database format {fmt!r}.", f"use one of: {', '.join(FORMATS)}.")
    p = IQAParams.from_dict({"source": fmt, "root": str(root), "bootstrap": bootstrap, "batch_size": batch_size,
                             "index": {} if scale is None else {"scale": scale}})
    settings = p.index_settings()
    summary = summarise(score_database(read_database(root, fmt), load_autoencoder(autoencoder), settings, batch_size), p, settings)
    return {name: {key: m[key] for key in ("srocc", "krocc", "plcc", "rmse")} for name, m in summary["indices"].items()}


__all__ = ["IQAParams", "Pair", "run_from_params", "score_root", "summarise"]
