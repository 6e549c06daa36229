"""Cost of DeepCorrect's correction units at evaluation: the inference-optimised forward of a
baseline against the same baseline with correction units, in the same run, on the same
batch; prints images/s and the ratio.

Uses a trained baseline and its pipeline ranking when they exist (``dvc repro``), else a
seeded random network and a random ranking (the cost does not depend on the weights).
Defaults: seed 000's AlexNet setting on ``alexnet_small`` (CW units, 5 layers, 75 / 75 / 50 /
50 / 50 %); ``--base deepcorrect_net --unit cifar --layers 3 --fractions 0.5`` for the CIFAR one.

    python benchmarks/correction.py [--base alexnet_small] [--unit cw] [--layers 5] [--fractions 0.75 0.75 0.5 0.5 0.5]
                                    [--kernels 5 3] [--unit-width 8] [--batch-size 128] [--repeats 5]

Both networks are scored through ``robust.engine.inference_model``, so the corrected one runs
its corrected layers' exact folded form (``CorrectedConv.inference_form``). The printed
multiply-add counts bound what any exact form can reach: the units' own convolutions stay.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from robust.engine import inference_model
from robust.methods import deepcorrect as dc
from robust.models import create, load_weights
from robust.models.correctable import layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="alexnet_small")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--unit", default="cw", choices=sorted(dc.UNITS))
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.75, 0.75, 0.5, 0.5, 0.5])
    parser.add_argument("--kernels", type=int, nargs="+", default=[5, 3])
    parser.add_argument("--unit-width", type=int, default=8, help="the cifar unit's width (params.yaml: methods.deepcorrect.unit_width)")
    parser.add_argument("--distortion", default="dc_blur", help="whose pipeline ranking is used, when it exists")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    def network() -> torch.nn.Module:
        torch.manual_seed(0)
        model = create(args.base, 12, image_size=32, width=args.width)
        weights = Path("data/models") / args.base / "model.pt"
        if weights.is_file():
            load_weights(model, weights)
        return model.eval()

    plain = network()
    ranking_file = Path("metrics/deepcorrect") / args.base / args.distortion / "ranking.json"
    channels = [plain.net.get_submodule(layer.conv).out_channels for layer in layout(plain.net).layers]
    ranking = json.loads(ranking_file.read_text()) if ranking_file.is_file() else None
    if ranking is not None and all(len(ranking["layers"].get(f"conv{k}", {}).get("order", [])) == c for k, c in enumerate(channels[:args.layers], start=1)):
        source = f"pipeline ranking {ranking_file}"
    else:  # none, or one of another width
        ranking = {"layers": {f"conv{k}": {"order": torch.randperm(c).tolist()} for k, c in enumerate(channels, start=1)}}
        source = "random ranking"
    fractions = args.fractions[0] if len(args.fractions) == 1 else tuple(args.fractions)
    settings = dc.DeepCorrectSettings(layers=args.layers, fraction=fractions, unit=args.unit, unit_kernels=tuple(args.kernels), unit_width=args.unit_width)
    corrected = network()
    trainable = dc.correct(corrected, ranking, settings)
    corrected.eval()
    x = torch.rand(args.batch_size, 3, 32, 32)

    def macs(model: torch.nn.Module) -> int:
        """Multiply-adds per image of the inference form's convolutions and linear layers."""
        total = [0]

        def count(module: torch.nn.Module, _: tuple, out: torch.Tensor) -> None:
            if isinstance(module, torch.nn.Conv2d):
                total[0] += out[0].numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            elif isinstance(module, torch.nn.Linear):
                total[0] += module.in_features * module.out_features

        fast = inference_model(model, torch.device("cpu"))
        handles = [m.register_forward_hook(count) for m in fast.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        with torch.no_grad():
            fast(x[:1])
        for handle in handles:
            handle.remove()
        return total[0]

    def rate(model: torch.nn.Module) -> float:
        fast = inference_model(model, torch.device("cpu"))
        best = float("inf")
        with torch.no_grad():
            fast(x)
            for _ in range(args.repeats):
                start = time.perf_counter()
                fast(x)
                best = min(best, time.perf_counter() - start)
        return args.batch_size / best

    base_rate, corrected_rate = rate(plain), rate(corrected)
    base_macs, corrected_macs = macs(plain), macs(corrected)
    print(f"{args.base} (width {args.width}), {args.unit} units on {args.layers} layers at {args.fractions}, {source}; "
          f"{sum(p.numel() for p in trainable):,} trainable; CPU threads {torch.get_num_threads()}, batch {args.batch_size}, best of {args.repeats}")
    print(f"  baseline:  {base_rate:,.0f} img/s")
    print(f"  corrected: {corrected_rate:,.0f} img/s")
    print(f"  corrected speed as a share of the baseline's: {corrected_rate / base_rate:.2f} (target >= 0.6)")
    print(f"  multiply-adds per image: baseline {base_macs:,}, corrected {corrected_macs:,}: the units' arithmetic alone bounds the share at "
          f"{base_macs / corrected_macs:.2f}")


if __name__ == "__main__":
    main()
