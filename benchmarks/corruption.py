"""Cost of seed 003's corrupted training images (robust/methods/corruption.py), in one run:

* each of the 19 corruptions per image (ms, the dataset's constants, after a warm-up call:
  glass blur compiles with numba once per process);
* building the corrupted copy of the training split in this process (``workers: 0``) and in
  ``--workers`` forked processes (images/s, the ratio, and whether both give the same bytes);
* against one SGD step of the training batch on ``--model`` (its forward + backward), the
  share a training loop would wait if it corrupted each batch on the fly in its own process.

    python benchmarks/corruption.py [--images 2000] [--workers 2] [--model resnet_small]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robust.data.loader import read_samples
from robust.methods import context
from robust.methods.common import build, configured_distortion
from robust.methods.corruption import CorruptionSettings, corrupt_images, training_corruptions
from robust.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="training images corrupted per timing")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="resnet_small", help="a baseline models: entry, for the SGD step it is compared with")
    args = parser.parse_args()
    params = load_params("params.yaml")
    clean = Path("data/shards/clean")
    keys, images, labels = read_samples(clean / "train")
    keys, images = keys[: args.images], images[: args.images]
    ctx, _ = context(params, "resnet_c" if "resnet_c" in params["models"] else args.model, clean)
    settings = CorruptionSettings.from_dict({"data": "corrupted"})
    table = {name: configured_distortion(ctx, name) for name in training_corruptions(settings.protocol)}

    print(f"per corruption, ms per {images.shape[1]} px image (constants of the dataset):")
    rng = np.random.default_rng(0)
    costs = {}
    for name, distortion in table.items():
        distortion(images[0], 1, rng)  # warm-up (numba compiles glass blur)
        start = time.perf_counter()
        for i, image in enumerate(images[:200]):
            distortion(image, 1 + i % 5, rng)
        costs[name] = (time.perf_counter() - start) / min(200, len(images)) * 1000
        print(f"  {name:18s} {costs[name]:6.2f}")
    mean = sum(costs.values()) / len(costs)
    print(f"  mean over the 19   {mean:6.2f}")

    timings = {}
    outputs = {}
    for workers in (0, args.workers):
        start = time.perf_counter()
        outputs[workers] = corrupt_images(images, keys, 0, table, workers=workers)
        timings[workers] = time.perf_counter() - start
        print(f"corrupted copy of {len(images)} images, workers {workers}: {timings[workers]:.2f} s ({len(images) / timings[workers]:,.0f} img/s; "
              "after the warm-up above: forked workers inherit the compiled glass blur)")
    print(f"workers {args.workers} / workers 0 speed: {timings[0] / timings[args.workers]:.2f}x; "
          f"identical bytes: {bool(np.array_equal(outputs[0], outputs[args.workers]))}")

    model = build(params["models"][args.model], clean)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    batch = torch.from_numpy(np.array(images[:128])).permute(0, 3, 1, 2).float().div(255)
    target = torch.from_numpy(labels[:128])
    for step in range(8):
        if step == 3:
            start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(batch), target).backward()
        optimizer.step()
    step_s = (time.perf_counter() - start) / 5
    corrupt_s = len(batch) * mean / 1000
    print(f"one SGD step of {args.model} on 128 images: {step_s * 1000:.0f} ms; corrupting those 128 on the fly: {corrupt_s * 1000:.0f} ms "
          f"({corrupt_s / step_s:.2f}x the step: a loop corrupting in its own process would spend {corrupt_s / (corrupt_s + step_s):.0%} waiting)")


if __name__ == "__main__":
    main()
