"""Training-side speed, in the same run: reading a shard folder through the decoded copy
against decoding the tars, and one SGD step (forward + backward) in NCHW against
channels_last on this CPU.

The decoded copy is what the pipeline uses (bit-identical batches); channels_last training on
the CPU is measured here but not enabled, because it changes the rounding of every trained
weight (see README, "Time budget").

    python benchmarks/training.py [--folder data/shards/clean/train] [--batch-size 128] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from robust.data.loader import ShardDataset, make_loader
from robust.data.shards import read_info
from robust.models import create


def read_rate(loader, n: int) -> float:
    start = time.perf_counter()
    seen = sum(len(labels) for _, labels in loader)
    assert seen == n
    return n / (time.perf_counter() - start)


def step_rate(arch: str, classes: int, size: int, batch: torch.Tensor, labels: torch.Tensor, steps: int, channels_last: bool) -> float:
    torch.manual_seed(0)
    model = create(arch, classes, image_size=size, width=0.25).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(model(batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up (oneDNN primitives)
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(labels) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="data/shards/clean/train")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    info = read_info(args.folder)
    n = info["num_samples"]

    decoded = make_loader(args.folder, args.batch_size, train=True, seed=0)
    tars = DataLoader(ShardDataset(args.folder, shuffle=True, seed=0), batch_size=args.batch_size, num_workers=0)
    fast, slow = read_rate(decoded, n), read_rate(tars, n)
    print(f"reading {n} images of {info['image_size']} px ({type(decoded).__name__} vs PNG-decoding DataLoader, main process, shuffled):")
    print(f"  decoded copy {fast:,.0f} img/s, tars {slow:,.0f} img/s, ratio {fast / slow:.1f}x")

    images, labels = next(iter(make_loader(args.folder, args.batch_size, train=True, seed=0)))
    print(f"one SGD step, batch {len(labels)}, {torch.get_num_threads()} threads (forward + backward):")
    for arch in ("deepcorrect_net", "alexnet_small"):
        nchw = step_rate(arch, info["num_classes"], info["image_size"], images, labels, args.steps, channels_last=False)
        last = step_rate(arch, info["num_classes"], info["image_size"], images, labels, args.steps, channels_last=True)
        print(f"  {arch} (width 0.25): NCHW {nchw:,.0f} img/s, channels_last {last:,.0f} img/s, ratio {last / nchw:.2f}x")


if __name__ == "__main__":
    main()
