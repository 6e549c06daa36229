"""Benchmark strength per ImageNet-C constants table: the trained models' top-1 on the test
split corrupted with each table (``cifar``, ``tinyimagenet``, ``imagenet``), per corruption
(mean over the 5 severities), the mean over the 15 common corruptions, and the corruptions
at which every model is at chance (no signal, as the report defines it).

Same samples and seeds as the corrupt stages (``corrupt.seed``, per-sample seeds from
:func:`robust.distortions.sample_seed`), in memory instead of shards: PNG storage is
lossless, so the table the pipeline uses gives exactly the pipeline's numbers (a cross-check
with ``metrics/eval``). Run after ``dvc repro`` (it reads the clean test shards and the
trained weights):

    python benchmarks/constants.py [--models deepcorrect_net alexnet_small] [--tables cifar tinyimagenet imagenet]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from robust import distortions as D
from robust.data.shards import read_info, read_tar
from robust.engine import inference_model
from robust.methods import load_model
from robust.params import load_params
from robust.report.summary import at_chance, chance_band

_IMAGES: np.ndarray | None = None
_KEYS: list[str] = []


def _distort(job: tuple[str, str, int, int]) -> np.ndarray:
    """One (table, corruption, level) copy of the test images, with the corrupt stage's seeds."""
    table, name, level, seed = job
    assert _IMAGES is not None
    d = D.configured(name, None, _IMAGES.shape[1], constants=table)
    return np.stack([d(image, level, np.random.default_rng(D.sample_seed(seed, name, level, key))) for image, key in zip(_IMAGES, _KEYS)])


@torch.inference_mode()
def top1(net: torch.nn.Module, pixels: np.ndarray, labels: torch.Tensor, batch: int = 256) -> float:
    """Top-1 of NHWC images on the 0-255 scale (uint8, or float of any range)."""
    correct = 0
    for start in range(0, len(pixels), batch):
        images = torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch], dtype=np.float32)).permute(0, 3, 1, 2) / 255.0
        correct += int((net(images).argmax(1) == labels[start : start + batch]).sum())
    return correct / len(pixels)


def load_test_set(folder: Path) -> tuple[np.ndarray, torch.Tensor, list[str]]:
    """A test folder's decoded images, labels and sample keys (what the per-sample seeds hash)."""
    keys = [s["__key__"] for shard in read_info(folder)["shards"] for s in read_tar(folder / shard["name"])]
    return np.load(folder / "images.npy"), torch.from_numpy(np.load(folder / "labels.npy")).long(), keys


def main() -> None:
    global _IMAGES, _KEYS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["deepcorrect_net", "alexnet_small"])
    parser.add_argument("--tables", nargs="+", default=["cifar", "tinyimagenet", "imagenet"])
    parser.add_argument("--clean", type=Path, default=Path("data/shards/clean"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    params = load_params("params.yaml")
    seed = int(params["corrupt"]["seed"])
    test = args.clean / "test"
    _IMAGES, labels, _KEYS = load_test_set(test)
    info = read_info(test)
    band = chance_band(info["num_classes"], len(_IMAGES))
    nets = {}
    for model in args.models:
        net, _ = load_model(params, model, args.clean, args.models_dir / model / "model.pt")
        nets[model] = inference_model(net, torch.device("cpu"))
    clean = {m: top1(net, _IMAGES, labels) for m, net in nets.items()}
    print(f"{len(_IMAGES)} test images, {info['image_size']} px, {info['num_classes']} classes; chance band top-1 <= {band * 100:.1f} %")
    print("clean top-1: " + ", ".join(f"{m} {v * 100:.1f} %" for m, v in clean.items()))
    names = D.IMAGENET_C + D.IMAGENET_C_EXTRA
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for table in args.tables:
            start = time.perf_counter()
            jobs = [(table, name, level, seed) for name in names for level in range(1, 6)]
            per = results.setdefault(table, {m: {} for m in nets})
            for (_, name, level, _), pixels in zip(jobs, pool.imap(_distort, jobs)):
                for model, net in nets.items():
                    per[model].setdefault(name, []).append(top1(net, pixels, labels))
            print(f"\n== {table} constants ({time.perf_counter() - start:.0f} s) ==")
            print(f"{'corruption':<18}" + "".join(f"{m:>22}" for m in nets) + "   (mean top-1 over severities 1-5, %; sev. 1 / 5)")
            for name in names:
                cells = "".join(f"{np.mean(per[m][name]) * 100:10.1f} ({per[m][name][0] * 100:4.1f}/{per[m][name][-1] * 100:4.1f})" for m in nets)
                print(f"{name:<18}{cells}")
            common = {m: np.mean([np.mean(per[m][n]) for n in D.IMAGENET_C]) for m in nets}
            print("mean over the 15: " + ", ".join(f"{m} {v * 100:.1f} %" for m, v in common.items()))
            flat = [n for n in names if all(at_chance([(v, len(_IMAGES)) for v in per[m][n]], info["num_classes"]) for m in nets)]
            print(f"no signal (every model at chance over the 5 severities, as the report tests): {', '.join(flat) if flat else 'none'}")


if __name__ == "__main__":
    main()
