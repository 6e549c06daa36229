"""Speed of the four IQA indices on database-sized pairs: TID2013's 512 x 384 images (halved to
256 x 192 before patching, 768 patches per image, as the original), batched; prints pairs per
second per index, the time a 3,000-pair database (TID2013) would take, and the cost of the
gradient index relative to UNIQUE (the baseline it builds on) measured in the same run.

Uses the pipeline's trained autoencoder (``data/iqa/autoencoder``; run ``dvc repro
iqa-autoencoder`` first). Pairs: crops of the builtin dataset's colour photographs with
Gaussian noise. Target (issue 16): a 3,000-pair database in minutes on the 2-core CPU.

    python benchmarks/iqa.py [--pairs 32] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from robust.gradient_features.iqa.indices import INDICES, IndexSettings
from robust.gradient_features.iqa.train import load_autoencoder, natural_images


def pairs(count: int, height: int = 384, width: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    photos = [p for p in natural_images(None) if p.shape[0] >= height and p.shape[1] >= width] or natural_images(None)
    refs = []
    for k in range(count):
        photo = photos[k % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - height + 1), rng.integers(0, photo.shape[1] - width + 1)
        refs.append(torch.from_numpy(photo[top : top + height, left : left + width]).permute(2, 0, 1))
    reference = torch.stack(refs)
    return reference, (reference + 0.05 * torch.randn(reference.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    model = load_autoencoder("data/iqa/autoencoder")
    settings = IndexSettings(scale=0.5)
    reference, distorted = pairs(args.pairs)
    rates = {}
    for name, index in INDICES.items():
        start = time.perf_counter()
        for i in range(0, args.pairs, args.batch_size):
            index(reference[i : i + args.batch_size], distorted[i : i + args.batch_size], model, settings)
        rates[name] = args.pairs / (time.perf_counter() - start)
        print(f"{name:9s} {rates[name]:8.1f} pairs/s   3,000 pairs: {3000 / rates[name] / 60:5.1f} min")
    total = sum(3000 / r for r in rates.values()) / 60
    print(f"all four on 3,000 pairs (TID2013): {total:.1f} min (image decoding not included)")
    print(f"gradient / unique time per pair: {rates['unique'] / rates['gradient']:.2f}x")


if __name__ == "__main__":
    main()
