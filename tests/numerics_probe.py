"""Train a few steps of every kind of model whose bytes once differed between machines, through
the project's own code, and print one JSON line ``{kind: {"sha": ..., "seconds": ...}}``.

Run in a fresh process under some library code path (``MKL_CBWR``, ``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``, a thread count requested with ``--request-threads``):
``tests/test_numerics.py`` asserts that the pins make every such process print the same
hashes (and that without them they differ); ``benchmarks/numerics.py`` times the kinds
under each pin.

    python tests/numerics_probe.py [--steps 3] [--scale 1] [--kinds linear-adam vae ...] [--request-threads 1] [--warmup]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable

KINDS = ("linear-adam", "linear-sgd", "conv-sgd", "vae", "lbfgs-autoencoder", "detector", "ant-generator", "evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1, help="batch / data size multiplier (the benchmark's)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--request-threads", type=int, help="ask torch for this many threads before robust pins them")
    parser.add_argument("--warmup", action="store_true", help="run each kind once untimed first (one-off JIT / allocation costs)")
    args = parser.parse_args()
    if args.request_threads:
        import torch  # imported, but no operation runs before robust's pin

        torch.set_num_threads(args.request_threads)
    import robust  # noqa: F401 -- pins the numerics (unless ROBUST_NUMERICS=off)
    import torch

    results = {}
    for kind in args.kinds:
        if args.warmup:
            PROBES[kind](args.steps, args.scale)
        start = time.perf_counter()
        tensors = PROBES[kind](args.steps, args.scale)
        seconds = time.perf_counter() - start
        digest = hashlib.sha256()
        for tensor in tensors:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        results[kind] = {"sha": digest.hexdigest()[:16], "seconds": round(seconds, 4)}
    results["threads"] = torch.get_num_threads()
    print(json.dumps(results))


def _images(n: int, size: int = 32, seed: int = 1):  # -> (images in [0, 1], labels of 12 classes)
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.randint(0, 12, (n,), generator=g)


def _optimise(opt, loss: Callable[[], object], steps: int) -> None:  # noqa: ANN001 -- a torch optimiser
    """``steps`` plain optimiser steps on ``loss()``."""
    for _ in range(steps):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()


def _classifier(arch: str, optimizer: str, steps: int, scale: int) -> list:
    import torch

    from robust.engine import TrainParams, build_optimizer, cross_entropy_loss
    from robust.models import create

    torch.manual_seed(0)
    model = create(arch, 12, image_size=32, width=0.25)
    opt = build_optimizer(model.parameters(), TrainParams(optimizer=optimizer, lr=1e-3 if optimizer == "adam" else 0.01, weight_decay=0.0))
    images, labels = _images(64 * scale)
    step = cross_entropy_loss()
    _optimise(opt, lambda: step(model, images, labels)[0], steps)
    return list(model.state_dict().values())


def _vae(steps: int, scale: int) -> list:
    import torch

    from robust.engine import TrainParams, build_optimizer
    from robust.methods import vae
    from robust.models import create

    torch.manual_seed(0)
    model = create("vae", 12, image_size=32)
    opt = build_optimizer(model.parameters(), TrainParams(optimizer="adam", lr=1e-3, weight_decay=0.0))
    images, labels = _images(64 * scale)
    _optimise(opt, lambda: vae.loss_fn(model, images, labels)[0], steps)
    return list(model.state_dict().values())


def _autoencoder(steps: int, scale: int) -> list:
    import torch

    from robust.engine import TrainParams, build_optimizer
    from robust.gradient_features.iqa.autoencoder import SparseAutoencoder, sparse_autoencoder_loss

    torch.manual_seed(0)
    model = SparseAutoencoder()
    patches = torch.randn(2000 * scale, 192, generator=torch.Generator().manual_seed(2))
    opt = build_optimizer(model.parameters(), TrainParams(optimizer="lbfgs", lr=1.0, weight_decay=0.0, lbfgs_iterations=5 * steps))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = sparse_autoencoder_loss(model, patches)
        loss.backward()
        return loss

    opt.step(closure)
    return list(model.state_dict().values())


def _detector(steps: int, scale: int) -> list:
    import torch

    from robust.engine import TrainParams, build_optimizer
    from robust.gradient_features.detectors import detector_loss
    from robust.models.gradient_vae import Detector

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    rows, labels = torch.randn(128 * scale, 144, generator=g), torch.randint(0, 2, (128 * scale,), generator=g).float()
    model = Detector(144)
    model.set_standardisation(rows.mean(0), rows.std(0))
    opt = build_optimizer(model.parameters(), TrainParams(optimizer="adam", lr=1e-3, weight_decay=0.0))
    _optimise(opt, lambda: detector_loss(model, rows, labels)[0], steps)
    return list(model.state_dict().values())


def _ant_generator(steps: int, scale: int) -> list:
    import torch

    from robust.methods.ant import AntSettings, AntState
    from robust.models import create

    torch.manual_seed(0)
    classifier = create("deepcorrect_net", 12, image_size=32, width=0.25)
    state = AntState(classifier, AntSettings(generator="3x3"), "unused", 64, 0)
    state.generator = state._new_generator()
    state.optimizer = torch.optim.Adam(state.generator.parameters(), lr=1e-4)
    images, labels = _images(64 * scale)
    for _ in range(steps):
        state.generator_step(classifier, images, labels)
    return list(state.generator.state_dict().values())


def _evaluate(steps: int, scale: int) -> list:
    import torch

    from robust.engine import inference_model
    from robust.models import create

    torch.manual_seed(0)
    model = inference_model(create("alexnet_small", 12, image_size=32, width=0.25), torch.device("cpu"))
    images, _ = _images(128 * scale)
    with torch.no_grad():
        return [model(images) for _ in range(steps)]


PROBES: dict[str, Callable[[int, int], list]] = {
    "linear-adam": lambda steps, scale: _classifier("alexnet_small", "adam", steps, scale),
    "linear-sgd": lambda steps, scale: _classifier("alexnet_small", "sgd", steps, scale),
    "conv-sgd": lambda steps, scale: _classifier("deepcorrect_net", "sgd", steps, scale),
    "vae": _vae,
    "lbfgs-autoencoder": _autoencoder,
    "detector": _detector,
    "ant-generator": _ant_generator,
    "evaluate": _evaluate,
}

if __name__ == "__main__":
    main()
