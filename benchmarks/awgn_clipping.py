"""How much storing DeepCorrect's AWGN as clipped uint8 changes the numbers.

Seed 000 adds Gaussian noise to the float image and feeds it unclipped; the shards store
uint8, so ``dc_awgn`` is rounded and clipped to [0, 255]. This regenerates each test sample's
noise from its recorded seed (the same draw the corrupt stage made), and scores the trained
models on the stored (clipped) images and on the unclipped float images, per level, in the
same run. Prints top-1 (percent) both ways and the difference, and the seed's average over
clean + 6 levels. Run after ``dvc repro``:

    python benchmarks/awgn_clipping.py [--models deepcorrect_net finetune-dc_awgn deepcorrect-dc_awgn]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from robust import distortions as D
from robust.engine import inference_model
from robust.methods import load_model
from robust.params import load_params

from constants import load_test_set, top1  # benchmarks/constants.py (run from the repository root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["deepcorrect_net", "finetune-dc_awgn", "deepcorrect-dc_awgn"])
    parser.add_argument("--clean", type=Path, default=Path("data/shards/clean"))
    parser.add_argument("--corrupt", type=Path, default=Path("data/shards/corrupt"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args()

    params = load_params("params.yaml")
    seed = int(params["corrupt"]["seed"])
    test = args.clean / "test"
    images, labels, keys = load_test_set(test)
    awgn = D.configured("dc_awgn", (params.get("distortions") or {}).get("dc_awgn"), images.shape[1])
    print(f"dc_awgn sigmas (0-255): {list(awgn.table)}; {len(images)} test images")
    for model in args.models:
        net, _ = load_model(params, model, args.clean, args.models_dir / model / "model.pt")
        net = inference_model(net, torch.device("cpu"))
        clean = top1(net, images, labels)
        rows = []
        for level, sigma in enumerate(awgn.table, start=1):
            noise = np.stack([np.random.default_rng(D.sample_seed(seed, "dc_awgn", level, key)).normal(0.0, sigma, size=images.shape[1:]) for key in keys])
            stored = np.load(args.corrupt / "dc_awgn" / str(level) / "test" / "images.npy")
            # the regenerated noise is the stage's: rounding and clipping it gives the stored pixels
            assert np.array_equal(stored, np.clip(np.round(images + noise), 0, 255).astype(np.uint8)), "regenerated noise differs from the shards"
            rows.append((level, top1(net, stored, labels), top1(net, images + noise, labels)))
        print(f"\n{model} (clean {clean * 100:.1f} %)")
        print(f"{'level':>5} {'clipped uint8':>14} {'unclipped float':>16} {'difference':>11}")
        for level, a, b in rows:
            print(f"{level:>5} {a * 100:>14.1f} {b * 100:>16.1f} {(b - a) * 100:>+11.1f}")
        avg_a = (clean + sum(r[1] for r in rows)) / (1 + len(rows))
        avg_b = (clean + sum(r[2] for r in rows)) / (1 + len(rows))
        print(f"seed's average (clean + {len(rows)} levels): clipped {avg_a:.4f}, unclipped {avg_b:.4f}, difference {avg_b - avg_a:+.4f}")


if __name__ == "__main__":
    main()
