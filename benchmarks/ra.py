"""Cost of a recognition-aware processor at evaluation: the recogniser R alone against
``P -> R`` (seed 002's processor in front of it), both through the inference-optimised forward
(:func:`robust.engine.inference_model`), in the same run, on the same batch of 32 px images;
prints images/s per task and the slowdown ratio.

Uses the pipeline's trained ``ra-<task>-ra`` models when they exist (``dvc repro``), else the
params' settings with R's trained weights or a seeded random R (the cost does not depend on
the weights). ``sr`` includes its PIL downsampling of every image (the sensor), which keeps
that composition from being traced, so its batch norms are not folded.

    python benchmarks/ra.py [--tasks sr denoise jpeg] [--batch-size 128] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from robust.engine import inference_model
from robust.methods import context, load_model
from robust.methods.ra import build_model, settings_of
from robust.params import load_params


def throughput(net: torch.nn.Module, images: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(3):  # warm-up (the process's first passes also pay one-off kernel set-up)
            net(images)
        start = time.perf_counter()
        for _ in range(repeats):
            net(images)
        return repeats * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["sr", "denoise", "jpeg"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    params = load_params("params.yaml")
    clean = Path("data/shards/clean")
    images = torch.rand(args.batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, 32 px")
    print("| task | R alone (img/s) | P -> R (img/s) | slowdown | weights |")
    print("| --- | ---: | ---: | ---: | --- |")
    for task in args.tasks:
        name = f"ra-{task}-ra"
        weights = Path("data/models") / name / "model.pt"
        if name in (params.get("models") or {}) and weights.is_file():
            model, _ = load_model(params, name, clean, weights)
            source = "trained"
        else:
            params.setdefault("models", {})[name] = {"method": "ra", "start": "data/models/deepcorrect_net/model.pt", "base": "deepcorrect_net",
                                                     "task": task, "mode": "ra"}
            ctx, _ = context(params, name, clean)
            if ctx.start.is_file():
                model, source = build_model(ctx, settings_of(ctx)), "R trained, P random"
            else:
                from robust.models import create

                model, source = build_model(ctx, settings_of(ctx), create("deepcorrect_net", 12, width=0.25)), "random"
        alone = throughput(inference_model(model.recogniser), images, args.repeats)
        composed = throughput(inference_model(model), images, args.repeats)
        print(f"| {task} | {alone:,.0f} | {composed:,.0f} | {alone / composed:.2f}x | {source} |")


if __name__ == "__main__":
    main()
