"""Distortion throughput: images/s per distortion at 32, 64 and 224 px on one process,
the parallel speed-up with all cores against one core (same run), and the projected wall
time of an ImageNet-C-sized job (50,000 images x 19 corruptions x 5 severities) on a
16-core machine.

Each measured image is distorted at a level cycling over all levels and then encoded as the
corrupt stage stores it (PNG), so the figure is the stage's per-image work. Images are
crops of a real photograph (scikit-image's astronaut), not noise.

Also, in the same run: the project's own ImageNet-C implementation (robust/distortions/imagenet_c.py,
imagecorruptions table) against the ``imagecorruptions`` package it reproduces bit for bit, per
corruption at 32 and 224 px (corruption only, no encoding; ratio = own speed / package speed,
> 1 means the own one is faster), with the geometric mean over the 19.

    python benchmarks/distortions.py [--seconds 0.4] [--sizes 32 64 224] [--cores N] [--compare-sizes 32 224]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np
from PIL import Image

from robust import distortions as D
from robust.data.shards import encode_image

IMAGENET_C_JOB = 50_000 * 19 * 5
TARGET_CORES = 16


def photo(size: int) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.BILINEAR))


def work(name: str, size: int, count: int, seed: int = 0) -> int:
    """Distort + encode ``count`` images; returns count (the unit of parallel work)."""
    d, image = D.configured(name, None, size), photo(size)  # constants: auto, as the default pipeline
    for i in range(count):
        encode_image(d(image, 1 + i % d.levels, np.random.default_rng(seed + i)))
    return count


def rate(name: str, size: int, seconds: float) -> float:
    """Images per second on this process (after one warm-up call per level, e.g. numba's JIT)."""
    d, image = D.configured(name, None, size), photo(size)  # constants: auto, as the default pipeline
    for level in range(1, d.levels + 1):
        d(image, level, np.random.default_rng(0))
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < d.levels:
        work(name, size, d.levels, seed=done)
        done += d.levels
    return done / (time.perf_counter() - start)


def per_image(call, levels: int, seconds: float) -> float:
    """Seconds per image of ``call(level, seed)`` over cycling levels (after one warm-up call per level)."""
    for level in range(1, levels + 1):
        call(level, 0)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < levels:
        call(1 + done % levels, done)
        done += 1
    return (time.perf_counter() - start) / done


def own_vs_package(name: str, size: int, seconds: float) -> tuple[float, float]:
    """(own, package) seconds per image for one ImageNet-C corruption with the imagecorruptions table."""
    from imagecorruptions import corrupt as package_corrupt

    from robust.distortions import imagenet_c

    image = photo(size)

    def own(level: int, seed: int) -> None:
        imagenet_c.corrupt(image, name, level, imagenet_c.PACKAGE, seed)

    def package(level: int, seed: int) -> None:
        np.random.seed(seed)
        with np.errstate(all="ignore"):
            package_corrupt(image, corruption_name=name, severity=level, **({"seed": seed} if name in D.OWN_RNG else {}))

    return per_image(own, 5, seconds), per_image(package, 5, seconds)


def _warm(_: int) -> None:
    for level in range(1, 6):
        D.get("glass_blur")(photo(64), level, np.random.default_rng(0))


def parallel_speedup(cores: int, size: int, per_task: int) -> tuple[float, float]:
    """(1-core time, all-core time) for the same task list: every distortion, ``per_task`` images each."""
    tasks = [(name, size, per_task) for name in D.DISTORTIONS] * 2
    start = time.perf_counter()
    for task in tasks:
        work(*task)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        pool.map(_warm, range(cores))  # JIT warm-up outside the timing, as in the serial case
        start = time.perf_counter()
        pool.starmap(work, tasks, chunksize=1)
        parallel = time.perf_counter() - start
    return serial, parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="time per distortion and size")
    parser.add_argument("--sizes", type=int, nargs="*", default=[32, 64, 224], help="sizes of the throughput table (none: only the comparison)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--per-task", type=int, default=60, help="images per (distortion, repeat) task in the parallel test")
    parser.add_argument("--compare-sizes", type=int, nargs="*", default=[32, 224], help="sizes of the own-vs-package comparison")
    args = parser.parse_args()

    for size in args.compare_sizes:
        print(f"own ImageNet-C vs imagecorruptions at {size} px (ms/img; ratio = own speed / package speed)")
        ratios = []
        for name in D.IMAGENET_C + D.IMAGENET_C_EXTRA:
            own, package = own_vs_package(name, size, args.seconds)
            ratios.append(package / own)
            print(f"  {name:<18} own {own * 1e3:8.2f}  package {package * 1e3:8.2f}  ratio {package / own:5.2f}x")
        mean_own = statistics.geometric_mean(ratios)
        print(f"  geometric mean ratio at {size} px: {mean_own:.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)\n")
    if not args.sizes:
        return

    rates = {size: {name: rate(name, size, args.seconds) for name in D.DISTORTIONS} for size in args.sizes}
    print(f"{'distortion':<18}" + "".join(f"{f'{s} px img/s':>14}" for s in args.sizes))
    for name in D.DISTORTIONS:
        print(f"{name:<18}" + "".join(f"{rates[s][name]:>14.1f}" for s in args.sizes))

    if 224 in rates:
        times = {n: 1 / r for n, r in rates[224].items()}
        median = statistics.median(times.values())
        slowest = max(times, key=times.get)
        print(f"\n224 px: median {median * 1e3:.1f} ms/img; slowest {slowest} {times[slowest] * 1e3:.1f} ms/img "
              f"= {times[slowest] / median:.1f}x the median (target <= 20x)")
        ratios = sorted(((t / median, n) for n, t in times.items()), reverse=True)[:3]
        print("  top ratios: " + ", ".join(f"{n} {r:.1f}x" for r, n in ratios))

    serial, parallel = parallel_speedup(args.cores, 64, per_task=args.per_task)
    speedup = serial / parallel
    efficiency = speedup / args.cores
    print(f"\nparallel (64 px, all distortions): 1 core {serial:.2f} s, {args.cores} cores {parallel:.2f} s: "
          f"speed-up {speedup:.2f}x, efficiency {efficiency:.2f} (target >= 0.8)")

    if 224 in rates:
        per_image = statistics.mean(1 / rates[224][n] for n in D.IMAGENET_C + D.IMAGENET_C_EXTRA)
        hours = IMAGENET_C_JOB * per_image / (TARGET_CORES * min(1.0, efficiency)) / 3600
        print(f"projected ImageNet-C job (50,000 x 19 x 5 at 224 px, PNG) on {TARGET_CORES} cores of this speed "
              f"at efficiency {min(1.0, efficiency):.2f}: {hours:.1f} h (mean {per_image * 1e3:.1f} ms/img/core)")


if __name__ == "__main__":
    main()
