"""Corruption-augmented fine-tuning across architectures (seed 003: Tigranyan et al., "CS 182
Vision Project Report", Tiny ImageNet / Tiny-ImageNet-C).

Seed 003 fine-tunes ImageNet-pretrained SqueezeNet, ResNet, DenseNet and EfficientNet-B0..B4
twice: on clean images (``_b``) and on images that each carry ONE corruption drawn at random
(``_c``), and compares them by top-1 / top-5, mCE against AlexNet and a per-corruption CE
table. An entry of this method is one such run:

* ``data``: ``clean`` (``_b``) or ``corrupted`` (``_c``);
* ``protocol`` (``corrupted``): ``seed`` trains on the 19 ImageNet-C corruptions (the 15 that
  mCE averages + the 4 extra), as seed 003 did, i.e. on the corruptions it then tests on,
  which the ImageNet-C protocol forbids; ``held_out`` trains only on corruptions outside the
  15 (default: the 4 extra ones; ``corruptions`` gives another list, which may not hold one of
  the 15 nor a project distortion doing the same operation, :data:`SAME_AS_TESTED`), so the
  benchmark's corruptions stay unseen;
* the start: the ``start`` file's weights loaded into the ``base`` entry's architecture. On the
  CPU default that is the pipeline's own clean baseline of the architecture (trained first by
  its ``train@`` stage): no ImageNet weights exist offline. ``pretrained: <path>`` (or
  ``torchvision``: the local torch hub cache; never downloaded) starts from a local weights
  file instead; ``start`` must then name the same file, so DVC tracks it. Tensors that do not
  fit (a 1,000-class head) keep their initialisation and are listed in the log.

The corrupted training set is a fixed copy of the clean training split ("we corrupt tiny
imagenet to train on"): every image carries the corruption and severity drawn for its key
(:func:`draw`), at the dataset's constants (``corrupt.constants``, as the test sets), stored as
the test sets are (``corrupt.format``: a PNG copy is lossless, a JPEG one is re-encoded). It is
built in memory before the first epoch, so the training loop never waits on a corruption;
``workers`` > 0 builds it in that many processes (``benchmarks/corruption.py`` measures both).
The draw depends only on (``seed``, key), never on the order or the worker, so the set, and the
trained model, repeat byte for byte.

Training (``methods.corruption.train``): the seed's SGD lr 1e-3, momentum 0.9, constant, and its
augmentation (``augment: flip-rotate``: horizontal flip, rotation uniform in [-15, 15]
degrees); the upsampling to the network's input size is the base entry's ``input_size``
(224 for the seed's GPU runs; the CPU default runs at the stored 32 px). ``evaluate@`` scores
the clean test split and the 15 corruptions mCE averages (``benchmark: imagenet_c``, seed 003's
table; ``all`` adds every other built distortion).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA, SAME_OPERATION, Distortion, get, sample_seed
from robust.errors import ParamError
from robust.methods.common import Context, Run, base_spec, build, configured_distortion
from robust.models.registry import load_weights, weights_file
from robust.params import Section, is_int, require

PROTOCOLS = ("seed", "held_out")
#: the project's own distortions that apply the operation of one of the 15 mCE averages (JPEG
#: re-encoding, additive Gaussian noise): held_out refuses them as it refuses the 15 themselves
SAME_AS_TESTED = {name: same for name, same in SAME_OPERATION.items() if same in IMAGENET_C}
DATA = ("clean", "corrupted")
BENCHMARKS = ("imagenet_c", "all")


@dataclass(frozen=True)
class CorruptionSettings(Section):
    """``methods.corruption`` (+ an entry's overrides, at least ``data``)."""

    data: str = "clean"  # clean (_b) | corrupted (_c)
    protocol: str = "seed"  # seed (the 19) | held_out (none of the 15 mCE averages)
    corruptions: tuple[str, ...] | None = None  # the protocol's list instead of its default
    seed: int = 0  # the per-image draw of corruption and severity
    workers: int = 0  # processes building the corrupted copy (0: this process)
    pretrained: str | None = None  # a local weights file or torchvision (the local hub cache) to start from
    benchmark: str = "imagenet_c"  # the test sets evaluate@ scores: imagenet_c (clean + the 15) | all

    section: ClassVar[str] = "methods.corruption"
    tuple_fields: ClassVar[tuple[str, ...]] = ("corruptions",)

    def validate(self, section: str) -> None:
        require(self.data in DATA, f"{section}.data", self.data, " | ".join(DATA))
        require(self.protocol in PROTOCOLS, f"{section}.protocol", self.protocol, " | ".join(PROTOCOLS))
        require(is_int(self.seed) and self.seed >= 0, f"{section}.seed", self.seed, "an integer >= 0")
        require(is_int(self.workers) and self.workers >= 0, f"{section}.workers", self.workers, "an integer >= 0")
        require(self.benchmark in BENCHMARKS, f"{section}.benchmark", self.benchmark, " | ".join(BENCHMARKS))
        require(self.pretrained is None or (isinstance(self.pretrained, str) and self.pretrained), f"{section}.pretrained", self.pretrained,
                "null, a local weights file or torchvision")
        if self.data == "corrupted":
            training_corruptions(self.protocol, self.corruptions)


# -- the draw --------------------------------------------------------------------------------------
def training_corruptions(protocol: str, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The corruptions a ``protocol`` trains on: ``names`` when given, else its default list.
    ``held_out`` refuses any corruption that mCE averages."""
    if protocol not in PROTOCOLS:
        raise ParamError(f"protocol is {protocol!r}.", f"use one of: {' | '.join(PROTOCOLS)}.")
    chosen = tuple(names) if names is not None else (IMAGENET_C + IMAGENET_C_EXTRA if protocol == "seed" else IMAGENET_C_EXTRA)
    if not chosen:
        raise ParamError(f"The {protocol} protocol's corruption list is empty.", "give at least one corruption.")
    for name in chosen:
        get(name)  # an unknown name (or a released-only one, which cannot be generated) is one clear error
    seen = sorted({n if n in IMAGENET_C else f"{n} (= {SAME_AS_TESTED[n]})" for n in chosen if n in IMAGENET_C or n in SAME_AS_TESTED})
    if protocol == "held_out" and seen:
        raise ParamError(f"The held_out protocol would train on {', '.join(seen)}, which mCE averages.",
                         f"train on corruptions outside the 15 (e.g. {', '.join(IMAGENET_C_EXTRA)}) or use protocol seed.")
    return chosen


def draw(seed: int, key: str, names: Sequence[str], levels: int = 5) -> tuple[str, int]:
    """The one corruption (uniform over ``names``) and severity (uniform over 1..``levels``) of
    the training image ``key``."""
    rng = np.random.default_rng(sample_seed(seed, "corruption-mix", 0, key))
    return names[int(rng.integers(len(names)))], 1 + int(rng.integers(levels))


def corrupt(image: np.ndarray, seed: int, key: str, distortions: dict[str, Distortion]) -> tuple[np.ndarray, str, int]:
    """``image`` (uint8 HxWx3) with its drawn corruption applied (``distortions``: name ->
    the configured :class:`~robust.distortions.Distortion`, with the dataset's constants), and
    what was drawn. The corruption's own noise is seeded by the same key."""
    names = list(distortions)
    name, level = draw(seed, key, names, min(d.levels for d in distortions.values()))
    rng = np.random.default_rng(sample_seed(seed, name, level, key))
    return distortions[name](image, level, rng), name, level


# -- the corrupted copy of the training split ---------------------------------------------------------
_JOB: dict[str, Any] = {}


def _corrupt_chunk(indices: Sequence[int]) -> list[tuple[int, np.ndarray]]:
    job = _JOB
    return [(i, job["store"](corrupt(job["images"][i], job["seed"], job["keys"][i], job["distortions"])[0])) for i in indices]


def storage(fmt: str = "png", quality: int = 85) -> Callable[[np.ndarray], np.ndarray]:
    """What storing an image as the corrupt stages do does to it: nothing for PNG, a JPEG
    round trip at ``quality`` for ``jpg`` (ImageNet-C's own storage)."""
    if fmt == "png":
        return lambda image: image
    from robust.data.shards import decode_image, encode_image

    return lambda image: decode_image(encode_image(image, fmt, quality))


def corrupt_images(images: np.ndarray, keys: Sequence[str], seed: int, distortions: dict[str, Distortion],
                   store: Callable[[np.ndarray], np.ndarray] | None = None, workers: int = 0) -> np.ndarray:
    """Every image of ``images`` (uint8 ``(N, H, W, 3)``) with its drawn corruption (see
    :func:`corrupt`), stored through ``store``; ``workers`` processes (forked) or this one.
    The result does not depend on ``workers``."""
    out = np.empty_like(images)
    chunks = [range(start, min(start + 256, len(images))) for start in range(0, len(images), 256)]
    _JOB.update(images=images, keys=list(keys), seed=seed, distortions=distortions, store=store or (lambda image: image))
    bar = tqdm(total=len(images), desc="corrupting the training set", unit="img", disable=None)
    try:
        if workers:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for done in pool.imap_unordered(_corrupt_chunk, chunks):
                    for i, image in done:
                        out[i] = image
                    bar.update(len(done))
        else:
            for chunk in chunks:
                for i, image in _corrupt_chunk(chunk):
                    out[i] = image
                bar.update(len(chunk))
    finally:
        bar.close()
        _JOB.clear()
    return out


def corrupted_training_set(ctx: Context, settings: CorruptionSettings) -> Any:
    """A training loader over the clean training split's corrupted copy: the batches, order
    and shuffle of the clean split's own loader, with every image replaced by its corrupted
    version."""
    from robust.data.loader import DecodedLoader, ShardDataset, read_samples

    folder = ctx.clean_dir / "train"
    keys, images, labels = read_samples(folder)
    table = {name: configured_distortion(ctx, name) for name in training_corruptions(settings.protocol, settings.corruptions)}
    corrupt_section = ctx.params.get("corrupt") or {}
    pixels = corrupt_images(images, keys, settings.seed, table, storage(corrupt_section.get("format", "png"), corrupt_section.get("jpg_quality", 85)),
                            settings.workers)
    return DecodedLoader(ShardDataset(folder, shuffle=True, seed=ctx.train.seed), ctx.train.batch_size, (pixels, labels))


# -- the method ------------------------------------------------------------------------------------
def start_weights(ctx: Context, settings: CorruptionSettings) -> Path:
    """The file the run starts from: ``start`` (the base's trained weights), or the
    ``pretrained`` file, which ``start`` must then name too (DVC tracks ``start``)."""
    if settings.pretrained is None:
        return ctx.start
    arch = base_spec(ctx)[1].get("arch", "")
    path = weights_file(arch, settings.pretrained)
    if Path(ctx.spec["start"]).resolve() != path.resolve():
        raise ParamError(f"models.{ctx.name}.pretrained is {settings.pretrained} ({path}), but its start is {ctx.spec['start']}.",
                         f"set models.{ctx.name}.start: {path} so DVC reruns the run when the weights change.")
    return path


def setup(ctx: Context) -> Run:
    """The base architecture with the start weights (every tensor that fits), all of it trained;
    the corrupted copy of the training split for ``data: corrupted`` (built when training
    starts, not when an evaluation rebuilds the model)."""
    settings = CorruptionSettings.from_dict(ctx.settings, f"models.{ctx.name}")
    _, spec = base_spec(ctx)
    model = build({k: v for k, v in spec.items() if k != "pretrained"}, ctx.clean_dir)
    path = start_weights(ctx, settings)
    skipped = load_weights(model, path)
    if skipped and settings.pretrained is None:
        raise ParamError(f"models.{ctx.name}.start ({path}) does not fit models.{ctx.name}.base: {len(skipped)} tensors, e.g. {skipped[0]}.",
                         "start from the base entry's own model.pt, or give a foreign weights file as pretrained.")
    model.skipped_weights = skipped  # type: ignore[assignment]
    note = f"models.{ctx.name}: started from {path}" + (f"; {len(skipped)} tensors did not fit and keep their initialisation: {', '.join(skipped)}"
                                                         if skipped else "; every tensor fitted")
    data = (lambda: corrupted_training_set(ctx, settings)) if settings.data == "corrupted" else None
    return Run(model, list(model.parameters()), train_data=data, note=note)


def benchmark_distortions(settings: dict[str, Any], names: list[str]) -> list[str]:
    """``benchmark: imagenet_c`` (the default): the 15 corruptions mCE averages, seed 003's
    table; ``all``: every configured distortion."""
    return [n for n in names if n in IMAGENET_C] if settings.get("benchmark", "imagenet_c") == "imagenet_c" else names
