"""ANT's cost per epoch against plain fine-tuning on the same data, in the same run: one
epoch of each through the engine (same model, batch size, device), prints seconds per
epoch and the ratio (ANT / fine-tuning).

ANT adds a generator step per batch (a forward and backward pass of the classifier) and a
fresh generator's ``fresh_steps`` steps per epoch, so the ratio is roughly
``2 + fresh_steps / batches per epoch``.

    python benchmarks/ant.py [--folder data/shards/clean/train] [--generator 1x1] [--fresh-steps 20] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from robust import engine
from robust.data.shards import read_info
from robust.engine import TrainParams
from robust.methods.ant import AntSettings, AntState, ant_loss
from robust.models import create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="data/shards/clean/train")
    parser.add_argument("--model", default="deepcorrect_net")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--generator", default="1x1")
    parser.add_argument("--fresh-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    info = read_info(args.folder)
    params = TrainParams(epochs=1, batch_size=args.batch_size, workers=1, device=args.device, lr=0.01)
    seconds = {}
    for method in ("finetune", "ant"):
        model = create(args.model, info["num_classes"], image_size=info["image_size"], width=args.width)
        loss_fn, hooks = None, None
        if method == "ant":
            hooks = AntState(model, AntSettings(generator=args.generator, fresh_steps=args.fresh_steps), args.folder, args.batch_size, 0)
            loss_fn = ant_loss(hooks)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            engine.train(model, args.folder, out, params, loss_fn=loss_fn, hooks=hooks)
            seconds[method] = time.perf_counter() - start
        print(f"{method:9s}: {seconds[method]:.1f} s per epoch ({info['num_samples']} images, batch {args.batch_size}, device {engine.pick_device(args.device)})")
    print(f"ANT ({args.generator}, {args.fresh_steps} fresh steps) / fine-tuning cost per epoch: {seconds['ant'] / seconds['finetune']:.2f}x")


if __name__ == "__main__":
    main()
