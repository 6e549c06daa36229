"""Evaluation throughput: the whole evaluation path (shard reading, PNG decoding, batching,
host-to-device copy, forward, top-k) against the forward pass alone on the same batches
already on the device, measured in the same run; prints images/s and the ratio.

Target: ratio >= 0.8 on a GPU (data loading must not be the bottleneck there). On a CPU the
forward pass and the decoding share the same cores, so the ratio says how much of the
evaluation time is the model's.

    python benchmarks/evaluation.py [--model resnet18] [--folder data/shards/clean/test] [--batch-size 500] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from robust.data.loader import make_loader
from robust.data.shards import read_info
from robust.engine import evaluate, pick_device
from robust.models import create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--width", type=float, default=None, help="width option for deepcorrect_net / alexnet_small")
    parser.add_argument("--folder", default="data/shards/clean/test")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    info = read_info(args.folder)
    device = pick_device(args.device)
    options = {"width": args.width} if args.width is not None else {}
    model = create(args.model, info["num_classes"], image_size=info["image_size"], **options).to(device).eval()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    batches = [images.to(device) for images, _ in make_loader(args.folder, args.batch_size)]
    n = sum(len(b) for b in batches)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad(), autocast:  # warm-up (cuDNN autotune, allocator)
        model(batches[0])
    evaluate(model, args.folder, batch_size=args.batch_size, workers=args.workers, device=device, desc=False)

    forward, full = [], []
    for _ in range(args.repeats):
        sync()
        start = time.perf_counter()
        with torch.no_grad(), autocast:
            for batch in batches:
                model(batch)
        sync()
        forward.append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        evaluate(model, args.folder, batch_size=args.batch_size, workers=args.workers, device=device, desc=False)
        sync()
        full.append(n / (time.perf_counter() - start))
    f, e = max(forward), max(full)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; model {args.model}; {n} images of {info['image_size']} px; batch {args.batch_size}; {args.workers} loader workers")
    print(f"forward pass alone: {f:,.0f} img/s")
    print(f"whole evaluation path: {e:,.0f} img/s")
    print(f"ratio (evaluation / forward): {e / f:.2f} (target >= 0.8 on a GPU)")


if __name__ == "__main__":
    main()
