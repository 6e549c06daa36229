"""Cost of each numerics pin (robust/numerics.py) per kind of work, measured in the same run.

Runs ``tests/numerics_probe.py`` (a few training steps of each kind through the project's code:
Adam / SGD classifiers, the VAE, the L-BFGS autoencoder, the detector MLP, ANT's generator,
an evaluation forward) in fresh processes: unpinned, with each pin alone, and with all pins
(what every stage runs under). Prints seconds per kind (best of ``--repeats``) and each
configuration's time as a ratio of the unpinned one. The stage groups each kind stands for
are named in the first column.

    python benchmarks/numerics.py [--steps 10] [--scale 4] [--repeats 3]

Run nothing else heavy meanwhile (2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "numerics_probe.py"
sys.path.insert(0, str(ROOT))

#: what each probe kind stands for in the pipeline
GROUPS = {"linear-adam": "train, Adam + Linear head (alexnet_small and its DeepCorrect / fine-tuning pair)", "linear-sgd": "train, SGD + Linear head",
          "conv-sgd": "train, SGD conv net (deepcorrect_net family)", "vae": "train@vae, gradients", "lbfgs-autoencoder": "iqa-autoencoder (L-BFGS)",
          "detector": "detect (MLP)", "ant-generator": "train (ant)", "evaluate": "evaluate@ (inference forward)"}


def configurations() -> dict[str, dict[str, str]]:
    """Name -> environment: unpinned, each pin alone, all pins."""
    from robust.numerics import ENVIRONMENT

    alone = {"MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "FALSE"},
             "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
             "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
             "OPENBLAS_CORETYPE=Haswell": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": ENVIRONMENT["OPENBLAS_NUM_THREADS"]}}
    return {"unpinned": {}, **alone, "all pins": dict(ENVIRONMENT)}


def run(env: dict[str, str], steps: int, scale: int, threads: int) -> dict[str, float]:
    """Seconds per kind in one fresh process under ``env`` (numerics set by hand: ROBUST_NUMERICS=off)."""
    full = {k: v for k, v in os.environ.items() if k not in configurations()["all pins"]}
    full.update(env)
    full["ROBUST_NUMERICS"] = "off"
    out = subprocess.run([sys.executable, str(PROBE), "--steps", str(steps), "--scale", str(scale), "--request-threads", str(threads), "--warmup"],
                         env=full, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {kind: value["seconds"] for kind, value in result.items() if isinstance(value, dict)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--scale", type=int, default=4, help="batch / data size multiplier of the probe")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from robust.numerics import THREADS

    times: dict[str, dict[str, float]] = {}
    for name, env in configurations().items():
        runs = [run(env, args.steps, args.scale, THREADS) for _ in range(args.repeats)]
        times[name] = {kind: min(r[kind] for r in runs) for kind in runs[0]}
        print(f"measured {name}", file=sys.stderr, flush=True)
    names = list(times)
    print(f"{THREADS} threads, {args.steps} steps, scale {args.scale}, best of {args.repeats}; seconds (ratio to unpinned)")
    print(f"{'kind':<20} {'stands for':<52} " + " ".join(f"{n:>26}" for n in names))
    for kind in times["unpinned"]:
        base = times["unpinned"][kind]
        cells = " ".join(f"{f'{times[n][kind]:.3f} ({times[n][kind] / base:.2f}x)':>26}" for n in names)
        print(f"{kind:<20} {GROUPS.get(kind, ''):<52} {cells}")


if __name__ == "__main__":
    main()
