"""Evaluation throughput: the whole evaluation path (reading the shard folder, batching,
host-to-device copy, the inference-optimised forward, top-k) against that optimised forward
pass alone on the same batches already on the device, in the same run; also the plain
forward (eval mode, NCHW, batch norm unfolded, as before this optimisation), and how many
top-1 decisions the optimisation flips. Prints images/s and the ratios.

Target: evaluation / optimised forward >= 0.9 on this 2-core CPU. The path reads the
folder's decoded copy (``images.npy``) when it has one, else decodes the tars.

    python benchmarks/evaluation.py [--model deepcorrect_net --width 0.25] [--weights data/models/deepcorrect_net/model.pt]
                                    [--folder data/shards/clean/test] [--batch-sizes 64 128 250 500]
"""

from __future__ import annotations

import argparse
import time

import torch

from robust.data.loader import make_loader
from robust.data.shards import read_info
from robust.engine import evaluate, inference_model, pick_device
from robust.models import create, load_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="deepcorrect_net")
    parser.add_argument("--width", type=float, default=0.25, help="width option for deepcorrect_net / alexnet_small (ignored by others)")
    parser.add_argument("--weights", default=None, help="a trained state dict (default: the seeded initial weights)")
    parser.add_argument("--folder", default="data/shards/clean/test")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 250, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    info = read_info(args.folder)
    device = pick_device(args.device)
    options = {"width": args.width} if args.model in ("deepcorrect_net", "alexnet_small") else {}
    torch.manual_seed(0)
    model = create(args.model, info["num_classes"], image_size=info["image_size"], **options)
    if args.weights:
        load_weights(model, args.weights)
    model = model.to(device).eval()
    fast = inference_model(model, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    reader = "decoded copy (images.npy)" if info.get("decoded") else "tars (PNG / JPEG decoding)"
    print(f"device: {name}; model {args.model} {options}; {info['num_samples']} images of {info['image_size']} px from the {reader}; "
          f"batch norm folded: {fast.folded}")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def best_rate(run, n: int) -> float:
        rates = []
        for _ in range(args.repeats):
            sync()
            start = time.perf_counter()
            run()
            sync()
            rates.append(n / (time.perf_counter() - start))
        return max(rates)

    print(f"{'batch':>6} {'plain fwd':>10} {'optimised fwd':>14} {'evaluation':>11} {'eval / opt':>11} {'opt / plain':>12}")
    for batch_size in args.batch_sizes:
        batches = [(images.to(device), labels.to(device)) for images, labels in make_loader(args.folder, batch_size)]
        n = sum(len(labels) for _, labels in batches)

        def forward(net: torch.nn.Module) -> None:
            with torch.inference_mode():
                for images, _ in batches:
                    net(images)

        forward(model), forward(fast)  # warm-up (oneDNN primitives, cuDNN autotune, allocator)
        evaluate(fast, args.folder, batch_size=batch_size, device=device, desc=False)
        plain = best_rate(lambda: forward(model), n)
        optimised = best_rate(lambda: forward(fast), n)
        full = best_rate(lambda: evaluate(fast, args.folder, batch_size=batch_size, device=device, desc=False), n)
        print(f"{batch_size:>6} {plain:>10,.0f} {optimised:>14,.0f} {full:>11,.0f} {full / optimised:>11.2f} {optimised / plain:>12.2f}")

    with torch.inference_mode():
        flips = sum(int((model(images).argmax(1) != fast(images).argmax(1)).sum()) for images, _ in batches)
        top1 = [sum(int((net(images).argmax(1) == labels).sum()) for images, labels in batches) / n for net in (model, fast)]
    print(f"top-1 plain {top1[0]:.4f}, optimised {top1[1]:.4f}; decisions flipped by the optimisation: {flips} of {n}")
    print("target: evaluation / optimised forward >= 0.9 on this CPU")


if __name__ == "__main__":
    main()
