"""What a pipeline reads from outside the repository, checked before any work.

A paper-scale experiment (``experiments/<name>/``) reads datasets, released corrupted sets and
weights files from the paths its ``params.yaml`` names. Its first stage, ``inputs``, runs
:func:`check_inputs`: every input is checked (folder layout, index files, weights in the torch
hub cache) without decoding an image, and every missing one is reported, one line each, so a
machine without the data stops before an hour of work is spent on the inputs that are there.

Checked, where the params name them: ``data.root`` (the source's own layout, by building the
source), ``corrupt.root`` with ``corrupt.source: released`` (each listed corruption's folder or
file), every ``models:`` / ``study_models:`` entry's ``pretrained`` weights (a file, or
torchvision's file in ``$TORCH_HOME/hub/checkpoints``) and ``start`` when it points outside the
project, ``iqa.root`` (TID2013 / LIVE-MD / CSV index) and ``iqa.autoencoder.patches_root``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robust.errors import RobustError

#: relative ``start`` paths under these folders are made by the pipeline itself
MADE = ("data/", "metrics/")


@dataclass(frozen=True)
class Input:
    """One path the params name: which parameter, the path, what must be there."""

    param: str
    path: str
    what: str
    problem: str | None = None  # None: present

    def line(self) -> str:
        return f"{self.param} = {self.path}: {self.problem}"


def _check(param: str, path: Any, what: str, test: Any) -> Input:
    try:
        test()
    except RobustError as exc:
        return Input(param, str(path), what, str(exc))
    return Input(param, str(path), what)


def _data(params: dict[str, Any]) -> list[Input]:
    from robust.data.sources import create_source
    from robust.params import DataParams

    data = DataParams.from_dict(params.get("data"))
    if data.source == "builtin":
        return []
    return [_check("data.root", data.root, f"the {data.source} dataset in its own layout", lambda: create_source(data).classes)]


def _released(params: dict[str, Any]) -> list[Input]:
    """Each listed corruption's released files at every level (and CIFAR-C's labels, CURE-TSR's
    training-distortion train / val folders), as the readers in robust/distortions/released.py
    look for them."""
    corrupt = params.get("corrupt") or {}
    if corrupt.get("source") != "released":
        return []
    from robust.distortions import CURE_TSR
    from robust.distortions.released import CIFAR_LABELS, LAYOUTS, LEVELS, SETS, cure_tsr_root, level_path

    source = (params.get("data") or {}).get("source", "builtin")
    root = Path(str(corrupt.get("root")))
    layout, name_of_set = LAYOUTS.get(source, "imagenet-c"), SETS.get(source, "the released set")
    names = [n for suite, listed in (corrupt.get("suites") or {}).items() if suite not in ("deepcorrect", "restoration") for n in listed or []]
    if layout == "cure-tsr":
        names = [n for n in names if n in CURE_TSR]  # the reader refuses the others with its own error
    fix = f"Fix: point corrupt.root at the {name_of_set} folder"
    if not root.is_dir():
        return [Input("corrupt.root", str(root), name_of_set, f"the folder does not exist. {fix}.")]
    needed: dict[Path, str] = {root / CIFAR_LABELS: "the labels file"} if layout == "cifar-c" else {}  # path -> what (CIFAR-C: one file per corruption)
    for name in names:
        for level in range(1, LEVELS + 1):
            needed.setdefault(level_path(layout, root, name, level), name if layout == "cifar-c" else f"{name} level {level}")
    training = (params.get("gradients") or {}).get("train_distortion")
    if layout == "cure-tsr" and training in names:  # the detectors train on its own train / val folders
        level = int((params.get("gradients") or {}).get("train_level", 1))
        needed.update({level_path(layout, root, training, level, split): f"{training} level {level} ({split})" for split in ("train", "val")})
    root = cure_tsr_root(root) if layout == "cure-tsr" else root
    return [Input("corrupt.root", str(path), f"{name_of_set}: {what}", None if path.exists() else f"missing ({what}). {fix} (holding {path.relative_to(root)}).")
            for path, what in needed.items()]


def _weights(params: dict[str, Any]) -> list[Input]:
    from robust.methods.common import MODEL_SECTIONS, model_entries
    from robust.models.registry import weights_file

    entries = model_entries(params)  # both sections: an entry's base may be in the other one
    found: list[Input] = []
    for section in MODEL_SECTIONS:
        for name, spec in (params.get(section) or {}).items():
            if not isinstance(spec, dict):
                continue
            if spec.get("pretrained"):
                arch, pretrained = _arch(entries, spec), str(spec["pretrained"])
                shown = pretrained if pretrained != "torchvision" else f"torchvision weights of {arch}"
                found.append(_check(f"{section}.{name}.pretrained", shown, f"{arch} weights", lambda a=arch, p=pretrained: weights_file(a, p)))
            start = str(spec.get("start") or "")
            if start and not start.startswith(MADE):
                path = Path(start)
                found.append(Input(f"{section}.{name}.start", start, "the file this run starts from",
                                   None if path.exists() else "not found. Fix: give an existing file, or a data/ path a stage makes."))
    return found


def _arch(entries: dict[str, dict[str, Any]], spec: dict[str, Any]) -> str:
    """The architecture ``pretrained`` weights are for, as the readers resolve it: the entry's
    own ``arch`` (a baseline's build), else its ``base`` entry's (seed 003's runs:
    robust.methods.corruption.start_weights)."""
    arch = spec.get("arch") or (entries.get(spec.get("base")) or {}).get("arch")
    return str(arch) if arch else "?"


def _iqa(params: dict[str, Any]) -> list[Input]:
    iqa = params.get("iqa") or {}
    found = []
    if iqa.get("source") in ("tid2013", "livemd", "csv"):
        from robust.gradient_features.iqa.databases import read_database

        found.append(_check("iqa.root", iqa.get("root"), f"the {iqa['source']} database", lambda: read_database(str(iqa.get("root")), iqa["source"])))
    patches = (iqa.get("autoencoder") or {}).get("patches_root")
    if patches:
        from robust.gradient_features.iqa.train import image_files

        ok = Path(patches).is_dir() and bool(image_files(Path(patches)))
        found.append(Input("iqa.autoencoder.patches_root", str(patches), "a folder of natural images",
                           None if ok else "no image folder there. Fix: give a folder of natural images, or null for the builtin photographs."))
    return found


def check_inputs(params: dict[str, Any]) -> list[Input]:
    """Every outside input the params name, each with its problem (``None`` when present)."""
    return [*_data(params), *_released(params), *_weights(params), *_iqa(params)]


def inputs_from_params(params: dict[str, Any], out: str | Path) -> None:
    """The ``inputs`` stage: check every input; on any missing one print each (one line per
    input) and raise, writing nothing; else write ``out`` (the inputs found, no sizes or
    times, so its hash changes only when the params name other inputs)."""
    import sys

    from robust.data.shards import write_json

    found = check_inputs(params)
    missing = [i for i in found if i.problem]
    for item in missing:
        print(f"error: missing input {item.line()}", file=sys.stderr)
    if missing:
        raise RobustError(f"{len(missing)} of {len(found)} inputs are missing (listed above); nothing was run.",
                          "put each dataset and weights file where its parameter says, or edit the parameter, then rerun.")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(out), {"inputs": [{"param": i.param, "path": i.path, "what": i.what} for i in found]})
