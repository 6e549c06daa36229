"""DeepCorrect ranking cost: swapped filters batched into one forward pass against one
filter per forward pass, on the same cached activations in the same run; prints the time
per layer and the ratio.

Uses the pipeline's activation cache and ranked network when they exist (``dvc repro
activations@deepcorrect_net``), else a freshly initialised ``deepcorrect_net`` on random images. Target in
issue 5: ratio >= 10 on the 2-core CPU.

    python benchmarks/ranking.py [--layer 1] [--per-pass 1 4 8 24] [--batch-size 120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from robust.methods import deepcorrect as dc
from robust.models import create

CACHE = Path("data/deepcorrect/deepcorrect_net/activations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", type=int, default=1)
    parser.add_argument("--per-pass", type=int, nargs="+", default=[1, 4, 8, 24])
    parser.add_argument("--batch-size", type=int, default=120, help="ranking images per forward pass")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if (CACHE / "info.json").is_file():
        from robust.methods.common import load_trained
        from robust.params import load_params

        info = json.loads((CACHE / "info.json").read_text())
        model = load_trained(load_params("params.yaml")["models"][info["base"]], "data/shards/clean", info["base_weights"])
        clean = dc.load_activations(CACHE, args.layer, "clean")
        distorted = dc.load_activations(CACHE, args.layer, next(f"{d}-3" for d in info["distortions"]))
        labels = torch.from_numpy(np.load(CACHE / "labels.npy"))
        source = f"pipeline cache ({info['base']}, {len(labels)} images)"
    else:
        torch.manual_seed(0)
        model = create("deepcorrect_net", 12, width=0.25)
        images = torch.rand(120, 3, 32, 32)
        clean = dc.layer_outputs(model, images, args.layer)[-1]
        distorted = dc.layer_outputs(model, (images + 0.2 * torch.randn_like(images)).clamp(0, 1), args.layer)[-1]
        labels = torch.randint(0, 12, (120,))
        source = "random deepcorrect_net on random images"
    model.eval()
    channels = clean.shape[1]
    masks = torch.eye(channels, dtype=torch.bool)
    print(f"ranking layer {args.layer} ({channels} filters, one level) with {source}; torch threads {torch.get_num_threads()}")
    times = {}
    reference = None
    for per_pass in args.per_pass:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            errors = dc.variant_errors(model, args.layer, clean, distorted, labels, masks, per_pass=per_pass, batch_size=args.batch_size)
            best = min(best, time.perf_counter() - start)
        reference = errors if reference is None else reference
        assert torch.equal(errors, reference), "batched and one-at-a-time swaps must give the same errors"
        times[per_pass] = best
        print(f"  {per_pass:3d} filter(s) per pass: {best:.3f} s  ({channels * len(labels) / best:,.0f} swapped images/s)")
    one = times[min(times)]
    for per_pass, seconds in times.items():
        print(f"  ratio one-filter / {per_pass}-per-pass: {one / seconds:.2f}x")


if __name__ == "__main__":
    main()
