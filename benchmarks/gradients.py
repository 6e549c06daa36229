"""Per-sample gradient extraction of seed 001: batched (one forward, ``torch.func.vmap`` over
the layers' weight backward) against a batch-size-1 autograd loop, same images, same run; prints both
throughputs, the ratio, and the largest difference between the two (in float64, asserted <= 1e-5;
the float32 difference is printed too).

Uses the pipeline's trained VAE (``data/models/vae/model.pt``) and clean test images when
they exist, else a freshly initialised VAE on random images. Target in issue 13: ratio >= 20
on the 2-core CPU.

    python benchmarks/gradients.py [--images 4096] [--loop-images 256] [--batch-size 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from robust.gradient_features.features import loop_features, per_sample_features
from robust.models import create

WEIGHTS = Path("data/models/vae/model.pt")
TEST = Path("data/shards/clean/test")


def images(count: int) -> torch.Tensor:
    if (TEST / "info.json").is_file():
        from robust.data.loader import make_loader

        batches, seen = [], 0
        for batch, _ in make_loader(TEST, 256):
            batches.append(batch)
            seen += len(batch)
            if seen >= count:
                break
        data = torch.cat(batches)
        return data.repeat((-(-count // len(data)), 1, 1, 1))[:count]  # the test set repeated when it is smaller than count
    return torch.rand(count, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096, help="images for the batched path")
    parser.add_argument("--loop-images", type=int, default=256, help="images for the loop (its rate is per image, so fewer suffice)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create("vae", 10, image_size=32).eval()
    if WEIGHTS.is_file():
        from robust.models import load_weights

        load_weights(model, WEIGHTS)
    print(f"VAE: {'trained ' + str(WEIGHTS) if WEIGHTS.is_file() else 'random initialisation'}; images: {'clean test' if (TEST / 'info.json').is_file() else 'random'}; "
          f"torch threads {torch.get_num_threads()}")
    data = images(max(args.images, args.loop_images))

    def batched() -> None:
        for start in range(0, args.images, args.batch_size):
            per_sample_features(model, data[start:start + args.batch_size])

    batched()  # warm-up
    best_batched = min(_timed(batched) for _ in range(args.repeats))
    best_loop = min(_timed(lambda: loop_features(model, data[:args.loop_images])) for _ in range(args.repeats))
    rate_batched, rate_loop = args.images / best_batched, args.loop_images / best_loop
    print(f"batched: {rate_batched:,.0f} images/s ({args.images} images in {best_batched:.2f} s)")
    print(f"loop:    {rate_loop:,.0f} images/s ({args.loop_images} images in {best_loop:.2f} s)")
    print(f"ratio:   {rate_batched / rate_loop:.1f}x (target >= 20x)")

    check = data[:args.loop_images]
    fast, _, _ = per_sample_features(model, check)
    slow, _, _ = loop_features(model, check)
    print(f"float32: largest |batched - loop| {float((fast - slow).abs().max()):.2e} of gradients up to {float(slow.abs().max()):.3g} "
          "(the two sum in different orders: float32 rounding)")
    # the equality check in float64, where rounding cannot hide a real difference
    double = copy.deepcopy(model).double()
    fast, mu_fast, loss_fast = per_sample_features(double, check.double())
    slow, mu_slow, loss_slow = loop_features(double, check.double())
    worst = float((fast - slow).abs().max())
    print(f"float64: largest |batched - loop| gradient difference {worst:.2e} (mu {float((mu_fast - mu_slow).abs().max()):.2e}, "
          f"loss {float((loss_fast - loss_slow).abs().max()):.2e}); equal to 1e-5: {worst <= 1e-5}")
    assert worst <= 1e-5, f"batched gradients differ from the loop's by {worst}"


def _timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
